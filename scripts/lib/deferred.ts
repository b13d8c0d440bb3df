// The suites test/harness/needs.ts recorded as not running where they were collected
// (KVRF_DEFERRED_DIR: one JSON line per suite, one file per test process).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { DeferredSuite } from "../../test/harness/needs.js";

export function readDeferred(dir: string): DeferredSuite[] {
  if (!existsSync(dir)) return [];
  const seen = new Set<string>();
  const out: DeferredSuite[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".jsonl")).sort()) {
    for (const line of readFileSync(path.join(dir, f), "utf8").split("\n")) {
      if (line.trim() === "") continue;
      const d = JSON.parse(line) as DeferredSuite;
      // A file collected twice (a retry, or listing and running) records its suites twice.
      const key = `${d.file}\0${d.suite}\0${d.kind}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
  }
  return out;
}

/** The test files of `suites`, relative to `root`, each once, sorted. */
export function filesOf(suites: readonly DeferredSuite[], root: string): string[] {
  return [...new Set(suites.map((s) => path.relative(root, s.file)))].sort();
}

/** What the vm tier tells scripts/test-summary.ts (scripts/vm/tier.ts --meta). */
export interface VmTierMeta {
  booted: boolean;
  /** The suites sent to the vm: each must show up in its report, or counts as failed. */
  suites: { file: string; suite: string }[];
  files: number;
  kernel?: string;
  bootMs?: number | undefined;
  commandMs?: number | undefined;
  totalMs?: number;
  /** vitest's exit code in the guest (undefined: it never finished). */
  exitCode?: number | undefined;
}
