import { describe, expect, it } from "vitest";
import { hostVethName, parseHostVethName, vrfDeviceName } from "./ifnames.js";

describe("interface names", () => {
  it.each([
    [0n, 0],
    [0xabcn, 1],
    [(1n << 48n) - 1n, 0xffff],
    [0x1234_5678_9abcn, 0x0102],
  ])("vpc %s attachment %i: ≤ 15 bytes and reversible", (vpc, att) => {
    const name = hostVethName(vpc, att);
    expect(name).toHaveLength(15);
    expect(parseHostVethName(name)).toEqual({ vpc, attachment: att });
    expect(vrfDeviceName(vpc)).toHaveLength(15);
  });

  it("gives distinct IDs distinct names", () => {
    const names = new Set<string>();
    for (const vpc of [0n, 1n, 0x10000n, (1n << 48n) - 1n]) {
      for (const att of [0, 1, 0xffff]) names.add(hostVethName(vpc, att));
    }
    expect(names.size).toBe(12);
    expect(hostVethName(1n, 0)).not.toBe(hostVethName(0n, 1));
  });

  it("recognises only its own names", () => {
    expect(parseHostVethName("eth0")).toBeUndefined();
    expect(parseHostVethName("kvrf-aaaaaaaaaa")).toBeUndefined();
    expect(parseHostVethName("kv7777777777777")).toBeUndefined(); // 65 bits
  });
});
