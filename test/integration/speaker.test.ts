// The Speaker adapters (reconciler/gobgp/) against real daemons: gobgpd 4.8 (api.GoBgpService)
// and 3.10 (apipb.GobgpApi). Every Speaker method on each version, the error kinds kvrfd relies
// on, a gobgpd crash during watch(), and L3VPN over SRv6 between three speakers (route reflector
// and two clients) in network namespaces on an IPv6 underlay, including a v3 reflector between
// v4 clients.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import {
  SpeakerError,
  type LocalPath,
  type Srv6LocalPath,
  type PeerConfig,
  type Speaker,
  type SpeakerErrorKind,
  type SpeakerEvent,
  type Vrf,
} from "../../reconciler/gobgp/speaker.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { cleanupNetns, createNetns, ip, type Netns } from "../harness/netns.js";
import { testEnvDir, tool, type ToolName } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";
const versions = [
  { api: "v4", binary: "gobgpd4" },
  { api: "v3", binary: "gobgpd3" },
] as const satisfies readonly { api: string; binary: ToolName }[];
type Api = (typeof versions)[number]["api"];

function binaryOf(api: Api): string {
  return tool(api === "v4" ? "gobgpd4" : "gobgpd3");
}

/** A directory under .testenv/run, so the tier's reapStale() kills what a crashed run left. */
function runDir(name: string): string {
  const root = path.join(testEnvDir, "run");
  mkdirSync(root, { recursive: true });
  return mkdtempSync(path.join(root, `${name}-`));
}

async function speakerError(p: Promise<unknown>): Promise<SpeakerError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SpeakerError) return err;
    throw err;
  }
  throw new Error("expected the call to fail");
}

async function expectKind(p: Promise<unknown>, kind: SpeakerErrorKind, message?: RegExp): Promise<void> {
  const err = await speakerError(p);
  expect(err.kind, err.message).toBe(kind);
  if (message !== undefined) expect(err.message).toMatch(message);
}

/** Collects watch() events in the background; `done` settles with the iterator's end or error. */
function collectEvents(s: Speaker, signal: AbortSignal): { events: SpeakerEvent[]; done: Promise<unknown> } {
  const events: SpeakerEvent[] = [];
  const done = (async () => {
    for await (const e of s.watch(signal)) events.push(e);
    return "ended";
  })().catch((err: unknown) => err);
  return { events, done };
}

const rt = (assigned: number) => ({ type: 0 as const, asn: 65000, assigned });

describe.each(versions)("Speaker on gobgpd $api", ({ api }) => {
  let d: Gobgpd;
  let s: Speaker;
  let dir: string;

  beforeAll(async () => {
    dir = runDir(`speaker-${api}`);
    d = await startGobgpd({ binary: binaryOf(api), dir });
    s = await connectSpeaker(d.socket, { timeoutMs: 5000 });
  }, 30_000);

  afterAll(async () => {
    s.close();
    await d.stop();
    if (!keepDirs) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  const vrfA: Vrf = { name: "vpc-a", id: 100, rd: { type: 0, asn: 65000, assigned: 4294967295 }, importRts: [rt(10)], exportRts: [rt(10)] };
  const path4: Srv6LocalPath = { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00:0:2:0:0:a:0:1", behavior: 19 };
  const path6: Srv6LocalPath = { vrf: "vpc-a", prefix: "fd10::5/128", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 };

  it("detects the API at connect time", () => {
    expect(s.api).toBe(api);
  });

  it("before StartBgp: no global config, empty lists, not-started for VRFs and paths, stopBgp a no-op", async () => {
    expect(await s.getGlobal()).toBeUndefined();
    expect(await s.listVrfs()).toEqual([]);
    expect(await s.listPeers()).toEqual([]);
    await expectKind(s.addVrf(vrfA), "not-started", /bgp server hasn't started yet/);
    await expectKind(s.deleteVrf("vpc-a"), "not-started");
    await expectKind(s.listVrfPaths("vpc-a", "ipv4"), "not-started");
    expect(await s.listRib("ipv4")).toEqual([]);
    // gobgpd 4.8.0 crashes on VRF-form path calls before StartBgp; the VPN form is refused cleanly.
    await expectKind(s.addLocalPaths(vrfA, [path4]), "not-started");
    await expectKind(s.addLocalPaths(vrfA, [path4, path6]), "not-started");
    await expectKind(s.deleteLocalPaths(vrfA, [path4]), "not-started");
    await expectKind(s.addPeer({ address: "192.0.2.9", asn: 65000, families: ["vpnv4"] }), "not-started");
    await s.stopBgp();
    expect(await s.getGlobal()).toBeUndefined();
  });

  it("startBgp sets what getGlobal reports; a second startBgp is refused (it would empty the RIB)", async () => {
    await s.startBgp({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    expect(await s.getGlobal()).toMatchObject({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    await expectKind(s.startBgp({ asn: 65001, routerId: "192.0.2.2", listenPort: -1 }), "already-exists");
    expect(await s.getGlobal()).toMatchObject({ asn: 65000 });
  });

  it("refuses invalid input before it reaches gobgpd", async () => {
    await expectKind(s.addVrf({ ...vrfA, name: "x", rd: { type: 0, asn: 4200000001, assigned: 1 } }), "invalid", /2-byte ASN/);
    await expectKind(s.addVrf({ ...vrfA, name: "x", importRts: [{ type: 2, asn: 4200000001, assigned: 65536 }] }), "invalid", /16-bit/);
    await expectKind(s.addLocalPaths(vrfA, [{ ...path4, prefix: "10.1.0.5/24" }]), "invalid", /not canonical/);
    await expectKind(s.addLocalPaths(vrfA, [path6, { ...path4, sid: "10.0.0.1" }]), "invalid", /sid/);
    await expectKind(s.addLocalPaths({ ...vrfA, rd: { type: 0, asn: 4200000001, assigned: 1 } }, [path4]), "invalid", /2-byte ASN/);
    await expectKind(s.addPeer({ address: "nonsense", asn: 65000, families: [] }), "invalid");
    expect(await s.listVrfs()).toEqual([]);
  });

  it("VRFs round-trip exactly: type 0 with NN 4294967295, type 1, and 4-byte ASN type 2 untruncated", async () => {
    const vrfB: Vrf = {
      name: "vpc-b",
      id: 4294967295,
      rd: { type: 2, asn: 4200000001, assigned: 65535 },
      importRts: [
        { type: 0, asn: 65000, assigned: 20 },
        { type: 1, address: "192.0.2.1", assigned: 7 },
        { type: 2, asn: 4200000001, assigned: 65535 },
      ],
      exportRts: [{ type: 2, asn: 4294967295, assigned: 1 }],
    };
    const vrfC: Vrf = { name: "vpc-c", id: 7, rd: { type: 1, address: "198.51.100.1", assigned: 65535 }, importRts: [], exportRts: [] };
    for (const v of [vrfA, vrfB, vrfC]) await s.addVrf(v);
    const byName = (vs: Vrf[]) => [...vs].sort((x, y) => x.name.localeCompare(y.name));
    expect(byName(await s.listVrfs())).toEqual([vrfA, vrfB, vrfC]);
  });

  it("a duplicate VRF is already-exists, a missing one not-found", async () => {
    await expectKind(s.addVrf(vrfA), "already-exists", /vrf vpc-a already exists/);
    await expectKind(s.deleteVrf("nope"), "not-found", /vrf nope not found/);
    await expectKind(s.listVrfPaths("nope", "ipv4"), "not-found");
  });

  it("local paths (VPN form): originated once however often added, listed with RD, route targets, SID and behaviour, withdrawn exactly", async () => {
    await s.addLocalPaths(vrfA, [path4]);
    await s.addLocalPaths(vrfA, [path4, path6]);
    const local = { vrf: "vpc-a", nextHop: "fd00:ff::2", best: true, local: true };
    // gobgpd's VRF view imports them by route target like paths added with vrf_id.
    expect(await s.listVrfPaths("vpc-a", "ipv4")).toEqual([{ ...local, prefix: "10.1.0.5/32", sid: "fc00:0:2::a:0:1", behavior: 19 }]);
    expect(await s.listVrfPaths("vpc-a", "ipv6")).toEqual([{ ...local, prefix: "fd10::5/128", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 }]);
    // vpc-b imports other route targets.
    expect(await s.listVrfPaths("vpc-b", "ipv4")).toEqual([]);
    const rib = { family: "ipv4", rd: vrfA.rd, rts: [rt(10)], nextHop: "fd00:ff::2", best: true, local: true, withdraw: false };
    expect(await s.listRib("ipv4")).toEqual([{ ...rib, prefix: "10.1.0.5/32", sid: "fc00:0:2::a:0:1", behavior: 19 }]);
    expect(await s.listRib("ipv6")).toEqual([{ ...rib, family: "ipv6", prefix: "fd10::5/128", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 }]);

    // Same prefix, new SID: replaces the path.
    await s.addLocalPaths(vrfA, [{ ...path4, sid: "fc00:0:2:0:0:a:0:2", behavior: 17 }]);
    expect(await s.listVrfPaths("vpc-a", "ipv4")).toMatchObject([{ prefix: "10.1.0.5/32", sid: "fc00:0:2::a:0:2", behavior: 17 }]);

    // The same prefix in another VRF is another destination (its RD), not a replacement.
    const vrfD: Vrf = { name: "vpc-d", id: 101, rd: rt(11), importRts: [rt(11)], exportRts: [rt(11)] };
    await s.addVrf(vrfD);
    await s.addLocalPaths(vrfD, [{ ...path4, vrf: "vpc-d" }]);
    expect((await s.listRib("ipv4")).map((p) => `${p.rd.type === 1 ? "" : p.rd.assigned} ${p.prefix}`).sort()).toEqual(["11 10.1.0.5/32", "4294967295 10.1.0.5/32"]);
    // DeleteVrf withdraws the VRF's VPN-form paths (they carry its RD).
    await s.deleteVrf("vpc-d");
    expect(await s.listRib("ipv4")).toHaveLength(1);

    await s.deleteLocalPaths(vrfA, [path4]);
    expect(await s.listVrfPaths("vpc-a", "ipv4")).toEqual([]);
    expect(await s.listVrfPaths("vpc-a", "ipv6")).toHaveLength(1);
    await s.deleteLocalPaths(vrfA, [path4]);
    await s.deleteLocalPaths(vrfA, [path6]);
    expect(await s.listVrfPaths("vpc-a", "ipv6")).toEqual([]);
    expect(await s.listRib("ipv6")).toEqual([]);
  });

  it("path changes of concurrent callers go out together and all land", async () => {
    const vrfs = Array.from({ length: 20 }, (_, i): Vrf => ({ name: `vpc-x${i}`, id: 200 + i, rd: rt(200 + i), importRts: [rt(200 + i)], exportRts: [rt(200 + i)] }));
    await Promise.all(vrfs.map((v) => s.addVrf(v)));
    const paths = (v: Vrf, i: number): LocalPath[] => [
      { ...path4, vrf: v.name, prefix: `10.9.${i}.1/32` },
      { ...path6, vrf: v.name, prefix: `fd10::9:${i}/128` },
    ];
    await Promise.all(vrfs.map((v, i) => s.addLocalPaths(v, paths(v, i))));
    expect((await s.listRib("ipv4")).filter((p) => p.prefix.startsWith("10.9."))).toHaveLength(20);
    expect((await s.listRib("ipv6")).filter((p) => p.prefix.startsWith("fd10::9:"))).toHaveLength(20);
    await Promise.all(vrfs.map((v, i) => s.deleteLocalPaths(v, paths(v, i))));
    expect((await s.listRib("ipv4")).filter((p) => p.prefix.startsWith("10.9."))).toEqual([]);
    for (const v of vrfs) await s.deleteVrf(v.name);
  });

  it("peers: add, list with effective settings, update, delete; duplicates and missing ones classified", async () => {
    const rrClient: PeerConfig = {
      address: "fd00:ff::9",
      asn: 65000,
      password: "s3cret",
      routeReflectorClient: true,
      routeReflectorClusterId: "10.255.0.1",
      holdTimeSeconds: 9,
      keepaliveSeconds: 3,
      localAddress: "fd00:ff::1",
      remotePort: 1790,
      families: ["vpnv4", "vpnv6"],
      gracefulRestart: { restartTimeSeconds: 77 },
    };
    const plain: PeerConfig = { address: "192.0.2.7", asn: 65001, families: ["vpnv4"] };
    // Added as the restarting speaker (R and F bits in its OPEN); not part of what is listed.
    await s.addPeer({ ...rrClient, localRestarting: true });
    await s.addPeer(plain);
    await expectKind(s.addPeer(plain), "already-exists", /can't overwrite the existing peer: 192\.0\.2\.7/);

    const peers = new Map((await s.listPeers()).map(({ state, ...config }) => [config.address, { state, config }]));
    // Nothing listens there, so the sessions never get past connecting.
    expect(peers.get("fd00:ff::9")?.config).toEqual(rrClient);
    expect(peers.get("fd00:ff::9")?.state).toMatch(/^(idle|connect|active)$/);
    // gobgpd fills in defaults: hold 90 s, keepalive 30 s.
    expect(peers.get("192.0.2.7")?.config).toEqual({ ...plain, holdTimeSeconds: 90, keepaliveSeconds: 30 });

    await s.updatePeer({ ...plain, holdTimeSeconds: 30, keepaliveSeconds: 10, families: ["vpnv4", "vpnv6"], gracefulRestart: { restartTimeSeconds: 120 } });
    expect((await s.listPeers()).find((p) => p.address === "192.0.2.7")).toMatchObject({
      holdTimeSeconds: 30,
      keepaliveSeconds: 10,
      families: ["vpnv4", "vpnv6"],
      gracefulRestart: { restartTimeSeconds: 120 },
    });
    await s.updatePeer({ ...plain, holdTimeSeconds: 30, keepaliveSeconds: 10 });
    expect((await s.listPeers()).find((p) => p.address === "192.0.2.7")?.gracefulRestart).toBeUndefined();
    await expectKind(s.updatePeer({ ...plain, address: "192.0.2.8" }), "not-found", /neighbor that has 192\.0\.2\.8 doesn't exist/);

    await s.deletePeer("fd00:ff::9");
    await s.deletePeer("192.0.2.7");
    await expectKind(s.deletePeer("192.0.2.7"), "not-found", /can't delete a peer configuration for 192\.0\.2\.7/);
    expect(await s.listPeers()).toEqual([]);
  });

  it("watch yields rib and peer events and ends quietly on abort", async () => {
    const ac = new AbortController();
    const w = collectEvents(s, ac.signal);
    // The watch says when it is registered; every change after that is reported.
    await eventually("watching", async () => w.events, (es) => es.some((e) => e.kind === "watching"));
    await s.addLocalPaths(vrfA, [path4]);
    await s.addPeer({ address: "192.0.2.7", asn: 65000, families: ["vpnv4"] });
    await eventually(
      "rib and peer events",
      async () => w.events,
      (es) => es.some((e) => e.kind === "rib") && es.some((e) => e.kind === "peer" && e.address === "192.0.2.7"),
    );
    // A BEST event carries the new best path with its RD and route targets.
    const best = { family: "ipv4", rd: vrfA.rd, prefix: "10.1.0.5/32", rts: [rt(10)], nextHop: "fd00:ff::2", sid: "fc00:0:2::a:0:1", behavior: 19, best: true, local: true, withdraw: false };
    expect(w.events.flatMap((e) => (e.kind === "rib" ? e.paths : []))).toEqual([best]);
    await s.deleteLocalPaths(vrfA, [path4]);
    await eventually("a withdrawal", async () => w.events, (es) => es.some((e) => e.kind === "rib" && e.paths.some((p) => p.withdraw && p.prefix === "10.1.0.5/32")));
    ac.abort();
    expect(await w.done).toBe("ended");
    await s.deletePeer("192.0.2.7");
  });

  it("deleteVrf removes the VRF", async () => {
    for (const name of ["vpc-a", "vpc-b", "vpc-c"]) await s.deleteVrf(name);
    expect(await s.listVrfs()).toEqual([]);
  });

  it("close() refuses further calls", async () => {
    const other = await connectSpeaker(d.socket);
    other.close();
    await expectKind(other.getGlobal(), "unavailable", /closed/);
  });

  it(`stopBgp ${api === "v4" ? "is final on 4.x: gobgpd answers unavailable until restarted" : "returns 3.x to not started"}`, async () => {
    await s.stopBgp();
    if (api === "v4") {
      await expectKind(s.getGlobal(), "unavailable", /server stopped/);
    } else {
      expect(await s.getGlobal()).toBeUndefined();
    }
  });

});

describe.each(versions)("gobgpd $api killed during watch", ({ api }) => {
  let d: Gobgpd | undefined;
  let dir: string;
  const speakers: Speaker[] = [];

  beforeAll(() => {
    dir = runDir(`speaker-kill-${api}`);
  });

  afterAll(async () => {
    for (const s of speakers) s.close();
    await d?.stop();
    if (!keepDirs) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("watch throws unavailable; after a restart a new connection sees BGP not started", async () => {
    d = await startGobgpd({ binary: binaryOf(api), dir });
    const s = await connectSpeaker(d.socket);
    speakers.push(s);
    await s.startBgp({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    await s.addVrf({ name: "vpc-a", id: 1, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] });

    const ac = new AbortController();
    const w = collectEvents(s, ac.signal);
    await eventually("watching", async () => w.events, (es) => es.some((e) => e.kind === "watching"));
    await s.addLocalPaths({ name: "vpc-a", id: 1, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] }, [{ vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00::1", behavior: 19 }]);
    await eventually("a rib event", async () => w.events, (es) => es.some((e) => e.kind === "rib"));

    await d.kill();
    const err = await w.done;
    expect(err).toBeInstanceOf(SpeakerError);
    expect((err as SpeakerError).kind).toBe("unavailable");
    expect(ac.signal.aborted).toBe(false);
    await expectKind(s.getGlobal(), "unavailable");
    await expectKind(connectSpeaker(d.socket, { timeoutMs: 2000 }), "unavailable");

    d = await startGobgpd({ binary: binaryOf(api), dir });
    const fresh = await connectSpeaker(d.socket);
    speakers.push(fresh);
    expect(fresh.api).toBe(api);
    expect(await fresh.getGlobal()).toBeUndefined();
    // The old Speaker redials too: kvrfd may keep it across a gobgpd restart.
    expect(await s.getGlobal()).toBeUndefined();
  });
});

// rr ── br0 (fd00:ff::1/64) ── veth ── a (fd00:ff::2), b (fd00:ff::3): one IPv6 underlay segment.
describe.each([
  { rr: "v4", clients: "v4" },
  { rr: "v3", clients: "v4" },
  { rr: "v4", clients: "v3" },
] as const)("L3VPN over SRv6: route reflector gobgpd $rr, clients gobgpd $clients", ({ rr, clients }) => {
  const daemons: Gobgpd[] = [];
  const speakers: Speaker[] = [];
  const dirs: string[] = [];
  let sRr: Speaker, sA: Speaker, sB: Speaker;

  const underlay = { rr: "fd00:ff::1", a: "fd00:ff::2", b: "fd00:ff::3" };
  // TCP MD5 on every session: gobgpd sets it on its listener and connecting socket per neighbor.
  const session = { password: "kvrf-md5", holdTimeSeconds: 9, keepaliveSeconds: 3 };
  const vpcA = (id: number): Vrf => ({ name: "vpc-a", id, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] });
  const onA4: Srv6LocalPath = { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: underlay.a, encap: "srv6", sid: "fc00:0:2::a:0:1", behavior: 19 };
  const onA6: Srv6LocalPath = { vrf: "vpc-a", prefix: "fd10::5/128", nextHop: underlay.a, encap: "srv6", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 };

  beforeAll(async () => {
    const [nsRr, nsA, nsB] = await Promise.all([createNetns("rr"), createNetns("a"), createNetns("b")]);
    await nsRr.ip("link", "add", "br0", "type", "bridge");
    await nsRr.ip("link", "set", "br0", "up");
    await nsRr.ip("addr", "add", `${underlay.rr}/64`, "dev", "br0", "nodad");
    for (const [ns, addr, port] of [
      [nsA, underlay.a, "to-a"],
      [nsB, underlay.b, "to-b"],
    ] as [Netns, string, string][]) {
      await ip("link", "add", "eth0", "netns", ns.name, "type", "veth", "peer", "name", port, "netns", nsRr.name);
      await nsRr.ip("link", "set", port, "master", "br0", "up");
      await ns.ip("link", "set", "eth0", "up");
      await ns.ip("addr", "add", `${addr}/64`, "dev", "eth0", "nodad");
    }
    const start = async (api: Api, ns: Netns): Promise<Speaker> => {
      const dir = runDir(`l3vpn-${ns.name.split("-").pop() ?? "x"}`);
      dirs.push(dir);
      const d = await startGobgpd({ binary: binaryOf(api), dir, netns: ns.name });
      daemons.push(d);
      const s = await connectSpeaker(d.socket);
      speakers.push(s);
      return s;
    };
    [sRr, sA, sB] = await Promise.all([start(rr, nsRr), start(clients, nsA), start(clients, nsB)]);

    await sRr.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    await sA.startBgp({ asn: 65000, routerId: "10.255.0.2", listenPort: 179 });
    await sB.startBgp({ asn: 65000, routerId: "10.255.0.3", listenPort: 179 });
    for (const client of [underlay.a, underlay.b]) {
      await sRr.addPeer({ address: client, asn: 65000, routeReflectorClient: true, routeReflectorClusterId: "10.255.0.1", families: ["vpnv4", "vpnv6"], ...session });
    }
    for (const s of [sA, sB]) await s.addPeer({ address: underlay.rr, asn: 65000, families: ["vpnv4", "vpnv6"], ...session });
    await sA.addVrf(vpcA(10));
    await sB.addVrf(vpcA(10));
    await sB.addVrf({ name: "vpc-b", id: 20, rd: rt(20), importRts: [rt(20)], exportRts: [rt(20)] });
  }, 60_000);

  afterAll(async () => {
    for (const s of speakers) s.close();
    await Promise.all(daemons.map((d) => d.stop()));
    await cleanupNetns();
    if (!keepDirs) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("sessions reach established on the reflector, with VPNv4, VPNv6 and TCP MD5", async () => {
    const peers = await eventually(
      "both sessions established",
      () => sRr.listPeers(),
      (ps) => ps.length === 2 && ps.every((p) => p.state === "established"),
      30_000,
    );
    expect(peers.map((p) => p.families)).toEqual([
      ["vpnv4", "vpnv6"],
      ["vpnv4", "vpnv6"],
    ]);
    expect(peers.map((p) => p.localAddress)).toEqual([underlay.rr, underlay.rr]);
  });

  it("B imports what A originates into vpc-a, with next hop, SID and behaviour intact; vpc-b sees nothing", async () => {
    const ac = new AbortController();
    const w = collectEvents(sB, ac.signal);
    try {
      // Changes are reported from the moment the watch says it is registered.
      await eventually("watching on B", async () => w.events, (es) => es.some((e) => e.kind === "watching"));
      await sA.addLocalPaths(vpcA(10), [onA4, onA6]);
      const remote = { vrf: "vpc-a", nextHop: underlay.a, best: true, local: false, neighbor: underlay.rr };
      const v4 = await eventually("the IPv4 path on B", () => sB.listVrfPaths("vpc-a", "ipv4"), (ps) => ps.length > 0);
      expect(v4).toEqual([{ ...remote, prefix: "10.1.0.5/32", sid: "fc00:0:2::a:0:1", behavior: 19 }]);
      const v6 = await eventually("the IPv6 path on B", () => sB.listVrfPaths("vpc-a", "ipv6"), (ps) => ps.length > 0);
      expect(v6).toEqual([{ ...remote, prefix: "fd10::5/128", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 }]);
      expect(await sB.listVrfPaths("vpc-b", "ipv4")).toEqual([]);
      expect(await sB.listVrfPaths("vpc-b", "ipv6")).toEqual([]);
      // On A the same paths are local.
      expect(await sA.listVrfPaths("vpc-a", "ipv4")).toEqual([
        { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: underlay.a, sid: "fc00:0:2::a:0:1", behavior: 19, best: true, local: true },
      ]);

      // B's BEST events carry A's path with its RD, route targets and SID: what kvrfd imports from.
      const events = await eventually("rib events on B", async () => w.events, (es) => es.some((e) => e.kind === "rib" && e.paths.some((p) => p.prefix === "10.1.0.5/32")));
      expect(events.flatMap((e) => (e.kind === "rib" ? e.paths : [])).find((p) => p.prefix === "10.1.0.5/32")).toEqual({
        family: "ipv4",
        rd: rt(10),
        prefix: "10.1.0.5/32",
        rts: [rt(10)],
        nextHop: underlay.a,
        sid: "fc00:0:2::a:0:1",
        behavior: 19,
        best: true,
        local: false,
        neighbor: underlay.rr,
        withdraw: false,
      });
      expect((await sB.listRib("ipv6")).map((p) => [p.prefix, p.local, p.best, p.neighbor])).toEqual([["fd10::5/128", false, true, underlay.rr]]);

      await sA.deleteLocalPaths(vpcA(10), [onA4]);
      await eventually("the IPv4 withdrawal on B", () => sB.listVrfPaths("vpc-a", "ipv4"), (ps) => ps.length === 0);
      expect(await sB.listVrfPaths("vpc-a", "ipv6")).toHaveLength(1);
      await sA.deleteLocalPaths(vpcA(10), [onA6]);
      await eventually("the IPv6 withdrawal on B", () => sB.listVrfPaths("vpc-a", "ipv6"), (ps) => ps.length === 0);
    } finally {
      ac.abort();
    }
    expect(await w.done).toBe("ended");
  });
});
