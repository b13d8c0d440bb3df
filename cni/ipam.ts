// Delegation to a standard IPAM plugin (host-local, static, dhcp, …) found in CNI_PATH: the same
// verb, environment and network config, as the reference plugins' invoke.DelegateAdd does.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import path from "node:path";
import ipaddr from "ipaddr.js";
import { CniError, ErrorCode } from "./error.js";

export interface IpamIp {
  /** CIDR: the address with the subnet's prefix length, e.g. 10.1.0.5/24. */
  address: string;
  gateway?: string;
  family: 4 | 6;
}

export interface IpamRoute {
  dst: string;
  gw?: string;
}

export interface IpamResult {
  ips: IpamIp[];
  routes: IpamRoute[];
  dns?: Record<string, unknown>;
}

export function findPlugin(type: string, cniPath: readonly string[]): string {
  if (type.includes("/")) throw new CniError(ErrorCode.InvalidConfig, `ipam.type: "${type}" must be a plugin name, not a path`);
  for (const dir of cniPath) {
    const candidate = path.join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next directory
    }
  }
  throw new CniError(ErrorCode.InvalidConfig, `ipam.type: plugin "${type}" not found in CNI_PATH (${cniPath.join(":")})`);
}

/** Runs the IPAM plugin for `verb`; resolves with its stdout (empty for DEL/CHECK/STATUS/GC). */
export function invokeIpam(
  type: string,
  verb: "ADD" | "DEL" | "CHECK" | "STATUS" | "GC",
  cniPath: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  stdin: Buffer,
): Promise<string> {
  const plugin = findPlugin(type, cniPath);
  return new Promise((resolve, reject) => {
    const child = execFile(
      plugin,
      [],
      { env: { ...env, CNI_COMMAND: verb }, timeout: 60_000, maxBuffer: 16 << 20, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        let code: number = ErrorCode.Ipam;
        let msg = stderr.trim() || err.message;
        let details = "";
        try {
          const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
          if (typeof e.msg === "string") msg = e.msg;
          if (typeof e.details === "string") details = e.details;
          // Spec-level codes (config, env, try-again, not-available) keep their meaning upstream.
          if (typeof e.code === "number" && [4, 7, 11, 50, 51].includes(e.code)) code = e.code;
        } catch {
          // not an error JSON: keep stderr
        }
        reject(new CniError(code as ErrorCode, `IPAM plugin ${type} ${verb}: ${msg}`, details, { cause: err }));
      },
    );
    child.stdin?.end(stdin);
  });
}

/** Reads an IPAM result of any spec version (0.3.x/0.4.0 have ips[].version, 1.x do not). */
export function parseIpamResult(stdout: string, type: string): IpamResult {
  let r: { ips?: { address?: string; gateway?: string }[]; routes?: IpamRoute[]; dns?: Record<string, unknown> };
  try {
    r = JSON.parse(stdout) as typeof r;
  } catch {
    throw new CniError(ErrorCode.Ipam, `IPAM plugin ${type} printed a result that is not JSON: ${stdout.slice(0, 200)}`);
  }
  const ips = (r.ips ?? []).map((ip): IpamIp => {
    if (typeof ip.address !== "string") throw new CniError(ErrorCode.Ipam, `IPAM plugin ${type}: an IP has no address`);
    const [addr] = ipaddr.parseCIDR(ip.address);
    return { address: ip.address, ...(ip.gateway ? { gateway: ip.gateway } : {}), family: addr.kind() === "ipv4" ? 4 : 6 };
  });
  if (ips.length === 0) throw new CniError(ErrorCode.Ipam, `IPAM plugin ${type} returned no IP address`);
  return { ips, routes: r.routes ?? [], ...(r.dns ? { dns: r.dns } : {}) };
}
