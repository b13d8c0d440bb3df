// The BGP speaker as kvrfd sees it: version-independent, typed, and small. The real
// implementations drive gobgpd over gRPC (v4 api.GoBgpService, v3 apipb.GobgpApi; see ./gobgp/);
// unit tests may use an in-memory fake that implements the same interface.
import type { AdminAssigned } from "../shared/route-distinguisher.js";

export type AddressFamily = "ipv4" | "ipv6";

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
  families: ("vpnv4" | "vpnv6")[];
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

/** A prefix this node originates into a VRF, with the SRv6 L3 service SID (RFC 9252). */
export interface LocalPath {
  vrf: string;
  /** CIDR, canonical (host bits zero). */
  prefix: string;
  /** BGP next hop: the node's underlay address. */
  nextHop: string;
  sid: string;
  behavior: Srv6Behavior;
}

/** What every path kvrfd reads from the speaker carries, in a VRF's RIB or in the global table. */
interface PathSeen {
  /** CIDR, canonical. */
  prefix: string;
  nextHop: string;
  /** SID from the path's SRv6 L3 service TLV; undefined when the path carries none. */
  sid?: string;
  behavior?: number;
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
 * A VPN path of the speaker's global table (VPNv4/VPNv6): what every VRF imports from, by route
 * target. Paths this speaker originated itself are `local`; the others carry their neighbor.
 */
export interface RibPath extends PathSeen {
  family: AddressFamily;
  /** With `prefix`, the destination; `best` is the best path of it. */
  rd: AdminAssigned;
  /** The route-target extended communities (other extended communities are left out). */
  rts: AdminAssigned[];
  /** In events: the destination has no path any more (this was its best path). */
  withdraw: boolean;
}

/**
 * What the speaker tells a watcher: best-path changes of the global VPN tables, each with the
 * path that is now best (or a withdrawal when the destination is gone); peer session changes; and
 * "watching" once the watch is registered, after which no change goes unreported (read the table
 * then, and apply the changes that follow on top).
 */
export type SpeakerEvent =
  | { kind: "rib"; paths: RibPath[] }
  | { kind: "peer"; address: string; state: PeerSessionState }
  | { kind: "watching" };

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
  stopBgp(): Promise<void>;

  listPeers(): Promise<PeerStatus[]>;
  addPeer(peer: PeerConfig): Promise<void>;
  updatePeer(peer: PeerConfig): Promise<void>;
  deletePeer(address: string): Promise<void>;

  listVrfs(): Promise<Vrf[]>;
  addVrf(vrf: Vrf): Promise<void>;
  deleteVrf(name: string): Promise<void>;

  /** Paths of `family` in the VRF's RIB (local and imported), as gobgpd's VRF view shows them. */
  listVrfPaths(vrf: string, family: AddressFamily): Promise<VrfPath[]>;
  /** Every VPN path of `family` in the global table, best ones flagged; empty while BGP is not started. */
  listRib(family: AddressFamily): Promise<RibPath[]>;
  /**
   * Originates `paths` of `vrf` in VPN form: in the global table, with the VRF's RD, its export
   * route targets and the SRv6 SID. Adding a prefix again replaces the path (implicit withdraw).
   * gobgpd does not check that the VRF exists; DeleteVrf withdraws them (they carry its RD).
   * Calls made at the same time are sent together (one AddPathStream request).
   */
  addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void>;
  /** Withdraws `paths` of `vrf` (by RD and prefix); withdrawing one that is not there succeeds. */
  deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void>;

  /**
   * Events until `signal` aborts or the connection breaks; the iterator then ends (on abort) or
   * throws a SpeakerError of kind "unavailable" (gobgpd gone: reconnect and replay).
   */
  watch(signal: AbortSignal): AsyncIterable<SpeakerEvent>;

  close(): void;
}
