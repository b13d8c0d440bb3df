// Route distinguishers and route targets: the "administrator:assigned" values of RFC 4364 §4.2
// (RD) and RFC 4360 §3 / RFC 5668 (route-target extended communities). Both share the same three
// layouts, so one codec serves both:
//   type 0  2-byte ASN   : 4-byte number   ("65000:4294967295")
//   type 1  IPv4 address : 2-byte number   ("192.0.2.1:7")
//   type 2  4-byte ASN   : 2-byte number   ("4200000001:7")
// A value never silently changes layout or gets truncated: what does not fit is an error.
// (GoBGP's CLI parses "4200000001:N" as 65535:N; we never hand it text.)
import { isIPv4 } from "node:net";

export type AdminAssigned =
  | { type: 0; asn: number; assigned: number }
  | { type: 1; address: string; assigned: number }
  | { type: 2; asn: number; assigned: number };

export class RouteDistinguisherError extends Error {
  override readonly name = "RouteDistinguisherError";
}

const u16 = 0xffff;
const u32 = 0xffffffff;

function isUint(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

/** Validates an autonomous system number (1 to 4294967295; 0 is reserved). */
export function checkAsn(asn: number, field = "asn"): number {
  if (!Number.isInteger(asn) || asn < 1 || asn > u32) {
    throw new RouteDistinguisherError(`${field}: ${asn} is not an AS number (1 to 4294967295)`);
  }
  return asn;
}

/**
 * The administrator:assigned value for (asn, assigned) in the only layout that holds both
 * exactly: type 0 for a 2-byte ASN, type 2 for a 4-byte ASN with a 16-bit number; anything
 * else is refused (a 4-byte ASN with a 32-bit number fits no layout).
 */
export function fromAsn(asn: number, assigned: number, what = "route distinguisher"): AdminAssigned {
  checkAsn(asn);
  if (!isUint(assigned, u32)) {
    throw new RouteDistinguisherError(`${what}: assigned number ${assigned} is not a 32-bit unsigned integer`);
  }
  if (asn <= u16) return { type: 0, asn, assigned };
  if (assigned <= u16) return { type: 2, asn, assigned };
  throw new RouteDistinguisherError(
    `${what} ${asn}:${assigned} cannot be encoded: a 4-byte ASN leaves 16 bits for the number ` +
      `(type 2), and ${assigned} > 65535; use a 2-byte ASN (type 0 holds a 32-bit number)`,
  );
}

/** Parses "ASN:NN" or "IPv4:NN" text into the layout it denotes, checking every range. */
export function parseAdminAssigned(text: string, what = "route distinguisher"): AdminAssigned {
  const colon = text.lastIndexOf(":");
  if (colon <= 0 || colon === text.length - 1) {
    throw new RouteDistinguisherError(`${what} "${text}": want ASN:NN or IPv4:NN`);
  }
  const admin = text.slice(0, colon);
  const nnText = text.slice(colon + 1);
  if (!/^\d{1,10}$/.test(nnText)) throw new RouteDistinguisherError(`${what} "${text}": "${nnText}" is not a number`);
  const assigned = Number(nnText);
  if (isIPv4(admin)) {
    if (assigned > u16) throw new RouteDistinguisherError(`${what} "${text}": with an IPv4 administrator the number must be ≤ 65535`);
    return { type: 1, address: admin, assigned };
  }
  if (!/^\d{1,10}$/.test(admin)) throw new RouteDistinguisherError(`${what} "${text}": "${admin}" is neither an ASN nor an IPv4 address`);
  const asn = Number(admin);
  if (asn > u32) throw new RouteDistinguisherError(`${what} "${text}": ASN ${asn} is larger than 4294967295`);
  if (assigned > u32) throw new RouteDistinguisherError(`${what} "${text}": number ${assigned} is larger than 4294967295`);
  if (asn > u16 && assigned > u16) {
    throw new RouteDistinguisherError(`${what} "${text}": a 4-byte ASN leaves 16 bits for the number, ${assigned} > 65535`);
  }
  return asn > u16 ? { type: 2, asn, assigned } : { type: 0, asn, assigned };
}

export function formatAdminAssigned(v: AdminAssigned): string {
  return v.type === 1 ? `${v.address}:${v.assigned}` : `${v.asn}:${v.assigned}`;
}

/** The 8-byte RD wire encoding (RFC 4364 §4.2): 2-byte type, then the value. */
export function encodeRouteDistinguisher(v: AdminAssigned): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(v.type, 0);
  if (v.type === 0) {
    b.writeUInt16BE(v.asn, 2);
    b.writeUInt32BE(v.assigned, 4);
  } else if (v.type === 1) {
    v.address.split(".").forEach((o, i) => b.writeUInt8(Number(o), 2 + i));
    b.writeUInt16BE(v.assigned, 6);
  } else {
    b.writeUInt32BE(v.asn, 2);
    b.writeUInt16BE(v.assigned, 6);
  }
  return b;
}

export function decodeRouteDistinguisher(b: Buffer): AdminAssigned {
  if (b.length !== 8) throw new RouteDistinguisherError(`route distinguisher: want 8 bytes, got ${b.length}`);
  const type = b.readUInt16BE(0);
  switch (type) {
    case 0:
      return { type, asn: b.readUInt16BE(2), assigned: b.readUInt32BE(4) };
    case 1:
      return { type, address: [...b.subarray(2, 6)].join("."), assigned: b.readUInt16BE(6) };
    case 2:
      return { type, asn: b.readUInt32BE(2), assigned: b.readUInt16BE(6) };
    default:
      throw new RouteDistinguisherError(`route distinguisher: unknown type ${type}`);
  }
}

/** A route distinguisher's or route target's identity (layout and value), as a map key. */
export const aaKey = (v: AdminAssigned): string => `${v.type}/${formatAdminAssigned(v)}`;
