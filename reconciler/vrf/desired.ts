// What a BGPVRFInstance asks of this node, as a pure function of the object (and the node's next
// hop): the GoBGP VRF and the local paths to originate in it. Invalid specs become a typed error
// that names the field, so the status can say exactly what is wrong.
import ipaddr from "ipaddr.js";
import type { BGPVRFInstance } from "../shared/api-types.js";
import { parseVpc } from "../shared/ids.js";
import { parseAdminAssigned, RouteDistinguisherError } from "../shared/route-distinguisher.js";
import { srv6Behavior, type LocalPath, type Srv6Behavior, type Vrf } from "./speaker.js";
import { compareText } from "../shared/order.js";

export class SpecError extends Error {
  override readonly name = "SpecError";
}

export interface DesiredVrf {
  /** The object's name: the work-queue key. */
  key: string;
  vrf: Vrf;
  /** Local paths, sorted by prefix, one per prefix. */
  localPaths: LocalPath[];
  /** Prefixes that could not be originated, with why (reported, not fatal). */
  skipped: string[];
}

/** The GoBGP VRF name of a VPC: one VRF per VPC on a node, so the VPC is the identity. */
export function vrfName(vpcHex: string): string {
  return `vpc-${vpcHex}`;
}

/** kvrfd owns the VRFs it names; anything else in gobgpd is left alone. */
export function isKvrfVrfName(name: string): boolean {
  return /^vpc-[0-9a-f]{1,12}$/.test(name);
}

// Canonical forms are asked for the same few strings over and over (every reconcile compares its
// paths and routes); ipaddr.js parsing showed up at the top of kvrfd's profile at 1,000 VRFs.
const memoLimit = 100_000;
function memo(f: (s: string) => string | undefined): (s: string) => string | undefined {
  const cache = new Map<string, string | undefined>();
  return (s) => {
    if (cache.has(s)) return cache.get(s);
    const v = f(s);
    if (cache.size >= memoLimit) cache.clear();
    cache.set(s, v);
    return v;
  };
}

/** A CIDR in canonical text (host bits cleared, IPv6 compressed), or undefined when invalid. */
export const canonicalPrefix = memo((cidr: string): string | undefined => {
  const text = cidr.includes("/") ? cidr : undefined;
  if (text === undefined || !ipaddr.isValidCIDR(text)) return undefined;
  const [addr, len] = ipaddr.parseCIDR(text);
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${len}`;
});

const canonicalIpv6Text = memo((text: string): string | undefined => (ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text).toString() : undefined));

/** An IPv6 address (a SID or next hop) in canonical compressed text, or undefined. */
export function canonicalIpv6(text: string | undefined): string | undefined {
  return text === undefined ? undefined : canonicalIpv6Text(text);
}

export function isIpv6Prefix(prefix: string): boolean {
  return prefix.includes(":");
}

function parseRt(text: string, field: string): ReturnType<typeof parseAdminAssigned> {
  try {
    return parseAdminAssigned(text, field);
  } catch (err) {
    if (err instanceof RouteDistinguisherError) throw new SpecError(err.message);
    throw err;
  }
}

/**
 * The desired VRF and local paths of `obj`. `nextHop` is the node's underlay IPv6 address.
 * SRv6 behaviour per attachment: with only `sid`, one End.DT46 SID decapsulates both families into
 * the VRF device; with `sid6`, the node runs policy routing and decapsulates per attachment and
 * family (End.DX4 for IPv4 via `sid`, End.DX6 for IPv6 via `sid6`).
 */
export function desiredVrf(obj: BGPVRFInstance, nextHop: string): DesiredVrf {
  const key = obj.metadata.name ?? "";
  const spec = obj.spec;
  try {
    parseVpc(spec.vpc, "spec.vpc");
  } catch (err) {
    throw new SpecError(err instanceof Error ? err.message : String(err));
  }
  if (!Number.isInteger(spec.table) || spec.table < 1 || spec.table > 0xffffffff) {
    throw new SpecError(`spec.table: ${spec.table} is not a kernel table number (1 to 4294967295)`);
  }
  if (spec.table === 253 || spec.table === 254 || spec.table === 255) {
    throw new SpecError(`spec.table: ${spec.table} is a reserved kernel table (default, main, local)`);
  }
  const rd = parseRt(spec.routeDistinguisher, "spec.routeDistinguisher");
  if (spec.importRouteTargets.length === 0) throw new SpecError("spec.importRouteTargets: at least one route target is required");
  if (spec.exportRouteTargets.length === 0) throw new SpecError("spec.exportRouteTargets: at least one route target is required");
  const importRts = spec.importRouteTargets.map((t, i) => parseRt(t, `spec.importRouteTargets[${i}]`));
  const exportRts = spec.exportRouteTargets.map((t, i) => parseRt(t, `spec.exportRouteTargets[${i}]`));

  const paths = new Map<string, LocalPath>();
  const skipped: string[] = [];
  const name = vrfName(spec.vpc);
  const attachments = [...(spec.attachments ?? [])].sort((a, b) =>
    a.containerID === b.containerID ? compareText(a.ifName, b.ifName) : compareText(a.containerID, b.containerID),
  );
  for (const a of attachments) {
    const where = `attachment ${a.containerID}/${a.ifName}`;
    const sid = canonicalIpv6(a.sid);
    const sid6 = canonicalIpv6(a.sid6);
    if (a.sid6 !== undefined && sid6 === undefined) skipped.push(`${where}: sid6 "${a.sid6}" is not an IPv6 address`);
    for (const p of a.prefixes) {
      const prefix = canonicalPrefix(p);
      if (prefix === undefined) {
        skipped.push(`${where}: prefix "${p}" is not a CIDR`);
        continue;
      }
      const v6 = isIpv6Prefix(prefix);
      let pathSid: string | undefined;
      let behavior: Srv6Behavior;
      if (a.sid6 !== undefined) {
        pathSid = v6 ? sid6 : sid;
        behavior = v6 ? srv6Behavior.endDX6 : srv6Behavior.endDX4;
      } else {
        pathSid = sid;
        behavior = srv6Behavior.endDT46;
      }
      if (pathSid === undefined) {
        skipped.push(`${where}: prefix ${prefix} has no valid SRv6 SID`);
        continue;
      }
      const taken = paths.get(prefix);
      if (taken !== undefined) {
        if (taken.sid !== pathSid) skipped.push(`${where}: prefix ${prefix} is already originated by another attachment`);
        continue;
      }
      paths.set(prefix, { vrf: name, prefix, nextHop, sid: pathSid, behavior });
    }
  }
  return {
    key,
    vrf: { name, rd, importRts, exportRts, id: spec.table },
    localPaths: [...paths.values()].sort((x, y) => compareText(x.prefix, y.prefix)),
    skipped,
  };
}
