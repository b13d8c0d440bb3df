// CNI ADD/DEL latency of dist/kvrf against the reference bridge + host-local plugins and a bare
// start of the same Node, all exec'd the way libcni does (env + stdin) inside a namespace that
// plays the node, against a real API server. Two cases, because the node holds a VPC's route-target
// claim once (cni/route-target-hold.ts): the common one (`--pods`, default 50: a resident pod keeps
// the VPC on the node, so ADD and DEL do not touch the claim) and the first pod of a VPC on the
// node (`--first`, default 10: each pod of a fresh VPC, ADDed and DELed; its ADD claims, its DEL
// releases). Also: API round trips per ADD and DEL as the plugin counts them, and where ADD's time
// goes (from the plugin's own log). Root only; run after `npm run build` and `scripts/test-env ensure`.
// --encap srv6|vxlan (default: SRv6 where this kernel can run it, else VXLAN) picks the data plane;
// each writes its own section of docs/benchmarks.md.
// Usage: tsx scripts/bench-cni.ts [--pods N] [--first N] [--encap srv6|vxlan] [--log FILE (keep the plugin's log)]
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { startApiBridge } from "../test/harness/api-bridge.js";
import { startControlPlane } from "../test/harness/apiserver.js";
import { CniNode, runPlugin } from "../test/harness/cni.js";
import { cleanupNetns, createNetns, type Netns } from "../test/harness/netns.js";
import { cniBinDir, repoRoot, testEnvDir, tool } from "../test/harness/tools.js";
import { quantile, table } from "./lib/stats.js";
import { writeSection } from "./lib/report.js";
import { cniNeeds, defaultMode, missingCapabilities, probeCapabilities } from "../shared/kernel/capabilities.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const pods = Number(flag("--pods") ?? 50);
const firsts = Number(flag("--first") ?? 10);
const keepLog = flag("--log");
const encapFlag = flag("--encap");

function timed(fn: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<number> {
  const t0 = performance.now();
  return fn().then((r) => {
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
    return performance.now() - t0;
  });
}

function execIn(netns: string, cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile("ip", ["netns", "exec", netns, cmd, ...args], { encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : 1, stdout, stderr }),
    ),
  );
}

/** The plugin's "attached" (ADD) and "detached" (DEL) log lines. */
interface Logged {
  msg: string;
  containerID: string;
  apiRoundTrips: number;
  apiMs?: number[];
  phaseMs?: Record<string, number>;
  claimed?: boolean;
  lastOfVpc?: boolean;
}

const load = (): string => loadavg()[0]?.toFixed(1) ?? "?";

async function main(): Promise<void> {
  const loadStart = load();
  const kernel = await probeCapabilities();
  const { mode } = defaultMode(kernel);
  const encap = encapFlag === "srv6" || encapFlag === "vxlan" ? encapFlag : missingCapabilities(kernel, cniNeeds(mode, "srv6")).length === 0 ? "srv6" : "vxlan";
  const lacking = missingCapabilities(kernel, cniNeeds(mode, encap));
  if (lacking.length > 0) throw new Error(`this kernel (${kernel.kernel}) cannot run the ${encap} data plane in ${mode} mode: it lacks ${lacking.join(", ")}`);
  const dir = path.join(testEnvDir, "run", `bench-cni-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cp = await startControlPlane({ dir: path.join(dir, "cp") });
  const netnses: Netns[] = [];
  try {
    execFileSyncOk("kubectl", ["--kubeconfig", cp.kubeconfig, "apply", "--server-side", "-f", path.join(repoRoot, "manifests/crds")]);
    execFileSyncOk("kubectl", ["--kubeconfig", cp.kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    const node = await createNetns("bench-node");
    netnses.push(node);
    const vtep = "192.0.2.80";
    if (encap === "vxlan") await node.ip("addr", "add", `${vtep}/32`, "dev", "lo");
    const bridge = await startApiBridge(cp.url, dir);
    await bridge.into(node.name);
    const kubeconfig = bridge.nsKubeconfig(cp.kubeconfig, path.join(dir, "kvrf.kubeconfig"));
    const cni = new CniNode({ netns: node.name, dir });
    const logFile = path.join(dir, "kvrf.log");
    const kvrfConf = {
      cniVersion: "1.1.0",
      name: "bench",
      type: "kvrf",
      vpc: "beef",
      encapsulation: encap,
      ...(encap === "srv6" ? { srv6Locator: "fd00:0:a::/48" } : { vtep }),
      kubeconfig,
      nodeName: "bench",
      asn: 65000,
      stateDir: path.join(dir, "state"),
      logFile,
      ipam: cni.hostLocal([[{ subnet: "10.8.0.0/16" }], [{ subnet: "fd80::/64" }]], "kvrf"),
    };
    const bridgeConf = {
      cniVersion: "1.1.0",
      name: "bench-bridge",
      type: "bridge",
      bridge: "kvbench0",
      isGateway: true,
      ipam: cni.hostLocal([[{ subnet: "10.9.0.0/16" }], [{ subnet: "fd90::/64" }]], "bridge"),
    };
    const pool = await Promise.all(Array.from({ length: pods }, (_, i) => createNetns(`b${i}`)));
    const firstPool = await Promise.all(Array.from({ length: firsts }, (_, i) => createNetns(`f${i}`)));
    netnses.push(...pool, ...firstPool);
    // A resident pod keeps the VPC on the node, as in a running cluster (and without kvrfd here,
    // deleting the VPC's last attachment would leave its object waiting on kvrfd's finalizer).
    const resident = await createNetns("resident");
    netnses.push(resident);
    const residentVars = { containerId: "resident", podNetns: resident.path, ifName: "eth0" };
    const r = await runPlugin(cni, node.name, "ADD", kvrfConf, residentVars);
    if (r.code !== 0) throw new Error(`resident ADD: ${r.stdout}`);
    rmSync(logFile, { force: true });

    const samples: Record<string, number[]> = { bare: [], kvrfAdd: [], kvrfDel: [], firstAdd: [], lastDel: [], refAdd: [], refDel: [], nsexec: [] };
    for (const [i, pod] of pool.entries()) {
      samples["nsexec"]?.push(await timed(() => execIn(node.name, "true", [])));
      samples["bare"]?.push(await timed(() => execIn(node.name, process.execPath, ["-e", "0"])));
      const vars = { containerId: `c${i}`, podNetns: pod.path, ifName: "eth0" };
      samples["kvrfAdd"]?.push(await timed(() => runPlugin(cni, node.name, "ADD", kvrfConf, vars)));
      samples["refAdd"]?.push(await timed(() => runPlugin(cni, node.name, "ADD", bridgeConf, { ...vars, ifName: "eth1" })));
    }
    for (const [i, pod] of pool.entries()) {
      const vars = { containerId: `c${i}`, podNetns: pod.path, ifName: "eth0" };
      samples["kvrfDel"]?.push(await timed(() => runPlugin(cni, node.name, "DEL", kvrfConf, vars)));
      samples["refDel"]?.push(await timed(() => runPlugin(cni, node.name, "DEL", bridgeConf, { ...vars, ifName: "eth1" })));
    }
    // The first pod of a VPC on the node: each of these is alone in a VPC of its own.
    for (const [i, pod] of firstPool.entries()) {
      const conf = { ...kvrfConf, vpc: (0xbe00 + i).toString(16) };
      const vars = { containerId: `f${i}`, podNetns: pod.path, ifName: "eth0" };
      samples["firstAdd"]?.push(await timed(() => runPlugin(cni, node.name, "ADD", conf, vars)));
      samples["lastDel"]?.push(await timed(() => runPlugin(cni, node.name, "DEL", conf, vars)));
    }

    const lines = readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes('"msg":"attached"') || l.includes('"msg":"detached"'))
      .map((l) => JSON.parse(l) as Logged);
    if (keepLog !== undefined) copyFileSync(logFile, keepLog);
    const adds = lines.filter((l) => l.msg === "attached" && l.claimed === false);
    const firstAdds = lines.filter((l) => l.msg === "attached" && l.claimed === true);
    const dels = lines.filter((l) => l.msg === "detached" && l.lastOfVpc === false);
    const lastDels = lines.filter((l) => l.msg === "detached" && l.lastOfVpc === true);
    const bare = quantile(samples["bare"] ?? [], 0.5);
    const row = (name: string, key: string): string[] => {
      const s = samples[key] ?? [];
      const med = quantile(s, 0.5);
      return [name, med.toFixed(1), quantile(s, 0.95).toFixed(1), (med / bare).toFixed(2)];
    };
    const out: string[] = [];
    const emit = (t: string): void => {
      out.push(t);
      process.stdout.write(t);
    };
    emit(
      `CNI latency (${encap === "srv6" ? "SRv6" : "VXLAN"}, ${mode} mode, kernel ${kernel.kernel}), ${pods} pods of one VPC (a resident pod keeps the VPC on the node) and ${firsts} pods each alone in its VPC, ` +
        `sequential, each run via \`ip netns exec\` in the node namespace (Node ${process.version}, ${cniBinDir()})\n\n`,
    );
    emit(
      table(
        ["operation", "median ms", "p95 ms", "× bare node"],
        [
          row("ip netns exec true (harness floor)", "nsexec"),
          row("node -e 0 (bare start, reference)", "bare"),
          row("kvrf ADD (VPC already on the node)", "kvrfAdd"),
          row("kvrf ADD (first pod of a VPC on the node)", "firstAdd"),
          row("bridge + host-local ADD (reference)", "refAdd"),
          row("kvrf DEL (VPC stays on the node)", "kvrfDel"),
          row("kvrf DEL (last pod of a VPC on the node)", "lastDel"),
          row("bridge + host-local DEL (reference)", "refDel"),
        ],
      ),
    );
    const trips = (ls: Logged[]): string => {
      const n = ls.map((l) => l.apiRoundTrips);
      const ms = ls.flatMap((l) => l.apiMs ?? []);
      return n.length === 0 ? "no samples" : `${Math.min(...n)}–${Math.max(...n)} (${ls.length} runs; each request ${quantile(ms, 0.5).toFixed(1)} ms median)`;
    };
    emit(`\nAPI round trips, as the plugin counts its requests (asn in the config):\n`);
    emit(`  ADD, VPC already on the node:        ${trips(adds)}\n`);
    emit(`  ADD, first pod of a VPC (claims):    ${trips(firstAdds)}\n`);
    emit(`  DEL, VPC stays on the node:          ${trips(dels)}\n`);
    emit(`  DEL, last pod of a VPC (releases):   ${trips(lastDels)}\n\n`);
    const phase = (ls: Logged[], p: string, name = p): string[] => {
      const v = ls.map((a) => a.phaseMs?.[p]).filter((x): x is number => x !== undefined);
      return [name, quantile(v, 0.5).toFixed(1), quantile(v, 0.95).toFixed(1)];
    };
    emit(
      table(
        ["ADD phase (plugin's own clock)", "median ms", "p95 ms"],
        [
          phase(adds, "startup"),
          phase(adds, "config"),
          phase(adds, "ipam", "ipam (‖ lock + prepare)"),
          phase(adds, "lockWait", "IPAM spawn + VPC lock"),
          phase(adds, "prepare"),
          phase(adds, "configure", "configure (‖ publish)"),
          phase(adds, "publish"),
          phase(firstAdds, "claim", "claim (first pod of a VPC; ‖ ipam)"),
        ],
      ),
    );
    emit(
      `\n${table(
        ["DEL phase (plugin's own clock)", "median ms", "p95 ms"],
        [
          phase(dels, "startup"),
          phase(dels, "find", "find the attachment (alias)"),
          phase(dels, "withdraw", "withdraw (the BGPVRFInstance apply)"),
          phase(dels, "detach", "VPC lock + detach"),
          phase(dels, "release", "VPC still in use? (+ release on the last)"),
          phase(dels, "ipam"),
        ],
      )}`,
    );
    const target = bare * 2.5 + quantile(adds.map((a) => a.phaseMs?.["publish"] ?? 0), 0.5);
    emit(
      `\ntarget: ADD median (VPC already on the node) ≤ 2.5 × bare start + one API round trip (publish) = ${target.toFixed(1)} ms; ` +
        `measured ${quantile(samples["kvrfAdd"] ?? [], 0.5).toFixed(1)} ms\n`,
    );
    writeSection(
      repoRoot,
      encap === "srv6" ? "cni" : "cni-vxlan",
      `## CNI ADD/DEL latency, ${encap === "srv6" ? "SRv6" : "VXLAN"} (scripts/bench-cni.ts --encap ${encap})\n\n${new Date().toISOString().slice(0, 10)}, this 2-core machine, shared with other work (load average ${loadStart} at the start, ${load()} at the end). Phases: \`startup\` is the process's age when ADD (DEL) begins (Node bootstrap + bundle load with the code cache); IPAM runs concurrently (‖) with the VPC lock and \`prepare\` (the veth and the VPC's entry rule, and on a VPC's first pod the route-target claim), then \`configure\` (addresses and routes) runs concurrently with \`publish\` (the BGPVRFInstance apply). A node holds a VPC's claims (route target; with VXLAN also the VNI, claimed concurrently) once, so only the first ADD and the last DEL of a VPC on a node talk to them; with VXLAN they also make and remove the VPC's VXLAN device.\n\n\`\`\`\n${out.join("")}\`\`\`\n`,
    );
    await runPlugin(cni, node.name, "DEL", kvrfConf, residentVars);
    await bridge.close();
  } finally {
    await cleanupNetns();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function execFileSyncOk(cmd: "kubectl", args: string[]): void {
  execFileSync(tool(cmd), args, { stdio: ["ignore", "ignore", "inherit"] });
}

await main();
