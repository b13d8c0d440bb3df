// A node's router MAC (RFC 9135 §8.1): the inner destination MAC of VXLAN-encapsulated routed
// traffic toward the node, set on every VXLAN device the node decapsulates with and advertised in
// its EVPN type-5 routes. Derived from the node name, so the CNI plugin (which makes the device)
// and kvrfd (which advertises it) agree without asking each other, and a node keeps it across
// restarts and reboots. Locally administered, unicast.
import { createHash } from "node:crypto";

export function routerMac(nodeName: string): string {
  const b = createHash("sha256").update(`kvrf-router-mac/${nodeName}`).digest();
  return ["02", ...[...b.subarray(0, 5)].map((x) => x.toString(16).padStart(2, "0"))].join(":");
}

const macText = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * The canonical text ("aa:bb:cc:dd:ee:ff") of a 48-bit MAC written with colons, or undefined.
 * Stricter than gobgpd's net.ParseMAC, which also takes 8- and 20-byte addresses (and would put
 * them, cut, into an 8-byte extended community) and silently drops a MAC it cannot parse.
 */
export function canonicalMac(text: string): string | undefined {
  const lower = text.trim().toLowerCase();
  return macText.test(lower) ? lower : undefined;
}
