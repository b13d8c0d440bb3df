// Pure planners: desired state vs observed state → the actions that close the gap, in the order
// they must run. No I/O here; appliers execute the actions and tables of cases test the plans.
import type { BGPVRFInstance } from "../../shared/api-types.js";
import { timeOf } from "../bgp-instance/bgp-instance.js";
import { canonicalIpv6, canonicalPrefix, vrfName, type DesiredVrf } from "./desired.js";
import { aaKey, type AdminAssigned } from "../../shared/route-distinguisher.js";
import type { LocalPath, RibPath, Vrf, VrfPath } from "../gobgp/speaker.js";
import { compareText } from "../../shared/order.js";
import { vtepNextHop, type VtepEntry, type VtepPlan } from "../kernel/vtep.js";

export type SpeakerAction =
  | { op: "add-vrf"; vrf: Vrf }
  | { op: "delete-vrf"; name: string }
  | { op: "add-path"; path: LocalPath }
  | { op: "delete-path"; path: LocalPath };

const rtSet = (l: readonly AdminAssigned[]): string => [...new Set(l.map(aaKey))].sort().join(",");

/** Equal as GoBGP sees a VRF: RD, import and export RT sets, id. */
export function sameVrf(a: Vrf, b: Vrf): boolean {
  return (
    a.name === b.name &&
    a.id === b.id &&
    aaKey(a.rd) === aaKey(b.rd) &&
    rtSet(a.importRts) === rtSet(b.importRts) &&
    rtSet(a.exportRts) === rtSet(b.exportRts)
  );
}

/** A next hop's identity: IPv6 canonical, IPv4 as is (canonicalIpv6 knows no IPv4). */
const sameHop = (a: string, b: string): boolean => (canonicalIpv6(a) ?? a) === (canonicalIpv6(b) ?? b);

function samePath(a: LocalPath, b: LocalPath): boolean {
  if (a.prefix !== b.prefix || !sameHop(a.nextHop, b.nextHop)) return false;
  if (a.encap === "srv6") return b.encap === "srv6" && canonicalIpv6(a.sid) === canonicalIpv6(b.sid) && a.behavior === b.behavior;
  return b.encap === "vxlan" && a.vni === b.vni && a.routerMac.toLowerCase() === b.routerMac.toLowerCase();
}

/** A local path's identity in the speaker: its prefix in its route form (VPN or EVPN). */
const pathKey = (p: Pick<LocalPath, "encap" | "prefix">): string => `${p.encap} ${canonicalPrefix(p.prefix) ?? p.prefix}`;

export interface ObservedVrf {
  vrf?: Vrf;
  /** The VRF's locally originated paths, as the speaker lists them. */
  localPaths: readonly LocalPath[];
}

/**
 * Speaker actions that turn `observed` into `desired` (undefined = the VRF must go).
 * GoBGP cannot change a VRF's RD or route targets in place, so a changed VRF is deleted (which
 * withdraws its paths) and re-added with every path. An existing path whose SID, behaviour or next
 * hop changed is re-added: a path from the same source replaces the previous one (an implicit
 * withdraw), so the prefix never disappears in between.
 */
export function planVrf(desired: DesiredVrf | undefined, observed: ObservedVrf, name?: string): SpeakerAction[] {
  if (desired === undefined) {
    const n = observed.vrf?.name ?? name;
    return observed.vrf !== undefined && n !== undefined ? [{ op: "delete-vrf", name: n }] : [];
  }
  const addAll = desired.localPaths.map((path): SpeakerAction => ({ op: "add-path", path }));
  if (observed.vrf === undefined) return [{ op: "add-vrf", vrf: desired.vrf }, ...addAll];
  if (!sameVrf(observed.vrf, desired.vrf)) {
    return [{ op: "delete-vrf", name: observed.vrf.name }, { op: "add-vrf", vrf: desired.vrf }, ...addAll];
  }
  // Keyed by route form too: a prefix that moves from SRv6 to VXLAN (the object's encapsulation
  // changed) is a new EVPN route and a VPN route to withdraw, not a replacement.
  const have = new Map(observed.localPaths.map((p) => [pathKey(p), p]));
  const want = new Set(desired.localPaths.map(pathKey));
  const actions: SpeakerAction[] = [];
  for (const [k, p] of have) {
    if (!want.has(k)) actions.push({ op: "delete-path", path: { ...p, prefix: canonicalPrefix(p.prefix) ?? p.prefix } });
  }
  for (const p of desired.localPaths) {
    const h = have.get(pathKey(p));
    if (h === undefined || !samePath(h, p)) actions.push({ op: "add-path", path: p });
  }
  return actions;
}

/** Orders route distinguishers by layout, administrator, then number. */
function compareRd(a: AdminAssigned, b: AdminAssigned): number {
  if (a.type !== b.type) return a.type - b.type;
  const admin = (v: AdminAssigned): number => (v.type === 1 ? v.address.split(".").reduce((n, o) => n * 256 + Number(o), 0) : v.asn);
  return admin(a) - admin(b) || a.assigned - b.assigned;
}

const byText = (a: string | undefined, b: string | undefined): number => ((a ?? "") < (b ?? "") ? -1 : (a ?? "") > (b ?? "") ? 1 : 0);

/**
 * What a VRF imports from the global VPN tables, as VRF paths with one best path per prefix (the
 * input of remoteRoutes). `candidates` are best paths of VPN destinations (RD + prefix); those
 * whose route targets meet `importRts` are imported, the way gobgpd's VRF view does. Per prefix:
 *  - a path this node originates wins: with this VRF's own RD (`own`, the VRF's prefixes) or any
 *    other local path imported here (gobgpd prefers locally originated paths too), so no kernel
 *    route is made for it;
 *  - otherwise, when several RDs carry the prefix (VPCs that import each other's route targets),
 *    the lowest RD wins, then the neighbor, then the next hop: deterministic on every node. (For one
 *    RD gobgpd has already chosen the best path among neighbors.)
 */
export function vrfImports(vrf: string, importRts: readonly AdminAssigned[], candidates: readonly RibPath[], own: ReadonlySet<string> = new Set()): VrfPath[] {
  const imports = new Set(importRts.map(aaKey));
  const byPrefix = new Map<string, RibPath[]>();
  for (const p of candidates) {
    if (p.withdraw || !p.rts.some((rt) => imports.has(aaKey(rt)))) continue;
    const prefix = canonicalPrefix(p.prefix) ?? p.prefix;
    const list = byPrefix.get(prefix);
    if (list === undefined) byPrefix.set(prefix, [p]);
    else list.push(p);
  }
  const out: VrfPath[] = [];
  for (const [prefix, list] of [...byPrefix].sort(([a], [b]) => byText(a, b))) {
    const ranked = [...list].sort(
      (a, b) => Number(b.local) - Number(a.local) || compareRd(a.rd, b.rd) || byText(a.neighbor, b.neighbor) || byText(a.nextHop, b.nextHop),
    );
    const ownWins = own.has(prefix);
    ranked.forEach((p, i) => {
      const v: VrfPath = { vrf, prefix, nextHop: p.nextHop, best: i === 0 && !ownWins, local: p.local };
      if (p.sid !== undefined) v.sid = p.sid;
      if (p.behavior !== undefined) v.behavior = p.behavior;
      if (p.evpn !== undefined) v.evpn = p.evpn;
      if (p.problem !== undefined) v.problem = p.problem;
      if (p.neighbor !== undefined) v.neighbor = p.neighbor;
      out.push(v);
    });
  }
  return out;
}

/**
 * A kernel route kvrfd owns, in the VPC's table T, marked proto 241:
 *  - SRv6: `PREFIX encap seg6 mode encap segs SID dev DEV`, and (kind "throw") `throw SID/128` for
 *    each remote SID of the VPC: the kernel routes the encapsulated packet with the pod's interface
 *    still as input, so in policy-routing mode the VPC's rule sends that lookup to the VPC table,
 *    where only a throw route lets it go on to the main table (docs/dataplane.md);
 *  - VXLAN (kind "vxlan"): `PREFIX via KEY dev <VPC's VXLAN device> onlink`, KEY standing for the
 *    remote VTEP (vtep.ts), whose neighbour and FDB entries are kept beside the routes.
 */
export interface KernelRoute {
  table: number;
  /** Canonical CIDR. */
  prefix: string;
  /** Canonical IPv6 SID ("" for throw and VXLAN routes). */
  sid: string;
  dev: string;
  /** Absent: an SRv6 encap route. */
  kind?: "throw" | "vxlan";
  /** VXLAN: the next hop (canonicalVia). */
  via?: string;
  /** VXLAN, desired routes only: the remote VTEP and router MAC the next hop stands for. */
  vtep?: string;
  routerMac?: string;
  /** When kvrfd installed it (ms); unknown for routes found in the kernel at start. */
  since?: number;
}

export const routeKey = (r: { table: number; prefix: string }): string => `${r.table} ${r.prefix}`;

/**
 * Where this node can send a VPC's remote prefixes: for each encapsulation the device, or why
 * paths in that form cannot be used here (they are reported, never silently dropped).
 */
export interface RouteOutlets {
  srv6: { dev: string } | { unusable: string };
  /**
   * `family`: of this node's VTEP, the VXLAN device's local address (a device sends to VTEPs of
   * its own family only). `ipv4ViaIpv6`: the kernel routes IPv4 via IPv6 next hops (an IPv4
   * prefix behind an IPv6 VTEP).
   */
  vxlan: { dev: string; family?: 4 | 6; ipv4ViaIpv6?: boolean } | { unusable: string };
}

/**
 * The kernel routes a VRF's RIB calls for: one per prefix whose best path was learned from a peer
 * and can be used here — an SRv6 path through the underlay, an EVPN type-5 path through the VPC's
 * VXLAN device. A prefix whose best path is our own is served by the CNI's local route. A plain
 * device name means SRv6 through it and no VXLAN.
 */
export function remoteRoutes(paths: readonly VrfPath[], table: number, outlets: string | RouteOutlets): { routes: KernelRoute[]; unusable: string[] } {
  const out: RouteOutlets = typeof outlets === "string" ? { srv6: { dev: outlets }, vxlan: { unusable: "this node's VPC has no VXLAN device" } } : outlets;
  const routes = new Map<string, KernelRoute>();
  const unusable: string[] = [];
  for (const p of paths) {
    if (!p.best || p.local) continue;
    const prefix = canonicalPrefix(p.prefix);
    const from = p.neighbor ?? p.nextHop;
    if (prefix === undefined) {
      unusable.push(`${p.prefix}: not a prefix`);
      continue;
    }
    if (p.problem !== undefined) {
      unusable.push(`${prefix}: best path from ${from} cannot be used: ${p.problem}`);
      continue;
    }
    if (p.evpn !== undefined) {
      if ("unusable" in out.vxlan) {
        unusable.push(`${prefix}: best path from ${from} is VXLAN (EVPN), but ${out.vxlan.unusable}`);
        continue;
      }
      const v6 = isIpv6Cidr(prefix);
      const vtepFamily = p.nextHop.includes(":") ? 6 : 4;
      if (out.vxlan.family !== undefined && vtepFamily !== out.vxlan.family) {
        unusable.push(`${prefix}: best path from ${from} is behind the IPv${vtepFamily} VTEP ${p.nextHop}, but this node's VTEP is IPv${out.vxlan.family}`);
        continue;
      }
      if (!v6 && vtepFamily === 6 && out.vxlan.ipv4ViaIpv6 === false) {
        unusable.push(`${prefix}: best path from ${from} is an IPv4 prefix behind an IPv6 VTEP, and this kernel cannot route IPv4 via IPv6 next hops (Linux 5.2 or newer)`);
        continue;
      }
      const { via } = vtepNextHop(v6 ? 6 : 4, p.nextHop);
      routes.set(prefix, { table, prefix, sid: "", dev: out.vxlan.dev, kind: "vxlan", via, vtep: p.nextHop, routerMac: p.evpn.routerMac });
      continue;
    }
    const sid = canonicalIpv6(p.sid);
    if (sid === undefined) {
      unusable.push(`${prefix}: best path from ${from} carries no SRv6 SID`);
      continue;
    }
    if ("unusable" in out.srv6) {
      unusable.push(`${prefix}: best path from ${from} is SRv6, but ${out.srv6.unusable}`);
      continue;
    }
    if (!routes.has(prefix)) routes.set(prefix, { table, prefix, sid, dev: out.srv6.dev });
    const sidPrefix = `${sid}/128`;
    if (!routes.has(sidPrefix)) routes.set(sidPrefix, { table, prefix: sidPrefix, sid: "", dev: "", kind: "throw" });
  }
  return { routes: [...routes.values()].sort((a, b) => compareText(a.prefix, b.prefix)), unusable };
}

const isIpv6Cidr = (prefix: string): boolean => prefix.includes(":");

/** The remote VTEPs the VXLAN routes among `routes` need on their devices. */
export function vtepsOf(routes: readonly KernelRoute[]): VtepEntry[] {
  const out = new Map<string, VtepEntry>();
  for (const r of routes) {
    if (r.kind !== "vxlan" || r.vtep === undefined || r.routerMac === undefined) continue;
    out.set(`${r.dev} ${r.vtep}`, { dev: r.dev, vtep: r.vtep, routerMac: r.routerMac });
  }
  return [...out.values()];
}

export interface RoutePlan {
  /** Routes to create (`ip route add`: never overwrites a route someone else owns). */
  add: KernelRoute[];
  /** Our routes whose SID or device changed (`ip route replace`). */
  replace: KernelRoute[];
  /** Our routes nobody asks for (`ip route del … proto 241`). */
  remove: KernelRoute[];
  /** VXLAN: remote VTEPs' neighbour and FDB entries to make before, and remove after, the routes. */
  vteps?: VtepPlan;
}

/**
 * Kernel actions for one or more tables. `observed` holds only kvrfd's (proto 241) routes.
 * With `holdBefore` (right after gobgpd lost its state and is relearning paths), routes installed
 * before that time (`since`, unknown = before) are not removed yet, so traffic keeps flowing
 * while the BGP sessions come back; routes learned since then are managed as usual.
 */
export function planRoutes(desired: readonly KernelRoute[], observed: readonly KernelRoute[], holdBefore?: number): RoutePlan {
  const have = new Map(observed.map((r) => [routeKey(r), r]));
  const want = new Map(desired.map((r) => [routeKey(r), r]));
  const plan: RoutePlan = { add: [], replace: [], remove: [] };
  for (const [k, r] of want) {
    const h = have.get(k);
    if (h === undefined) plan.add.push(r);
    else if (h.sid !== r.sid || h.dev !== r.dev || h.kind !== r.kind || (h.via ?? "") !== (r.via ?? "")) plan.replace.push(r);
  }
  for (const [k, r] of have) {
    if (want.has(k)) continue;
    if (holdBefore !== undefined && (r.since ?? 0) < holdBefore) continue;
    plan.remove.push(r);
  }
  return plan;
}

export function emptyPlan(p: RoutePlan): boolean {
  return p.add.length === 0 && p.replace.length === 0 && p.remove.length === 0 && (p.vteps?.add.length ?? 0) === 0 && (p.vteps?.remove.length ?? 0) === 0;
}

/** `ip -batch` lines for a plan (the family follows from the prefix). */
export function routeCommands(p: RoutePlan, proto: number): string[] {
  const enc = (r: KernelRoute): string => {
    if (r.kind === "throw") return `throw ${r.prefix} table ${r.table} proto ${proto}`;
    if (r.kind === "vxlan") {
      const inet6 = !isIpv6Cidr(r.prefix) && (r.via ?? "").includes(":");
      return `${r.prefix} via ${inet6 ? "inet6 " : ""}${r.via ?? ""} dev ${r.dev} onlink table ${r.table} proto ${proto}`;
    }
    return `${r.prefix} encap seg6 mode encap segs ${r.sid} dev ${r.dev} table ${r.table} proto ${proto}`;
  };
  return [
    ...p.remove.map((r) => `route del ${r.kind === "throw" ? "throw " : ""}${r.prefix} table ${r.table} proto ${proto}`),
    ...p.replace.map((r) => `route replace ${enc(r)}`),
    ...p.add.map((r) => `route add ${enc(r)}`),
  ];
}

export interface Conflict {
  /** The object that keeps the resource (created first). */
  winner: string;
  reason: "VPCConflict" | "RouteDistinguisherConflict" | "TableConflict";
  message: string;
}

/**
 * Objects of this node that cannot all be honoured: two for one VPC (one VRF per VPC), two with
 * one RD (GoBGP refuses a second VRF with the same RD), or two VPCs in one table. First come,
 * first served: the older object keeps it (creation time, then name), the newer one is reported.
 */
export function findConflicts(objects: readonly BGPVRFInstance[]): Map<string, Conflict> {
  const live = objects.filter((o) => o.metadata.deletionTimestamp === undefined && o.metadata.name !== undefined);
  const order = live
    .map((o) => ({ o, t: timeOf(o.metadata.creationTimestamp), n: o.metadata.name ?? "" }))
    .sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))
    .map((x) => x.o);
  const byVrf = new Map<string, string>();
  const byRd = new Map<string, string>();
  const byTable = new Map<number, string>();
  const out = new Map<string, Conflict>();
  for (const o of order) {
    const name = o.metadata.name ?? "";
    const vrf = vrfName(o.spec.vpc);
    const vrfOwner = byVrf.get(vrf);
    if (vrfOwner !== undefined) {
      out.set(name, { winner: vrfOwner, reason: "VPCConflict", message: `VPC ${o.spec.vpc} is already served on this node by ${vrfOwner}` });
      continue;
    }
    const rdOwner = byRd.get(o.spec.routeDistinguisher);
    if (rdOwner !== undefined) {
      out.set(name, {
        winner: rdOwner,
        reason: "RouteDistinguisherConflict",
        message: `route distinguisher ${o.spec.routeDistinguisher} is already used on this node by ${rdOwner}`,
      });
      continue;
    }
    const tableOwner = byTable.get(o.spec.table);
    if (tableOwner !== undefined) {
      out.set(name, { winner: tableOwner, reason: "TableConflict", message: `table ${o.spec.table} is already used on this node by ${tableOwner}` });
      continue;
    }
    byVrf.set(vrf, name);
    byRd.set(o.spec.routeDistinguisher, name);
    byTable.set(o.spec.table, name);
  }
  return out;
}
