import { describe, expect, it } from "vitest";
import type { BGPVRFInstance } from "../../shared/api-types.js";
import { canonicalPrefix, desiredVrf, SpecError } from "./desired.js";
import { findConflicts, planRoutes, planVrf, remoteRoutes, routeCommands, sameVrf, vrfImports, type KernelRoute } from "./planner.js";
import { srv6Behavior, type Srv6LocalPath, type RibPath, type Vrf, type VrfPath } from "../gobgp/speaker.js";

const nh = "fd00:ff::a";

function obj(name: string, over: Partial<BGPVRFInstance["spec"]> = {}, meta: Partial<BGPVRFInstance["metadata"]> = {}): BGPVRFInstance {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPVRFInstance",
    metadata: { name, creationTimestamp: new Date("2026-01-01T00:00:00Z"), ...meta },
    spec: {
      nodeName: "n1",
      vpc: "abc",
      asn: 65000,
      routeDistinguisher: "65000:2748",
      importRouteTargets: ["65000:2748"],
      exportRouteTargets: ["65000:2748"],
      table: 2748,
      attachments: [],
      ...over,
    },
  };
}

const vrf = (over: Partial<Vrf> = {}): Vrf => ({
  name: "vpc-abc",
  rd: { type: 0, asn: 65000, assigned: 2748 },
  importRts: [{ type: 0, asn: 65000, assigned: 2748 }],
  exportRts: [{ type: 0, asn: 65000, assigned: 2748 }],
  id: 2748,
  ...over,
});

const path = (prefix: string, over: Partial<Srv6LocalPath> = {}): Srv6LocalPath => ({
  vrf: "vpc-abc",
  prefix,
  nextHop: nh,
  encap: "srv6",
  sid: "fd00:0:a::abc:1",
  behavior: srv6Behavior.endDT46,
  ...over,
});

describe("desiredVrf", () => {
  it("originates every prefix with End.DT46 when attachments have one SID (VRF-device mode)", () => {
    const d = desiredVrf(obj("o", { attachments: [{ containerID: "c1", ifName: "eth0", attachment: "1", sid: "fd00:0:a:0:0:abc:1:0", prefixes: ["10.1.0.5/32", "2001:db8::5/128"] }] }), nh);
    expect(d.vrf).toEqual(vrf());
    expect(d.localPaths).toEqual([
      path("10.1.0.5/32", { sid: "fd00:0:a::abc:1:0" }),
      path("2001:db8::5/128", { sid: "fd00:0:a::abc:1:0" }),
    ]);
  });

  it("uses End.DX4 with sid and End.DX6 with sid6 in policy-routing mode", () => {
    const d = desiredVrf(
      obj("o", { attachments: [{ containerID: "c1", ifName: "eth0", attachment: "1", sid: "fd00::4", sid6: "fd00::6", prefixes: ["10.1.0.5/32", "2001:db8::5/128"] }] }),
      nh,
    );
    expect(d.localPaths.map((p) => [p.prefix, ...(p.encap === "srv6" ? [p.sid, p.behavior] : [])])).toEqual([
      ["10.1.0.5/32", "fd00::4", srv6Behavior.endDX4],
      ["2001:db8::5/128", "fd00::6", srv6Behavior.endDX6],
    ]);
  });

  it("skips prefixes without a SID or not a CIDR, and duplicates, and says why", () => {
    const d = desiredVrf(
      obj("o", {
        attachments: [
          { containerID: "c1", ifName: "eth0", attachment: "1", prefixes: ["10.1.0.5/32"] },
          { containerID: "c2", ifName: "eth0", attachment: "2", sid: "fd00::2", prefixes: ["10.1.0.6", "10.1.0.7/32"] },
          { containerID: "c3", ifName: "eth0", attachment: "3", sid: "fd00::3", prefixes: ["10.1.0.7/32"] },
        ],
      }),
      nh,
    );
    expect(d.localPaths.map((p) => p.prefix)).toEqual(["10.1.0.7/32"]);
    expect(d.skipped).toEqual([
      "attachment c1/eth0: prefix 10.1.0.5/32 has no valid SRv6 SID",
      'attachment c2/eth0: prefix "10.1.0.6" is not a CIDR',
      "attachment c3/eth0: prefix 10.1.0.7/32 is already originated by another attachment",
    ]);
  });

  it.each([
    ["a 4-byte ASN RD with a 32-bit number", { routeDistinguisher: "4200000001:70000" }, /16 bits/],
    ["an RD with an ASN above 32 bits", { routeDistinguisher: "4294967296:1" }, /larger than 4294967295/],
    ["no import RT", { importRouteTargets: [] }, /importRouteTargets/],
    ["the main table", { table: 254 }, /reserved/],
    ["a VPC that is not hex", { vpc: "xyz" }, /spec.vpc/],
  ])("refuses %s", (_name, over, msg) => {
    expect(() => desiredVrf(obj("o", over), nh)).toThrow(SpecError);
    expect(() => desiredVrf(obj("o", over), nh)).toThrow(msg);
  });

  it("keeps a 4-byte ASN with a 16-bit number as a type-2 RD", () => {
    const rd = "4200000001:2748";
    expect(desiredVrf(obj("o", { asn: 4200000001, routeDistinguisher: rd, importRouteTargets: [rd], exportRouteTargets: [rd] }), nh).vrf.rd).toEqual({
      type: 2,
      asn: 4200000001,
      assigned: 2748,
    });
  });

  it("canonicalises prefixes", () => {
    expect(canonicalPrefix("10.1.2.3/24")).toBe("10.1.2.0/24");
    expect(canonicalPrefix("2001:DB8:0:0::1/64")).toBe("2001:db8::/64");
    expect(canonicalPrefix("10.1.2.3")).toBeUndefined();
  });
});

describe("planVrf", () => {
  const desired = { key: "o", vrf: vrf(), localPaths: [path("10.0.0.1/32"), path("10.0.0.2/32")], skipped: [] };
  it.each([
    ["nothing there: add the VRF and every path", desired, { localPaths: [] }, ["add-vrf vpc-abc", "add-path 10.0.0.1/32", "add-path 10.0.0.2/32"]],
    ["everything right: nothing", desired, { vrf: vrf(), localPaths: [path("10.0.0.1/32"), path("10.0.0.2/32")] }, []],
    ["one path missing, one extra", desired, { vrf: vrf(), localPaths: [path("10.0.0.1/32"), path("10.0.0.3/32")] }, ["delete-path 10.0.0.3/32", "add-path 10.0.0.2/32"]],
    [
      "a path's SID changed: re-add (implicit replace)",
      desired,
      { vrf: vrf(), localPaths: [path("10.0.0.1/32", { sid: "fd00::99" }), path("10.0.0.2/32")] },
      ["add-path 10.0.0.1/32"],
    ],
    [
      "import RT changed: replace the VRF",
      desired,
      { vrf: vrf({ importRts: [{ type: 0, asn: 65000, assigned: 1 }] }), localPaths: [path("10.0.0.1/32"), path("10.0.0.2/32")] },
      ["delete-vrf vpc-abc", "add-vrf vpc-abc", "add-path 10.0.0.1/32", "add-path 10.0.0.2/32"],
    ],
    ["RD type changed: replace", desired, { vrf: vrf({ rd: { type: 2, asn: 65000, assigned: 2748 } }), localPaths: [] }, ["delete-vrf vpc-abc", "add-vrf vpc-abc", "add-path 10.0.0.1/32", "add-path 10.0.0.2/32"]],
    ["gone: delete the VRF", undefined, { vrf: vrf(), localPaths: [path("10.0.0.1/32")] }, ["delete-vrf vpc-abc"]],
    ["gone and absent: nothing", undefined, { localPaths: [] }, []],
  ] as const)("%s", (_name, d, observed, want) => {
    const got = planVrf(d, observed).map((a) => (a.op === "delete-vrf" ? `${a.op} ${a.name}` : a.op === "add-vrf" ? `${a.op} ${a.vrf.name}` : `${a.op} ${a.path.prefix}`));
    expect(got).toEqual(want);
  });

  it("compares route-target sets regardless of order and duplicates", () => {
    const a = vrf({ importRts: [{ type: 0, asn: 1, assigned: 1 }, { type: 0, asn: 2, assigned: 2 }] });
    const b = vrf({ importRts: [{ type: 0, asn: 2, assigned: 2 }, { type: 0, asn: 1, assigned: 1 }, { type: 0, asn: 1, assigned: 1 }] });
    expect(sameVrf(a, b)).toBe(true);
  });
});

describe("routeCommands", () => {
  it("adds, replaces and removes throw routes by their type", () => {
    const t = { table: 7, prefix: "fd00:0:b::1/128", sid: "", dev: "", kind: "throw" as const };
    expect(routeCommands({ add: [t], replace: [], remove: [t] }, 241)).toEqual([
      "route del throw fd00:0:b::1/128 table 7 proto 241",
      "route add throw fd00:0:b::1/128 table 7 proto 241",
    ]);
  });
});

describe("remoteRoutes", () => {
  const p = (prefix: string, over: Partial<VrfPath> = {}): VrfPath => ({ vrf: "v", prefix, nextHop: "fd00::b", sid: "fd00:0:b::1", best: true, local: false, neighbor: "fd00::b", ...over });
  it("keeps remote best paths with a SID, one per prefix", () => {
    const { routes, unusable } = remoteRoutes(
      [p("10.0.0.1/32"), p("10.0.0.1/32", { best: false, sid: "fd00::2" }), p("10.0.0.2/32", { local: true }), p("10.0.0.3/32", { sid: undefined as unknown as string }), p("2001:db8::1/128", { sid: "FD00:0:B:0::1" })],
      100,
      "fab0",
    );
    expect(routes).toEqual([
      { table: 100, prefix: "10.0.0.1/32", sid: "fd00:0:b::1", dev: "fab0" },
      { table: 100, prefix: "2001:db8::1/128", sid: "fd00:0:b::1", dev: "fab0" },
      // One throw route per remote SID, so the encapsulated packet's lookup leaves the VPC table.
      { table: 100, prefix: "fd00:0:b::1/128", sid: "", dev: "", kind: "throw" },
    ]);
    expect(unusable).toEqual(["10.0.0.3/32: best path from fd00::b carries no SRv6 SID"]);
  });
});

describe("vrfImports (what a VRF imports from the global VPN tables)", () => {
  const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
  // A best path of a VPN destination: RD, prefix, route targets; remote unless said otherwise.
  const rib = (rd: number, prefix: string, over: { [K in keyof RibPath]?: RibPath[K] | undefined } = {}): RibPath => {
    const p: { [K in keyof RibPath]?: RibPath[K] | undefined } = {
      family: prefix.includes(":") ? "ipv6" : "ipv4",
      rd: rt(rd),
      prefix,
      rts: [rt(rd)],
      nextHop: `fd00:ff::${rd}`,
      sid: `fd00:0:${rd}::1`,
      behavior: 20,
      best: true,
      local: false,
      neighbor: "fd00:ff::1",
      withdraw: false,
      ...over,
    };
    if (p.neighbor === undefined) delete p.neighbor;
    return p as RibPath;
  };
  // The kernel routes they make, as "prefix sid" lines (remoteRoutes does the rest).
  const routes = (importRts: number[], candidates: RibPath[], own: string[] = []): string[] =>
    remoteRoutes(vrfImports("v", importRts.map(rt), candidates, new Set(own)), 7, "fab0").routes.filter((r) => r.kind === undefined).map((r) => `${r.prefix} ${r.sid}`);

  it.each([
    ["imports by route target only: another VPC's overlapping prefix stays out", [1], [rib(1, "10.0.0.1/32"), rib(2, "10.0.0.1/32"), rib(2, "10.0.0.2/32")], [], ["10.0.0.1/32 fd00:0:1::1"]],
    ["any one of the VRF's import route targets will do", [5, 2], [rib(1, "10.0.0.1/32", { rts: [rt(9), rt(2)] })], [], ["10.0.0.1/32 fd00:0:1::1"]],
    ["several RDs with one prefix: the lowest RD wins", [1, 2], [rib(2, "10.0.0.1/32", { rts: [rt(1)] }), rib(1, "10.0.0.1/32")], [], ["10.0.0.1/32 fd00:0:1::1"]],
    [
      "RD layouts order by type, then administrator, then number",
      [1],
      [
        rib(9, "10.0.0.1/32", { rd: { type: 2, asn: 4200000001, assigned: 1 }, rts: [rt(1)], sid: "fd00::2" }),
        rib(9, "10.0.0.1/32", { rd: { type: 1, address: "192.0.2.1", assigned: 1 }, rts: [rt(1)], sid: "fd00::1" }),
      ],
      [],
      ["10.0.0.1/32 fd00::1"],
    ],
    ["our own origination in this VRF wins: no kernel route", [1], [rib(1, "10.0.0.1/32")], ["10.0.0.1/32"], []],
    ["a local path imported here wins too (gobgpd prefers local paths)", [1, 2], [rib(1, "10.0.0.1/32"), rib(2, "10.0.0.1/32", { rts: [rt(1)], local: true, neighbor: undefined })], [], []],
    ["withdrawals are not imported", [1], [rib(1, "10.0.0.1/32", { withdraw: true })], [], []],
    ["both families", [1], [rib(1, "fd10::1/128"), rib(1, "10.0.0.1/32")], [], ["10.0.0.1/32 fd00:0:1::1", "fd10::1/128 fd00:0:1::1"]],
  ] as const)("%s", (_what, importRts, candidates, own, want) => {
    expect(routes([...importRts], [...candidates], [...own])).toEqual(want);
  });

  it("marks one best path per prefix, deterministically whatever the order of the candidates", () => {
    const cands = [rib(3, "10.0.0.1/32", { rts: [rt(1)] }), rib(1, "10.0.0.1/32"), rib(2, "10.0.0.1/32", { rts: [rt(1)] })];
    const a = vrfImports("v", [rt(1)], cands);
    const b = vrfImports("v", [rt(1)], [...cands].reverse());
    expect(a).toEqual(b);
    expect(a.filter((p) => p.best).map((p) => p.sid)).toEqual(["fd00:0:1::1"]);
    expect(a).toHaveLength(3);
  });
});

describe("planRoutes", () => {
  const r = (prefix: string, sid = "fd00::1", table = 100): KernelRoute => ({ table, prefix, sid, dev: "fab0" });
  const since = (x: KernelRoute, t: number): KernelRoute => ({ ...x, since: t });
  it.each([
    ["adds the missing, replaces the changed, removes the stale", [r("10.0.0.1/32"), r("10.0.0.2/32", "fd00::2")], [r("10.0.0.2/32"), r("10.0.0.3/32")], undefined, { add: ["10.0.0.1/32"], replace: ["10.0.0.2/32"], remove: ["10.0.0.3/32"] }],
    ["leaves right routes alone (no churn)", [r("10.0.0.1/32")], [r("10.0.0.1/32")], undefined, { add: [], replace: [], remove: [] }],
    [
      "holds removals of routes older than gobgpd's restart, not of routes learned since",
      [],
      [r("10.0.0.1/32"), since(r("10.0.0.2/32"), 500), since(r("10.0.0.3/32"), 1500)],
      1000,
      { add: [], replace: [], remove: ["10.0.0.3/32"] },
    ],
    ["the same prefix in another table is another route", [r("10.0.0.1/32", "fd00::1", 101)], [r("10.0.0.1/32")], undefined, { add: ["10.0.0.1/32"], replace: [], remove: ["10.0.0.1/32"] }],
  ] as const)("%s", (_n, desired, observed, hold, want) => {
    const plan = planRoutes(desired, observed, hold);
    expect({ add: plan.add.map((x) => x.prefix), replace: plan.replace.map((x) => x.prefix), remove: plan.remove.map((x) => x.prefix) }).toEqual(want);
  });

  it("renders iproute2 batch lines that only ever delete proto 241", () => {
    expect(routeCommands({ add: [r("10.0.0.1/32")], replace: [r("2001:db8::/64")], remove: [r("10.0.0.3/32")] }, 241)).toEqual([
      "route del 10.0.0.3/32 table 100 proto 241",
      "route replace 2001:db8::/64 encap seg6 mode encap segs fd00::1 dev fab0 table 100 proto 241",
      "route add 10.0.0.1/32 encap seg6 mode encap segs fd00::1 dev fab0 table 100 proto 241",
    ]);
  });
});

describe("findConflicts", () => {
  it("first come first served for VPC, RD and table", () => {
    const c = findConflicts([
      obj("b", { vpc: "abc" }, { creationTimestamp: new Date("2026-01-02T00:00:00Z") }),
      obj("a", { vpc: "abc" }),
      obj("c", { vpc: "def", routeDistinguisher: "65000:2748", table: 2000 }, { creationTimestamp: new Date("2026-01-03T00:00:00Z") }),
      obj("d", { vpc: "123", routeDistinguisher: "65000:291", table: 2748 }, { creationTimestamp: new Date("2026-01-04T00:00:00Z") }),
      obj("e", { vpc: "456", routeDistinguisher: "65000:1110", table: 3000 }),
      obj("f", { vpc: "789", routeDistinguisher: "65000:1929", table: 2748 }, { creationTimestamp: new Date("2026-01-05T00:00:00Z"), deletionTimestamp: new Date("2026-01-06T00:00:00Z") }),
    ]);
    expect(Object.fromEntries([...c].map(([k, v]) => [k, [v.reason, v.winner]]))).toEqual({
      b: ["VPCConflict", "a"],
      c: ["RouteDistinguisherConflict", "a"],
      d: ["TableConflict", "a"],
    });
  });
});
