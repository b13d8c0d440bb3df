// Remote VTEPs on a VPC's VXLAN device (pure): how kvrfd's routes name a remote VTEP as their next
// hop, and the neighbour and forwarding entries that turn that next hop into a VXLAN packet to it.
//
// A remote prefix is routed `via KEY dev <vxlan> onlink`; the permanent neighbour KEY → the remote
// router MAC gives the inner Ethernet header, and the FDB entry router MAC → VTEP gives the outer
// destination (docs/dataplane.md, "Remote prefixes"). KEY is the VTEP itself for an IPv4 prefix
// over an IPv4 VTEP, ::ffff:VTEP for an IPv6 prefix over an IPv4 VTEP, and for an IPv6 VTEP a
// link-local address derived from it: the kernel refuses an onlink IPv6 gateway that another
// table routes through another device ("Nexthop has invalid gateway or device mismatch"), which an
// IPv6 VTEP always is in policy-routing mode (the main table routes it over the underlay).
import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import ipaddr from "ipaddr.js";

export interface VtepEntry {
  /** The VPC's VXLAN device. */
  dev: string;
  /** The remote VTEP (canonical text). */
  vtep: string;
  /** The remote node's router MAC (lower case). */
  routerMac: string;
}

export const vtepKey = (e: { dev: string; vtep: string }): string => `${e.dev} ${e.vtep}`;

/** Canonical text: IPv6 compressed (an IPv4-mapped one stays IPv6), IPv4 dotted. */
function canonical(addr: string): string {
  return isIPv6(addr) ? ipaddr.IPv6.parse(addr).toString() : ipaddr.IPv4.parse(addr).toString();
}

/** A stable link-local address for an IPv6 VTEP: fe80::/64 and 64 bits of its hash. */
function linkLocalFor(vtep: string): string {
  const h = createHash("sha256").update(`kvrf-vtep/${canonical(vtep)}`).digest();
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(h.readUInt16BE(i).toString(16));
  return ipaddr.parse(`fe80::${groups.join(":")}`).toString();
}

/**
 * The next hop of a prefix of `prefixFamily` reached over `vtep`: the address, and whether the
 * route must say `via inet6` (an IPv4 prefix over an IPv6 next hop, Linux ≥ 5.2).
 */
export function vtepNextHop(prefixFamily: 4 | 6, vtep: string): { via: string; inet6: boolean } {
  if (isIPv4(vtep)) return prefixFamily === 4 ? { via: vtep, inet6: false } : { via: canonical(`::ffff:${vtep}`), inet6: false };
  return { via: linkLocalFor(vtep), inet6: prefixFamily === 4 };
}

/** The neighbour keys a VTEP needs on the device (every next hop a route of either family may use). */
export function vtepNeighbours(vtep: string): string[] {
  return isIPv4(vtep) ? [vtep, canonical(`::ffff:${vtep}`)] : [linkLocalFor(vtep)];
}

/** Canonical text of a next hop as the kernel reports it (IPv6 compressed, IPv4 as is). */
export function canonicalVia(text: string): string {
  return canonical(text);
}

export interface VtepPlan {
  /** Entries to make or correct (`replace`: idempotent). */
  add: VtepEntry[];
  /** Entries no route uses any more. */
  remove: VtepEntry[];
}

/**
 * Entries `desired` calls for that `observed` lacks (or has with another router MAC), and observed
 * ones neither desired nor still `inUse` (next hops of routes that stay, e.g. held after a gobgpd
 * restart: "dev via" strings).
 */
export function planVteps(desired: readonly VtepEntry[], observed: readonly VtepEntry[], inUse: ReadonlySet<string> = new Set()): VtepPlan {
  const want = new Map(desired.map((e) => [vtepKey(e), e]));
  const have = new Map(observed.map((e) => [vtepKey(e), e]));
  const add = [...want.values()].filter((e) => have.get(vtepKey(e))?.routerMac !== e.routerMac);
  const remove = [...have.values()].filter((e) => !want.has(vtepKey(e)) && !vtepNeighbours(e.vtep).some((k) => inUse.has(`${e.dev} ${k}`)));
  return { add, remove };
}

/** `ip -batch` lines (neighbours, marked with kvrfd's protocol) and `bridge -batch` lines (FDB). */
export function vtepCommands(p: VtepPlan, proto: number): { ipAdd: string[]; ipRemove: string[]; bridgeAdd: string[]; bridgeRemove: string[] } {
  return {
    ipAdd: p.add.flatMap((e) => vtepNeighbours(e.vtep).map((k) => `neigh replace ${k} lladdr ${e.routerMac} dev ${e.dev} nud permanent protocol ${proto}`)),
    ipRemove: p.remove.flatMap((e) => vtepNeighbours(e.vtep).map((k) => `neigh del ${k} dev ${e.dev}`)),
    bridgeAdd: p.add.map((e) => `fdb replace ${e.routerMac} dev ${e.dev} dst ${e.vtep} self permanent`),
    bridgeRemove: p.remove.map((e) => `fdb del ${e.routerMac} dev ${e.dev} dst ${e.vtep} self`),
  };
}
