import type { V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { routerMac } from "../../shared/router-mac.js";
import type { RibPath } from "../gobgp/speaker.js";
import { checkClaims, ClaimError, externalPolicy, ignoreReason, indexNodes, nodeRecord, overExternalLimit } from "./trust.js";

const node = (name: string, addresses: string[], annotations: Record<string, string> = {}): V1Node => ({
  metadata: { name, annotations },
  status: { addresses: addresses.map((address) => ({ type: "InternalIP", address })) },
});

const rt = { type: 0 as const, asn: 65000, assigned: 0xabc };
const srv6 = (nextHop: string, sid: string): RibPath => ({ prefix: "10.1.1.7/32", nextHop, sid, best: true, local: false, neighbor: "fd00:ff::1", family: "ipv4", rd: rt, rts: [rt], withdraw: false });
const evpn = (nextHop: string, mac: string, vni = 0xabc): RibPath => {
  const { sid: _sid, ...rest } = srv6(nextHop, "");
  return { ...rest, evpn: { vni, routerMac: mac } };
};

describe("checkClaims", () => {
  const spec = { nodeName: "n", vpc: "abc", asn: 65000, routeDistinguisher: "65000:2748", importRouteTargets: ["65000:2748"], exportRouteTargets: ["65000:2748"], table: 2748 };
  const claims = (rt?: string, vni?: string) => ({
    routeTargetClaim: (n: string) => (n === "rt-65000-2748" && rt !== undefined ? { vpc: rt } : undefined),
    vniClaim: (n: string) => (n === "vni-2748" && vni !== undefined ? { vpc: vni } : undefined),
  });

  it("passes when the VPC holds its claims (hex compared as numbers)", () => {
    expect(() => checkClaims(spec, claims("abc"))).not.toThrow();
    expect(() => checkClaims(spec, claims("0ABC"))).not.toThrow();
    expect(() => checkClaims({ ...spec, encapsulation: "vxlan", vni: 2748 }, claims("abc", "abc"))).not.toThrow();
  });

  it("checks the claim of the cluster-wide route target, not of the node's ASN (eBGP fabric)", () => {
    const rack = { ...spec, asn: 65001, routeTargetASN: 65000, routeDistinguisher: "65001:2748" };
    expect(() => checkClaims(rack, claims("abc"))).not.toThrow();
    expect(() => checkClaims({ ...rack, routeTargetASN: 65009, importRouteTargets: ["65009:2748"], exportRouteTargets: ["65009:2748"] }, claims("abc"))).toThrow(
      /route target 65009:2748 of VPC abc is not claimed \(no RouteTargetClaim rt-65009-2748\)/,
    );
  });

  it.each([
    ["no route-target claim", spec, claims(), /route target 65000:2748 of VPC abc is not claimed \(no RouteTargetClaim rt-65000-2748\)/],
    ["another VPC's route-target claim", spec, claims("10000000abc"), /claimed by VPC 10000000abc \(RouteTargetClaim rt-65000-2748\)/],
    ["a claim whose VPC is not an ID", spec, claims("zz"), /claimed by VPC zz/],
    ["no VNI claim (VXLAN)", { ...spec, encapsulation: "vxlan" as const, vni: 2748 }, claims("abc"), /VNI 2748 of VPC abc is not claimed \(no VNIClaim vni-2748\)/],
  ])("refuses %s", (_what, s, c, msg) => {
    expect(() => checkClaims(s, c)).toThrow(ClaimError);
    expect(() => checkClaims(s, c)).toThrow(msg);
  });
});

describe("nodeRecord", () => {
  it("reads addresses, the locator and the VTEP, and reports annotations it cannot read", () => {
    expect(nodeRecord(node("b", ["fd00:ff:0::b", "192.0.2.2"], { "kvrf.dev/srv6-locator": "fd00:0:b::/48", "kvrf.dev/vtep": "192.0.2.12" }))).toMatchObject({
      name: "b",
      addresses: ["fd00:ff::b", "192.0.2.2"],
      locator: { text: "fd00:0:b::/48", length: 48 },
      vtep: "192.0.2.12",
      routerMac: routerMac("b"),
    });
    const bad = nodeRecord(node("c", [], { "kvrf.dev/srv6-locator": "fd00:0:c::1/48", "kvrf.dev/vtep": "nope" }));
    expect(bad.locator).toBeUndefined();
    expect(bad.vtep).toBeUndefined();
    expect(bad.problem).toMatch(/bits set past \/48.*"nope" is not an IP address/);
  });
});

describe("ignoreReason", () => {
  const nodes = indexNodes(
    [
      node("b", ["fd00:ff::b"], { "kvrf.dev/srv6-locator": "fd00:0:b::/48", "kvrf.dev/vtep": "192.0.2.11" }),
      node("c", ["fd00:ff::c"], { "kvrf.dev/srv6-locator": "fd00:0:c00::/40", "kvrf.dev/vtep": "192.0.2.12" }),
      node("d", ["fd00:ff::d"]),
    ].map(nodeRecord),
  );
  const vpc = 0xabcn;
  const check = (p: RibPath): string | undefined => ignoreReason(p, vpc, 0xabc, nodes)?.reason;

  it("accepts a node's own SID of this VPC, paths of routers that are no node, and nodes that published nothing", () => {
    expect(check(srv6("fd00:ff::b", "fd00:0:b::abc:1"))).toBeUndefined();
    expect(check(srv6("fd00:ff::c", "fd00:0:cff::abc:1"))).toBeUndefined(); // inside c's /40
    expect(check(srv6("fd00:ff::99", "fd00:99::1"))).toBeUndefined();
    expect(check(srv6("fd00:ff::d", "fd00:0:d::abc:1"))).toBeUndefined();
    expect(check({ ...srv6("fd00:ff::c", "fd00:0:b::def:1"), local: true })).toBeUndefined();
  });

  it("ignores SIDs of another VPC, of another node, or outside the advertiser's locator", () => {
    expect(check(srv6("fd00:ff::b", "fd00:0:b::def:1"))).toBe("sid-of-another-vpc");
    expect(check(srv6("fd00:ff::b", "fd00:0:b:0:1::abc:1"))).toBe("sid-of-another-vpc"); // VPC 10000000abc
    expect(check(srv6("fd00:ff::c", "fd00:0:b::abc:1"))).toBe("sid-outside-advertiser-locator");
    expect(check(srv6("fd00:ff::99", "fd00:0:b::abc:1"))).toBe("sid-outside-advertiser-locator");
    expect(check(srv6("fd00:ff::c", "fd00:0:99::abc:1"))).toBe("sid-outside-advertiser-locator");
  });

  it("binds a VTEP to the node whose router MAC the path carries, and the VNI to the VPC", () => {
    expect(check(evpn("192.0.2.11", routerMac("b")))).toBeUndefined();
    expect(check(evpn("198.51.100.1", "02:aa:bb:cc:dd:ee"))).toBeUndefined(); // a gateway that is no node
    expect(check(evpn("192.0.2.11", routerMac("b"), 0xdef))).toBe("vni-of-another-vpc");
    expect(check(evpn("192.0.2.11", routerMac("c")))).toBe("vtep-not-advertisers");
    expect(check(evpn("192.0.2.11", "02:aa:bb:cc:dd:ee"))).toBe("vtep-not-advertisers");
    expect(check(evpn("198.51.100.1", routerMac("b")))).toBe("vtep-not-advertisers");
    expect(ignoreReason(evpn("192.0.2.11", routerMac("c")), vpc, 0xabc, nodes)?.detail).toBe(`VTEP 192.0.2.11 is node b's, but the router MAC ${routerMac("c")} is node c's`);
  });
});

describe("routes from outside the cluster (spec.externalRoutes)", () => {
  const nodes = indexNodes([nodeRecord(node("b", ["fd00:ff::b"], { "kvrf.dev/vtep": "192.0.2.11" }))]);
  it("reads the rules, canonicalizing addresses and VPC IDs, and names what it cannot read", () => {
    const p = externalPolicy({ gateways: [{ address: "FD00:FF:0::99", vpcs: ["abc", "0abc"] }, { address: "gw", vpcs: ["1"] }, { address: "::ffff:198.51.100.50", vpcs: ["xyz"] }] });
    expect([...(p?.gateways?.entries() ?? [])].map(([a, v]) => [a, [...v]])).toEqual([
      ["fd00:ff::99", [0xabcn]],
      ["198.51.100.50", []],
    ]);
    expect(p?.problems).toEqual(['spec.externalRoutes.gateways[1].address: "gw" is not an IP address', expect.stringMatching(/^spec.externalRoutes.gateways\[2\].vpcs/)]);
    expect(externalPolicy(undefined)).toBeUndefined();
  });

  it("judges only paths whose next hop is no node's: a listed gateway into its VPCs, nothing else", () => {
    const p = externalPolicy({ gateways: [{ address: "198.51.100.50", vpcs: ["abc"] }] });
    expect(ignoreReason(evpn("198.51.100.50", "02:00:5e:00:99:01"), 0xabcn, 0xabc, nodes, p)).toBeUndefined();
    expect(ignoreReason(evpn("198.51.100.50", "02:00:5e:00:99:01", 0xdef), 0xdefn, 0xdef, nodes, p)).toEqual({
      reason: "gateway-not-for-vpc",
      detail: "gateway 198.51.100.50 may route into VPC abc, not def",
    });
    expect(ignoreReason(evpn("198.51.100.51", "02:00:5e:00:99:02"), 0xabcn, 0xabc, nodes, p)?.reason).toBe("not-a-gateway");
    // A node's VTEP is no outside route, whatever the rules; an empty list allows no gateway.
    expect(ignoreReason(evpn("192.0.2.11", routerMac("b")), 0xabcn, 0xabc, nodes, externalPolicy({ gateways: [] }))).toBeUndefined();
    expect(ignoreReason(evpn("198.51.100.50", "02:00:5e:00:99:01"), 0xabcn, 0xabc, nodes, externalPolicy({ gateways: [] }))?.reason).toBe("not-a-gateway");
    // Only a limit: every next hop may send, up to it.
    expect(ignoreReason(evpn("198.51.100.51", "02:00:5e:00:99:02"), 0xabcn, 0xabc, nodes, externalPolicy({ maxPrefixesPerVPC: 1 }))).toBeUndefined();
  });

  it("keeps the first prefixes from outside in prefix order, counting a prefix with several paths once", () => {
    const at = (prefix: string, nextHop: string): ReturnType<typeof evpn> => ({ ...evpn(nextHop, "02:00:5e:00:99:01"), prefix });
    const paths = [at("10.9.0.0/16", "198.51.100.50"), at("0.0.0.0/0", "198.51.100.50"), at("0.0.0.0/0", "198.51.100.51"), at("10.1.1.7/32", "192.0.2.11"), at("172.16.0.0/12", "198.51.100.50")];
    const over = overExternalLimit(paths, 2, nodes);
    expect([...over.keys()].map((p) => p.prefix)).toEqual(["172.16.0.0/12"]);
    expect(overExternalLimit(paths, 3, nodes).size).toBe(0);
    expect(overExternalLimit(paths, undefined, nodes).size).toBe(0);
    expect([...overExternalLimit(paths, 0, nodes).keys()].map((p) => p.prefix).sort()).toEqual(["0.0.0.0/0", "0.0.0.0/0", "10.9.0.0/16", "172.16.0.0/12"]);
  });
});
