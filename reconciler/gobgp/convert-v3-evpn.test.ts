// EVPN type-5 (RFC 9136) for VXLAN on the v3 API: NLRI, RD and extended communities packed as
// google.protobuf.Any (type URLs checked), golden bytes, round trips and what is read back.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, anyUnpack, AnySchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  EVPNIPPrefixRouteSchema,
  EncapExtendedSchema,
  ExtendedCommunitiesAttributeSchema,
  MpReachNLRIAttributeSchema,
  OriginAttributeSchema,
  RouterMacExtendedSchema,
  TwoOctetAsSpecificExtendedSchema,
} from "../../proto/gen/apipb/attribute_pb.js";
import { DestinationSchema, PathSchema, PeerSchema, WatchEventResponseSchema } from "../../proto/gen/apipb/gobgp_pb.js";
import { registry } from "../../shared/gobgp/v3.js";
import type { PeerConfig, Vrf, VxlanLocalPath } from "./speaker.js";
import { eventFromV3, localEvpnPathToV3, localPathToV3, rdFromV3, rdToV3, ribPathFromV3, ribPathsFromV3, vrfPathsFromV3 } from "./convert-v3.js";
import { peerFrom, peerTo } from "./convert-common.js";

function wire<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  return fromBinary(schema, toBinary(schema, create(schema, init)));
}

const url = (name: string) => `type.googleapis.com/apipb.${name}`;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ascii = (s: string): string => Buffer.from(s).toString("hex");
const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
const pack = <Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>) => anyPack(schema, create(schema, init));

const vrf: Vrf = { name: "vpc-a", id: 100, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
const lp4: VxlanLocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "192.0.2.2", encap: "vxlan", vni: 10010, routerMac: "02:00:5e:10:00:0a" };
const lp6: VxlanLocalPath = { ...lp4, prefix: "fd10::/64", nextHop: "2001:db8::2" };

describe("local path (EVPN type 5, Any)", () => {
  it("packs the NLRI as apipb.EVPNIPPrefixRoute (RD Any, zero ESI, tag 0, gateway of the prefix's family, VNI label) and the communities as Any", () => {
    const p = wire(PathSchema, localEvpnPathToV3(vrf, lp4));
    expect(p.family).toMatchObject({ afi: 25, safi: 70 });
    expect(p.nlri?.typeUrl).toBe(url("EVPNIPPrefixRoute"));
    const nlri = p.nlri && anyUnpack(p.nlri, EVPNIPPrefixRouteSchema);
    expect(nlri).toMatchObject({ esi: { type: 0, value: new Uint8Array(9) }, ethernetTag: 0, ipPrefix: "10.1.0.0", ipPrefixLen: 24, gwAddress: "0.0.0.0", label: 10010 });
    expect(nlri?.rd?.typeUrl).toBe(url("RouteDistinguisherTwoOctetASN"));
    expect(rdFromV3(nlri?.rd)).toEqual(vrf.rd);
    expect(p.pattrs.map((a) => a.typeUrl)).toEqual([url("OriginAttribute"), url("MpReachNLRIAttribute"), url("ExtendedCommunitiesAttribute")]);
    const mp = anyUnpack(p.pattrs[1] ?? create(AnySchema), MpReachNLRIAttributeSchema);
    expect(mp).toMatchObject({ family: { afi: 25, safi: 70 }, nextHops: ["192.0.2.2"] });
    expect(mp?.nlris.map((n) => n.typeUrl)).toEqual([url("EVPNIPPrefixRoute")]);
    const ec = anyUnpack(p.pattrs[2] ?? create(AnySchema), ExtendedCommunitiesAttributeSchema);
    expect(ec?.communities.map((c) => c.typeUrl)).toEqual([url("TwoOctetAsSpecificExtended"), url("EncapExtended"), url("RouterMacExtended")]);
    expect(ec?.communities.map((c) => anyUnpack(c, registry))).toMatchObject([
      { isTransitive: true, subType: 2, asn: 65000, localAdmin: 10 },
      { tunnelType: 8 },
      { mac: "02:00:5e:10:00:0a" },
    ]);
    expect(localEvpnPathToV3(vrf, lp4, true).isWithdraw).toBe(true);
    expect(localPathToV3(vrf, lp4)).toEqual(localEvpnPathToV3(vrf, lp4));
  });

  it("golden bytes of the packed NLRI: rd 1 (Any), esi 2, ip_prefix 4, ip_prefix_len 5, gw_address 6, label 7", () => {
    const nlri = localEvpnPathToV3(vrf, lp4).nlri;
    const rdUrl = ascii(url("RouteDistinguisherTwoOctetASN"));
    const rd = "0a" + (2 + rdUrl.length / 2 + 2 + 6).toString(16) + "0a" + (rdUrl.length / 2).toString(16) + rdUrl + "1206" + "08e8fb03100a";
    const esi = "120b" + "1209" + "00".repeat(9);
    expect(nlri?.typeUrl).toBe(url("EVPNIPPrefixRoute"));
    expect(hex(nlri?.value ?? new Uint8Array())).toBe(rd + esi + "2208" + ascii("10.1.0.0") + "2818" + "3207" + ascii("0.0.0.0") + "389a4e");
  });

  it("an IPv6 prefix gets gateway ::", () => {
    const p = localEvpnPathToV3(vrf, lp6);
    expect(p.nlri && anyUnpack(create(AnySchema, p.nlri), EVPNIPPrefixRouteSchema)).toMatchObject({ ipPrefix: "fd10::", ipPrefixLen: 64, gwAddress: "::" });
  });

  it("refuses what gobgpd would mangle", () => {
    expect(() => localEvpnPathToV3(vrf, { ...lp4, vni: 0 })).toThrow(/vni 0/);
    expect(() => localEvpnPathToV3(vrf, { ...lp4, routerMac: "02:00:5e:10:00:0a:00:01" })).toThrow(/not a MAC address/);
  });
});

describe("global EVPN table (Any)", () => {
  const good = { family: "ipv4", rd: rt(10), prefix: "10.1.0.0/24", rts: [rt(10)], nextHop: "192.0.2.2", evpn: { vni: 10010, routerMac: "02:00:5e:10:00:0a" }, best: true, local: true, withdraw: false };

  it("kvrf's own paths read back (gobgpd 3.10 names no neighbor as \"<nil>\")", () => {
    const p = wire(PathSchema, { ...localEvpnPathToV3(vrf, lp4), neighborIp: "<nil>" });
    expect(ribPathFromV3(p, true)).toEqual(good);
    expect(ribPathFromV3(wire(PathSchema, localEvpnPathToV3(vrf, lp6)), true)).toEqual({ ...good, family: "ipv6", prefix: "fd10::/64", nextHop: "2001:db8::2" });
  });

  const remote = (communities: ReturnType<typeof pack>[], gw = "0.0.0.0"): MessageInitShape<typeof PathSchema> => ({
    nlri: pack(EVPNIPPrefixRouteSchema, { rd: rdToV3(rt(20)), esi: { type: 0, value: new Uint8Array(9) }, ipPrefix: "10.20.0.0", ipPrefixLen: 16, gwAddress: gw, label: 20020 }),
    family: { afi: 25, safi: 70 },
    neighborIp: "192.0.2.9",
    pattrs: [pack(MpReachNLRIAttributeSchema, { family: { afi: 25, safi: 70 }, nextHops: ["192.0.2.9"] }), pack(ExtendedCommunitiesAttributeSchema, { communities })],
  });
  const rt20 = pack(TwoOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn: 65000, localAdmin: 20 });
  const remoteGood = { family: "ipv4", rd: rt(20), prefix: "10.20.0.0/16", rts: [rt(20)], nextHop: "192.0.2.9", evpn: { vni: 20020, routerMac: "02:00:5e:10:00:14" }, best: true, local: false, neighbor: "192.0.2.9", withdraw: false };

  it("a remote path, and the same with problems (reported, not thrown)", () => {
    const rmac = pack(RouterMacExtendedSchema, { mac: "02:00:5E:10:00:14" });
    const vxlan = pack(EncapExtendedSchema, { tunnelType: 8 });
    expect(ribPathFromV3(wire(PathSchema, remote([rt20, vxlan, rmac])), true)).toEqual(remoteGood);
    expect(ribPathFromV3(wire(PathSchema, remote([rt20, vxlan])), true)).toEqual({ ...remoteGood, evpn: { vni: 20020, routerMac: "" }, problem: "no router MAC extended community" });
    expect(ribPathFromV3(wire(PathSchema, remote([rt20, rmac], "10.20.0.1")), true)).toMatchObject({ problem: "gateway address 10.20.0.1 (an overlay index) is not supported" });
  });

  it("ignores other EVPN route types (an Any of a type kvrf does not model)", () => {
    const macIp = create(PathSchema, remote([rt20]));
    macIp.nlri = create(AnySchema, { typeUrl: url("EVPNMACIPAdvertisementRoute"), value: Uint8Array.of(0x18, 0x01) });
    expect(ribPathFromV3(wire(PathSchema, macIp), true)).toBeUndefined();
    expect(ribPathsFromV3(wire(DestinationSchema, { paths: [macIp] }))).toEqual([]);
  });

  it("watch: a BEST event with a type-5 path, and a VRF's EVPN view", () => {
    const path = remote([rt20, pack(RouterMacExtendedSchema, { mac: "02:00:5e:10:00:14" })]);
    expect(eventFromV3(wire(WatchEventResponseSchema, { event: { case: "table", value: { paths: [path] } } }))).toEqual({ kind: "rib", paths: [remoteGood] });
    expect(vrfPathsFromV3("vpc-b", wire(DestinationSchema, { paths: [path] }))).toEqual([
      { vrf: "vpc-b", prefix: "10.20.0.0/16", nextHop: "192.0.2.9", evpn: remoteGood.evpn, best: true, local: false, neighbor: "192.0.2.9" },
    ]);
  });

  it("peer family l2vpn-evpn round-trips as 25/70", () => {
    const peer: PeerConfig = { address: "192.0.2.9", asn: 65000, families: ["l2vpn-evpn"] };
    expect(peerFrom(wire(PeerSchema, peerTo(peer)))).toEqual({ ...peer, state: "unknown" });
  });

  it("the Any registry knows the EVPN messages", () => {
    expect(anyUnpack(pack(OriginAttributeSchema, {}), registry)).toBeDefined();
    for (const name of ["EVPNIPPrefixRoute", "EthernetSegmentIdentifier", "RouterMacExtended", "EncapExtended"]) {
      expect(registry.getMessage(`apipb.${name}`)?.typeName).toBe(`apipb.${name}`);
    }
  });
});
