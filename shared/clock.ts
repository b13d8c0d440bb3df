// Clocks. Deadlines and ages (route holds, a route's age against a gobgpd restart) use a monotonic
// clock: a wall clock that jumps (NTP stepping it, an operator setting it, a VM resumed) must not
// end a hold early or stretch it by the jump. It reads in milliseconds since the epoch at process
// start, so values stay comparable with Date.now() for logs, but never jump. Timestamps written to
// the API (conditions' lastTransitionTime) use the wall clock.
import { performance } from "node:perf_hooks";

export function monotonicMs(): number {
  return performance.timeOrigin + performance.now();
}
