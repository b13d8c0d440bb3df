// The FakeSpeaker's remote EVPN paths (what kvrfd's unit tests feed it); its local paths are held
// to real gobgpds by test/integration/speaker-evpn.test.ts.
import { describe, expect, it } from "vitest";
import type { SpeakerEvent } from "../gobgp/speaker.js";
import { FakeSpeaker } from "./fake-speaker.js";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });

describe("FakeSpeaker with remote EVPN type-5 paths", () => {
  it("lists them apart from VPN paths of the same RD and prefix, imports them by RT, reports them and their withdrawal", async () => {
    const f = new FakeSpeaker();
    await f.startBgp({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    await f.addVrf({ name: "vpc-20", id: 20, rd: rt(1020), importRts: [rt(20)], exportRts: [rt(1020)] });
    const events: SpeakerEvent[] = [];
    const ac = new AbortController();
    const done = (async () => {
      for await (const e of f.watch(ac.signal)) events.push(e);
    })();
    f.learn({ prefix: "10.2.0.0/16", nextHop: "fd00:ff::b", sid: "fd00:0:b::1", behavior: 20, rts: [rt(20)], neighbor: "fd00:ff::1" });
    f.learn({ prefix: "10.2.0.0/16", nextHop: "192.0.2.11", evpn: { vni: 20, routerMac: "02:00:5e:10:00:14" }, rts: [rt(20)], neighbor: "192.0.2.1" });
    f.learn({ prefix: "10.3.0.0/16", nextHop: "192.0.2.11", evpn: { vni: 30, routerMac: "" }, rts: [rt(20)], neighbor: "192.0.2.1" });
    const evpn = { family: "ipv4", rd: rt(20), prefix: "10.2.0.0/16", rts: [rt(20)], nextHop: "192.0.2.11", evpn: { vni: 20, routerMac: "02:00:5e:10:00:14" }, best: true, local: false, neighbor: "192.0.2.1", withdraw: false };
    expect(await f.listRib("evpn")).toEqual([evpn, { ...evpn, prefix: "10.3.0.0/16", evpn: { vni: 30, routerMac: "" }, problem: "no router MAC extended community" }]);
    expect((await f.listRib("ipv4")).map((p) => [p.prefix, p.sid])).toEqual([["10.2.0.0/16", "fd00:0:b::1"]]);
    expect((await f.listVrfPaths("vpc-20", "evpn")).map((p) => [p.prefix, p.evpn?.vni])).toEqual([
      ["10.2.0.0/16", 20],
      ["10.3.0.0/16", 30],
    ]);
    f.withdraw("10.2.0.0/16", "192.0.2.1", true);
    expect((await f.listRib("evpn")).map((p) => p.prefix)).toEqual(["10.3.0.0/16"]);
    expect(await f.listRib("ipv4")).toHaveLength(1);
    const rib = () => events.flatMap((e) => (e.kind === "rib" ? e.paths : []));
    for (let i = 0; i < 100 && rib().length < 4; i++) await new Promise((r) => setTimeout(r, 1));
    ac.abort();
    await done;
    expect(rib().map((p) => [p.prefix, p.evpn?.vni ?? p.sid, p.withdraw])).toEqual([
      ["10.2.0.0/16", "fd00:0:b::1", false],
      ["10.2.0.0/16", 20, false],
      ["10.3.0.0/16", 30, false],
      ["10.2.0.0/16", 20, true],
    ]);
  });

  it("refuses a vxlan path the real Speaker would refuse", async () => {
    const f = new FakeSpeaker();
    await f.startBgp({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
    const vrf = { name: "vpc-20", id: 20, rd: rt(20), importRts: [rt(20)], exportRts: [rt(20)] };
    await expect(f.addLocalPaths(vrf, [{ vrf: "vpc-20", prefix: "10.2.0.0/16", nextHop: "192.0.2.1", encap: "vxlan", vni: 0, routerMac: "02:00:5e:10:00:14" }])).rejects.toThrow(/vni 0/);
    expect(f.pathCalls).toBe(0);
  });
});
