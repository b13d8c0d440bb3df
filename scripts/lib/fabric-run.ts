// The frame of the benchmarks that run a kvrfd fabric: a run directory under .testenv/run, removed
// afterwards with the namespaces and the control plane (kept with KVRF_KEEP_TEST_DIRS=1), and the
// exit code: 0, or 1 with the error on stderr.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { startControlPlane, type ControlPlane } from "../../test/harness/apiserver.js";
import { cleanupNetns } from "../../test/harness/netns.js";
import { testEnvDir } from "../../test/harness/tools.js";

export function runFabricBench(name: string, body: (dir: string, cp: ControlPlane) => Promise<void>): void {
  const run = async (): Promise<void> => {
    const runRoot = path.join(testEnvDir, "run");
    mkdirSync(runRoot, { recursive: true });
    const dir = mkdtempSync(path.join(runRoot, `${name}-`));
    const cp = await startControlPlane({ dir: path.join(dir, "cp") });
    try {
      await body(dir, cp);
    } finally {
      await cp.stop();
      await cleanupNetns();
      if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
    }
  };
  run().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
