// EVPN type-5 routes (RFC 9136, VXLAN) through the Speaker, one speaker and no peers: the same
// cases against the in-memory FakeSpeaker (what kvrfd's unit tests use) and real gobgpd 4.8 and
// 3.10, so the fake is held to what the daemons do (STYLE 17). Between peers: evpn-peering.test.ts.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import { SpeakerError, type RibPath, type Speaker, type SpeakerErrorKind, type SpeakerEvent, type Srv6LocalPath, type Vrf, type VxlanLocalPath } from "../../reconciler/gobgp/speaker.js";
import { FakeSpeaker } from "../../reconciler/testing/fake-speaker.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { testEnvDir, tool } from "../harness/tools.js";
import { eventually } from "../harness/process.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";

interface Target {
  name: string;
  start: () => Promise<{ speaker: Speaker; stop: () => Promise<void> }>;
}

function real(binary: "gobgpd4" | "gobgpd3"): Target["start"] {
  return async () => {
    const root = path.join(testEnvDir, "run");
    mkdirSync(root, { recursive: true });
    const dir = mkdtempSync(path.join(root, `speaker-evpn-${binary}-`));
    const d: Gobgpd = await startGobgpd({ binary: tool(binary), dir });
    const speaker = await connectSpeaker(d.socket, { timeoutMs: 5000 });
    return {
      speaker,
      stop: async () => {
        speaker.close();
        await d.stop();
        if (!keepDirs) rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

const targets: Target[] = [
  { name: "FakeSpeaker", start: async () => ({ speaker: new FakeSpeaker(), stop: async () => undefined }) },
  { name: "gobgpd 4.8", start: real("gobgpd4") },
  { name: "gobgpd 3.10", start: real("gobgpd3") },
];

async function expectKind(p: Promise<unknown>, kind: SpeakerErrorKind, message?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof SpeakerError)) throw err;
    expect(err.kind, err.message).toBe(kind);
    if (message !== undefined) expect(err.message).toMatch(message);
    return;
  }
  throw new Error("expected the call to fail");
}

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
const byPrefix = (ps: RibPath[]): RibPath[] => [...ps].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));

describe.each(targets)("EVPN type 5 through the Speaker on $name", (target) => {
  let s: Speaker;
  let stop: () => Promise<void>;
  beforeAll(async () => {
    ({ speaker: s, stop } = await target.start());
  }, 30_000);
  afterAll(async () => {
    await stop();
  }, 30_000);

  const vrfA: Vrf = { name: "vpc-a", id: 100, rd: { type: 0, asn: 65000, assigned: 4294967295 }, importRts: [rt(10)], exportRts: [rt(10)] };
  const vrfB: Vrf = { name: "vpc-b", id: 101, rd: rt(20), importRts: [rt(20)], exportRts: [rt(20)] };
  // IPv4 and IPv6 prefixes over IPv4 and IPv6 VTEPs; the router MAC in upper case comes back lower case.
  const a4: VxlanLocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "192.0.2.2", encap: "vxlan", vni: 10010, routerMac: "02:00:5E:10:00:0A" };
  const a6: VxlanLocalPath = { vrf: "vpc-a", prefix: "fd10::/64", nextHop: "2001:db8::2", encap: "vxlan", vni: 16777215, routerMac: "02:00:5e:10:00:0a" };
  const a4over6: VxlanLocalPath = { ...a4, prefix: "10.1.1.0/24", nextHop: "2001:db8::2" };
  const a6over4: VxlanLocalPath = { ...a6, prefix: "fd10:1::/64", nextHop: "192.0.2.2" };
  const own = { rd: vrfA.rd, rts: [rt(10)], best: true, local: true, withdraw: false };
  const rmac = "02:00:5e:10:00:0a";

  it("before StartBgp: vxlan paths are not-started, the EVPN table is empty", async () => {
    await expectKind(s.addLocalPaths(vrfA, [a4]), "not-started");
    await expectKind(s.addLocalPaths(vrfA, [a4, a6]), "not-started");
    await expectKind(s.deleteLocalPaths(vrfA, [a4]), "not-started");
    expect(await s.listRib("evpn")).toEqual([]);
  });

  it("originates type-5 routes for IPv4 and IPv6 prefixes over IPv4 and IPv6 VTEPs, listed with RD, RTs, VNI and router MAC", async () => {
    await s.startBgp({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    await s.addVrf(vrfA);
    await s.addVrf(vrfB);
    await s.addLocalPaths(vrfA, [a4, a6, a4over6, a6over4]);
    expect(byPrefix(await s.listRib("evpn"))).toEqual([
      { ...own, family: "ipv4", prefix: "10.1.0.0/24", nextHop: "192.0.2.2", evpn: { vni: 10010, routerMac: rmac } },
      { ...own, family: "ipv4", prefix: "10.1.1.0/24", nextHop: "2001:db8::2", evpn: { vni: 10010, routerMac: rmac } },
      { ...own, family: "ipv6", prefix: "fd10:1::/64", nextHop: "192.0.2.2", evpn: { vni: 16777215, routerMac: rmac } },
      { ...own, family: "ipv6", prefix: "fd10::/64", nextHop: "2001:db8::2", evpn: { vni: 16777215, routerMac: rmac } },
    ]);
    // They are EVPN routes only: the VPN tables do not have them.
    expect(await s.listRib("ipv4")).toEqual([]);
    expect(await s.listRib("ipv6")).toEqual([]);
  });

  it("a VRF's EVPN view lists the type-5 paths whose route targets it imports", async () => {
    const view = await s.listVrfPaths("vpc-a", "evpn");
    expect(view.map((p) => [p.prefix, p.nextHop, p.evpn?.vni, p.evpn?.routerMac, p.local]).sort()).toEqual([
      ["10.1.0.0/24", "192.0.2.2", 10010, rmac, true],
      ["10.1.1.0/24", "2001:db8::2", 10010, rmac, true],
      ["fd10:1::/64", "192.0.2.2", 16777215, rmac, true],
      ["fd10::/64", "2001:db8::2", 16777215, rmac, true],
    ]);
    expect(await s.listVrfPaths("vpc-b", "evpn")).toEqual([]);
    // GoBGP VRFs do not turn type-5 routes into VRF routes.
    expect(await s.listVrfPaths("vpc-a", "ipv4")).toEqual([]);
  });

  it("adding a prefix again with another VNI, router MAC or VTEP replaces its path", async () => {
    await s.addLocalPaths(vrfA, [{ ...a4, vni: 10011, routerMac: "02:00:5e:10:00:0b", nextHop: "192.0.2.3" }]);
    const p = (await s.listRib("evpn")).filter((x) => x.prefix === "10.1.0.0/24");
    expect(p).toEqual([{ ...own, family: "ipv4", prefix: "10.1.0.0/24", nextHop: "192.0.2.3", evpn: { vni: 10011, routerMac: "02:00:5e:10:00:0b" } }]);
    await s.addLocalPaths(vrfA, [a4]);
  });

  it("a VPN route and a type-5 route of the same RD and prefix are different routes", async () => {
    const vpn: Srv6LocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "2001:db8::2", encap: "srv6", sid: "fc00:0:2::a:0:1", behavior: 19 };
    await s.addLocalPaths(vrfA, [vpn]);
    expect((await s.listRib("ipv4")).map((p) => [p.prefix, p.sid, p.evpn])).toEqual([["10.1.0.0/24", "fc00:0:2::a:0:1", undefined]]);
    expect((await s.listRib("evpn")).filter((p) => p.prefix === "10.1.0.0/24").map((p) => p.evpn?.vni)).toEqual([10010]);
    await s.deleteLocalPaths(vrfA, [vpn]);
    expect(await s.listRib("ipv4")).toEqual([]);
    expect((await s.listRib("evpn")).filter((p) => p.prefix === "10.1.0.0/24")).toHaveLength(1);
  });

  it("refuses what gobgpd would mangle or crash on, before it is sent", async () => {
    await expectKind(s.addLocalPaths(vrfA, [{ ...a4, vni: 0 }]), "invalid", /vni 0 is not a VNI/);
    await expectKind(s.addLocalPaths(vrfA, [{ ...a4, vni: 1 << 24 }]), "invalid", /vni 16777216/);
    await expectKind(s.addLocalPaths(vrfA, [a6, { ...a4, routerMac: "02:00:5e:10:00:0a:00:01" }]), "invalid", /not a MAC address/);
    await expectKind(s.addLocalPaths(vrfA, [{ ...a4, routerMac: "01:00:5e:00:00:01" }]), "invalid", /multicast/);
    await expectKind(s.addLocalPaths(vrfA, [{ ...a4, nextHop: "" }]), "invalid", /nextHop/);
    await expectKind(s.addLocalPaths({ ...vrfA, rd: { type: 0, asn: 4200000001, assigned: 1 } }, [a4]), "invalid", /2-byte ASN/);
    expect(await s.listRib("evpn")).toHaveLength(4);
  });

  it("watch reports type-5 best paths as they come and go", async () => {
    const ac = new AbortController();
    const events: SpeakerEvent[] = [];
    const done = (async () => {
      for await (const e of s.watch(ac.signal)) events.push(e);
    })();
    const rib = (): RibPath[] => events.flatMap((e) => (e.kind === "rib" ? e.paths : []));
    try {
      await eventually("watching", async () => events, (es) => es.some((e) => e.kind === "watching"));
      const b4: VxlanLocalPath = { vrf: "vpc-b", prefix: "10.2.0.0/16", nextHop: "192.0.2.2", encap: "vxlan", vni: 20020, routerMac: rmac };
      await s.addLocalPaths(vrfB, [b4]);
      await eventually("the new path", async () => rib(), (ps) => ps.some((p) => p.prefix === "10.2.0.0/16"));
      expect(rib().filter((p) => p.prefix === "10.2.0.0/16")).toEqual([
        { family: "ipv4", rd: rt(20), prefix: "10.2.0.0/16", rts: [rt(20)], nextHop: "192.0.2.2", evpn: { vni: 20020, routerMac: rmac }, best: true, local: true, withdraw: false },
      ]);
      await s.deleteLocalPaths(vrfB, [b4]);
      const w = await eventually("the withdrawal", async () => rib(), (ps) => ps.some((p) => p.prefix === "10.2.0.0/16" && p.withdraw));
      expect(w.find((p) => p.withdraw)).toMatchObject({ prefix: "10.2.0.0/16", rd: rt(20), evpn: { vni: 20020 }, withdraw: true });
      expect(w.find((p) => p.withdraw)?.problem).toBeUndefined();
    } finally {
      ac.abort();
      await done;
    }
  });

  it("withdraws exactly (twice is fine), and DeleteVrf withdraws the VRF's type-5 routes", async () => {
    await s.deleteLocalPaths(vrfA, [a4over6]);
    await s.deleteLocalPaths(vrfA, [a4over6]);
    expect((await s.listRib("evpn")).map((p) => p.prefix).sort()).toEqual(["10.1.0.0/24", "fd10:1::/64", "fd10::/64"]);
    await s.deleteVrf("vpc-a");
    expect(await s.listRib("evpn")).toEqual([]);
    await s.deleteVrf("vpc-b");
    // Nothing above upset the daemon.
    expect(await s.getGlobal()).toMatchObject({ asn: 65000 });
  });
});
