// The lab's topology, shared by the namespace lab and (by hand, in step) containerlab/: a route
// reflector and three workers on one fabric (IPv6 fd00:ff::/64 and IPv4 198.51.100.0/24), one
// locator per worker, two VPCs whose IPv4 ranges overlap, and the demo pods. The lab runs in one
// encapsulation over one underlay family (LabSettings): SRv6 over IPv6, or VXLAN over IPv4 or IPv6.
import { locatorAnnotation, vtepAnnotation } from "../../shared/api-types.js";

export type LabEncap = "srv6" | "vxlan";

export interface LabSettings {
  encap: LabEncap;
  /** Address family of the underlay: BGP sessions, next hops, VTEPs. SRv6 needs 6. */
  underlay: 4 | 6;
  /**
   * The CNI plugin's kernel mode; default auto (VRF devices where the kernel has them). "mixed":
   * VRF devices on iad and dfw, policy routing on sjc — a cluster part-way through a move between
   * kernels, and both modes' data planes exchanging traffic in one lab.
   */
  mode?: "vrf" | "policy-routing" | "mixed";
  /**
   * What runs the route reflector's BGP; default gobgpd (with kvrfd, as on the workers). "frr":
   * FRR 8.4's bgpd + zebra, configured from the same BGPInstance (frr-reflector.ts), no kvrfd.
   */
  reflector?: LabReflector;
  /**
   * The BGP fabric; default "ibgp" (AS 65000 everywhere, the reflector reflects). "ebgp": an ASN
   * per worker (workerAsn), eBGP with the reflector's node as the spine of AS 65000, the VPCs'
   * route targets from the cluster-wide route-target ASN 65000 (docs/fabric.md). Needs FRR as the
   * spine (reflector "frr"): it passes next hops on unchanged, which a VTEP needs.
   */
  fabric?: "ibgp" | "ebgp";
  /**
   * What runs on the workers; default "processes" (gobgpd and kvrfd started by the lab, pods
   * attached with cnitool). "kubelet": containerd + kubelet per worker (kubelet.ts), kvrf deployed
   * from manifests/ as a DaemonSet, pods created with kubectl and attached by kubelet.
   */
  runtime?: "processes" | "kubelet";
}

export type LabReflector = "gobgpd" | "frr";

/** The lab's cluster ASN: the iBGP ASN, the spine's in an eBGP lab, and the route targets'. */
export const labAsn = 65000;

/** A worker's ASN under `s`: 65001, 65002, … in an eBGP lab (workers' order), else the lab's. */
export function workerAsn(node: Pick<LabNode, "name">, s: LabSettings): number {
  if (s.fabric !== "ebgp") return labAsn;
  const i = workers.findIndex((w) => w.name === node.name);
  if (i < 0) throw new Error(`${node.name} is not a worker of the lab`);
  return labAsn + 1 + i;
}

/** The settings' reflector, its default filled in. */
export function labReflector(s: LabSettings): LabReflector {
  return s.reflector ?? "gobgpd";
}

/** The kernel mode a worker's CNI config asks for under `s` (undefined: the plugin decides). */
export function nodeMode(node: Pick<LabNode, "name">, s: LabSettings): "vrf" | "policy-routing" | undefined {
  if (s.mode === "mixed") return node.name === "sjc" ? "policy-routing" : "vrf";
  return s.mode;
}

export const srv6Lab: LabSettings = { encap: "srv6", underlay: 6 };

export function describeSettings(s: LabSettings): string {
  const mode = s.mode === "mixed" ? ", VRF-device mode on iad and dfw, policy-routing mode on sjc" : s.mode !== undefined ? `, ${s.mode} mode` : "";
  const reflector = s.fabric === "ebgp" ? ", eBGP with an ASN per worker and FRR as the spine" : labReflector(s) === "frr" ? ", FRR as route reflector" : "";
  const runtime = s.runtime === "kubelet" ? ", workers run by containerd + kubelet" : "";
  return `${s.encap === "srv6" ? "SRv6" : "VXLAN (EVPN type-5)"} over an IPv${s.underlay} underlay${mode}${reflector}${runtime}`;
}

export interface LabNode {
  name: string;
  role: "route-reflector" | "worker";
  /** IPv6 underlay address on fab0. */
  address: string;
  /** IPv4 underlay address on fab0. */
  address4: string;
  /** SRv6 locator (workers). */
  locator?: string;
  /** Third octet of pod IPv4 ranges and group of IPv6 ones (workers). */
  index?: number;
}

export const labNodes: LabNode[] = [
  { name: "rr", role: "route-reflector", address: "fd00:ff::1", address4: "198.51.100.1" },
  { name: "iad", role: "worker", address: "fd00:ff::11", address4: "198.51.100.11", locator: "fd00:0:11::/48", index: 11 },
  { name: "sjc", role: "worker", address: "fd00:ff::12", address4: "198.51.100.12", locator: "fd00:0:12::/48", index: 12 },
  { name: "dfw", role: "worker", address: "fd00:ff::13", address4: "198.51.100.13", locator: "fd00:0:13::/48", index: 13 },
];

export const workers = labNodes.filter((n) => n.role === "worker");

/** The node's address in the settings' underlay family: its InternalIP, BGP endpoint and VTEP. */
export function underlayAddress(node: LabNode, s: LabSettings): string {
  return s.underlay === 4 ? node.address4 : node.address;
}

/**
 * The annotations an operator puts on a worker's Node: its SRv6 locator (SRv6) or its VTEP (VXLAN).
 * kvrfd checks remote paths against them (reconciler/vrf/trust.ts); the route reflector has none.
 */
export function nodeAnnotations(node: LabNode, s: LabSettings): Record<string, string> {
  if (node.role !== "worker") return {};
  const own = s.encap === "srv6" ? { [locatorAnnotation]: node.locator ?? "" } : { [vtepAnnotation]: underlayAddress(node, s) };
  // With kubelets the DaemonSet's installer renders the conflist from these (manifests/overlays/lab-kubelet).
  return s.runtime === "kubelet" ? { ...own, [labSubnetAnnotation]: `10.10.${node.index}.0/24`, [labSubnet6Annotation]: `fd10:0:${node.index}::/64` } : own;
}

/** The node's pod ranges in a kubelet lab (host-local IPAM, shared by the node's VPCs). */
export const labSubnetAnnotation = "kvrf.dev/lab-subnet";
export const labSubnet6Annotation = "kvrf.dev/lab-subnet6";

/**
 * VPC IDs (hex) of the demo. Both use 10.10.<node>.0/24: every address of VPC b1 is also one of
 * VPC a1, held by a pod on the same node (two VRFs of one node originate the same prefix).
 */
export const vpcs = ["a1", "b1"] as const;

export interface DemoPod {
  name: string;
  vpc: (typeof vpcs)[number];
  node: string;
}

/** Two pods of VPC a1 on one node, one on each other worker; VPC b1 overlapping on two nodes. */
export const demoPods: DemoPod[] = [
  { name: "a1-iad-1", vpc: "a1", node: "iad" },
  { name: "a1-iad-2", vpc: "a1", node: "iad" },
  { name: "a1-sjc", vpc: "a1", node: "sjc" },
  { name: "a1-dfw", vpc: "a1", node: "dfw" },
  { name: "b1-iad", vpc: "b1", node: "iad" },
  { name: "b1-sjc", vpc: "b1", node: "sjc" },
];

export const nsPrefix = "kvrf-lab-";
export const nodeNetns = (node: string): string => `${nsPrefix}${node}`;
export const podNetns = (pod: string): string => `${nsPrefix}pod-${pod}`;
export const fabricNetns = `${nsPrefix}fabric`;

/** Third octet of a VPC's IPv4 range on a node (and group of its IPv6 one): the same for every VPC. */
export function rangeIndex(node: LabNode, _vpc: string): number | undefined {
  return node.index;
}

/** The network config a worker's CNI runs with for one VPC (as in containerlab/cni/<encap>/<node>/). */
export function conflist(node: LabNode, vpc: string, kubeconfig: string, stateDir: string, logFile: string, s: LabSettings = srv6Lab): Record<string, unknown> {
  const r = rangeIndex(node, vpc);
  return {
    cniVersion: "1.1.0",
    name: `vpc-${vpc}`,
    plugins: [
      {
        type: "kvrf",
        vpc,
        encapsulation: s.encap,
        ...(s.encap === "srv6" ? { srv6Locator: node.locator } : { vtep: underlayAddress(node, s) }),
        ...(nodeMode(node, s) !== undefined ? { dataplaneMode: nodeMode(node, s) } : {}),
        kubeconfig,
        nodeName: node.name,
        asn: workerAsn(node, s),
        ...(s.fabric === "ebgp" ? { routeTargetASN: labAsn } : {}),
        stateDir,
        logFile,
        ipam: {
          type: "host-local",
          dataDir: `${stateDir}/ipam`,
          ranges: [[{ subnet: `10.10.${r}.0/24` }], [{ subnet: `fd10:${vpc}:${r}::/64` }]],
        },
      },
    ],
  };
}

/** The BGP families of an encapsulation's routes. */
export function labFamilies(s: LabSettings): string[] {
  return s.encap === "srv6" ? ["vpnv4", "vpnv6"] : ["l2vpn-evpn"];
}

/**
 * The lab's speaker configuration: workers derive their router ID from their InternalIP (Auto),
 * the route reflector has a fixed one (Manual); iBGP in AS 65000 over the settings' underlay
 * family; the encapsulation every node uses. containerlab/manifests/bgpinstances{,-vxlan}.yaml are
 * these objects for SRv6/IPv6 and VXLAN/IPv4 (topology.test.ts keeps them equal).
 */
export function bgpInstances(s: LabSettings): Record<string, unknown>[] {
  const rr = labNodes.find((n) => n.role === "route-reflector");
  if (rr === undefined) throw new Error("the lab has no route reflector");
  const timers = { holdTime: 9, keepalive: 3 };
  const families = labFamilies(s);
  // Graceful restart: a restarting gobgpd's routes stay on the other nodes (docs/kvrfd.md).
  const gracefulRestart = { enabled: true, restartTime: 120 };
  if (s.fabric === "ebgp") {
    // One instance per worker (its own ASN), each peering with the spine; the spine peers with
    // every worker in its ASN. The route targets come from the cluster's ASN on every worker.
    return [
      ...workers.map((w) => ({
        apiVersion: "kvrf.dev/v1alpha1",
        kind: "BGPInstance",
        metadata: { name: `worker-${w.name}` },
        spec: {
          nodeSelector: { matchLabels: { "kvrf.dev/role": "worker", "kubernetes.io/hostname": w.name } },
          asn: workerAsn(w, s),
          routeTargetASN: labAsn,
          encapsulation: s.encap,
          routerID: { source: "Auto" },
          listenPort: 179,
          families,
          gracefulRestart,
          peers: [{ address: underlayAddress(rr, s), asn: labAsn, timers }],
        },
      })),
      {
        apiVersion: "kvrf.dev/v1alpha1",
        kind: "BGPInstance",
        metadata: { name: "route-reflector" },
        spec: {
          nodeSelector: { matchLabels: { "kvrf.dev/role": "route-reflector" } },
          asn: labAsn,
          encapsulation: s.encap,
          routerID: { source: "Manual", value: "10.255.0.1" },
          listenPort: 179,
          families,
          gracefulRestart,
          peers: workers.map((w) => ({ address: underlayAddress(w, s), asn: workerAsn(w, s), timers })),
        },
      },
    ];
  }
  return [
    {
      apiVersion: "kvrf.dev/v1alpha1",
      kind: "BGPInstance",
      metadata: { name: "workers" },
      spec: {
        nodeSelector: { matchLabels: { "kvrf.dev/role": "worker" } },
        asn: 65000,
        encapsulation: s.encap,
        routerID: { source: "Auto" },
        listenPort: 179,
        families,
        gracefulRestart,
        peers: [{ address: underlayAddress(rr, s), asn: 65000, timers }],
      },
    },
    {
      apiVersion: "kvrf.dev/v1alpha1",
      kind: "BGPInstance",
      metadata: { name: "route-reflector" },
      spec: {
        nodeSelector: { matchLabels: { "kvrf.dev/role": "route-reflector" } },
        asn: 65000,
        encapsulation: s.encap,
        routerID: { source: "Manual", value: "10.255.0.1" },
        listenPort: 179,
        families,
        routeReflector: { clusterID: "10.255.0.1" },
        gracefulRestart,
        peers: workers.map((w) => ({ address: underlayAddress(w, s), asn: 65000, routeReflectorClient: true, timers })),
      },
    },
  ];
}
