// The lab's topology, shared by the namespace lab and (by hand, in step) containerlab/:
// a route reflector and three workers on fd00:ff::/64, one locator per worker, two VPCs whose
// IPv4 ranges overlap, and the demo pods.

export interface LabNode {
  name: string;
  role: "route-reflector" | "worker";
  /** Underlay address on fab0. */
  address: string;
  /** SRv6 locator (workers). */
  locator?: string;
  /** Third octet of pod IPv4 ranges and group of IPv6 ones (workers). */
  index?: number;
}

export const labNodes: LabNode[] = [
  { name: "rr", role: "route-reflector", address: "fd00:ff::1" },
  { name: "iad", role: "worker", address: "fd00:ff::11", locator: "fd00:0:11::/48", index: 11 },
  { name: "sjc", role: "worker", address: "fd00:ff::12", locator: "fd00:0:12::/48", index: 12 },
  { name: "dfw", role: "worker", address: "fd00:ff::13", locator: "fd00:0:13::/48", index: 13 },
];

export const workers = labNodes.filter((n) => n.role === "worker");

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

/** The network config a worker's CNI runs with for one VPC (as in containerlab/cni/<node>/). */
export function conflist(node: LabNode, vpc: string, kubeconfig: string, stateDir: string, logFile: string): Record<string, unknown> {
  const r = rangeIndex(node, vpc);
  return {
    cniVersion: "1.1.0",
    name: `vpc-${vpc}`,
    plugins: [
      {
        type: "kvrf",
        vpc,
        srv6Locator: node.locator,
        kubeconfig,
        nodeName: node.name,
        asn: 65000,
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
