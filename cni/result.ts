// CNI results rendered for the config's spec version: 1.x results as the spec defines them, and
// 0.3.x/0.4.0 ones with the per-IP "version" field those versions require.
import { compareVersions } from "./version.js";

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface ResultIp {
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: ResultIp[];
  routes?: ResultRoute[];
  dns?: Record<string, unknown>;
}

/** Renders `r` for `cniVersion`: drops mtu before 1.0.0 (unknown there) and adds ips[].version. */
export function render(r: Omit<Result, "cniVersion">, cniVersion: string): Result {
  const legacy = compareVersions(cniVersion, "1.0.0") < 0;
  const out: Result = { cniVersion };
  if (r.interfaces) out.interfaces = r.interfaces.map((i) => (legacy ? stripMtu(i) : i));
  if (r.ips) out.ips = r.ips.map((ip) => (legacy ? { version: ip.address.includes(":") ? "6" : "4", ...ip } : ip));
  if (r.routes) out.routes = r.routes;
  out.dns = r.dns ?? {};
  return out;
}

function stripMtu(i: Interface): Interface {
  const { mtu: _mtu, ...rest } = i;
  return rest;
}

/**
 * Appends our interfaces, IPs and routes to a chained prevResult (we may not be first in a
 * conflist), shifting our interface indexes past the ones already there.
 */
export function mergeInto(prev: Record<string, unknown> | undefined, ours: Omit<Result, "cniVersion">): Omit<Result, "cniVersion"> {
  if (prev === undefined) return ours;
  const prevIfs = Array.isArray(prev["interfaces"]) ? (prev["interfaces"] as Interface[]) : [];
  const prevIps = Array.isArray(prev["ips"]) ? (prev["ips"] as (ResultIp & { version?: string })[]).map(({ version: _v, ...ip }) => ip) : [];
  const prevRoutes = Array.isArray(prev["routes"]) ? (prev["routes"] as ResultRoute[]) : [];
  const shift = prevIfs.length;
  return {
    interfaces: [...prevIfs, ...(ours.interfaces ?? [])],
    ips: [...prevIps, ...(ours.ips ?? []).map((ip) => (ip.interface === undefined ? ip : { ...ip, interface: ip.interface + shift }))],
    routes: [...prevRoutes, ...(ours.routes ?? [])],
    ...(ours.dns ? { dns: ours.dns } : typeof prev["dns"] === "object" && prev["dns"] !== null ? { dns: prev["dns"] as Record<string, unknown> } : {}),
  };
}
