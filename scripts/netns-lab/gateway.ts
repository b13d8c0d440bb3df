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
  /** IPv6 underlay address on fab0 (in fd00:ff::/64, not a lab node's). */
  address: string;
  /** IPv4 underlay address on fab0 (in 198.51.100.0/24), if any. */
  address4?: string;
}

/**
 * Makes `m.netns` with `fab0` on the fabric bridge, its addresses, lo up, forwarding and SRv6
 * processing on. Refuses an address a lab node has.
 */
export async function joinFabric(m: FabricMember): Promise<void> {
  if (!m.netns.startsWith(nsPrefix)) throw new Error(`namespace ${m.netns} must start with ${nsPrefix} (the lab's down removes only those)`);
  const taken = labNodes.find((n) => n.address === m.address || n.address4 === m.address4);
  if (taken !== undefined) throw new Error(`address ${m.address}${m.address4 !== undefined ? `/${m.address4}` : ""} is node ${taken.name}'s`);
  const port = `p-${m.netns.slice(nsPrefix.length)}`.slice(0, 15);
  await ip("netns", "add", m.netns);
  await ip("-n", m.netns, "link", "set", "lo", "up");
  await ip("link", "add", "fab0", "netns", m.netns, "type", "veth", "peer", "name", port, "netns", fabricNetns);
  await ip("-n", fabricNetns, "link", "set", port, "master", "br0", "up");
  await ip("-n", m.netns, "-6", "addr", "add", `${m.address}/64`, "dev", "fab0", "nodad");
  if (m.address4 !== undefined) await ip("-n", m.netns, "addr", "add", `${m.address4}/24`, "dev", "fab0");
  await ip("-n", m.netns, "link", "set", "fab0", "up");
  await ip(
    "netns", "exec", m.netns, "sysctl", "-qw",
    "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.seg6_enabled=1", "net.ipv6.conf.fab0.seg6_enabled=1",
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
