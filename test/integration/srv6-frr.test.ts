// SRv6 L3VPN (RFC 9252) between FRR 8.4 (Debian's frr) and kvrf's Speaker on real gobgpds, both
// ways (docs/interop.md "SRv6 L3VPN with FRR"). One FRR (zebra + bgpd, test/harness/frr.ts) is at
// once a PE and the route reflector of two gobgpds: A speaks the API under test, B the other one.
//
//   gobgpd A (fd00::1) ── FRR (fd00::2 | fd01::2, VRF kvrf-h1-v90) ── gobgpd B (fd01::1)
//
//  - FRR as PE: its VRF exports 10.9.0.0/24 and fd09::/64 with SIDs from locator 2001:db8:1:1::/64,
//    transposed (structure 40/24/16/0, the 16 function bits in the label). kvrf's converter reads
//    them, on both gobgpds, as the SIDs FRR says it allocated, with FRR's RD and RT.
//  - kvrf as PE: the paths kvrf builds in gobgpd A (whole SID in the TLV, no transposition) show in
//    FRR with kvrf's SID as remoteSid.
//  - FRR as reflector: kvrf's paths reach gobgpd B with kvrf's SID and FRR's rewritten endpoint
//    behaviour 0xFFFF; kvrfd's trust check and route planner still install them.
//
// FRR needs a VRF to originate SRv6 VPN routes, and this host's kernel has no VRF devices. FRR's
// other VRF backend works here: zebra --vrfwnetns, where a VRF is a network namespace (the
// harness's netnsVrfs, private to the FRR daemons). A veth inside it gives the VRF connected
// prefixes to export. zebra cannot install the SIDs' seg6local routes without kernel SRv6 (they
// stay "rejected"), which does not stop bgpd from advertising them, so no vm tier is needed.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import type { V1Node } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import { srv6Behavior, type RibPath, type Speaker, type Srv6LocalPath, type Vrf } from "../../reconciler/gobgp/speaker.js";
import { remoteRoutes, vrfImports } from "../../reconciler/vrf/planner.js";
import { ignoreReason, indexNodes, nodeRecord } from "../../reconciler/vrf/trust.js";
import { locatorAnnotation } from "../../shared/api-types.js";
import { attachmentSid, parseLocator } from "../../shared/srv6-sid.js";
import { frrVpnPaths, frrVrfSids, startFrr, type Frr } from "../harness/frr.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { cleanupNetns, createNetns, ip } from "../harness/netns.js";
import { testEnvDir, tool } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
const frrVrf = "kvrf-h1-v90";

describe.each([
  ["v4", "v3"],
  ["v3", "v4"],
] as const)("SRv6 L3VPN between FRR 8.4 and gobgpd %s (reflected to gobgpd %s)", (apiA, apiB) => {
  let frr: Frr | undefined;
  let gA: Gobgpd | undefined;
  let gB: Gobgpd | undefined;
  let a: Speaker | undefined;
  let b: Speaker | undefined;
  let dir: string;
  const addrA = "fd00::1";
  const addrB = "fd01::1";
  const frrA = "fd00::2";
  const frrB = "fd01::2";
  const locatorA = parseLocator("fd00:0:0:1::/64");
  const vpc: Vrf = { name: "vpc-a", id: 10, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
  const paths: Srv6LocalPath[] = [
    { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: addrA, encap: "srv6", sid: attachmentSid(locatorA, 0xan, 1), behavior: srv6Behavior.endDT46 },
    { vrf: "vpc-a", prefix: "fd10::/64", nextHop: addrA, encap: "srv6", sid: attachmentSid(locatorA, 0xan, 2), behavior: srv6Behavior.endDX6 },
  ];

  beforeAll(async () => {
    const root = path.join(testEnvDir, "run");
    mkdirSync(root, { recursive: true });
    dir = mkdtempSync(path.join(root, `srv6-frr-${apiA}-`));
    const [nsA, nsF, nsB] = await Promise.all([createNetns("srv6-a"), createNetns("srv6-frr"), createNetns("srv6-b")]);
    await ip("link", "add", "eth0", "netns", nsA.name, "type", "veth", "peer", "name", "eth0", "netns", nsF.name);
    await ip("link", "add", "eth0", "netns", nsB.name, "type", "veth", "peer", "name", "eth1", "netns", nsF.name);
    await nsA.ip("addr", "add", `${addrA}/64`, "dev", "eth0", "nodad");
    await nsB.ip("addr", "add", `${addrB}/64`, "dev", "eth0", "nodad");
    await nsF.ip("addr", "add", `${frrA}/64`, "dev", "eth0", "nodad");
    await nsF.ip("addr", "add", `${frrB}/64`, "dev", "eth1", "nodad");
    for (const [ns, dev] of [
      [nsA, "eth0"],
      [nsB, "eth0"],
      [nsF, "eth0"],
      [nsF, "eth1"],
    ] as const) {
      await ns.ip("link", "set", dev, "up");
    }
    gA = await startGobgpd({ binary: tool(apiA === "v4" ? "gobgpd4" : "gobgpd3"), dir: path.join(dir, "gobgpd-a"), netns: nsA.name });
    gB = await startGobgpd({ binary: tool(apiB === "v4" ? "gobgpd4" : "gobgpd3"), dir: path.join(dir, "gobgpd-b"), netns: nsB.name });
    a = await connectSpeaker(gA.socket);
    b = await connectSpeaker(gB.socket);
    expect([a.api, b.api]).toEqual([apiA, apiB]);
    await a.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    await b.startBgp({ asn: 65000, routerId: "10.255.0.3", listenPort: 179 });
    for (const [s, peer, local] of [
      [a, frrA, addrA],
      [b, frrB, addrB],
    ] as const) {
      // From the configured address: FRR sends router advertisements toward peers with extended
      // next hops, these namespaces accept them (forwarding off), and a session opened from the
      // autoconfigured address is one FRR does not know (docs/interop.md). Suspected cause of the
      // one time this session never came up (CI10, gobgpd 3.10 stuck in "active").
      await s.addPeer({ address: peer, asn: 65000, families: ["vpnv4", "vpnv6"], holdTimeSeconds: 9, keepaliveSeconds: 3, localAddress: local });
      await s.addVrf(vpc);
      await s.addVrf({ name: "vpc-frr", id: 90, rd: rt(1090), importRts: [rt(90)], exportRts: [rt(1090)] });
    }
    const clients = [addrA, addrB];
    const vpnAf = (afi: string) => [` address-family ${afi} vpn`, ...clients.flatMap((c) => [`  neighbor ${c} activate`, `  neighbor ${c} route-reflector-client`]), " exit-address-family"];
    const vrfAf = (afi: string) => [
      ` address-family ${afi} unicast`,
      "  redistribute connected",
      "  sid vpn export auto",
      "  rd vpn export 65000:90",
      "  rt vpn both 65000:90",
      "  export vpn",
      "  import vpn",
      " exit-address-family",
    ];
    frr = await startFrr({
      name: `kvrft-${process.pid}-srv6-${apiA}`,
      netns: nsF.name,
      dir: path.join(dir, "frr"),
      netnsVrfs: [frrVrf],
      config: [
        "frr defaults datacenter",
        "hostname frr-srv6",
        "log stdout informational",
        "!",
        // FRR 8.4 takes no block/node lengths here; with a /64 it uses 40/24 and 16 function bits.
        "segment-routing",
        " srv6",
        "  locators",
        "   locator loc1",
        "    prefix 2001:db8:1:1::/64",
        "!",
        "router bgp 65000",
        " bgp router-id 10.255.0.2",
        " no bgp default ipv4-unicast",
        ...clients.flatMap((c) => [` neighbor ${c} remote-as 65000`, ` neighbor ${c} timers 3 9`, ` neighbor ${c} capability extended-nexthop`]),
        ...vpnAf("ipv4"),
        ...vpnAf("ipv6"),
        " segment-routing srv6",
        "  locator loc1",
        "!",
        `router bgp 65000 vrf ${frrVrf}`,
        " bgp router-id 10.255.0.2",
        ...vrfAf("ipv4"),
        ...vrfAf("ipv6"),
        "!",
      ].join("\n"),
    });
    // The VRF's own prefixes: a veth pair inside its namespace (no dummy devices on this kernel).
    await frr.vrfIp(frrVrf, "link", "add", "v0", "type", "veth", "peer", "name", "v1");
    await frr.vrfIp(frrVrf, "addr", "add", "10.9.0.1/24", "dev", "v0");
    await frr.vrfIp(frrVrf, "addr", "add", "fd09::1/64", "dev", "v0", "nodad");
    await frr.vrfIp(frrVrf, "link", "set", "v0", "up");
    await frr.vrfIp(frrVrf, "link", "set", "v1", "up");
    for (const s of [a, b]) await eventually("the session", () => s.listPeers(), (ps) => ps[0]?.state === "established");
  }, 120_000);

  afterAll(async () => {
    a?.close();
    b?.close();
    await frr?.stop();
    await gA?.stop();
    await gB?.stop();
    await cleanupNetns();
    if (!keepDirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("kvrf reads FRR's transposed SIDs as the SIDs FRR allocated, with FRR's RD and RT, on both gobgpds", async () => {
    const f = frr as Frr;
    const sids = await eventually("FRR's VRF SIDs", async () => frrVrfSids(await f.vtysh("show bgp segment-routing srv6"), frrVrf), (x) => x.ipv4 !== undefined && x.ipv6 !== undefined);
    for (const [family, prefix, sid] of [
      ["ipv4", "10.9.0.0/24", sids.ipv4],
      ["ipv6", "fd09::/64", sids.ipv6],
    ] as const) {
      if (sid === undefined) throw new Error(`FRR allocated no ${family} SID`);
      // What FRR sends: the locator in the TLV, the function bits in the label (not the SID itself).
      const [own] = await eventually(`FRR's ${prefix}`, () => frrVpnPaths(f, family, "65000:90", prefix), (ps) => ps.length > 0);
      expect(own?.remoteSid).not.toBe(sid);
      expect(own?.remoteLabel).toBeGreaterThan(0);
      for (const [s, via] of [
        [a as Speaker, frrA],
        [b as Speaker, frrB],
      ] as const) {
        const listed = await eventually(`${prefix} in gobgpd ${s.api}`, () => s.listRib(family), (ps) => ps.some((p) => p.prefix === prefix));
        const want: RibPath = {
          family,
          rd: rt(90),
          prefix,
          rts: [rt(90)],
          nextHop: via,
          sid,
          behavior: 0xffff,
          best: true,
          local: false,
          neighbor: via,
          withdraw: false,
        };
        expect(listed.filter((p) => p.prefix === prefix)).toEqual([want]);
      }
    }
  });

  it("FRR accepts kvrf's SIDs (whole SID, no transposition) and shows them as remoteSid", async () => {
    const s = a as Speaker;
    await s.addLocalPaths(vpc, paths);
    for (const p of paths) {
      const family = p.prefix.includes(":") ? "ipv6" : "ipv4";
      const [seen] = await eventually(`kvrf's ${p.prefix} in FRR`, () => frrVpnPaths(frr as Frr, family, "65000:10", p.prefix), (ps) => ps.length > 0);
      expect(seen?.remoteSid).toBe(p.sid);
      expect(seen?.valid).toBe(true);
      // FRR 8.4's JSON shows the IPv6 next hop of a VPNv4 path as "0.0.0.0"; its text shows fd00::1.
      expect(seen?.peer?.peerId).toBe(addrA);
    }
  });

  it("FRR reflects kvrf's paths to the other gobgpd with kvrf's SID and behaviour 0xFFFF, and kvrfd still installs them", async () => {
    const s = b as Speaker;
    // The previous test added the paths on gobgpd A (vitest runs a file's tests in order).
    const listed = [
      ...(await eventually("reflected IPv4", () => s.listRib("ipv4"), (ps) => ps.some((p) => p.prefix === "10.1.0.0/24"))),
      ...(await eventually("reflected IPv6", () => s.listRib("ipv6"), (ps) => ps.some((p) => p.prefix === "fd10::/64"))),
    ].filter((p) => p.rd.type === 0 && p.rd.assigned === 10);
    expect(listed.map((p) => [p.prefix, p.sid, p.behavior, p.nextHop, p.neighbor, p.problem])).toEqual(
      // FRR 8.4 as reflector replaces the endpoint behaviour with 0xFFFF (opaque); the SID is kept.
      paths.map((p) => [p.prefix, p.sid, 0xffff, addrA, frrB, undefined]),
    );
    // Node A's published locator and address: the trust check accepts A's SIDs via A's next hop.
    const nodeA: V1Node = { metadata: { name: "node-a", annotations: { [locatorAnnotation]: locatorA.text } }, status: { addresses: [{ type: "InternalIP", address: addrA }] } };
    const nodes = indexNodes([nodeRecord(nodeA)]);
    for (const p of listed) expect(ignoreReason(p, 0xan, undefined, nodes)).toBeUndefined();
    const { routes, unusable } = remoteRoutes(vrfImports("vpc-a", [rt(10)], listed), 10, "eth0");
    expect(unusable).toEqual([]);
    expect(routes.filter((r) => r.kind === undefined).map((r) => [r.prefix, r.sid])).toEqual(paths.map((p) => [p.prefix, p.sid]));

    await (a as Speaker).deleteLocalPaths(vpc, paths);
    await eventually("the withdrawals at gobgpd B", async () => [...(await s.listRib("ipv4")), ...(await s.listRib("ipv6"))], (ps) => !ps.some((p) => p.rd.type === 0 && p.rd.assigned === 10));
  });
});
