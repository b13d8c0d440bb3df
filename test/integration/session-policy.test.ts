// Session policies (BGPInstance spec.peers[].vpcs) in real gobgpds: node N, a kvrf-managed gobgpd
// (4.8 or 3.10), peers over eBGP with R, a router outside the cluster (gobgpd 4.8 driven by its
// CLI), each in its own network namespace, and with R2 (gobgpd 4.8 beside R) whose session has no
// `vpcs`. kvrfd's applySessionPolicy writes N's policy from the
// instance's peers as the speaker controller does. Shown on EVPN type-5 routes (VXLAN) and VPNv4
// routes (the SRv6 families take the same policy: it looks at route targets only):
//  - R limited to VPC a receives a's routes and not b's;
//  - of R's routes, N keeps those with a's route target only: not b's, not a's plus b's, not
//    those without any route target;
//  - changing the VPCs applies at once, by soft reset, without the session going down;
//  - an empty list passes nothing, no list everything; other policies stay, after kvrf's.
// Then the policy calls alone against the FakeSpeaker and both gobgpds (STYLE 17).
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BGPInstanceSpec } from "../../reconciler/bgp-instance/bgp-instance.js";
import { applySessionPolicy, complementPattern, peerRestrictions, sessionPolicy, type PeerReset } from "../../reconciler/bgp-instance/session-policy.js";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { PeerConfig, RibFamily, RibPath, Speaker, SpeakerEvent, Srv6LocalPath, Vrf, VxlanLocalPath } from "../../reconciler/gobgp/speaker.js";
import { SpeakerError } from "../../reconciler/gobgp/speaker.js";
import { FakeSpeaker } from "../../reconciler/testing/fake-speaker.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { cleanupNetns, createNetns, ip, type Netns } from "../harness/netns.js";
import { testEnvDir, tool } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const run = promisify(execFile);
const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
// VPC a (hex a = 10) and VPC 14 (hex 14 = 20): route targets 65000:10 and 65000:20.
const vrfA: Vrf = { name: "vpc-a", id: 10, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
const vrfB: Vrf = { name: "vpc-14", id: 20, rd: rt(20), importRts: [rt(20)], exportRts: [rt(20)] };
const rmac = "02:00:5e:10:00:0a";
const evpnA: VxlanLocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "192.0.2.1", encap: "vxlan", vni: 10, routerMac: rmac };
const evpnB: VxlanLocalPath = { vrf: "vpc-14", prefix: "10.2.0.0/24", nextHop: "192.0.2.1", encap: "vxlan", vni: 20, routerMac: rmac };
const vpnA: Srv6LocalPath = { vrf: "vpc-a", prefix: "10.1.1.0/24", nextHop: "192.0.2.1", encap: "srv6", sid: "fd00:a::100", behavior: 19 };
const vpnB: Srv6LocalPath = { vrf: "vpc-14", prefix: "10.2.1.0/24", nextHop: "192.0.2.1", encap: "srv6", sid: "fd00:a::200", behavior: 19 };

// What R originates: EVPN type 5 and VPNv4, tagged with a's RT, b's, both, or none.
const fromR = [
  { prefix: "10.10.0.0/24", rts: ["65000:10"] },
  { prefix: "10.20.0.0/24", rts: ["65000:20"] },
  { prefix: "10.30.0.0/24", rts: ["65000:10", "65000:20"] },
  { prefix: "10.40.0.0/24", rts: [] },
  { prefix: "10.50.0.0/24", rts: ["65000:10", "65100:99"] },
];

const cli = async (d: Gobgpd, ...args: string[]): Promise<string> => {
  try {
    return (await run(tool("gobgp4"), ["--target", `unix://${d.socket}`, ...args])).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`gobgp ${args.join(" ")}: ${(e.stderr ?? "").trim()} ${(e.stdout ?? "").trim()}`, { cause: err });
  }
};
const prefixes = async (s: Speaker, fam: RibFamily, neighbor: string): Promise<string[]> =>
  (await s.listRib(fam))
    .filter((p: RibPath) => p.neighbor === neighbor)
    .map((p) => p.prefix)
    .sort();
const originate = async (d: Gobgpd, nextHop: string, p: { prefix: string; rts: string[] }): Promise<void> => {
  const rts = p.rts.length > 0 ? ["rt", ...p.rts] : [];
  await cli(d, "global", "rib", "add", "-a", "evpn", "prefix", p.prefix, "gw", "0.0.0.0", "etag", "0", "label", "30", "rd", "65100:1", ...rts, "encap", "vxlan", "router-mac", "02:00:5e:10:00:30", "nexthop", nextHop);
  await cli(d, "global", "rib", "add", "-a", "vpnv4", p.prefix.replace(/^10\.(\d+)\.0\./, "10.$1.1."), "label", "100", "rd", "65100:1", ...rts, "nexthop", nextHop);
};
const same = (want: { evpn: string[]; vpn: string[] }) => (got: { evpn: string[]; vpn: string[] }) => JSON.stringify(got) === JSON.stringify(want);
const both = (ps: string[]) => ({ evpn: ps, vpn: ps.map((p) => p.replace(/^10\.(\d+)\.0\./, "10.$1.1.")) });

/** Collects `s`'s peer events into `into` until `signal`. */
const watchPeers = (s: Speaker, signal: AbortSignal, into: SpeakerEvent[]): void => {
  void (async () => {
    for await (const e of s.watch(signal)) if (e.kind === "peer") into.push(e);
  })().catch(() => undefined);
};
/** A gobgpd in `ns` with its own directory under .testenv/run (both recorded for afterAll), and its Speaker. */
const startIn = async (daemons: Gobgpd[], dirs: string[], binary: "gobgpd4" | "gobgpd3", ns: Netns, label: string): Promise<[Gobgpd, Speaker]> => {
  const root = path.join(testEnvDir, "run");
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(path.join(root, `${label}-`));
  dirs.push(dir);
  const d = await startGobgpd({ binary: tool(binary), dir, netns: ns.name });
  daemons.push(d);
  return [d, await connectSpeaker(d.socket)];
};

describe.each(["v4", "v3"] as const)("session policies on a node running gobgpd %s", (api) => {
  const daemons: Gobgpd[] = [];
  const dirs: string[] = [];
  let sN: Speaker, sR: Speaker, sR2: Speaker, dR: Gobgpd, dR2: Gobgpd;
  const addr = { n: "192.0.2.1", r: "192.0.2.2", r2: "192.0.2.3" };
  let previous: ReadonlyMap<string, readonly string[]> | undefined;
  const peerEvents: SpeakerEvent[] = [];
  const ac = new AbortController();

  const spec = (vpcs: string[] | undefined): BGPInstanceSpec => ({
    nodeSelector: {},
    asn: 65000,
    peers: [{ address: addr.r, asn: 65100, ...(vpcs !== undefined ? { vpcs } : {}) }, { address: addr.r2, asn: 65200 }],
  });
  /** What kvrfd's speaker controller does with the instance's peers. */
  const apply = async (vpcs: string[] | undefined): Promise<PeerReset[]> => {
    const policy = sessionPolicy(peerRestrictions(spec(vpcs)).restrictions);
    const established = (await sN.listPeers()).filter((p) => p.state === "established").map((p) => p.address);
    const r = await applySessionPolicy(sN, policy, previous, established);
    previous = policy?.peers ?? new Map();
    return r.reset;
  };

  /** R's routes that N holds, by family, and N's routes that R holds. */
  const onN = async (): Promise<{ evpn: string[]; vpn: string[] }> => ({ evpn: await prefixes(sN, "evpn", addr.r), vpn: await prefixes(sN, "ipv4", addr.r) });
  const onR = async (): Promise<{ evpn: string[]; vpn: string[] }> => ({ evpn: await prefixes(sR, "evpn", addr.n), vpn: await prefixes(sR, "ipv4", addr.n) });
  const onR2 = async (): Promise<{ evpn: string[]; vpn: string[] }> => ({ evpn: await prefixes(sR2, "evpn", addr.n), vpn: await prefixes(sR2, "ipv4", addr.n) });


  beforeAll(async () => {
    const [nsN, nsR] = await Promise.all([createNetns(`pol-n-${api}`), createNetns(`pol-r-${api}`)]);
    await ip("link", "add", "eth0", "netns", nsN.name, "type", "veth", "peer", "name", "eth0", "netns", nsR.name);
    for (const [ns, x] of [
      [nsN, addr.n],
      [nsR, addr.r],
    ] as [Netns, string][]) {
      await ns.ip("addr", "add", `${x}/24`, "dev", "eth0");
      await ns.ip("link", "set", "eth0", "up");
    }
    await nsR.ip("addr", "add", `${addr.r2}/24`, "dev", "eth0");
    const start = (binary: "gobgpd4" | "gobgpd3", ns: Netns, label: string) => startIn(daemons, dirs, binary, ns, `pol-${label}`);
    [[, sN], [dR, sR], [dR2, sR2]] = await Promise.all([
      start(api === "v4" ? "gobgpd4" : "gobgpd3", nsN, `n${api}`),
      start("gobgpd4", nsR, `r${api}`),
      start("gobgpd4", nsR, `r2${api}`),
    ]);
    await sN.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    await sR.startBgp({ asn: 65100, routerId: "10.255.0.2", listenPort: 179, listenAddresses: [addr.r] });
    await sR2.startBgp({ asn: 65200, routerId: "10.255.0.3", listenPort: 179, listenAddresses: [addr.r2] });
    await sN.addVrf(vrfA);
    await sN.addVrf(vrfB);
    await sN.addLocalPaths(vrfA, [evpnA, vpnA]);
    await sN.addLocalPaths(vrfB, [evpnB, vpnB]);
    for (const p of fromR) await originate(dR, addr.r, p);
    // R2, unrestricted, sends a route of VPC 14.
    await originate(dR2, addr.r2, { prefix: "10.60.0.0/24", rts: ["65000:20"] });
    // An operator's own import policy on N (matching nobody): kvrf leaves it, after its own.
    await sN.addDefinedSet({ type: "neighbor", name: "ops-nobody", list: ["203.0.113.9/32"] });
    await sN.addPolicy({ name: "ops-policy", statements: [{ name: "ops-reject", neighborSet: "ops-nobody", action: "reject" }] });
    await sN.setGlobalPolicyAssignment("import", { policies: ["ops-policy"], defaultAction: "accept" });

    // As kvrfd does it: the policy first, then the peer.
    await apply(["a"]);
    const timers = { holdTimeSeconds: 9, keepaliveSeconds: 3 };
    await sN.addPeer({ address: addr.r, asn: 65100, families: ["vpnv4", "l2vpn-evpn"], ...timers });
    await sR.addPeer({ address: addr.n, asn: 65000, families: ["vpnv4", "l2vpn-evpn"], ...timers });
    await sN.addPeer({ address: addr.r2, asn: 65200, families: ["vpnv4", "l2vpn-evpn"], ...timers });
    await sR2.addPeer({ address: addr.n, asn: 65000, families: ["vpnv4", "l2vpn-evpn"], localAddress: addr.r2, ...timers });
    watchPeers(sN, ac.signal, peerEvents);
    await eventually("the sessions", () => sN.listPeers(), (ps) => ps.length === 2 && ps.every((p) => p.state === "established"), 30_000);
  }, 90_000);

  afterAll(async () => {
    ac.abort();
    sN.close();
    sR.close();
    sR2.close();
    await Promise.all(daemons.map((d) => d.stop()));
    await cleanupNetns();
    if (!keepDirs) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("a peer limited to VPC a receives a's routes and not b's; a peer without vpcs receives both", async () => {
    // R2 gets N's own routes of both VPCs, and (N reflecting nothing it refused) R's a-only one.
    await eventually("a's and b's routes on R2", onR2, same(both(["10.1.0.0/24", "10.10.0.0/24", "10.2.0.0/24"])));
    await eventually("a's routes on R", onR, same(both(["10.1.0.0/24"])));
    // Still so a moment later (b's, and R2's route of VPC 14, were not merely late).
    await new Promise((r) => setTimeout(r, 1000));
    expect(await onR()).toEqual(both(["10.1.0.0/24"]));
  });

  it("of R's routes, N holds only those with a's route target alone", async () => {
    await eventually("R's a-only routes on N", onN, same(both(["10.10.0.0/24"])));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await onN()).toEqual(both(["10.10.0.0/24"]));
    // Not in VPC b's VRF either (only R2's route is), nor in a's except the allowed one.
    expect((await sN.listVrfPaths("vpc-14", "evpn")).filter((p) => !p.local).map((p) => [p.prefix, p.neighbor])).toEqual([["10.60.0.0/24", addr.r2]]);
    expect((await sN.listVrfPaths("vpc-a", "evpn")).filter((p) => !p.local).map((p) => p.prefix)).toEqual(["10.10.0.0/24"]);
    // kvrf's policy first, the operator's after it.
    const imp = await sN.getGlobalPolicyAssignment("import");
    expect(imp.policies).toEqual([expect.stringMatching(/^kvrf-[0-9a-f]{8}-import$/), "ops-policy"]);
    expect((await sN.getGlobalPolicyAssignment("export")).policies).toEqual([expect.stringMatching(/^kvrf-[0-9a-f]{8}-export$/)]);
  });

  it("applying the same again changes nothing", async () => {
    const before = await sN.listPolicies();
    expect(await apply(["a"])).toEqual([]);
    expect(await sN.listPolicies()).toEqual(before);
  });

  it("adding VPC 14 takes effect by soft reset, without the session going down", async () => {
    peerEvents.length = 0;
    expect(await apply(["a", "14"])).toEqual([{ address: addr.r, how: "both" }]);
    await eventually("a's and b's routes on R", onR, same(both(["10.1.0.0/24", "10.2.0.0/24", "10.60.0.0/24"])));
    // a's plus b's is now allowed; no route target at all, or a foreign one beside a's, still not.
    await eventually("R's routes with a's and b's RTs on N", onN, same(both(["10.10.0.0/24", "10.20.0.0/24", "10.30.0.0/24"])));
    expect(peerEvents.filter((e) => e.kind === "peer" && e.state !== "established")).toEqual([]);
    expect((await sN.listPeers()).map((p) => p.state)).toEqual(["established", "established"]);
    // The old policy and its sets are gone.
    expect((await sN.listPolicies()).filter((n) => n.startsWith("kvrf-"))).toHaveLength(2);
  });

  // Fewer VPCs: 4.8 withdraws on a soft reset out what the export policy now rejects; 3.10 does not
  // (its soft reset out only sends), so kvrf resets the session there.
  it(`an empty list passes nothing, either way (${api === "v4" ? "soft reset" : "gobgpd 3.10: the session is reset"})`, async () => {
    peerEvents.length = 0;
    expect(await apply([])).toEqual([{ address: addr.r, how: api === "v4" ? "both" : "hard" }]);
    await eventually("nothing on R", onR, same(both([])));
    await eventually("nothing from R on N", onN, same(both([])));
    // (gobgpd waits its idle hold time after a reset, 30 s by default, before it connects again.)
    await eventually("the session", () => sN.listPeers(), (ps) => ps.every((p) => p.state === "established"), 60_000);
    if (api === "v4") expect(peerEvents.filter((e) => e.kind === "peer" && e.state !== "established")).toEqual([]);
  }, 90_000);

  it("no list passes everything, and kvrf's policies are gone", async () => {
    peerEvents.length = 0;
    await apply(undefined);
    await eventually("all of N's on R", onR, same(both(["10.1.0.0/24", "10.2.0.0/24", "10.60.0.0/24"])));
    await eventually("all of R's on N", onN, same(both(fromR.map((p) => p.prefix))));
    expect(peerEvents.filter((e) => e.kind === "peer" && e.state !== "established")).toEqual([]);
    expect(await sN.listPolicies()).toEqual(["ops-policy"]);
    expect(await sN.listDefinedSets("neighbor")).toEqual(["ops-nobody"]);
    expect(await sN.listDefinedSets("ext-community")).toEqual([]);
    expect(await sN.getGlobalPolicyAssignment("import")).toEqual({ policies: ["ops-policy"], defaultAction: "accept" });
    const exp = await sN.getGlobalPolicyAssignment("export");
    expect(exp.policies).toEqual([]);
    expect(["accept", "none"]).toContain(exp.defaultAction);
  });
});

// exportRoutes Pods (which of a VPC's routes leave the cluster): N, the reflector, running gobgpd
// 4.8 or 3.10, with C, a kvrf node (its route-reflector client, iBGP), G, a gateway outside the
// cluster (eBGP, no restriction), and two routers that are sent the cluster's own paths only: R
// over eBGP and I over iBGP (I also limited to VPC a). N and C originate pod routes (next hops
// N's address and C's published VTEP), G a route of VPC a (next hop its own). R and I must not get
// G's route: that would make N a transit between gateways. Over eBGP N rewrites the next hop to
// its own address, one of the cluster's: gobgpd must judge the path by the next hop it had.
describe.each(["v4", "v3"] as const)("exportRoutes Pods on a reflector running gobgpd %s", (api) => {
  const daemons: Gobgpd[] = [];
  const dirs: string[] = [];
  let sN: Speaker, sR: Speaker, sI: Speaker, sG: Speaker, sC: Speaker, dG: Gobgpd, dC: Gobgpd;
  const addr = { n: "192.0.2.1", r: "192.0.2.2", g: "192.0.2.3", c: "192.0.2.4", i: "192.0.2.5" };
  const vtepC = "192.0.2.44";
  let previous: ReadonlyMap<string, readonly string[]> | undefined;
  const peerEvents: SpeakerEvent[] = [];
  const ac = new AbortController();

  const apply = async (r: "All" | "Pods", clusterNextHops: string[]): Promise<PeerReset[]> => {
    const spec: BGPInstanceSpec = {
      nodeSelector: {},
      asn: 65000,
      peers: [
        { address: addr.r, asn: 65100, exportRoutes: r },
        { address: addr.i, asn: 65000, vpcs: ["a"], exportRoutes: "Pods" },
        { address: addr.g, asn: 65200 },
        { address: addr.c, asn: 65000, routeReflectorClient: true },
      ],
    };
    const policy = sessionPolicy(peerRestrictions(spec).restrictions, clusterNextHops);
    const established = (await sN.listPeers()).filter((p) => p.state === "established").map((p) => p.address);
    const out = await applySessionPolicy(sN, policy, previous, established);
    previous = policy?.peers ?? new Map();
    return out.reset;
  };
  const from = (s: Speaker) => async (): Promise<{ evpn: string[]; vpn: string[] }> => ({ evpn: await prefixes(s, "evpn", addr.n), vpn: await prefixes(s, "ipv4", addr.n) });
  const pods = ["10.1.0.0/24", "10.2.0.0/24"];
  const podsC = "10.80.0.0/24";
  const gateway = "10.70.0.0/24";

  beforeAll(async () => {
    const [nsN, nsO] = await Promise.all([createNetns(`exp-n-${api}`), createNetns(`exp-o-${api}`)]);
    await ip("link", "add", "eth0", "netns", nsN.name, "type", "veth", "peer", "name", "eth0", "netns", nsO.name);
    await nsN.ip("addr", "add", `${addr.n}/24`, "dev", "eth0");
    for (const x of [addr.r, addr.g, addr.c, addr.i]) await nsO.ip("addr", "add", `${x}/24`, "dev", "eth0");
    for (const ns of [nsN, nsO]) await ns.ip("link", "set", "eth0", "up");
    const start = (binary: "gobgpd4" | "gobgpd3", ns: Netns, label: string) => startIn(daemons, dirs, binary, ns, `exp-${label}`);
    [[, sN], [, sR], [, sI], [dG, sG], [dC, sC]] = await Promise.all([
      start(api === "v4" ? "gobgpd4" : "gobgpd3", nsN, `n${api}`),
      start("gobgpd4", nsO, `r${api}`),
      start("gobgpd4", nsO, `i${api}`),
      start("gobgpd4", nsO, `g${api}`),
      start("gobgpd4", nsO, `c${api}`),
    ]);
    await sN.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    const outside: [Speaker, string, number, string][] = [
      [sR, addr.r, 65100, "10.255.0.2"],
      [sG, addr.g, 65200, "10.255.0.3"],
      [sC, addr.c, 65000, "10.255.0.4"],
      [sI, addr.i, 65000, "10.255.0.5"],
    ];
    for (const [s, a, asn, routerId] of outside) await s.startBgp({ asn, routerId, listenPort: 179, listenAddresses: [a] });
    await sN.addVrf(vrfA);
    await sN.addVrf(vrfB);
    await sN.addLocalPaths(vrfA, [evpnA, vpnA]);
    await sN.addLocalPaths(vrfB, [evpnB, vpnB]);
    await originate(dC, vtepC, { prefix: podsC, rts: ["65000:10"] });
    await originate(dG, addr.g, { prefix: gateway, rts: ["65000:10"] });

    // As kvrfd does it: the policy first (the cluster's next hops: N's own only, C not known yet).
    await apply("Pods", [addr.n]);
    const timers = { holdTimeSeconds: 9, keepaliveSeconds: 3 };
    const families: PeerConfig["families"] = ["vpnv4", "l2vpn-evpn"];
    for (const [s, a, asn] of outside) {
      await sN.addPeer({ address: a, asn, families, ...timers, ...(a === addr.c ? { routeReflectorClient: true, routeReflectorClusterId: "10.255.0.1" } : {}) });
      await s.addPeer({ address: addr.n, asn: 65000, families, localAddress: a, ...timers });
    }
    watchPeers(sN, ac.signal, peerEvents);
    await eventually("the sessions", () => sN.listPeers(), (ps) => ps.length === 4 && ps.every((p) => p.state === "established"), 30_000);
  }, 90_000);

  afterAll(async () => {
    ac.abort();
    for (const s of [sN, sR, sI, sG, sC]) s.close();
    await Promise.all(daemons.map((d) => d.stop()));
    await cleanupNetns();
    if (!keepDirs) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("Pods peers get the cluster's own paths (eBGP and iBGP), never the gateway's; the gateway gets all", async () => {
    // (C's paths are not the cluster's yet: its VTEP is not in the list.)
    await eventually("N's pods on R (eBGP)", from(sR), same(both(pods)));
    await eventually("N's pods of VPC a on I (iBGP)", from(sI), same(both(["10.1.0.0/24"])));
    // C's route did reach N (it is the reflector), and G's too.
    expect((await sN.listVrfPaths("vpc-a", "evpn")).filter((p) => !p.local).map((p) => p.prefix).sort()).toEqual([gateway, podsC]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await from(sR)()).toEqual(both(pods));
    expect(await from(sI)()).toEqual(both(["10.1.0.0/24"]));
    // The gateway gets C's route whatever the list (G has no exportRoutes).
    await eventually("C's route on G", from(sG), same(both([...pods, podsC].sort())));
  });

  it("a node's VTEP joining the list: its paths are sent, by soft reset, sessions up", async () => {
    peerEvents.length = 0;
    const reset = await apply("Pods", [addr.n, vtepC]);
    expect(reset.sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { address: addr.r, how: "both" },
      { address: addr.i, how: "both" },
    ]);
    await eventually("N's and C's pods on R", from(sR), same(both([...pods, podsC].sort())));
    await eventually("a's pods of N and C on I", from(sI), same(both(["10.1.0.0/24", podsC])));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await from(sR)()).toEqual(both([...pods, podsC].sort()));
    expect(peerEvents.filter((e) => e.kind === "peer" && e.state !== "established")).toEqual([]);
  });

  it("exportRoutes All passes the gateway's route on (today's behaviour)", async () => {
    expect(await apply("All", [addr.n, vtepC])).toEqual([{ address: addr.r, how: "both" }]);
    await eventually("everything on R", from(sR), same(both([...pods, gateway, podsC].sort())));
  });

  it(`back to Pods withdraws it (${api === "v4" ? "soft reset" : "gobgpd 3.10: the session is reset"})`, async () => {
    expect(await apply("Pods", [addr.n, vtepC])).toEqual([{ address: addr.r, how: api === "v4" ? "both" : "hard" }]);
    await eventually("the cluster's own on R", from(sR), same(both([...pods, podsC].sort())), 60_000);
    await eventually("the session", () => sN.listPeers(), (ps) => ps.every((p) => p.state === "established"), 60_000);
  }, 90_000);
});

// The routing-policy calls alone (no peers), against the FakeSpeaker kvrfd's unit tests use and
// both real gobgpds, so the fake keeps gobgpd's rules: a policy needs its sets, an assigned policy
// or a set in use cannot be deleted, a deleted policy takes its statements along.
describe.each([
  { name: "FakeSpeaker", binary: undefined },
  { name: "gobgpd 4.8", binary: "gobgpd4" as const },
  { name: "gobgpd 3.10", binary: "gobgpd3" as const },
])("policy objects on $name", ({ binary }) => {
  let s: Speaker;
  let stop: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    if (binary === undefined) {
      s = new FakeSpeaker();
    } else {
      const root = path.join(testEnvDir, "run");
      mkdirSync(root, { recursive: true });
      const dir = mkdtempSync(path.join(root, `pol-obj-${binary}-`));
      const d = await startGobgpd({ binary: tool(binary), dir });
      s = await connectSpeaker(d.socket);
      stop = async () => {
        s.close();
        await d.stop();
        if (!keepDirs) rmSync(dir, { recursive: true, force: true });
      };
    }
    await s.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: -1 });
  }, 30_000);
  afterAll(() => stop(), 30_000);

  const refused = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
    } catch (err) {
      if (err instanceof SpeakerError) return err.kind;
      throw err;
    }
    throw new Error("expected a refusal");
  };

  it("sets, a policy, its assignment; deletions in the order gobgpd allows", async () => {
    await s.addDefinedSet({ type: "neighbor", name: "kvrf-t-peer-0", list: ["192.0.2.2/32"] });
    await s.addDefinedSet({ type: "ext-community", name: "kvrf-t-rt-0", list: ["rt:^65000:10$"] });
    await s.addDefinedSet({ type: "ext-community", name: "kvrf-t-foreign-0", list: [`rt:${complementPattern(["65000:10"])}`] });
    expect(await s.listDefinedSets("neighbor")).toEqual(["kvrf-t-peer-0"]);
    expect((await s.listDefinedSets("ext-community")).sort()).toEqual(["kvrf-t-foreign-0", "kvrf-t-rt-0"]);
    const policy = {
      name: "kvrf-t-import",
      statements: [
        { name: "kvrf-t-in-0-foreign", neighborSet: "kvrf-t-peer-0", extCommunitySet: "kvrf-t-foreign-0", action: "reject" as const },
        { name: "kvrf-t-in-0-vpcs", neighborSet: "kvrf-t-peer-0", extCommunitySet: "kvrf-t-rt-0", action: "accept" as const },
        { name: "kvrf-t-in-0-other", neighborSet: "kvrf-t-peer-0", action: "reject" as const },
      ],
    };
    await s.addPolicy(policy);
    expect(await s.listPolicies()).toEqual(["kvrf-t-import"]);
    await s.setGlobalPolicyAssignment("import", { policies: ["kvrf-t-import"], defaultAction: "accept" });
    expect(await s.getGlobalPolicyAssignment("import")).toEqual({ policies: ["kvrf-t-import"], defaultAction: "accept" });
    // A set in use stays.
    expect(await refused(s.deleteDefinedSet("ext-community", "kvrf-t-rt-0"))).toBe("other");

    await s.setGlobalPolicyAssignment("import", { policies: [], defaultAction: "accept" });
    await s.deletePolicy("kvrf-t-import");
    expect(await s.listPolicies()).toEqual([]);
    // Its statements went with it: the sets are free.
    for (const n of ["kvrf-t-rt-0", "kvrf-t-foreign-0"]) await s.deleteDefinedSet("ext-community", n);
    await s.deleteDefinedSet("neighbor", "kvrf-t-peer-0");
    expect(await s.listDefinedSets("neighbor")).toEqual([]);
    expect(await s.listDefinedSets("ext-community")).toEqual([]);
  });

  it("applySessionPolicy writes, recognises and removes its policy the same way", async () => {
    const policy = sessionPolicy(peerRestrictions({ nodeSelector: {}, asn: 65000, peers: [{ address: "192.0.2.2", asn: 65100, vpcs: ["a", "14"] }] }).restrictions);
    expect((await applySessionPolicy(s, policy, undefined, [])).changed).toBe(true);
    expect((await applySessionPolicy(s, policy, undefined, [])).changed).toBe(false);
    expect((await s.getGlobalPolicyAssignment("export")).policies).toEqual([`kvrf-${policy?.id}-export`]);
    expect((await applySessionPolicy(s, undefined, policy?.peers, [])).changed).toBe(true);
    expect(await s.listPolicies()).toEqual([]);
    expect(await s.listDefinedSets("ext-community")).toEqual([]);
  });
});
