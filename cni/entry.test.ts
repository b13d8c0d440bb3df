import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = path.resolve(here, "../node_modules/.bin/tsx");

function run(verb: string, fault: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      tsx,
      [path.join(here, "testdata/entry-faults.ts")],
      {
        env: { PATH: process.env["PATH"] ?? "", FAULT: fault, CNI_COMMAND: verb, CNI_CONTAINERID: "c", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/x" },
        timeout: 20_000,
      },
      (err, stdout, stderr) => resolve({ status: err === null ? 0 : typeof err.code === "number" ? err.code : null, stdout, stderr }),
    );
    child.stdin?.end(JSON.stringify({ cniVersion: "1.1.0", name: "n" }));
  });
}

describe("the plugin's process", () => {
  it.each([
    ["unhandled-rejection", "internal error (unhandled rejection): a step nobody awaited failed"],
    ["uncaught-exception", "internal error (uncaught exception): an event handler threw"],
  ])("answers one code-999 error JSON when a handler's work fails unobserved (%s), and logs the stack", async (fault, msg) => {
    const r = await run("ADD", fault);
    expect(r.status).toBe(1);
    expect(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as unknown)).toEqual([{ cniVersion: "1.1.0", code: 999, msg }]);
    expect(r.stderr).toMatch(/"stack":".*\\n\s*at /);
  }, 30_000);

  it("keeps the answer and its status when something fails after it", async () => {
    const r = await run("ADD", "after-answer");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: "1.1.0", ips: [] });
    expect(r.stderr).toContain("internal error: unhandled rejection");
  }, 30_000);

  it("answers a handler's unexpected error once, its stack in the log only", async () => {
    const r = await run("DEL", "");
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: "1.1.0", code: 999, msg: "thrown by DEL" });
    expect(r.stdout).not.toMatch(/\bat /);
    expect(r.stderr).toMatch(/RangeError: thrown by DEL\\n\s*at /);
  }, 30_000);
});
