// Delegation to a standard IPAM plugin (host-local, static, dhcp, …) found in CNI_PATH: the same
// verb, environment and network config, as the reference plugins' invoke.DelegateAdd does.
import { execFile } from "node:child_process";
import { accessSync, constants, realpathSync, statSync } from "node:fs";
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

/**
 * The IPAM plugin's executable: the first regular, executable file named `type` in CNI_PATH.
 * Code 7 when there is none: the network config names an IPAM plugin this node does not have
 * (an installation or config mistake that no retry mends, and not a malformed CNI_PATH, code 4).
 */
export function findPlugin(type: string, cniPath: readonly string[]): string {
  if (type.includes("/") || type === "." || type === "..") {
    throw new CniError(ErrorCode.InvalidConfig, `ipam.type: ${JSON.stringify(type)} must be a plugin name, not a path`);
  }
  for (const dir of cniPath) {
    const candidate = path.join(dir, type);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
    } catch {
      continue; // try the next directory
    }
    // Itself as its own IPAM would run itself again with the same config, without end.
    if (sameFile(candidate, process.execPath)) {
      throw new CniError(ErrorCode.InvalidConfig, `ipam.type: ${JSON.stringify(type)} is this plugin itself; name an IPAM plugin such as host-local`);
    }
    return candidate;
  }
  throw new CniError(
    ErrorCode.InvalidConfig,
    `ipam.type: IPAM plugin ${JSON.stringify(type)} not found in CNI_PATH (${cniPath.join(":") || "empty"}): install it there or name another one`,
  );
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/**
 * The IPAM plugin failed. `answered`: it said so itself with CNI error JSON (so it holds nothing
 * for this attachment, per the spec); otherwise it was killed, timed out or printed something else,
 * and may hold a lease. `stderr` is for the log only (it may hold a stack trace).
 */
export class IpamError extends CniError {
  constructor(
    code: ErrorCode,
    message: string,
    details: string,
    readonly answered: boolean,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(code, message, details, options);
  }
}

/** A line of a child's stderr fit for a message: the first that is not part of a stack trace. */
function firstLine(text: string): string {
  const line = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !/^at\s|^goroutine\s|^\S+\.go:\d+/.test(l));
  return line === undefined ? "" : line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * Runs the IPAM plugin for `verb`; resolves with its stdout (empty for DEL/CHECK/STATUS/GC).
 * Rejects (never throws) with CniError: code 7 when the plugin is missing, IpamError otherwise.
 */
export async function invokeIpam(
  type: string,
  verb: "ADD" | "DEL" | "CHECK" | "STATUS" | "GC",
  cniPath: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  stdin: Buffer,
): Promise<string> {
  const plugin = findPlugin(type, cniPath);
  const timeoutMs = 60_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      plugin,
      [],
      { env: { ...env, CNI_COMMAND: verb }, timeout: timeoutMs, maxBuffer: 16 << 20, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const how =
          err.killed && err.signal === "SIGTERM"
            ? `no answer within ${timeoutMs / 1000} s`
            : err.signal
              ? `killed by ${err.signal}`
              : typeof err.code === "number"
                ? `exit status ${err.code}`
                : String(err.code ?? "failed");
        let code: number = ErrorCode.Ipam;
        let msg = [how, firstLine(stderr)].filter((s) => s !== "").join(": ");
        let details = "";
        let answered = false;
        try {
          const e = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
          if (typeof e.code === "number" && typeof e.msg === "string") {
            answered = true;
            msg = e.msg;
            if (typeof e.details === "string") details = e.details;
            // Spec-level codes (config, env, try-again, not-available) keep their meaning upstream.
            if ([4, 7, 11, 50, 51].includes(e.code)) code = e.code;
          }
        } catch {
          // not an error JSON
        }
        reject(new IpamError(code as ErrorCode, `IPAM plugin ${type} ${verb}: ${msg}`, details, answered, stderr, { cause: err }));
      },
    );
    // A plugin that exits without reading its input must not fail us with EPIPE.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(stdin);
  });
}

/** Reads an IPAM result of any spec version (0.3.x/0.4.0 have ips[].version, 1.x do not); code 102 when it is not one. */
export function parseIpamResult(stdout: string, type: string): IpamResult {
  const bad = (what: string): CniError => new CniError(ErrorCode.Ipam, `IPAM plugin ${type} ADD: ${what}`);
  let r: unknown;
  try {
    r = JSON.parse(stdout);
  } catch {
    throw bad(`printed a result that is not JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  if (typeof r !== "object" || r === null || Array.isArray(r)) throw bad("printed a result that is not a JSON object");
  const { ips: rawIps = [], routes: rawRoutes = [], dns } = r as { ips?: unknown; routes?: unknown; dns?: unknown };
  if (!Array.isArray(rawIps)) throw bad("result field ips is not a list");
  if (!Array.isArray(rawRoutes)) throw bad("result field routes is not a list");
  const ips = rawIps.map((ip: unknown, i): IpamIp => {
    const { address, gateway } = (typeof ip === "object" && ip !== null ? ip : {}) as { address?: unknown; gateway?: unknown };
    if (typeof address !== "string" || !isCidr(address)) throw bad(`ips.${i}.address: ${JSON.stringify(address) ?? "nothing"} is not an address/prefix`);
    if (gateway !== undefined && (typeof gateway !== "string" || !ipaddr.isValid(gateway))) throw bad(`ips.${i}.gateway: ${JSON.stringify(gateway)} is not an IP address`);
    const [addr] = ipaddr.parseCIDR(address);
    return { address, ...(typeof gateway === "string" && gateway !== "" ? { gateway } : {}), family: addr.kind() === "ipv4" ? 4 : 6 };
  });
  if (ips.length === 0) throw bad("returned no IP address");
  const routes = rawRoutes.map((route: unknown, i): IpamRoute => {
    const { dst, gw } = (typeof route === "object" && route !== null ? route : {}) as { dst?: unknown; gw?: unknown };
    if (typeof dst !== "string" || !isCidr(dst)) throw bad(`routes.${i}.dst: ${JSON.stringify(dst) ?? "nothing"} is not an address/prefix`);
    if (gw !== undefined && (typeof gw !== "string" || !ipaddr.isValid(gw))) throw bad(`routes.${i}.gw: ${JSON.stringify(gw)} is not an IP address`);
    // Canonical text: these go into the pod's kernel batch line by line.
    const [net, len] = ipaddr.parseCIDR(dst);
    return { dst: `${net.toString()}/${len}`, ...(typeof gw === "string" ? { gw: ipaddr.parse(gw).toString() } : {}) };
  });
  if (dns !== undefined && (typeof dns !== "object" || dns === null || Array.isArray(dns))) throw bad("result field dns is not an object");
  return { ips, routes, ...(dns !== undefined ? { dns: dns as Record<string, unknown> } : {}) };
}

function isCidr(s: string): boolean {
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}
