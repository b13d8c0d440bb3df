// The BGP identity of a VPC: a pure function of (ASN, route-target ASN, VPC), the same on every node
// and restart. The RD carries the speaker's ASN (unique per speaker, and per rack in an eBGP fabric);
// the route target carries the cluster-wide route-target ASN, so that nodes of different ASNs (RFC
// 7938 fabrics: an ASN per rack) import each other's routes. Without one it is the speaker's ASN.
import { fromAsn, formatAdminAssigned, type AdminAssigned } from "./route-distinguisher.js";
import { vpcNumber } from "./ids.js";

export interface VpcRouting {
  /** RD ASN:uint32(vpc). */
  rd: AdminAssigned;
  /** The one route target of the VPC, imported and exported by all its VRFs. */
  rt: AdminAssigned;
}

export function vpcRouting(asn: number, vpc: bigint, routeTargetAsn: number = asn): VpcRouting {
  const nn = vpcNumber(vpc);
  return { rd: fromAsn(asn, nn, "route distinguisher"), rt: fromAsn(routeTargetAsn, nn, "route target") };
}

export function vpcRoutingText(asn: number, vpc: bigint, routeTargetAsn: number = asn): { rd: string; rt: string } {
  const { rd, rt } = vpcRouting(asn, vpc, routeTargetAsn);
  return { rd: formatAdminAssigned(rd), rt: formatAdminAssigned(rt) };
}
