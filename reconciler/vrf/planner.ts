// Pure planners: desired state vs observed state → the actions that close the gap, in the order
// they must run. No I/O here; appliers execute the actions and tables of cases test the plans.
import type { AdminAssigned } from "../shared/route-distinguisher.js";
import type { BGPVRFInstance } from "../shared/api-types.js";
import { timeOf } from "./bgp-instance.js";
import { canonicalIpv6, canonicalPrefix, vrfName, type DesiredVrf } from "./desired.js";
import { aaKey } from "./rib.js";
import type { LocalPath, RibPath, Vrf, VrfPath } from "./speaker.js";
import { compareText } from "../shared/order.js";

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

function samePath(a: LocalPath, b: LocalPath): boolean {
  return (
    a.prefix === b.prefix &&
    canonicalIpv6(a.nextHop) === canonicalIpv6(b.nextHop) &&
    canonicalIpv6(a.sid) === canonicalIpv6(b.sid) &&
    a.behavior === b.behavior
  );
}

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
  const have = new Map(observed.localPaths.map((p) => [canonicalPrefix(p.prefix) ?? p.prefix, p]));
  const want = new Set(desired.localPaths.map((p) => p.prefix));
  const actions: SpeakerAction[] = [];
  for (const [prefix, p] of have) {
    if (!want.has(prefix)) actions.push({ op: "delete-path", path: { ...p, prefix } });
  }
  for (const p of desired.localPaths) {
    const h = have.get(p.prefix);
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
      if (p.neighbor !== undefined) v.neighbor = p.neighbor;
      out.push(v);
    });
  }
  return out;
}

/**
 * A kernel route kvrfd owns: `PREFIX encap seg6 mode encap segs SID dev DEV table T proto 197`,
 * or (kind "throw") `throw SID/128 table T proto 197` for each remote SID of the VPC: the kernel
 * routes the encapsulated packet with the pod's interface still as input, so in policy-routing
 * mode the VPC's rule sends that lookup to the VPC table, where only a throw route lets it go on
 * to the main table (docs/dataplane.md).
 */
export interface KernelRoute {
  table: number;
  /** Canonical CIDR. */
  prefix: string;
  /** Canonical IPv6 SID ("" for a throw route). */
  sid: string;
  dev: string;
  /** Absent: an encap route. */
  kind?: "throw";
  /** When kvrfd installed it (ms); unknown for routes found in the kernel at start. */
  since?: number;
}

export const routeKey = (r: { table: number; prefix: string }): string => `${r.table} ${r.prefix}`;

/**
 * The kernel routes a VRF's RIB calls for: one per prefix whose best path was learned from a peer
 * and carries an SRv6 SID. A prefix whose best path is our own is served by the CNI's local route.
 */
export function remoteRoutes(paths: readonly VrfPath[], table: number, dev: string): { routes: KernelRoute[]; unusable: string[] } {
  const routes = new Map<string, KernelRoute>();
  const unusable: string[] = [];
  for (const p of paths) {
    if (!p.best || p.local) continue;
    const prefix = canonicalPrefix(p.prefix);
    const sid = canonicalIpv6(p.sid);
    if (prefix === undefined) {
      unusable.push(`${p.prefix}: not a prefix`);
      continue;
    }
    if (sid === undefined) {
      unusable.push(`${prefix}: best path from ${p.neighbor ?? p.nextHop} carries no SRv6 SID`);
      continue;
    }
    if (!routes.has(prefix)) routes.set(prefix, { table, prefix, sid, dev });
    const sidPrefix = `${sid}/128`;
    if (!routes.has(sidPrefix)) routes.set(sidPrefix, { table, prefix: sidPrefix, sid: "", dev: "", kind: "throw" });
  }
  return { routes: [...routes.values()].sort((a, b) => compareText(a.prefix, b.prefix)), unusable };
}

export interface RoutePlan {
  /** Routes to create (`ip route add`: never overwrites a route someone else owns). */
  add: KernelRoute[];
  /** Our routes whose SID or device changed (`ip route replace`). */
  replace: KernelRoute[];
  /** Our routes nobody asks for (`ip route del … proto 197`). */
  remove: KernelRoute[];
}

/**
 * Kernel actions for one or more tables. `observed` holds only kvrfd's (proto 197) routes.
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
    else if (h.sid !== r.sid || h.dev !== r.dev || h.kind !== r.kind) plan.replace.push(r);
  }
  for (const [k, r] of have) {
    if (want.has(k)) continue;
    if (holdBefore !== undefined && (r.since ?? 0) < holdBefore) continue;
    plan.remove.push(r);
  }
  return plan;
}

export function emptyPlan(p: RoutePlan): boolean {
  return p.add.length === 0 && p.replace.length === 0 && p.remove.length === 0;
}

/** `ip -batch` lines for a plan (the family follows from the prefix). */
export function routeCommands(p: RoutePlan, proto: number): string[] {
  const enc = (r: KernelRoute): string =>
    r.kind === "throw" ? `throw ${r.prefix} table ${r.table} proto ${proto}` : `${r.prefix} encap seg6 mode encap segs ${r.sid} dev ${r.dev} table ${r.table} proto ${proto}`;
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
