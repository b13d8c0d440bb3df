// Session policies: a BGPInstance peer with `vpcs` carries only those VPCs' routes, both ways; one
// with `exportRoutes: Pods` is sent only the cluster's own paths (next hop a kvrf node's). At
// the boundary of the cluster (a node or the reflector peering with a gateway PE, a ToR, a DC-GW)
// this is what keeps a misconfigured or foreign router from injecting routes with another VPC's
// route target, and keeps other VPCs' routes from leaving. kvrfd applies it to gobgpd as routing
// policy (docs/fabric.md, "Which VPCs a session carries"):
//
//  - per restricted peer, a neighbor set (the peer) and, with `vpcs`, two ext-community sets: "rt"
//    (its VPCs' route targets) and "foreign" (one regular expression matching every route target
//    that is not one of them);
//  - one global import and one global export policy whose statements, for each such peer, say:
//      from/to the peer, any foreign route target → reject (a path with an allowed RT plus another
//      is rejected too); any allowed route target → accept; anything else (no route target) →
//      reject. With an empty list only the last one. With `exportRoutes: Pods` the export accept
//      statement also requires a next hop of the cluster (every Node address and published VTEP,
//      trust.ts's test of "from outside the cluster"; without `vpcs`: that condition alone), so a
//      gateway's routes are never passed on to another gateway. gobgpd compares the next hop the
//      path had before it rewrote it for an eBGP peer (3.10 and 4.8 alike). The list changes with
//      the Nodes: the policy is replaced then, and those peers soft-reset. Other peers match no
//      statement;
//  - kvrf's policy first in gobgpd's global import and export lists, other policies kept after it.
//
// Only MatchSet ANY is used: gobgpd 3.10 evaluates INVERT on extended communities by the path's
// last extended community only (and ALL means another thing in 3.10 and 4.8), so "has no allowed
// route target" is the accept statement's complement instead. Everything kvrf writes is named
// kvrf-<id>-…, where <id> is a hash of the whole content: a change creates the new objects, points
// the assignments at them in one call per direction, then deletes the old ones (never a moment
// without a filter), and a kvrfd that restarts recognises what it wrote.
import { createHash } from "node:crypto";
import type { BGPInstanceSpec } from "./bgp-instance.js";
import { parseVpc, hex } from "../../shared/ids.js";
import { vpcRouting } from "../../shared/vpc-routing.js";
import { RouteDistinguisherError, type AdminAssigned } from "../../shared/route-distinguisher.js";
import { compareText } from "../../shared/order.js";
import type { DefinedSet, PolicyAssignment, PolicyDirection, PolicyStatement, RoutingPolicy, Speaker } from "../gobgp/speaker.js";

export const kvrfPolicyPrefix = "kvrf-";

/** BGPInstance spec.peers[].exportRoutes: every path of the peer's VPCs, or the cluster's own only. */
export type ExportRoutes = "All" | "Pods";

/** One peer's restriction. */
export interface PeerRestriction {
  address: string;
  /** The peer's VPCs and their route targets (empty: nothing passes); undefined: every VPC. */
  vpcs?: string[];
  rts?: AdminAssigned[];
  /** "Pods": only paths whose next hop is a kvrf node's are sent to the peer. */
  exportRoutes: ExportRoutes;
}

export interface SessionPolicy {
  /** Hash of the content; part of every name. */
  id: string;
  sets: DefinedSet[];
  /** Absent when no peer has `vpcs` (exportRoutes Pods limits what is sent only). */
  import?: RoutingPolicy;
  export: RoutingPolicy;
  /**
   * Per restricted peer, what it may carry: the route targets (gobgpd's text, sorted) or
   * `vpcs=*`, then with exportRoutes Pods `exportRoutes=Pods` and `nextHop=<address>` each.
   */
  peers: Map<string, string[]>;
}

/**
 * The restrictions of an instance's peers (first entry of an address, as desiredSpeaker). A VPC
 * whose route target cannot be encoded (a 4-byte routeTargetASN leaves 16 bits for the VPC) can
 * have no routes in the cluster; it is left out and named in `problems`.
 */
export function peerRestrictions(spec: BGPInstanceSpec): { restrictions: PeerRestriction[]; problems: string[] } {
  const rtAsn = spec.routeTargetASN ?? spec.asn;
  const restrictions: PeerRestriction[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const p of spec.peers ?? []) {
    if (seen.has(p.address)) continue;
    seen.add(p.address);
    const exportRoutes = p.exportRoutes ?? "All";
    if (p.vpcs === undefined) {
      if (exportRoutes !== "All") restrictions.push({ address: p.address, exportRoutes });
      continue;
    }
    const rts = new Map<string, AdminAssigned>();
    const vpcs: string[] = [];
    for (const text of p.vpcs) {
      let vpc: bigint;
      try {
        vpc = parseVpc(text, `peer ${p.address} vpcs`);
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
        continue;
      }
      try {
        const rt = vpcRouting(spec.asn, vpc, rtAsn).rt;
        rts.set(gobgpRtText(rt), rt);
        vpcs.push(hex(vpc));
      } catch (err) {
        if (!(err instanceof RouteDistinguisherError)) throw err;
        problems.push(`peer ${p.address}: VPC ${hex(vpc)} left out: ${err.message}`);
      }
    }
    restrictions.push({ address: p.address, vpcs: [...new Set(vpcs)].sort(compareText), rts: [...rts.keys()].sort(compareText).map((k) => rts.get(k) as AdminAssigned), exportRoutes });
  }
  restrictions.sort((a, b) => compareText(a.address, b.address));
  return { restrictions, problems };
}

/** A route target as gobgpd prints it, the text its ext-community regular expressions see. */
export function gobgpRtText(rt: AdminAssigned): string {
  switch (rt.type) {
    case 0:
      return `${rt.asn}:${rt.assigned}`;
    case 1:
      return `${rt.address}:${rt.assigned}`;
    case 2:
      // 4-byte ASNs in asdot ("65536" is "1.0").
      return `${Math.floor(rt.asn / 65536)}.${rt.asn % 65536}:${rt.assigned}`;
  }
}

const special = /[\\^$.|?*+()[\]{}-]/g;
const escape = (s: string): string => s.replace(special, "\\$&");

interface Trie {
  end: boolean;
  next: Map<string, Trie>;
}

/**
 * A regular expression (RE2 and JavaScript alike) matching exactly the strings that are not in
 * `listed`: the complement of a finite set, spelled from its trie. At each node a string leaves
 * the set by a character no listed string has there, by stopping where no listed string stops,
 * or by going on past a listed string's end.
 */
export function complementPattern(listed: readonly string[]): string {
  const root: Trie = { end: false, next: new Map() };
  for (const s of listed) {
    let n = root;
    for (const c of s) {
      let child = n.next.get(c);
      if (child === undefined) {
        child = { end: false, next: new Map() };
        n.next.set(c, child);
      }
      n = child;
    }
    n.end = true;
  }
  const walk = (n: Trie): string => {
    const cs = [...n.next.keys()].sort(compareText);
    const alts = [cs.length === 0 ? ".+" : `[^${cs.map(escape).join("")}].*`];
    for (const c of cs) alts.push(escape(c) + walk(n.next.get(c) as Trie));
    if (!n.end) alts.push("");
    return `(?:${alts.join("|")})`;
  };
  return `^${walk(root)}$`;
}

const allVpcs = "vpcs=*";
const podsOnly = "exportRoutes=Pods";
const nextHopTag = "nextHop=";

/**
 * The policy objects for `restrictions`; undefined when no peer is restricted. `clusterNextHops`
 * are the cluster's own next hops (Node addresses and published VTEPs, canonical) for the peers
 * with exportRoutes Pods; with none known such a peer is sent nothing.
 */
export function sessionPolicy(restrictions: readonly PeerRestriction[], clusterNextHops: readonly string[] = []): SessionPolicy | undefined {
  if (restrictions.length === 0) return undefined;
  const hops = [...new Set(clusterNextHops)].sort(compareText);
  const carried = (r: PeerRestriction): string[] => [
    ...(r.rts === undefined ? [allVpcs] : r.rts.map(gobgpRtText)),
    ...(r.exportRoutes === "Pods" ? [podsOnly, ...hops.map((h) => nextHopTag + h)] : []),
  ];
  const peers = new Map(restrictions.map((r) => [r.address, carried(r)]));
  const id = createHash("sha256")
    .update(JSON.stringify([...peers]))
    .digest("hex")
    .slice(0, 8);
  const base = `${kvrfPolicyPrefix}${id}`;
  const sets: DefinedSet[] = [];
  const statements: Record<PolicyDirection, PolicyStatement[]> = { import: [], export: [] };
  restrictions.forEach((r, i) => {
    const neighbor = `${base}-peer-${i}`;
    sets.push({ type: "neighbor", name: neighbor, list: [`${r.address}/${r.address.includes(":") ? 128 : 32}`] });
    const texts = r.rts?.map(gobgpRtText);
    if (texts !== undefined && texts.length > 0) {
      sets.push({ type: "ext-community", name: `${base}-rt-${i}`, list: texts.map((t) => `rt:^${escape(t)}$`) });
      sets.push({ type: "ext-community", name: `${base}-foreign-${i}`, list: [`rt:${complementPattern(texts)}`] });
    }
    for (const [dir, tag] of [
      ["import", "in"],
      ["export", "out"],
    ] as const) {
      // Pods limits what is sent only; without vpcs nothing limits what is received.
      const pods = dir === "export" && r.exportRoutes === "Pods";
      if (texts === undefined && !pods) continue;
      const name = `${base}-${tag}-${i}`;
      if (texts !== undefined && texts.length > 0) {
        statements[dir].push({ name: `${name}-foreign`, neighborSet: neighbor, extCommunitySet: `${base}-foreign-${i}`, action: "reject" });
      }
      // (An empty next-hop list would be no condition in gobgpd: with no next hop known, no accept.)
      if ((texts === undefined || texts.length > 0) && (!pods || hops.length > 0)) {
        statements[dir].push({
          name: `${name}-${pods ? "pods" : "vpcs"}`,
          neighborSet: neighbor,
          ...(texts !== undefined ? { extCommunitySet: `${base}-rt-${i}` } : {}),
          ...(pods ? { nextHops: hops } : {}),
          action: "accept",
        });
      }
      statements[dir].push({ name: `${name}-other`, neighborSet: neighbor, action: "reject" });
    }
  });
  return {
    id,
    sets,
    ...(statements.import.length > 0 ? { import: { name: `${base}-import`, statements: statements.import } } : {}),
    export: { name: `${base}-export`, statements: statements.export },
    peers,
  };
}

const isKvrf = (name: string): boolean => name.startsWith(kvrfPolicyPrefix);

/** The assignment with kvrf's policy (if any) first and every policy not kvrf's after it, in order. */
export function withKvrfPolicy(observed: PolicyAssignment, policy: string | undefined): PolicyAssignment {
  return { policies: [...(policy !== undefined ? [policy] : []), ...observed.policies.filter((p) => !isKvrf(p))], defaultAction: observed.defaultAction };
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export interface PeerReset {
  address: string;
  /**
   * "both": a soft reset in both directions. "hard": the session is reset, because gobgpd 3.x
   * withdraws nothing on a soft reset out (4.x withdraws what the export policy now rejects), so
   * on 3.x a peer that may carry less than before would keep what it must no longer have.
   */
  how: "both" | "hard";
}

export interface PolicyApplied {
  /** Whether anything was written. */
  changed: boolean;
  /** The peers reset because what they may carry changed. */
  reset: PeerReset[];
}

/**
 * Whether a peer may now carry less than before (undefined: no restriction): fewer VPCs, or the
 * cluster's own paths only. A next hop that goes (a Node deleted) does not count: that node's
 * paths are withdrawn with its session.
 */
function narrows(was: readonly string[] | undefined, is: readonly string[] | undefined): boolean {
  if (is === undefined) return false;
  if (was === undefined) return true;
  if (is.includes(podsOnly) && !was.includes(podsOnly)) return true;
  if (is.includes(allVpcs)) return false;
  const rts = (l: readonly string[]): string[] => l.filter((x) => !x.includes("="));
  return was.includes(allVpcs) || rts(was).some((rt) => !rts(is).includes(rt));
}

/**
 * The resets after a policy change, of the established `peers`: those whose restriction changed
 * (all of them when `previous` is unknown), hard on gobgpd 3.x where one narrows.
 */
export function peerResets(
  previous: ReadonlyMap<string, readonly string[]> | undefined,
  now: ReadonlyMap<string, readonly string[]>,
  peers: readonly string[],
  api: "v3" | "v4",
): PeerReset[] {
  const out: PeerReset[] = [];
  for (const address of peers) {
    const is = now.get(address);
    if (previous !== undefined) {
      const was = previous.get(address);
      if (was?.join() === is?.join() && (was === undefined) === (is === undefined)) continue;
    }
    const narrowing = previous === undefined ? is !== undefined : narrows(previous.get(address), is);
    out.push({ address, how: api === "v3" && narrowing ? "hard" : "both" });
  }
  return out;
}

/**
 * Makes gobgpd's kvrf-owned policy `desired` (undefined: none) and leaves every other policy,
 * set and assignment entry alone. `previous` is the peers' restrictions this kvrfd last applied in
 * this gobgpd (undefined: unknown, e.g. after kvrfd restarted); on a change the established
 * `peers` whose restriction changed are reset (peerResets). Idempotent: with gobgpd
 * already as desired it only reads the two assignments and the policy names.
 */
export async function applySessionPolicy(
  speaker: Speaker,
  desired: SessionPolicy | undefined,
  previous: ReadonlyMap<string, readonly string[]> | undefined,
  peers: readonly string[],
): Promise<PolicyApplied> {
  const observed = { import: await speaker.getGlobalPolicyAssignment("import"), export: await speaker.getGlobalPolicyAssignment("export") };
  const want = { import: withKvrfPolicy(observed.import, desired?.import?.name), export: withKvrfPolicy(observed.export, desired?.export.name) };
  const assigned = (["import", "export"] as const).every((d) => sameList(want[d].policies, observed[d].policies));
  const keep = new Set([desired?.import?.name, desired?.export.name]);
  const policyNames = new Set(await speaker.listPolicies());
  // (A kvrf policy left over, e.g. by a kvrfd that stopped half-way, is cleaned up too.)
  if (assigned && ![...policyNames].some((name) => isKvrf(name) && !keep.has(name))) return { changed: false, reset: [] };

  // New objects first (by name: the name holds the content's hash), …
  const setNames = { neighbor: new Set(await speaker.listDefinedSets("neighbor")), "ext-community": new Set(await speaker.listDefinedSets("ext-community")) };
  if (desired !== undefined) {
    for (const s of desired.sets) if (!setNames[s.type].has(s.name)) await speaker.addDefinedSet(s);
    for (const p of [desired.import, desired.export]) if (p !== undefined && !policyNames.has(p.name)) await speaker.addPolicy(p);
  }
  // … then the switch, one call per direction, …
  for (const d of ["import", "export"] as const) if (!sameList(want[d].policies, observed[d].policies)) await speaker.setGlobalPolicyAssignment(d, want[d]);
  // … then the old objects (a policy's statements go with it).
  for (const name of policyNames) if (isKvrf(name) && !keep.has(name)) await speaker.deletePolicy(name);
  const keepSets = new Set(desired?.sets.map((s) => `${s.type} ${s.name}`) ?? []);
  for (const type of ["ext-community", "neighbor"] as const) {
    for (const name of setNames[type]) if (isKvrf(name) && !keepSets.has(`${type} ${name}`)) await speaker.deleteDefinedSet(type, name);
  }

  const reset = assigned ? [] : peerResets(previous, desired?.peers ?? new Map(), peers, speaker.api);
  for (const r of reset) await speaker.resetPeer(r.address, r.how);
  return { changed: true, reset };
}
