// Merging the host's and the vm tier's vitest JSON reports (scripts/test-summary.ts). A test is
// identified by its file (relative to the repository: the guest sees the host's paths) and its full
// name; suites placed by test/harness/needs.ts carry the same title in both places. A test passed
// if it passed where it ran, failed if it failed anywhere, and is skipped only if it ran nowhere.
import path from "node:path";
import type { SuiteError } from "./suite-errors-reporter.js";

export type Outcome = "passed" | "failed" | "skipped";
export type Place = "host" | "vm";

/** The parts of vitest's JSON reporter output that are read here. */
export interface VitestJson {
  testResults: {
    /** Absolute path of the test file. */
    name: string;
    status: string;
    /** Set when the file itself failed to load; empty when only a suite's hook failed. */
    message?: string;
    assertionResults: { ancestorTitles: string[]; title: string; status: string; failureMessages?: string[] }[];
  }[];
}

export interface TestOutcome {
  /** `<file>::<ancestors > title>`, with `#n` for the n-th repeat of the same name in a file. */
  key: string;
  file: string;
  name: string;
  outcome: Outcome;
  /** False for a failure that stands for tests that never ran (a missing report or suite). */
  ran?: false;
  /** Why it failed: the error's message (its first lines are printed at the end of the run). */
  why?: string;
}

function outcomeOf(status: string): Outcome {
  return status === "passed" ? "passed" : status === "failed" ? "failed" : "skipped";
}

/**
 * Every test of a report, plus one failed entry per error of a suite or module (suite-errors-
 * reporter.ts: a hook that failed), and one per file that failed with neither a failed test nor such
 * an error to show for it.
 */
export function outcomes(report: VitestJson, root: string, suiteErrors: readonly SuiteError[] = []): TestOutcome[] {
  const out: TestOutcome[] = [];
  for (const f of report.testResults) {
    const file = path.relative(root, f.name);
    const seen = new Map<string, number>();
    for (const t of f.assertionResults) {
      const name = [...t.ancestorTitles, t.title].join(" > ");
      const n = seen.get(name) ?? 0;
      seen.set(name, n + 1);
      const why = t.failureMessages?.[0];
      out.push({ key: `${file}::${name}${n > 0 ? `#${n}` : ""}`, file, name, outcome: outcomeOf(t.status), ...(why !== undefined && t.status === "failed" ? { why } : {}) });
    }
    const errors = suiteErrors.filter((e) => e.file === f.name);
    errors.forEach((e, i) => {
      const name = e.suite === "" ? "(file) failed to load or run" : `(suite) ${e.suite}: a hook failed, its tests did not run`;
      out.push({ key: `${file}::(suite) ${e.suite}${i > 0 ? `#${i}` : ""}`, file, name, outcome: "failed", why: e.message });
    });
    // A file that failed to load, or a suite whose beforeAll/aroundAll failed, has no failed test to
    // show for it (vitest reports the suite's tests as skipped, and for a suite's hook leaves the
    // file's message empty), yet it failed: count it once.
    if (f.status === "failed" && errors.length === 0 && !f.assertionResults.some((t) => t.status === "failed")) {
      const why = (f.message ?? "") !== "" ? (f.message ?? "").split("\n")[0] : "a suite's hook (beforeAll/afterAll/aroundAll) failed: its error is in vitest's output above, its tests are reported skipped";
      out.push({ key: `${file}::(file)`, file, name: `(file) ${why}`, outcome: "failed" });
    }
  }
  return out;
}

export interface MergedTest {
  key: string;
  file: string;
  name: string;
  outcome: Outcome;
  /** The places where it ran (passed or failed). */
  ranOn: Place[];
  /** Why it failed, where it did. */
  why: { place: Place; message: string }[];
}

export function merge(reports: Partial<Record<Place, readonly TestOutcome[]>>): MergedTest[] {
  const byKey = new Map<string, MergedTest & { seen: Outcome[] }>();
  for (const place of ["host", "vm"] as const) {
    for (const t of reports[place] ?? []) {
      let m = byKey.get(t.key);
      if (m === undefined) {
        m = { key: t.key, file: t.file, name: t.name, outcome: "skipped", ranOn: [], why: [], seen: [] };
        byKey.set(t.key, m);
      }
      m.seen.push(t.outcome);
      if (t.outcome === "failed" && t.why !== undefined) m.why.push({ place, message: t.why });
      if (t.outcome !== "skipped" && t.ran !== false && !m.ranOn.includes(place)) m.ranOn.push(place);
    }
  }
  return [...byKey.values()].map(({ seen, ...m }) => ({
    ...m,
    outcome: seen.includes("failed") ? "failed" : seen.includes("passed") ? "passed" : "skipped",
  }));
}

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

export function count(items: readonly { outcome: Outcome }[]): Counts {
  const c: Counts = { passed: 0, failed: 0, skipped: 0 };
  for (const t of items) c[t.outcome]++;
  return c;
}

/** How many merged tests ran on each place (a test that ran in both counts for both). */
export function ranOn(merged: readonly MergedTest[]): Record<Place, number> {
  return {
    host: merged.filter((t) => t.ranOn.includes("host")).length,
    vm: merged.filter((t) => t.ranOn.includes("vm")).length,
  };
}

export function formatCounts(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`;
}

/**
 * One failed entry for each suite that was sent somewhere and has no test in that place's report:
 * a run that died before collecting a file (a failing global setup) must not look like success.
 */
export function missingSuites(tests: readonly TestOutcome[], suites: readonly { file: string; suite: string }[], place: Place): TestOutcome[] {
  return suites
    .filter((s) => !tests.some((t) => t.file === s.file && (t.name === s.suite || t.name.startsWith(`${s.suite} > `))))
    .map((s) => ({ key: `${s.file}::${s.suite} (not run)`, file: s.file, name: `${s.suite} (sent to the ${place}, never ran there)`, outcome: "failed", ran: false }));
}

/**
 * The first lines of an error (ANSI colours removed), indented, for the end of a run: what `issues ci`
 * and a CI log's tail show must say why, not only what.
 */
export function errorExcerpt(message: string, prefix = "", maxLines = 4, maxChars = 600): string {
  // eslint-disable-next-line no-control-regex
  const lines = message.replace(/\u001b\[[0-9;]*m/g, "").split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== "");
  let text = lines.slice(0, maxLines).join("\n");
  if (text.length > maxChars) text = `${text.slice(0, maxChars)}…`;
  else if (lines.length > maxLines) text += "\n…";
  return text.split("\n").map((l, i) => `    ${i === 0 ? prefix : ""}${l}`).join("\n");
}
