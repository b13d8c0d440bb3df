// Interface names derived from IDs: deterministic (DEL and CHECK find them from the config alone),
// unique (a bijective encoding, never a hash) and within Linux's 15-byte limit.
//   host veth of an attachment  "kv"   + 13 base32 chars of (vpc << 16 | attachment)  = 15 bytes
//   VRF device of a VPC         "kvrf-" + 10 base32 chars of vpc                      = 15 bytes
//   VXLAN device of a VPC       "kvx-"  + 10 base32 chars of vpc                      = 14 bytes
// The VRF and VXLAN names contain '-', which base32 never does, so none can collide.

const alphabet = "abcdefghijklmnopqrstuvwxyz234567";

function base32(value: bigint, chars: number): string {
  let out = "";
  for (let i = chars - 1; i >= 0; i--) out += alphabet[Number((value >> BigInt(i * 5)) & 31n)];
  return out;
}

export function hostVethName(vpc: bigint, attachment: number): string {
  return `kv${base32((vpc << 16n) | BigInt(attachment), 13)}`;
}

export function vrfDeviceName(vpc: bigint): string {
  return `kvrf-${base32(vpc, 10)}`;
}

export function vxlanDeviceName(vpc: bigint): string {
  return `kvx-${base32(vpc, 10)}`;
}

/** Inverse of vxlanDeviceName: the VPC of a kvrf VXLAN device, or undefined. */
export function parseVxlanDeviceName(name: string): bigint | undefined {
  if (!/^kvx-[a-z2-7]{10}$/.test(name)) return undefined;
  let v = 0n;
  for (const c of name.slice(4)) v = (v << 5n) | BigInt(alphabet.indexOf(c));
  return v;
}

/** Inverse of hostVethName, for GC: the IDs a kvrf host interface name encodes, or undefined. */
export function parseHostVethName(name: string): { vpc: bigint; attachment: number } | undefined {
  if (!/^kv[a-z2-7]{13}$/.test(name)) return undefined;
  let v = 0n;
  for (const c of name.slice(2)) v = (v << 5n) | BigInt(alphabet.indexOf(c));
  if (v >> 64n !== 0n) return undefined;
  return { vpc: v >> 16n, attachment: Number(v & 0xffffn) };
}
