// Version-independent pieces of the Speaker ↔ gobgpd conversion: input checks (so that bad input
// fails here with a clear "invalid" instead of as a Go error text, a gobgpd crash, or worse, a
// truncated value on the wire), address, SID and MAC encoding, the SRv6 SID structure and the EVPN
// type-5 fields kvrf advertises.
import { canonicalMac } from "../../shared/router-mac.js";
import ipaddr from "ipaddr.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import {
  SpeakerError,
  srv6Behavior,
  type AddressFamily,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerFamily,
  type PeerSessionState,
  type RibFamily,
  type Vrf,
  type VxlanLocalPath,
} from "./speaker.js";

const u16 = 0xffff;
const u32 = 0xffffffff;

function invalid(message: string): SpeakerError {
  return new SpeakerError("invalid", message);
}

function isUint(n: number, max: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= max;
}

/**
 * SRv6 SID structure (RFC 9252 §3.2.1) of kvrf's attachment SIDs, whose layout is
 * `locator (L ≤ 64) | zero padding (64 − L) | vpc (48) | attachment (16)` (shared/srv6-sid.ts):
 * the function (vpc | attachment) always sits in the low 64 bits, so the structure says
 * locator block 32 + locator node 32 (the padded 64-bit locator part; the speaker does not know
 * L), function 64, no argument. No transposition: the whole SID travels in the TLV, and the
 * VPN label stays whatever GoBGP assigns to the VRF (0 without zebra). Received SIDs may be
 * transposed (srv6-transposition.ts); why kvrf does not transpose its own: docs/interop.md.
 */
export const sidStructure = {
  locatorBlockLength: 32,
  locatorNodeLength: 32,
  functionLength: 64,
  argumentLength: 0,
  transpositionLength: 0,
  transpositionOffset: 0,
} as const;

/** RFC 9252 type codes used as keys of the sub-TLV maps. */
export const srv6SidInformationSubTlv = 1;
export const srv6SidStructureSubSubTlv = 1;

export interface ParsedPrefix {
  family: AddressFamily;
  address: string;
  length: number;
}

const prefixMemo = new Map<string, ParsedPrefix>();

/** A canonical CIDR (host bits zero, canonical address text) or a SpeakerError "invalid". */
export function parsePrefix(cidr: string, field = "prefix"): ParsedPrefix {
  // Every path written is checked; the same prefixes come back (replays, re-adds), so good ones are remembered.
  const known = prefixMemo.get(cidr);
  if (known !== undefined) return { ...known };
  const parsed = parsePrefixOnce(cidr, field);
  if (prefixMemo.size >= 50_000) prefixMemo.clear();
  prefixMemo.set(cidr, parsed);
  return { ...parsed };
}

function parsePrefixOnce(cidr: string, field: string): ParsedPrefix {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let length: number;
  try {
    [addr, length] = ipaddr.parseCIDR(cidr);
  } catch {
    throw invalid(`${field}: "${cidr}" is not a CIDR prefix`);
  }
  const family: AddressFamily = addr.kind() === "ipv4" ? "ipv4" : "ipv6";
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  const address = ipaddr.fromByteArray(bytes).toString();
  if (`${address}/${length}` !== cidr) {
    throw invalid(`${field}: "${cidr}" is not canonical (want "${address}/${length}")`);
  }
  return { family, address, length };
}

export function formatPrefix(address: string, length: number): string {
  return `${canonicalIp(address) ?? address}/${length}`;
}

const ipMemo = new Map<string, string | undefined>();

/**
 * Canonical text of an IPv4 (dotted quad) or IPv6 address, or undefined when `text` is neither.
 * Every path gobgpd reports has a few (next hop, neighbor); ipaddr.js validates by throwing, which
 * showed up in kvrfd's profile, so answers are remembered and the family is picked by the text.
 */
export function canonicalIp(text: string): string | undefined {
  const known = ipMemo.get(text);
  if (known !== undefined || ipMemo.has(text)) return known;
  let out: string | undefined;
  if (text.includes(":")) out = ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text).toString() : undefined;
  else if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text) && ipaddr.IPv4.isValidFourPartDecimal(text)) out = ipaddr.IPv4.parse(text).toString();
  if (ipMemo.size >= 50_000) ipMemo.clear();
  ipMemo.set(text, out);
  return out;
}

/** An address as gobgpd reports it, or undefined for its spellings of "none" ("", 0.0.0.0, ::). */
export function reportedIp(text: string | undefined): string | undefined {
  if (text === undefined || text === "" || text === "0.0.0.0" || text === "::") return undefined;
  return canonicalIp(text);
}

function checkIpv4(text: string, field: string): void {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw invalid(`${field}: "${text}" is not a dotted-quad IPv4 address`);
}

/** A SpeakerError "invalid" unless `text` is an IPv4 or IPv6 address. */
export function checkAddress(text: string, field: string): void {
  if (canonicalIp(text) === undefined) throw invalid(`${field}: "${text}" is not an IP address`);
}

const sidMemo = new Map<string, Uint8Array>();

/** A SID (IPv6 address text) as the 16 bytes of the SRv6 SID Information sub-TLV. */
export function sidToBytes(sid: string, field = "sid"): Uint8Array {
  let bytes = sidMemo.get(sid);
  if (bytes === undefined) {
    if (!ipaddr.IPv6.isValid(sid)) throw invalid(`${field}: "${sid}" is not an IPv6 address`);
    bytes = Uint8Array.from(ipaddr.IPv6.parse(sid).toByteArray());
    if (sidMemo.size >= 50_000) sidMemo.clear();
    sidMemo.set(sid, bytes);
  }
  return bytes.slice();
}

/** The SID text of 16 SID bytes; undefined for anything else (an absent or malformed SID). */
export function sidFromBytes(bytes: Uint8Array): string | undefined {
  if (bytes.length !== 16) return undefined;
  return ipaddr.fromByteArray([...bytes]).toString();
}

/** Range checks for each RD/RT layout, so that nothing is truncated on the wire. */
export function checkAdminAssigned(v: AdminAssigned, field: string): void {
  switch (v.type) {
    case 0:
      if (!isUint(v.asn, u16)) throw invalid(`${field}: type 0 needs a 2-byte ASN, got ${v.asn}`);
      if (!isUint(v.assigned, u32)) throw invalid(`${field}: type 0 needs a 32-bit number, got ${v.assigned}`);
      return;
    case 1:
      checkIpv4(v.address, field);
      if (!isUint(v.assigned, u16)) throw invalid(`${field}: type 1 needs a 16-bit number, got ${v.assigned}`);
      return;
    case 2:
      if (!isUint(v.asn, u32)) throw invalid(`${field}: type 2 needs a 4-byte ASN, got ${v.asn}`);
      if (!isUint(v.assigned, u16)) throw invalid(`${field}: type 2 needs a 16-bit number, got ${v.assigned}`);
      return;
    default:
      throw invalid(`${field}: unknown layout ${JSON.stringify(v)}`);
  }
}

function adminAssignedKey(v: AdminAssigned): string {
  const admin = v.type === 1 ? ipaddr.IPv4.parse(v.address).toByteArray().map((b) => b.toString(16).padStart(2, "0")).join("") : v.asn.toString(16).padStart(8, "0");
  return `${v.type}:${admin}:${v.assigned.toString(16).padStart(8, "0")}`;
}

/**
 * Route targets in a canonical order without duplicates. gobgpd keeps import RTs in a map, so
 * ListVrf returns them in no particular order; callers compare sorted lists.
 */
export function sortRouteTargets(rts: readonly AdminAssigned[]): AdminAssigned[] {
  const byKey = new Map(rts.map((rt) => [adminAssignedKey(rt), rt] as const));
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as AdminAssigned);
}

export function checkGlobal(config: GlobalConfig): void {
  if (!isUint(config.asn, u32) || config.asn === 0) throw invalid(`asn: ${config.asn} is not an AS number (1 to 4294967295)`);
  // gobgpd 3.10 accepts an IPv6 router ID and breaks later; 4.x refuses it. Refuse it on both.
  checkIpv4(config.routerId, "routerId");
  if (!Number.isInteger(config.listenPort) || config.listenPort < -1 || config.listenPort > u16) {
    throw invalid(`listenPort: ${config.listenPort} is not a port (or -1 for no listener)`);
  }
  for (const a of config.listenAddresses ?? []) checkAddress(a, "listenAddresses");
}

export function checkVrf(vrf: Vrf): void {
  if (vrf.name === "") throw invalid("vrf name is empty");
  if (!isUint(vrf.id, u32)) throw invalid(`vrf ${vrf.name}: id ${vrf.id} is not a 32-bit unsigned integer`);
  checkAdminAssigned(vrf.rd, `vrf ${vrf.name} rd`);
  for (const rt of vrf.importRts) checkAdminAssigned(rt, `vrf ${vrf.name} import rt`);
  for (const rt of vrf.exportRts) checkAdminAssigned(rt, `vrf ${vrf.name} export rt`);
}

export function checkPeer(peer: PeerConfig): void {
  checkAddress(peer.address, "peer address");
  if (!isUint(peer.asn, u32) || peer.asn === 0) throw invalid(`peer ${peer.address}: asn ${peer.asn} is not an AS number`);
  if (peer.routeReflectorClusterId !== undefined) checkIpv4(peer.routeReflectorClusterId, `peer ${peer.address} routeReflectorClusterId`);
  if (peer.localAddress !== undefined) checkAddress(peer.localAddress, `peer ${peer.address} localAddress`);
  if (peer.remotePort !== undefined && (!isUint(peer.remotePort, u16) || peer.remotePort === 0)) {
    throw invalid(`peer ${peer.address}: remotePort ${peer.remotePort} is not a port`);
  }
  for (const [k, v] of [
    ["holdTimeSeconds", peer.holdTimeSeconds],
    ["keepaliveSeconds", peer.keepaliveSeconds],
  ] as const) {
    if (v !== undefined && !isUint(v, u16)) throw invalid(`peer ${peer.address}: ${k} ${v} is not a number of seconds`);
  }
  for (const f of peer.families) {
    if (!peerFamilies.some((x) => x.name === f)) throw invalid(`peer ${peer.address}: unknown family ${String(f)}`);
  }
  const gr = peer.gracefulRestart;
  if (gr !== undefined && (!Number.isInteger(gr.restartTimeSeconds) || gr.restartTimeSeconds < 1 || gr.restartTimeSeconds > 4095)) {
    throw invalid(`peer ${peer.address}: graceful restart time ${gr.restartTimeSeconds} is not 1 to 4095 seconds (12 bits, RFC 4724)`);
  }
}

const behaviors = new Set<number>(Object.values(srv6Behavior));

/** The largest VNI (24 bits, RFC 7348 §5). */
export const maxVni = 0xffffff;

/** Why `mac` (canonical) cannot be a router MAC (it becomes a neighbour's lladdr), or undefined. */
function routerMacFault(mac: string): string | undefined {
  if (mac === "00:00:00:00:00:00") return "is all zeros";
  // The I/G bit: the low-order bit of the first octet.
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) return "is a multicast address";
  return undefined;
}

/** Checks a router MAC and returns its canonical text. */
export function checkRouterMac(text: string, field: string): string {
  const mac = canonicalMac(text);
  if (mac === undefined) throw invalid(`${field}: "${text}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  const fault = routerMacFault(mac);
  if (fault !== undefined) throw invalid(`${field}: ${mac} ${fault}`);
  return mac;
}

/** A router MAC as a path reports it: its canonical text and, when it cannot be used, why. */
export function readRouterMac(text: string | undefined): { mac: string; problem?: string } {
  if (text === undefined) return { mac: "", problem: "no router MAC extended community" };
  const mac = canonicalMac(text);
  if (mac === undefined) return { mac: "", problem: `router MAC "${text}" is not a MAC address` };
  const fault = routerMacFault(mac);
  return fault === undefined ? { mac } : { mac, problem: `router MAC ${mac} ${fault}` };
}

function checkVni(path: VxlanLocalPath, where: string): void {
  if (!isUint(path.vni, maxVni) || path.vni === 0) throw invalid(`${where}: vni ${path.vni} is not a VNI (1 to ${maxVni})`);
}

/** Checks a local path and returns its parsed prefix. */
export function checkLocalPath(path: LocalPath): ParsedPrefix {
  if (path.vrf === "") throw invalid("local path: vrf name is empty");
  const prefix = parsePrefix(path.prefix, `local path ${path.vrf} prefix`);
  const where = `local path ${path.vrf} ${path.prefix}`;
  checkAddress(path.nextHop, `${where} nextHop`);
  switch (path.encap) {
    case "srv6":
      sidToBytes(path.sid, `${where} sid`);
      if (!behaviors.has(path.behavior)) throw invalid(`${where}: behavior ${path.behavior} is not one kvrf uses`);
      return prefix;
    case "vxlan":
      checkVni(path, where);
      checkRouterMac(path.routerMac, `${where} routerMac`);
      return prefix;
    default:
      throw invalid(`${where}: unknown encapsulation ${JSON.stringify((path as { encap?: unknown }).encap)}`);
  }
}

/** Checks a local path and its VRF for origination in the global table; returns the parsed prefix. */
export function checkLocalGlobalPath(vrf: Vrf, path: LocalPath): ParsedPrefix {
  const prefix = checkLocalPath(path);
  checkAdminAssigned(vrf.rd, `vrf ${vrf.name} rd`);
  for (const rt of vrf.exportRts) checkAdminAssigned(rt, `vrf ${vrf.name} export rt`);
  return prefix;
}

/** AFI/SAFI numbers (RFC 4760; IANA). */
export const afi = { ip: 1, ip6: 2, l2vpn: 25 } as const;
export const safi = { unicast: 1, evpn: 70, mplsVpn: 128 } as const;

/** The EVPN family, AFI/SAFI 25/70 (RFC 7432). */
export const evpnFamily = { afi: afi.l2vpn, safi: safi.evpn } as const;

/** BGP Tunnel Encapsulation type of VXLAN (RFC 9012 §4.1, IANA; RFC 8365 §5.1.3). */
export const tunnelTypeVxlan = 8;

/**
 * The type-5 NLRI fields kvrf sends as zero: ESI type 0 with 9 zero octets (single-homed; gobgpd
 * crashes on a missing ESI, FACTS §10), ethernet tag 0 and the gateway address of the prefix's
 * family (gobgpd 4.8 refuses an empty one and writes a 16-byte gateway into an IPv4 route as is).
 */
export function evpnZeroEsi(): { type: number; value: Uint8Array } {
  return { type: 0, value: new Uint8Array(9) };
}

export function evpnNoGateway(family: AddressFamily): string {
  return family === "ipv4" ? "0.0.0.0" : "::";
}

/**
 * What a type-5 route's NLRI and attributes say for VXLAN (RFC 9136 §4.4.1, interface-less: the
 * VNI and the router MAC, no overlay index). `problem` says why the route cannot be used as such;
 * withdrawals carry no attributes and are not judged.
 */
export function evpnInfoOf(
  nlri: { label: number; gwAddress: string; esi?: { type: number; value: Uint8Array } | undefined },
  attrs: { routerMac: string | undefined; tunnelTypes: readonly number[] },
  withdraw: boolean,
): { vni: number; routerMac: string; problem?: string } {
  const rmac = readRouterMac(attrs.routerMac);
  const out = { vni: nlri.label, routerMac: rmac.mac };
  if (withdraw) return out;
  const problems: string[] = [];
  if (!isUint(nlri.label, maxVni) || nlri.label === 0) problems.push(`label ${nlri.label} is not a VNI (1 to ${maxVni})`);
  if (rmac.problem !== undefined) problems.push(rmac.problem);
  // Without the encapsulation community the encapsulation is MPLS or configured (RFC 8365 §5.1.3).
  if (attrs.tunnelTypes.length > 0 && !attrs.tunnelTypes.includes(tunnelTypeVxlan)) {
    problems.push(`encapsulation ${attrs.tunnelTypes.join(",")} is not VXLAN (${tunnelTypeVxlan})`);
  }
  const gw = reportedIp(nlri.gwAddress);
  if (gw !== undefined) problems.push(`gateway address ${gw} (an overlay index) is not supported`);
  const esi = nlri.esi;
  if (esi !== undefined && (esi.type !== 0 || esi.value.some((b) => b !== 0))) problems.push("a non-zero ESI (an overlay index) is not supported");
  return problems.length === 0 ? out : { ...out, problem: problems.join("; ") };
}

export function unicastAfi(family: AddressFamily): number {
  return family === "ipv4" ? afi.ip : afi.ip6;
}

/** The family of an AFI number, or (unknown AFI) of the prefix text. */
export function familyOfAfi(n: number, prefix: string): AddressFamily {
  if (n === afi.ip) return "ipv4";
  if (n === afi.ip6) return "ipv6";
  return prefix.includes(":") ? "ipv6" : "ipv4";
}

/** The extended-community sub-type of a route target (RFC 4360 §4). */
export const routeTargetSubType = 2;

/** Peer families kvrf configures and the AFI/SAFI each one is. */
export const peerFamilies: readonly { name: PeerFamily; afi: number; safi: number }[] = [
  { name: "vpnv4", afi: afi.ip, safi: safi.mplsVpn },
  { name: "vpnv6", afi: afi.ip6, safi: safi.mplsVpn },
  { name: "l2vpn-evpn", afi: afi.l2vpn, safi: safi.evpn },
];

export function peerFamilyName(a: number, s: number): PeerFamily | undefined {
  return peerFamilies.find((f) => f.afi === a && f.safi === s)?.name;
}

export function unicastFamily(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.unicast };
}

export function vpnFamily(family: AddressFamily): { afi: number; safi: number } {
  return { afi: unicastAfi(family), safi: safi.mplsVpn };
}

/** The AFI/SAFI of a global table. */
export function ribFamily(family: RibFamily): { afi: number; safi: number } {
  return family === "evpn" ? { ...evpnFamily } : vpnFamily(family);
}

/** The AFI/SAFI a VRF view lists: unicast (VPN routes converted by gobgpd) or EVPN (as they are). */
export function vrfViewFamily(family: RibFamily): { afi: number; safi: number } {
  return family === "evpn" ? { ...evpnFamily } : unicastFamily(family);
}

// The session-state numbers are the same in both APIs (IDLE = 1 ... ESTABLISHED = 6).
const sessionStates: readonly PeerSessionState[] = ["unknown", "idle", "connect", "active", "opensent", "openconfirm", "established"];

export function sessionState(n: number): PeerSessionState {
  return sessionStates[n] ?? "unknown";
}
