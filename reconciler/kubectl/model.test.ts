// kubectl kvrf's reasoning over SRv6 (the lab test runs VXLAN on the host kernel): desired state
// from real objects, snapshots shaped as kvrfd serves them (iproute2's JSON field names).
import { describe, expect, it } from "vitest";
import type { BGPVRFInstance } from "../../shared/api-types.js";
import type { Snapshot, SnapshotRoute } from "../../shared/debug-snapshot.js";
import { diffNode, findEndpoints, lookup, trace, type World } from "./model.js";

const sid1 = "fd00:0:1:0:a1::1";
const sid2 = "fd00:0:2:0:a1::1";

function vrf(node: string, sid: string, prefixes: string[]): BGPVRFInstance {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPVRFInstance",
    metadata: { name: `${node}-a1` },
    spec: {
      nodeName: node,
      vpc: "a1",
      asn: 65000,
      routeDistinguisher: "65000:161",
      importRouteTargets: ["65000:161"],
      exportRouteTargets: ["65000:161"],
      table: 161,
      encapsulation: "srv6",
      attachments: [{ containerID: `c-${node}`, ifName: "eth0", attachment: "1", sid, prefixes }],
    },
  };
}

const claims = { routeTargetClaim: (n: string) => (n === "rt-65000-161" ? { vpc: "a1" } : undefined), vniClaim: () => undefined };
const world = (): World => ({ vrfs: [vrf("n1", sid1, ["10.0.1.2/32"]), vrf("n2", sid2, ["10.0.2.2/32"])], nodes: [], claims });

const route = (r: Partial<SnapshotRoute> & Pick<SnapshotRoute, "table" | "dst" | "protocol">): SnapshotRoute => ({ family: r.dst.includes(":") ? 6 : 4, ...r });

/** A healthy node: its VRF, its pod's path and routes, the other node's path and kvrfd's route to it. */
function snapshot(node: "n1" | "n2"): Snapshot {
  const [mySid, otherSid, myPod, otherPod, peer] = node === "n1" ? [sid1, sid2, "10.0.1.2", "10.0.2.2", "fd00::2"] : [sid2, sid1, "10.0.2.2", "10.0.1.2", "fd00::1"];
  return {
    node,
    time: "2026-12-06T00:00:00Z",
    kvrfdVersion: "t",
    ready: [{ ok: true, detail: "ready" }],
    gobgp: {
      connected: true,
      api: "v4",
      started: true,
      peers: [{ address: "fd00::ff", asn: 65000, state: "established", families: ["vpnv4", "vpnv6"] }],
      vrfs: [{ name: "vpc-a1", id: 161, rd: "65000:161", importRts: ["65000:161"], exportRts: ["65000:161"] }],
      paths: [
        { family: "ipv4", form: "vpn", rd: "65000:161", prefix: `${myPod}/32`, nextHop: "::", rts: ["65000:161"], sid: mySid, behavior: 20, best: true, local: true },
        { family: "ipv4", form: "vpn", rd: "65000:161", prefix: `${otherPod}/32`, nextHop: peer, rts: ["65000:161"], sid: otherSid, behavior: 20, best: true, local: false, neighbor: "fd00::ff" },
      ],
    },
    linux: {
      routes: [
        route({ table: 161, dst: "default", protocol: 240, type: "unreachable", metric: 4278198272 }),
        route({ table: 161, dst: "default", protocol: 240, type: "unreachable", family: 6, metric: 4278198272 }),
        route({ table: 161, dst: myPod, protocol: 240, dev: `kv-${node}` }),
        route({ table: 254, dst: mySid, protocol: 240, encap: "seg6local", action: "End.DT46", vrftable: 161, dev: "kvrf-a1" }),
        route({ table: 161, dst: otherPod, protocol: 241, encap: "seg6", segs: [otherSid], dev: "fab0" }),
        // kvrfd's throw route for the remote SID (planner.ts remoteRoutes), as `ip -j` prints it.
        route({ table: 161, dst: otherSid, protocol: 241, type: "throw" }),
      ],
      vxlan: [],
      vteps: [],
    },
  };
}

// A gateway PE outside the cluster (docs/fabric.md): its defaults and a prefix in VPC a1, with
// SIDs of its own locator, and the routes kvrfd installs for them on n1.
const gw = "fd00:ff::50";
const [gwSid4, gwSid6] = ["fd00:0:50:0:100::", "fd00:0:50:0:200::"];
const gatewayWorld = (): World => ({ ...world(), nodes: [{ metadata: { name: "n2" }, status: { addresses: [{ type: "InternalIP", address: "fd00::2" }] } }] });
const gwPath = (family: "ipv4" | "ipv6", prefix: string, sid: string) =>
  ({ family, form: "vpn" as const, rd: "65000:9161", prefix, nextHop: gw, rts: ["65000:161"], sid, behavior: 0xffff, best: true, local: false, neighbor: "fd00::ff" });
function addGateway(s: Snapshot): void {
  s.gobgp.paths.push(gwPath("ipv4", "0.0.0.0/0", gwSid4), gwPath("ipv6", "::/0", gwSid6), gwPath("ipv4", "10.99.0.0/24", gwSid4));
  s.linux.routes.push(
    route({ table: 161, dst: "default", protocol: 241, encap: "seg6", segs: [gwSid4], dev: "fab0" }),
    route({ table: 161, dst: "default", protocol: 241, encap: "seg6", segs: [gwSid6], dev: "fab0", family: 6, metric: 1024 }),
    route({ table: 161, dst: "10.99.0.0/24", protocol: 241, encap: "seg6", segs: [gwSid4], dev: "fab0" }),
    route({ table: 161, dst: gwSid4, protocol: 241, type: "throw" }),
    route({ table: 161, dst: gwSid6, protocol: 241, type: "throw" }),
  );
}

describe("diffNode", () => {
  it("finds no drift on a healthy node: VRF, local prefix, its SID, the remote prefix", () => {
    const rows = diffNode(world(), "n1", snapshot("n1"));
    expect(rows.map((r) => [r.kind, r.item, r.ok])).toEqual([
      ["vrf", "vpc-a1", true],
      ["local", "10.0.1.2/32", true],
      ["decap", `SID ${sid1}`, true],
      ["remote", "10.0.2.2/32", true],
    ]);
  });

  it("matches a gateway's default route, which iproute2 prints as \"default\", to its path", () => {
    const s = snapshot("n1");
    const gwSid = "fd00:99::1";
    s.gobgp.paths.push({ family: "ipv4", form: "vpn", rd: "65000:9", prefix: "0.0.0.0/0", nextHop: "fd00::99", rts: ["65000:161"], sid: gwSid, best: true, local: false, neighbor: "fd00::ff" });
    s.linux.routes.push(route({ table: 161, dst: "default", protocol: 241, encap: "seg6", segs: [gwSid], dev: "fab0" }));
    const rows = diffNode(world(), "n1", s);
    expect(rows.filter((r) => !r.ok)).toEqual([]);
    expect(rows.map((r) => [r.kind, r.item])).toContainEqual(["gateway", "0.0.0.0/0"]);
  });

  it("names a kernel route that points at the wrong SID", () => {
    const s = snapshot("n1");
    s.linux.routes = s.linux.routes.map((r) => (r.protocol !== 241 ? r : r.type === "throw" ? { ...r, dst: "fd00:0:9::1" } : { ...r, segs: ["fd00:0:9::1"] }));
    const bad = diffNode(world(), "n1", s).filter((r) => !r.ok);
    expect(bad).toMatchObject([{ kind: "remote", item: "10.0.2.2/32", origin: "n2", broken: "kernel", kernel: "WRONG seg6 fd00:0:9::1" }]);
    expect(bad[0]?.reason).toBe(`n1's table 161 routes 10.0.2.2/32 as seg6 fd00:0:9::1, not to SID ${sid2}`);
  });

  it("reports what no object explains: a stray kvrfd route, a VRF and a path of no VPC of the node", () => {
    const s = snapshot("n1");
    s.linux.routes.push(route({ table: 161, dst: "10.9.9.9", protocol: 241, encap: "seg6", segs: [sid2] }));
    s.gobgp.vrfs.push({ name: "vpc-b1", id: 177, rd: "65000:177", importRts: [], exportRts: [] });
    s.gobgp.paths.push({ family: "ipv4", form: "vpn", rd: "65000:177", prefix: "10.7.0.0/24", nextHop: "::", rts: [], sid: sid1, best: true, local: true });
    const extra = diffNode(world(), "n1", s).filter((r) => r.kind === "extra");
    expect(extra.map((r) => [r.item, r.broken])).toEqual([
      ["10.9.9.9/32", "kernel"],
      ["vpc-b1", "gobgp"],
      ["10.7.0.0/24", "gobgp"],
    ]);
  });

  it("explains a gateway's routes from outside the cluster by gobgpd's paths, defaults included", () => {
    const s = snapshot("n1");
    addGateway(s);
    const rows = diffNode(gatewayWorld(), "n1", s);
    expect(rows.filter((r) => !r.ok)).toEqual([]);
    expect(rows.filter((r) => r.kind === "gateway").map((r) => [r.item, r.origin, r.kernel])).toEqual([
      ["0.0.0.0/0", gw, `ok seg6 ${gwSid4}`],
      ["::/0", gw, `ok seg6 ${gwSid6}`],
      ["10.99.0.0/24", gw, `ok seg6 ${gwSid4}`],
    ]);
    // The same route from a node's address is no gateway's: no object explains it.
    const forged = snapshot("n1");
    forged.gobgp.paths.push({ ...gwPath("ipv4", "0.0.0.0/0", gwSid4), nextHop: "fd00::2" });
    forged.linux.routes.push(route({ table: 161, dst: "default", protocol: 241, encap: "seg6", segs: [gwSid4], dev: "fab0" }));
    expect(diffNode(gatewayWorld(), "n1", forged).filter((r) => !r.ok).map((r) => [r.kind, r.item])).toEqual([["extra", "0.0.0.0/0"]]);
  });

  it("says a VPC whose route target another VPC claims must not be programmed, and is not", () => {
    const w = { ...world(), claims: { routeTargetClaim: () => ({ vpc: "100000000a1" }), vniClaim: () => undefined } };
    const s = snapshot("n1");
    s.gobgp.vrfs = [];
    s.gobgp.paths = [];
    s.linux.routes = s.linux.routes.filter((r) => r.protocol === 240);
    const rows = diffNode(w, "n1", s);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ kind: "vrf", ok: true });
    expect(rows[0]?.objects).toMatch(/^REFUSED route target 65000:161 of VPC a1 is claimed by VPC 100000000a1/);
    // Left in gobgpd although refused: that is drift.
    expect(diffNode(w, "n1", snapshot("n1"))[0]).toMatchObject({ ok: false, gobgp: "PRESENT although refused", reason: expect.stringMatching(/yet gobgpd has VRF vpc-a1 and table 161 has 2 kvrfd routes$/) as unknown });
  });

  it("blames gobgpd for everything while it is unreachable", () => {
    const s = snapshot("n1");
    s.gobgp = { connected: false, peers: [], vrfs: [], paths: [] };
    const rows = diffNode(world(), "n1", s).filter((r) => r.kind !== "decap");
    expect(rows.every((r) => !r.ok && r.broken === "gobgp" && r.reason === "gobgpd not reachable from kvrfd")).toBe(true);
  });
});

describe("lookup", () => {
  it("takes the longest prefix of the address's family only", () => {
    const routes = [
      route({ table: 161, dst: "default", protocol: 240, type: "unreachable" }),
      route({ table: 161, dst: "default", protocol: 240, type: "unreachable", family: 6 }),
      route({ table: 161, dst: "10.0.0.0/16", protocol: 241, dev: "a" }),
      route({ table: 161, dst: "10.0.2.2", protocol: 241, dev: "b" }),
      route({ table: 162, dst: "10.0.2.2", protocol: 241, dev: "c" }),
      route({ table: 161, dst: "fd10::/64", protocol: 241, dev: "d" }),
    ];
    expect(lookup(routes, 161, "10.0.2.2")?.dev).toBe("b");
    expect(lookup(routes, 161, "10.0.3.1")?.dev).toBe("a");
    expect(lookup(routes, 161, "10.1.0.1")?.type).toBe("unreachable");
    expect(lookup(routes, 161, "10.1.0.1")?.family).toBe(4);
    expect(lookup(routes, 161, "fd10::5")?.dev).toBe("d");
    expect(lookup(routes, 161, "fd11::5")?.family).toBe(6);
    expect(lookup(routes, 163, "10.0.2.2")).toBeUndefined();
  });
});

describe("trace", () => {
  const src = (w: World) => findEndpoints(w, "10.0.1.2")[0] ?? (() => { throw new Error("no source"); })();
  const dst = (w: World) => findEndpoints(w, "10.0.2.2")[0];

  it("follows an SRv6 path through the remote SID's End.DT46 to the pod", () => {
    const w = world();
    const hops = trace(w, new Map([["n1", snapshot("n1")], ["n2", snapshot("n2")]]), src(w), "10.0.2.2", dst(w));
    expect(hops.map((h) => [h.node, h.step, h.ok])).toEqual([
      ["n1", "source", true],
      ["n1", "lookup", true],
      ["n1", "encap", true],
      ["n2", "decap", true],
      ["n2", "deliver", true],
    ]);
    expect(hops[2]?.detail).toBe(`SRv6 to SID ${sid2} on n2`);
    expect(hops[3]?.detail).toBe(`SID ${sid2}: seg6local End.DT46 vrftable 161`);
  });

  it("takes a gateway's default over the CNI plugin's unreachable one, and ends at the gateway", () => {
    const w = gatewayWorld();
    const n1 = snapshot("n1");
    addGateway(n1);
    const hops = trace(w, new Map([["n1", n1], ["n2", snapshot("n2")]]), src(w), "203.0.113.1", undefined);
    expect(hops.map((h) => [h.step, h.ok])).toEqual([["source", true], ["lookup", true], ["encap", true]]);
    expect(hops[1]?.detail).toBe(`table 161: 0.0.0.0/0 seg6 ${gwSid4} (proto 241)`);
    expect(hops[2]?.detail).toBe(`SRv6 to SID ${gwSid4}: gateway ${gw} outside the cluster (its route 0.0.0.0/0, RD 65000:9161)`);
    // Without it, the unreachable default answers.
    expect(trace(w, new Map([["n1", snapshot("n1")]]), src(w), "203.0.113.1", undefined).at(-1)).toMatchObject({ step: "lookup", ok: false });
  });

  it("stops at the remote node when its SID route is gone", () => {
    const w = world();
    const n2 = snapshot("n2");
    n2.linux.routes = n2.linux.routes.filter((r) => r.encap !== "seg6local");
    const hops = trace(w, new Map([["n1", snapshot("n1")], ["n2", n2]]), src(w), "10.0.2.2", dst(w));
    expect(hops.at(-1)).toEqual({ node: "n2", step: "decap", ok: false, detail: `no seg6local route for SID ${sid2} on n2: the packet is dropped there` });
  });

  it("says a route that sends a pod's traffic to the wrong node is wrong", () => {
    const w = { ...world(), vrfs: [...world().vrfs, vrf("n3", "fd00:0:3:0:a1::1", ["10.0.3.2/32"])] };
    const n1 = snapshot("n1");
    n1.linux.routes = n1.linux.routes.map((r) => (r.protocol === 241 ? { ...r, segs: ["fd00:0:3:0:a1::1"] } : r));
    const hops = trace(w, new Map([["n1", n1]]), src(w), "10.0.2.2", dst(w));
    expect(hops.at(-1)).toMatchObject({ step: "encap", ok: false, detail: "sent to n3, but 10.0.2.2 is a pod on n2" });
  });

  it("explains a missing route with the diff's reason (not imported)", () => {
    const w = world();
    const n1 = snapshot("n1");
    n1.gobgp.paths = n1.gobgp.paths.filter((p) => p.local);
    n1.linux.routes = n1.linux.routes.filter((r) => r.protocol === 240);
    const hops = trace(w, new Map([["n1", n1]]), src(w), "10.0.2.2", dst(w));
    expect(hops.at(-1)?.detail).toBe(
      `table 161 has only the unreachable default for 10.0.2.2: n1's gobgpd has no path for 10.0.2.2/32 of n2 (SID ${sid2}): not advertised by n2, or not received (check n2's diff and the BGP sessions)`,
    );
  });

  it("delivers to a pod on the same node without leaving it", () => {
    const w = { ...world(), vrfs: [vrf("n1", sid1, ["10.0.1.2/32", "10.0.1.3/32"]), vrf("n2", sid2, ["10.0.2.2/32"])] };
    const n1 = snapshot("n1");
    n1.linux.routes.push(route({ table: 161, dst: "10.0.1.3", protocol: 240, dev: "kv-other" }));
    const hops = trace(w, new Map([["n1", n1]]), src(w), "10.0.1.3", findEndpoints(w, "10.0.1.3")[0]);
    expect(hops.map((h) => [h.step, h.ok, h.detail])).toEqual([
      ["source", true, expect.stringContaining("in VPC a1, table 161, srv6") as unknown],
      ["lookup", true, "table 161: 10.0.1.3/32 dev kv-other (proto 240)"],
      ["deliver", true, "to the pod on kv-other"],
    ]);
  });
});
