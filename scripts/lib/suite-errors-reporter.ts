// A vitest reporter beside the JSON one (scripts/test, scripts/vm/tier.ts): vitest's JSON report
// says a file failed but not why when a suite's hook failed (beforeAll, afterAll, aroundAll: its
// tests are reported skipped and the file's message is empty), and a module's own errors are cut to
// a line. This writes every suite's and module's errors, whole, to the file named by
// KVRF_SUITE_ERRORS_FILE, so scripts/test-summary.ts can print them at the end of the run, where the
// reason for a red CI is read.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Reporter, TestModule, TestSuite } from "vitest/node";

/** One error of a suite (or of a module: `suite` empty), as the file holds them. */
export interface SuiteError {
  /** Absolute path of the test file. */
  file: string;
  suite: string;
  message: string;
}

export const suiteErrorsVar = "KVRF_SUITE_ERRORS_FILE";

export default class SuiteErrorsReporter implements Reporter {
  private readonly errors: SuiteError[] = [];

  onTestSuiteResult(suite: TestSuite): void {
    for (const e of suite.errors()) this.errors.push({ file: suite.module.moduleId, suite: suite.fullName, message: e.message });
  }

  onTestModuleEnd(module: TestModule): void {
    for (const e of module.errors()) this.errors.push({ file: module.moduleId, suite: "", message: e.message });
  }

  onTestRunEnd(): void {
    const file = process.env[suiteErrorsVar];
    if (file === undefined || file === "") return;
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(this.errors, null, 2));
  }
}
