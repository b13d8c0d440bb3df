// Round trips go through the protobuf wire format, as they would to gobgpd and back.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DestinationSchema, GlobalSchema, PathSchema, PeerSchema, TableType, VrfSchema, WatchEventResponseSchema } from "../../proto/gen/api/gobgp_pb.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import type { PeerConfig, Srv6LocalPath, Vrf } from "./speaker.js";
import {
  eventFromV4,
  globalTable,
  localVpnPathToV4,
  prefixSidToV4,
  rdFromV4,
  rdToV4,
  rtFromV4,
  rtToV4,
  ribPathFromV4,
  ribPathsFromV4,
  vrfFromV4,
  vrfPathsFromV4,
  vrfTable,
  vrfToV4,
  watchRequestV4,
} from "./convert-v4.js";
import { globalFrom, peerFrom, peerTo } from "./convert-common.js";

function wire<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  return fromBinary(schema, toBinary(schema, create(schema, init)));
}

const layouts: AdminAssigned[] = [
  { type: 0, asn: 65000, assigned: 4294967295 },
  { type: 0, asn: 65535, assigned: 0 },
  { type: 1, address: "192.0.2.1", assigned: 65535 },
  { type: 2, asn: 4200000001, assigned: 7 },
  { type: 2, asn: 4294967295, assigned: 65535 },
];

describe("RD and RT (v4 oneofs)", () => {
  it.each(layouts)("%j round-trips as RD and as RT", (v) => {
    const vrf = wire(VrfSchema, { rd: rdToV4(v), importRt: [rtToV4(v)] });
    expect(rdFromV4(vrf.rd)).toEqual(v);
    expect(vrf.importRt.map(rtFromV4)).toEqual([v]);
  });

  it("encodes an RT as the transitive route-target sub-type", () => {
    expect(rtToV4({ type: 2, asn: 4200000001, assigned: 7 })).toEqual({
      rt: { case: "fourOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 4200000001, localAdmin: 7 } },
    });
  });
});

describe("VRF", () => {
  it("round-trips name, id, RD and RTs (RTs come back in canonical order)", () => {
    const vrf: Vrf = {
      name: "vpc-abc",
      id: 4294967295,
      rd: { type: 2, asn: 4200000001, assigned: 65535 },
      importRts: [
        { type: 2, asn: 4200000001, assigned: 7 },
        { type: 0, asn: 65000, assigned: 10 },
      ],
      exportRts: [{ type: 1, address: "192.0.2.1", assigned: 9 }],
    };
    expect(vrfFromV4(wire(VrfSchema, vrfToV4(vrf)))).toEqual({ ...vrf, importRts: [vrf.importRts[1], vrf.importRts[0]] });
  });

  it("refuses a 4-byte ASN in a type-0 RD instead of truncating it", () => {
    expect(() => vrfToV4({ name: "v", id: 1, rd: { type: 0, asn: 4200000001, assigned: 1 }, importRts: [], exportRts: [] })).toThrow(
      /type 0 needs a 2-byte ASN/,
    );
  });
});

describe("global", () => {
  it("is undefined while gobgpd reports AS 0", () => {
    expect(globalFrom(undefined)).toBeUndefined();
    expect(globalFrom(create(GlobalSchema, { asn: 0, routerId: "invalid IP" }))).toBeUndefined();
    expect(globalFrom(wire(GlobalSchema, { asn: 65000, routerId: "192.0.2.1", listenPort: -1, listenAddresses: ["0.0.0.0", "::"] }))).toEqual({
      asn: 65000,
      routerId: "192.0.2.1",
      listenPort: -1,
      listenAddresses: ["0.0.0.0", "::"],
    });
  });
});

describe("peer", () => {
  const full: PeerConfig = {
    address: "fd00:ff::2",
    asn: 65000,
    password: "s3cret",
    routeReflectorClient: true,
    routeReflectorClusterId: "10.255.0.1",
    holdTimeSeconds: 9,
    keepaliveSeconds: 3,
    localAddress: "fd00:ff::1",
    remotePort: 1790,
    families: ["vpnv4", "vpnv6"],
  };

  it("round-trips every setting", () => {
    expect(peerFrom(wire(PeerSchema, peerTo(full)))).toEqual({ ...full, state: "unknown" });
  });

  it("configures VPNv4/VPNv6 as AFI/SAFI 1/128 and 2/128", () => {
    expect(peerTo(full).afiSafis).toEqual([
      { config: { family: { afi: 1, safi: 128 }, enabled: true } },
      { config: { family: { afi: 2, safi: 128 }, enabled: true } },
    ]);
  });

  it("omits what gobgpd reports as unset and reads the session state", () => {
    const p = wire(PeerSchema, {
      conf: { neighborAddress: "192.0.2.7", peerAsn: 65001 },
      routeReflector: { routeReflectorClient: false, routeReflectorClusterId: "0.0.0.0" },
      transport: { localAddress: "0.0.0.0", remotePort: 179 },
      timers: { config: { holdTime: 90n, keepaliveInterval: 30n } },
      state: { sessionState: 6 },
      afiSafis: [{ config: { family: { afi: 1, safi: 1 }, enabled: true } }, { config: { family: { afi: 1, safi: 128 }, enabled: true } }],
    });
    expect(peerFrom(p)).toEqual({
      address: "192.0.2.7",
      asn: 65001,
      holdTimeSeconds: 90,
      keepaliveSeconds: 30,
      remotePort: 179,
      families: ["vpnv4"],
      state: "established",
    });
  });
});

describe("local path (VPN form)", () => {
  const lp: Srv6LocalPath = { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00:0:2::a:0:1", behavior: 19 };
  const vrf: Vrf = { name: "vpc-a", id: 100, rd: { type: 0, asn: 65000, assigned: 10 }, importRts: [], exportRts: [{ type: 0, asn: 65000, assigned: 10 }, { type: 1, address: "192.0.2.1", assigned: 7 }] };

  it("is a VPNv4 path with the VRF's RD, origin IGP, next hop in MP_REACH, export RTs, SRv6 L3 service Prefix-SID", () => {
    const nlri = { nlri: { case: "labeledVpnIpPrefix", value: { labels: [], rd: rdToV4(vrf.rd), prefix: "10.1.0.5", prefixLen: 32 } } };
    expect(localVpnPathToV4(vrf, lp)).toEqual({
      family: { afi: 1, safi: 128 },
      nlri,
      isWithdraw: false,
      pattrs: [
        { attr: { case: "origin", value: { origin: 0 } } },
        { attr: { case: "mpReach", value: { family: { afi: 1, safi: 128 }, nextHops: ["fd00:ff::2"], nlris: [nlri] } } },
        {
          attr: {
            case: "extendedCommunities",
            value: {
              communities: [
                { extcom: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 10 } } },
                { extcom: { case: "ipv4AddressSpecific", value: { isTransitive: true, subType: 2, address: "192.0.2.1", localAdmin: 7 } } },
              ],
            },
          },
        },
        { attr: { case: "prefixSid", value: prefixSidToV4(lp.sid, 19) } },
      ],
    });
    expect(localVpnPathToV4(vrf, lp, true).isWithdraw).toBe(true);
    expect(globalTable).toBe(TableType.GLOBAL);
  });

  it("reads back as a local RIB path with RD, route targets, SID and behaviour", () => {
    const p = wire(PathSchema, localVpnPathToV4(vrf, lp));
    expect(ribPathFromV4(p, true)).toEqual({
      family: "ipv4",
      rd: vrf.rd,
      prefix: "10.1.0.5/32",
      rts: [{ type: 0, asn: 65000, assigned: 10 }, { type: 1, address: "192.0.2.1", assigned: 7 }],
      nextHop: "fd00:ff::2",
      sid: "fc00:0:2::a:0:1",
      behavior: 19,
      best: true,
      local: true,
      withdraw: false,
    });
  });

  it("carries the SID, behaviour and kvrf's SID structure in RFC 9252 nesting", () => {
    const sid = prefixSidToV4("fc00:0:2::a:0:1", 18);
    expect(sid).toEqual({
      tlvs: [
        {
          tlv: {
            case: "l3Service",
            value: {
              subTlvs: {
                1: {
                  tlvs: [
                    {
                      tlv: {
                        case: "information",
                        value: {
                          sid: Uint8Array.from(Buffer.from("fc000000000200000000000a00000001", "hex")),
                          endpointBehavior: 18,
                          subSubTlvs: {
                            1: {
                              tlvs: [
                                {
                                  tlv: {
                                    case: "structure",
                                    value: {
                                      locatorBlockLength: 32,
                                      locatorNodeLength: 32,
                                      functionLength: 64,
                                      argumentLength: 0,
                                      transpositionLength: 0,
                                      transpositionOffset: 0,
                                    },
                                  },
                                },
                              ],
                            },
                          },
                        },
                      },
                    },
                  ],
                },
              },
            },
          },
        },
      ],
    });
  });

  it("uses the VPNv6 family for IPv6 prefixes", () => {
    expect(localVpnPathToV4(vrf, { ...lp, prefix: "fd10::5/128" }).family).toEqual({ afi: 2, safi: 128 });
  });

  it("refuses a non-canonical prefix and an RD that does not fit its layout", () => {
    expect(() => localVpnPathToV4(vrf, { ...lp, prefix: "10.1.0.5/24" })).toThrow(/not canonical/);
    expect(() => localVpnPathToV4({ ...vrf, rd: { type: 0, asn: 4200000001, assigned: 1 } }, lp)).toThrow(/2-byte ASN/);
  });
});

describe("global VPN table", () => {
  const vpn = (rd: number, prefix: string, len: number) => ({
    nlri: { case: "labeledVpnIpPrefix" as const, value: { labels: [16], rd: rdToV4({ type: 0, asn: 65000, assigned: rd }), prefix, prefixLen: len } },
  });
  const rt = (n: number) => ({ extcom: { case: "twoOctetAsSpecific" as const, value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: n } } });

  it("reads RD, route targets (not other extended communities), SID and neighbor; the flagged path is best", () => {
    const dest = wire(DestinationSchema, {
      prefix: "65000:10:10.1.0.5/32",
      paths: [
        {
          nlri: vpn(10, "10.1.0.5", 32),
          pattrs: [
            { attr: { case: "mpReach", value: { nextHops: ["fd00:ff:0::3"] } } },
            {
              attr: {
                case: "extendedCommunities",
                value: { communities: [rt(10), { extcom: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 3, asn: 65000, localAdmin: 99 } } }, { extcom: { case: "color", value: { color: 5 } } }] },
              },
            },
            { attr: { case: "prefixSid", value: prefixSidToV4("fc00:0:3::a:0:1", 19) } },
          ],
          neighborIp: "fd00:ff::1",
          family: { afi: 1, safi: 128 },
        },
        { nlri: vpn(10, "10.1.0.5", 32), pattrs: [{ attr: { case: "mpReach", value: { nextHops: ["fd00:ff::4"] } } }], neighborIp: "fd00:ff::9", family: { afi: 1, safi: 128 }, best: true },
      ],
    });
    expect(ribPathsFromV4(dest)).toEqual([
      {
        family: "ipv4",
        rd: { type: 0, asn: 65000, assigned: 10 },
        prefix: "10.1.0.5/32",
        rts: [{ type: 0, asn: 65000, assigned: 10 }],
        nextHop: "fd00:ff::3",
        sid: "fc00:0:3::a:0:1",
        behavior: 19,
        best: false,
        local: false,
        neighbor: "fd00:ff::1",
        withdraw: false,
      },
      { family: "ipv4", rd: { type: 0, asn: 65000, assigned: 10 }, prefix: "10.1.0.5/32", rts: [], nextHop: "fd00:ff::4", best: true, local: false, neighbor: "fd00:ff::9", withdraw: false },
    ]);
  });

  it("ignores other families (unicast, route-target membership)", () => {
    const p = wire(PathSchema, { nlri: { nlri: { case: "prefix", value: { prefix: "10.0.0.0", prefixLen: 8 } } }, family: { afi: 1, safi: 1 } });
    expect(ribPathFromV4(p, true)).toBeUndefined();
  });
});

describe("VRF RIB", () => {
  const prefixSid = prefixSidToV4("fc00:0:2::a:0:1", 19);

  it("reads local IPv4 (NEXT_HOP) and remote (MP_REACH) paths; the first path of a destination is best", () => {
    const dest = wire(DestinationSchema, {
      prefix: "65000:10:10.1.0.5/32",
      paths: [
        {
          nlri: { nlri: { case: "prefix", value: { prefix: "10.1.0.5", prefixLen: 32 } } },
          pattrs: [
            { attr: { case: "origin", value: { origin: 0 } } },
            { attr: { case: "prefixSid", value: prefixSid } },
            { attr: { case: "nextHop", value: { nextHop: "fd00:ff::2" } } },
          ],
          family: { afi: 1, safi: 1 },
        },
        {
          nlri: { nlri: { case: "prefix", value: { prefix: "10.1.0.5", prefixLen: 32 } } },
          pattrs: [{ attr: { case: "mpReach", value: { nextHops: ["fd00:ff:0::3"] } } }],
          neighborIp: "fd00:ff::1",
          family: { afi: 1, safi: 1 },
        },
      ],
    });
    expect(vrfPathsFromV4("vpc-a", dest)).toEqual([
      { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::2", sid: "fc00:0:2::a:0:1", behavior: 19, best: true, local: true },
      { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::3", best: false, local: false, neighbor: "fd00:ff::1" },
    ]);
  });
});

describe("watch", () => {
  it("asks for best-path changes (no initial table: the reader lists it once watching) and peer changes", () => {
    expect(watchRequestV4).toEqual({ peer: {}, table: { filters: [{ type: 1, init: false }] } });
    expect(vrfTable).toBe(TableType.VRF);
    expect(vrfTable).toBe(5);
  });

  const withdrawn = {
    nlri: { nlri: { case: "labeledVpnIpPrefix", value: { rd: { rd: { case: "twoOctetAsn", value: { admin: 65000, assigned: 7 } } }, prefix: "fd10::", prefixLen: 64 } } },
    family: { afi: 2, safi: 128 },
    isWithdraw: true,
  };
  it.each([
    [{ event: { case: "table", value: { paths: [] } } }, undefined],
    [
      { event: { case: "table", value: { paths: [withdrawn] } } },
      { kind: "rib", paths: [{ family: "ipv6", rd: { type: 0, asn: 65000, assigned: 7 }, prefix: "fd10::/64", rts: [], nextHop: "", best: false, local: true, withdraw: true }] },
    ],
    [
      { event: { case: "peer", value: { type: 3, peer: { state: { neighborAddress: "fd00:ff::1", sessionState: 6 } } } } },
      { kind: "peer", address: "fd00:ff::1", state: "established" },
    ],
    [{ event: { case: "peer", value: { type: 2 } } }, { kind: "watching" }],
    [{}, undefined],
  ] as const)("maps %j", (r, want) => {
    expect(eventFromV4(wire(WatchEventResponseSchema, r as MessageInitShape<typeof WatchEventResponseSchema>))).toEqual(want);
  });
});
