import { describe, expect, it } from "vitest";
import type { BGPInstanceSpec } from "./bgp-instance.js";
import { applySessionPolicy, complementPattern, gobgpRtText, peerResets, peerRestrictions, sessionPolicy, withKvrfPolicy } from "./session-policy.js";
import { FakeSpeaker } from "../testing/fake-speaker.js";

const spec = (peers: NonNullable<BGPInstanceSpec["peers"]>, extra: Partial<BGPInstanceSpec> = {}): BGPInstanceSpec => ({ nodeSelector: {}, asn: 65000, peers, ...extra });

describe("peerRestrictions", () => {
  it("takes each restricted peer's VPCs as route targets of the route-target ASN; absent vpcs is no restriction, [] is one", () => {
    const { restrictions, problems } = peerRestrictions(
      spec(
        [
          { address: "192.0.2.2", asn: 65100, vpcs: ["14", "a", "0xA"] },
          { address: "192.0.2.3", asn: 65100 },
          { address: "2001:db8::1", asn: 65100, vpcs: [] },
          { address: "192.0.2.2", asn: 1, vpcs: ["ff"] },
        ],
        { routeTargetASN: 64999 },
      ),
    );
    expect(problems).toEqual([]);
    expect(restrictions).toEqual([
      {
        address: "192.0.2.2",
        vpcs: ["14", "a"],
        rts: [
          { type: 0, asn: 64999, assigned: 10 },
          { type: 0, asn: 64999, assigned: 20 },
        ],
        exportRoutes: "All",
      },
      { address: "2001:db8::1", vpcs: [], rts: [], exportRoutes: "All" },
    ]);
  });

  it("restricts a peer with exportRoutes Pods, with or without vpcs; exportRoutes All alone is no restriction", () => {
    const { restrictions } = peerRestrictions(
      spec([
        { address: "192.0.2.2", asn: 65100, exportRoutes: "Pods" },
        { address: "192.0.2.3", asn: 65100, exportRoutes: "All" },
        { address: "192.0.2.4", asn: 65100, vpcs: ["a"], exportRoutes: "Pods" },
      ]),
    );
    expect(restrictions).toEqual([
      { address: "192.0.2.2", exportRoutes: "Pods" },
      { address: "192.0.2.4", vpcs: ["a"], rts: [{ type: 0, asn: 65000, assigned: 10 }], exportRoutes: "Pods" },
    ]);
  });

  it("leaves out, and names, a VPC whose route target a 4-byte route-target ASN cannot encode", () => {
    const { restrictions, problems } = peerRestrictions(spec([{ address: "192.0.2.2", asn: 65100, vpcs: ["a", "10000"] }], { routeTargetASN: 4200000000 }));
    expect(restrictions[0]?.rts).toEqual([{ type: 2, asn: 4200000000, assigned: 10 }]);
    expect(problems).toEqual([expect.stringMatching(/^peer 192\.0\.2\.2: VPC 10000 left out: route target 4200000000:65536 cannot be encoded/)]);
  });
});

describe("gobgpRtText", () => {
  it("is gobgpd's text of each layout (asdot for a 4-byte ASN)", () => {
    expect(gobgpRtText({ type: 0, asn: 65000, assigned: 4294967295 })).toBe("65000:4294967295");
    expect(gobgpRtText({ type: 1, address: "192.0.2.1", assigned: 7 })).toBe("192.0.2.1:7");
    expect(gobgpRtText({ type: 2, asn: 4200000000, assigned: 7 })).toBe("64086.59904:7");
    expect(gobgpRtText({ type: 2, asn: 65536, assigned: 1 })).toBe("1.0:1");
  });
});

describe("complementPattern", () => {
  // Every string over the route-target alphabet up to a length, and a few longer ones.
  const alphabet = ["0", "1", "2", ":", "."];
  const all = (n: number): string[] => (n === 0 ? [""] : [...all(n - 1), ...all(n - 1).filter((s) => s.length === n - 1).flatMap((s) => alphabet.map((c) => s + c))]);
  const universe = [...new Set([...all(5), "65000:10", "65000:100", "65000:1", "6500:10", "65000:10.", "1.0:1", "1x0:1", "102:5"])];

  it.each([[["65000:10"]], [["65000:10", "65000:100", "65000:1"]], [["1.0:1", "10:1", "1:0"]], [["0", "01", "012"]], [[]]])("matches exactly what is not in %j", (listed) => {
    const re = new RegExp(complementPattern(listed));
    for (const s of [...universe, ...listed]) expect(re.test(s), JSON.stringify(s)).toBe(!listed.includes(s));
  });

  it("escapes what is special (a 4-byte ASN's dot is no wildcard)", () => {
    const re = new RegExp(complementPattern(["1.0:1"]));
    expect(re.test("1x0:1")).toBe(true);
    expect(re.test("1.0:1")).toBe(false);
  });
});

describe("sessionPolicy", () => {
  const restricted = peerRestrictions(
    spec([
      { address: "192.0.2.2", asn: 65100, vpcs: ["a"] },
      { address: "2001:db8::1", asn: 65100, vpcs: [] },
      { address: "192.0.2.9", asn: 65100 },
    ]),
  ).restrictions;

  it("is undefined when no peer is restricted", () => {
    expect(sessionPolicy(peerRestrictions(spec([{ address: "192.0.2.9", asn: 65100 }])).restrictions)).toBeUndefined();
    expect(sessionPolicy([])).toBeUndefined();
  });

  it("per restricted peer: its neighbor set, its route targets, the others; reject foreign, accept its own, reject the rest", () => {
    const p = sessionPolicy(restricted);
    if (p === undefined) throw new Error("no policy");
    const b = `kvrf-${p.id}`;
    expect(p.id).toMatch(/^[0-9a-f]{8}$/);
    expect(p.sets).toEqual([
      { type: "neighbor", name: `${b}-peer-0`, list: ["192.0.2.2/32"] },
      { type: "ext-community", name: `${b}-rt-0`, list: ["rt:^65000:10$"] },
      { type: "ext-community", name: `${b}-foreign-0`, list: [`rt:${complementPattern(["65000:10"])}`] },
      { type: "neighbor", name: `${b}-peer-1`, list: ["2001:db8::1/128"] },
    ]);
    expect(p.import).toEqual({
      name: `${b}-import`,
      statements: [
        { name: `${b}-in-0-foreign`, neighborSet: `${b}-peer-0`, extCommunitySet: `${b}-foreign-0`, action: "reject" },
        { name: `${b}-in-0-vpcs`, neighborSet: `${b}-peer-0`, extCommunitySet: `${b}-rt-0`, action: "accept" },
        { name: `${b}-in-0-other`, neighborSet: `${b}-peer-0`, action: "reject" },
        { name: `${b}-in-1-other`, neighborSet: `${b}-peer-1`, action: "reject" },
      ],
    });
    expect(p.export.name).toBe(`${b}-export`);
    expect(p.export.statements.map((s) => [s.name, s.neighborSet, s.extCommunitySet, s.action])).toEqual(
      (p.import?.statements ?? []).map((s) => [s.name.replace("-in-", "-out-"), s.neighborSet, s.extCommunitySet, s.action]),
    );
    expect([...p.peers]).toEqual([
      ["192.0.2.2", ["65000:10"]],
      ["2001:db8::1", []],
    ]);
  });

  describe("exportRoutes Pods", () => {
    const hops = ["192.0.2.1", "2001:db8::1", "198.51.100.4"];
    const pods = peerRestrictions(
      spec([
        { address: "192.0.2.2", asn: 65100, exportRoutes: "Pods" },
        { address: "192.0.2.4", asn: 65100, vpcs: ["a"], exportRoutes: "Pods" },
        { address: "192.0.2.5", asn: 65100, vpcs: [], exportRoutes: "Pods" },
      ]),
    ).restrictions;

    it("sends a peer only paths whose next hop is the cluster's (with vpcs: of its VPCs too); receiving is limited by vpcs alone", () => {
      const p = sessionPolicy(pods, [...hops, "192.0.2.1"]);
      if (p === undefined) throw new Error("no policy");
      const b = `kvrf-${p.id}`;
      const sorted = ["192.0.2.1", "198.51.100.4", "2001:db8::1"];
      expect(p.sets.map((s) => s.name)).toEqual([`${b}-peer-0`, `${b}-peer-1`, `${b}-rt-1`, `${b}-foreign-1`, `${b}-peer-2`]);
      expect(p.export.statements).toEqual([
        { name: `${b}-out-0-pods`, neighborSet: `${b}-peer-0`, nextHops: sorted, action: "accept" },
        { name: `${b}-out-0-other`, neighborSet: `${b}-peer-0`, action: "reject" },
        { name: `${b}-out-1-foreign`, neighborSet: `${b}-peer-1`, extCommunitySet: `${b}-foreign-1`, action: "reject" },
        { name: `${b}-out-1-pods`, neighborSet: `${b}-peer-1`, extCommunitySet: `${b}-rt-1`, nextHops: sorted, action: "accept" },
        { name: `${b}-out-1-other`, neighborSet: `${b}-peer-1`, action: "reject" },
        { name: `${b}-out-2-other`, neighborSet: `${b}-peer-2`, action: "reject" },
      ]);
      // Without vpcs nothing limits what the peer sends; with them as before.
      expect(p.import?.statements.map((s) => s.name)).toEqual([`${b}-in-1-foreign`, `${b}-in-1-vpcs`, `${b}-in-1-other`, `${b}-in-2-other`]);
      expect([...p.peers]).toEqual([
        ["192.0.2.2", ["vpcs=*", "exportRoutes=Pods", ...sorted.map((h) => `nextHop=${h}`)]],
        ["192.0.2.4", ["65000:10", "exportRoutes=Pods", ...sorted.map((h) => `nextHop=${h}`)]],
        ["192.0.2.5", ["exportRoutes=Pods", ...sorted.map((h) => `nextHop=${h}`)]],
      ]);
    });

    it("without vpcs no import policy at all", () => {
      const p = sessionPolicy(pods.slice(0, 1), hops);
      expect(p?.import).toBeUndefined();
      expect(p?.export.statements.map((s) => s.action)).toEqual(["accept", "reject"]);
    });

    it("with no next hop known sends nothing (gobgpd would take an empty list as no condition)", () => {
      const p = sessionPolicy(pods);
      expect(p?.export.statements.filter((s) => s.action === "accept")).toEqual([]);
      expect(p?.export.statements.some((s) => s.nextHops !== undefined)).toBe(false);
    });

    it("a change of the cluster's next hops is a new policy; a peer without Pods does not depend on them", () => {
      expect(sessionPolicy(pods, hops)?.id).not.toBe(sessionPolicy(pods, hops.slice(1))?.id);
      expect(sessionPolicy(pods, hops)?.id).toBe(sessionPolicy(pods, [...hops].reverse())?.id);
      expect(sessionPolicy(restricted, hops)?.id).toBe(sessionPolicy(restricted)?.id);
    });

    it("resets: a new next hop or lifting Pods is soft on 3.x; Pods newly, or fewer VPCs, is hard", () => {
      const m = (o: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(o));
      const peer = ["192.0.2.2"];
      const podsOf = (what: string[], nh: string[]) => m({ "192.0.2.2": [...what, "exportRoutes=Pods", ...nh.map((h) => `nextHop=${h}`)] });
      expect(peerResets(podsOf(["vpcs=*"], ["192.0.2.1"]), podsOf(["vpcs=*"], ["192.0.2.1", "192.0.2.9"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "both" }]);
      // A next hop gone (a Node deleted: its paths are withdrawn with its session) is no narrowing.
      expect(peerResets(podsOf(["vpcs=*"], ["192.0.2.1", "192.0.2.9"]), podsOf(["vpcs=*"], ["192.0.2.1"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "both" }]);
      expect(peerResets(podsOf(["vpcs=*"], ["192.0.2.1"]), m({}), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "both" }]);
      expect(peerResets(podsOf(["65000:10"], ["192.0.2.1"]), m({ "192.0.2.2": ["65000:10"] }), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "both" }]);
      expect(peerResets(m({}), podsOf(["vpcs=*"], ["192.0.2.1"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "hard" }]);
      expect(peerResets(m({ "192.0.2.2": ["65000:10"] }), podsOf(["65000:10"], ["192.0.2.1"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "hard" }]);
      expect(peerResets(podsOf(["vpcs=*"], ["192.0.2.1"]), podsOf(["65000:10"], ["192.0.2.1"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "hard" }]);
      expect(peerResets(podsOf(["65000:10"], ["192.0.2.1"]), podsOf(["vpcs=*"], ["192.0.2.1"]), peer, "v3")).toEqual([{ address: "192.0.2.2", how: "both" }]);
      expect(peerResets(podsOf(["vpcs=*"], ["192.0.2.1"]), podsOf(["vpcs=*"], ["192.0.2.1"]), peer, "v3")).toEqual([]);
    });

    it("applies to the FakeSpeaker, which refuses an empty next-hop list as the adapter does", async () => {
      const s = new FakeSpeaker();
      await s.startBgp({ asn: 65000, routerId: "10.0.0.1", listenPort: -1 });
      const p = sessionPolicy(pods, hops);
      expect((await applySessionPolicy(s, p, undefined, [])).changed).toBe(true);
      expect(s.policies.get(`kvrf-${p?.id}-export`)?.statements[0]?.nextHops).toEqual(["192.0.2.1", "198.51.100.4", "2001:db8::1"]);
      await s.addDefinedSet({ type: "neighbor", name: "n", list: ["192.0.2.2/32"] });
      await expect(s.addPolicy({ name: "x", statements: [{ name: "x", neighborSet: "n", nextHops: [], action: "accept" }] })).rejects.toThrow(/empty next-hop list/);
    });
  });

  it("names by content: the same restrictions give the same id, others another", () => {
    expect(sessionPolicy(restricted)?.id).toBe(sessionPolicy([...restricted])?.id);
    const other = peerRestrictions(spec([{ address: "192.0.2.2", asn: 65100, vpcs: ["a", "14"] }])).restrictions;
    expect(sessionPolicy(other)?.id).not.toBe(sessionPolicy(restricted)?.id);
  });
});

describe("withKvrfPolicy", () => {
  it("puts kvrf's policy first and keeps the others in their order; drops old kvrf ones", () => {
    expect(withKvrfPolicy({ policies: ["ops-a", "kvrf-00000000-import", "ops-b"], defaultAction: "reject" }, "kvrf-11111111-import")).toEqual({
      policies: ["kvrf-11111111-import", "ops-a", "ops-b"],
      defaultAction: "reject",
    });
    expect(withKvrfPolicy({ policies: ["kvrf-00000000-import", "ops-a"], defaultAction: "accept" }, undefined)).toEqual({ policies: ["ops-a"], defaultAction: "accept" });
  });
});

describe("peerResets", () => {
  const m = (o: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(o));
  const peers = ["192.0.2.2", "192.0.2.3", "192.0.2.4"];

  it("resets only the peers whose restriction changed: soft on 4.x; hard on 3.x where one narrows", () => {
    const was = m({ "192.0.2.2": ["65000:10"], "192.0.2.3": ["65000:10", "65000:20"] });
    const now = m({ "192.0.2.2": ["65000:10", "65000:20"], "192.0.2.3": ["65000:10"], "192.0.2.4": [] });
    expect(peerResets(was, now, peers, "v4")).toEqual([
      { address: "192.0.2.2", how: "both" },
      { address: "192.0.2.3", how: "both" },
      { address: "192.0.2.4", how: "both" },
    ]);
    expect(peerResets(was, now, peers, "v3")).toEqual([
      { address: "192.0.2.2", how: "both" },
      { address: "192.0.2.3", how: "hard" },
      { address: "192.0.2.4", how: "hard" },
    ]);
    // Unchanged, and lifting a restriction (3.x too: nothing must be withdrawn).
    expect(peerResets(was, was, peers, "v3")).toEqual([]);
    expect(peerResets(was, m({}), peers, "v3")).toEqual([
      { address: "192.0.2.2", how: "both" },
      { address: "192.0.2.3", how: "both" },
    ]);
    expect(peerResets(m({ "192.0.2.2": [] }), m({ "192.0.2.2": [] }), peers, "v4")).toEqual([]);
  });

  it("resets every peer when what was applied is unknown (hard on 3.x for those restricted now)", () => {
    const now = m({ "192.0.2.2": ["65000:10"] });
    expect(peerResets(undefined, now, peers, "v4").map((r) => r.how)).toEqual(["both", "both", "both"]);
    expect(peerResets(undefined, now, peers, "v3").map((r) => r.how)).toEqual(["hard", "both", "both"]);
  });
});

describe("applySessionPolicy", () => {
  const policyOf = (vpcs: string[] | undefined) =>
    sessionPolicy(peerRestrictions(spec([{ address: "192.0.2.2", asn: 65100, ...(vpcs !== undefined ? { vpcs } : {}) }])).restrictions);

  async function started(): Promise<FakeSpeaker> {
    const s = new FakeSpeaker();
    await s.startBgp({ asn: 65000, routerId: "10.0.0.1", listenPort: -1 });
    await s.addPeer({ address: "192.0.2.2", asn: 65100, families: ["l2vpn-evpn"] });
    await s.addDefinedSet({ type: "neighbor", name: "ops", list: ["203.0.113.9/32"] });
    await s.addPolicy({ name: "ops-policy", statements: [{ name: "ops-st", neighborSet: "ops", action: "reject" }] });
    await s.setGlobalPolicyAssignment("import", { policies: ["ops-policy"], defaultAction: "accept" });
    s.log.length = 0;
    return s;
  }

  it("creates the sets and policies, then assigns them first, then resets the peer; again: only reads", async () => {
    const s = await started();
    const p = policyOf(["a"]);
    const b = `kvrf-${p?.id}`;
    expect(await applySessionPolicy(s, p, undefined, ["192.0.2.2"])).toEqual({ changed: true, reset: [{ address: "192.0.2.2", how: "both" }] });
    expect(s.log).toEqual([
      `addDefinedSet ${b}-peer-0`,
      `addDefinedSet ${b}-rt-0`,
      `addDefinedSet ${b}-foreign-0`,
      `addPolicy ${b}-import`,
      `addPolicy ${b}-export`,
      `setGlobalPolicyAssignment import ${b}-import,ops-policy`,
      `setGlobalPolicyAssignment export ${b}-export`,
      "resetPeer 192.0.2.2 both",
    ]);
    s.log.length = 0;
    expect(await applySessionPolicy(s, p, p?.peers, ["192.0.2.2"])).toEqual({ changed: false, reset: [] });
    // A kvrfd that restarted (nothing known) recognises its policy by name and changes nothing.
    expect(await applySessionPolicy(s, policyOf(["a"]), undefined, ["192.0.2.2"])).toEqual({ changed: false, reset: [] });
    expect(s.log).toEqual([]);
  });

  it("a change: new objects, the switch, then the old ones deleted; no restriction left: only the operator's policy", async () => {
    const s = await started();
    const p1 = policyOf(["a"]);
    await applySessionPolicy(s, p1, undefined, []);
    const p2 = policyOf(["a", "14"]);
    s.log.length = 0;
    expect((await applySessionPolicy(s, p2, p1?.peers, ["192.0.2.2"])).reset).toEqual([{ address: "192.0.2.2", how: "both" }]);
    const switched = s.log.findIndex((l) => l.startsWith("setGlobalPolicyAssignment import"));
    expect(s.log.findIndex((l) => l === `addPolicy kvrf-${p2?.id}-import`)).toBeLessThan(switched);
    expect(s.log.findIndex((l) => l === `deletePolicy kvrf-${p1?.id}-import`)).toBeGreaterThan(switched);
    expect([...s.policies.keys()].sort()).toEqual([`kvrf-${p2?.id}-export`, `kvrf-${p2?.id}-import`, "ops-policy"]);
    expect([...s.definedSets.values()].filter((d) => d.name.includes(p1?.id ?? "?"))).toEqual([]);

    expect((await applySessionPolicy(s, undefined, p2?.peers, ["192.0.2.2"])).reset).toEqual([{ address: "192.0.2.2", how: "both" }]);
    expect([...s.policies.keys()]).toEqual(["ops-policy"]);
    expect([...s.definedSets.keys()]).toEqual(["neighbor ops"]);
    expect(s.assignments).toEqual({ import: { policies: ["ops-policy"], defaultAction: "accept" }, export: { policies: [], defaultAction: "accept" } });
  });

  it("cleans up kvrf objects left by a kvrfd that stopped half-way, and fails with gobgpd's error", async () => {
    const s = await started();
    const p = policyOf(["a"]);
    await applySessionPolicy(s, p, undefined, []);
    await s.addPolicy({ name: "kvrf-deadbeef-import", statements: [] });
    expect((await applySessionPolicy(s, p, p?.peers, [])).changed).toBe(true);
    expect(s.policies.has("kvrf-deadbeef-import")).toBe(false);

    s.failNext("setGlobalPolicyAssignment", "other");
    await expect(applySessionPolicy(s, policyOf(["14"]), p?.peers, [])).rejects.toThrow(/injected other/);
    // The old policy still filters; the next pass completes the change.
    expect(s.assignments.import.policies[0]).toBe(`kvrf-${p?.id}-import`);
    await applySessionPolicy(s, policyOf(["14"]), undefined, []);
    expect(s.assignments.import.policies[0]).toBe(`kvrf-${policyOf(["14"])?.id}-import`);
  });
});
