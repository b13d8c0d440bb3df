// The lab's route reflector as FRR configuration: frr.conf rendered from the speaker configuration
// kvrfd would give its own gobgpd for the route reflector's BGPInstance (desiredSpeaker of
// topology.ts bgpInstances(settings)), so the gobgpd and the FRR reflector come from one source.
// Pure; golden files in testdata/ pin the text per lab setting (frr-reflector.test.ts).
// FRR differences that matter here are in docs/interop.md (FRR as the lab's route reflector).
import { desiredSpeaker, type BGPInstance, type DesiredSpeaker } from "../../reconciler/bgp-instance/bgp-instance.js";
import type { PeerConfig, PeerFamily } from "../../reconciler/gobgp/speaker.js";
import { bgpInstances, labNodes, underlayAddress, type LabNode, type LabSettings } from "./topology.js";

/** FRR's `address-family` name of each BGP family kvrf's speakers carry. */
const frrAddressFamily: Record<PeerFamily, string> = {
  vpnv4: "ipv4 vpn",
  vpnv6: "ipv6 vpn",
  "l2vpn-evpn": "l2vpn evpn",
};

/** Order of the address-family blocks (as `show running-config` prints them). */
const familyOrder: PeerFamily[] = ["vpnv4", "vpnv6", "l2vpn-evpn"];

export class FrrConfigError extends Error {
  override readonly name = "FrrConfigError";
}

export interface FrrReflectorOptions {
  /** FRR's hostname (the lab node's name). */
  hostname: string;
}

/** The one value every peer has for `pick`, or an error naming the peers that differ. */
function uniform<T>(peers: readonly PeerConfig[], what: string, pick: (p: PeerConfig) => T): T | undefined {
  const values = new Map<string, T>();
  for (const p of peers) values.set(JSON.stringify(pick(p) ?? null), pick(p));
  if (values.size > 1) {
    throw new FrrConfigError(`FRR takes one ${what} for all neighbors, but the peers differ: ${peers.map((p) => `${p.address} ${JSON.stringify(pick(p) ?? null)}`).join(", ")}`);
  }
  return [...values.values()][0];
}

/**
 * frr.conf for a route reflector (bgpd + zebra) that configures the same sessions as `speaker`:
 * its ASN, router ID and cluster ID, each peer with its timers, port, source address and password,
 * graceful restart, and per family `activate` and `route-reflector-client`. Refuses what it
 * cannot express in FRR (a listen port or listen addresses: those are bgpd's command line).
 */
export function frrReflectorConfig(speaker: DesiredSpeaker, opts: FrrReflectorOptions): string {
  const { global, peers } = speaker;
  if (global.listenPort !== 179) throw new FrrConfigError(`listen port ${global.listenPort}: the FRR reflector listens on 179 only (bgpd -p)`);
  if (global.listenAddresses !== undefined && global.listenAddresses.length > 0) {
    throw new FrrConfigError(`listen addresses ${global.listenAddresses.join(", ")}: not supported by the FRR reflector (bgpd -l)`);
  }
  if (peers.length === 0) throw new FrrConfigError("the route reflector has no peers");
  const clients = peers.filter((p) => p.routeReflectorClient === true);
  const clusterId = uniform(clients, "cluster ID", (p) => p.routeReflectorClusterId);
  const gr = uniform(peers, "graceful restart time", (p) => p.gracefulRestart?.restartTimeSeconds);

  const lines: string[] = [
    "frr defaults datacenter",
    `hostname ${opts.hostname}`,
    "log stdout informational",
    "!",
    `router bgp ${global.asn}`,
    ` bgp router-id ${global.routerId}`,
    ...(clusterId !== undefined ? [` bgp cluster-id ${clusterId}`] : []),
    // FRR would otherwise activate IPv4 unicast with every neighbor, a family kvrf's speakers lack.
    " no bgp default ipv4-unicast",
  ];
  const ebgp = peers.filter((p) => p.asn !== global.asn);
  // An eBGP spine (docs/fabric.md): no policy needed to pass routes on (the traditional profile's
  // default), and next hops unchanged per family below.
  if (ebgp.length > 0) lines.push(" no bgp ebgp-requires-policy");
  if (gr !== undefined) {
    // RFC 4724 with RFC 8538 (kvrf's gobgpd sets the N bit, convert-common.ts): FRR as helper keeps
    // a restarting worker's routes until its End-of-RIB, and is a restarting speaker itself.
    lines.push(" bgp graceful-restart", ` bgp graceful-restart restart-time ${gr}`, " bgp graceful-restart notification");
  }
  for (const p of peers) {
    if (!Number.isInteger(p.asn) || p.asn < 1 || p.asn > 0xffffffff) throw new FrrConfigError(`peer ${p.address}: ASN ${p.asn} is not 1 to 4294967295`);
    lines.push(` neighbor ${p.address} remote-as ${p.asn === global.asn ? "internal" : p.asn}`);
    if (p.remotePort !== undefined) lines.push(` neighbor ${p.address} port ${p.remotePort}`);
    if (p.localAddress !== undefined) lines.push(` neighbor ${p.address} update-source ${p.localAddress}`);
    if (p.password !== undefined) {
      // FRR's config parser splits on white space: a password with one would be cut short.
      if (/\s/.test(p.password) || p.password === "") throw new FrrConfigError(`peer ${p.address}: the password is empty or contains white space, which frr.conf cannot carry`);
      lines.push(` neighbor ${p.address} password ${p.password}`);
    }
    if (p.address.includes(":") && p.families.includes("vpnv4")) {
      // SRv6's VPNv4 routes carry IPv6 next hops (RFC 8950). Unless the session negotiates the
      // extended next-hop capability, FRR re-advertises them with its own IPv4 address instead:
      // seen in the lab (10.10.12.2/32 via 198.51.100.1 on iad), a next hop no worker can use.
      lines.push(` neighbor ${p.address} capability extended-nexthop`);
    }
    if (p.keepaliveSeconds !== undefined || p.holdTimeSeconds !== undefined) {
      // FRR sets both at once; gobgpd's defaults stand in for the one not given (30 s, 90 s).
      lines.push(` neighbor ${p.address} timers ${p.keepaliveSeconds ?? 30} ${p.holdTimeSeconds ?? 90}`);
    }
  }
  for (const family of familyOrder) {
    const members = peers.filter((p) => p.families.includes(family));
    if (members.length === 0) continue;
    lines.push(" !", ` address-family ${frrAddressFamily[family]}`);
    for (const p of members) {
      lines.push(`  neighbor ${p.address} activate`);
      if (p.routeReflectorClient === true) lines.push(`  neighbor ${p.address} route-reflector-client`);
      // Towards an eBGP worker the next hop stays the originating worker's: its VTEP (VXLAN), the
      // owner of its SIDs (SRv6; kvrfd checks that, reconciler/vrf/trust.ts).
      if (p.asn !== global.asn) lines.push(`  neighbor ${p.address} attribute-unchanged next-hop`);
    }
    lines.push(" exit-address-family");
  }
  lines.push("exit", "!", "");
  return lines.join("\n");
}

/** The lab's route reflector node and its BGPInstance (topology.ts bgpInstances). */
export function reflectorInstance(s: LabSettings): { node: LabNode; instance: BGPInstance } {
  const node = labNodes.find((n) => n.role === "route-reflector");
  const instance = (bgpInstances(s) as unknown as BGPInstance[]).find((i) => i.spec.nodeSelector?.matchLabels?.["kvrf.dev/role"] === "route-reflector");
  if (node === undefined || instance === undefined) throw new FrrConfigError("the lab has no route reflector");
  return { node, instance };
}

/**
 * The lab's FRR route reflector configuration under `s`: the speaker configuration kvrfd would
 * derive from the reflector's BGPInstance on the reflector's node (its InternalIP the underlay
 * address), rendered for FRR. The lab sets no passwords; a peer with one is refused, not dropped.
 */
export async function labReflectorConfig(s: LabSettings): Promise<string> {
  const { node, instance } = reflectorInstance(s);
  const speaker = await desiredSpeaker(instance, [{ type: "InternalIP", address: underlayAddress(node, s) }], async () => undefined);
  if (speaker.skippedPeers.length > 0) throw new FrrConfigError(`route reflector peers left out: ${speaker.skippedPeers.join("; ")}`);
  // Session policies (peers' vpcs, exportRoutes Pods) are gobgpd routing policy; nothing renders them for FRR.
  if (speaker.sessionPolicy !== undefined) throw new FrrConfigError("peers with vpcs or exportRoutes Pods (session policies) are not rendered for FRR");
  return frrReflectorConfig(speaker, { hostname: node.name });
}
