// Round trips go through the protobuf wire format, as they would to gobgpd and back; v3 packs
// RDs, RTs, NLRIs and attributes into google.protobuf.Any, so type URLs are checked too.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  ExtendedCommunitiesAttributeSchema,
  IPAddressPrefixSchema,
  LabeledVPNIPAddressPrefixSchema,
  MpReachNLRIAttributeSchema,
  NextHopAttributeSchema,
  OriginAttributeSchema,
  TwoOctetAsSpecificExtendedSchema,
  type PrefixSID,
  type SRv6InformationSubTLV,
  type SRv6L3ServiceTLV,
} from "../../proto/gen/apipb/attribute_pb.js";
import { DestinationSchema, GlobalSchema, PathSchema, PeerSchema, PeerStateSchema, TableType, VrfSchema, WatchEventResponseSchema } from "../../proto/gen/apipb/gobgp_pb.js";
import { registry } from "../../shared/gobgp/v3.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import type { PeerConfig, Srv6LocalPath, Vrf } from "./speaker.js";
import {
  eventFromV3,
  globalTable,
  localVpnPathToV3,
  prefixSidToV3,
  rdFromV3,
  rdToV3,
  rtFromV3,
  rtToV3,
  ribPathFromV3,
  ribPathsFromV3,
  srv6FromV3,
  vrfFromV3,
  vrfPathsFromV3,
  vrfTable,
  vrfToV3,
  watchRequestV3,
} from "./convert-v3.js";
import { globalFrom, peerFrom, peerTo } from "./convert-common.js";
import { sidStructure } from "./convert.js";

function wire<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  return fromBinary(schema, toBinary(schema, create(schema, init)));
}

const url = (name: string) => `type.googleapis.com/apipb.${name}`;

describe("RD and RT (v3 Any)", () => {
  it.each([
    [{ type: 0, asn: 65000, assigned: 4294967295 }, "RouteDistinguisherTwoOctetASN", "TwoOctetAsSpecificExtended"],
    [{ type: 1, address: "192.0.2.1", assigned: 65535 }, "RouteDistinguisherIPAddress", "IPv4AddressSpecificExtended"],
    [{ type: 2, asn: 4200000001, assigned: 7 }, "RouteDistinguisherFourOctetASN", "FourOctetAsSpecificExtended"],
    [{ type: 2, asn: 4294967295, assigned: 65535 }, "RouteDistinguisherFourOctetASN", "FourOctetAsSpecificExtended"],
  ] as [AdminAssigned, string, string][])("%j round-trips as %s / %s", (v, rdType, rtType) => {
    const vrf = wire(VrfSchema, { rd: rdToV3(v), importRt: [rtToV3(v)] });
    expect(vrf.rd?.typeUrl).toBe(url(rdType));
    expect(vrf.importRt.map((a) => a.typeUrl)).toEqual([url(rtType)]);
    expect(rdFromV3(vrf.rd)).toEqual(v);
    expect(vrf.importRt.map(rtFromV3)).toEqual([v]);
  });

  it("encodes an RT as the transitive route-target sub-type", () => {
    expect(anyUnpack(rtToV3({ type: 0, asn: 65000, assigned: 10 }), registry)).toMatchObject({
      isTransitive: true,
      subType: 2,
      asn: 65000,
      localAdmin: 10,
    });
  });

  it("refuses an Any it does not know", () => {
    expect(() => rdFromV3(anyPack(OriginAttributeSchema, create(OriginAttributeSchema, {})))).toThrow(/apipb\.OriginAttribute/);
    expect(() => rdFromV3(undefined)).toThrow(/\(none\)/);
  });
});

describe("VRF", () => {
  it("round-trips name, id, RD and RTs (RTs come back in canonical order)", () => {
    const vrf: Vrf = {
      name: "vpc-abc",
      id: 4294967295,
      rd: { type: 0, asn: 65000, assigned: 4294967295 },
      importRts: [
        { type: 2, asn: 4200000001, assigned: 7 },
        { type: 0, asn: 65000, assigned: 10 },
      ],
      exportRts: [{ type: 1, address: "192.0.2.1", assigned: 9 }],
    };
    expect(vrfFromV3(wire(VrfSchema, vrfToV3(vrf)))).toEqual({ ...vrf, importRts: [vrf.importRts[1], vrf.importRts[0]] });
  });
});

describe("global", () => {
  it("is undefined while gobgpd reports AS 0", () => {
    expect(globalFrom(create(GlobalSchema, {}))).toBeUndefined();
    expect(globalFrom(wire(GlobalSchema, { asn: 4200000001, routerId: "192.0.2.1", listenPort: 179 }))).toEqual({
      asn: 4200000001,
      routerId: "192.0.2.1",
      listenPort: 179,
      listenAddresses: [],
    });
  });
});

describe("peer", () => {
  it("round-trips every setting", () => {
    const full: PeerConfig = {
      address: "192.0.2.2",
      asn: 65000,
      password: "s3cret",
      routeReflectorClient: true,
      routeReflectorClusterId: "10.255.0.1",
      holdTimeSeconds: 9,
      keepaliveSeconds: 3,
      localAddress: "192.0.2.1",
      remotePort: 1790,
      families: ["vpnv6"],
    };
    const sent = create(PeerSchema, peerTo(full));
    sent.state = create(PeerStateSchema, { sessionState: 3 });
    const p = fromBinary(PeerSchema, toBinary(PeerSchema, sent));
    expect(peerFrom(p)).toEqual({ ...full, state: "active" });
    expect(p.afiSafis.map((a) => a.config?.family)).toMatchObject([{ afi: 2, safi: 128 }]);
  });
});

describe("local path (VPN form)", () => {
  const lp: Srv6LocalPath = { vrf: "vpc-a", prefix: "fd10::5/128", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00:0:2:8000:0:a:0:1", behavior: 16 };
  const vrf: Vrf = { name: "vpc-a", id: 1, rd: { type: 0, asn: 65000, assigned: 10 }, importRts: [], exportRts: [{ type: 0, asn: 65000, assigned: 10 }] };

  it("is a VPN path packed as Any: NLRI with the VRF's RD, origin IGP, MP_REACH next hop, export RTs, Prefix-SID", () => {
    const p = wire(PathSchema, localVpnPathToV3(vrf, lp));
    expect(p.family).toMatchObject({ afi: 2, safi: 128 });
    expect(p.nlri?.typeUrl).toBe(url("LabeledVPNIPAddressPrefix"));
    const nlri = p.nlri && anyUnpack(p.nlri, LabeledVPNIPAddressPrefixSchema);
    expect(nlri).toMatchObject({ prefix: "fd10::5", prefixLen: 128, labels: [] });
    expect(rdFromV3(nlri?.rd)).toEqual(vrf.rd);
    expect(p.pattrs.map((a) => a.typeUrl)).toEqual([url("OriginAttribute"), url("MpReachNLRIAttribute"), url("ExtendedCommunitiesAttribute"), url("PrefixSID")]);
    const [origin, mpReach, ec, sid] = p.pattrs.map((a) => anyUnpack(a, registry));
    expect(origin).toMatchObject({ origin: 0 });
    expect(mpReach).toMatchObject({ family: { afi: 2, safi: 128 }, nextHops: ["fd00:ff::2"] });
    const communities = p.pattrs[2] === undefined ? [] : (anyUnpack(p.pattrs[2], ExtendedCommunitiesAttributeSchema)?.communities ?? []);
    expect(ec).toBeDefined();
    expect(communities.map((c) => anyUnpack(c, TwoOctetAsSpecificExtendedSchema))).toMatchObject([{ isTransitive: true, subType: 2, asn: 65000, localAdmin: 10 }]);
    expect(srv6FromV3(sid as PrefixSID)).toEqual({ sid: "fc00:0:2:8000:0:a:0:1", behavior: 16, structure: { ...sidStructure } });
    expect(p.isWithdraw).toBe(false);
    expect(wire(PathSchema, localVpnPathToV3(vrf, lp, true)).isWithdraw).toBe(true);
    expect(globalTable).toBe(TableType.GLOBAL);
  });

  it("reads back as a local RIB path (gobgpd 3.10 names no neighbor as \"<nil>\")", () => {
    const p = wire(PathSchema, { ...localVpnPathToV3(vrf, lp), neighborIp: "<nil>" });
    expect(ribPathFromV3(p, true)).toEqual({
      family: "ipv6",
      rd: vrf.rd,
      prefix: "fd10::5/128",
      rts: [{ type: 0, asn: 65000, assigned: 10 }],
      nextHop: "fd00:ff::2",
      sid: "fc00:0:2:8000:0:a:0:1",
      behavior: 16,
      best: true,
      local: true,
      withdraw: false,
    });
  });

  it("nests SRv6TLV{Any} at every level, with kvrf's SID structure", () => {
    const ps = anyUnpack(prefixSidToV3("fc00::1", 19), registry) as PrefixSID;
    expect(ps.tlvs.map((a) => a.typeUrl)).toEqual([url("SRv6L3ServiceTLV")]);
    const l3 = anyUnpack(ps.tlvs[0] ?? anyPack(OriginAttributeSchema, create(OriginAttributeSchema)), registry) as SRv6L3ServiceTLV;
    const infoAny = l3.subTlvs[1]?.tlv[0];
    expect(infoAny?.typeUrl).toBe(url("SRv6InformationSubTLV"));
    const info = (infoAny && anyUnpack(infoAny, registry)) as SRv6InformationSubTLV;
    expect(info.endpointBehavior).toBe(19);
    const structure = info.subSubTlvs[1]?.tlv[0];
    expect(structure?.typeUrl).toBe(url("SRv6StructureSubSubTLV"));
    expect(structure && anyUnpack(structure, registry)).toMatchObject({
      locatorBlockLength: 32,
      locatorNodeLength: 32,
      functionLength: 64,
      argumentLength: 0,
      transpositionLength: 0,
      transpositionOffset: 0,
    });
  });
});

describe("VRF RIB", () => {
  it("reads local (NEXT_HOP) and remote (MP_REACH) paths; the first path of a destination is best", () => {
    const prefix = anyPack(IPAddressPrefixSchema, create(IPAddressPrefixSchema, { prefix: "10.1.0.5", prefixLen: 32 }));
    const dest = wire(DestinationSchema, {
      prefix: "65000:10:10.1.0.5/32",
      paths: [
        {
          nlri: prefix,
          pattrs: [
            anyPack(MpReachNLRIAttributeSchema, create(MpReachNLRIAttributeSchema, { nextHops: ["fd00:ff::3"] })),
            prefixSidToV3("fc00::3", 19),
          ],
          neighborIp: "fd00:ff::1",
        },
        { nlri: prefix, pattrs: [anyPack(NextHopAttributeSchema, create(NextHopAttributeSchema, { nextHop: "fd00:ff::2" }))] },
        // A withdrawal is not a path of the RIB.
        { nlri: prefix, isWithdraw: true },
      ],
    });
    expect(vrfPathsFromV3("vpc-a", dest)).toEqual([
      { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::3", sid: "fc00::3", behavior: 19, best: true, local: false, neighbor: "fd00:ff::1" },
      { vrf: "vpc-a", prefix: "10.1.0.5/32", nextHop: "fd00:ff::2", best: false, local: true },
    ]);
  });
});

describe("global VPN table", () => {
  it("reads RD, route targets (not other extended communities), SID and neighbor; the flagged path is best", () => {
    const nlri = anyPack(LabeledVPNIPAddressPrefixSchema, create(LabeledVPNIPAddressPrefixSchema, { labels: [3], rd: rdToV3({ type: 1, address: "192.0.2.1", assigned: 5 }), prefix: "10.1.0.0", prefixLen: 24 }));
    const ecs = anyPack(
      ExtendedCommunitiesAttributeSchema,
      create(ExtendedCommunitiesAttributeSchema, {
        communities: [rtToV3({ type: 2, asn: 4200000001, assigned: 9 }), anyPack(TwoOctetAsSpecificExtendedSchema, create(TwoOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 3, asn: 1, localAdmin: 1 }))],
      }),
    );
    const dest = wire(DestinationSchema, {
      prefix: "192.0.2.1:5:10.1.0.0/24",
      paths: [
        { nlri, pattrs: [anyPack(MpReachNLRIAttributeSchema, create(MpReachNLRIAttributeSchema, { nextHops: ["fd00:ff::3"] })), ecs, prefixSidToV3("fc00::3", 19)], neighborIp: "fd00:ff::1", best: true, family: { afi: 1, safi: 128 } },
        { nlri, pattrs: [anyPack(MpReachNLRIAttributeSchema, create(MpReachNLRIAttributeSchema, { nextHops: ["fd00:ff::4"] }))], neighborIp: "fd00:ff::9", family: { afi: 1, safi: 128 } },
      ],
    });
    expect(ribPathsFromV3(dest)).toEqual([
      {
        family: "ipv4",
        rd: { type: 1, address: "192.0.2.1", assigned: 5 },
        prefix: "10.1.0.0/24",
        rts: [{ type: 2, asn: 4200000001, assigned: 9 }],
        nextHop: "fd00:ff::3",
        sid: "fc00::3",
        behavior: 19,
        best: true,
        local: false,
        neighbor: "fd00:ff::1",
        withdraw: false,
      },
      { family: "ipv4", rd: { type: 1, address: "192.0.2.1", assigned: 5 }, prefix: "10.1.0.0/24", rts: [], nextHop: "fd00:ff::4", best: false, local: false, neighbor: "fd00:ff::9", withdraw: false },
    ]);
    // A unicast path is not a VPN path.
    expect(ribPathFromV3(wire(PathSchema, { nlri: anyPack(IPAddressPrefixSchema, create(IPAddressPrefixSchema, { prefix: "10.0.0.0", prefixLen: 8 })) }), true)).toBeUndefined();
  });
});

describe("watch", () => {
  it("asks for best-path changes (no initial table: the reader lists it once watching) and peer changes (BEST is 0 in v3)", () => {
    expect(watchRequestV3).toEqual({ peer: {}, table: { filters: [{ type: 0, init: false }] } });
    expect(vrfTable).toBe(TableType.VRF);
    expect(vrfTable).toBe(4);
  });

  it("maps table and peer events; END_OF_INIT means watching", () => {
    expect(eventFromV3(wire(WatchEventResponseSchema, { event: { case: "table", value: {} } }))).toBeUndefined();
    expect(eventFromV3(wire(WatchEventResponseSchema, { event: { case: "peer", value: { type: 2 } } }))).toEqual({ kind: "watching" });
    expect(
      eventFromV3(
        wire(WatchEventResponseSchema, {
          event: { case: "peer", value: { type: 3, peer: { conf: { neighborAddress: "192.0.2.7" }, state: { sessionState: 1 } } } },
        }),
      ),
    ).toEqual({ kind: "peer", address: "192.0.2.7", state: "idle" });
  });
});
