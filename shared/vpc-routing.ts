// The BGP identity of a VPC: a pure function of (ASN, VPC), the same on every node and restart.
import { fromAsn, formatAdminAssigned, type AdminAssigned } from "./route-distinguisher.js";
import { vpcNumber } from "./ids.js";

export interface VpcRouting {
  /** RD ASN:uint32(vpc). */
  rd: AdminAssigned;
  /** The one route target of the VPC, imported and exported by all its VRFs. */
  rt: AdminAssigned;
}

export function vpcRouting(asn: number, vpc: bigint): VpcRouting {
  const nn = vpcNumber(vpc);
  return { rd: fromAsn(asn, nn, "route distinguisher"), rt: fromAsn(asn, nn, "route target") };
}

export function vpcRoutingText(asn: number, vpc: bigint): { rd: string; rt: string } {
  const { rd, rt } = vpcRouting(asn, vpc);
  return { rd: formatAdminAssigned(rd), rt: formatAdminAssigned(rt) };
}
