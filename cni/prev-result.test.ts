import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CniError, ErrorCode } from "./error.js";
import { checkPrevResult } from "./prev-result.js";
import { mergeInto, render } from "./result.js";

const ours = {
  interfaces: [{ name: "kvaaaa", mac: "02:00:00:00:00:01" }, { name: "eth0", mac: "02:00:00:00:00:02", mtu: 1436, sandbox: "/var/run/netns/p" }],
  ips: [{ address: "10.1.0.2/32", gateway: "169.254.1.1", interface: 1 }],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
};

describe("checkPrevResult", () => {
  it.each([
    ["absent", undefined],
    ["null", null],
    ["a full 1.1.0 result", { cniVersion: "1.1.0", interfaces: [{ name: "x", sandbox: "/x" }], ips: [{ address: "10.9.9.9/32", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }], dns: {} }],
    ["a 0.4.0 result", { cniVersion: "0.4.0", ips: [{ version: "4", address: "10.9.9.9/32", gateway: "10.9.9.1" }] }],
  ])("accepts %s", (_what, prev) => {
    expect(() => checkPrevResult(prev)).not.toThrow();
  });

  it.each([
    ["not an object", "x", "prevResult: must be a CNI result object"],
    ["a null IP", { ips: [null] }, "prevResult.ips.0: must be an object"],
    ["an address that is a number", { ips: [{ address: 5 }] }, "prevResult.ips.0.address: must be an address/prefix (got 5)"],
    ["interfaces that are a string", { interfaces: "x" }, "prevResult.interfaces: must be a list"],
    ["an interface index out of range", { ips: [{ address: "10.0.0.1/32", interface: -1 }] }, "prevResult.ips.0.interface: must index interfaces"],
    ["a route without dst", { routes: [{}] }, "prevResult.routes.0.dst"],
    ["dns that is a list", { dns: [] }, "prevResult.dns: must be an object"],
  ])("refuses %s with code 7 naming the field", (_what, prev, msg) => {
    expect(() => checkPrevResult(prev)).toThrow(msg);
  });

  it("lets through only what mergeInto and render handle, for every spec version", () => {
    const prevArb = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        {
          interfaces: fc.oneof(fc.array(fc.oneof(fc.record({ name: fc.string(), mac: fc.jsonValue(), mtu: fc.jsonValue() }, { requiredKeys: ["name"] }), fc.jsonValue())), fc.jsonValue()),
          ips: fc.oneof(fc.array(fc.oneof(fc.record({ address: fc.oneof(fc.constantFrom("10.0.0.1/24", "fd00::1/64"), fc.jsonValue()), interface: fc.jsonValue(), gateway: fc.oneof(fc.ipV4(), fc.jsonValue()) }, { requiredKeys: [] }), fc.jsonValue())), fc.jsonValue()),
          routes: fc.oneof(fc.array(fc.oneof(fc.record({ dst: fc.oneof(fc.constant("0.0.0.0/0"), fc.jsonValue()), gw: fc.oneof(fc.ipV4(), fc.jsonValue()) }, { requiredKeys: [] }), fc.jsonValue())), fc.jsonValue()),
          dns: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(prevArb, fc.constantFrom("0.3.1", "0.4.0", "1.0.0", "1.1.0"), (prev, version) => {
        try {
          checkPrevResult(prev);
        } catch (err) {
          expect(err).toBeInstanceOf(CniError);
          expect((err as CniError).code).toBe(ErrorCode.InvalidConfig);
          return;
        }
        const r = render(mergeInto(typeof prev === "object" && prev !== null ? (prev as Record<string, unknown>) : undefined, ours), version);
        expect(JSON.parse(JSON.stringify(r))).toMatchObject({ cniVersion: version });
      }),
      { numRuns: 3000, seed: 17 },
    );
  });
});
