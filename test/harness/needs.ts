// Tests follow the kernel: each suite that touches the data plane states the kernel capabilities it
// needs (shared/kernel/capabilities.ts). On the host it runs when the host kernel has them all; the
// `vm` tier (a stock distribution kernel under qemu, test/harness/vm.ts) runs exactly the suites the
// host could not. So every suite runs on a kernel that can run it, and none is skipped because of
// where the tests happen to run: a suite that no kernel here can run is reported as skipped, which
// fails CI.
//
//   KVRF_TEST_WHERE     "host" (default) or "vm" (set by the vm tier inside the guest)
//   KVRF_HOST_CAPS      the host kernel's capabilities, comma-separated (scripts/test probes once
//                       and passes them on, also into the guest); probed here when unset
//   KVRF_TIME_SCALE     how much slower this place is than the host (the vm tier sets 5)
//   KVRF_DEFERRED_DIR   where each suite that does not run here is recorded (one JSON line per
//                       suite, one file per test process): scripts/test sends the files of the
//                       host's deferred suites to the vm tier and prints why
import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { describe, expect } from "vitest";
import { allCapabilities, describeMissing, presentCapabilities, probeCapabilitiesSync, type Capability } from "../../shared/kernel/capabilities.js";

export type Where = "host" | "vm";
export const where: Where = process.env["KVRF_TEST_WHERE"] === "vm" ? "vm" : "host";
/**
 * How much longer things take here than on the host (the vm's CPU is emulated): deadlines a test
 * sets itself (a convergence wait) multiply by it, as vitest's own timeouts do (vitest.config.ts).
 */
export const timeScale = Number(process.env["KVRF_TIME_SCALE"] ?? "1") || 1;

let probed: Set<Capability> | undefined;

/** What the kernel this process runs on can do (probed once per process). */
export function localCapabilities(): ReadonlySet<Capability> {
  probed ??= new Set(presentCapabilities(probeCapabilitiesSync()));
  return probed;
}

/** Capability names from a comma-separated list; unknown names are ignored. */
export function parseCaps(text: string): Set<Capability> {
  const known = new Set<string>(allCapabilities);
  return new Set(
    text
      .split(",")
      .map((s) => s.trim())
      .filter((s): s is Capability => known.has(s)),
  );
}

/** The host kernel's capabilities: from scripts/test, or probed (only possible on the host). */
export function hostCapabilities(): ReadonlySet<Capability> {
  const env = process.env["KVRF_HOST_CAPS"];
  if (env !== undefined) return parseCaps(env);
  if (where === "vm") throw new Error("KVRF_HOST_CAPS must be set inside the vm tier");
  return localCapabilities();
}

/**
 * Where a suite runs, seen from this process:
 *   here     it runs in this process
 *   vm       (on the host) the host kernel lacks something: the vm tier runs it
 *   host     (in the vm) the host kernel has everything: the host's report has it
 *   nowhere  neither kernel has everything: skipped, and says why
 */
export type PlacementKind = "here" | "vm" | "host" | "nowhere";

export interface Placement {
  kind: PlacementKind;
  /** Why it does not run here (empty when it does). */
  why: string;
}

/** Pure: where a suite needing `needs` runs, given where this is and both kernels' capabilities. */
export function place(needs: readonly Capability[], at: Where, host: ReadonlySet<Capability>, local: () => ReadonlySet<Capability>): Placement {
  const lacking = (have: ReadonlySet<Capability>): Capability[] => needs.filter((c) => !have.has(c));
  const hostLacks = lacking(host);
  if (at === "host") {
    return hostLacks.length === 0 ? { kind: "here", why: "" } : { kind: "vm", why: `the host kernel lacks ${describeMissing(hostLacks)}` };
  }
  if (hostLacks.length === 0) return { kind: "host", why: "the host kernel runs it" };
  const vmLacks = lacking(local());
  return vmLacks.length === 0
    ? { kind: "here", why: "" }
    : { kind: "nowhere", why: `the host kernel lacks ${describeMissing(hostLacks)} and the vm kernel lacks ${describeMissing(vmLacks)}` };
}

/** Whether a suite needing `needs` runs in this process, and if not, where and why. */
export function placement(needs: readonly Capability[]): Placement {
  return place(needs, where, hostCapabilities(), localCapabilities);
}

/** One deferred (or unrunnable) suite, as KVRF_DEFERRED_DIR's files hold it. */
export interface DeferredSuite {
  /** Absolute path of the test file (the same on the host and in the guest). */
  file: string;
  suite: string;
  needs: Capability[];
  /** Where it was recorded. */
  where: Where;
  kind: PlacementKind;
  why: string;
}

function record(entry: Omit<DeferredSuite, "file" | "where">): void {
  const dir = process.env["KVRF_DEFERRED_DIR"];
  if (dir === undefined || dir === "") return;
  // Set by vitest while it collects a file too, not only inside tests.
  const file = expect.getState().testPath ?? "";
  const line: DeferredSuite = { file, where, ...entry };
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, `${process.pid}.jsonl`), JSON.stringify(line) + "\n");
}

/**
 * `describe` for a suite that needs kernel capabilities. Runs here when this is the place for it;
 * on the host, a suite the host kernel cannot run is skipped and recorded (scripts/test runs it in
 * the vm tier and merges the reports by name: the title is the same in both places). In the vm, a
 * suite the host runs is not declared at all, so the vm's report holds only what the vm was for.
 */
export function describeNeeds(needs: readonly Capability[], name: string, fn: () => void): void {
  const p = placement(needs);
  if (p.kind === "here") {
    describe(name, fn);
    return;
  }
  if (p.kind === "host") return;
  record({ suite: name, needs: [...needs], kind: p.kind, why: p.why });
  describe.skip(name, fn);
}
