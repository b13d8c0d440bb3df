// Speaker types ↔ the GoBGP messages, or parts of messages, that have the same fields in both APIs
// (v4 package api, v3 package apipb): Global, Peer, the peer and table events, and what a Vrf or
// Path becomes once convert-v4.ts or convert-v3.ts has decoded the parts that differ (RDs, RTs,
// NLRIs, attributes). No generated code is imported: each message is typed by the fields kvrf
// uses, which both APIs' generated types have.
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import {
  SpeakerError,
  type DefinedSet,
  type DefinedSetType,
  type GlobalConfig,
  type PeerConfig,
  type PeerStatus,
  type PolicyAssignment,
  type PolicyDirection,
  type RibPath,
  type RoutingPolicy,
  type SoftResetDirection,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "./speaker.js";
import {
  canonicalIp,
  checkGlobal,
  checkPeer,
  checkVrf,
  evpnInfoOf,
  familyOfAfi,
  formatPrefix,
  peerFamilies,
  peerFamilyName,
  reportedIp,
  sessionState,
  sortRouteTargets,
} from "./convert.js";
import { serviceSid, type Srv6ServiceTlv } from "./srv6-transposition.js";

/** gobgpd's Global message, as both APIs have it. */
export interface GlobalMessage {
  asn: number;
  routerId: string;
  listenPort: number;
  listenAddresses: string[];
}

export function globalTo(config: GlobalConfig): GlobalMessage {
  checkGlobal(config);
  return {
    asn: config.asn,
    routerId: config.routerId,
    listenPort: config.listenPort,
    listenAddresses: config.listenAddresses ?? [],
  };
}

/**
 * undefined while BGP is not started: gobgpd then reports AS 0 (and as router ID "" on 3.x,
 * "invalid IP" on 4.x).
 */
export function globalFrom(g: GlobalMessage | undefined): GlobalConfig | undefined {
  if (g === undefined || g.asn === 0) return undefined;
  return { asn: g.asn, routerId: g.routerId, listenPort: g.listenPort, listenAddresses: [...g.listenAddresses] };
}

/** The parts of gobgpd's Peer message that kvrf reads, as both APIs have them. */
export interface PeerMessage {
  conf?: { neighborAddress: string; peerAsn: number; authPassword: string } | undefined;
  state?: { neighborAddress: string; peerAsn: number; sessionState: number } | undefined;
  routeReflector?: { routeReflectorClient: boolean; routeReflectorClusterId: string } | undefined;
  timers?: { config?: { holdTime: bigint; keepaliveInterval: bigint } | undefined } | undefined;
  transport?: { localAddress: string; remotePort: number } | undefined;
  gracefulRestart?: { enabled: boolean; restartTime: number } | undefined;
  afiSafis: { config?: { family?: { afi: number; safi: number } | undefined; enabled: boolean } | undefined }[];
}

/** A Peer message (init shape) of either API. */
export function peerTo(peer: PeerConfig) {
  checkPeer(peer);
  const families = peerFamilies.filter((f) => peer.families.includes(f.name));
  const gr = peer.gracefulRestart;
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
    ...(gr !== undefined
      ? {
          gracefulRestart: {
            enabled: true,
            restartTime: gr.restartTimeSeconds,
            // RFC 8538: a NOTIFICATION (gobgpd's own on SIGTERM, a hold-timer expiry) starts a
            // graceful restart too, not only a dropped TCP session.
            notificationEnabled: true,
            localRestarting: peer.localRestarting ?? false,
          },
        }
      : {}),
    afiSafis: families.map((f) => ({
      config: { family: { afi: f.afi, safi: f.safi }, enabled: true },
      ...(gr !== undefined ? { mpGracefulRestart: { config: { enabled: true } } } : {}),
    })),
  };
}

/**
 * A peer as gobgpd reports it: effective values (gobgpd fills in hold time 90 s, keepalive 30 s,
 * remote port 179, and the session's own local address once connected); empty ones are omitted.
 */
export function peerFrom(p: PeerMessage): PeerStatus {
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
  if (p.gracefulRestart?.enabled === true) status.gracefulRestart = { restartTimeSeconds: p.gracefulRestart.restartTime };
  for (const a of p.afiSafis) {
    const f = a.config?.family;
    const name = f && peerFamilyName(f.afi, f.safi);
    if (name !== undefined && a.config?.enabled !== false && !status.families.includes(name)) status.families.push(name);
  }
  return status;
}

/** A Vrf message (init shape) of either API, with that API's RD and route-target encodings. */
export function vrfTo<Rd, Rt>(vrf: Vrf, rdTo: (v: AdminAssigned) => Rd, rtTo: (v: AdminAssigned) => Rt) {
  checkVrf(vrf);
  return {
    name: vrf.name,
    id: vrf.id,
    rd: rdTo(vrf.rd),
    importRt: vrf.importRts.map(rtTo),
    exportRt: vrf.exportRts.map(rtTo),
  };
}

export function vrfFrom<Rd, Rt>(
  v: { name: string; id: number; rd?: Rd | undefined; importRt: Rt[]; exportRt: Rt[] },
  rdFrom: (rd: Rd | undefined) => AdminAssigned,
  rtFrom: (rt: Rt) => AdminAssigned,
): Vrf {
  return {
    name: v.name,
    rd: rdFrom(v.rd),
    importRts: sortRouteTargets(v.importRt.map(rtFrom)),
    exportRts: sortRouteTargets(v.exportRt.map(rtFrom)),
    id: v.id,
  };
}

/** What kvrf reads from a path's attributes, whichever API decoded them. */
export interface PathAttributes {
  /** From the NEXT_HOP attribute, or the first next hop of MP_REACH_NLRI; "" when neither is there. */
  nextHop: string;
  /**
   * The first SRv6 SID Information sub-TLV of the Prefix-SID attribute's L3 service TLV, as sent:
   * with transposition its SID lacks the bits the NLRI's label carries (pathOrigin joins them).
   */
  srv6: Srv6ServiceTlv | undefined;
  /** The route targets among the extended communities. */
  rts: AdminAssigned[];
  /** The first router MAC extended community, as gobgpd spells it. */
  routerMac: string | undefined;
  /** The tunnel types of the encapsulation extended communities. */
  tunnelTypes: number[];
}

export function noAttributes(): PathAttributes {
  return { nextHop: "", srv6: undefined, rts: [], routerMac: undefined, tunnelTypes: [] };
}

/** The fields of gobgpd's Path message, other than NLRI and attributes, that kvrf reads. */
export interface PathMessage {
  family?: { afi: number } | undefined;
  neighborIp: string;
  isWithdraw: boolean;
  best: boolean;
}

/** What RibPath and VrfPath have in common. */
type PathOrigin = Pick<VrfPath & RibPath, "nextHop" | "best" | "local" | "sid" | "behavior" | "neighbor" | "problem">;

/**
 * `labels`: the NLRI's label values, undefined when the path is shown without them (gobgpd's VRF
 * view turns VPN paths into unicast ones). A SID that cannot be decoded (srv6-transposition.ts)
 * leaves `sid` out and says why in `problem`: the path must not be used with a guessed SID. The
 * endpoint behaviour is reported as sent, 0xFFFF (opaque) included: kvrf encapsulates to the SID
 * whatever the behaviour, which only the SID's owner executes (docs/interop.md).
 */
function pathOrigin(p: PathMessage, attrs: PathAttributes, best: boolean, labels: readonly number[] | undefined): PathOrigin {
  const neighbor = reportedIp(p.neighborIp);
  const out: PathOrigin = {
    nextHop: canonicalIp(attrs.nextHop) ?? attrs.nextHop,
    best,
    local: neighbor === undefined,
  };
  if (attrs.srv6 !== undefined) {
    const decoded = serviceSid(attrs.srv6, labels);
    if ("sid" in decoded) out.sid = decoded.sid;
    else out.problem = decoded.problem;
    out.behavior = attrs.srv6.behavior;
  }
  if (neighbor !== undefined) out.neighbor = neighbor;
  return out;
}

/**
 * A VPN path of the global table from its decoded parts; undefined when its RD is of a layout
 * kvrf cannot read (`readRd` throws), so that one odd path does not fail a whole listing.
 */
export function ribPath(
  p: PathMessage,
  nlri: { prefix: string; prefixLen: number; labels?: readonly number[] | undefined },
  readRd: () => AdminAssigned,
  attrs: PathAttributes,
  best: boolean,
): RibPath | undefined {
  let rd: AdminAssigned;
  try {
    rd = readRd();
  } catch {
    return undefined;
  }
  return {
    family: familyOfAfi(p.family?.afi ?? 0, nlri.prefix),
    rd,
    prefix: formatPrefix(nlri.prefix, nlri.prefixLen),
    rts: sortRouteTargets(attrs.rts),
    withdraw: p.isWithdraw,
    ...pathOrigin(p, attrs, best, nlri.labels),
  };
}

/** A path of a VRF's RIB from its decoded parts. */
export function vrfPath(vrf: string, p: PathMessage, nlri: { prefix: string; prefixLen: number }, attrs: PathAttributes, best: boolean): VrfPath {
  return { vrf, prefix: formatPrefix(nlri.prefix, nlri.prefixLen), ...pathOrigin(p, attrs, best, undefined) };
}

/** The fields of an EVPN IP prefix route (type 5) NLRI, as both APIs have them (RD aside). */
export interface EvpnPrefixNlri {
  ipPrefix: string;
  ipPrefixLen: number;
  gwAddress: string;
  label: number;
  esi?: { type: number; value: Uint8Array } | undefined;
}

function withEvpn<T extends RibPath | VrfPath>(path: T, nlri: EvpnPrefixNlri, attrs: PathAttributes, withdraw: boolean): T {
  const { problem, ...evpn } = evpnInfoOf(nlri, attrs, withdraw);
  path.evpn = evpn;
  const address = canonicalIp(nlri.ipPrefix);
  const bad = address === undefined || nlri.ipPrefixLen > (address.includes(":") ? 128 : 32) ? `prefix "${nlri.ipPrefix}/${nlri.ipPrefixLen}" is not an IP prefix` : undefined;
  const problems = [path.problem, bad, problem].filter((x) => x !== undefined);
  if (problems.length > 0) path.problem = problems.join("; ");
  return path;
}

/**
 * An EVPN type-5 path of the global table from its decoded parts (see ribPath). A path kvrf
 * cannot use is still returned, with `problem` set.
 */
export function evpnRibPath(p: PathMessage, nlri: EvpnPrefixNlri, readRd: () => AdminAssigned, attrs: PathAttributes, best: boolean): RibPath | undefined {
  // The type-5 label is the VNI, never transposed SID bits (kvrf runs EVPN over VXLAN only).
  const path = ribPath(p, { prefix: nlri.ipPrefix, prefixLen: nlri.ipPrefixLen }, readRd, attrs, best);
  return path && withEvpn(path, nlri, attrs, p.isWithdraw);
}

/** An EVPN type-5 path of a VRF's view from its decoded parts. */
export function evpnVrfPath(vrf: string, p: PathMessage, nlri: EvpnPrefixNlri, attrs: PathAttributes, best: boolean): VrfPath {
  return withEvpn(vrfPath(vrf, p, { prefix: nlri.ipPrefix, prefixLen: nlri.ipPrefixLen }, attrs, best), nlri, attrs, false);
}

/** The paths of one destination of ListPath(GLOBAL): the flagged best one (else the first) is best. */
export function ribPathsOf<P extends PathMessage>(paths: readonly P[], read: (p: P, best: boolean) => RibPath | undefined): RibPath[] {
  const flagged = paths.some((p) => p.best);
  return paths.flatMap((p, i) => read(p, flagged ? p.best : i === 0) ?? []);
}

/**
 * The paths of one destination of ListPath(VRF). gobgpd sorts a destination's paths best first
 * but sets `best` only for the global and local tables, so the first path is the best one.
 */
export function vrfPathsOf<P>(paths: readonly P[], read: (p: P, best: boolean) => VrfPath | undefined): VrfPath[] {
  return paths.flatMap((p, i) => read(p, i === 0) ?? []);
}

/**
 * What kvrf watches: best-path changes and peers. No initial table: the peer part ends its initial
 * report with END_OF_INIT ("watching"), after which the reader lists the table itself (ListPath
 * GLOBAL). `best` is the API's Filter type BEST (0 in v3, 1 in v4).
 */
export function watchRequest(best: number) {
  return { peer: {}, table: { filters: [{ type: best, init: false }] } };
}

// WatchEventResponse.PeerEvent.Type END_OF_INIT, 2 in both APIs.
const peerEventEndOfInit = 2;

/** gobgpd's WatchEventResponse, as both APIs have it, with that API's Path. */
export interface WatchEventMessage<P> {
  event:
    | { case: "table"; value: { paths: P[] } }
    | { case: "peer"; value: { type: number; peer?: PeerMessage | undefined } }
    | { case: undefined; value?: undefined };
}

export function eventFrom<P extends PathMessage>(r: WatchEventMessage<P>, ribPathFrom: (p: P, best: boolean) => RibPath | undefined): SpeakerEvent | undefined {
  switch (r.event.case) {
    case "table": {
      // A BEST event's path is its destination's new best path, or a withdrawal.
      const paths = r.event.value.paths.flatMap((p) => ribPathFrom(p, !p.isWithdraw) ?? []);
      return paths.length > 0 ? { kind: "rib", paths } : undefined;
    }
    case "peer": {
      // gobgpd registers the watch, then reports every peer (INIT) and END_OF_INIT, in one step.
      if (r.event.value.type === peerEventEndOfInit) return { kind: "watching" };
      const peer = r.event.value.peer;
      const address = reportedIp(peer?.state?.neighborAddress) ?? reportedIp(peer?.conf?.neighborAddress);
      if (address === undefined) return undefined;
      return { kind: "peer", address, state: sessionState(peer?.state?.sessionState ?? 0) };
    }
    default:
      return undefined;
  }
}

// ---- routing policy ----
// DefinedSet, Statement, Policy and PolicyAssignment have the same fields in both APIs; only the
// enum numbers differ (v3 has no UNSPECIFIED values), and each API supplies them (PolicyEnums).

/** One API's numbers of the policy enums kvrf uses. */
export interface PolicyEnums {
  definedType: Record<DefinedSetType, number>;
  /** MatchSet.Type ANY (the only match kvrf uses: INVERT and ALL differ between 3.10 and 4.8). */
  matchAny: number;
  routeAction: { none: number; accept: number; reject: number };
  direction: Record<PolicyDirection, number>;
  resetDirection: Record<SoftResetDirection, number>;
}

interface MatchSetMessage {
  type: number;
  name: string;
}

/** gobgpd's Statement, the parts kvrf writes and reads. */
export interface StatementMessage {
  name: string;
  conditions?: { neighborSet?: MatchSetMessage | undefined; extCommunitySet?: MatchSetMessage | undefined; nextHopInList?: string[] } | undefined;
  actions?: { routeAction: number } | undefined;
}

export interface PolicyMessage {
  name: string;
  statements: StatementMessage[];
}

export interface AssignmentMessage {
  name: string;
  direction: number;
  policies: { name: string }[];
  defaultAction: number;
}

export function definedSetTo(set: DefinedSet, e: PolicyEnums): { definedType: number; name: string; list: string[] } {
  if (set.name === "") throw new SpeakerError("invalid", "defined set: empty name");
  return { definedType: e.definedType[set.type], name: set.name, list: [...set.list] };
}

function actionTo(a: "accept" | "reject" | "none", e: PolicyEnums): number {
  return e.routeAction[a];
}

function actionFrom(n: number, e: PolicyEnums): "accept" | "reject" | "none" {
  return n === e.routeAction.accept ? "accept" : n === e.routeAction.reject ? "reject" : "none";
}

/** Next hops as gobgpd parses them (address/length); an empty list would match every path. */
function nextHopList(hops: readonly string[], statement: string): string[] {
  if (hops.length === 0) throw new SpeakerError("invalid", `statement ${statement}: empty next-hop list (gobgpd would match every path)`);
  return hops.map((h) => (h.includes("/") ? h : `${h}/${h.includes(":") ? 128 : 32}`));
}

export function policyTo(policy: RoutingPolicy, e: PolicyEnums): PolicyMessage {
  if (policy.name === "") throw new SpeakerError("invalid", "policy: empty name");
  return {
    name: policy.name,
    statements: policy.statements.map((st) => ({
      name: st.name,
      conditions: {
        neighborSet: { type: e.matchAny, name: st.neighborSet },
        ...(st.extCommunitySet !== undefined ? { extCommunitySet: { type: e.matchAny, name: st.extCommunitySet } } : {}),
        ...(st.nextHops !== undefined ? { nextHopInList: nextHopList(st.nextHops, st.name) } : {}),
      },
      actions: { routeAction: actionTo(st.action, e) },
    })),
  };
}

/** The global assignment of a direction; policies are referred to by name. */
export function assignmentTo(direction: PolicyDirection, a: PolicyAssignment, e: PolicyEnums): AssignmentMessage {
  return { name: "global", direction: e.direction[direction], policies: a.policies.map((name) => ({ name })), defaultAction: actionTo(a.defaultAction, e) };
}

export function assignmentFrom(a: AssignmentMessage | undefined, e: PolicyEnums): PolicyAssignment {
  return { policies: (a?.policies ?? []).map((p) => p.name), defaultAction: actionFrom(a?.defaultAction ?? e.routeAction.none, e) };
}
