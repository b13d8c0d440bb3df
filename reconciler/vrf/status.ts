// BGPVRFInstance status: conditions Ready, VRFConfigured and RoutesProgrammed with reasons, the
// generation they describe, and prefix counts. Pure: built from a reconcile's outcome and the
// previous status (which keeps lastTransitionTime stable while a condition does not change).
import type { BGPVRFInstanceStatus, Condition } from "../../shared/api-types.js";
import { compareText } from "../../shared/order.js";

export type ConditionType = "Ready" | "VRFConfigured" | "RoutesProgrammed";

export interface Verdict {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export interface VrfOutcome {
  generation: number | undefined;
  vrf: Verdict;
  routes: Verdict;
  localPrefixes: number;
  remotePrefixes: number;
}

export const ok = (reason: string, message: string): Verdict => ({ status: "True", reason, message });
export const failed = (reason: string, message: string): Verdict => ({ status: "False", reason, message });
export const unknown = (reason: string, message: string): Verdict => ({ status: "Unknown", reason, message });

function condition(type: ConditionType, v: Verdict, generation: number | undefined, prev: readonly Condition[], now: string): Condition {
  const old = prev.find((c) => c.type === type);
  const c: Condition = { type, status: v.status, reason: v.reason, message: v.message.slice(0, 1024) };
  if (generation !== undefined) c.observedGeneration = generation;
  c.lastTransitionTime = old !== undefined && old.status === v.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now;
  return c;
}

/** Ready is True when both parts are; otherwise it carries the first part that is not. */
export function readyVerdict(o: VrfOutcome): Verdict {
  if (o.vrf.status !== "True") return { ...o.vrf, status: o.vrf.status };
  if (o.routes.status !== "True") return { ...o.routes, status: o.routes.status };
  return ok("Ready", `${o.localPrefixes} local and ${o.remotePrefixes} remote prefixes`);
}

export function buildStatus(prev: BGPVRFInstanceStatus | undefined, o: VrfOutcome, now: Date): BGPVRFInstanceStatus {
  const t = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const p = prev?.conditions ?? [];
  const s: BGPVRFInstanceStatus = {
    localPrefixes: o.localPrefixes,
    remotePrefixes: o.remotePrefixes,
    conditions: [
      condition("Ready", readyVerdict(o), o.generation, p, t),
      condition("VRFConfigured", o.vrf, o.generation, p, t),
      condition("RoutesProgrammed", o.routes, o.generation, p, t),
    ],
  };
  if (o.generation !== undefined) s.observedGeneration = o.generation;
  return s;
}

/** Equal for the purpose of writing: timestamps aside. */
export function sameStatus(a: BGPVRFInstanceStatus | undefined, b: BGPVRFInstanceStatus): boolean {
  if (a === undefined) return false;
  const norm = (s: BGPVRFInstanceStatus): string =>
    JSON.stringify([
      s.observedGeneration ?? null,
      s.localPrefixes ?? null,
      s.remotePrefixes ?? null,
      [...(s.conditions ?? [])]
        .sort((x, y) => compareText(x.type, y.type))
        .map((c) => [c.type, c.status, c.reason ?? "", c.message ?? "", c.observedGeneration ?? null]),
    ]);
  return norm(a) === norm(b);
}
