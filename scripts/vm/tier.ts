// The vm tier (scripts/test): runs, on Debian's stock kernel under qemu, every suite the host kernel
// could not (test/harness/needs.ts), in ONE guest, with one vitest over exactly their files.
//
//   tsx scripts/vm/tier.ts --deferred DIR --report FILE --meta FILE [--suite-errors FILE] [--collect kernel,integration,lab,cluster]
//
// DIR holds what the host's vitest recorded (KVRF_DEFERRED_DIR). --collect names tiers (vitest
// projects) the host did not run in this invocation: their files that use describeNeeds are
// collected (`vitest list` without static parsing runs each file's top level, so describeNeeds
// decides and records exactly as in a real run) to find their deferred suites without running any
// host test. The guest's vitest report goes to --report, timings and counts to --meta
// (scripts/test-summary.ts merges).
// Exit: vitest's exit code in the guest; 1 when the vm itself failed; 3 when the vm image is not
// provisioned (scripts/test reports the tier as skipped).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Capability } from "../../shared/kernel/capabilities.js";
import { parseCaps, type DeferredSuite } from "../../test/harness/needs.js";
import { repoRoot, vmImage, type VmImage } from "../../test/harness/tools.js";
import { jobRoot, runInVm, type VmResult } from "../../test/harness/vm.js";
import { labControlPlanesVar, serveLabControlPlanes, startHostControlPlane } from "../../test/harness/vm-apiserver.js";
import { filesOf, readDeferred, type VmTierMeta } from "../lib/deferred.js";
import { suiteErrorsVar } from "../lib/suite-errors-reporter.js";

const { values: opt } = parseArgs({
  options: { deferred: { type: "string" }, report: { type: "string" }, meta: { type: "string" }, "suite-errors": { type: "string" }, collect: { type: "string" } },
});
if (opt.deferred === undefined || opt.report === undefined || opt.meta === undefined) {
  process.stderr.write("usage: tsx scripts/vm/tier.ts --deferred DIR --report FILE --meta FILE [--collect TIER,...]\n");
  process.exit(2);
}
const deferredDir = opt.deferred;
const reportFile = opt.report;
const metaFile = opt.meta;
const vitestBin = path.join(repoRoot, "node_modules", ".bin", "vitest");
const say = (s: string): void => void process.stdout.write(`${s}\n`);

/** Test files and their projects, as vitest sees them (static: nothing runs). */
function listFiles(args: string[]): { file: string; projectName: string }[] {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "kvrf-list-")), "files.json");
  const list = spawnSync(vitestBin, ["list", "--filesOnly", "--passWithNoTests", ...args, "--json", out], { cwd: repoRoot, stdio: "ignore" });
  if (list.status !== 0 || !existsSync(out)) throw new Error(`vitest list --filesOnly ${args.join(" ")} failed (exit ${list.status})`);
  const files = JSON.parse(readFileSync(out, "utf8")) as { file: string; projectName: string }[];
  rmSync(path.dirname(out), { recursive: true, force: true });
  return files;
}

/** The files of `projects` that place suites with describeNeeds. */
function placingFiles(projects: string[]): string[] {
  return listFiles(projects.flatMap((p) => ["--project", p]))
    .map((f) => f.file)
    .filter((f) => readFileSync(f, "utf8").includes("describeNeeds("))
    .map((f) => path.relative(repoRoot, f));
}

/** Collects `files` as the host would run them, so describeNeeds records their deferred suites. */
function collect(files: string[]): void {
  if (files.length === 0) return;
  say(`collecting ${files.length} file(s) to find what the host kernel cannot run: ${files.join(" ")}`);
  const r = spawnSync(vitestBin, ["list", "--no-staticParse", "--passWithNoTests", ...files], {
    cwd: repoRoot,
    env: { ...process.env, KVRF_TEST_WHERE: "host", KVRF_DEFERRED_DIR: deferredDir },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`collecting ${files.join(" ")} failed (vitest list exit ${r.status}):\n${r.stdout}${r.stderr}`);
}

function explain(deferred: DeferredSuite[], hostCaps: ReadonlySet<Capability>): void {
  const files = filesOf(deferred, repoRoot);
  say(`${deferred.length} suite(s) in ${files.length} file(s) go to the vm: the host kernel cannot run them`);
  const byFile = [...deferred].sort((a, b) => a.file.localeCompare(b.file) || a.suite.localeCompare(b.suite));
  // Capability names only: the probe's line above says what each is and its kernel option.
  for (const d of byFile) say(`  ${path.relative(repoRoot, d.file)} › ${d.suite}  (host lacks ${d.needs.filter((c) => !hostCaps.has(c)).join(", ")})`);
}

const seconds = (ms: number | undefined): string => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);

async function main(): Promise<number> {
  const tiers = (opt.collect ?? "").split(",").filter((t) => t !== "");
  if (tiers.length > 0) collect(placingFiles(tiers));
  const deferred = readDeferred(deferredDir).filter((d) => d.kind === "vm");
  const hostCaps = parseCaps(process.env["KVRF_HOST_CAPS"] ?? "");
  if (deferred.length === 0) {
    say("nothing deferred: the host kernel runs every suite, so the vm is not booted");
    writeFileSync(metaFile, JSON.stringify({ booted: false, suites: [], files: 0 } satisfies VmTierMeta));
    return 0;
  }
  explain(deferred, hostCaps);
  let image: VmImage;
  try {
    image = vmImage();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 3;
  }
  const files = filesOf(deferred, repoRoot);
  say(`booting ${image.package} (${image.kernelVersion}) under qemu; vitest on ${files.length} file(s) inside`);
  // The integration tier's control plane runs on the host, natively (test/harness/vm-apiserver.ts),
  // and so do the labs' (one per lab, started when the guest asks through the job directory).
  const projects = new Set(listFiles(files).map((f) => f.projectName));
  const host = projects.has("integration") ? await startHostControlPlane() : undefined;
  if (host !== undefined) say(`integration suites use a control plane on the host: ${host.cp.url} (10.0.2.2 from the guest)`);
  const jobDir = path.join(jobRoot, `${process.pid}-tier`);
  // (Not for the cluster tier's: a kubelet lab always starts its own, with the PKI its kubelets need.)
  const labPlanes = projects.has("lab") ? serveLabControlPlanes(jobDir) : undefined;
  if (labPlanes !== undefined) say("lab suites get a control plane of their own on the host, each when its lab comes up");
  // verbose: one line per test as it ends, so a long run under emulation shows progress.
  // Two workers (the guest's two CPUs): the suites mostly wait on processes and the network, and
  // integration files already share one API server on the host (their node names are their own).
  // And each suite's hook errors, which the JSON report lacks (scripts/lib/suite-errors-reporter.ts).
  const vitest = ["vitest", "run", ...files, "--maxWorkers=2", "--reporter=verbose", "--reporter=json", "--outputFile.json=/vmjob/report.json", "--reporter=./scripts/lib/suite-errors-reporter.ts"];
  const pass = (k: string): Record<string, string> => (process.env[k] !== undefined ? { [k]: process.env[k] } : {});
  let r: VmResult;
  try {
    r = await runInVm({
      command: vitest.join(" "),
      env: {
        KVRF_TEST_WHERE: "vm",
        // Emulated (TCG) vs native: whole tiers ran ~10× slower here, but the host's timeouts
        // have headroom of their own; 5× was enough in every run, also with other work beside.
        KVRF_TIME_SCALE: "5",
        KVRF_HOST_CAPS: [...hostCaps].join(","),
        KVRF_DEFERRED_DIR: "/vmjob/deferred",
        [suiteErrorsVar]: "/vmjob/suite-errors.json",
        ...(host !== undefined ? { KVRF_VM_KUBECONFIG: host.cp.kubeconfig, KVRF_VM_ETCD_URL: host.cp.etcdUrl } : {}),
        ...(labPlanes !== undefined ? { [labControlPlanesVar]: "host" } : {}),
        ...pass("CI"),
        ...pass("KVRF_KEEP_TEST_DIRS"),
      },
      // A default route for what needs one (kube-apiserver refuses to start without), and the
      // host's loopback services at 10.0.2.2.
      network: true,
      jobDir,
      timeoutMs: Number(process.env["KVRF_VM_TIMEOUT_MS"] ?? 60 * 60_000),
      onConsole: (t) => process.stdout.write(t),
    });
  } finally {
    await labPlanes?.stop();
    await host?.stop();
  }
  const report = path.join(r.jobDir, "report.json");
  if (existsSync(report)) copyFileSync(report, reportFile);
  const suiteErrors = path.join(r.jobDir, "suite-errors.json");
  if (opt["suite-errors"] !== undefined && existsSync(suiteErrors)) copyFileSync(suiteErrors, opt["suite-errors"]);
  const nowhere = readDeferred(path.join(r.jobDir, "deferred")).filter((d) => d.kind === "nowhere");
  for (const d of nowhere) say(`no kernel here runs ${path.relative(repoRoot, d.file)} › ${d.suite}: ${d.why}`);
  const meta: VmTierMeta = {
    booted: true,
    suites: deferred.map((d) => ({ file: path.relative(repoRoot, d.file), suite: d.suite })),
    files: files.length,
    kernel: image.kernelVersion,
    ...r.timings,
    exitCode: r.exitCode,
  };
  writeFileSync(metaFile, JSON.stringify(meta));
  say(`vm tier: boot ${seconds(r.timings.bootMs)}, vitest ${seconds(r.timings.commandMs)}, total ${seconds(r.timings.totalMs)} (${image.kernelVersion})`);
  if (r.exitCode === undefined || !existsSync(report)) {
    process.stderr.write(`vm tier failed: ${r.failure ?? `no report at ${report}`}\n`);
    return 1;
  }
  if (r.exitCode === 0 && process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(r.jobDir, { recursive: true, force: true });
  else say(`vm job directory kept: ${r.jobDir}`);
  return r.exitCode;
}

process.exitCode = await main();
