// kvrfd's VXLAN side, pure: local paths as EVPN type-5 routes, remote type-5 paths as routes via
// the remote VTEP on the VPC's VXLAN device, the VTEPs' neighbour and FDB entries, and the
// unusable paths a node must report rather than drop.
import { describe, expect, it } from "vitest";
import type { BGPVRFInstance } from "../../shared/api-types.js";
import { desiredVrf, IdentityError, SpecError } from "./desired.js";
import { parseOwnedRoutes } from "../kernel/kernel-routes.js";
import { planRoutes, planVrf, remoteRoutes, routeCommands, vtepsOf, type RouteOutlets } from "./planner.js";
import type { VrfPath } from "../gobgp/speaker.js";
import { planVteps, vtepCommands, vtepNeighbours, vtepNextHop } from "../kernel/vtep.js";

const obj = (spec: Partial<BGPVRFInstance["spec"]> = {}): BGPVRFInstance => ({
  apiVersion: "kvrf.dev/v1alpha1",
  kind: "BGPVRFInstance",
  metadata: { name: "iad.vpc-a1" },
  spec: {
    nodeName: "iad",
    vpc: "a1",
    asn: 65000,
    routeDistinguisher: "65000:161",
    importRouteTargets: ["65000:161"],
    exportRouteTargets: ["65000:161"],
    table: 161,
    encapsulation: "vxlan",
    vni: 161,
    vtep: "198.51.100.11",
    routerMac: "02:AA:BB:CC:DD:EE",
    attachments: [
      { containerID: "c1", ifName: "eth0", attachment: "1", prefixes: ["10.10.11.2/32", "fd10:a1:11::2/128"] },
      { containerID: "c2", ifName: "eth0", attachment: "2", prefixes: ["10.10.11.3/32"] },
    ],
    ...spec,
  },
});

describe("desired local paths of a VXLAN VPC", () => {
  it("are EVPN type-5 paths with the VPC's VNI, to the node's VTEP, with its router MAC (no SID, no underlay needed)", () => {
    const d = desiredVrf(obj(), undefined);
    expect(d.localPaths).toEqual([
      { vrf: "vpc-a1", prefix: "10.10.11.2/32", nextHop: "198.51.100.11", encap: "vxlan", vni: 161, routerMac: "02:aa:bb:cc:dd:ee" },
      { vrf: "vpc-a1", prefix: "10.10.11.3/32", nextHop: "198.51.100.11", encap: "vxlan", vni: 161, routerMac: "02:aa:bb:cc:dd:ee" },
      { vrf: "vpc-a1", prefix: "fd10:a1:11::2/128", nextHop: "198.51.100.11", encap: "vxlan", vni: 161, routerMac: "02:aa:bb:cc:dd:ee" },
    ]);
  });

  it("refuses a VXLAN object without a usable VNI, VTEP or router MAC, naming the field", () => {
    expect(() => desiredVrf(obj({ vni: 0 }), undefined)).toThrow(new SpecError("spec.vni: 0 is not a VNI (1 to 16777215)"));
    expect(() => desiredVrf(obj({ vtep: "node-a" }), undefined)).toThrow(/^spec\.vtep: node-a/);
    expect(() => desiredVrf(obj({ routerMac: "02:00" }), undefined)).toThrow(/^spec\.routerMac: 02:00/);
    // SRv6 still needs the underlay's next hop.
    expect(() => desiredVrf(obj({ encapsulation: "srv6" }), undefined)).toThrow(/underlay next hop is unknown/);
  });

  it("refuses another VPC's VNI as a routing identity error (it would import that VPC's routes)", () => {
    expect(() => desiredVrf(obj({ vni: 162 }), undefined)).toThrow(new IdentityError("spec.vni: 162 is not VPC a1's 161 (its low 24 bits)"));
    // Derivations truncate (RD/RT/table to 32 bits, VNI to 24): a 48-bit VPC that shares them with
    // a1 is a consistent identity here; the API server's claims keep the two VPCs apart.
    expect(desiredVrf(obj({ vpc: "1000000a1" }), undefined).vrf.name).toBe("vpc-1000000a1");
    expect(() => desiredVrf(obj({ vpc: "1000000a1", vni: 0xa1 + 1 }), undefined)).toThrow(/spec.vni: 162 is not VPC 1000000a1's 161/);
  });

  it("derives the route target from the cluster-wide route-target ASN when the object has one, the RD from its own ASN", () => {
    const ebgp = { asn: 65001, routeTargetASN: 65000, routeDistinguisher: "65001:161", importRouteTargets: ["65000:161"], exportRouteTargets: ["65000:161"] };
    const d = desiredVrf(obj(ebgp), undefined);
    expect(d.vrf).toMatchObject({ rd: { asn: 65001, assigned: 161 }, importRts: [{ asn: 65000, assigned: 161 }], exportRts: [{ asn: 65000, assigned: 161 }] });
    expect(() => desiredVrf(obj({ ...ebgp, importRouteTargets: ["65001:161"] }), undefined)).toThrow(
      new IdentityError('spec.importRouteTargets: ["65001:161"] is not VPC a1\'s ["65000:161"] (ASN 65001, route-target ASN 65000, VPC a1)'),
    );
    // Without routeTargetASN the route target is the object's own ASN's.
    const { routeTargetASN: _rt, ...ibgp } = ebgp;
    expect(() => desiredVrf(obj(ibgp), undefined)).toThrow(/spec.importRouteTargets: \["65000:161"\] is not VPC a1's \["65001:161"\]/);
    expect(() => desiredVrf(obj({ ...ebgp, vpc: "1000a1", routeTargetASN: 4200000001 }), undefined)).toThrow(/^spec.routeTargetASN 4200000001 cannot encode/);
  });

  it("withdraws the VPN route and adds the EVPN one when a prefix moves from SRv6 to VXLAN", () => {
    const desired = desiredVrf(obj({ attachments: [{ containerID: "c1", ifName: "eth0", attachment: "1", prefixes: ["10.10.11.2/32"] }] }), undefined);
    const srv6 = { vrf: "vpc-a1", prefix: "10.10.11.2/32", nextHop: "fd00:ff::11", encap: "srv6" as const, sid: "fd00:0:11::a1:1", behavior: 20 as const };
    const actions = planVrf(desired, { vrf: desired.vrf, localPaths: [srv6] });
    expect(actions.map((a) => `${a.op} ${"path" in a ? `${a.path.encap} ${a.path.prefix}` : ""}`)).toEqual(["delete-path srv6 10.10.11.2/32", "add-path vxlan 10.10.11.2/32"]);
    // And nothing at all once it is there, also for an IPv4 next hop.
    expect(planVrf(desired, { vrf: desired.vrf, localPaths: desired.localPaths })).toEqual([]);
    const moved = { ...desired, localPaths: desired.localPaths.map((p) => ({ ...p, nextHop: "198.51.100.99" })) };
    expect(planVrf(moved, { vrf: desired.vrf, localPaths: desired.localPaths }).map((a) => a.op)).toEqual(["add-path"]);
  });
});

describe("remote type-5 paths in the kernel", () => {
  const path = (prefix: string, nextHop: string, over: Partial<VrfPath> = {}): VrfPath => ({
    vrf: "vpc-a1",
    prefix,
    nextHop,
    best: true,
    local: false,
    neighbor: "198.51.100.1",
    evpn: { vni: 161, routerMac: "02:00:00:00:00:12" },
    ...over,
  });
  const outlets: RouteOutlets = { srv6: { unusable: "no SRv6 here" }, vxlan: { dev: "kvx-aaaaaaaafb", ipv4ViaIpv6: true } };

  it("go via the remote VTEP on the VPC's VXLAN device: IPv4 over IPv4, IPv6 over ::ffff:VTEP, both over a link-local key for an IPv6 VTEP", () => {
    const { routes, unusable } = remoteRoutes([path("10.10.12.2/32", "198.51.100.12"), path("fd10:a1:12::2/128", "198.51.100.12"), path("10.10.13.2/32", "fd00:ff::13")], 161, outlets);
    expect(unusable).toEqual([]);
    const key6 = vtepNextHop(6, "fd00:ff::13").via;
    expect(key6).toMatch(/^fe80::/);
    expect(routes).toEqual([
      { table: 161, prefix: "10.10.12.2/32", sid: "", dev: "kvx-aaaaaaaafb", kind: "vxlan", via: "198.51.100.12", vtep: "198.51.100.12", routerMac: "02:00:00:00:00:12" },
      { table: 161, prefix: "10.10.13.2/32", sid: "", dev: "kvx-aaaaaaaafb", kind: "vxlan", via: key6, vtep: "fd00:ff::13", routerMac: "02:00:00:00:00:12" },
      { table: 161, prefix: "fd10:a1:12::2/128", sid: "", dev: "kvx-aaaaaaaafb", kind: "vxlan", via: "::ffff:c633:640c", vtep: "198.51.100.12", routerMac: "02:00:00:00:00:12" },
    ]);
    expect(routeCommands({ add: routes, replace: [], remove: [] }, 241)).toEqual([
      "route add 10.10.12.2/32 via 198.51.100.12 dev kvx-aaaaaaaafb onlink table 161 proto 241",
      `route add 10.10.13.2/32 via inet6 ${key6} dev kvx-aaaaaaaafb onlink table 161 proto 241`,
      "route add fd10:a1:12::2/128 via ::ffff:c633:640c dev kvx-aaaaaaaafb onlink table 161 proto 241",
    ]);
    expect(vtepsOf(routes)).toEqual([
      { dev: "kvx-aaaaaaaafb", vtep: "198.51.100.12", routerMac: "02:00:00:00:00:12" },
      { dev: "kvx-aaaaaaaafb", vtep: "fd00:ff::13", routerMac: "02:00:00:00:00:12" },
    ]);
  });

  it("never sends to a VTEP of the other family than the node's own (a VXLAN device has one)", () => {
    const { routes, unusable } = remoteRoutes([path("10.10.13.2/32", "fd00:ff::13"), path("10.10.12.2/32", "198.51.100.12")], 161, { ...outlets, vxlan: { dev: "kvx-aaaaaaaafb", family: 4, ipv4ViaIpv6: true } });
    expect(routes.map((r) => r.prefix)).toEqual(["10.10.12.2/32"]);
    expect(unusable).toEqual(["10.10.13.2/32: best path from 198.51.100.1 is behind the IPv6 VTEP fd00:ff::13, but this node's VTEP is IPv4"]);
  });

  it("reports, never drops, what this node cannot reach: another encapsulation, a bad path, IPv4 via IPv6 without kernel support", () => {
    const { evpn: _none, ...srv6Base } = path("10.10.14.2/32", "fd00:ff::14", { sid: "fd00:0:14::a1:1", neighbor: "fd00:ff::1" });
    const srv6Path: VrfPath = srv6Base;
    const { routes, unusable } = remoteRoutes(
      [srv6Path, path("10.10.15.2/32", "198.51.100.15", { problem: "no router MAC" }), path("10.10.13.2/32", "fd00:ff::13")],
      161,
      { ...outlets, vxlan: { dev: "kvx-aaaaaaaafb", ipv4ViaIpv6: false } },
    );
    expect(routes).toEqual([]);
    expect(unusable).toEqual([
      "10.10.14.2/32: best path from fd00:ff::1 is SRv6, but no SRv6 here",
      "10.10.15.2/32: best path from 198.51.100.1 cannot be used: no router MAC",
      "10.10.13.2/32: best path from 198.51.100.1 is an IPv4 prefix behind an IPv6 VTEP, and this kernel cannot route IPv4 via IPv6 next hops (Linux 5.2 or newer)",
    ]);
    // A node attaching the VPC with SRv6 has no VXLAN device to send type-5 paths through.
    const srv6Node = remoteRoutes([path("10.10.12.2/32", "198.51.100.12")], 161, "fab0");
    expect(srv6Node.unusable).toEqual(["10.10.12.2/32: best path from 198.51.100.1 is VXLAN (EVPN), but this node's VPC has no VXLAN device"]);
  });

  it("reads its routes back from the kernel and plans nothing when they are there", () => {
    const { routes } = remoteRoutes([path("10.10.12.2/32", "198.51.100.12"), path("fd10:a1:12::2/128", "198.51.100.12"), path("10.10.13.2/32", "fd00:ff::13")], 161, outlets);
    const key6 = vtepNextHop(4, "fd00:ff::13").via;
    // What `ip -j route show table all proto 241` prints for them.
    const seen = parseOwnedRoutes([
      { dst: "10.10.12.2", gateway: "198.51.100.12", dev: "kvx-aaaaaaaafb", table: "161" },
      { dst: "10.10.13.2", via: { family: "inet6", host: key6 }, dev: "kvx-aaaaaaaafb", table: "161" },
      { dst: "fd10:a1:12::2", gateway: "::ffff:198.51.100.12", dev: "kvx-aaaaaaaafb", table: "161" },
    ]);
    expect(seen.every((r) => r.kind === "vxlan")).toBe(true);
    expect(planRoutes(routes, seen)).toEqual({ add: [], replace: [], remove: [] });
    // Another VTEP for a prefix: replaced, not added next to it.
    const moved = remoteRoutes([path("10.10.12.2/32", "198.51.100.99")], 161, outlets).routes;
    expect(planRoutes(moved, seen.slice(0, 1)).replace.map((r) => r.via)).toEqual(["198.51.100.99"]);
  });
});

describe("remote VTEP entries", () => {
  const e = (vtep: string, routerMac = "02:00:00:00:00:12") => ({ dev: "kvx-aaaaaaaafb", vtep, routerMac });

  it("adds the missing and changed ones and removes the unused, but keeps what a held route still uses", () => {
    const observed = [e("198.51.100.12"), e("198.51.100.13"), e("198.51.100.14"), e("198.51.100.15", "02:00:00:00:00:99")];
    const held = new Set([`kvx-aaaaaaaafb ${vtepNextHop(6, "198.51.100.14").via}`]);
    const plan = planVteps([e("198.51.100.12"), e("198.51.100.15"), e("198.51.100.16")], observed, held);
    expect(plan.add.map((x) => x.vtep)).toEqual(["198.51.100.15", "198.51.100.16"]);
    expect(plan.remove.map((x) => x.vtep)).toEqual(["198.51.100.13"]);
  });

  it("writes a permanent neighbour per next-hop key (marked proto 241) and one FDB entry per VTEP", () => {
    expect(vtepNeighbours("198.51.100.12")).toEqual(["198.51.100.12", "::ffff:c633:640c"]);
    const c = vtepCommands({ add: [e("198.51.100.12")], remove: [e("fd00:ff::13")] }, 241);
    expect(c.ipAdd).toEqual([
      "neigh replace 198.51.100.12 lladdr 02:00:00:00:00:12 dev kvx-aaaaaaaafb nud permanent protocol 241",
      "neigh replace ::ffff:c633:640c lladdr 02:00:00:00:00:12 dev kvx-aaaaaaaafb nud permanent protocol 241",
    ]);
    expect(c.bridgeAdd).toEqual(["fdb replace 02:00:00:00:00:12 dev kvx-aaaaaaaafb dst 198.51.100.12 self permanent"]);
    expect(c.ipRemove).toEqual([`neigh del ${vtepNextHop(6, "fd00:ff::13").via} dev kvx-aaaaaaaafb`]);
    expect(c.bridgeRemove).toEqual(["fdb del 02:00:00:00:00:12 dev kvx-aaaaaaaafb dst fd00:ff::13 self"]);
  });
});
