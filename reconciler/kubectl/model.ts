// `kubectl kvrf`'s reasoning, pure: what the objects ask of a node (desired state, from the same
// functions kvrfd uses: desired.ts, trust.ts), compared with what the node's gobgpd and kernel hold
// (its debug snapshot), prefix by prefix, and a packet's path through both nodes.
import type { V1Node } from "@kubernetes/client-node";
import type { BGPVRFInstance } from "../../shared/api-types.js";
import type { Snapshot, SnapshotPath, SnapshotRoute } from "../../shared/debug-snapshot.js";
import { parseVpc } from "../../shared/ids.js";
import { canonicalPrefix, desiredVrf, encapsulationOf, vrfName } from "../vrf/desired.js";
import { checkClaims, type ClaimView } from "../vrf/trust.js";
import type { LocalPath } from "../gobgp/speaker.js";
import ipaddr from "ipaddr.js";

/** Everything read from the API server. */
export interface World {
  vrfs: BGPVRFInstance[];
  nodes: V1Node[];
  claims: ClaimView;
}

export type Where = "objects" | "gobgp" | "kernel";

/** One line of a node's diff: a VRF, a local prefix, a remote prefix, a decapsulation, or something extra. */
export interface DiffRow {
  vpc: string;
  kind: "vrf" | "local" | "remote" | "gateway" | "decap" | "extra";
  /** Prefix, VRF name, SID or VNI. */
  item: string;
  /** The node the prefix belongs to (remote and local rows); a gateway row's next hop. */
  origin: string;
  objects: string;
  gobgp: string;
  kernel: string;
  ok: boolean;
  /** The first place it breaks, and why (rows that are not ok). */
  broken?: Where;
  reason?: string;
}

/** A VPC as a node's objects ask for it, or why it must not be programmed. */
export interface NodeVpc {
  obj: BGPVRFInstance;
  vpc: string;
  table: number;
  vrf: string;
  encap: "srv6" | "vxlan";
  local: LocalPath[];
  /** Set when kvrfd must not program the VPC (invalid spec, claim held by another VPC). */
  refused?: string;
}

const live = (o: BGPVRFInstance): boolean => o.metadata.deletionTimestamp === undefined;

export function vpcKey(text: string): string {
  return parseVpc(text, "vpc").toString(16);
}

/** The node's VPCs as the objects ask for them. */
export function nodeVpcs(world: World, node: string): NodeVpc[] {
  return world.vrfs
    .filter((o) => o.spec.nodeName === node && live(o))
    .map((obj) => {
      const base = { obj, vpc: vpcKey(obj.spec.vpc), table: obj.spec.table, vrf: vrfName(vpcKey(obj.spec.vpc)), encap: encapsulationOf(obj) };
      try {
        const d = desiredVrf(obj, "::");
        checkClaims(obj.spec, world.claims);
        return { ...base, local: d.localPaths };
      } catch (err) {
        return { ...base, local: [], refused: err instanceof Error ? err.message : String(err) };
      }
    })
    .sort((a, b) => (a.vpc < b.vpc ? -1 : a.vpc > b.vpc ? 1 : 0));
}

/** Kernel `dst` ("10.1.0.2", "default", "fd00::/64") as a canonical prefix. */
export function routePrefix(dst: string, family?: 4 | 6): string {
  // iproute2 prints 0.0.0.0/0 and ::/0 (a gateway's default route) as "default".
  if (dst === "default") return family === undefined ? "default" : family === 4 ? "0.0.0.0/0" : "::/0";
  const withLen = dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`;
  return canonicalPrefix(withLen) ?? withLen;
}

/** A snapshot route's prefix in its family ("default" is 0.0.0.0/0 or ::/0). */
export function snapshotPrefix(r: Pick<SnapshotRoute, "dst" | "family">): string {
  return routePrefix(r.dst, r.family);
}

const sameAddress = (a: string | undefined, b: string | undefined): boolean => {
  if (a === undefined || b === undefined || !ipaddr.isValid(a) || !ipaddr.isValid(b)) return false;
  const norm = (x: string): string => {
    const p = ipaddr.parse(x);
    return (p.kind() === "ipv6" && (p as ipaddr.IPv6).isIPv4MappedAddress() ? (p as ipaddr.IPv6).toIPv4Address() : p).toNormalizedString();
  };
  return norm(a) === norm(b);
};

function describePath(p: SnapshotPath): string {
  const via = p.local ? "originated" : `from ${p.neighbor ?? p.nextHop}`;
  return p.form === "evpn" ? `${via}, VNI ${p.vni ?? "?"} to ${p.nextHop}` : `${via}, SID ${p.sid ?? "none"}`;
}

function describeRoute(r: SnapshotRoute): string {
  if (r.type !== undefined) return r.type;
  if (r.encap === "seg6") return `seg6 ${(r.segs ?? []).join(",")}`;
  if (r.encap === "seg6local") return `seg6local ${r.action ?? ""}${r.vrftable !== undefined ? ` vrftable ${r.vrftable}` : ""}`;
  return `${r.via !== undefined ? `via ${r.via} ` : ""}dev ${r.dev ?? "?"}`;
}

/** Does gobgpd's path carry what the local path asks (same form, SID or VNI)? */
function pathMatches(p: SnapshotPath, want: LocalPath): boolean {
  if (want.encap === "srv6") return p.form === "vpn" && sameAddress(p.sid, want.sid);
  return p.form === "evpn" && p.vni === want.vni;
}

/** The node's expected remote prefixes of a VPC: every other live node's local paths of it. */
export function remoteExpected(world: World, node: string, vpc: NodeVpc): { origin: string; obj: BGPVRFInstance; path: LocalPath }[] {
  const out: { origin: string; obj: BGPVRFInstance; path: LocalPath }[] = [];
  for (const o of world.vrfs) {
    if (o.spec.nodeName === node || !live(o)) continue;
    let key: string;
    try {
      key = vpcKey(o.spec.vpc);
    } catch {
      continue;
    }
    if (key !== vpc.vpc) continue;
    try {
      checkClaims(o.spec, world.claims);
      for (const path of desiredVrf(o, "::").localPaths) out.push({ origin: o.spec.nodeName, obj: o, path });
    } catch {
      // A VPC its own node refuses is advertised by nobody.
    }
  }
  return out.sort((a, b) => (a.path.prefix < b.path.prefix ? -1 : a.path.prefix > b.path.prefix ? 1 : 0));
}

const mark = (ok: boolean, text: string): string => `${ok ? "ok" : "MISSING"} ${text}`.trim();

/**
 * The gobgpd path that explains a kvrfd route no object asks for as a route from outside the
 * cluster: best, usable, of the VPC's import route target, the same prefix and SID (or VTEP), from
 * a next hop that is no Node's address.
 */
export function gatewayPath(world: World, snap: Snapshot, v: NodeVpc, r: SnapshotRoute): SnapshotPath | undefined {
  if (r.protocol !== 241 || r.table !== v.table || r.type !== undefined) return undefined;
  const prefix = snapshotPrefix(r);
  const nodeAddresses = world.nodes.flatMap((n) => (n.status?.addresses ?? []).map((a) => a.address));
  return snap.gobgp.paths.find(
    (p) =>
      p.best &&
      !p.local &&
      p.problem === undefined &&
      p.prefix === prefix &&
      p.rts.some((rt) => v.obj.spec.importRouteTargets.includes(rt)) &&
      !nodeAddresses.some((a) => sameAddress(a, p.nextHop)) &&
      (p.form === "vpn" ? r.encap === "seg6" && sameAddress(r.segs?.[0], p.sid) : sameAddress(r.via, p.nextHop)),
  );
}

/**
 * The node's diff: for each VPC the objects place on it, the VRF, every local prefix (advertised by
 * gobgpd, routed to the pod by the CNI plugin's kernel route), the decapsulation (SRv6 SID route or
 * VXLAN device), every remote prefix (imported by gobgpd, installed by kvrfd) — and whatever gobgpd
 * or the kernel hold that no object explains.
 */
export function diffNode(world: World, node: string, snap: Snapshot): DiffRow[] {
  const rows: DiffRow[] = [];
  const vpcs = nodeVpcs(world, node);
  const routes = snap.linux.routes;
  const usedRoutes = new Set<SnapshotRoute>();
  const usedPaths = new Set<SnapshotPath>();
  const gobgpDown = !snap.gobgp.connected ? "gobgpd not reachable from kvrfd" : snap.gobgp.started === false ? "BGP not started in gobgpd" : snap.gobgp.error;
  for (const v of vpcs) {
    const spec = v.obj.spec;
    if (v.refused !== undefined) {
      const vrf = snap.gobgp.vrfs.find((x) => x.name === v.vrf);
      const kernel = routes.filter((r) => r.table === v.table && r.protocol === 241);
      kernel.forEach((r) => usedRoutes.add(r));
      const clean = vrf === undefined && kernel.length === 0;
      rows.push({
        vpc: v.vpc,
        kind: "vrf",
        item: v.vrf,
        origin: node,
        objects: `REFUSED ${v.refused}`,
        gobgp: vrf === undefined ? "absent (as it should be)" : "PRESENT although refused",
        kernel: kernel.length === 0 ? "no kvrfd routes" : `${kernel.length} kvrfd routes although refused`,
        ok: clean,
        ...(clean ? {} : { broken: "gobgp" as const }),
        reason: clean ? `VPC ${v.vpc} is not programmed on ${node}: ${v.refused}` : `VPC ${v.vpc} must not be programmed on ${node} (${v.refused}), yet ${vrf !== undefined ? `gobgpd has VRF ${v.vrf}` : ""}${vrf !== undefined && kernel.length > 0 ? " and " : ""}${kernel.length > 0 ? `table ${v.table} has ${kernel.length} kvrfd routes` : ""}`,
      });
      continue;
    }
    // The VRF itself.
    const vrf = snap.gobgp.vrfs.find((x) => x.name === v.vrf);
    const vrfOk = vrf !== undefined && vrf.rd === spec.routeDistinguisher && vrf.id === spec.table;
    rows.push({
      vpc: v.vpc,
      kind: "vrf",
      item: v.vrf,
      origin: node,
      objects: `RD ${spec.routeDistinguisher} RT ${spec.importRouteTargets.join(",")} table ${spec.table}${spec.vni !== undefined ? ` VNI ${spec.vni}` : ""}`,
      gobgp: gobgpDown ?? (vrf === undefined ? "MISSING VRF" : vrfOk ? `ok RD ${vrf.rd} id ${vrf.id}` : `DIFFERS RD ${vrf.rd} id ${vrf.id}`),
      kernel: "-",
      ok: gobgpDown === undefined && vrfOk,
      ...(gobgpDown !== undefined || !vrfOk
        ? { broken: "gobgp" as const, reason: gobgpDown ?? (vrf === undefined ? `VRF ${v.vrf} is missing from ${node}'s gobgpd: the VPC's prefixes are neither advertised nor imported there` : `VRF ${v.vrf} in ${node}'s gobgpd has RD ${vrf.rd}, id ${vrf.id}; the object asks ${spec.routeDistinguisher}, ${spec.table}`) }
        : {}),
    });
    // Decapsulation: how traffic for this VPC enters the node.
    if (v.encap === "vxlan") {
      const dev = snap.linux.vxlan.find((x) => x.vni === spec.vni);
      const ok = dev !== undefined && dev.up;
      rows.push({
        vpc: v.vpc,
        kind: "decap",
        item: `VNI ${spec.vni ?? "?"}`,
        origin: node,
        objects: `VTEP ${spec.vtep ?? "?"}`,
        gobgp: "-",
        kernel: dev === undefined ? "MISSING VXLAN device" : `${dev.up ? "ok" : "DOWN"} ${dev.name}${dev.local !== undefined ? ` local ${dev.local}` : ""}`,
        ok,
        ...(ok ? {} : { broken: "kernel" as const, reason: dev === undefined ? `no VXLAN device with VNI ${spec.vni ?? "?"} on ${node}: packets for VPC ${v.vpc} arriving there are dropped` : `VXLAN device ${dev.name} on ${node} is down` }),
      });
    }
    for (const lp of v.local) {
      const path = snap.gobgp.paths.find((p) => p.local && p.rd === spec.routeDistinguisher && p.prefix === lp.prefix && pathMatches(p, lp));
      if (path !== undefined) usedPaths.add(path);
      const route = routes.find((r) => r.protocol === 240 && r.table === spec.table && snapshotPrefix(r) === lp.prefix);
      const gobgpText = gobgpDown ?? (path === undefined ? "MISSING not advertised" : mark(true, describePath(path)));
      const kernelText = route === undefined ? "MISSING no route to the pod" : mark(true, describeRoute(route));
      const broken: Where | undefined = gobgpDown !== undefined || path === undefined ? "gobgp" : route === undefined ? "kernel" : undefined;
      rows.push({
        vpc: v.vpc,
        kind: "local",
        item: lp.prefix,
        origin: node,
        objects: lp.encap === "srv6" ? `SID ${lp.sid}` : `VNI ${lp.vni}`,
        gobgp: gobgpText,
        kernel: kernelText,
        ok: broken === undefined,
        ...(broken === "gobgp" ? { broken, reason: gobgpDown ?? `${node}'s gobgpd does not advertise ${lp.prefix} with RD ${spec.routeDistinguisher}` } : {}),
        ...(broken === "kernel" ? { broken, reason: `${node}'s table ${spec.table} has no route (proto 240) to its pod ${lp.prefix}` } : {}),
      });
      if (lp.encap === "srv6") {
        const sidRoute = routes.find((r) => r.protocol === 240 && r.encap === "seg6local" && sameAddress(snapshotPrefix(r).split("/")[0], lp.sid));
        if (!rows.some((r) => r.kind === "decap" && r.item === `SID ${lp.sid}`)) {
          rows.push({
            vpc: v.vpc,
            kind: "decap",
            item: `SID ${lp.sid}`,
            origin: node,
            objects: `behaviour ${lp.behavior}`,
            gobgp: "-",
            kernel: sidRoute === undefined ? "MISSING no seg6local route" : mark(true, describeRoute(sidRoute)),
            ok: sidRoute !== undefined,
            ...(sidRoute === undefined ? { broken: "kernel" as const, reason: `${node} has no seg6local route for SID ${lp.sid}: packets sent to it are dropped` } : {}),
          });
        }
      }
    }
    // Remote prefixes: what the node imports and kvrfd installs.
    for (const want of remoteExpected(world, node, v)) {
      const p = want.path;
      const path = snap.gobgp.paths.find(
        (x) => !x.local && x.prefix === p.prefix && pathMatches(x, p) && (p.encap === "srv6" || sameAddress(x.nextHop, want.obj.spec.vtep)) && x.rts.some((rt) => spec.importRouteTargets.includes(rt)),
      );
      if (path !== undefined) usedPaths.add(path);
      const kernelHas = routes.filter((r) => r.protocol === 241 && r.table === spec.table && snapshotPrefix(r) === p.prefix);
      kernelHas.forEach((r) => usedRoutes.add(r));
      const right = kernelHas.find((r) => (p.encap === "srv6" ? r.encap === "seg6" && sameAddress(r.segs?.[0], p.sid) : sameAddress(r.via, want.obj.spec.vtep)));
      const expectText = p.encap === "srv6" ? `SID ${p.sid}` : `VNI ${p.vni} VTEP ${want.obj.spec.vtep ?? "?"}`;
      let broken: Where | undefined;
      let reason: string | undefined;
      if (gobgpDown !== undefined) {
        broken = "gobgp";
        reason = gobgpDown;
      } else if (path === undefined) {
        broken = "gobgp";
        reason = `${node}'s gobgpd has no path for ${p.prefix} of ${want.origin} (${expectText}): not advertised by ${want.origin}, or not received (check ${want.origin}'s diff and the BGP sessions)`;
      } else if (right === undefined) {
        broken = "kernel";
        reason =
          kernelHas.length === 0
            ? `${node}'s table ${spec.table} has no kvrfd route (proto 241) for ${p.prefix}, which gobgpd imported (${describePath(path)})`
            : `${node}'s table ${spec.table} routes ${p.prefix} as ${describeRoute(kernelHas[0] as SnapshotRoute)}, not to ${expectText}`;
      }
      rows.push({
        vpc: v.vpc,
        kind: "remote",
        item: p.prefix,
        origin: want.origin,
        objects: expectText,
        gobgp: gobgpDown ?? (path === undefined ? "MISSING not imported" : mark(true, describePath(path))),
        kernel: right !== undefined ? mark(true, describeRoute(right)) : kernelHas.length > 0 ? `WRONG ${describeRoute(kernelHas[0] as SnapshotRoute)}` : "MISSING",
        ok: broken === undefined,
        ...(broken !== undefined ? { broken, reason: reason as string } : {}),
      });
    }
  }
  // Routes from outside the cluster (a gateway PE's defaults and prefixes, docs/fabric.md).
  for (const v of vpcs) {
    if (v.refused !== undefined) continue;
    for (const r of routes) {
      if (r.protocol !== 241 || r.table !== v.table || r.type !== undefined || usedRoutes.has(r)) continue;
      const prefix = snapshotPrefix(r);
      const path = gatewayPath(world, snap, v, r);
      if (path === undefined) continue;
      usedRoutes.add(r);
      usedPaths.add(path);
      rows.push({
        vpc: v.vpc,
        kind: "gateway",
        item: prefix,
        origin: path.nextHop,
        objects: "from outside the cluster",
        gobgp: mark(true, describePath(path)),
        kernel: mark(true, describeRoute(r)),
        ok: true,
      });
    }
  }
  // kvrfd's throw routes for the remote SIDs its routes encapsulate to (planner.ts remoteRoutes:
  // a packet addressed to a SID is not looked up in the VPC's table), explained by those routes.
  const sidsInUse = [...usedRoutes].filter((r) => r.protocol === 241 && r.encap === "seg6").map((r) => `${r.table} ${r.segs?.[0] ?? ""}`);
  for (const r of routes) {
    if (r.protocol !== 241 || r.type !== "throw" || usedRoutes.has(r)) continue;
    const address = snapshotPrefix(r).split("/")[0];
    if (sidsInUse.some((k) => k.startsWith(`${r.table} `) && sameAddress(k.slice(k.indexOf(" ") + 1), address))) usedRoutes.add(r);
  }
  // What no object explains.
  const tables = new Map(vpcs.map((v) => [v.table, v]));
  for (const r of routes) {
    if (r.protocol !== 241 || usedRoutes.has(r)) continue;
    const v = tables.get(r.table);
    rows.push({
      vpc: v?.vpc ?? "?",
      kind: "extra",
      item: snapshotPrefix(r),
      origin: "?",
      objects: "none",
      gobgp: "-",
      kernel: `EXTRA table ${r.table} ${describeRoute(r)}`,
      ok: false,
      broken: "kernel",
      reason: `kvrfd route in ${node}'s table ${r.table} that no object asks for${v === undefined ? " (no VPC of this node uses the table)" : ""}`,
    });
  }
  for (const vrf of snap.gobgp.vrfs) {
    if (!/^vpc-[0-9a-f]+$/.test(vrf.name) || vpcs.some((v) => v.vrf === vrf.name && v.refused === undefined)) continue;
    rows.push({ vpc: vrf.name.slice(4), kind: "extra", item: vrf.name, origin: node, objects: "none", gobgp: `EXTRA VRF RD ${vrf.rd}`, kernel: "-", ok: false, broken: "gobgp", reason: `VRF ${vrf.name} in ${node}'s gobgpd has no object on this node` });
  }
  for (const p of snap.gobgp.paths) {
    if (!p.local || usedPaths.has(p)) continue;
    rows.push({
      vpc: "?",
      kind: "extra",
      item: p.prefix,
      origin: node,
      objects: "none",
      gobgp: `EXTRA advertised RD ${p.rd} ${describePath(p)}`,
      kernel: "-",
      ok: false,
      broken: "gobgp",
      reason: `${node}'s gobgpd advertises ${p.prefix} (RD ${p.rd}) that no object of this node asks for`,
    });
  }
  return rows;
}

/** A pod's attachment in a VPC: where its address lives. */
export interface Endpoint {
  node: string;
  vpc: string;
  obj: BGPVRFInstance;
  /** The attachment's prefix holding the address (/32 or /128). */
  prefix: string;
  address: string;
  containerID: string;
}

const prefixContains = (prefix: string, address: string): boolean => {
  try {
    const [net, len] = ipaddr.parseCIDR(prefix);
    const a = ipaddr.parse(address);
    return a.kind() === net.kind() && a.match(net, len);
  } catch {
    return false;
  }
};

/** Every live attachment whose prefixes hold `address`, optionally in one VPC only. */
export function findEndpoints(world: World, address: string, vpc?: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const o of world.vrfs) {
    if (!live(o)) continue;
    let key: string;
    try {
      key = vpcKey(o.spec.vpc);
    } catch {
      continue;
    }
    if (vpc !== undefined && key !== vpcKey(vpc)) continue;
    for (const a of o.spec.attachments ?? []) {
      const prefix = a.prefixes.find((p) => prefixContains(p, address));
      if (prefix !== undefined) out.push({ node: o.spec.nodeName, vpc: key, obj: o, prefix: canonicalPrefix(prefix) ?? prefix, address, containerID: a.containerID });
    }
  }
  return out;
}

/** The endpoint of a container (ID or a unique prefix of it), for lab pods that have no Pod object. */
export function findContainer(world: World, containerID: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const o of world.vrfs) {
    if (!live(o)) continue;
    for (const a of o.spec.attachments ?? []) {
      const first = a.prefixes[0];
      if (!a.containerID.startsWith(containerID) || first === undefined) continue;
      const prefix = canonicalPrefix(first) ?? first;
      out.push({ node: o.spec.nodeName, vpc: vpcKey(o.spec.vpc), obj: o, prefix, address: prefix.split("/")[0] as string, containerID: a.containerID });
    }
  }
  return out;
}

export interface Hop {
  node: string;
  step: "source" | "lookup" | "encap" | "decap" | "deliver";
  ok: boolean;
  detail: string;
}

/** Longest-prefix match over a table's routes of either owner (unreachable defaults included). */
export function lookup(routes: readonly SnapshotRoute[], table: number, address: string): SnapshotRoute | undefined {
  let best: { r: SnapshotRoute; len: number; metric: number } | undefined;
  const a = ipaddr.isValid(address) ? ipaddr.parse(address) : undefined;
  if (a === undefined) return undefined;
  for (const r of routes) {
    if (r.table !== table) continue;
    let net: ipaddr.IPv4 | ipaddr.IPv6;
    let len: number;
    if (r.family !== (a.kind() === "ipv4" ? 4 : 6)) continue;
    if (r.dst === "default") {
      net = a.kind() === "ipv4" ? ipaddr.parse("0.0.0.0") : ipaddr.parse("::");
      len = 0;
    } else {
      try {
        [net, len] = ipaddr.parseCIDR(snapshotPrefix(r));
      } catch {
        continue;
      }
    }
    if (net.kind() !== a.kind() || !a.match(net, len)) continue;
    // Of routes of one prefix the kernel uses the lowest metric (a gateway's default beside the
    // CNI plugin's unreachable one). `ip -j` omits an IPv4 metric of 0; IPv6 routes default to 1024.
    const metric = r.metric ?? (r.family === 4 ? 0 : 1024);
    if (best === undefined || len > best.len || (len === best.len && metric < best.metric)) best = { r, len, metric };
  }
  return best?.r;
}

/**
 * The path a packet from `src` to `dst` (an address; `dstEndpoint` when it is a pod of the VPC)
 * takes: the source node's VPC table, the encapsulation, the destination node's decapsulation and
 * its route to the pod. Stops at the first hop that is missing, with the reason.
 */
export function trace(world: World, snaps: ReadonlyMap<string, Snapshot | Error>, src: Endpoint, dst: string, dstEndpoint: Endpoint | undefined): Hop[] {
  const hops: Hop[] = [];
  const snapOf = (node: string): Snapshot | string => {
    const s = snaps.get(node);
    if (s === undefined) return `no debug snapshot of ${node}`;
    return s instanceof Error ? `cannot read ${node}'s debug snapshot: ${s.message}` : s;
  };
  const v = nodeVpcs(world, src.node).find((x) => x.vpc === src.vpc);
  if (v === undefined) return [{ node: src.node, step: "source", ok: false, detail: `no BGPVRFInstance of VPC ${src.vpc} on ${src.node}` }];
  if (v.refused !== undefined) return [{ node: src.node, step: "source", ok: false, detail: `VPC ${src.vpc} is not programmed on ${src.node}: ${v.refused}` }];
  hops.push({ node: src.node, step: "source", ok: true, detail: `${src.address} (container ${src.containerID.slice(0, 12)}) in VPC ${src.vpc}, table ${v.table}, ${v.encap}` });
  const s = snapOf(src.node);
  if (typeof s === "string") return [...hops, { node: src.node, step: "lookup", ok: false, detail: s }];
  const route = lookup(s.linux.routes, v.table, dst);
  const reasonFor = (node: string, snap: Snapshot, prefix: string): string | undefined =>
    diffNode(world, node, snap).find((r) => !r.ok && r.vpc === src.vpc && r.item === prefix)?.reason;
  if (route === undefined || route.type === "unreachable" || route.type === "blackhole" || route.type === "prohibit") {
    const why = dstEndpoint === undefined ? `${dst} belongs to no pod of VPC ${src.vpc}` : (reasonFor(src.node, s, dstEndpoint.prefix) ?? `no route for ${dstEndpoint.prefix}`);
    return [...hops, { node: src.node, step: "lookup", ok: false, detail: `table ${v.table} has ${route === undefined ? "no route" : `only the ${route.type} default`} for ${dst}: ${why}` }];
  }
  hops.push({ node: src.node, step: "lookup", ok: true, detail: `table ${v.table}: ${snapshotPrefix(route)} ${describeRoute(route)} (proto ${route.protocol})` });
  // A local pod: delivered on this node.
  if (route.protocol === 240 && route.encap === undefined) {
    const wrong = dstEndpoint !== undefined && dstEndpoint.node !== src.node;
    hops.push({
      node: src.node,
      step: "deliver",
      ok: !wrong,
      detail: wrong ? `delivered to a local interface, but ${dst} is a pod on ${dstEndpoint.node}` : `to the pod on ${route.dev ?? "?"}`,
    });
    return hops;
  }
  // Remote: which node does the route send it to?
  let target: string | undefined;
  let sid: string | undefined;
  if (route.encap === "seg6") {
    sid = route.segs?.[0];
    target = world.vrfs.find((o) => live(o) && (o.spec.attachments ?? []).some((a) => sameAddress(a.sid, sid) || sameAddress(a.sid6, sid)))?.spec.nodeName;
  } else if (route.via !== undefined) {
    target = world.vrfs.find((o) => live(o) && sameAddress(o.spec.vtep, route.via))?.spec.nodeName;
  }
  if (target === undefined && dstEndpoint === undefined) {
    // Not a pod of the VPC: a route from outside the cluster takes it to a gateway, where the
    // trace ends (nothing beyond is kvrf's).
    const gw = gatewayPath(world, s, v, route);
    if (gw !== undefined) {
      hops.push({ node: src.node, step: "encap", ok: true, detail: `${route.encap === "seg6" ? `SRv6 to SID ${sid ?? "?"}` : `VXLAN VNI ${v.obj.spec.vni ?? "?"} to VTEP ${route.via ?? "?"}`}: gateway ${gw.nextHop} outside the cluster (its route ${gw.prefix}, RD ${gw.rd})` });
      return hops;
    }
  }
  const expectedNode = dstEndpoint?.node;
  const misrouted = expectedNode !== undefined && target !== expectedNode;
  hops.push({
    node: src.node,
    step: "encap",
    ok: target !== undefined && !misrouted,
    detail:
      target === undefined
        ? `${route.encap === "seg6" ? `SID ${sid ?? "?"}` : `VTEP ${route.via ?? "?"}`} belongs to no node's attachment of any VPC`
        : misrouted
          ? `sent to ${target}, but ${dst} is a pod on ${expectedNode}`
          : `${route.encap === "seg6" ? `SRv6 to SID ${sid ?? "?"}` : `VXLAN VNI ${v.obj.spec.vni ?? "?"} to VTEP ${route.via ?? "?"}`} on ${target}`,
  });
  if (target === undefined || misrouted) return hops;
  const d = snapOf(target);
  if (typeof d === "string") return [...hops, { node: target, step: "decap", ok: false, detail: d }];
  if (route.encap === "seg6") {
    const sidRoute = d.linux.routes.find((r) => r.encap === "seg6local" && sameAddress(snapshotPrefix(r).split("/")[0], sid));
    hops.push({
      node: target,
      step: "decap",
      ok: sidRoute !== undefined,
      detail: sidRoute === undefined ? `no seg6local route for SID ${sid ?? "?"} on ${target}: the packet is dropped there` : `SID ${sid ?? "?"}: ${describeRoute(sidRoute)}`,
    });
    if (sidRoute === undefined) return hops;
    // End.DX4/DX6 hand the packet straight to the pod's interface.
    if (sidRoute.action === "End.DX4" || sidRoute.action === "End.DX6") {
      hops.push({ node: target, step: "deliver", ok: true, detail: `to the pod on ${sidRoute.dev ?? "?"}` });
      return hops;
    }
  } else {
    const dev = d.linux.vxlan.find((x) => x.vni === v.obj.spec.vni);
    hops.push({
      node: target,
      step: "decap",
      ok: dev !== undefined && dev.up,
      detail: dev === undefined ? `no VXLAN device with VNI ${v.obj.spec.vni ?? "?"} on ${target}: the packet is dropped there` : `VNI ${dev.vni} on ${dev.name}${dev.up ? "" : " (DOWN)"}`,
    });
    if (dev === undefined || !dev.up) return hops;
  }
  const dv = nodeVpcs(world, target).find((x) => x.vpc === src.vpc);
  const table = dv?.table ?? v.table;
  const last = lookup(d.linux.routes, table, dst);
  const delivered = last !== undefined && last.protocol === 240 && last.encap === undefined && last.type === undefined;
  hops.push({
    node: target,
    step: "deliver",
    ok: delivered,
    detail: delivered ? `table ${table}: ${snapshotPrefix(last)} dev ${last.dev ?? "?"}` : `table ${table} on ${target} has no route to a local pod for ${dst}${last !== undefined ? ` (only ${describeRoute(last)})` : ""}`,
  });
  return hops;
}
