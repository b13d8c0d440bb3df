// SRv6 SIDs of attachments. Layout (128 bits):
//   locator (L ≤ 64 bits) | zero padding (64 − L bits) | vpc (48 bits) | attachment (16 bits)
// The attachment SID decapsulates into the attachment: End.DT46 into the VPC's VRF where the
// kernel has VRF devices, End.DX4 to the pod where it does not. End.DX4 carries IPv4 only, so the
// policy-routing mode gives IPv6 its own End.DX6 SID: the same value with the last padding bit
// (bit 63) set. That needs L ≤ 63; a /64 locator serves IPv4 only in that mode.
import ipaddr from "ipaddr.js";

export class SidError extends Error {
  override readonly name = "SidError";
}

export interface Locator {
  /** The locator's first 64 bits (bits past `length` are zero). */
  high: bigint;
  length: number;
  text: string;
}

function toBigInt(bytes: number[]): bigint {
  return bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function fromBigInt(n: bigint): string {
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((n >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** Parses a node locator "fd00:0:a::/48": IPv6, prefix length 1–64, no bits set past the length. */
export function parseLocator(text: string, field = "srv6Locator"): Locator {
  let addr: ipaddr.IPv6 | ipaddr.IPv4;
  let length: number;
  try {
    [addr, length] = ipaddr.parseCIDR(text);
  } catch {
    throw new SidError(`${field}: "${text}" is not an IPv6 prefix (want e.g. "fd00:0:a::/48")`);
  }
  if (addr.kind() !== "ipv6") throw new SidError(`${field}: "${text}" is not an IPv6 prefix`);
  if (length < 1 || length > 64) {
    throw new SidError(`${field}: "${text}" has prefix length ${length}; a locator is 1 to 64 bits (the rest holds vpc and attachment)`);
  }
  const value = toBigInt(addr.toByteArray());
  const hostMask = (1n << BigInt(128 - length)) - 1n;
  if ((value & hostMask) !== 0n) throw new SidError(`${field}: "${text}" has bits set past /${length}`);
  return { high: value >> 64n, length, text };
}

/** The attachment SID: locator | vpc | attachment. */
export function attachmentSid(locator: Locator, vpc: bigint, attachment: number): string {
  return fromBigInt((locator.high << 64n) | (vpc << 16n) | BigInt(attachment));
}

/**
 * The End.DX6 SID of an attachment in policy-routing mode (bit 63 set); undefined when the
 * locator is 64 bits long and leaves no padding bit.
 */
export function attachmentSid6(locator: Locator, vpc: bigint, attachment: number): string | undefined {
  if (locator.length > 63) return undefined;
  return fromBigInt((locator.high << 64n) | (1n << 64n) | (vpc << 16n) | BigInt(attachment));
}
