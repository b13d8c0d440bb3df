// Speaker types ↔ GoBGP v3 API messages (package apipb), for the parts that differ from v4;
// convert-common.ts builds the rest. v3 packs NLRIs (EVPN ones included), attributes, RDs, RTs,
// extended communities and every level of the Prefix-SID into google.protobuf.Any ("type.googleapis.com/apipb.<Message>"), and its enums have
// no UNSPECIFIED value (TableType.VRF = 4, Filter BEST = 0). Pure functions.
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyIs, anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import {
  EVPNIPPrefixRouteSchema,
  EncapExtendedSchema,
  ExtendedCommunitiesAttributeSchema,
  FourOctetAsSpecificExtendedSchema,
  IPAddressPrefixSchema,
  LabeledVPNIPAddressPrefixSchema,
  IPv4AddressSpecificExtendedSchema,
  MpReachNLRIAttributeSchema,
  NextHopAttributeSchema,
  OriginAttributeSchema,
  PrefixSIDSchema,
  RouteDistinguisherFourOctetASNSchema,
  RouteDistinguisherIPAddressSchema,
  RouteDistinguisherTwoOctetASNSchema,
  RouterMacExtendedSchema,
  SRv6InformationSubTLVSchema,
  SRv6L3ServiceTLVSchema,
  SRv6StructureSubSubTLVSchema,
  TwoOctetAsSpecificExtendedSchema,
  type PrefixSID,
} from "../../proto/gen/apipb/attribute_pb.js";
import {
  DefinedType,
  MatchSet_Type,
  PolicyDirection,
  ResetPeerRequest_SoftResetDirection,
  RouteAction,
  TableType,
  WatchEventRequest_Table_Filter_Type,
  type Destination,
  type Path,
  type PathSchema,
  type Vrf as V3Vrf,
  type VrfSchema,
  type WatchEventRequestSchema,
  type WatchEventResponse,
} from "../../proto/gen/apipb/gobgp_pb.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import { SpeakerError, type LocalPath, type RibPath, type SpeakerEvent, type Srv6LocalPath, type Vrf, type VrfPath, type VxlanLocalPath } from "./speaker.js";
import {
  checkLocalGlobalPath,
  checkRouterMac,
  evpnFamily,
  evpnNoGateway,
  evpnZeroEsi,
  routeTargetSubType,
  sidFromBytes,
  sidStructure,
  sidToBytes,
  srv6SidInformationSubTlv,
  srv6SidStructureSubSubTlv,
  tunnelTypeVxlan,
  vpnFamily,
} from "./convert.js";
import {
  eventFrom,
  evpnRibPath,
  evpnVrfPath,
  noAttributes,
  ribPath,
  ribPathsOf,
  vrfFrom,
  vrfPath,
  vrfPathsOf,
  vrfTo,
  watchRequest,
  type PathAttributes,
  type PolicyEnums,
} from "./convert-common.js";
import type { Srv6ServiceTlv } from "./srv6-transposition.js";

export const vrfTable = TableType.VRF;
export const globalTable = TableType.GLOBAL;

/** The v3 numbers of the policy enums (no UNSPECIFIED values: ANY is 0, IN is 0). */
export const policyEnumsV3: PolicyEnums = {
  definedType: { neighbor: DefinedType.NEIGHBOR, "ext-community": DefinedType.EXT_COMMUNITY },
  matchAny: MatchSet_Type.ANY,
  routeAction: { none: RouteAction.NONE, accept: RouteAction.ACCEPT, reject: RouteAction.REJECT },
  direction: { import: PolicyDirection.IMPORT, export: PolicyDirection.EXPORT },
  resetDirection: { in: ResetPeerRequest_SoftResetDirection.IN, out: ResetPeerRequest_SoftResetDirection.OUT, both: ResetPeerRequest_SoftResetDirection.BOTH },
};

function unexpected(message: string): SpeakerError {
  return new SpeakerError("other", `gobgpd v3 answered something kvrf cannot read: ${message}`);
}

function pack<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(schema, create(schema, init));
}

function unpack<Desc extends DescMessage>(any: Any | undefined, schema: Desc): MessageShape<Desc> | undefined {
  return any !== undefined && anyIs(any, schema) ? anyUnpack(any, schema) : undefined;
}

export function rdToV3(v: AdminAssigned): Any {
  switch (v.type) {
    case 0:
      return pack(RouteDistinguisherTwoOctetASNSchema, { admin: v.asn, assigned: v.assigned });
    case 1:
      return pack(RouteDistinguisherIPAddressSchema, { admin: v.address, assigned: v.assigned });
    case 2:
      return pack(RouteDistinguisherFourOctetASNSchema, { admin: v.asn, assigned: v.assigned });
  }
}

export function rdFromV3(rd: Any | undefined): AdminAssigned {
  const two = unpack(rd, RouteDistinguisherTwoOctetASNSchema);
  if (two) return { type: 0, asn: two.admin, assigned: two.assigned };
  const ip = unpack(rd, RouteDistinguisherIPAddressSchema);
  if (ip) return { type: 1, address: ip.admin, assigned: ip.assigned };
  const four = unpack(rd, RouteDistinguisherFourOctetASNSchema);
  if (four) return { type: 2, asn: four.admin, assigned: four.assigned };
  throw unexpected(`a route distinguisher of type ${rd?.typeUrl ?? "(none)"}`);
}

/** A route target: the transitive extended community of sub-type 2 (RFC 4360 §4, RFC 5668). */
export function rtToV3(v: AdminAssigned): Any {
  switch (v.type) {
    case 0:
      return pack(TwoOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn: v.asn, localAdmin: v.assigned });
    case 1:
      return pack(IPv4AddressSpecificExtendedSchema, { isTransitive: true, subType: 2, address: v.address, localAdmin: v.assigned });
    case 2:
      return pack(FourOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn: v.asn, localAdmin: v.assigned });
  }
}

export function rtFromV3(rt: Any): AdminAssigned {
  const two = unpack(rt, TwoOctetAsSpecificExtendedSchema);
  if (two) return { type: 0, asn: two.asn, assigned: two.localAdmin };
  const ip = unpack(rt, IPv4AddressSpecificExtendedSchema);
  if (ip) return { type: 1, address: ip.address, assigned: ip.localAdmin };
  const four = unpack(rt, FourOctetAsSpecificExtendedSchema);
  if (four) return { type: 2, asn: four.asn, assigned: four.localAdmin };
  throw unexpected(`a route target of type ${rt.typeUrl}`);
}

/** The route target an extended community (Any) is, if it is one (transitive, sub-type 2). */
export function rtFromExtcomV3(c: Any): AdminAssigned | undefined {
  const two = unpack(c, TwoOctetAsSpecificExtendedSchema);
  if (two) return two.subType === routeTargetSubType && two.isTransitive ? { type: 0, asn: two.asn, assigned: two.localAdmin } : undefined;
  const ip = unpack(c, IPv4AddressSpecificExtendedSchema);
  if (ip) return ip.subType === routeTargetSubType && ip.isTransitive ? { type: 1, address: ip.address, assigned: ip.localAdmin } : undefined;
  const four = unpack(c, FourOctetAsSpecificExtendedSchema);
  if (four) return four.subType === routeTargetSubType && four.isTransitive ? { type: 2, asn: four.asn, assigned: four.localAdmin } : undefined;
  return undefined;
}

export function vrfToV3(vrf: Vrf): MessageInitShape<typeof VrfSchema> {
  return vrfTo(vrf, rdToV3, rtToV3);
}

export function vrfFromV3(v: V3Vrf): Vrf {
  return vrfFrom(v, rdFromV3, rtFromV3);
}

/** Prefix-SID with one SRv6 L3 service TLV; v3 wraps each (sub-)sub-TLV list in SRv6TLV{Any}. */
export function prefixSidToV3(sid: string, behavior: number): Any {
  const structure = pack(SRv6StructureSubSubTLVSchema, { ...sidStructure });
  const information = pack(SRv6InformationSubTLVSchema, {
    sid: sidToBytes(sid),
    endpointBehavior: behavior,
    subSubTlvs: { [srv6SidStructureSubSubTlv]: { tlv: [structure] } },
  });
  const l3Service = pack(SRv6L3ServiceTLVSchema, { subTlvs: { [srv6SidInformationSubTlv]: { tlv: [information] } } });
  return pack(PrefixSIDSchema, { tlvs: [l3Service] });
}

/**
 * The first SRv6 SID Information sub-TLV of an L3 service TLV, if the attribute has one, with its
 * SID Structure sub-sub-TLV (as srv6FromV4; each level is an Any here).
 */
export function srv6FromV3(attr: PrefixSID): Srv6ServiceTlv | undefined {
  for (const tlv of attr.tlvs) {
    const l3 = unpack(tlv, SRv6L3ServiceTLVSchema);
    for (const sub of l3?.subTlvs[srv6SidInformationSubTlv]?.tlv ?? []) {
      const info = unpack(sub, SRv6InformationSubTLVSchema);
      const sid = info && sidFromBytes(info.sid);
      if (info === undefined || sid === undefined) continue;
      const out: Srv6ServiceTlv = { sid, behavior: info.endpointBehavior };
      for (const ss of info.subSubTlvs[srv6SidStructureSubSubTlv]?.tlv ?? []) {
        const st = unpack(ss, SRv6StructureSubSubTLVSchema);
        if (st !== undefined) {
          const { locatorBlockLength, locatorNodeLength, functionLength, argumentLength, transpositionLength, transpositionOffset } = st;
          out.structure = { locatorBlockLength, locatorNodeLength, functionLength, argumentLength, transpositionLength, transpositionOffset };
          break;
        }
      }
      return out;
    }
  }
  return undefined;
}

/**
 * A local path of `vrf` in VPN form, for the global table: NLRI with the VRF's RD (no label: the
 * SID travels in the Prefix-SID), the VRF's export route targets, the next hop in MP_REACH and the
 * SRv6 L3 service TLV (as convert-v4.ts localVpnPathToV4).
 */
export function localVpnPathToV3(vrf: Vrf, path: Srv6LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalGlobalPath(vrf, path);
  const family = vpnFamily(prefix.family);
  const nlri = pack(LabeledVPNIPAddressPrefixSchema, { labels: [], rd: rdToV3(vrf.rd), prefix: prefix.address, prefixLen: prefix.length });
  return {
    family,
    nlri,
    isWithdraw: withdraw,
    pattrs: [
      pack(OriginAttributeSchema, { origin: 0 }),
      pack(MpReachNLRIAttributeSchema, { family, nextHops: [path.nextHop], nlris: [nlri] }),
      pack(ExtendedCommunitiesAttributeSchema, { communities: vrf.exportRts.map(rtToV3) }),
      prefixSidToV3(path.sid, path.behavior),
    ],
  };
}

/**
 * A local path of `vrf` as an EVPN IP prefix route (RFC 9136 type 5) for VXLAN, for the global
 * table (as convert-v4.ts localEvpnPathToV4; the ESI is always present: gobgpd crashes without one).
 */
export function localEvpnPathToV3(vrf: Vrf, path: VxlanLocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalGlobalPath(vrf, path);
  const family = { ...evpnFamily };
  const nlri = pack(EVPNIPPrefixRouteSchema, {
    rd: rdToV3(vrf.rd),
    esi: evpnZeroEsi(),
    ethernetTag: 0,
    ipPrefix: prefix.address,
    ipPrefixLen: prefix.length,
    gwAddress: evpnNoGateway(prefix.family),
    label: path.vni,
  });
  const communities = [
    ...vrf.exportRts.map(rtToV3),
    pack(EncapExtendedSchema, { tunnelType: tunnelTypeVxlan }),
    pack(RouterMacExtendedSchema, { mac: checkRouterMac(path.routerMac, "routerMac") }),
  ];
  return {
    family,
    nlri,
    isWithdraw: withdraw,
    pattrs: [
      pack(OriginAttributeSchema, { origin: 0 }),
      pack(MpReachNLRIAttributeSchema, { family, nextHops: [path.nextHop], nlris: [nlri] }),
      pack(ExtendedCommunitiesAttributeSchema, { communities }),
    ],
  };
}

/** A local path in the global-table form of its encapsulation. */
export function localPathToV3(vrf: Vrf, path: LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  return path.encap === "vxlan" ? localEvpnPathToV3(vrf, path, withdraw) : localVpnPathToV3(vrf, path, withdraw);
}

/** What kvrf reads from a path's attributes; each Any is one attribute. */
function attributesFromV3(pattrs: readonly Any[]): PathAttributes {
  const out = noAttributes();
  for (const a of pattrs) {
    const nh = unpack(a, NextHopAttributeSchema);
    if (nh) out.nextHop = nh.nextHop;
    const mp = unpack(a, MpReachNLRIAttributeSchema);
    if (mp) out.nextHop = mp.nextHops[0] ?? out.nextHop;
    const ps = unpack(a, PrefixSIDSchema);
    if (ps) out.srv6 = srv6FromV3(ps);
    const ec = unpack(a, ExtendedCommunitiesAttributeSchema);
    for (const c of ec?.communities ?? []) {
      const encap = unpack(c, EncapExtendedSchema);
      if (encap) out.tunnelTypes.push(encap.tunnelType);
      const rmac = unpack(c, RouterMacExtendedSchema);
      if (rmac) out.routerMac ??= rmac.mac;
      const rt = rtFromExtcomV3(c);
      if (rt !== undefined) out.rts.push(rt);
    }
  }
  return out;
}

/**
 * A path of the global table (ListPath GLOBAL or a BEST event): VPN, or EVPN type 5; undefined
 * for other families and other EVPN route types.
 */
export function ribPathFromV3(p: Path, best: boolean): RibPath | undefined {
  const vpn = unpack(p.nlri, LabeledVPNIPAddressPrefixSchema);
  if (vpn !== undefined) return ribPath(p, vpn, () => rdFromV3(vpn.rd), attributesFromV3(p.pattrs), best);
  const evpn = unpack(p.nlri, EVPNIPPrefixRouteSchema);
  if (evpn !== undefined) return evpnRibPath(p, evpn, () => rdFromV3(evpn.rd), attributesFromV3(p.pattrs), best);
  return undefined;
}

export function ribPathsFromV3(dest: Destination): RibPath[] {
  return ribPathsOf(dest.paths, ribPathFromV3);
}

function vrfPathFromV3(vrf: string, p: Path, best: boolean): VrfPath | undefined {
  if (p.isWithdraw) return undefined;
  const unicast = unpack(p.nlri, IPAddressPrefixSchema);
  if (unicast !== undefined) return vrfPath(vrf, p, unicast, attributesFromV3(p.pattrs), best);
  const evpn = unpack(p.nlri, EVPNIPPrefixRouteSchema);
  if (evpn !== undefined) return evpnVrfPath(vrf, p, evpn, attributesFromV3(p.pattrs), best);
  return undefined;
}

export function vrfPathsFromV3(vrf: string, dest: Destination): VrfPath[] {
  return vrfPathsOf(dest.paths, (p, best) => vrfPathFromV3(vrf, p, best));
}

export const watchRequestV3: MessageInitShape<typeof WatchEventRequestSchema> = watchRequest(WatchEventRequest_Table_Filter_Type.BEST);

export function eventFromV3(r: WatchEventResponse): SpeakerEvent | undefined {
  return eventFrom(r, ribPathFromV3);
}
