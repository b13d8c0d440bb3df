// The debug snapshot (shared/debug-snapshot.ts): gobgpd's and the kernel's state read at request
// time, both families and every kvrf route of both owners (240, the CNI plugin's pod and SID
// routes; 241, kvrfd's remote routes), so that `kubectl kvrf diff` compares what is there with
// what the objects ask for — not with kvrfd's memory of what it did.
import { routeProtocol } from "../../shared/api-types.js";
import { formatAdminAssigned } from "../../shared/route-distinguisher.js";
import { bridgeJson, ipJson, type IpOptions } from "../../shared/kernel/ip.js";
import type { Snapshot, SnapshotCheck, SnapshotPath, SnapshotRoute, SnapshotVtep, SnapshotVxlan } from "../../shared/debug-snapshot.js";
import type { RibFamily, Speaker } from "../gobgp/speaker.js";
import { parseVteps, tableNumber, type FdbJson } from "../kernel/kernel-routes.js";

export interface SnapshotSources {
  nodeName: string;
  version: string;
  ready(): SnapshotCheck[];
  kernel(): Snapshot["kernel"];
  speaker(): Speaker | undefined;
  netns?: string;
}

interface IpRouteJson {
  type?: string;
  dst?: string;
  table?: string;
  dev?: string;
  protocol?: string;
  gateway?: string;
  via?: { host?: string };
  encap?: string;
  segs?: string[];
  action?: string;
  vrftable?: number | string;
  metric?: number;
}

interface IpLinkJson {
  ifname?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string } };
}

const protocolNumbers: Record<string, number> = { [String(routeProtocol.cni)]: routeProtocol.cni, [String(routeProtocol.kvrfd)]: routeProtocol.kvrfd };

/** `ip -j route show table all proto N` entries as snapshot routes. */
export function parseRoutes(entries: readonly IpRouteJson[], protocol: number, family: 4 | 6): SnapshotRoute[] {
  const out: SnapshotRoute[] = [];
  for (const e of entries) {
    if (e.dst === undefined) continue;
    const r: SnapshotRoute = { family, table: tableNumber(e.table) ?? Number.NaN, dst: e.dst, protocol: protocolNumbers[e.protocol ?? ""] ?? protocol };
    if (e.type !== undefined && e.type !== "unicast") r.type = e.type;
    if (e.dev !== undefined) r.dev = e.dev;
    if (e.metric !== undefined) r.metric = e.metric;
    const via = e.gateway ?? e.via?.host;
    if (via !== undefined) r.via = via;
    if (e.encap !== undefined) r.encap = e.encap;
    if (e.segs !== undefined) r.segs = e.segs;
    if (e.action !== undefined) r.action = e.action;
    if (e.vrftable !== undefined) r.vrftable = Number(e.vrftable);
    out.push(r);
  }
  return out;
}

export function parseVxlanLinks(links: readonly IpLinkJson[]): SnapshotVxlan[] {
  const out: SnapshotVxlan[] = [];
  for (const l of links) {
    const d = l.linkinfo?.info_data;
    if (l.ifname === undefined || l.linkinfo?.info_kind !== "vxlan" || d?.id === undefined) continue;
    const local = d.local ?? d.local6;
    out.push({ name: l.ifname, vni: d.id, ...(local !== undefined ? { local } : {}), up: (l.flags ?? []).includes("UP") });
  }
  return out;
}

async function readLinux(src: SnapshotSources): Promise<Snapshot["linux"]> {
  const opts: IpOptions = src.netns === undefined ? {} : { netns: src.netns };
  const routes = await Promise.all(
    (["-4", "-6"] as const).flatMap((family) =>
      [routeProtocol.cni, routeProtocol.kvrfd].map(async (p) => parseRoutes(await ipJson<IpRouteJson>([family, "-d", "route", "show", "table", "all", "proto", String(p)], opts), p, family === "-4" ? 4 : 6)),
    ),
  );
  const vxlan = parseVxlanLinks(await ipJson<IpLinkJson>(["-d", "link", "show", "type", "vxlan"], opts));
  // Remote VTEPs: the permanent FDB entries with a destination on VXLAN devices (vtep.ts).
  const names = new Set(vxlan.map((v) => v.name));
  const vteps: SnapshotVtep[] = parseVteps(await bridgeJson<FdbJson>(["fdb", "show"], opts), (dev) => names.has(dev));
  return { routes: routes.flat(), vxlan, vteps };
}

const families: RibFamily[] = ["ipv4", "ipv6", "evpn"];

async function readGobgp(speaker: Speaker | undefined): Promise<Snapshot["gobgp"]> {
  if (speaker === undefined) return { connected: false, peers: [], vrfs: [], paths: [] };
  const global = await speaker.getGlobal();
  const base: Snapshot["gobgp"] = { connected: true, api: speaker.api, started: global !== undefined, peers: [], vrfs: [], paths: [] };
  if (global === undefined) return base;
  const [peers, vrfs, ribs] = await Promise.all([speaker.listPeers(), speaker.listVrfs(), Promise.all(families.map((f) => speaker.listRib(f)))]);
  const paths: SnapshotPath[] = ribs.flat().map((p) => ({
    family: p.family,
    form: p.evpn !== undefined ? "evpn" : "vpn",
    rd: formatAdminAssigned(p.rd),
    prefix: p.prefix,
    nextHop: p.nextHop,
    rts: p.rts.map(formatAdminAssigned),
    ...(p.sid !== undefined ? { sid: p.sid, behavior: p.behavior ?? 0 } : {}),
    ...(p.evpn !== undefined ? { vni: p.evpn.vni, routerMac: p.evpn.routerMac } : {}),
    best: p.best,
    local: p.local,
    ...(p.neighbor !== undefined ? { neighbor: p.neighbor } : {}),
    ...(p.problem !== undefined ? { problem: p.problem } : {}),
  }));
  return {
    ...base,
    asn: global.asn,
    routerId: global.routerId,
    peers: peers.map((p) => ({ address: p.address, asn: p.asn, state: p.state, families: [...p.families] })),
    vrfs: vrfs.map((v) => ({ name: v.name, id: v.id, rd: formatAdminAssigned(v.rd), importRts: v.importRts.map(formatAdminAssigned), exportRts: v.exportRts.map(formatAdminAssigned) })),
    paths,
  };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Reads everything now; a part that cannot be read says so in its `error` instead of failing the whole. */
export async function takeSnapshot(src: SnapshotSources): Promise<Snapshot> {
  const [gobgp, linux] = await Promise.all([
    readGobgp(src.speaker()).catch((err: unknown): Snapshot["gobgp"] => ({ connected: src.speaker() !== undefined, error: message(err), peers: [], vrfs: [], paths: [] })),
    readLinux(src).catch((err: unknown): Snapshot["linux"] => ({ error: message(err), routes: [], vxlan: [], vteps: [] })),
  ]);
  const kernel = src.kernel();
  return {
    node: src.nodeName,
    time: new Date().toISOString(),
    kvrfdVersion: src.version,
    ready: src.ready(),
    ...(kernel !== undefined ? { kernel } : {}),
    gobgp,
    linux,
  };
}
