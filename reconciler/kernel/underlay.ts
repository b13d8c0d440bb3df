// Finding the underlay when it is not configured: the link the kernel uses to reach this node's
// IPv6 BGP peers carries the SRv6 traffic too, and its source address toward them is the next
// hop the node advertises. This is what an operator would pick by hand in the common layouts
// (one fabric-facing link, or a loopback reached over several), so the DaemonSet works without a
// per-cluster interface name; --underlay-interface and --next-hop still override it.
import { isIPv6 } from "node:net";
import { canonicalIp } from "../gobgp/convert.js";

/** The node's underlay: the link SRv6 traffic leaves by, and the address it is advertised from. */
export interface Underlay {
  dev: string;
  nextHop: string;
}

/** One answer of `ip -j -6 route get ADDR`. */
export interface RouteGet {
  dst?: string;
  dev?: string;
  prefsrc?: string;
  type?: string;
}

export type RouteLookup = (address: string) => Promise<RouteGet[]>;

export class UnderlayError extends Error {
  override readonly name = "UnderlayError";
}

/**
 * The link and source address toward the first IPv6 peer the kernel can route to (peers in the
 * BGPInstance's order). Fails with every peer's reason when none can be used.
 */
export async function underlayTowardPeers(peers: readonly string[], lookup: RouteLookup): Promise<Underlay & { peer: string }> {
  const v6 = peers.filter((p) => isIPv6(p));
  if (v6.length === 0) {
    throw new UnderlayError(
      peers.length === 0
        ? "no underlay interface configured (--underlay-interface / KVRFD_UNDERLAY_INTERFACE) and no BGP peer to find it from"
        : `no underlay interface configured (--underlay-interface / KVRFD_UNDERLAY_INTERFACE) and no IPv6 BGP peer to find it from (peers: ${peers.join(", ")})`,
    );
  }
  const reasons: string[] = [];
  for (const peer of v6) {
    let routes: RouteGet[];
    try {
      routes = await lookup(peer);
    } catch (err) {
      reasons.push(`${peer}: ${err instanceof Error ? err.message.trim() : String(err)}`);
      continue;
    }
    const r = routes[0];
    if (r === undefined || r.dev === undefined) {
      reasons.push(`${peer}: no route`);
    } else if (r.type !== undefined && r.type !== "unicast") {
      reasons.push(`${peer}: route of type ${r.type}`);
    } else if (r.dev === "lo") {
      reasons.push(`${peer}: is a local address`);
    } else if (r.prefsrc === undefined || !isIPv6(r.prefsrc)) {
      reasons.push(`${peer}: no IPv6 source address on ${r.dev} (set --next-hop)`);
    } else {
      return { dev: r.dev, nextHop: r.prefsrc, peer };
    }
  }
  throw new UnderlayError(`no underlay interface configured and none found toward the IPv6 BGP peers: ${reasons.join("; ")}`);
}

/** One IPv6 address of `ip -j -6 addr show dev DEV`, with the flags that matter here. */
export interface AddrInfo {
  family: string;
  local: string;
  scope: string;
  /** Autoconfigured from a router advertisement (SLAAC). */
  dynamic?: boolean;
  temporary?: boolean;
  deprecated?: boolean;
  tentative?: boolean;
  dadfailed?: boolean;
}

/**
 * The address this node advertises as its next hop, among the global IPv6 addresses of the underlay
 * link. Other nodes accept a node's SIDs only from a next hop that is one of its Node addresses
 * (reconciler/vrf/trust.ts), so one of those comes first; then the kernel's own source toward the
 * peer; then the first configured one. Addresses a router advertisement made (SLAAC: FRR sends
 * router advertisements to any peer it negotiates extended next hops with, docs/interop.md) come
 * after configured ones, or the next hop would change whenever a router on the link appears.
 */
export function chooseNextHop(addrs: readonly AddrInfo[], nodeAddresses: readonly string[], kernelChoice?: string): { address: string; why: string } | undefined {
  const usable = addrs.filter((a) => a.family === "inet6" && a.scope === "global" && a.tentative !== true && a.dadfailed !== true && a.deprecated !== true);
  const node = new Set(nodeAddresses.map(canonical));
  const configured = (a: AddrInfo): boolean => a.dynamic !== true && a.temporary !== true;
  const own = usable.filter((a) => node.has(canonical(a.local)));
  const isKernel = (a: AddrInfo): boolean => kernelChoice !== undefined && canonical(a.local) === canonical(kernelChoice);
  const nodeAddr = own.find(isKernel) ?? own[0];
  if (nodeAddr !== undefined) return { address: nodeAddr.local, why: "the Node's own address" };
  const kernel = usable.find((a) => isKernel(a) && configured(a));
  if (kernel !== undefined) return { address: kernel.local, why: "the kernel's source address toward the peer" };
  const first = usable.find(configured);
  if (first !== undefined) return { address: first.local, why: "the link's first configured address" };
  const auto = usable[0];
  return auto === undefined ? undefined : { address: auto.local, why: "the link's only addresses are autoconfigured" };
}

const canonical = (a: string): string => canonicalIp(a) ?? a;
