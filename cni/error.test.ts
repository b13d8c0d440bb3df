import { describe, expect, it } from "vitest";
import { CniError, ErrorCode, ioFailure, stackOf } from "./error.js";

describe("CniError.from", () => {
  it("keeps the message of an unexpected error, never its stack", () => {
    const e = CniError.from(new TypeError("x is undefined"));
    expect(e.toJSON("1.1.0")).toEqual({ cniVersion: "1.1.0", code: 999, msg: "x is undefined" });
  });
  it("makes a failed file system call an I/O failure (5)", () => {
    const err = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
    expect(CniError.from(err).code).toBe(ErrorCode.IOFailure);
    expect(ioFailure("stateDir", "/run/kvrf", err).message).toBe("stateDir /run/kvrf: ENOSPC: no space left on device, write");
    // Node 24's rmSync on a read-only file system: no code, a stray ", ".
    const rm = Object.assign(new Error(", Unknown error: Read-only file system '/s/claims/a'"), { code: "", errno: -4094, syscall: "rm", path: "/s/claims/a" });
    expect(CniError.from(rm).toJSON("1.1.0")).toEqual({ cniVersion: "1.1.0", code: 5, msg: "rm /s/claims/a: Unknown error: Read-only file system '/s/claims/a'" });
    // A failed spawn is no file problem.
    expect(CniError.from(Object.assign(new Error("spawn ip ENOENT"), { code: "ENOENT", syscall: "spawn ip" })).code).toBe(999);
  });
  it.each([
    ["a string", "boom", "non-error thrown: boom"],
    ["an object", { a: 1 }, 'non-error thrown: {"a":1}'],
    ["undefined", undefined, "non-error thrown: undefined"],
    ["a symbol", Symbol("s"), "non-error thrown: Symbol(s)"],
    [
      "an object whose toString throws",
      {
        toJSON() {
          throw new Error("no");
        },
      },
      "an unprintable value was thrown",
    ],
  ])("turns %s into code 999", (_what, v, msg) => {
    expect(CniError.from(v).toJSON("1.0.0")).toEqual({ cniVersion: "1.0.0", code: 999, msg });
  });
  it("bounds message and details", () => {
    const j = new CniError(ErrorCode.InvalidConfig, "m".repeat(1e6), "d".repeat(1e6)).toJSON("1.1.0");
    expect(j.msg.length).toBeLessThanOrEqual(2000);
    expect(j.details?.length).toBeLessThanOrEqual(8000);
    expect(j.msg).toMatch(/… \(998040 more characters\)$/);
  });
  it("logs stacks with their causes", () => {
    const s = stackOf(new Error("outer", { cause: new Error("inner") }));
    expect(s).toMatch(/^Error: outer\n\s+at /);
    expect(s).toMatch(/caused by: Error: inner/);
  });
});
