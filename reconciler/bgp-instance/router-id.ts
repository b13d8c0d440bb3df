// BGP router IDs (RFC 6286: a non-zero 32-bit number, written as a dotted quad).
//
// Auto derives the ID from the node's InternalIP so that no operator has to hand them out:
//   - an IPv4 InternalIP is used as is: node IPv4 addresses are unique in a cluster, so are the IDs;
//   - otherwise the IPv6 InternalIP is XOR-folded (its four 32-bit words XORed together). Nodes
//     whose addresses differ in one 32-bit word only (the usual case: a shared /96, or per-node
//     /64s that differ in one word such as fd00:0:a::1 and fd00:0:b::1) get distinct IDs, unlike
//     "the low 32 bits", which maps every ::1 to 0.0.0.1. Anything else can collide, which is
//     why kvrfd publishes its ID and reports duplicates (findRouterIdConflicts).
import ipaddr from "ipaddr.js";

export class RouterIdError extends Error {
  override readonly name = "RouterIdError";
}

export interface NodeAddress {
  type: string;
  address: string;
}

function quad(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join(".");
}

/** The Auto router ID of one address, with a note of how it was derived. */
export function routerIdFromAddress(address: string): { routerId: string; from: string } {
  if (!ipaddr.isValid(address)) throw new RouterIdError(`"${address}" is not an IP address`);
  const ip = ipaddr.parse(address);
  if (ip.kind() === "ipv4") {
    const id = ip.toString();
    if (id === "0.0.0.0") throw new RouterIdError("InternalIP 0.0.0.0 cannot be a router ID");
    return { routerId: id, from: `IPv4 InternalIP ${id}` };
  }
  const b = ip.toByteArray();
  let folded = 0;
  for (let w = 0; w < 4; w++) {
    folded ^= ((b[w * 4] ?? 0) << 24) | ((b[w * 4 + 1] ?? 0) << 16) | ((b[w * 4 + 2] ?? 0) << 8) | (b[w * 4 + 3] ?? 0);
  }
  folded >>>= 0;
  if (folded === 0) {
    throw new RouterIdError(`IPv6 InternalIP ${address} folds to 0.0.0.0, which is not a valid router ID; set routerID.source=Manual`);
  }
  return { routerId: quad(folded), from: `IPv6 InternalIP ${ip.toString()} (XOR of its 32-bit words)` };
}

/**
 * The Auto router ID of a node: its first IPv4 InternalIP, else its first IPv6 InternalIP folded.
 * IPv4 wins on dual-stack nodes because it is unique by construction.
 */
export function autoRouterId(addresses: readonly NodeAddress[]): { routerId: string; from: string } {
  const internal = addresses.filter((a) => a.type === "InternalIP" && ipaddr.isValid(a.address));
  const v4 = internal.find((a) => ipaddr.parse(a.address).kind() === "ipv4");
  const pick = v4 ?? internal[0];
  if (pick === undefined) throw new RouterIdError("the node has no InternalIP address to derive a router ID from");
  return routerIdFromAddress(pick.address);
}

/** Validates a Manual router ID. */
export function manualRouterId(value: string | undefined): string {
  if (value === undefined || !ipaddr.IPv4.isValidFourPartDecimal(value)) {
    throw new RouterIdError(`routerID.value ${JSON.stringify(value)} is not a dotted-quad IPv4 address`);
  }
  if (value === "0.0.0.0") throw new RouterIdError("routerID.value 0.0.0.0 is not a valid router ID");
  return value;
}

export interface PublishedRouterId {
  node: string;
  routerId: string;
}

/** Other nodes that publish the same router ID as `self`, sorted by name. */
export function findRouterIdConflicts(self: PublishedRouterId, published: readonly PublishedRouterId[]): string[] {
  const others = published.filter((p) => p.node !== self.node && p.routerId === self.routerId).map((p) => p.node);
  return [...new Set(others)].sort();
}
