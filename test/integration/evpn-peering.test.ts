// EVPN type-5 routes (RFC 9136, VXLAN) between two real gobgpds peered with the l2vpn-evpn family,
// each in its own network namespace: A originates through kvrf's Speaker (IPv4 and IPv6 prefixes,
// IPv4 and IPv6 VTEPs), B's listRib, watch and VRF view report them with the same RD, route
// targets, VNI, router MAC and next hop, and their withdrawal. gobgpd 4.8 and 3.10 each way, over
// an IPv4 and an IPv6 session. Routes of other EVPN types from the "fabric" (the gobgp CLI on A)
// are ignored by B's Speaker, and a type-5 route kvrf cannot use is reported with its problem.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { RibPath, Speaker, SpeakerEvent, Vrf, VxlanLocalPath } from "../../reconciler/gobgp/speaker.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { cleanupNetns, createNetns, ip, type Netns } from "../harness/netns.js";
import { testEnvDir, tool } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const run = promisify(execFile);
const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";
type Api = "v4" | "v3";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
const byPrefix = (ps: RibPath[]): RibPath[] => [...ps].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));

describe.each([
  { a: "v4", b: "v3", session: "ipv4" },
  { a: "v3", b: "v4", session: "ipv6" },
  { a: "v4", b: "v4", session: "ipv6" },
  { a: "v3", b: "v3", session: "ipv4" },
] as const)("EVPN type 5 from gobgpd $a to gobgpd $b over an $session session", ({ a, b, session }) => {
  const daemons: Gobgpd[] = [];
  const dirs: string[] = [];
  let sA: Speaker, sB: Speaker, dA: Gobgpd, dB: Gobgpd;
  const addr = session === "ipv4" ? { a: "192.0.2.1", b: "192.0.2.2", len: 24 } : { a: "fd00:e5::1", b: "fd00:e5::2", len: 64 };

  // VPC 10 originated on A; its RD is A's (65000:10), its RT what B's vpc-a imports.
  const vpcOnA: Vrf = { name: "vpc-a", id: 10, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
  const rmac = "02:00:5e:10:00:0a";
  const paths: VxlanLocalPath[] = [
    { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "198.51.100.1", encap: "vxlan", vni: 10010, routerMac: rmac },
    { vrf: "vpc-a", prefix: "10.1.1.5/32", nextHop: "2001:db8:a::1", encap: "vxlan", vni: 10010, routerMac: rmac },
    { vrf: "vpc-a", prefix: "fd10::/64", nextHop: "2001:db8:a::1", encap: "vxlan", vni: 16777215, routerMac: rmac },
    { vrf: "vpc-a", prefix: "fd10:1::5/128", nextHop: "198.51.100.1", encap: "vxlan", vni: 16777215, routerMac: rmac },
  ];
  const seenOnB = (p: VxlanLocalPath): RibPath => ({
    family: p.prefix.includes(":") ? "ipv6" : "ipv4",
    rd: rt(10),
    prefix: p.prefix,
    rts: [rt(10)],
    nextHop: p.nextHop,
    evpn: { vni: p.vni, routerMac: rmac },
    best: true,
    local: false,
    neighbor: addr.a,
    withdraw: false,
  });

  /** The gobgp CLI of `api` against daemon `d`. */
  const cli = async (api: Api, d: Gobgpd, ...args: string[]): Promise<string> => {
    try {
      return (await run(tool(api === "v4" ? "gobgp4" : "gobgp3"), ["--target", `unix://${d.socket}`, ...args])).stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`gobgp ${args.join(" ")}: ${(e.stderr ?? "").trim()} ${(e.stdout ?? "").trim()}`, { cause: err });
    }
  };

  beforeAll(async () => {
    const [nsA, nsB] = await Promise.all([createNetns("evpn-a"), createNetns("evpn-b")]);
    await ip("link", "add", "eth0", "netns", nsA.name, "type", "veth", "peer", "name", "eth0", "netns", nsB.name);
    for (const [ns, x] of [
      [nsA, addr.a],
      [nsB, addr.b],
    ] as [Netns, string][]) {
      await ns.ip("addr", "add", `${x}/${addr.len}`, "dev", "eth0", ...(session === "ipv6" ? ["nodad"] : []));
      await ns.ip("link", "set", "eth0", "up");
    }
    const start = async (api: Api, ns: Netns, label: string): Promise<[Gobgpd, Speaker]> => {
      const root = path.join(testEnvDir, "run");
      mkdirSync(root, { recursive: true });
      const dir = mkdtempSync(path.join(root, `evpn-${label}-`));
      dirs.push(dir);
      const d = await startGobgpd({ binary: tool(api === "v4" ? "gobgpd4" : "gobgpd3"), dir, netns: ns.name });
      daemons.push(d);
      return [d, await connectSpeaker(d.socket)];
    };
    [[dA, sA], [dB, sB]] = await Promise.all([start(a, nsA, "a"), start(b, nsB, "b")]);
    await sA.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    await sB.startBgp({ asn: 65000, routerId: "10.255.0.2", listenPort: 179 });
    const timers = { holdTimeSeconds: 9, keepaliveSeconds: 3 };
    await sA.addPeer({ address: addr.b, asn: 65000, families: ["vpnv4", "l2vpn-evpn"], ...timers });
    await sB.addPeer({ address: addr.a, asn: 65000, families: ["vpnv4", "l2vpn-evpn"], ...timers });
    await sA.addVrf(vpcOnA);
    await sB.addVrf({ name: "vpc-a", id: 10, rd: rt(1010), importRts: [rt(10)], exportRts: [rt(10)] });
    await sB.addVrf({ name: "vpc-b", id: 20, rd: rt(20), importRts: [rt(20)], exportRts: [rt(20)] });
  }, 60_000);

  afterAll(async () => {
    sA.close();
    sB.close();
    await Promise.all(daemons.map((d) => d.stop()));
    await cleanupNetns();
    if (!keepDirs) for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the session is established with l2vpn-evpn", async () => {
    const [peer] = await eventually("the session", () => sB.listPeers(), (ps) => ps[0]?.state === "established");
    expect(peer?.families).toEqual(["vpnv4", "l2vpn-evpn"]);
  });

  it("B reports A's type-5 routes with A's RD, route targets, VNI, router MAC and VTEP, and their withdrawal", async () => {
    const ac = new AbortController();
    const events: SpeakerEvent[] = [];
    const done = (async () => {
      for await (const e of sB.watch(ac.signal)) events.push(e);
      return "ended";
    })().catch((err: unknown) => err);
    const rib = (): RibPath[] => events.flatMap((e) => (e.kind === "rib" ? e.paths : []));
    try {
      await eventually("watching", async () => events, (es) => es.some((e) => e.kind === "watching"));
      await sA.addLocalPaths(vpcOnA, paths);

      const listed = await eventually("the four routes on B", () => sB.listRib("evpn"), (ps) => ps.length === 4);
      expect(byPrefix(listed)).toEqual(byPrefix(paths.map(seenOnB)));
      await eventually("four BEST events", async () => rib(), (ps) => new Set(ps.map((p) => p.prefix)).size === 4);
      expect(byPrefix(rib())).toEqual(byPrefix(paths.map(seenOnB)));
      // B's vpc-a imports RT 65000:10, vpc-b does not; nothing becomes a VPN route.
      expect((await sB.listVrfPaths("vpc-a", "evpn")).map((p) => [p.prefix, p.nextHop, p.evpn?.vni, p.local]).sort()).toEqual(
        paths.map((p) => [p.prefix, p.nextHop, p.vni, false]).sort(),
      );
      expect(await sB.listVrfPaths("vpc-b", "evpn")).toEqual([]);
      expect(await sB.listRib("ipv4")).toEqual([]);

      // A new VNI for one prefix replaces its route on B.
      const [first] = paths as [VxlanLocalPath];
      await sA.addLocalPaths(vpcOnA, [{ ...first, vni: 10011 }]);
      await eventually("the new VNI on B", () => sB.listRib("evpn"), (ps) => ps.some((p) => p.prefix === first.prefix && p.evpn?.vni === 10011));

      events.length = 0;
      await sA.deleteLocalPaths(vpcOnA, paths);
      await eventually("the withdrawals on B", () => sB.listRib("evpn"), (ps) => ps.length === 0);
      const gone = await eventually("four withdrawal events", async () => rib().filter((p) => p.withdraw), (ps) => ps.length === 4);
      expect(gone.map((p) => [p.prefix, p.rd, p.evpn?.vni]).sort()).toEqual(paths.map((p) => [p.prefix, rt(10), p.prefix === first.prefix ? 10011 : p.vni]).sort());
    } finally {
      ac.abort();
    }
    expect(await done).toBe("ended");
  });

  it("other EVPN route types from the fabric are ignored; a type-5 route without a router MAC is reported with its problem", async () => {
    const ac = new AbortController();
    const events: SpeakerEvent[] = [];
    const done = (async () => {
      for await (const e of sB.watch(ac.signal)) events.push(e);
      return "ended";
    })().catch((err: unknown) => err);
    try {
      await eventually("watching", async () => events, (es) => es.some((e) => e.kind === "watching"));
      const common = ["rd", "65000:30", "rt", "65000:30", "encap", "vxlan", "nexthop", "198.51.100.3", "-a", "evpn"];
      await cli(a, dA, "global", "rib", "add", "macadv", "02:00:5e:10:00:30", "10.3.0.1", "etag", "0", "label", "30030", "router-mac", "02:00:5e:10:00:30", ...common);
      await cli(a, dA, "global", "rib", "add", "multicast", "198.51.100.3", "etag", "0", ...common);
      // (gobgp 4.8's CLI needs the gateway spelled out: without one it sends "invalid IP", which gobgpd refuses.)
      await cli(a, dA, "global", "rib", "add", "prefix", "10.3.0.0/16", "gw", "0.0.0.0", "etag", "0", "label", "30030", ...common);
      // All three reach B's table (gobgpd has them) …
      await eventually("three EVPN routes in B's table", () => cli(b, dB, "global", "rib", "-a", "evpn"), (out) => out.split("\n").filter((l) => l.includes("65000:30")).length === 3);
      // … and B's Speaker reports only the type-5 one, whose missing router MAC it names.
      const listed = await sB.listRib("evpn");
      expect(listed).toEqual([
        {
          family: "ipv4",
          rd: rt(30),
          prefix: "10.3.0.0/16",
          rts: [rt(30)],
          nextHop: "198.51.100.3",
          evpn: { vni: 30030, routerMac: "" },
          problem: "no router MAC extended community",
          best: true,
          local: false,
          neighbor: addr.a,
          withdraw: false,
        },
      ]);
      await eventually("its event", async () => events, (es) => es.some((e) => e.kind === "rib" && e.paths.some((p) => p.prefix === "10.3.0.0/16")));
      expect(events.flatMap((e) => (e.kind === "rib" ? e.paths : []))).toEqual(listed);
      // The watch goes on: a route kvrf originates afterwards is still reported.
      await sA.addLocalPaths(vpcOnA, [paths[0] as VxlanLocalPath]);
      await eventually("a later event", async () => events, (es) => es.some((e) => e.kind === "rib" && e.paths.some((p) => p.prefix === paths[0]?.prefix)));
      await sA.deleteLocalPaths(vpcOnA, [paths[0] as VxlanLocalPath]);
      await cli(a, dA, "global", "rib", "del", "macadv", "02:00:5e:10:00:30", "10.3.0.1", "etag", "0", "label", "30030", ...common);
      await cli(a, dA, "global", "rib", "del", "multicast", "198.51.100.3", "etag", "0", ...common);
      await cli(a, dA, "global", "rib", "del", "prefix", "10.3.0.0/16", "gw", "0.0.0.0", "etag", "0", "label", "30030", ...common);
      await eventually("B's EVPN table empty", () => sB.listRib("evpn"), (ps) => ps.length === 0);
    } finally {
      ac.abort();
    }
    expect(await done).toBe("ended");
  });
});
