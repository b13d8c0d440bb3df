// A router that is no kvrf node (a gateway PE, another BGP implementation) joining the lab: its
// own namespace on the fabric bridge, a session with the lab's route reflector (the reflector's
// BGPInstance, patched as an operator would), and the fabric's routes between its SRv6 locator and
// the workers' (the lab's underlay has no routing protocol: every node gets static routes).
// Everything it makes is named kvrf-lab-*, so the lab's `down` removes it too.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { kubeClient, readState } from "./lab.js";
import { bgpInstances, fabricNetns, labNodes, nodeNetns, nsPrefix, workers, type LabSettings } from "./topology.js";

const exec = promisify(execFile);

async function ip(...args: string[]): Promise<string> {
  try {
    return (await exec("ip", args, { encoding: "utf8" })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`, { cause: err });
  }
}

export interface FabricMember {
  /** Namespace name; must start with the lab's prefix (kvrf-lab-) so `down` removes it. */
  netns: string;
  /**
   * IPv6 underlay address on fab0 (in fd00:ff::/64, not a lab node's). Without it fab0 has no
   * IPv6 at all (an IPv4-underlay member: FRR would take fab0's link-local address as a next hop).
   */
  address?: string;
  /** IPv4 underlay address on fab0 (in 198.51.100.0/24), if any. */
  address4?: string;
}

/**
 * Makes `m.netns` with `fab0` on the fabric bridge, its addresses, lo up, forwarding and SRv6
 * processing on. Refuses an address a lab node has.
 */
export async function joinFabric(m: FabricMember): Promise<void> {
  if (!m.netns.startsWith(nsPrefix)) throw new Error(`namespace ${m.netns} must start with ${nsPrefix} (the lab's down removes only those)`);
  if (m.address === undefined && m.address4 === undefined) throw new Error(`${m.netns}: a fabric member needs an address`);
  const taken = labNodes.find((n) => (m.address !== undefined && n.address === m.address) || (m.address4 !== undefined && n.address4 === m.address4));
  if (taken !== undefined) throw new Error(`address ${[m.address, m.address4].filter((a) => a !== undefined).join("/")} is node ${taken.name}'s`);
  const port = `p-${m.netns.slice(nsPrefix.length)}`.slice(0, 15);
  await ip("netns", "add", m.netns);
  await ip("-n", m.netns, "link", "set", "lo", "up");
  await ip("link", "add", "fab0", "netns", m.netns, "type", "veth", "peer", "name", port, "netns", fabricNetns);
  await ip("-n", fabricNetns, "link", "set", port, "master", "br0", "up");
  if (m.address !== undefined) await ip("-n", m.netns, "-6", "addr", "add", `${m.address}/64`, "dev", "fab0", "nodad");
  else await ip("netns", "exec", m.netns, "sysctl", "-qw", "net.ipv6.conf.fab0.disable_ipv6=1");
  if (m.address4 !== undefined) await ip("-n", m.netns, "addr", "add", `${m.address4}/24`, "dev", "fab0");
  await ip("-n", m.netns, "link", "set", "fab0", "up");
  await ip(
    "netns", "exec", m.netns, "sysctl", "-qw",
    "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.seg6_enabled=1",
    ...(m.address !== undefined ? ["net.ipv6.conf.fab0.seg6_enabled=1"] : []),
  );
}

/** Removes a member's namespace (its end of the veth goes with it). Idempotent. */
export async function leaveFabric(netns: string): Promise<void> {
  await ip("netns", "del", netns).catch(() => undefined);
}

/**
 * The fabric's routes for an SRv6 member: its locator via its address on every worker, and every
 * worker's locator via the worker's address in the member's namespace (as buildNode does between
 * workers).
 */
export async function routeLocators(m: FabricMember, locator: string): Promise<void> {
  if (m.address === undefined) throw new Error(`${m.netns} has no IPv6 underlay address for SRv6`);
  for (const w of workers) {
    await ip("-n", nodeNetns(w.name), "-6", "route", "replace", locator, "via", m.address);
    if (w.locator !== undefined) await ip("-n", m.netns, "-6", "route", "replace", w.locator, "via", w.address);
  }
}

/**
 * Adds a route-reflector client to the lab's reflector: its BGPInstance's peers (merge patch, field
 * manager kvrf-lab-test), with the lab's timers. kvrfd on the reflector applies it to gobgpd.
 */
export async function addReflectorClient(settings: LabSettings, address: string, asn = 65000): Promise<void> {
  const state = readState();
  if (state === undefined) throw new Error("the lab is not up");
  const rr = bgpInstances(settings).find((i) => (i["metadata"] as { name: string }).name === "route-reflector") as { spec: { peers: Record<string, unknown>[] } } | undefined;
  if (rr === undefined) throw new Error("the lab has no route-reflector BGPInstance");
  const peers = [...rr.spec.peers, { address, asn, routeReflectorClient: true, timers: { holdTime: 9, keepalive: 3 } }];
  await k8s.KubernetesObjectApi.makeApiClient(kubeClient(state)).patch(
    { apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name: "route-reflector" }, spec: { peers } },
    undefined,
    undefined,
    "kvrf-lab-test",
    undefined,
    k8s.PatchStrategy.MergePatch,
  );
}

/** A VRF device `name` bound to `table`, up, in a member's namespace. */
export async function addVrf(m: FabricMember, name: string, table: number): Promise<void> {
  await ip("-n", m.netns, "link", "add", name, "type", "vrf", "table", String(table));
  await ip("-n", m.netns, "link", "set", name, "up");
}

/** A host behind a gateway: its namespace, and its addresses on the link to the PE and beyond it. */
export interface GatewayHost {
  netns: string;
  /** On the link: the PE has 10.99.0.1/24 and fd99::1/64 there, the host these (.2). */
  link4: string;
  link6: string;
  /** On the host's lo: reached only through the PE's defaults. */
  far4: string;
  far6: string;
}

export const gatewayHost = (netns: string): GatewayHost => ({ netns, link4: "10.99.0.2", link6: "fd99::2", far4: "203.0.113.1", far6: "2001:db8:99::1" });

/**
 * The host behind a PE: `h.netns` with eth0, a veth whose other end (gw0) is enslaved to the PE's
 * VRF `vrf` (so the link's 10.99.0.0/24 and fd99::/64 are connected routes of the VRF), the far
 * addresses on lo, and defaults back to the PE.
 */
export async function addHostBehind(pe: FabricMember, vrf: string, h: GatewayHost): Promise<void> {
  const inPe = (...args: string[]): Promise<string> => ip("-n", pe.netns, ...args);
  const inHost = (...args: string[]): Promise<string> => ip("-n", h.netns, ...args);
  await ip("netns", "add", h.netns);
  await inHost("link", "set", "lo", "up");
  await ip("link", "add", "gw0", "netns", pe.netns, "type", "veth", "peer", "name", "eth0", "netns", h.netns);
  await inPe("link", "set", "gw0", "master", vrf);
  await inPe("addr", "add", "10.99.0.1/24", "dev", "gw0");
  await inPe("-6", "addr", "add", "fd99::1/64", "dev", "gw0", "nodad");
  await inPe("link", "set", "gw0", "up");
  await inHost("addr", "add", `${h.link4}/24`, "dev", "eth0");
  await inHost("-6", "addr", "add", `${h.link6}/64`, "dev", "eth0", "nodad");
  await inHost("addr", "add", `${h.far4}/32`, "dev", "lo");
  await inHost("-6", "addr", "add", `${h.far6}/128`, "dev", "lo");
  await inHost("link", "set", "eth0", "up");
  await inHost("route", "add", "default", "via", "10.99.0.1");
  await inHost("-6", "route", "add", "default", "via", "fd99::1");
}

/**
 * An EVPN L3 VNI for FRR's own data plane (FRR's "symmetric routing" layout): a VXLAN device
 * `vx<vni>` (nolearning, port 4789, local = the member's IPv4 VTEP) in a bridge `br<vni>` whose
 * MAC is the router MAC, the bridge enslaved to VRF `vrf`. zebra finds the VNI from the VXLAN
 * device, its VRF from the bridge (the SVI), and advertises the bridge's MAC as the router MAC.
 */
export async function addL3Vni(m: FabricMember, vrf: string, vni: number, routerMac: string): Promise<{ vxlan: string; bridge: string }> {
  if (m.address4 === undefined) throw new Error(`${m.netns} has no IPv4 VTEP (FRR 8.4's EVPN data plane takes IPv4 VTEPs only)`);
  const inM = (...args: string[]): Promise<string> => ip("-n", m.netns, ...args);
  const bridge = `br${vni}`;
  const vxlan = `vx${vni}`;
  await inM("link", "add", bridge, "address", routerMac, "type", "bridge");
  await inM("link", "set", bridge, "master", vrf);
  await inM("link", "add", vxlan, "type", "vxlan", "id", String(vni), "local", m.address4, "dstport", "4789", "nolearning");
  await inM("link", "set", vxlan, "master", bridge);
  await inM("link", "set", vxlan, "up");
  await inM("link", "set", bridge, "up");
  return { vxlan, bridge };
}

/** The parts of a gateway PE's frr.conf that differ between encapsulations (gatewayFrrConfig). */
export interface GatewayFrrParts {
  /** The VRF (a VRF device of that name) that holds the host behind the PE. */
  vrf: string;
  host: GatewayHost;
  /** The route reflector's address (the PE's one session, iBGP AS 65000, the lab's timers). */
  reflector: string;
  /** In the `vrf` block, besides the static defaults to the host (an L3 VNI). */
  vrfLines?: string[];
  /** Between the vrf block and `router bgp` (an SRv6 locator). */
  preamble?: string[];
  /** The default instance's lines after the session's remote-as and timers (its families). */
  sessionLines: string[];
  /** The VRF instance's lines after its IPv4 and IPv6 unicast families (an l2vpn evpn family). */
  vrfInstanceLines?: string[];
  /** Lines in each unicast family of the VRF instance, after `redistribute connected|static`. */
  vrfFamilyLines?: string[];
}

/**
 * frr.conf of a gateway PE (zebra + bgpd + staticd, docs/interop.md): static defaults to the host
 * in the VRF, the VRF's connected and static routes redistributed into its BGP instance (router ID
 * 10.255.0.50 in both instances), one session with the lab's reflector; the rest from `p`.
 */
export function gatewayFrrConfig(p: GatewayFrrParts): string {
  const vrfAf = (afi: "ipv4" | "ipv6"): string[] => [
    ` address-family ${afi} unicast`,
    "  redistribute connected",
    "  redistribute static",
    ...(p.vrfFamilyLines ?? []),
    " exit-address-family",
  ];
  return [
    "frr defaults datacenter",
    "hostname pe1",
    "log stdout informational",
    "!",
    `vrf ${p.vrf}`,
    ...(p.vrfLines ?? []),
    ` ip route 0.0.0.0/0 ${p.host.link4}`,
    ` ipv6 route ::/0 ${p.host.link6}`,
    "exit-vrf",
    "!",
    ...(p.preamble ?? []),
    "router bgp 65000",
    " bgp router-id 10.255.0.50",
    " no bgp default ipv4-unicast",
    ` neighbor ${p.reflector} remote-as 65000`,
    ` neighbor ${p.reflector} timers 3 9`,
    ...p.sessionLines,
    "!",
    `router bgp 65000 vrf ${p.vrf}`,
    " bgp router-id 10.255.0.50",
    ...vrfAf("ipv4"),
    ...vrfAf("ipv6"),
    ...(p.vrfInstanceLines ?? []),
    "!",
  ].join("\n");
}
