// A node's hold on its VPCs' route-target claims. The holders of a RouteTargetClaim are nodes, not
// attachments: a node holds the claim while it has at least one attachment of the VPC, so only
// the first ADD of a VPC on a node and the removal of its last attachment there talk to the claim.
//
// The per-VPC node lock (dataplane/lock.ts) makes those decisions race-free. Under it:
//   - ADD reads the marker `<stateDir>/claims/<vpc>` (the route targets this node holds for the
//     VPC); when the route target is not in it, ADD claims (one server-side apply) and then
//     records it. Also under the lock, ADD's kernel work makes the VPC count as in use (the veth
//     with its IPv6 rule or VRF membership, dataplane/attachment.ts prepare).
//   - DEL, an ADD's undo and GC, after removing kernel state, check whether the VPC is still in use
//     on the node (releaseVpcIfUnused); when it is not, they release this node's holds on every
//     claim labelled with the VPC and only then remove the marker. A release that fails (API
//     down) leaves the marker and fails the operation, so its retry (or GC) releases again.
// So a claim is held whenever an attachment of its VPC exists on some node, and a node's hold
// goes with its last attachment. The marker records the boot it was written in: after a reboot
// (kernel state gone, a state directory on disk kept) it counts as absent and ADD claims again
// (idempotent), so a marker can never stand for a hold that was released.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { getBgpVrfInstance, claimRouteTarget, listClaims, releaseRouteTarget, type VrfIdentity } from "./kube/objects.js";
import type { KubeClient } from "./kube/client.js";
import type { Logger } from "./log.js";

interface Marker {
  boot: string;
  routeTargets: string[];
}

let boot: string | undefined;

function bootId(): string {
  if (boot === undefined) {
    try {
      boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      boot = "";
    }
  }
  return boot;
}

export function markerPath(stateDir: string, vpcHex: string): string {
  return path.join(stateDir, "claims", vpcHex);
}

/** The route targets this node holds for the VPC, as its marker records them (this boot only). */
export function heldRouteTargets(stateDir: string, vpcHex: string): Set<string> {
  try {
    const m = JSON.parse(readFileSync(markerPath(stateDir, vpcHex), "utf8")) as Partial<Marker>;
    if (m.boot !== bootId() || !Array.isArray(m.routeTargets)) return new Set();
    return new Set(m.routeTargets.filter((rt): rt is string => typeof rt === "string"));
  } catch {
    return new Set();
  }
}

function writeMarker(stateDir: string, vpcHex: string, routeTargets: Set<string>): void {
  const file = markerPath(stateDir, vpcHex);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ boot: bootId(), routeTargets: [...routeTargets].sort() } satisfies Marker));
  renameSync(tmp, file);
}

/**
 * Makes sure this node holds the claim of the VPC's route target. The caller holds the VPC lock.
 * Resolves true when it had to claim (an API request), false when the marker says it holds it
 * (then `client` is not even asked for).
 */
export async function holdRouteTarget(client: () => Promise<KubeClient>, stateDir: string, id: VrfIdentity): Promise<boolean> {
  const held = heldRouteTargets(stateDir, id.vpcHex);
  if (held.has(id.rt)) return false;
  await claimRouteTarget(await client(), id);
  held.add(id.rt);
  writeMarker(stateDir, id.vpcHex, held);
  return true;
}

/**
 * Releases this node's holds on the VPC's claims. The caller holds the VPC lock and has found no
 * attachment of the VPC left in the node's kernel. Claims are found by the VPC's label, not from
 * the marker or the config's ASN: a marker can be lost (reboot, crash right after a claim) and the
 * ASN may have changed since ADD, and a hold must never be left behind. Entries of the VPC still
 * in the node's BGPVRFInstance (kernel state lost in a reboot, not yet removed by DEL or GC) are
 * still advertised, so they keep the hold; the DEL or GC that removes the last one releases it.
 * `objectGone`: the caller has just seen the node's BGPVRFInstance of the VPC deleted or absent
 * (a DEL whose withdrawal removed its last entry), so it is not read again: with the VPC unused
 * in the kernel, no ADD can have published into it since. Returns the route targets released,
 * or undefined when the hold stays.
 */
export async function releaseRouteTargets(
  client: KubeClient,
  stateDir: string,
  nodeName: string,
  vpcHex: string,
  log: Logger,
  objectGone = false,
): Promise<string[] | undefined> {
  const bvi = objectGone ? undefined : await getBgpVrfInstance(client, nodeName, vpcHex);
  if (bvi !== undefined && bvi.metadata.deletionTimestamp === undefined && (bvi.spec.attachments ?? []).length > 0) {
    log.info({ entries: bvi.spec.attachments?.length }, "kept the route-target hold: the node's BGPVRFInstance still has entries of the VPC");
    return undefined;
  }
  const released: string[] = [];
  for (const claim of await listClaims(client, vpcHex)) {
    const rt = claim.spec?.routeTarget;
    if (rt === undefined || !(claim.spec?.holders ?? []).some((h) => h.node === nodeName)) continue;
    await releaseRouteTarget(client, rt, nodeName, claim);
    released.push(rt);
  }
  rmSync(markerPath(stateDir, vpcHex), { force: true });
  if (released.length > 0) log.info({ routeTargets: released }, "released the node's route-target hold: last attachment of the VPC on this node");
  return released;
}
