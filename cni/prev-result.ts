// A chained ADD's prevResult, checked before anything changes: ADD appends to it (result.ts
// mergeInto, render), and a malformed one would otherwise fail only after the data plane was built
// (an internal error, and everything undone), or be passed on for the runtime to choke on.
// Shapes per the CNI spec's result types; 0.3.x/0.4.0 IPs may carry "version".
import ipaddr from "ipaddr.js";
import { CniError, ErrorCode } from "./error.js";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function isCidr(v: unknown): boolean {
  if (typeof v !== "string") return false;
  try {
    ipaddr.parseCIDR(v);
    return true;
  } catch {
    return false;
  }
}

const isIp = (v: unknown): boolean => typeof v === "string" && ipaddr.isValid(v);

function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Throws code 7 naming the first malformed field of `prev` (absent or null: not chained, fine). */
export function checkPrevResult(prev: unknown): void {
  if (prev === undefined || prev === null) return;
  const bad = (field: string, what: string, v: unknown): CniError => new CniError(ErrorCode.InvalidConfig, `prevResult.${field}: ${what} (got ${describe(v)})`);
  if (!isObject(prev)) throw new CniError(ErrorCode.InvalidConfig, `prevResult: must be a CNI result object (got ${describe(prev)})`);
  const list = (field: string): unknown[] => {
    const v = prev[field];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw bad(field, "must be a list", v);
    return v;
  };
  const interfaces = list("interfaces");
  interfaces.forEach((i, n) => {
    if (!isObject(i) || typeof i["name"] !== "string" || i["name"] === "") throw bad(`interfaces.${n}`, "must be an object with a name", i);
    for (const k of ["mac", "sandbox"]) if (i[k] !== undefined && typeof i[k] !== "string") throw bad(`interfaces.${n}.${k}`, "must be a string", i[k]);
    if (i["mtu"] !== undefined && !Number.isInteger(i["mtu"])) throw bad(`interfaces.${n}.mtu`, "must be an integer", i["mtu"]);
  });
  list("ips").forEach((ip, n) => {
    if (!isObject(ip)) throw bad(`ips.${n}`, "must be an object", ip);
    if (!isCidr(ip["address"])) throw bad(`ips.${n}.address`, "must be an address/prefix", ip["address"]);
    if (ip["gateway"] !== undefined && !isIp(ip["gateway"])) throw bad(`ips.${n}.gateway`, "must be an IP address", ip["gateway"]);
    const idx = ip["interface"];
    if (idx !== undefined && !(Number.isInteger(idx) && (idx as number) >= 0 && (idx as number) < interfaces.length)) {
      throw bad(`ips.${n}.interface`, `must index interfaces (0 to ${interfaces.length - 1})`, idx);
    }
  });
  list("routes").forEach((r, n) => {
    if (!isObject(r)) throw bad(`routes.${n}`, "must be an object", r);
    if (!isCidr(r["dst"])) throw bad(`routes.${n}.dst`, "must be an address/prefix", r["dst"]);
    if (r["gw"] !== undefined && !isIp(r["gw"])) throw bad(`routes.${n}.gw`, "must be an IP address", r["gw"]);
  });
  if (prev["dns"] !== undefined && !isObject(prev["dns"])) throw bad("dns", "must be an object", prev["dns"]);
}
