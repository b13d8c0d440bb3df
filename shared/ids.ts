// VPC and attachment identifiers as they appear in CNI configs and API objects.
// VPC IDs are 48-bit and attachment IDs 16-bit, both written as hex (an optional 0x prefix is
// accepted on input; the canonical form is lower-case without prefix and without leading zeros).

export const maxVpc = (1n << 48n) - 1n;
export const maxAttachment = 0xffff;

export class IdError extends Error {
  override readonly name = "IdError";
}

function parseHex(field: string, value: unknown, bits: number): bigint {
  if (typeof value !== "string") {
    throw new IdError(`${field}: want a hex string, got ${value === undefined ? "nothing" : JSON.stringify(value)}`);
  }
  const digits = value.startsWith("0x") || value.startsWith("0X") ? value.slice(2) : value;
  if (!/^[0-9a-fA-F]+$/.test(digits)) throw new IdError(`${field}: "${value}" is not hex`);
  const n = BigInt(`0x${digits}`);
  if (n >= 1n << BigInt(bits)) throw new IdError(`${field}: "${value}" does not fit in ${bits} bits`);
  return n;
}

/** Parses a 48-bit VPC ID ("abc", "0x00000000abc"). */
export function parseVpc(value: unknown, field = "vpc"): bigint {
  return parseHex(field, value, 48);
}

/** Parses a 16-bit attachment ID ("1", "0x00ff"). */
export function parseAttachment(value: unknown, field = "vpcAttachment"): number {
  return Number(parseHex(field, value, 16));
}

/** Canonical text of an ID: lower-case hex, no prefix, no leading zeros. */
export function hex(id: bigint | number): string {
  return id.toString(16);
}

/** The low 32 bits of a VPC ID, used as the NN of its RD and RT. Two VPCs can share it. */
export function vpcNumber(vpc: bigint): number {
  return Number(vpc & 0xffffffffn);
}

/**
 * The low 24 bits of a VPC ID: its VXLAN network identifier (RFC 7348) on every node. Like
 * vpcNumber it truncates, so two VPCs can share it; a claim through the API server (VNIClaim)
 * keeps it to one VPC. VNI 0 is refused: many implementations treat it as "no VNI".
 */
export function vpcVni(vpc: bigint): number {
  return Number(vpc & 0xffffffn);
}
