import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../test/harness/tools.js";
import { suiteErrorsVar, type SuiteError } from "./suite-errors-reporter.js";
import { count, errorExcerpt, merge, missingSuites, outcomes, ranOn, type VitestJson } from "./vitest-reports.js";

const root = "/repo";

function report(file: string, tests: [string[], string, string][], fileStatus = "passed", message = ""): VitestJson {
  return {
    testResults: [
      {
        name: `${root}/${file}`,
        status: fileStatus,
        message,
        assertionResults: tests.map(([ancestorTitles, title, status]) => ({ ancestorTitles, title, status })),
      },
    ],
  };
}

describe("merging the host's and the vm's reports", () => {
  const host = outcomes(
    report("test/kernel/a.test.ts", [
      [["policy-routing"], "pings", "passed"],
      [["vrf"], "pings", "skipped"], // deferred to the vm
      [["vrf"], "decapsulates", "skipped"],
      [["nowhere"], "needs a kernel nobody has", "skipped"],
      [["both"], "plain test", "passed"],
    ]),
    root,
  );
  const vm = outcomes(
    report("test/kernel/a.test.ts", [
      [["vrf"], "pings", "passed"],
      [["vrf"], "decapsulates", "failed"],
      [["nowhere"], "needs a kernel nobody has", "skipped"],
      [["both"], "plain test", "passed"],
    ]),
    root,
  );

  it.each([
    ["policy-routing > pings", "passed", ["host"]],
    ["vrf > pings", "passed", ["vm"]],
    ["vrf > decapsulates", "failed", ["vm"]],
    ["nowhere > needs a kernel nobody has", "skipped", []],
    ["both > plain test", "passed", ["host", "vm"]],
  ])("%s: %s, ran on %j", (name, outcome, places) => {
    const t = merge({ host, vm }).find((m) => m.name === name);
    expect(t).toMatchObject({ file: "test/kernel/a.test.ts", outcome, ranOn: places });
  });

  it("counts each test once, and where it ran", () => {
    const merged = merge({ host, vm });
    expect(count(merged)).toEqual({ passed: 3, failed: 1, skipped: 1 });
    expect(ranOn(merged)).toEqual({ host: 2, vm: 3 });
  });

  it("keeps the host's report as it is when there is no vm report", () => {
    expect(count(merge({ host }))).toEqual({ passed: 2, failed: 0, skipped: 3 });
  });

  it("counts a file that failed on its own (import error, failing hook) as one failure", () => {
    const broken = outcomes(report("test/kernel/b.test.ts", [[["s"], "t", "skipped"]], "failed", "Error: beforeAll hook failed\n  at …"), root);
    expect(broken.map((t) => [t.name, t.outcome])).toEqual([
      ["s > t", "skipped"],
      ["(file) Error: beforeAll hook failed", "failed"],
    ]);
    // A failed test already says the file failed: no extra entry.
    expect(outcomes(report("c.test.ts", [[[], "t", "failed"]], "failed"), root)).toHaveLength(1);
  });

  it("counts a suite whose beforeAll failed as a failure with its error, from vitest's own reporters", async () => {
    // vitest reports such a suite's tests as skipped and leaves the file's message empty: only the
    // file's status says it failed (this once hid a lab that never came up behind "0 failed"), and
    // only suite-errors-reporter.ts says why.
    const dir = mkdtempSync(path.join(tmpdir(), "kvrf-vitest-json-"));
    try {
      writeFileSync(path.join(dir, "vitest.config.mjs"), "export default {};\n");
      writeFileSync(
        path.join(dir, "hook.test.mjs"),
        [
          'import { beforeAll, describe, expect, it } from "vitest";',
          'describe("fine", () => { it("passes", () => expect(1).toBe(1)); });',
          'describe("lab", () => {',
          '  beforeAll(() => { throw new Error("the lab did not come up"); });',
          '  it("a", () => expect(1).toBe(1));',
          '  it("b", () => expect(1).toBe(1));',
          "});",
        ].join("\n"),
      );
      const out = path.join(dir, "report.json");
      const errorsFile = path.join(dir, "suite-errors.json");
      const vitest = path.join(repoRoot, "node_modules", "vitest", "vitest.mjs");
      const reporter = path.join(repoRoot, "scripts", "lib", "suite-errors-reporter.ts");
      await promisify(execFile)(process.execPath, [vitest, "run", "--root", dir, "--reporter=json", `--outputFile.json=${out}`, `--reporter=${reporter}`], {
        env: { ...process.env, [suiteErrorsVar]: errorsFile },
      }).catch(() => undefined);
      const json = JSON.parse(readFileSync(out, "utf8")) as VitestJson;
      const errors = JSON.parse(readFileSync(errorsFile, "utf8")) as SuiteError[];
      const got = outcomes(json, dir, errors);
      expect(got.map((t) => [t.name, t.outcome, t.why])).toEqual([
        ["fine > passes", "passed", undefined],
        ["lab > a", "skipped", undefined],
        ["lab > b", "skipped", undefined],
        ["(suite) lab: a hook failed, its tests did not run", "failed", "the lab did not come up"],
      ]);
      expect(count(merge({ host: got })).failed).toBe(1);
      // Without the errors file (a vitest that died before writing it) it still fails, once.
      const bare = outcomes(json, dir);
      expect(bare.filter((t) => t.outcome === "failed").map((t) => t.name)).toEqual([expect.stringMatching(/^\(file\) a suite's hook .* failed/)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("keeps a failed test's error, and prints its first lines without colours", () => {
    const failed = outcomes(
      {
        testResults: [
          { name: `${root}/e.test.ts`, status: "failed", assertionResults: [{ ancestorTitles: [], title: "t", status: "failed", failureMessages: ["\u001b[31mAssertionError: expected 1 to be 2\u001b[39m\n    at e.test.ts:3:9\n    at x\n    at y\n    at z"] }] },
        ],
      },
      root,
    );
    const merged = merge({ host: failed, vm: failed });
    expect(merged[0]?.why.map((w) => w.place)).toEqual(["host", "vm"]);
    expect(errorExcerpt(merged[0]?.why[0]?.message ?? "", "host: ")).toBe(
      ["    host: AssertionError: expected 1 to be 2", "        at e.test.ts:3:9", "        at x", "        at y", "    …"].join("\n"),
    );
  });

  it("tells apart tests of the same name in one file", () => {
    const twice = outcomes(report("d.test.ts", [[["s"], "t", "passed"], [["s"], "t", "failed"]]), root);
    expect(twice.map((t) => t.key)).toEqual(["d.test.ts::s > t", "d.test.ts::s > t#1"]);
    expect(count(merge({ host: twice }))).toEqual({ passed: 1, failed: 1, skipped: 0 });
  });

  it("fails each suite sent to the vm that never showed up in its report", () => {
    const sent = [
      { file: "test/kernel/a.test.ts", suite: "vrf" },
      { file: "test/kernel/a.test.ts", suite: "vr" }, // a prefix of another suite's title is not that suite
      { file: "test/integration/b.test.ts", suite: "cni (vrf)" },
    ];
    expect(missingSuites(vm, sent, "vm").map((t) => [t.file, t.name, t.outcome])).toEqual([
      ["test/kernel/a.test.ts", "vr (sent to the vm, never ran there)", "failed"],
      ["test/integration/b.test.ts", "cni (vrf) (sent to the vm, never ran there)", "failed"],
    ]);
  });
});
