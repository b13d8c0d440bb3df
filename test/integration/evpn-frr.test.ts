// An independent BGP implementation decodes kvrf's EVPN type-5 routes, and kvrf decodes its:
// FRR 8.4 (Debian's frr; zebra + bgpd in a network namespace, test/harness/frr.ts) peered over
// IPv4 with a gobgpd (4.8 or 3.10) that kvrf's Speaker drives, family l2vpn-evpn.
//  - FRR shows kvrf's routes (IPv4 and IPv6 prefixes, IPv4 VTEP) with kvrf's RD, RT, VXLAN
//    encapsulation, router MAC and VNI, valid and best, and drops them when kvrf withdraws them.
//  - FRR originates a type-5 route without kernel VRF devices (this host has none, and a BGP VRF
//    stays "inactive" without one): the static `network … rd … ethtag … label … esi … gwip …
//    routermac …` under `address-family l2vpn evpn`, its route target set by an outbound route-map.
//    kvrf's Speaker reads it with FRR's RD, RT, router MAC and next hop, and the VNI FRR itself
//    shows: FRR encodes that label as an MPLS label (label << 4 | bottom of stack), so `label 6256`
//    is VNI 100097 on the wire and in FRR's own display. The route carries no encapsulation
//    community, which kvrf takes as VXLAN (RFC 8365 §5.1.3). kvrfd's client-side import (RibView)
//    puts it in a VPC that imports 65000:90.
// Not covered: IPv6 VTEPs. FRR 8.4 shows an EVPN route's IPv6 next hop as 0.0.0.0 (inaccessible
// unless the link has some IPv6 address), so it cannot check them (FACTS §9: IPv4 VTEPs only).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import { RibView } from "../../reconciler/gobgp/rib.js";
import type { RibPath, Speaker, SpeakerEvent, Vrf, VxlanLocalPath } from "../../reconciler/gobgp/speaker.js";
import { frrPaths, startFrr, type Frr, type FrrEvpnTable } from "../harness/frr.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { cleanupNetns, createNetns, ip } from "../harness/netns.js";
import { testEnvDir, tool } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });

describe.each(["v4", "v3"] as const)("EVPN type 5 between FRR 8.4 and gobgpd %s", (api) => {
  let frr: Frr | undefined;
  let d: Gobgpd | undefined;
  let s: Speaker;
  let dir: string;
  const gobgp = "192.0.2.1";
  const frrAddr = "192.0.2.2";
  const rmac = "02:00:5e:10:00:0a";
  const frrRmac = "02:00:5e:10:00:5a";
  const vpc: Vrf = { name: "vpc-a", id: 10, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
  const paths: VxlanLocalPath[] = [
    { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: gobgp, encap: "vxlan", vni: 10010, routerMac: rmac },
    { vrf: "vpc-a", prefix: "fd10::/64", nextHop: gobgp, encap: "vxlan", vni: 16777215, routerMac: rmac },
  ];

  beforeAll(async () => {
    const root = path.join(testEnvDir, "run");
    mkdirSync(root, { recursive: true });
    dir = mkdtempSync(path.join(root, `evpn-frr-${api}-`));
    const [nsG, nsF] = await Promise.all([createNetns("evpn-gobgp"), createNetns("evpn-frr")]);
    await ip("link", "add", "eth0", "netns", nsG.name, "type", "veth", "peer", "name", "eth0", "netns", nsF.name);
    // FRR picks the next hop of its static EVPN route from the link's addresses, an IPv6 link-local
    // one included when there is one (then it differs from run to run): keep its side IPv4 only.
    await nsF.exec("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.eth0.disable_ipv6=1");
    await nsG.ip("addr", "add", `${gobgp}/24`, "dev", "eth0");
    await nsF.ip("addr", "add", `${frrAddr}/24`, "dev", "eth0");
    await nsG.ip("link", "set", "eth0", "up");
    await nsF.ip("link", "set", "eth0", "up");
    d = await startGobgpd({ binary: tool(api === "v4" ? "gobgpd4" : "gobgpd3"), dir: path.join(dir, "gobgpd"), netns: nsG.name });
    s = await connectSpeaker(d.socket);
    await s.startBgp({ asn: 65000, routerId: "10.255.0.1", listenPort: 179 });
    await s.addPeer({ address: frrAddr, asn: 65000, families: ["l2vpn-evpn"], holdTimeSeconds: 9, keepaliveSeconds: 3 });
    await s.addVrf(vpc);
    await s.addVrf({ name: "vpc-frr", id: 90, rd: rt(1090), importRts: [rt(90)], exportRts: [rt(1090)] });
    frr = await startFrr({
      name: `kvrft-${process.pid}-${api}`,
      netns: nsF.name,
      dir: path.join(dir, "frr"),
      config: [
        "frr defaults datacenter",
        "hostname frr-evpn",
        "log stdout informational",
        "!",
        "route-map RT90 permit 10",
        " set extcommunity rt 65000:90",
        "!",
        "router bgp 65000",
        " bgp router-id 10.255.0.2",
        " no bgp default ipv4-unicast",
        ` neighbor ${gobgp} remote-as 65000`,
        ` neighbor ${gobgp} timers 3 9`,
        " address-family l2vpn evpn",
        `  neighbor ${gobgp} activate`,
        `  neighbor ${gobgp} route-map RT90 out`,
        `  network 10.9.0.0/24 rd 65000:90 ethtag 0 label 6256 esi 00:00:00:00:00:00:00:00:00:00 gwip 0.0.0.0 routermac ${frrRmac}`,
        " exit-address-family",
        "!",
      ].join("\n"),
    });
    await eventually("the session", () => s.listPeers(), (ps) => ps[0]?.state === "established");
  }, 90_000);

  afterAll(async () => {
    s.close();
    await frr?.stop();
    await d?.stop();
    await cleanupNetns();
    if (!keepDirs) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const table = (): Promise<FrrEvpnTable> => (frr as Frr).json<FrrEvpnTable>("show bgp l2vpn evpn route detail type prefix json");

  it("FRR shows kvrf's type-5 routes with kvrf's RD, RT, encapsulation, router MAC and VNI, and drops them on withdrawal", async () => {
    await s.addLocalPaths(vpc, paths);
    // FRR lists a received path before its best-path run has marked it: wait for that too.
    const chosen = (x: FrrEvpnTable, route: string): boolean => frrPaths(x, "65000:10", route).some((p) => p.bestpath?.overall === true);
    const t = await eventually("both routes in FRR, chosen", table, (x) => chosen(x, "[5]:[0]:[64]:[fd10::]") && chosen(x, "[5]:[0]:[24]:[10.1.0.0]"));
    for (const [route, vni] of [
      ["[5]:[0]:[24]:[10.1.0.0]", "10010"],
      ["[5]:[0]:[64]:[fd10::]", "16777215"],
    ] as const) {
      const [p] = frrPaths(t, "65000:10", route);
      expect(p?.vni, route).toBe(vni);
      expect(p?.extendedCommunity?.string.split(" ").sort()).toEqual(["ET:8", "RT:65000:10", `Rmac:${rmac}`]);
      expect(p?.nexthops?.map((n) => n.ip)).toEqual([gobgp]);
      expect(p?.peer?.peerId).toBe(gobgp);
      expect(p?.valid).toBe(true);
      expect(p?.bestpath?.overall).toBe(true);
    }
    await s.deleteLocalPaths(vpc, paths);
    await eventually("the withdrawals in FRR", table, (x) => frrPaths(x, "65000:10", "[5]:[0]:[24]:[10.1.0.0]").length === 0 && frrPaths(x, "65000:10", "[5]:[0]:[64]:[fd10::]").length === 0);
  });

  it("kvrf reads FRR's type-5 route with FRR's RD, RT, router MAC, next hop and the VNI FRR shows, and imports it by RT", async () => {
    const [own] = frrPaths(await table(), "65000:90", "[5]:[0]:[24]:[10.9.0.0]");
    expect(own?.vni).toBe("100097");
    const want: RibPath = {
      family: "ipv4",
      rd: rt(90),
      prefix: "10.9.0.0/24",
      rts: [rt(90)],
      nextHop: frrAddr,
      evpn: { vni: Number(own?.vni), routerMac: frrRmac },
      best: true,
      local: false,
      neighbor: frrAddr,
      withdraw: false,
    };
    const listed = await eventually("FRR's route", () => s.listRib("evpn"), (ps) => ps.some((p) => p.prefix === "10.9.0.0/24"));
    expect(listed.filter((p) => p.prefix === "10.9.0.0/24")).toEqual([want]);
    // gobgpd's VRF view by RT, and kvrfd's own client-side import (RibView), agree.
    expect((await s.listVrfPaths("vpc-frr", "evpn")).map((p) => [p.prefix, p.nextHop, p.evpn, p.problem])).toEqual([["10.9.0.0/24", frrAddr, want.evpn, undefined]]);
    expect(await s.listVrfPaths("vpc-a", "evpn")).toEqual([]);
    const view = new RibView();
    view.finishRead(view.beginRead(), listed);
    expect(view.imported([rt(90)])).toEqual([want]);
    expect(view.imported([rt(10)])).toEqual([]);

    // The same route arrives as a BEST event when the session comes back.
    const ac = new AbortController();
    const events: SpeakerEvent[] = [];
    const done = (async () => {
      for await (const e of s.watch(ac.signal)) events.push(e);
    })();
    try {
      await eventually("watching", async () => events, (es) => es.some((e) => e.kind === "watching"));
      await (frr as Frr).vtysh("clear bgp l2vpn evpn *");
      const seen = await eventually("FRR's route again", async () => events.flatMap((e) => (e.kind === "rib" ? e.paths : [])), (ps) => ps.some((p) => p.prefix === "10.9.0.0/24" && !p.withdraw));
      expect(seen.filter((p) => !p.withdraw).at(-1)).toEqual(want);
    } finally {
      ac.abort();
      await done;
    }
  });
});
