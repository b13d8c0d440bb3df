// The SRv6 service SID a received VPN path stands for (RFC 9252 §4 "transposition"). A sender may
// move part of the SID (usually the function bits) out of the SRv6 SID Information sub-TLV into
// the 3-octet label field of the NLRI, so that routes which differ only in those bits share one
// Prefix-SID attribute and pack into one UPDATE. The SID Structure sub-sub-TLV says which bits:
// Transposition Offset (first bit in the SID, from the most significant) and Transposition Length
// (how many); they sit in the high-order bits of the label field, and the SID in the TLV carries
// zeros there. FRR 8.4 does this for every VPN SID it allocates (docs/interop.md).
//
// gobgpd (3.10 and 4.8 alike) hands kvrf a VPN NLRI's label field as `labels[0]`, the 20-bit
// label value (the field shifted right by 4: traffic class and bottom-of-stack dropped), so
// kvrf can recover at most 20 transposed bits; RFC 9252 allows up to 24 only for EVPN.
// Pure functions; an SRv6 service TLV kvrf cannot decode gives a reason, never a guessed SID.
import ipaddr from "ipaddr.js";

/** The SRv6 SID Structure sub-sub-TLV (RFC 9252 §3.2.1), as both gobgpd APIs report it. */
export interface Srv6SidStructure {
  locatorBlockLength: number;
  locatorNodeLength: number;
  functionLength: number;
  argumentLength: number;
  transpositionLength: number;
  transpositionOffset: number;
}

/** What a path's SRv6 SID Information sub-TLV says, before the label is taken into account. */
export interface Srv6ServiceTlv {
  /** The SID field of the sub-TLV as IPv6 text (with transposition: transposed bits zero). */
  sid: string;
  behavior: number;
  /** Absent when the sub-TLV has no SID Structure sub-sub-TLV. */
  structure?: Srv6SidStructure;
}

/** Label bits of a VPN NLRI that gobgpd reports: the label value, without TC and S. */
export const vpnLabelBits = 20;

const sidBits = 128;

function sidToBigint(sid: string): bigint | undefined {
  if (!ipaddr.IPv6.isValid(sid)) return undefined;
  return ipaddr.IPv6.parse(sid)
    .toByteArray()
    .reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function bigintToSid(n: bigint): string {
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((n >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/**
 * The full SID of an SRv6 L3 service TLV, given the labels of the path's NLRI (`undefined` when
 * the NLRI has no label field, e.g. gobgpd's VRF view, which lists VPN paths as unicast ones), or
 * why it cannot be known. Without a structure, or with transposition length 0, the TLV's SID is
 * the SID. Otherwise the structure must be consistent (lengths summing to at most 128 bits, the
 * transposed bits inside the SID and within the label bits gobgpd reports), the NLRI must carry a
 * label, and the TLV's SID must have zeros where the label's bits go.
 */
export function serviceSid(tlv: Srv6ServiceTlv, labels: readonly number[] | undefined): { sid: string } | { problem: string } {
  const sid = sidToBigint(tlv.sid);
  if (sid === undefined) return { problem: `SRv6 SID "${tlv.sid}" is not an IPv6 address` };
  const s = tlv.structure;
  if (s === undefined) return { sid: bigintToSid(sid) };
  const lengths = s.locatorBlockLength + s.locatorNodeLength + s.functionLength + s.argumentLength;
  const shape = `structure ${s.locatorBlockLength}/${s.locatorNodeLength}/${s.functionLength}/${s.argumentLength}, transposition offset ${s.transpositionOffset} length ${s.transpositionLength}`;
  if (lengths > sidBits) return { problem: `SRv6 SID ${tlv.sid}: ${shape}: block, node, function and argument lengths add up to ${lengths} bits, more than 128` };
  const len = s.transpositionLength;
  if (len === 0) return { sid: bigintToSid(sid) };
  const offset = s.transpositionOffset;
  if (offset + len > sidBits) return { problem: `SRv6 SID ${tlv.sid}: ${shape}: the transposed bits ${offset} to ${offset + len - 1} lie beyond the SID's 128 bits` };
  if (len > vpnLabelBits) {
    return { problem: `SRv6 SID ${tlv.sid}: ${shape}: ${len} transposed bits, but the label value carries ${vpnLabelBits} (RFC 9252 §4 allows 24 for EVPN only)` };
  }
  if (labels === undefined) return { problem: `SRv6 SID ${tlv.sid}: ${shape}: the SID is transposed, but this view of the path has no label to take the bits from` };
  const label = labels[0];
  if (label === undefined) return { problem: `SRv6 SID ${tlv.sid}: ${shape}: the SID is transposed, but the NLRI carries no label` };
  if (!Number.isInteger(label) || label < 0 || label >= 2 ** vpnLabelBits) return { problem: `SRv6 SID ${tlv.sid}: label ${label} is not a 20-bit label value` };
  const shift = BigInt(sidBits - offset - len);
  const mask = ((1n << BigInt(len)) - 1n) << shift;
  if ((sid & mask) !== 0n) return { problem: `SRv6 SID ${tlv.sid}: ${shape}: the SID has bits set where the label's go, so the two disagree` };
  const bits = BigInt(label) >> BigInt(vpnLabelBits - len);
  return { sid: bigintToSid(sid | (bits << shift)) };
}
