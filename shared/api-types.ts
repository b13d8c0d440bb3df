// The kvrf.dev/v1alpha1 API as TypeScript: object shapes, names, labels and the constants the CNI
// plugin and kvrfd must agree on. The CRDs in manifests/crds/ are the schema of record.
import { createHash } from "node:crypto";

export const group = "kvrf.dev";
export const version = "v1alpha1";
export const apiVersion = `${group}/${version}`;

export const bgpVrfInstance = { kind: "BGPVRFInstance", plural: "bgpvrfinstances" } as const;
export const bgpInstance = { kind: "BGPInstance", plural: "bgpinstances" } as const;
export const routeTargetClaim = { kind: "RouteTargetClaim", plural: "routetargetclaims" } as const;
export const vniClaim = { kind: "VNIClaim", plural: "vniclaims" } as const;

/**
 * How a VPC's traffic crosses the underlay between nodes: SRv6 (VPNv4/VPNv6 routes with a Prefix-SID,
 * RFC 9252; IPv6 underlay) or VXLAN (EVPN type-5 routes with the VPC's VNI, RFC 9136; IPv4 or IPv6
 * underlay). Chosen per cluster in the BGPInstance (spec.encapsulation).
 */
export type Encapsulation = "srv6" | "vxlan";
export const encapsulations: readonly Encapsulation[] = ["srv6", "vxlan"];

/** Label on every BGPVRFInstance: the node it belongs to (see nodeLabelValue). kvrfd watches by it. */
export const nodeLabel = "kvrf.dev/node";
/** Label on every BGPVRFInstance and RouteTargetClaim: the VPC (canonical hex). */
export const vpcLabel = "kvrf.dev/vpc";
/** Finalizer that holds a BGPVRFInstance until kvrfd has removed its VRF, paths and routes. */
export const vrfFinalizer = "kvrf.dev/vrf-cleanup";

/**
 * Route protocol numbers (`ip route … proto N`) marking who owns a kernel route:
 * the CNI plugin's attachment routes, and kvrfd's routes to remote prefixes (and its VXLAN
 * neighbour entries). Each only ever changes routes carrying its own number. Outside every range
 * a routing suite on the node may use: FRR's zebra installs 186–197 (196 its static routes, 197
 * OpenFabric), so kvrf's earlier 196/197 could have made kvrfd's orphan sweep remove FRR's routes.
 */
export const routeProtocol = { cni: 240, kvrfd: 241 } as const;

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface Attachment {
  /** CNI container ID and interface name: the list-map key. */
  containerID: string;
  ifName: string;
  /** 16-bit attachment ID, canonical hex. */
  attachment: string;
  /** SRv6 SID that delivers traffic into this attachment; used for IPv4 prefixes, and IPv6 ones unless sid6 is set. */
  sid?: string;
  /** SID for IPv6 prefixes when it differs from sid (policy-routing mode decapsulates per family). */
  sid6?: string;
  /** Prefixes routed to this attachment: pod IPs (/32, /128) and terminations. */
  prefixes: string[];
}

export interface BGPVRFInstanceSpec {
  nodeName: string;
  /** 48-bit VPC ID, canonical hex. */
  vpc: string;
  asn: number;
  /**
   * The cluster-wide ASN the route targets are derived from ("routeTargetASN:NN"); absent means
   * `asn` (objects written before it existed, and clusters of one ASN).
   */
  routeTargetASN?: number;
  /** "ASN:NN". */
  routeDistinguisher: string;
  importRouteTargets: string[];
  exportRouteTargets: string[];
  /** Kernel table of the VPC on the node; also the GoBGP VRF id. */
  table: number;
  /** How the node's attachments are reached; absent means srv6 (objects from before VXLAN). */
  encapsulation?: Encapsulation;
  /** VXLAN: the VPC's VNI (its low 24 bits), claimed cluster-wide by a VNIClaim. */
  vni?: number;
  /** VXLAN: the node's VTEP, the local address of the VPC's VXLAN device (the EVPN next hop). */
  vtep?: string;
  /** VXLAN: the node's router MAC (shared/router-mac.ts), the VXLAN device's address. */
  routerMac?: string;
  attachments?: Attachment[];
}

export interface BGPVRFInstanceStatus {
  observedGeneration?: number;
  localPrefixes?: number;
  remotePrefixes?: number;
  conditions?: Condition[];
}

export interface ObjectMeta {
  name?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  // Typed as client-node deserializes them (Date); raw-JSON readers (the CNI plugin) see strings
  // and only test for presence.
  deletionTimestamp?: Date;
  creationTimestamp?: Date;
}

export interface BGPVRFInstance {
  apiVersion: typeof apiVersion;
  kind: "BGPVRFInstance";
  metadata: ObjectMeta;
  spec: BGPVRFInstanceSpec;
  status?: BGPVRFInstanceStatus;
}

const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 16);
}

/**
 * The value of the node label for a node name. Node names are DNS subdomains of up to 253 bytes
 * but label values stop at 63, so a longer name is replaced by a stable hash ("h-…").
 */
export function nodeLabelValue(nodeName: string): string {
  return nodeName.length <= 63 && labelValuePattern.test(nodeName) ? nodeName : `h-${shortHash(nodeName)}`;
}

/** Name of the BGPVRFInstance of a VPC on a node: "<node>.vpc-<hex>", hashed when too long. */
export function bgpVrfInstanceName(nodeName: string, vpcHex: string): string {
  const name = `${nodeName}.vpc-${vpcHex}`;
  return name.length <= 253 ? name : `h-${shortHash(nodeName)}.vpc-${vpcHex}`;
}

/** The ASN a BGPVRFInstance's route targets are derived from. */
export function routeTargetAsnOf(spec: { asn: number; routeTargetASN?: number | undefined }): number {
  return spec.routeTargetASN ?? spec.asn;
}

/** The RouteTargetClaim of a route target "ASN:NN": "rt-65000-229" (dots of an IPv4 RD turned to dashes). */
export function routeTargetClaimName(rt: string): string {
  return `rt-${rt.replace(":", "-").replaceAll(".", "-")}`;
}

/** The VNIClaim of a VNI: "vni-229". */
export function vniClaimName(vni: number | string): string {
  return `vni-${vni}`;
}

/**
 * Node annotations the operator sets: the node's SRv6 locator and its VTEP address. The installer's
 * conflist templates read them, and kvrfd checks remote paths against them (reconciler/vrf/trust.ts).
 */
export const locatorAnnotation = "kvrf.dev/srv6-locator";
export const vtepAnnotation = "kvrf.dev/vtep";
