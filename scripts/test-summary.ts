// The end of scripts/test: merges the host's and the vm tier's vitest reports (scripts/lib/
// vitest-reports.ts) and prints per-place counts, where the tests ran, and — always last — the line
// `tests: N passed, N failed, N skipped`. Exit 1 when a test failed, a report is unreadable, or
// (with --ci) a test ran nowhere.
// Each failure is printed with the first lines of its error: a hook's error comes from the suite
// errors file written beside each report (suite-errors-reporter.ts; vitest's JSON has none).
// --host and --host-errors repeat (one pair per host vitest: scripts/test runs two at once).
//   tsx scripts/test-summary.ts [--host FILE --host-errors FILE]... [--vm FILE] [--vm-errors FILE]
//                               [--vm-meta FILE] [--ci]
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { repoRoot } from "../test/harness/tools.js";
import type { VmTierMeta } from "./lib/deferred.js";
import type { SuiteError } from "./lib/suite-errors-reporter.js";
import { count, errorExcerpt, formatCounts, merge, missingSuites, outcomes, ranOn, type Place, type TestOutcome, type VitestJson } from "./lib/vitest-reports.js";

const { values: opt } = parseArgs({
  options: {
    host: { type: "string", multiple: true },
    "host-errors": { type: "string", multiple: true },
    vm: { type: "string" },
    "vm-errors": { type: "string" },
    "vm-meta": { type: "string" },
    ci: { type: "boolean", default: false },
  },
});

const reports: Partial<Record<Place, TestOutcome[]>> = {};
/** A place's tests from its report; a report that should exist and does not is one failure. */
function readReport(place: Place, file: string | undefined, errorsFile: string | undefined): void {
  if (file === undefined) return;
  const tests = (reports[place] ??= []);
  if (!existsSync(file)) {
    tests.push({ key: `(no ${place} report ${file})`, file, name: `(no ${place} report: vitest did not finish)`, outcome: "failed", ran: false });
    return;
  }
  const errors = errorsFile !== undefined && existsSync(errorsFile) ? (JSON.parse(readFileSync(errorsFile, "utf8")) as SuiteError[]) : [];
  tests.push(...outcomes(JSON.parse(readFileSync(file, "utf8")) as VitestJson, repoRoot, errors));
}

(opt.host ?? []).forEach((file, i) => readReport("host", file, opt["host-errors"]?.[i]));
const metaFile = opt["vm-meta"];
const meta = metaFile !== undefined && existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, "utf8")) as VmTierMeta) : undefined;
if (meta?.booted === true) {
  readReport("vm", opt.vm, opt["vm-errors"]);
  const vm = reports.vm ?? [];
  vm.push(...missingSuites(vm, meta.suites, "vm"));
  // vitest failing without a failed test (a global setup, an unhandled error) still failed.
  if (meta.exitCode !== 0 && !vm.some((t) => t.outcome === "failed")) {
    vm.push({ key: "(vm exit)", file: "", name: `(vitest in the vm ${meta.exitCode === undefined ? "never finished" : `exited ${meta.exitCode}`})`, outcome: "failed", ran: false });
  }
  reports.vm = vm;
}

const s = (ms: number | undefined): string => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
if (reports.host !== undefined) process.stdout.write(`host: ${formatCounts(count(reports.host))}\n`);
if (meta !== undefined) {
  process.stdout.write(
    meta.booted
      ? `vm:   ${formatCounts(count(reports.vm ?? []))} — ${meta.suites.length} suite(s) in ${meta.files} file(s) on ${meta.kernel ?? "?"}; boot ${s(meta.bootMs)}, vitest ${s(meta.commandMs)}, tier ${s(meta.totalMs)}\n`
      : "vm:   nothing deferred, not booted\n",
  );
}
const merged = merge(reports);
const total = count(merged);
const failed = merged.filter((t) => t.outcome === "failed");
for (const t of failed.slice(0, 20)) {
  process.stdout.write(`failed${t.ranOn.length > 0 ? ` (${t.ranOn.join(", ")})` : ""}: ${t.file} › ${t.name}\n`);
  for (const w of t.why) process.stdout.write(`${errorExcerpt(w.message, t.why.length > 1 ? `${w.place}: ` : "")}\n`);
}
if (failed.length > 20) process.stdout.write(`failed: … and ${failed.length - 20} more\n`);
const skipped = merged.filter((t) => t.outcome === "skipped");
for (const t of skipped.slice(0, 20)) process.stdout.write(`ran nowhere: ${t.file} › ${t.name}\n`);
if (skipped.length > 20) process.stdout.write(`ran nowhere: … and ${skipped.length - 20} more\n`);
if (skipped.length > 0 && reports.vm === undefined && meta === undefined) {
  process.stdout.write("(suites the host kernel cannot run go to the vm tier: add `vm` to the tiers)\n");
}
if (opt.ci && skipped.length > 0) process.stdout.write(`CI=true: ${skipped.length} test(s) ran nowhere, which is a failure\n`);
const where = ranOn(merged);
process.stdout.write(`where: ${where.host} on host, ${where.vm} in vm\n`);
process.stdout.write(`tests: ${formatCounts(total)}\n`);
process.exitCode = total.failed > 0 || (opt.ci && total.skipped > 0) ? 1 : 0;
