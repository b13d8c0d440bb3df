import { describe, expect, it } from "vitest";
import { autoRouterId, findRouterIdConflicts, manualRouterId, routerIdFromAddress, RouterIdError } from "./router-id.js";

describe("Auto router ID", () => {
  it.each([
    ["IPv4 as is", "192.0.2.7", "192.0.2.7"],
    ["IPv6: its 32-bit words XORed", "fd00:ff::a", "253.0.0.245"],
    ["IPv6 per-node /48s differing in one word stay distinct (a)", "fd00:0:a::1", "253.10.0.1"],
    ["IPv6 per-node /48s differing in one word stay distinct (b)", "fd00:0:b::1", "253.11.0.1"],
    ["IPv4-mapped IPv6", "::ffff:10.0.0.1", "10.0.255.254"],
  ])("%s", (_n, addr, want) => {
    expect(routerIdFromAddress(addr).routerId).toBe(want);
  });

  it("is unique for every address of a /96 (XOR fold is injective on one word)", () => {
    const ids = new Set<string>();
    for (let i = 1; i <= 5000; i++) ids.add(routerIdFromAddress(`2001:db8:1:2:3:4:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`).routerId);
    expect(ids.size).toBe(5000);
  });

  it("refuses addresses that fold to 0.0.0.0", () => {
    expect(() => routerIdFromAddress("::")).toThrow(RouterIdError);
    expect(() => routerIdFromAddress("1::1:0:0:0")).toThrow(/0\.0\.0\.0/);
  });

  it("prefers an IPv4 InternalIP on dual-stack nodes and ignores other address types", () => {
    expect(
      autoRouterId([
        { type: "ExternalIP", address: "203.0.113.1" },
        { type: "InternalIP", address: "fd00::5" },
        { type: "InternalIP", address: "10.0.0.5" },
      ]).routerId,
    ).toBe("10.0.0.5");
    expect(() => autoRouterId([{ type: "Hostname", address: "n1" }])).toThrow(/no InternalIP/);
  });

  it("validates Manual values", () => {
    expect(manualRouterId("10.255.0.1")).toBe("10.255.0.1");
    expect(() => manualRouterId(undefined)).toThrow(RouterIdError);
    expect(() => manualRouterId("10.0.0")).toThrow(RouterIdError);
    expect(() => manualRouterId("0.0.0.0")).toThrow(RouterIdError);
  });

  it("finds other nodes publishing the same ID", () => {
    expect(
      findRouterIdConflicts({ node: "a", routerId: "1.1.1.1" }, [
        { node: "a", routerId: "1.1.1.1" },
        { node: "c", routerId: "1.1.1.1" },
        { node: "b", routerId: "1.1.1.1" },
        { node: "d", routerId: "2.2.2.2" },
        { node: "b", routerId: "1.1.1.1" },
      ]),
    ).toEqual(["b", "c"]);
  });
});
