// Speaker types ↔ GoBGP v4 API messages (package api: typed oneofs, no Any), for the parts that
// differ from v3; convert-common.ts builds the rest. Pure functions; the request builders return
// init shapes (plain objects) so tests can compare them directly.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Attribute, PrefixSID, PrefixSIDSchema } from "../../proto/gen/api/attribute_pb.js";
import type { RouteDistinguisher, RouteDistinguisherSchema } from "../../proto/gen/api/common_pb.js";
import type { ExtendedCommunity, ExtendedCommunitySchema, RouteTarget, RouteTargetSchema } from "../../proto/gen/api/extcom_pb.js";
import {
  DefinedType,
  MatchSet_Type,
  PolicyDirection,
  ResetPeerRequest_Direction,
  RouteAction,
  TableType,
  WatchEventRequest_Table_Filter_Type,
  type Destination,
  type Path,
  type PathSchema,
  type Vrf as V4Vrf,
  type VrfSchema,
  type WatchEventRequestSchema,
  type WatchEventResponse,
} from "../../proto/gen/api/gobgp_pb.js";
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

/** The v4 numbers of the policy enums. */
export const policyEnumsV4: PolicyEnums = {
  definedType: { neighbor: DefinedType.NEIGHBOR, "ext-community": DefinedType.EXT_COMMUNITY },
  matchAny: MatchSet_Type.ANY,
  routeAction: { none: RouteAction.UNSPECIFIED, accept: RouteAction.ACCEPT, reject: RouteAction.REJECT },
  direction: { import: PolicyDirection.IMPORT, export: PolicyDirection.EXPORT },
  resetDirection: { in: ResetPeerRequest_Direction.IN, out: ResetPeerRequest_Direction.OUT, both: ResetPeerRequest_Direction.BOTH },
};

function unexpected(message: string): SpeakerError {
  return new SpeakerError("other", `gobgpd v4 answered something kvrf cannot read: ${message}`);
}

export function rdToV4(v: AdminAssigned): MessageInitShape<typeof RouteDistinguisherSchema> {
  switch (v.type) {
    case 0:
      return { rd: { case: "twoOctetAsn", value: { admin: v.asn, assigned: v.assigned } } };
    case 1:
      return { rd: { case: "ipAddress", value: { admin: v.address, assigned: v.assigned } } };
    case 2:
      return { rd: { case: "fourOctetAsn", value: { admin: v.asn, assigned: v.assigned } } };
  }
}

export function rdFromV4(rd: RouteDistinguisher | undefined): AdminAssigned {
  switch (rd?.rd.case) {
    case "twoOctetAsn":
      return { type: 0, asn: rd.rd.value.admin, assigned: rd.rd.value.assigned };
    case "ipAddress":
      return { type: 1, address: rd.rd.value.admin, assigned: rd.rd.value.assigned };
    case "fourOctetAsn":
      return { type: 2, asn: rd.rd.value.admin, assigned: rd.rd.value.assigned };
    default:
      throw unexpected("a route distinguisher of unknown layout");
  }
}

/** A route target: the transitive extended community of sub-type 2 (RFC 4360 §4, RFC 5668). */
export function rtToV4(v: AdminAssigned): MessageInitShape<typeof RouteTargetSchema> {
  switch (v.type) {
    case 0:
      return { rt: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: v.asn, localAdmin: v.assigned } } };
    case 1:
      return { rt: { case: "ipv4AddressSpecific", value: { isTransitive: true, subType: 2, address: v.address, localAdmin: v.assigned } } };
    case 2:
      return { rt: { case: "fourOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: v.asn, localAdmin: v.assigned } } };
  }
}

export function rtFromV4(rt: RouteTarget): AdminAssigned {
  switch (rt.rt.case) {
    case "twoOctetAsSpecific":
      return { type: 0, asn: rt.rt.value.asn, assigned: rt.rt.value.localAdmin };
    case "ipv4AddressSpecific":
      return { type: 1, address: rt.rt.value.address, assigned: rt.rt.value.localAdmin };
    case "fourOctetAsSpecific":
      return { type: 2, asn: rt.rt.value.asn, assigned: rt.rt.value.localAdmin };
    default:
      throw unexpected("a route target of unknown layout");
  }
}

/** A route target as an extended community of a path attribute. */
export function rtToExtcomV4(v: AdminAssigned): MessageInitShape<typeof ExtendedCommunitySchema> {
  const rt = rtToV4(v).rt;
  switch (rt?.case) {
    case "twoOctetAsSpecific":
      return { extcom: { case: "twoOctetAsSpecific", value: rt.value } };
    case "ipv4AddressSpecific":
      return { extcom: { case: "ipv4AddressSpecific", value: rt.value } };
    case "fourOctetAsSpecific":
      return { extcom: { case: "fourOctetAsSpecific", value: rt.value } };
    default:
      throw unexpected("a route target of unknown layout");
  }
}

/** The route target an extended community is, if it is one (transitive, sub-type 2). */
export function rtFromExtcomV4(c: ExtendedCommunity): AdminAssigned | undefined {
  switch (c.extcom.case) {
    case "twoOctetAsSpecific":
    case "fourOctetAsSpecific": {
      const v = c.extcom.value;
      if (v.subType !== routeTargetSubType || !v.isTransitive) return undefined;
      return { type: c.extcom.case === "twoOctetAsSpecific" ? 0 : 2, asn: v.asn, assigned: v.localAdmin };
    }
    case "ipv4AddressSpecific": {
      const v = c.extcom.value;
      if (v.subType !== routeTargetSubType || !v.isTransitive) return undefined;
      return { type: 1, address: v.address, assigned: v.localAdmin };
    }
    default:
      return undefined;
  }
}

export function vrfToV4(vrf: Vrf): MessageInitShape<typeof VrfSchema> {
  return vrfTo(vrf, rdToV4, rtToV4);
}

export function vrfFromV4(v: V4Vrf): Vrf {
  return vrfFrom(v, rdFromV4, rtFromV4);
}

export function prefixSidToV4(sid: string, behavior: number): MessageInitShape<typeof PrefixSIDSchema> {
  return {
    tlvs: [
      {
        tlv: {
          case: "l3Service",
          value: {
            subTlvs: {
              [srv6SidInformationSubTlv]: {
                tlvs: [
                  {
                    tlv: {
                      case: "information",
                      value: {
                        sid: sidToBytes(sid),
                        endpointBehavior: behavior,
                        subSubTlvs: { [srv6SidStructureSubSubTlv]: { tlvs: [{ tlv: { case: "structure", value: { ...sidStructure } } }] } },
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
  };
}

/**
 * The first SRv6 SID Information sub-TLV of an L3 service TLV, if the attribute has one, with its
 * SID Structure sub-sub-TLV (the transposition, applied with the NLRI's label by convert-common.ts).
 */
export function srv6FromV4(attr: PrefixSID): Srv6ServiceTlv | undefined {
  for (const tlv of attr.tlvs) {
    if (tlv.tlv.case !== "l3Service") continue;
    for (const sub of tlv.tlv.value.subTlvs[srv6SidInformationSubTlv]?.tlvs ?? []) {
      if (sub.tlv.case !== "information") continue;
      const sid = sidFromBytes(sub.tlv.value.sid);
      if (sid === undefined) continue;
      const out: Srv6ServiceTlv = { sid, behavior: sub.tlv.value.endpointBehavior };
      for (const ss of sub.tlv.value.subSubTlvs[srv6SidStructureSubSubTlv]?.tlvs ?? []) {
        if (ss.tlv.case === "structure") {
          const { locatorBlockLength, locatorNodeLength, functionLength, argumentLength, transpositionLength, transpositionOffset } = ss.tlv.value;
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
 * SRv6 L3 service TLV. What gobgpd builds itself from a path added with vrf_id (Vrf.ToGlobalPath),
 * except that its NLRI text carries the RD from the start, which gobgpd 4.8 keys adj-out updates
 * by (docs/kvrfd.md). A withdrawal needs only the NLRI, but carrying the rest does no harm.
 */
export function localVpnPathToV4(vrf: Vrf, path: Srv6LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalGlobalPath(vrf, path);
  const family = vpnFamily(prefix.family);
  const nlri = { nlri: { case: "labeledVpnIpPrefix" as const, value: { labels: [], rd: rdToV4(vrf.rd), prefix: prefix.address, prefixLen: prefix.length } } };
  return {
    family,
    nlri,
    isWithdraw: withdraw,
    pattrs: [
      { attr: { case: "origin", value: { origin: 0 } } },
      { attr: { case: "mpReach", value: { family, nextHops: [path.nextHop], nlris: [nlri] } } },
      { attr: { case: "extendedCommunities", value: { communities: vrf.exportRts.map(rtToExtcomV4) } } },
      { attr: { case: "prefixSid", value: prefixSidToV4(path.sid, path.behavior) } },
    ],
  };
}

/**
 * A local path of `vrf` as an EVPN IP prefix route (RFC 9136 type 5) for VXLAN, for the global
 * table: the VRF's RD, ESI 0 (always present: gobgpd crashes without one), ethernet tag 0, no
 * gateway (0.0.0.0 or ::, never ""), the VNI as the label; the next hop (VTEP) in MP_REACH; the
 * export route targets, the VXLAN encapsulation and the router MAC extended communities.
 */
export function localEvpnPathToV4(vrf: Vrf, path: VxlanLocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalGlobalPath(vrf, path);
  const family = { ...evpnFamily };
  const nlri = {
    nlri: {
      case: "evpnIpPrefix" as const,
      value: {
        rd: rdToV4(vrf.rd),
        esi: evpnZeroEsi(),
        ethernetTag: 0,
        ipPrefix: prefix.address,
        ipPrefixLen: prefix.length,
        gwAddress: evpnNoGateway(prefix.family),
        label: path.vni,
      },
    },
  };
  const communities: MessageInitShape<typeof ExtendedCommunitySchema>[] = [
    ...vrf.exportRts.map(rtToExtcomV4),
    { extcom: { case: "encap", value: { tunnelType: tunnelTypeVxlan } } },
    { extcom: { case: "routerMac", value: { mac: checkRouterMac(path.routerMac, "routerMac") } } },
  ];
  return {
    family,
    nlri,
    isWithdraw: withdraw,
    pattrs: [
      { attr: { case: "origin", value: { origin: 0 } } },
      { attr: { case: "mpReach", value: { family, nextHops: [path.nextHop], nlris: [nlri] } } },
      { attr: { case: "extendedCommunities", value: { communities } } },
    ],
  };
}

/** A local path in the global-table form of its encapsulation. */
export function localPathToV4(vrf: Vrf, path: LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  return path.encap === "vxlan" ? localEvpnPathToV4(vrf, path, withdraw) : localVpnPathToV4(vrf, path, withdraw);
}

/** What kvrf reads from a path's attributes. */
function attributesFromV4(pattrs: readonly Attribute[]): PathAttributes {
  const out = noAttributes();
  for (const a of pattrs) {
    if (a.attr.case === "nextHop") out.nextHop = a.attr.value.nextHop;
    else if (a.attr.case === "mpReach") out.nextHop = a.attr.value.nextHops[0] ?? out.nextHop;
    else if (a.attr.case === "prefixSid") out.srv6 = srv6FromV4(a.attr.value);
    else if (a.attr.case === "extendedCommunities") {
      for (const c of a.attr.value.communities) {
        if (c.extcom.case === "encap") out.tunnelTypes.push(c.extcom.value.tunnelType);
        else if (c.extcom.case === "routerMac") out.routerMac ??= c.extcom.value.mac;
        else {
          const rt = rtFromExtcomV4(c);
          if (rt !== undefined) out.rts.push(rt);
        }
      }
    }
  }
  return out;
}

/**
 * A path of the global table (ListPath GLOBAL or a BEST event): VPN, or EVPN type 5; undefined
 * for other families and other EVPN route types.
 */
export function ribPathFromV4(p: Path, best: boolean): RibPath | undefined {
  const n = p.nlri?.nlri;
  if (n?.case === "labeledVpnIpPrefix") return ribPath(p, n.value, () => rdFromV4(n.value.rd), attributesFromV4(p.pattrs), best);
  if (n?.case === "evpnIpPrefix") return evpnRibPath(p, n.value, () => rdFromV4(n.value.rd), attributesFromV4(p.pattrs), best);
  return undefined;
}

export function ribPathsFromV4(dest: Destination): RibPath[] {
  return ribPathsOf(dest.paths, ribPathFromV4);
}

function vrfPathFromV4(vrf: string, p: Path, best: boolean): VrfPath | undefined {
  const n = p.nlri?.nlri;
  if (p.isWithdraw) return undefined;
  if (n?.case === "prefix") return vrfPath(vrf, p, n.value, attributesFromV4(p.pattrs), best);
  if (n?.case === "evpnIpPrefix") return evpnVrfPath(vrf, p, n.value, attributesFromV4(p.pattrs), best);
  return undefined;
}

export function vrfPathsFromV4(vrf: string, dest: Destination): VrfPath[] {
  return vrfPathsOf(dest.paths, (p, best) => vrfPathFromV4(vrf, p, best));
}

export const watchRequestV4: MessageInitShape<typeof WatchEventRequestSchema> = watchRequest(WatchEventRequest_Table_Filter_Type.BEST);

export function eventFromV4(r: WatchEventResponse): SpeakerEvent | undefined {
  return eventFrom(r, ribPathFromV4);
}
