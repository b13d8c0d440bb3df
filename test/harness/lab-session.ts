// A setup file of the lab and cluster vitest projects (vitest.config.ts): every test file there
// holds the lab lock (lab-lock.ts) from before its first `beforeAll` (which brings its lab up) to
// after its last `afterAll` (which takes it down), so no two of them ever use the lab at once,
// whichever project, vitest process or checkout runs them. A file whose suites are all skipped
// (deferred to the vm tier) does not take it. When the wait fails the file's suites do not run at
// all, so no `afterAll` takes down the lab of the file that holds the lock.
import path from "node:path";
import { aroundAll, expect } from "vitest";
import { acquireLock, labLockDir } from "./lab-lock.js";
import { timeScale } from "./needs.js";
import { repoRoot } from "./tools.js";

/** How long a test file waits for the lab (a file of the other tier, another run) before it fails. */
const waitMs = 45 * 60_000 * timeScale;

aroundAll(async (runSuite) => {
  const file = path.relative(repoRoot, expect.getState().testPath ?? "") || "a test file";
  const release = await acquireLock(labLockDir, {
    what: `${file} (vitest, pid ${process.pid})`,
    timeoutMs: waitMs,
    onWait: (owner, ms) =>
      void process.stderr.write(`[lab-lock] ${file} waits for the lab (${labLockDir}), held by pid ${owner?.pid ?? "?"}: ${owner?.what ?? "?"} since ${owner?.since ?? "?"}; ${Math.round(ms / 1000)} s so far\n`),
  });
  try {
    await runSuite();
  } finally {
    release();
  }
  // The wait fails (with who holds the lab) before vitest's own timeout would.
}, waitMs + 60_000);
