// The BGP speaker as kvrfd sees it: version-independent, typed, and small. The real
// implementations drive gobgpd over gRPC (v4 api.GoBgpService, v3 apipb.GobgpApi; see ./gobgp/);
// unit tests may use an in-memory fake that implements the same interface.
import type { AdminAssigned } from "../../shared/route-distinguisher.js";

export type AddressFamily = "ipv4" | "ipv6";

/**
 * A table of the speaker's global RIB: VPNv4 or VPNv6 ("ipv4", "ipv6": L3VPN routes, RFC 4364) or
 * EVPN ("evpn": IP prefix routes, RFC 9136 route type 5, of both prefix families).
 */
export type RibFamily = AddressFamily | "evpn";

/** BGP families a session can carry: AFI/SAFI 1/128, 2/128 and 25/70. */
export type PeerFamily = "vpnv4" | "vpnv6" | "l2vpn-evpn";

/** SRv6 endpoint behaviours kvrf advertises (RFC 8986 §10.2 codepoints). */
export const srv6Behavior = { endDX6: 16, endDX4: 17, endDT6: 18, endDT4: 19, endDT46: 20 } as const;
export type Srv6Behavior = (typeof srv6Behavior)[keyof typeof srv6Behavior];

export interface GlobalConfig {
  asn: number;
  /** Dotted-quad router ID. */
  routerId: string;
  /** BGP listen port; -1 = do not listen (tests). */
  listenPort: number;
  listenAddresses?: string[];
}

export interface PeerConfig {
  /** Neighbor address (IPv4 or IPv6); the peer's key. */
  address: string;
  asn: number;
  /** TCP MD5 password, already resolved from its Secret. */
  password?: string;
  /** This speaker reflects routes to the peer (the peer is our route-reflector client). */
  routeReflectorClient?: boolean;
  /** Route-reflector cluster ID (dotted quad) when routeReflectorClient is set. */
  routeReflectorClusterId?: string;
  holdTimeSeconds?: number;
  keepaliveSeconds?: number;
  /** Local address to source the session from. */
  localAddress?: string;
  /** Remote TCP port (default 179). */
  remotePort?: number;
  families: PeerFamily[];
  /**
   * Graceful restart (RFC 4724) for every family of the peer, with the notification extension
   * (RFC 8538): the peer keeps our routes for restartTimeSeconds while our speaker restarts.
   */
  gracefulRestart?: { restartTimeSeconds: number };
  /**
   * We are the restarting speaker: gobgpd came back without state while this node's forwarding
   * state (kernel routes) was kept. Sent as the restart and forwarding-state bits of the OPEN, so
   * the peer keeps our stale routes until our End-of-RIB. gobgpd's `-r` only sets it for peers of
   * its config file; API-added peers carry it themselves. Not part of the peer's identity: it is
   * never compared, and gobgpd clears it once the restart is over.
   */
  localRestarting?: boolean;
}

export type PeerSessionState = "idle" | "connect" | "active" | "opensent" | "openconfirm" | "established" | "unknown";

export interface PeerStatus extends PeerConfig {
  state: PeerSessionState;
}

export interface Vrf {
  name: string;
  rd: AdminAssigned;
  importRts: AdminAssigned[];
  exportRts: AdminAssigned[];
  /** VRF id; kvrf uses the VPC's kernel table number. */
  id: number;
}

interface LocalPathBase {
  vrf: string;
  /** CIDR, canonical (host bits zero). */
  prefix: string;
  /** BGP next hop: the node's underlay address (with VXLAN, its VTEP; IPv4 or IPv6). */
  nextHop: string;
}

/** Originated as an L3VPN route (VPNv4/VPNv6) with the SRv6 L3 service SID (RFC 9252). */
export interface Srv6LocalPath extends LocalPathBase {
  encap: "srv6";
  sid: string;
  behavior: Srv6Behavior;
}

/**
 * Originated as an EVPN IP prefix route (RFC 9136 type 5) for VXLAN (RFC 8365): the VNI in the
 * label field, the router MAC and encapsulation (tunnel type 8) extended communities, ESI 0,
 * ethernet tag 0, no gateway address.
 */
export interface VxlanLocalPath extends LocalPathBase {
  encap: "vxlan";
  /** The VPC's VNI, 1 to 16777215. */
  vni: number;
  /** The node's router MAC, a unicast MAC "aa:bb:cc:dd:ee:ff" (any case; reported lower case). */
  routerMac: string;
}

/** A prefix this node originates into a VRF, in the route form of its encapsulation. */
export type LocalPath = Srv6LocalPath | VxlanLocalPath;

/** What an EVPN type-5 path says about reaching its prefix over VXLAN. */
export interface EvpnInfo {
  /** The label field (24 bits): the VNI. */
  vni: number;
  /** From the router MAC extended community, lower case; "" when the path has none (e.g. a withdrawal). */
  routerMac: string;
}

/** What every path kvrfd reads from the speaker carries, in a VRF's RIB or in the global table. */
interface PathSeen {
  /** CIDR, canonical. */
  prefix: string;
  nextHop: string;
  /** SID from the path's SRv6 L3 service TLV; undefined when the path carries none. */
  sid?: string;
  behavior?: number;
  /** Set on (and only on) EVPN type-5 paths. */
  evpn?: EvpnInfo;
  /**
   * Why this path cannot be used as it is, e.g. a type-5 route without a router MAC, with VNI 0,
   * or with an overlay index (gateway address, ESI) kvrf does not resolve. Such paths are still
   * reported, so that one odd route neither hides its destination nor stops a listing or a watch;
   * they must not be installed.
   */
  problem?: string;
  best: boolean;
  /** True for paths this speaker originated itself (no neighbor). */
  local: boolean;
  /** Neighbor the path was learned from, for remote paths. */
  neighbor?: string;
}

/** A path of a VRF's RIB as the speaker holds it (imported by route target), best or not. */
export interface VrfPath extends PathSeen {
  vrf: string;
}

/**
 * A path of the speaker's global table, VPN (VPNv4/VPNv6) or EVPN type 5 (`evpn` set): what every
 * VRF imports from, by route target. Paths this speaker originated itself are `local`; the others
 * carry their neighbor. A VPN and an EVPN destination with the same RD and prefix are different
 * destinations.
 */
export interface RibPath extends PathSeen {
  /** The prefix's family (for an EVPN path too). */
  family: AddressFamily;
  /** With `prefix`, the destination; `best` is the best path of it. */
  rd: AdminAssigned;
  /** The route-target extended communities (other extended communities are left out). */
  rts: AdminAssigned[];
  /** In events: the destination has no path any more (this was its best path). */
  withdraw: boolean;
}

/**
 * The local path `p` (a `local` path of the global table, as listRib shows it) was originated
 * from. A VPN path without a SID gives sid "" and behaviour 0, which no path kvrf wants has.
 */
export function localPathOf(vrf: string, p: RibPath): LocalPath {
  const base = { vrf, prefix: p.prefix, nextHop: p.nextHop };
  if (p.evpn !== undefined) return { ...base, encap: "vxlan", vni: p.evpn.vni, routerMac: p.evpn.routerMac };
  return { ...base, encap: "srv6", sid: p.sid ?? "", behavior: (p.behavior ?? 0) as Srv6Behavior };
}

/**
 * What the speaker tells a watcher: best-path changes of the global VPN tables and of the EVPN
 * type-5 routes (other EVPN route types are not reported), each with the path that is now best (or
 * a withdrawal when the destination is gone); peer session changes; and "watching" once the watch
 * is registered, after which no change goes unreported (read the tables then, and apply the
 * changes that follow on top).
 */
export type SpeakerEvent =
  | { kind: "rib"; paths: RibPath[] }
  | { kind: "peer"; address: string; state: PeerSessionState }
  | { kind: "watching" };

/**
 * gobgpd's routing-policy objects, the subset kvrf writes (session policies, docs/fabric.md):
 * defined sets of neighbors or of extended communities (entries "rt:<regexp>"), policies whose
 * statements match a neighbor set and optionally (any of) an ext-community set and a next-hop list,
 * then accept or reject, and the global import and export policy lists.
 */
export type DefinedSetType = "neighbor" | "ext-community";
export interface DefinedSet {
  type: DefinedSetType;
  name: string;
  list: string[];
}
export type RouteAction = "accept" | "reject";
export interface PolicyStatement {
  name: string;
  /** Matches paths from (import) or to (export) a neighbor of this set. */
  neighborSet: string;
  /** And, when set, paths carrying any extended community of this set. */
  extCommunitySet?: string;
  /**
   * And, when set, paths whose next hop is one of these addresses. On export gobgpd compares the
   * next hop the path had before it rewrote it for the peer (eBGP), in 3.10 and 4.8 alike. Never
   * empty: gobgpd takes an empty list (or one it cannot parse) as no condition.
   */
  nextHops?: string[];
  action: RouteAction;
}
export interface RoutingPolicy {
  name: string;
  statements: PolicyStatement[];
}
export type PolicyDirection = "import" | "export";
/** The global import or export assignment: its policies by name, in order, and the default. */
export interface PolicyAssignment {
  policies: string[];
  /** "none" when gobgpd reports none (it then accepts). */
  defaultAction: RouteAction | "none";
}
export type SoftResetDirection = "in" | "out" | "both";

export type SpeakerErrorKind = "already-exists" | "not-found" | "not-started" | "unavailable" | "invalid" | "other";

/** Every failure of a Speaker call, classified once (gobgpd often reports them as text). */
export class SpeakerError extends Error {
  override readonly name = "SpeakerError";
  constructor(
    readonly kind: SpeakerErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface Speaker {
  /** Which gobgpd API answered at connect time. */
  readonly api: "v4" | "v3";

  /** The running global config, or undefined when BGP has not been started (e.g. gobgpd restarted). */
  getGlobal(): Promise<GlobalConfig | undefined>;
  startBgp(config: GlobalConfig): Promise<void>;
  /**
   * Stops BGP (a no-op when it is not running). `allowGracefulRestart` (gobgpd 4.x): peers with
   * graceful restart get no NOTIFICATION, so they keep this speaker's routes as in a crash; gobgpd
   * 3.10's StopBgp has no such field and always sends a Cease.
   */
  stopBgp(opts?: { allowGracefulRestart?: boolean }): Promise<void>;

  listPeers(): Promise<PeerStatus[]>;
  addPeer(peer: PeerConfig): Promise<void>;
  updatePeer(peer: PeerConfig): Promise<void>;
  deletePeer(address: string): Promise<void>;

  listVrfs(): Promise<Vrf[]>;
  addVrf(vrf: Vrf): Promise<void>;
  deleteVrf(name: string): Promise<void>;

  /**
   * Paths of `family` in the VRF's RIB (local and imported), as gobgpd's VRF view shows them: for
   * "evpn", the type-5 paths whose route targets the VRF imports (gobgpd does not turn them into
   * VRF routes; a VRF's local EVPN paths are among them).
   */
  listVrfPaths(vrf: string, family: RibFamily): Promise<VrfPath[]>;
  /**
   * Every path of `family` in the global table, best ones flagged: VPN paths, or for "evpn" the
   * type-5 paths (other EVPN route types are left out). Empty while BGP is not started.
   */
  listRib(family: RibFamily): Promise<RibPath[]>;
  /**
   * Originates `paths` of `vrf` in the global table with the VRF's RD and its export route
   * targets: "srv6" paths in VPN form with the SRv6 SID, "vxlan" paths as EVPN type-5 routes.
   * Adding a prefix again (same form) replaces the path (implicit withdraw). gobgpd does not check
   * that the VRF exists; DeleteVrf withdraws them (they carry its RD). Calls made at the same time
   * are sent together (one AddPathStream request).
   */
  addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void>;
  /** Withdraws `paths` of `vrf` (by form, RD and prefix); withdrawing one that is not there succeeds. */
  deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void>;

  /** Names of the defined sets of `type`. */
  listDefinedSets(type: DefinedSetType): Promise<string[]>;
  addDefinedSet(set: DefinedSet): Promise<void>;
  deleteDefinedSet(type: DefinedSetType, name: string): Promise<void>;
  /** Names of the policies. */
  listPolicies(): Promise<string[]>;
  /** Adds the policy with its statements (names must be new: gobgpd merges into an existing one). */
  addPolicy(policy: RoutingPolicy): Promise<void>;
  /** Deletes the policy and its statements (the policy must not be assigned). */
  deletePolicy(name: string): Promise<void>;
  getGlobalPolicyAssignment(direction: PolicyDirection): Promise<PolicyAssignment>;
  /** Replaces the global import or export policy list (the policies must exist). */
  setGlobalPolicyAssignment(direction: PolicyDirection, assignment: PolicyAssignment): Promise<void>;
  /**
   * Soft reset: the peer's received paths go through the import policy again ("in"), its
   * advertised ones through the export policy ("out"), without dropping the session; "hard"
   * resets the session (a NOTIFICATION, then it comes back).
   */
  resetPeer(address: string, how: SoftResetDirection | "hard"): Promise<void>;

  /**
   * Events until `signal` aborts or the connection breaks; the iterator then ends (on abort) or
   * throws a SpeakerError of kind "unavailable" (gobgpd gone: reconnect and replay).
   */
  watch(signal: AbortSignal): AsyncIterable<SpeakerEvent>;

  close(): void;
}
