// What kvrfd checks beyond an object's own spec before it lets a VPC import or export anything
// (docs/deploy.md "Security: tenant isolation"):
//  - claims: the VPC's route target (and, with VXLAN, VNI) is claimed by this very VPC (the
//    RouteTargetClaim / VNIClaim). The derivation alone cannot tell VPC e5 from a made-up VPC
//    10000000e5 with the same low 32 bits; the claim, taken first come first served, can.
//  - remote paths: a path imported into a VPC must not steer the VPC's traffic into another VPC or
//    to another node's attachments. The nodes' published records (Node annotations
//    kvrf.dev/srv6-locator and kvrf.dev/vtep, set by the operator; Node addresses; the router MAC
//    derived from the node name) say which SIDs and VTEPs belong to which node.
// Pure functions over snapshots; the VRF controller applies them.
import ipaddr from "ipaddr.js";
import type { V1Node } from "@kubernetes/client-node";
import { locatorAnnotation, routeTargetAsnOf, routeTargetClaimName, vniClaimName, vtepAnnotation, type BGPVRFInstanceSpec } from "../../shared/api-types.js";
import { parseVpc, vpcNumber, vpcVni, hex } from "../../shared/ids.js";
import { routerMac } from "../../shared/router-mac.js";
import { parseLocator, type Locator } from "../../shared/srv6-sid.js";
import { SpecError } from "./desired.js";
import { compareText } from "../../shared/order.js";
import type { RibPath } from "../gobgp/speaker.js";

/** The object's route target or VNI is not claimed by its own VPC. */
export class ClaimError extends SpecError {
  override readonly name = "ClaimError";
}

/** The claims kvrfd reads (informers over RouteTargetClaims and VNIClaims): name → the claim's VPC. */
export interface ClaimView {
  routeTargetClaim(name: string): { vpc?: string } | undefined;
  vniClaim(name: string): { vpc?: string } | undefined;
}

/**
 * Throws ClaimError unless the object's route target (the derivation, checked before) is claimed
 * by the object's VPC, and with VXLAN its VNI too. Claim VPCs are compared as numbers (a claim
 * written by hand may spell the hex differently).
 */
export function checkClaims(spec: BGPVRFInstanceSpec, claims: ClaimView): void {
  const vpc = parseVpc(spec.vpc, "spec.vpc");
  const rt = `${routeTargetAsnOf(spec)}:${vpcNumber(vpc)}`;
  const check = (kind: string, what: string, name: string, claim: { vpc?: string } | undefined): void => {
    if (claim === undefined) {
      throw new ClaimError(`${what} of VPC ${hex(vpc)} is not claimed (no ${kind} ${name}): only a VPC that holds the claim may import or export with it`);
    }
    let holder: bigint | undefined;
    try {
      holder = parseVpc(claim.vpc, "spec.vpc");
    } catch {
      holder = undefined;
    }
    if (holder !== vpc) {
      throw new ClaimError(`${what} of VPC ${hex(vpc)} is claimed by VPC ${String(claim.vpc)} (${kind} ${name}), not by this VPC: their IDs share the low bits; refusing to import or export with it`);
    }
  };
  check("RouteTargetClaim", `route target ${rt}`, routeTargetClaimName(rt), claims.routeTargetClaim(routeTargetClaimName(rt)));
  if (spec.encapsulation === "vxlan") {
    const vni = vpcVni(vpc);
    check("VNIClaim", `VNI ${vni}`, vniClaimName(vni), claims.vniClaim(vniClaimName(vni)));
  }
}

/** What a node has published about itself, as kvrfd checks remote paths against it. */
export interface NodeRecord {
  name: string;
  /** Canonical addresses from the Node's status (InternalIP, ExternalIP, …). */
  addresses: string[];
  locator?: Locator;
  /** Canonical VTEP address. */
  vtep?: string;
  routerMac: string;
  /** An annotation that could not be read (reported; the record goes without it). */
  problem?: string;
}

function canonicalAddress(text: string | undefined): string | undefined {
  if (text === undefined || !ipaddr.isValid(text)) return undefined;
  const a = ipaddr.parse(text);
  return (a.kind() === "ipv6" && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a).toString();
}

export function nodeRecord(node: V1Node): NodeRecord {
  const name = node.metadata?.name ?? "";
  const annotations = node.metadata?.annotations ?? {};
  const rec: NodeRecord = {
    name,
    addresses: (node.status?.addresses ?? []).flatMap((a) => canonicalAddress(a.address) ?? []),
    routerMac: routerMac(name),
  };
  const problems: string[] = [];
  const loc = annotations[locatorAnnotation];
  if (loc !== undefined) {
    try {
      rec.locator = parseLocator(loc, `annotation ${locatorAnnotation}`);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  const vtep = annotations[vtepAnnotation];
  if (vtep !== undefined) {
    const v = canonicalAddress(vtep);
    if (v === undefined) problems.push(`annotation ${vtepAnnotation}: "${vtep}" is not an IP address`);
    else rec.vtep = v;
  }
  if (problems.length > 0) rec.problem = problems.join("; ");
  return rec;
}

/** Nodes by what identifies them in a path: next hop, locator, VTEP, router MAC. */
export interface NodeIndex {
  byAddress: Map<string, NodeRecord>;
  byVtep: Map<string, NodeRecord>;
  byRouterMac: Map<string, NodeRecord>;
  locators: { high: bigint; mask: bigint; node: NodeRecord }[];
}

export function indexNodes(records: readonly NodeRecord[]): NodeIndex {
  const idx: NodeIndex = { byAddress: new Map(), byVtep: new Map(), byRouterMac: new Map(), locators: [] };
  for (const r of records) {
    for (const a of r.addresses) idx.byAddress.set(a, r);
    if (r.vtep !== undefined) {
      idx.byVtep.set(r.vtep, r);
      idx.byAddress.set(r.vtep, r);
    }
    idx.byRouterMac.set(r.routerMac, r);
    if (r.locator !== undefined) {
      const mask = ((1n << 64n) - 1n) ^ ((1n << BigInt(64 - r.locator.length)) - 1n);
      idx.locators.push({ high: r.locator.high, mask, node: r });
    }
  }
  return idx;
}

function sidBits(sid: string): bigint | undefined {
  if (!ipaddr.IPv6.isValid(sid)) return undefined;
  return ipaddr.IPv6.parse(sid)
    .toByteArray()
    .reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

/** Reasons a remote path is ignored, as the metric labels them. */
export type IgnoreReason =
  | "sid-of-another-vpc"
  | "sid-outside-advertiser-locator"
  | "vni-of-another-vpc"
  | "vtep-not-advertisers"
  | "not-a-gateway"
  | "gateway-not-for-vpc"
  | "over-external-limit";

/** BGPInstance spec.externalRoutes as written. */
export interface ExternalRoutesSpec {
  gateways?: { address: string; vpcs: string[] }[];
  maxPrefixesPerVPC?: number;
}

/**
 * What the node's instance allows of routes from outside the cluster: paths whose next hop is no
 * node's (a gateway PE, a data-centre router). Without it (today's default) they are imported like
 * any other path of the VPC's route target.
 */
export interface ExternalPolicy {
  /** When set, only these next hops may route into VPCs from outside, each into its VPCs only. */
  gateways?: Map<string, Set<bigint>>;
  /** Prefixes from outside imported per VPC at most (the first in prefix order); the rest are ignored. */
  maxPrefixesPerVPC?: number;
  /** Entries that could not be read (reported; the policy goes without them, stricter). */
  problems: string[];
}

export function externalPolicy(spec: ExternalRoutesSpec | undefined): ExternalPolicy | undefined {
  if (spec === undefined) return undefined;
  const policy: ExternalPolicy = { problems: [] };
  if (spec.gateways !== undefined) {
    const gateways = new Map<string, Set<bigint>>();
    for (const [i, g] of spec.gateways.entries()) {
      const addr = canonicalAddress(g.address);
      if (addr === undefined) {
        policy.problems.push(`spec.externalRoutes.gateways[${i}].address: "${g.address}" is not an IP address`);
        continue;
      }
      const vpcs = gateways.get(addr) ?? new Set<bigint>();
      for (const v of g.vpcs) {
        try {
          vpcs.add(parseVpc(v, `spec.externalRoutes.gateways[${i}].vpcs`));
        } catch (err) {
          policy.problems.push(err instanceof Error ? err.message : String(err));
        }
      }
      gateways.set(addr, vpcs);
    }
    policy.gateways = gateways;
  }
  if (spec.maxPrefixesPerVPC !== undefined) policy.maxPrefixesPerVPC = spec.maxPrefixesPerVPC;
  return policy;
}

/** The path comes from outside the cluster: its next hop is no node's address or VTEP. */
export function isExternal(p: RibPath, nodes: NodeIndex): boolean {
  const nh = canonicalAddress(p.nextHop);
  return nh === undefined || !nodes.byAddress.has(nh);
}

/**
 * The paths from outside the cluster beyond `max` distinct prefixes (the first `max` in prefix
 * order are kept, so the choice does not depend on arrival order), with why.
 */
export function overExternalLimit(paths: readonly RibPath[], max: number | undefined, nodes: NodeIndex): Map<RibPath, { reason: IgnoreReason; detail: string }> {
  const out = new Map<RibPath, { reason: IgnoreReason; detail: string }>();
  if (max === undefined) return out;
  const external = paths.filter((p) => !p.local && !p.withdraw && isExternal(p, nodes));
  const prefixes = [...new Set(external.map((p) => p.prefix))].sort(compareText);
  if (prefixes.length <= max) return out;
  const kept = new Set(prefixes.slice(0, max));
  for (const p of external) {
    if (!kept.has(p.prefix)) out.set(p, { reason: "over-external-limit", detail: `${prefixes.length} prefixes from outside the cluster exceed spec.externalRoutes.maxPrefixesPerVPC ${max}` });
  }
  return out;
}

/**
 * Why a remote path must not be imported into VPC `vpc` (whose VNI is `vni` with VXLAN), or
 * undefined when it may. The advertiser is the node owning the path's next hop (a Node address or
 * its published VTEP). Paths from routers that are no node (a gateway, FRR) are judged by the
 * instance's rules for them (`external`: listed gateways only, each into its VPCs), and not at
 * all without rules; SIDs or VTEPs no node has published are not judged by the records.
 *  - SRv6: a SID inside a node's locator is a kvrf attachment SID (locator | vpc | attachment,
 *    shared/srv6-sid.ts): its VPC field must be this VPC (else it would deliver this VPC's traffic
 *    into another VPC's attachment), and that node must be the advertiser; a node with a published
 *    locator advertises SIDs inside it only.
 *  - VXLAN: the path's VNI is the VPC's; the VTEP (next hop) of a node belongs to the node whose
 *    router MAC the path carries, and a node with a published VTEP advertises that VTEP only.
 */
export function ignoreReason(p: RibPath, vpc: bigint, vni: number | undefined, nodes: NodeIndex, external?: ExternalPolicy): { reason: IgnoreReason; detail: string } | undefined {
  if (p.local) return undefined;
  const nh = canonicalAddress(p.nextHop);
  const advertiser = nh === undefined ? undefined : nodes.byAddress.get(nh);
  if (advertiser === undefined && external?.gateways !== undefined) {
    // From outside the cluster, where the instance names who may route into which VPC. A gateway
    // that tags a route with another VPC's route target (misconfigured, or not ours to trust)
    // reaches only the VPCs it is listed for.
    const allowed = nh === undefined ? undefined : external.gateways.get(nh);
    if (allowed === undefined) return { reason: "not-a-gateway", detail: `next hop ${p.nextHop} is neither a node's nor a gateway's (spec.externalRoutes.gateways)` };
    if (!allowed.has(vpc)) return { reason: "gateway-not-for-vpc", detail: `gateway ${p.nextHop} may route into VPC${allowed.size === 1 ? "" : "s"} ${[...allowed].map((v) => hex(v)).join(", ") || "none"}, not ${hex(vpc)}` };
  }
  if (p.evpn !== undefined) {
    if (vni !== undefined && p.evpn.vni !== vni) return { reason: "vni-of-another-vpc", detail: `VNI ${p.evpn.vni} is not this VPC's ${vni}` };
    const vtepOwner = nh === undefined ? undefined : nodes.byVtep.get(nh);
    const macOwner = nodes.byRouterMac.get(p.evpn.routerMac);
    if (vtepOwner !== undefined && macOwner?.name !== vtepOwner.name) {
      return { reason: "vtep-not-advertisers", detail: `VTEP ${String(nh)} is node ${vtepOwner.name}'s, but the router MAC ${p.evpn.routerMac} is ${macOwner === undefined ? "no node's" : `node ${macOwner.name}'s`}` };
    }
    if (macOwner?.vtep !== undefined && macOwner.vtep !== nh) {
      return { reason: "vtep-not-advertisers", detail: `router MAC ${p.evpn.routerMac} is node ${macOwner.name}'s, whose VTEP is ${macOwner.vtep}, not ${String(nh)}` };
    }
    return undefined;
  }
  const bits = p.sid === undefined ? undefined : sidBits(p.sid);
  if (bits === undefined) return undefined;
  const high = bits >> 64n;
  const owner = nodes.locators.find((l) => (high & l.mask) === l.high)?.node;
  if (owner !== undefined) {
    const sidVpc = (bits >> 16n) & ((1n << 48n) - 1n);
    if (sidVpc !== vpc) return { reason: "sid-of-another-vpc", detail: `SID ${String(p.sid)} is an attachment of VPC ${hex(sidVpc)} on node ${owner.name}, not of this VPC` };
    if (advertiser?.name !== owner.name) {
      return {
        reason: "sid-outside-advertiser-locator",
        detail: `SID ${String(p.sid)} is in node ${owner.name}'s locator ${String(owner.locator?.text)}, but the next hop ${p.nextHop} is ${advertiser === undefined ? "no node's" : `node ${advertiser.name}'s`}`,
      };
    }
    return undefined;
  }
  if (advertiser?.locator !== undefined) {
    return { reason: "sid-outside-advertiser-locator", detail: `SID ${String(p.sid)} is outside node ${advertiser.name}'s locator ${advertiser.locator.text}` };
  }
  return undefined;
}
