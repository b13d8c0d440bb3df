// What kvrfd serves read-only on /debug/v1/snapshot (reconciler/debug/) and `kubectl kvrf` reads
// (reconciler/kubectl/): the node's gobgpd and kernel as they are at the time of the request — not
// kvrfd's own idea of them — so that desired state (the objects), GoBGP and the kernel can be
// compared line by line. Plain JSON, route targets and distinguishers as text.

/** The path of the snapshot on kvrfd's health/metrics listener. */
export const debugSnapshotPath = "/debug/v1/snapshot";

/**
 * The audience of the tokens kvrfd accepts there. `kubectl kvrf` mints them with TokenRequest for
 * the ServiceAccount kvrf-system/kvrf-debug; the API server accepts no token of this audience, so
 * one seen on the wire cannot be used against the cluster.
 */
export const debugAudience = "kvrf.dev/kvrfd";

/** The ServiceAccount `kubectl kvrf` mints debug tokens for (manifests/rbac/debug.yaml). */
export const debugServiceAccount = { namespace: "kvrf-system", name: "kvrf-debug" } as const;

/**
 * What kvrfd asks the API server (SubjectAccessReview) before answering: may this user `get` the
 * virtual resource `nodes/debug` of group kvrf.dev, named after the node? RBAC rules grant it like
 * any resource (manifests/rbac/debug.yaml).
 */
export function debugResourceAttributes(nodeName: string): { group: string; resource: string; subresource: string; verb: string; name: string } {
  return { group: "kvrf.dev", resource: "nodes", subresource: "debug", verb: "get", name: nodeName };
}

export interface SnapshotCheck {
  ok: boolean;
  detail: string;
}

export interface SnapshotPeer {
  address: string;
  asn: number;
  state: string;
  families: string[];
}

export interface SnapshotVrf {
  name: string;
  id: number;
  rd: string;
  importRts: string[];
  exportRts: string[];
}

/** A path of gobgpd's global table (VPNv4/VPNv6, or EVPN type 5). */
export interface SnapshotPath {
  family: "ipv4" | "ipv6";
  /** "vpn" for VPNv4/VPNv6 paths, "evpn" for type-5 routes. */
  form: "vpn" | "evpn";
  rd: string;
  prefix: string;
  nextHop: string;
  rts: string[];
  sid?: string;
  behavior?: number;
  vni?: number;
  routerMac?: string;
  best: boolean;
  local: boolean;
  neighbor?: string;
  problem?: string;
}

/** A kernel route of kvrf's (protocol 240, the CNI plugin's; 241, kvrfd's). */
export interface SnapshotRoute {
  family: 4 | 6;
  table: number;
  /** CIDR, or "default". */
  dst: string;
  protocol: number;
  type?: string;
  dev?: string;
  /** The route's metric as `ip -j` prints it (absent: 0 for IPv4; older snapshots have none). */
  metric?: number;
  /** Gateway or `via` address. */
  via?: string;
  /** "seg6" (with segs) or "seg6local" (with action). */
  encap?: string;
  segs?: string[];
  action?: string;
  vrftable?: number;
}

export interface SnapshotVxlan {
  name: string;
  vni: number;
  local?: string;
  up: boolean;
}

export interface SnapshotVtep {
  dev: string;
  vtep: string;
  routerMac: string;
}

export interface Snapshot {
  node: string;
  time: string;
  kvrfdVersion: string;
  /** kvrfd's /readyz checks. */
  ready: SnapshotCheck[];
  kernel?: { release: string; mode: string; capabilities: string[]; missing: string[] };
  /** gobgpd as kvrfd reaches it; `error` when it cannot be read. */
  gobgp: {
    connected: boolean;
    api?: string;
    started?: boolean;
    asn?: number;
    routerId?: string;
    error?: string;
    peers: SnapshotPeer[];
    vrfs: SnapshotVrf[];
    paths: SnapshotPath[];
  };
  /** The kernel read at request time; `error` when it cannot be read. */
  linux: {
    error?: string;
    routes: SnapshotRoute[];
    vxlan: SnapshotVxlan[];
    vteps: SnapshotVtep[];
  };
}
