// What a BGPVRFInstance asks of this node, as a pure function of the object (and, for SRv6, the
// node's underlay next hop): the GoBGP VRF and the local paths to originate — VPN routes with each
// attachment's SID (SRv6), or EVPN type-5 routes with the VPC's VNI to the node's VTEP (VXLAN). Invalid specs become a typed error
// that names the field, so the status can say exactly what is wrong.
import ipaddr from "ipaddr.js";
import { routeTargetAsnOf, type BGPVRFInstance } from "../../shared/api-types.js";
import { parseVpc, vpcNumber, vpcVni } from "../../shared/ids.js";
import { vpcRoutingText } from "../../shared/vpc-routing.js";
import { parseAdminAssigned, RouteDistinguisherError } from "../../shared/route-distinguisher.js";
import { srv6Behavior, type LocalPath, type Srv6Behavior, type Vrf } from "../gobgp/speaker.js";
import { canonicalMac } from "../../shared/router-mac.js";
import { compareText } from "../../shared/order.js";

export class SpecError extends Error {
  override readonly name: string = "SpecError";
}

/**
 * The object's routing identity is not the derivation from its ASN and VPC (a forged or mistyped
 * object, e.g. another VPC's route target): it must be neither imported nor exported. Admission
 * refuses such objects (manifests/admission/routing-identity.yaml); kvrfd checks again, for objects
 * written with admission bypassed or stored before the policy existed.
 */
export class IdentityError extends SpecError {
  override readonly name = "IdentityError";
}

/**
 * Checks RD, route targets, table and (VXLAN) VNI against the derivation from (ASN, VPC): RD and
 * RT `ASN:uint32(vpc)`, table `uint32(vpc)`, VNI the low 24 bits. Throws IdentityError naming the
 * field, the value and the expected one.
 */
export function checkIdentity(spec: BGPVRFInstance["spec"]): void {
  const vpc = parseVpc(spec.vpc, "spec.vpc");
  const rtAsn = routeTargetAsnOf(spec);
  let want: { rd: string; rt: string };
  try {
    want = vpcRoutingText(spec.asn, vpc, rtAsn);
  } catch (err) {
    const field = err instanceof RouteDistinguisherError && err.message.includes("route target") && spec.routeTargetASN !== undefined ? `spec.routeTargetASN ${rtAsn}` : `spec.asn ${spec.asn}`;
    throw new IdentityError(`${field} cannot encode VPC ${spec.vpc}'s route distinguisher or target: ${err instanceof Error ? err.message : String(err)}`);
  }
  const why = spec.routeTargetASN === undefined ? `(ASN ${spec.asn}, VPC ${spec.vpc})` : `(ASN ${spec.asn}, route-target ASN ${spec.routeTargetASN}, VPC ${spec.vpc})`;
  const list = (l: readonly string[]): string => JSON.stringify(l);
  if (spec.routeDistinguisher !== want.rd) throw new IdentityError(`spec.routeDistinguisher: ${spec.routeDistinguisher} is not VPC ${spec.vpc}'s ${want.rd} ${why}`);
  for (const field of ["importRouteTargets", "exportRouteTargets"] as const) {
    const got = spec[field];
    if (got.length !== 1 || got[0] !== want.rt) throw new IdentityError(`spec.${field}: ${list(got)} is not VPC ${spec.vpc}'s ${list([want.rt])} ${why}`);
  }
  const nn = vpcNumber(vpc);
  if (spec.table !== nn) throw new IdentityError(`spec.table: ${spec.table} is not VPC ${spec.vpc}'s ${nn} (uint32 of the VPC ID)`);
  if (spec.encapsulation === "vxlan" && spec.vni !== vpcVni(vpc)) {
    throw new IdentityError(`spec.vni: ${String(spec.vni)} is not VPC ${spec.vpc}'s ${vpcVni(vpc)} (its low 24 bits)`);
  }
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

/** The object's encapsulation (absent: srv6, objects from before VXLAN). */
export function encapsulationOf(obj: BGPVRFInstance): "srv6" | "vxlan" {
  return obj.spec.encapsulation ?? "srv6";
}

/**
 * The desired VRF and local paths of `obj`. `nextHop` is the node's underlay IPv6 address (SRv6;
 * VXLAN paths use the VTEP the CNI plugin published in spec.vtep).
 * SRv6 behaviour per attachment: with only `sid`, one End.DT46 SID decapsulates both families into
 * the VRF device; with `sid6`, the node runs policy routing and decapsulates per attachment and
 * family (End.DX4 for IPv4 via `sid`, End.DX6 for IPv6 via `sid6`).
 */
export function desiredVrf(obj: BGPVRFInstance, nextHop: string | undefined): DesiredVrf {
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
  const vxlan = encapsulationOf(obj) === "vxlan" ? vxlanOf(obj) : undefined;
  checkIdentity(spec);
  if (vxlan === undefined && nextHop === undefined) throw new SpecError("the node's underlay next hop is unknown (SRv6 needs it)");
  const paths = new Map<string, LocalPath>();
  const skipped: string[] = [];
  const name = vrfName(spec.vpc);
  const attachments = [...(spec.attachments ?? [])].sort((a, b) =>
    a.containerID === b.containerID ? compareText(a.ifName, b.ifName) : compareText(a.containerID, b.containerID),
  );
  for (const a of attachments) {
    const where = `attachment ${a.containerID}/${a.ifName}`;
    if (vxlan !== undefined) {
      // One VNI to one VTEP reaches every attachment of the VPC on the node.
      for (const p of a.prefixes) {
        const prefix = canonicalPrefix(p);
        if (prefix === undefined) skipped.push(`${where}: prefix "${p}" is not a CIDR`);
        else if (!paths.has(prefix)) paths.set(prefix, { vrf: name, prefix, nextHop: vxlan.vtep, encap: "vxlan", vni: vxlan.vni, routerMac: vxlan.routerMac });
      }
      continue;
    }
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
        if (taken.encap !== "srv6" || taken.sid !== pathSid) skipped.push(`${where}: prefix ${prefix} is already originated by another attachment`);
        continue;
      }
      paths.set(prefix, { vrf: name, prefix, nextHop: nextHop ?? "", encap: "srv6", sid: pathSid, behavior });
    }
  }
  return {
    key,
    vrf: { name, rd, importRts, exportRts, id: spec.table },
    localPaths: [...paths.values()].sort((x, y) => compareText(x.prefix, y.prefix)),
    skipped,
  };
}

/** A VXLAN object's VNI, VTEP and router MAC, checked (the CRD requires them with vxlan). */
function vxlanOf(obj: BGPVRFInstance): { vni: number; vtep: string; routerMac: string } {
  const { vni, vtep, routerMac } = obj.spec;
  if (vni === undefined || !Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new SpecError(`spec.vni: ${String(vni)} is not a VNI (1 to 16777215)`);
  if (vtep === undefined || !ipaddr.isValid(vtep)) throw new SpecError(`spec.vtep: ${String(vtep)} is not an IP address`);
  const mac = routerMac === undefined ? undefined : canonicalMac(routerMac);
  if (mac === undefined) throw new SpecError(`spec.routerMac: ${String(routerMac)} is not a MAC address`);
  return { vni, vtep: ipaddr.process(vtep).toString(), routerMac: mac };
}
