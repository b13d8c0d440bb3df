// Pure planner for the speaker itself: global config (StartBgp) and peers.
import type { GlobalConfig, PeerConfig, PeerStatus } from "../gobgp/speaker.js";

export type GlobalAction =
  | { op: "start"; global: GlobalConfig }
  /** ASN, router ID or listener changed: GoBGP cannot change these live, and a restart loses every VRF and peer. */
  | { op: "restart"; global: GlobalConfig; why: string }
  | { op: "stop" };

export function sameGlobal(desired: GlobalConfig, observed: GlobalConfig): string | undefined {
  if (desired.asn !== observed.asn) return `ASN ${observed.asn} → ${desired.asn}`;
  if (desired.routerId !== observed.routerId) return `router ID ${observed.routerId} → ${desired.routerId}`;
  if (desired.listenPort !== observed.listenPort) return `listen port ${observed.listenPort} → ${desired.listenPort}`;
  const want = [...(desired.listenAddresses ?? [])].sort().join(",");
  const have = [...(observed.listenAddresses ?? [])].sort().join(",");
  if (want !== "" && want !== have) return `listen addresses ${have} → ${want}`;
  return undefined;
}

export function planGlobal(desired: GlobalConfig | undefined, observed: GlobalConfig | undefined): GlobalAction | undefined {
  if (desired === undefined) return observed === undefined ? undefined : { op: "stop" };
  if (observed === undefined) return { op: "start", global: desired };
  const why = sameGlobal(desired, observed);
  return why === undefined ? undefined : { op: "restart", global: desired, why };
}

export type PeerAction = { op: "add-peer"; peer: PeerConfig } | { op: "update-peer"; peer: PeerConfig } | { op: "delete-peer"; address: string };

/** A stable text of everything we configure on a peer, to know whether it changed since we applied it. */
export function peerFingerprint(p: PeerConfig): string {
  return JSON.stringify([
    p.address,
    p.asn,
    p.password ?? "",
    p.routeReflectorClient ?? false,
    p.routeReflectorClusterId ?? "",
    p.holdTimeSeconds ?? 0,
    p.keepaliveSeconds ?? 0,
    p.localAddress ?? "",
    p.remotePort ?? 0,
    [...p.families].sort(),
    p.gracefulRestart?.restartTimeSeconds ?? 0,
  ]);
}

/**
 * Whether an observed peer differs from the desired one, judged on the fields the speaker reports
 * (a field it leaves out is not evidence of a difference: an update resets the BGP session, so we
 * must not issue one on a guess, e.g. after kvrfd restarts).
 */
export function peerDiffers(want: PeerConfig, have: PeerStatus): boolean {
  if (want.asn !== have.asn) return true;
  if ((want.routeReflectorClient ?? false) !== (have.routeReflectorClient ?? false)) return true;
  if (have.password !== undefined && have.password !== "" && (want.password ?? "") !== have.password) return true;
  if (have.holdTimeSeconds !== undefined && have.holdTimeSeconds !== 0 && want.holdTimeSeconds !== undefined && want.holdTimeSeconds !== have.holdTimeSeconds) {
    return true;
  }
  if (have.families.length > 0 && [...have.families].sort().join() !== [...want.families].sort().join()) return true;
  // gobgpd reports the graceful-restart config it runs with: on, off, or another restart time.
  if ((want.gracefulRestart === undefined) !== (have.gracefulRestart === undefined)) return true;
  if (want.gracefulRestart !== undefined && have.gracefulRestart !== undefined && want.gracefulRestart.restartTimeSeconds !== have.gracefulRestart.restartTimeSeconds) return true;
  return false;
}

/**
 * Peer actions. `applied` holds the fingerprint of what this kvrfd applied in the current speaker
 * session; without one we compare on the observed fields only.
 */
export function planPeers(desired: readonly PeerConfig[], observed: readonly PeerStatus[], applied: ReadonlyMap<string, string>): PeerAction[] {
  const have = new Map(observed.map((p) => [p.address, p]));
  const want = new Map(desired.map((p) => [p.address, p]));
  const actions: PeerAction[] = [];
  for (const address of have.keys()) if (!want.has(address)) actions.push({ op: "delete-peer", address });
  for (const [address, p] of want) {
    const h = have.get(address);
    if (h === undefined) {
      actions.push({ op: "add-peer", peer: p });
      continue;
    }
    const fp = applied.get(address);
    const changed = fp !== undefined ? fp !== peerFingerprint(p) : peerDiffers(p, h);
    if (changed) actions.push({ op: "update-peer", peer: p });
  }
  return actions;
}
