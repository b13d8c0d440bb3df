// The BGPInstance API (kvrf.dev/v1alpha1, cluster-scoped; schema of record:
// manifests/crds/bgpinstances.kvrf.dev.yaml) and the pure functions around it: which instance a
// node runs, and the speaker configuration it asks for.
import type { Condition, Encapsulation, ObjectMeta } from "../../shared/api-types.js";
import { matchesSelector, type LabelSelector } from "../../shared/label-selector.js";
import { checkAsn, RouteDistinguisherError } from "../../shared/route-distinguisher.js";
import { autoRouterId, manualRouterId, RouterIdError, type NodeAddress } from "./router-id.js";
import type { GlobalConfig, PeerConfig, PeerFamily } from "../gobgp/speaker.js";
import { compareText } from "../../shared/order.js";
import type { ExternalRoutesSpec } from "../vrf/trust.js";
import { peerRestrictions, sessionPolicy, type ExportRoutes, type SessionPolicy } from "./session-policy.js";

export interface SecretKeyRef {
  namespace: string;
  name: string;
  key: string;
}

/** A BGP family of the peers (PeerConfig.families): L3VPN for SRv6, l2vpn-evpn (type-5 routes) for VXLAN. */
export type Family = PeerFamily;

export interface BGPPeerSpec {
  address: string;
  asn: number;
  passwordSecretRef?: SecretKeyRef;
  routeReflectorClient?: boolean;
  timers?: { holdTime?: number; keepalive?: number };
  port?: number;
  localAddress?: string;
  families?: Family[];
  /**
   * When set, the session carries only these VPCs' routes (VPC IDs, hex), both ways: a path whose
   * route targets are not all theirs is neither sent nor accepted. Empty: nothing. Absent: all.
   */
  vpcs?: string[];
  /**
   * What the session is sent of those VPCs' routes: All (default) or Pods, only the cluster's own
   * paths (next hop a Node address or published VTEP), never routes learned from outside it.
   */
  exportRoutes?: ExportRoutes;
}

export interface BGPInstanceSpec {
  /** Required by the CRD; as in Kubernetes, {} selects every node and a missing selector none. */
  nodeSelector?: LabelSelector;
  asn: number;
  /**
   * The cluster-wide ASN VPC route targets are derived from (default `asn`): the same in every
   * instance of a cluster whose nodes have different ASNs (eBGP fabrics), or VPCs split.
   */
  routeTargetASN?: number;
  /** How VPC traffic crosses the underlay (default srv6). */
  encapsulation?: Encapsulation;
  routerID?: { source: "Manual" | "Auto"; value?: string };
  listenPort?: number;
  listenAddresses?: string[];
  families?: Family[];
  routeReflector?: { clusterID?: string };
  /** Routes into VPCs from outside the cluster (next hop no node's): who may send them, how many. */
  externalRoutes?: ExternalRoutesSpec;
  /** Graceful restart with every peer (RFC 4724, with RFC 8538's notification extension). */
  gracefulRestart?: { enabled?: boolean; restartTime?: number };
  peers?: BGPPeerSpec[];
}

export interface BGPInstanceNodeStatus {
  nodeName: string;
  observedGeneration?: number;
  routerID?: string;
  routerIDSource?: string;
  asn?: number;
  api?: string;
  peers?: { address: string; state: string }[];
  establishedPeers?: number;
  kernel?: { release: string; mode: string; capabilities: string[]; missing: string[] };
  conditions?: Condition[];
}

export interface BGPInstance {
  apiVersion: string;
  kind: "BGPInstance";
  metadata: ObjectMeta;
  spec: BGPInstanceSpec;
  status?: { nodes?: BGPInstanceNodeStatus[] };
}

/** Milliseconds of an API timestamp: typed Date, but raw JSON (our informers) carries strings. */
export function timeOf(t: Date | string | undefined): number {
  if (t === undefined) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? 0 : ms;
}

function created(o: BGPInstance): number {
  return timeOf(o.metadata.creationTimestamp);
}

/**
 * The instance a node runs: of those whose selector matches, the oldest (then by name). The others
 * are returned so the conflict is reported; kvrfd keeps the node's BGP running meanwhile (the CNI
 * plugin refuses to pick an ASN while more than one matches).
 */
export function selectInstance(
  instances: readonly BGPInstance[],
  nodeLabels: Readonly<Record<string, string>>,
): { chosen?: BGPInstance; ignored: BGPInstance[] } {
  const matching = instances
    .filter((i) => i.metadata.deletionTimestamp === undefined && matchesSelector(i.spec.nodeSelector, nodeLabels))
    .sort((a, b) => created(a) - created(b) || compareText(a.metadata.name ?? "", b.metadata.name ?? ""));
  const [chosen, ...ignored] = matching;
  return chosen === undefined ? { ignored } : { chosen, ignored };
}

export class InstanceError extends Error {
  override readonly name = "InstanceError";
}

export interface DesiredSpeaker {
  global: GlobalConfig;
  routerIdFrom: string;
  peers: PeerConfig[];
  /** Peers left out, with why (e.g. their password Secret is missing). */
  skippedPeers: string[];
  /** The routing policy of the peers with `vpcs` or exportRoutes Pods (undefined: none has). */
  sessionPolicy?: SessionPolicy;
  /** VPCs of peers' `vpcs` left out, with why. */
  policyProblems: string[];
}

/** Resolves a password Secret key; undefined when the Secret or key is missing. */
export type PasswordLookup = (ref: SecretKeyRef) => Promise<string | undefined>;

/** The speaker configuration an instance asks of a node (pure apart from the password lookups). */
export async function desiredSpeaker(
  inst: BGPInstance,
  nodeAddresses: readonly NodeAddress[],
  password: PasswordLookup,
  /** The cluster's own next hops (Node addresses, published VTEPs), for peers with exportRoutes Pods. */
  clusterNextHops: readonly string[] = [],
): Promise<DesiredSpeaker> {
  const spec = inst.spec;
  let routerId: { routerId: string; from: string };
  try {
    checkAsn(spec.asn, "spec.asn");
    routerId =
      (spec.routerID?.source ?? "Auto") === "Manual"
        ? { routerId: manualRouterId(spec.routerID?.value), from: "Manual" }
        : autoRouterId(nodeAddresses);
  } catch (err) {
    if (err instanceof RouterIdError || err instanceof RouteDistinguisherError) throw new InstanceError(err.message);
    throw err;
  }
  const global: GlobalConfig = { asn: spec.asn, routerId: routerId.routerId, listenPort: spec.listenPort ?? 179 };
  if (spec.listenAddresses !== undefined && spec.listenAddresses.length > 0) global.listenAddresses = [...spec.listenAddresses];
  const families = spec.families ?? ((spec.encapsulation ?? "srv6") === "srv6" ? ["vpnv4", "vpnv6"] : ["l2vpn-evpn"]);
  const peers: PeerConfig[] = [];
  const skippedPeers: string[] = [];
  const seen = new Set<string>();
  for (const p of spec.peers ?? []) {
    if (seen.has(p.address)) {
      skippedPeers.push(`${p.address}: listed twice`);
      continue;
    }
    seen.add(p.address);
    const peer: PeerConfig = { address: p.address, asn: p.asn, families: [...(p.families ?? families)] };
    if (p.passwordSecretRef !== undefined) {
      const ref = p.passwordSecretRef;
      const pw = await password(ref);
      if (pw === undefined) {
        skippedPeers.push(`${p.address}: password Secret ${ref.namespace}/${ref.name} key ${ref.key} not found`);
        continue;
      }
      peer.password = pw;
    }
    if (p.routeReflectorClient === true) {
      peer.routeReflectorClient = true;
      peer.routeReflectorClusterId = spec.routeReflector?.clusterID ?? routerId.routerId;
    }
    if (p.timers?.holdTime !== undefined) peer.holdTimeSeconds = p.timers.holdTime;
    if (p.timers?.keepalive !== undefined) peer.keepaliveSeconds = p.timers.keepalive;
    if (p.port !== undefined) peer.remotePort = p.port;
    if (p.localAddress !== undefined) peer.localAddress = p.localAddress;
    if (spec.gracefulRestart !== undefined && spec.gracefulRestart.enabled !== false) {
      peer.gracefulRestart = { restartTimeSeconds: spec.gracefulRestart.restartTime ?? 120 };
    }
    peers.push(peer);
  }
  const { restrictions, problems } = peerRestrictions(spec);
  const policy = sessionPolicy(restrictions, clusterNextHops);
  return { global, routerIdFrom: routerId.from, peers, skippedPeers, policyProblems: problems, ...(policy !== undefined ? { sessionPolicy: policy } : {}) };
}
