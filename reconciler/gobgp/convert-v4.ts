// Speaker types ↔ GoBGP v4 API messages (package api: typed oneofs, no Any). Pure functions; the
// request builders return init shapes (plain objects) so tests can compare them directly.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PrefixSID, PrefixSIDSchema } from "../../proto/gen/api/attribute_pb.js";
import type { RouteDistinguisher, RouteDistinguisherSchema } from "../../proto/gen/api/common_pb.js";
import type { ExtendedCommunity, ExtendedCommunitySchema, RouteTarget, RouteTargetSchema } from "../../proto/gen/api/extcom_pb.js";
import {
  TableType,
  WatchEventRequest_Table_Filter_Type,
  WatchEventResponse_PeerEvent_Type,
  type Destination,
  type Global,
  type GlobalSchema,
  type Path,
  type PathSchema,
  type Peer,
  type PeerSchema,
  type Vrf as V4Vrf,
  type VrfSchema,
  type WatchEventRequestSchema,
  type WatchEventResponse,
} from "../../proto/gen/api/gobgp_pb.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import {
  SpeakerError,
  type AddressFamily,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type RibPath,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "../speaker.js";
import {
  canonicalIp,
  checkAdminAssigned,
  checkGlobal,
  checkLocalPath,
  checkPeer,
  checkVrf,
  formatPrefix,
  reportedIp,
  safi,
  sessionState,
  sidFromBytes,
  sidStructure,
  sidToBytes,
  sortRouteTargets,
  srv6SidInformationSubTlv,
  srv6SidStructureSubSubTlv,
  familyOfAfi,
  routeTargetSubType,
  unicastAfi,
  vpnFamilies,
  vpnFamilyName,
} from "./convert.js";

export const vrfTable = TableType.VRF;
export const globalTable = TableType.GLOBAL;

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
  checkVrf(vrf);
  return {
    name: vrf.name,
    id: vrf.id,
    rd: rdToV4(vrf.rd),
    importRt: vrf.importRts.map(rtToV4),
    exportRt: vrf.exportRts.map(rtToV4),
  };
}

export function vrfFromV4(v: V4Vrf): Vrf {
  return {
    name: v.name,
    rd: rdFromV4(v.rd),
    importRts: sortRouteTargets(v.importRt.map(rtFromV4)),
    exportRts: sortRouteTargets(v.exportRt.map(rtFromV4)),
    id: v.id,
  };
}

export function globalToV4(config: GlobalConfig): MessageInitShape<typeof GlobalSchema> {
  checkGlobal(config);
  return {
    asn: config.asn,
    routerId: config.routerId,
    listenPort: config.listenPort,
    listenAddresses: config.listenAddresses ?? [],
  };
}

/** undefined while BGP is not started: gobgpd then reports AS 0 (and router ID "invalid IP"). */
export function globalFromV4(g: Global | undefined): GlobalConfig | undefined {
  if (g === undefined || g.asn === 0) return undefined;
  return { asn: g.asn, routerId: g.routerId, listenPort: g.listenPort, listenAddresses: [...g.listenAddresses] };
}

export function peerToV4(peer: PeerConfig): MessageInitShape<typeof PeerSchema> {
  checkPeer(peer);
  const families = vpnFamilies.filter((f) => peer.families.includes(f.name));
  return {
    conf: { neighborAddress: peer.address, peerAsn: peer.asn, authPassword: peer.password ?? "" },
    routeReflector: {
      routeReflectorClient: peer.routeReflectorClient ?? false,
      routeReflectorClusterId: peer.routeReflectorClient === true ? (peer.routeReflectorClusterId ?? "") : "",
    },
    timers: {
      config: { holdTime: BigInt(peer.holdTimeSeconds ?? 0), keepaliveInterval: BigInt(peer.keepaliveSeconds ?? 0) },
    },
    transport: { localAddress: peer.localAddress ?? "", remotePort: peer.remotePort ?? 0 },
    afiSafis: families.map((f) => ({ config: { family: { afi: f.afi, safi: f.safi }, enabled: true } })),
  };
}

/**
 * A peer as gobgpd reports it: effective values (gobgpd fills in hold time 90 s, keepalive 30 s,
 * remote port 179, and the session's own local address once connected); empty ones are omitted.
 */
export function peerFromV4(p: Peer): PeerStatus {
  const address = p.conf?.neighborAddress ?? p.state?.neighborAddress ?? "";
  const status: PeerStatus = {
    address,
    asn: p.conf?.peerAsn ?? p.state?.peerAsn ?? 0,
    families: [],
    state: sessionState(p.state?.sessionState ?? 0),
  };
  if (p.conf?.authPassword) status.password = p.conf.authPassword;
  if (p.routeReflector?.routeReflectorClient === true) {
    status.routeReflectorClient = true;
    const id = reportedIp(p.routeReflector.routeReflectorClusterId);
    if (id !== undefined) status.routeReflectorClusterId = id;
  }
  const hold = Number(p.timers?.config?.holdTime ?? 0n);
  if (hold > 0) status.holdTimeSeconds = hold;
  const keepalive = Number(p.timers?.config?.keepaliveInterval ?? 0n);
  if (keepalive > 0) status.keepaliveSeconds = keepalive;
  const local = reportedIp(p.transport?.localAddress);
  if (local !== undefined) status.localAddress = local;
  if (p.transport?.remotePort) status.remotePort = p.transport.remotePort;
  for (const a of p.afiSafis) {
    const f = a.config?.family;
    const name = f && vpnFamilyName(f.afi, f.safi);
    if (name !== undefined && a.config?.enabled !== false && !status.families.includes(name)) status.families.push(name);
  }
  return status;
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

/** The first SRv6 SID of an L3 service TLV, if the attribute has one. */
export function srv6FromV4(attr: PrefixSID): { sid: string; behavior: number } | undefined {
  for (const tlv of attr.tlvs) {
    if (tlv.tlv.case !== "l3Service") continue;
    for (const sub of tlv.tlv.value.subTlvs[srv6SidInformationSubTlv]?.tlvs ?? []) {
      if (sub.tlv.case !== "information") continue;
      const sid = sidFromBytes(sub.tlv.value.sid);
      if (sid !== undefined) return { sid, behavior: sub.tlv.value.endpointBehavior };
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
export function localVpnPathToV4(vrf: Vrf, path: LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalPath(path);
  checkAdminAssigned(vrf.rd, `vrf ${vrf.name} rd`);
  for (const rt of vrf.exportRts) checkAdminAssigned(rt, `vrf ${vrf.name} export rt`);
  const family = { afi: unicastAfi(prefix.family), safi: safi.mplsVpn };
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

/** A VPN path of the global table (ListPath GLOBAL or a BEST event); undefined for other families. */
export function ribPathFromV4(p: Path, best: boolean): RibPath | undefined {
  if (p.nlri?.nlri.case !== "labeledVpnIpPrefix") return undefined;
  const { rd, prefix, prefixLen } = p.nlri.nlri.value;
  let nextHop = "";
  let srv6: { sid: string; behavior: number } | undefined;
  const rts: AdminAssigned[] = [];
  for (const a of p.pattrs) {
    if (a.attr.case === "nextHop") nextHop = a.attr.value.nextHop;
    else if (a.attr.case === "mpReach") nextHop = a.attr.value.nextHops[0] ?? nextHop;
    else if (a.attr.case === "prefixSid") srv6 = srv6FromV4(a.attr.value);
    else if (a.attr.case === "extendedCommunities") {
      for (const c of a.attr.value.communities) {
        const rt = rtFromExtcomV4(c);
        if (rt !== undefined) rts.push(rt);
      }
    }
  }
  const family = familyOfAfi(p.family?.afi ?? 0, prefix);
  let rdValue: AdminAssigned;
  try {
    rdValue = rdFromV4(rd);
  } catch {
    return undefined;
  }
  const neighbor = reportedIp(p.neighborIp);
  const out: RibPath = {
    family,
    rd: rdValue,
    prefix: formatPrefix(prefix, prefixLen),
    rts: sortRouteTargets(rts),
    nextHop: canonicalIp(nextHop) ?? nextHop,
    best,
    local: neighbor === undefined,
    withdraw: p.isWithdraw,
  };
  if (srv6 !== undefined) {
    out.sid = srv6.sid;
    out.behavior = srv6.behavior;
  }
  if (neighbor !== undefined) out.neighbor = neighbor;
  return out;
}

/** The paths of one destination of ListPath(GLOBAL): the flagged best one (else the first) is best. */
export function ribPathsFromV4(dest: Destination): RibPath[] {
  const flagged = dest.paths.some((p) => p.best);
  return dest.paths.flatMap((p, i) => ribPathFromV4(p, flagged ? p.best : i === 0) ?? []);
}

export function vpnFamilyV4(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.mplsVpn };
}

function pathFromV4(vrf: string, p: Path, best: boolean): VrfPath | undefined {
  if (p.nlri?.nlri.case !== "prefix" || p.isWithdraw) return undefined;
  const { prefix, prefixLen } = p.nlri.nlri.value;
  let nextHop = "";
  let srv6: { sid: string; behavior: number } | undefined;
  for (const a of p.pattrs) {
    if (a.attr.case === "nextHop") nextHop = a.attr.value.nextHop;
    else if (a.attr.case === "mpReach") nextHop = a.attr.value.nextHops[0] ?? nextHop;
    else if (a.attr.case === "prefixSid") srv6 = srv6FromV4(a.attr.value);
  }
  const neighbor = reportedIp(p.neighborIp);
  const out: VrfPath = {
    vrf,
    prefix: formatPrefix(prefix, prefixLen),
    nextHop: canonicalIp(nextHop) ?? nextHop,
    best,
    local: neighbor === undefined,
  };
  if (srv6 !== undefined) {
    out.sid = srv6.sid;
    out.behavior = srv6.behavior;
  }
  if (neighbor !== undefined) out.neighbor = neighbor;
  return out;
}

/**
 * The paths of one destination of ListPath(VRF). gobgpd sorts a destination's paths best first
 * but sets `best` only for the global and local tables, so the first path is the best one.
 */
export function vrfPathsFromV4(vrf: string, dest: Destination): VrfPath[] {
  return dest.paths.flatMap((p, i) => pathFromV4(vrf, p, i === 0) ?? []);
}

export function unicastFamilyV4(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.unicast };
}

/**
 * Best-path changes and peers. No initial table: the peer part ends its initial report with
 * END_OF_INIT ("watching"), after which the reader lists the table itself (ListPath GLOBAL).
 */
export const watchRequestV4: MessageInitShape<typeof WatchEventRequestSchema> = {
  peer: {},
  table: { filters: [{ type: WatchEventRequest_Table_Filter_Type.BEST, init: false }] },
};

export function eventFromV4(r: WatchEventResponse): SpeakerEvent | undefined {
  switch (r.event.case) {
    case "table": {
      // A BEST event's path is its destination's new best path, or a withdrawal.
      const paths = r.event.value.paths.flatMap((p) => ribPathFromV4(p, !p.isWithdraw) ?? []);
      return paths.length > 0 ? { kind: "rib", paths } : undefined;
    }
    case "peer": {
      // gobgpd registers the watch, then reports every peer (INIT) and END_OF_INIT, in one step.
      if (r.event.value.type === WatchEventResponse_PeerEvent_Type.END_OF_INIT) return { kind: "watching" };
      const peer = r.event.value.peer;
      const address = reportedIp(peer?.state?.neighborAddress) ?? reportedIp(peer?.conf?.neighborAddress);
      if (address === undefined) return undefined;
      return { kind: "peer", address, state: sessionState(peer?.state?.sessionState ?? 0) };
    }
    default:
      return undefined;
  }
}
