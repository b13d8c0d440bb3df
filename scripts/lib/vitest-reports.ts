// Merging the host's and the vm tier's vitest JSON reports (scripts/test-summary.ts). A test is
// identified by its file (relative to the repository: the guest sees the host's paths) and its full
// name; suites placed by test/harness/needs.ts carry the same title in both places. A test passed
// if it passed where it ran, failed if it failed anywhere, and is skipped only if it ran nowhere.
import path from "node:path";

export type Outcome = "passed" | "failed" | "skipped";
export type Place = "host" | "vm";

/** The parts of vitest's JSON reporter output that are read here. */
export interface VitestJson {
  testResults: {
    /** Absolute path of the test file. */
    name: string;
    status: string;
    /** Set when the file itself failed (import error, failing hook), not only a test in it. */
    message?: string;
    assertionResults: { ancestorTitles: string[]; title: string; status: string }[];
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
}

function outcomeOf(status: string): Outcome {
  return status === "passed" ? "passed" : status === "failed" ? "failed" : "skipped";
}

/** Every test of a report, plus one failed entry per file that failed on its own. */
export function outcomes(report: VitestJson, root: string): TestOutcome[] {
  const out: TestOutcome[] = [];
  for (const f of report.testResults) {
    const file = path.relative(root, f.name);
    const seen = new Map<string, number>();
    for (const t of f.assertionResults) {
      const name = [...t.ancestorTitles, t.title].join(" > ");
      const n = seen.get(name) ?? 0;
      seen.set(name, n + 1);
      out.push({ key: `${file}::${name}${n > 0 ? `#${n}` : ""}`, file, name, outcome: outcomeOf(t.status) });
    }
    // A file that failed to load or whose hook failed has no failed test to show for it (its tests
    // are skipped or absent), yet it failed: count it once.
    if (f.status === "failed" && (f.message ?? "") !== "") {
      out.push({ key: `${file}::(file)`, file, name: `(file) ${f.message?.split("\n")[0] ?? ""}`, outcome: "failed" });
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
}

export function merge(reports: Partial<Record<Place, readonly TestOutcome[]>>): MergedTest[] {
  const byKey = new Map<string, MergedTest & { seen: Outcome[] }>();
  for (const place of ["host", "vm"] as const) {
    for (const t of reports[place] ?? []) {
      let m = byKey.get(t.key);
      if (m === undefined) {
        m = { key: t.key, file: t.file, name: t.name, outcome: "skipped", ranOn: [], seen: [] };
        byKey.set(t.key, m);
      }
      m.seen.push(t.outcome);
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
