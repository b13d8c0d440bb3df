// EVPN type-5 (RFC 9136) for VXLAN on the v4 API: golden protobuf bytes of what kvrf sends, round
// trips through the wire format, and what is read back from paths kvrf did not make.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ExtendedCommunitySchema } from "../../proto/gen/api/extcom_pb.js";
import { DestinationSchema, PathSchema, PeerSchema, WatchEventResponseSchema } from "../../proto/gen/api/gobgp_pb.js";
import { NLRISchema } from "../../proto/gen/api/nlri_pb.js";
import type { PeerConfig, RibPath, Vrf, VxlanLocalPath } from "./speaker.js";
import { localEvpnPathToV4, localPathToV4, rdToV4, ribPathFromV4, ribPathsFromV4, vrfPathsFromV4, eventFromV4 } from "./convert-v4.js";
import { peerFrom, peerTo } from "./convert-common.js";

function wire<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  return fromBinary(schema, toBinary(schema, create(schema, init)));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ascii = (s: string): string => Buffer.from(s).toString("hex");
const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });

const vrf: Vrf = { name: "vpc-a", id: 100, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10), { type: 1, address: "192.0.2.1", assigned: 7 }] };
const lp4: VxlanLocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "192.0.2.2", encap: "vxlan", vni: 10010, routerMac: "02:00:5E:10:00:0A" };
const lp6: VxlanLocalPath = { ...lp4, prefix: "fd10::/64", nextHop: "2001:db8::2" };

describe("local path (EVPN type 5)", () => {
  it("is an EVPN path: RD, zero ESI (always present), tag 0, gateway 0.0.0.0, VNI as label; VTEP in MP_REACH; RTs, VXLAN encapsulation, router MAC", () => {
    const nlri = {
      nlri: {
        case: "evpnIpPrefix",
        value: { rd: rdToV4(vrf.rd), esi: { type: 0, value: new Uint8Array(9) }, ethernetTag: 0, ipPrefix: "10.1.0.0", ipPrefixLen: 24, gwAddress: "0.0.0.0", label: 10010 },
      },
    };
    const family = { afi: 25, safi: 70 };
    expect(localEvpnPathToV4(vrf, lp4)).toEqual({
      family,
      nlri,
      isWithdraw: false,
      pattrs: [
        { attr: { case: "origin", value: { origin: 0 } } },
        { attr: { case: "mpReach", value: { family, nextHops: ["192.0.2.2"], nlris: [nlri] } } },
        {
          attr: {
            case: "extendedCommunities",
            value: {
              communities: [
                { extcom: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 10 } } },
                { extcom: { case: "ipv4AddressSpecific", value: { isTransitive: true, subType: 2, address: "192.0.2.1", localAdmin: 7 } } },
                { extcom: { case: "encap", value: { tunnelType: 8 } } },
                { extcom: { case: "routerMac", value: { mac: "02:00:5e:10:00:0a" } } },
              ],
            },
          },
        },
      ],
    });
    expect(localEvpnPathToV4(vrf, lp4, true).isWithdraw).toBe(true);
    expect(localPathToV4(vrf, lp4)).toEqual(localEvpnPathToV4(vrf, lp4));
  });

  it("golden bytes: NLRI field 9 (evpn_ip_prefix) with rd 1, esi 2 (9 zero octets), ip_prefix 4, ip_prefix_len 5, gw_address 6, label 7", () => {
    const nlri = localEvpnPathToV4(vrf, lp4).nlri as MessageInitShape<typeof NLRISchema>;
    const rd = "0a08" + "0a06" + "08e8fb03" + "100a"; // rd{two_octet_asn{admin 65000, assigned 10}}
    const esi = "120b" + "1209" + "00".repeat(9); // esi{value: 9 zero octets} (type 0 is the default, not sent)
    const body = rd + esi + "2208" + ascii("10.1.0.0") + "2818" + "3207" + ascii("0.0.0.0") + "389a4e"; // label 10010
    expect(hex(toBinary(NLRISchema, create(NLRISchema, nlri)))).toBe("4a2f" + body);
  });

  it("golden bytes: encapsulation (extcom 8, tunnel type 8) and router MAC (extcom 14)", () => {
    const p = localEvpnPathToV4(vrf, lp4);
    const ec = p.pattrs?.[2]?.attr;
    const communities = ec?.case === "extendedCommunities" ? (ec.value.communities ?? []) : [];
    expect(communities.slice(2).map((c) => hex(toBinary(ExtendedCommunitySchema, create(ExtendedCommunitySchema, c))))).toEqual([
      "4202" + "0808",
      "7213" + "0a11" + ascii("02:00:5e:10:00:0a"),
    ]);
  });

  it("an IPv6 prefix gets gateway ::, an IPv6 VTEP stays the next hop", () => {
    const p = localEvpnPathToV4(vrf, lp6);
    expect(p.nlri?.nlri).toMatchObject({ case: "evpnIpPrefix", value: { ipPrefix: "fd10::", ipPrefixLen: 64, gwAddress: "::" } });
    expect(p.pattrs?.[1]?.attr).toMatchObject({ case: "mpReach", value: { nextHops: ["2001:db8::2"] } });
  });

  it.each([
    [{ vni: 0 }, /vni 0 is not a VNI \(1 to 16777215\)/],
    [{ vni: 16777216 }, /vni 16777216/],
    [{ vni: 1.5 }, /vni 1.5/],
    [{ routerMac: "02:00:5e:10:00" }, /not a MAC address/],
    // net.ParseMAC in gobgpd would take these, and send 8 of their bytes.
    [{ routerMac: "02:00:5e:10:00:0a:00:01" }, /not a MAC address/],
    [{ routerMac: "0200.5e10.000a" }, /not a MAC address/],
    [{ routerMac: "01:00:5e:00:00:01" }, /multicast/],
    [{ routerMac: "00:00:00:00:00:00" }, /all zeros/],
    [{ nextHop: "vtep" }, /nextHop/],
    [{ prefix: "10.1.0.5/24" }, /not canonical/],
  ] as [Partial<VxlanLocalPath>, RegExp][])("refuses %j", (over, msg) => {
    expect(() => localEvpnPathToV4(vrf, { ...lp4, ...over })).toThrow(msg);
  });

  it("refuses an unknown encapsulation (a caller that got around the types)", () => {
    expect(() => localPathToV4(vrf, { ...lp4, encap: "gre" } as unknown as VxlanLocalPath)).toThrow(/unknown encapsulation "gre"/);
  });
});

describe("global EVPN table", () => {
  const local4: RibPath = {
    family: "ipv4",
    rd: rt(10),
    prefix: "10.1.0.0/24",
    rts: [rt(10), { type: 1, address: "192.0.2.1", assigned: 7 }],
    nextHop: "192.0.2.2",
    evpn: { vni: 10010, routerMac: "02:00:5e:10:00:0a" },
    best: true,
    local: true,
    withdraw: false,
  };

  it("kvrf's own paths read back with RD, RTs (not the EVPN communities), VNI, router MAC and VTEP", () => {
    expect(ribPathFromV4(wire(PathSchema, localEvpnPathToV4(vrf, lp4)), true)).toEqual(local4);
    expect(ribPathFromV4(wire(PathSchema, localEvpnPathToV4(vrf, lp6)), true)).toEqual({ ...local4, family: "ipv6", prefix: "fd10::/64", nextHop: "2001:db8::2" });
  });

  /** A type-5 path from a peer, as gobgpd 4.8 reports one (ESI and gateway filled in). */
  const remote = (over: { label?: number; gw?: string; esi?: Uint8Array; communities?: MessageInitShape<typeof ExtendedCommunitySchema>[] } = {}): MessageInitShape<typeof PathSchema> => ({
    nlri: {
      nlri: {
        case: "evpnIpPrefix",
        value: {
          rd: rdToV4(rt(20)),
          esi: { type: 0, value: over.esi ?? new Uint8Array(9) },
          ipPrefix: "fd10:20::",
          ipPrefixLen: 64,
          gwAddress: over.gw ?? "::",
          label: over.label ?? 20020,
        },
      },
    },
    family: { afi: 25, safi: 70 },
    neighborIp: "192.0.2.9",
    pattrs: [
      { attr: { case: "mpReach", value: { family: { afi: 25, safi: 70 }, nextHops: ["2001:db8::9"] } } },
      {
        attr: {
          case: "extendedCommunities",
          value: {
            communities: over.communities ?? [
              { extcom: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 20 } } },
              { extcom: { case: "encap", value: { tunnelType: 8 } } },
              { extcom: { case: "routerMac", value: { mac: "02:00:5e:10:00:14" } } },
            ],
          },
        },
      },
    ],
  });
  const good = { family: "ipv6", rd: rt(20), prefix: "fd10:20::/64", rts: [rt(20)], nextHop: "2001:db8::9", evpn: { vni: 20020, routerMac: "02:00:5e:10:00:14" }, best: true, local: false, neighbor: "192.0.2.9", withdraw: false };

  it("a remote path: neighbor, VTEP, VNI (24 bits, the whole label), router MAC", () => {
    expect(ribPathFromV4(wire(PathSchema, remote()), true)).toEqual(good);
    expect(ribPathFromV4(wire(PathSchema, remote({ label: 16777215 })), true)).toEqual({ ...good, evpn: { ...good.evpn, vni: 16777215 } });
  });

  const rtOnly = [{ extcom: { case: "twoOctetAsSpecific" as const, value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 20 } } }];
  it.each([
    ["no router MAC", remote({ communities: rtOnly }), { evpn: { vni: 20020, routerMac: "" }, problem: "no router MAC extended community" }],
    ["a malformed router MAC", remote({ communities: [...rtOnly, { extcom: { case: "routerMac", value: { mac: "02:00:5e:10:00" } } }] }), { evpn: { vni: 20020, routerMac: "" }, problem: 'router MAC "02:00:5e:10:00" is not a MAC address' }],
    ["VNI 0", remote({ label: 0 }), { evpn: { vni: 0, routerMac: "02:00:5e:10:00:14" }, problem: "label 0 is not a VNI (1 to 16777215)" }],
    ["a label beyond 24 bits", remote({ label: 16777216 }), { evpn: { vni: 16777216, routerMac: "02:00:5e:10:00:14" }, problem: "label 16777216 is not a VNI (1 to 16777215)" }],
    [
      "MPLS encapsulation",
      remote({ communities: [...rtOnly, { extcom: { case: "encap", value: { tunnelType: 10 } } }, { extcom: { case: "routerMac", value: { mac: "02:00:5e:10:00:14" } } }] }),
      { problem: "encapsulation 10 is not VXLAN (8)" },
    ],
    ["a gateway address (overlay index)", remote({ gw: "fd10:20::1" }), { problem: "gateway address fd10:20::1 (an overlay index) is not supported" }],
    ["a non-zero ESI (overlay index)", remote({ esi: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1) }), { problem: "a non-zero ESI (an overlay index) is not supported" }],
  ] as const)("a path with %s is reported with a problem, not dropped or thrown", (_, path, want) => {
    expect(ribPathFromV4(wire(PathSchema, path), true)).toEqual({ ...good, ...want });
  });

  it("a prefix that is not one is reported too", () => {
    const p = remote();
    const n = p.nlri?.nlri;
    if (n?.case === "evpnIpPrefix" && n.value !== undefined) n.value.ipPrefixLen = 129;
    expect(ribPathFromV4(wire(PathSchema, p), true)?.problem).toBe('prefix "fd10:20::/129" is not an IP prefix');
  });

  it("no encapsulation community at all is taken as VXLAN (configured, RFC 8365 §5.1.3)", () => {
    const p = remote({ communities: [...rtOnly, { extcom: { case: "routerMac", value: { mac: "02:00:5e:10:00:14" } } }] });
    expect(ribPathFromV4(wire(PathSchema, p), true)).toEqual(good);
  });

  it("ignores other EVPN route types (here a MAC/IP route, NLRI case 6, unknown to kvrf's subset)", () => {
    // NLRI{evpn_macadv (6): {ethernet_tag (3): 1}} then Path.family (9) = 25/70.
    const bytes = Buffer.concat([Buffer.from("0a04" + "3202" + "1801", "hex"), Buffer.from(toBinary(PathSchema, create(PathSchema, { family: { afi: 25, safi: 70 } })))]);
    const p = fromBinary(PathSchema, bytes);
    expect(p.nlri?.nlri.case).toBeUndefined();
    expect(ribPathFromV4(p, true)).toBeUndefined();
    expect(ribPathsFromV4(create(DestinationSchema, { paths: [p, wire(PathSchema, remote())] }))).toEqual([{ ...good, best: false }]);
  });

  it("a withdrawal (no attributes) is reported with its VNI and no judgement", () => {
    const w = wire(PathSchema, { ...remote(), pattrs: [], isWithdraw: true });
    expect(ribPathFromV4(w, false)).toEqual({ ...good, rts: [], nextHop: "", evpn: { vni: 20020, routerMac: "" }, best: false, withdraw: true });
  });

  it("watch: a BEST event with a type-5 path is a rib event", () => {
    const e = eventFromV4(wire(WatchEventResponseSchema, { event: { case: "table", value: { paths: [remote()] } } }));
    expect(e).toEqual({ kind: "rib", paths: [good] });
  });

  it("a VRF's EVPN view lists type-5 paths as they are", () => {
    const dest = wire(DestinationSchema, { paths: [remote()] });
    expect(vrfPathsFromV4("vpc-b", dest)).toEqual([{ vrf: "vpc-b", prefix: "fd10:20::/64", nextHop: "2001:db8::9", evpn: good.evpn, best: true, local: false, neighbor: "192.0.2.9" }]);
  });
});

describe("peer families", () => {
  it("l2vpn-evpn is AFI/SAFI 25/70 and round-trips", () => {
    const peer: PeerConfig = { address: "192.0.2.9", asn: 65000, families: ["vpnv4", "l2vpn-evpn"] };
    expect(peerTo(peer).afiSafis).toEqual([
      { config: { family: { afi: 1, safi: 128 }, enabled: true } },
      { config: { family: { afi: 25, safi: 70 }, enabled: true } },
    ]);
    expect(peerFrom(wire(PeerSchema, peerTo(peer)))).toEqual({ ...peer, state: "unknown" });
  });

  it("refuses a family kvrf does not know", () => {
    expect(() => peerTo({ address: "192.0.2.9", asn: 65000, families: ["evpn" as "l2vpn-evpn"] })).toThrow(/unknown family evpn/);
  });
});
