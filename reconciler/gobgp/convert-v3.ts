// Speaker types ↔ GoBGP v3 API messages (package apipb). v3 packs NLRIs, attributes, RDs, RTs
// and every level of the Prefix-SID into google.protobuf.Any ("type.googleapis.com/apipb.<Message>"),
// and its enums have no UNSPECIFIED value (TableType.VRF = 4, Filter BEST = 0). Pure functions.
import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyIs, anyPack, anyUnpack, type Any } from "@bufbuild/protobuf/wkt";
import {
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
  SRv6InformationSubTLVSchema,
  SRv6L3ServiceTLVSchema,
  SRv6StructureSubSubTLVSchema,
  TwoOctetAsSpecificExtendedSchema,
  type PrefixSID,
} from "../../proto/gen/apipb/attribute_pb.js";
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
  type Vrf as V3Vrf,
  type VrfSchema,
  type WatchEventRequestSchema,
  type WatchEventResponse,
} from "../../proto/gen/apipb/gobgp_pb.js";
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
  checkVrf(vrf);
  return {
    name: vrf.name,
    id: vrf.id,
    rd: rdToV3(vrf.rd),
    importRt: vrf.importRts.map(rtToV3),
    exportRt: vrf.exportRts.map(rtToV3),
  };
}

export function vrfFromV3(v: V3Vrf): Vrf {
  return {
    name: v.name,
    rd: rdFromV3(v.rd),
    importRts: sortRouteTargets(v.importRt.map(rtFromV3)),
    exportRts: sortRouteTargets(v.exportRt.map(rtFromV3)),
    id: v.id,
  };
}

export function globalToV3(config: GlobalConfig): MessageInitShape<typeof GlobalSchema> {
  checkGlobal(config);
  return {
    asn: config.asn,
    routerId: config.routerId,
    listenPort: config.listenPort,
    listenAddresses: config.listenAddresses ?? [],
  };
}

/** undefined while BGP is not started (gobgpd then reports AS 0 and an empty router ID). */
export function globalFromV3(g: Global | undefined): GlobalConfig | undefined {
  if (g === undefined || g.asn === 0) return undefined;
  return { asn: g.asn, routerId: g.routerId, listenPort: g.listenPort, listenAddresses: [...g.listenAddresses] };
}

export function peerToV3(peer: PeerConfig): MessageInitShape<typeof PeerSchema> {
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
export function peerFromV3(p: Peer): PeerStatus {
  const status: PeerStatus = {
    address: p.conf?.neighborAddress ?? p.state?.neighborAddress ?? "",
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

/** The first SRv6 SID of an L3 service TLV, if the attribute has one. */
export function srv6FromV3(attr: PrefixSID): { sid: string; behavior: number } | undefined {
  for (const tlv of attr.tlvs) {
    const l3 = unpack(tlv, SRv6L3ServiceTLVSchema);
    for (const sub of l3?.subTlvs[srv6SidInformationSubTlv]?.tlv ?? []) {
      const info = unpack(sub, SRv6InformationSubTLVSchema);
      const sid = info && sidFromBytes(info.sid);
      if (info && sid !== undefined) return { sid, behavior: info.endpointBehavior };
    }
  }
  return undefined;
}

/**
 * A local path of `vrf` in VPN form, for the global table: NLRI with the VRF's RD (no label: the
 * SID travels in the Prefix-SID), the VRF's export route targets, the next hop in MP_REACH and the
 * SRv6 L3 service TLV (as convert-v4.ts localVpnPathToV4).
 */
export function localVpnPathToV3(vrf: Vrf, path: LocalPath, withdraw = false): MessageInitShape<typeof PathSchema> {
  const prefix = checkLocalPath(path);
  checkAdminAssigned(vrf.rd, `vrf ${vrf.name} rd`);
  for (const rt of vrf.exportRts) checkAdminAssigned(rt, `vrf ${vrf.name} export rt`);
  const family = { afi: unicastAfi(prefix.family), safi: safi.mplsVpn };
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

/** A VPN path of the global table (ListPath GLOBAL or a BEST event); undefined for other families. */
export function ribPathFromV3(p: Path, best: boolean): RibPath | undefined {
  const nlri = unpack(p.nlri, LabeledVPNIPAddressPrefixSchema);
  if (nlri === undefined) return undefined;
  let nextHop = "";
  let srv6: { sid: string; behavior: number } | undefined;
  const rts: AdminAssigned[] = [];
  for (const a of p.pattrs) {
    const nh = unpack(a, NextHopAttributeSchema);
    if (nh) nextHop = nh.nextHop;
    const mp = unpack(a, MpReachNLRIAttributeSchema);
    if (mp) nextHop = mp.nextHops[0] ?? nextHop;
    const ps = unpack(a, PrefixSIDSchema);
    if (ps) srv6 = srv6FromV3(ps);
    const ec = unpack(a, ExtendedCommunitiesAttributeSchema);
    for (const c of ec?.communities ?? []) {
      const rt = rtFromExtcomV3(c);
      if (rt !== undefined) rts.push(rt);
    }
  }
  let rd: AdminAssigned;
  try {
    rd = rdFromV3(nlri.rd);
  } catch {
    return undefined;
  }
  const neighbor = reportedIp(p.neighborIp);
  const out: RibPath = {
    family: familyOfAfi(p.family?.afi ?? 0, nlri.prefix),
    rd,
    prefix: formatPrefix(nlri.prefix, nlri.prefixLen),
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
export function ribPathsFromV3(dest: Destination): RibPath[] {
  const flagged = dest.paths.some((p) => p.best);
  return dest.paths.flatMap((p, i) => ribPathFromV3(p, flagged ? p.best : i === 0) ?? []);
}

export function vpnFamilyV3(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.mplsVpn };
}

function pathFromV3(vrf: string, p: Path, best: boolean): VrfPath | undefined {
  const nlri = unpack(p.nlri, IPAddressPrefixSchema);
  if (nlri === undefined || p.isWithdraw) return undefined;
  let nextHop = "";
  let srv6: { sid: string; behavior: number } | undefined;
  for (const a of p.pattrs) {
    const nh = unpack(a, NextHopAttributeSchema);
    if (nh) nextHop = nh.nextHop;
    const mp = unpack(a, MpReachNLRIAttributeSchema);
    if (mp) nextHop = mp.nextHops[0] ?? nextHop;
    const ps = unpack(a, PrefixSIDSchema);
    if (ps) srv6 = srv6FromV3(ps);
  }
  const neighbor = reportedIp(p.neighborIp);
  const out: VrfPath = {
    vrf,
    prefix: formatPrefix(nlri.prefix, nlri.prefixLen),
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
export function vrfPathsFromV3(vrf: string, dest: Destination): VrfPath[] {
  return dest.paths.flatMap((p, i) => pathFromV3(vrf, p, i === 0) ?? []);
}

export function unicastFamilyV3(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.unicast };
}

/** Best-path changes and peers, no initial table (as watchRequestV4). */
export const watchRequestV3: MessageInitShape<typeof WatchEventRequestSchema> = {
  peer: {},
  table: { filters: [{ type: WatchEventRequest_Table_Filter_Type.BEST, init: false }] },
};

export function eventFromV3(r: WatchEventResponse): SpeakerEvent | undefined {
  switch (r.event.case) {
    case "table": {
      const paths = r.event.value.paths.flatMap((p) => ribPathFromV3(p, !p.isWithdraw) ?? []);
      return paths.length > 0 ? { kind: "rib", paths } : undefined;
    }
    case "peer": {
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
