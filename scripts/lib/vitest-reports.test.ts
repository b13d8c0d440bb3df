import { describe, expect, it } from "vitest";
import { count, merge, missingSuites, outcomes, ranOn, type VitestJson } from "./vitest-reports.js";

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
