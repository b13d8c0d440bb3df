// A node's hold on its VPCs' claims: the route target (RouteTargetClaim) and, with VXLAN, the VNI
// (VNIClaim). The holders of a claim are nodes, not attachments: a node holds the claim while it has at least one attachment of the VPC, so only
// the first ADD of a VPC on a node and the removal of its last attachment there talk to the claim.
//
// The per-VPC node lock (dataplane/lock.ts) makes those decisions race-free. Under it:
//   - ADD reads the marker `<stateDir>/claims/<vpc>` (the route targets and VNIs this node holds
//     for the VPC); for each one not in it, ADD claims (one server-side apply each, concurrently)
//     and then records them. Also under the lock, ADD's kernel work makes the VPC count as in use (the veth
//     with its IPv6 rule or VRF membership, dataplane/attachment.ts prepare).
//   - DEL, an ADD's undo and GC, after removing kernel state, check whether the VPC is still in use
//     on the node (releaseVpcIfUnused); when it is not, they release this node's holds on every
//     claim labelled with the VPC and only then remove the marker. A release that fails (API
//     down) leaves the marker and fails the operation, so its retry (or GC) releases again.
// So a claim is held whenever an attachment of its VPC exists on some node, and a node's hold
// goes with its last attachment. The marker records the boot it was written in: after a reboot
// (kernel state gone, a state directory on disk kept) it counts as absent and ADD claims again
// (idempotent), so a marker can never stand for a hold that was released.
import { readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../shared/atomic-write.js";
import path from "node:path";
import { claim, claimKey, getBgpVrfInstance, listClaims, releaseClaim, type ClaimKind, type VrfIdentity } from "./kube/objects.js";
import type { KubeClient } from "./kube/client.js";
import type { Logger } from "./log.js";

interface Marker {
  boot: string;
  /** Claimed values (claimKey: a route target as is, a VNI as "vni:N"). */
  routeTargets: string[];
}

let boot: string | undefined;

export function bootId(): string {
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

/** The claims this node holds for the VPC (claimKey form), as its marker records them (this boot only). */
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
  writeFileAtomic(markerPath(stateDir, vpcHex), JSON.stringify({ boot: bootId(), routeTargets: [...routeTargets].sort() } satisfies Marker));
}

/** What a VPC claims for an attachment of `id`: its route target, and its VNI with VXLAN. */
export function claimsOf(id: VrfIdentity): { kind: ClaimKind; value: string }[] {
  return [{ kind: "routeTarget", value: id.rt }, ...(id.vxlan !== undefined ? [{ kind: "vni" as const, value: String(id.vxlan.vni) }] : [])];
}

/**
 * Makes sure this node holds the VPC's claims (claimsOf). The caller holds the VPC lock. Resolves
 * true when it had to claim (API requests), false when the marker says it holds them all (then
 * `client` is not even asked for). Claims made before one failed stay recorded, so the undo's
 * release (which finds claims by the VPC's label anyway) gives them back.
 */
export async function holdRouteTarget(client: () => Promise<KubeClient>, stateDir: string, id: VrfIdentity): Promise<boolean> {
  const held = heldRouteTargets(stateDir, id.vpcHex);
  const wanted = claimsOf(id).filter((c) => !held.has(claimKey(c.kind, c.value)));
  if (wanted.length === 0) return false;
  const c = await client();
  const results = await Promise.allSettled(wanted.map((w) => claim(c, w.kind, w.value, id).then(() => held.add(claimKey(w.kind, w.value)))));
  if (results.some((r) => r.status === "fulfilled")) writeMarker(stateDir, id.vpcHex, held);
  for (const r of results) if (r.status === "rejected") throw r.reason;
  return true;
}

/**
 * Releases this node's holds on the VPC's claims (route targets and VNIs). The caller holds the VPC lock and has found no
 * attachment of the VPC left in the node's kernel. Claims are found by the VPC's label, not from
 * the marker or the config's ASN: a marker can be lost (reboot, crash right after a claim) and the
 * ASN may have changed since ADD, and a hold must never be left behind. Entries of the VPC still
 * in the node's BGPVRFInstance (kernel state lost in a reboot, not yet removed by DEL or GC) are
 * still advertised, so they keep the hold; the DEL or GC that removes the last one releases it.
 * `objectGone`: the caller has just seen the node's BGPVRFInstance of the VPC deleted or absent
 * (a DEL whose withdrawal removed its last entry), so it is not read again: with the VPC unused
 * in the kernel, no ADD can have published into it since. Returns the route targets released,
 * (claimKey form), or undefined when the hold stays.
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
  for (const found of await listClaims(client, vpcHex)) {
    if (!(found.claim.spec?.holders ?? []).some((h) => h.node === nodeName)) continue;
    await releaseClaim(client, found.kind, found.value, nodeName, found.claim);
    released.push(claimKey(found.kind, found.value));
  }
  rmSync(markerPath(stateDir, vpcHex), { force: true });
  if (released.length > 0) log.info({ claims: released }, "released the node's claims: last attachment of the VPC on this node");
  return released;
}
