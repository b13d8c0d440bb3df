// Writes status in the background, latest value per object, so a reconcile never waits for the
// API server: at 1,000 VRFs every remote-route change would otherwise hold a worker for a status
// round trip while gobgpd and the kernel sit idle. Coalesces (only the newest status of a key is
// written), retries failures with backoff, and one write per key is in flight at a time.
//
// Under load it also holds statuses back: while `busy()` (reconciles are waiting), a new status
// waits until the burst is worked off or `maxHoldMs` passed, whichever comes first. A burst of new
// objects otherwise costs two writes each (the first status, then the one with the remote routes
// a moment later) on top of the creations, on an API server that is busy accepting them.
import { monotonicMs } from "../../shared/clock.js";
import type { Logger } from "pino";
import type { BGPVRFInstanceStatus } from "../../shared/api-types.js";
import { WorkQueue } from "../queue.js";

export interface StatusSink {
  /** Queues `status` for `name`, replacing any not yet written. */
  set(name: string, status: BGPVRFInstanceStatus): void;
}

export interface StatusWriterOptions {
  workers: number;
  log: Logger;
  onResult?: (result: "success" | "error") => void;
  /** Whether to hold new statuses back (other work is waiting); default never. */
  busy?: () => boolean;
  /** Longest a status is held while busy; default 5 s. */
  maxHoldMs?: number;
  /** How often held statuses are looked at; default 100 ms. */
  checkMs?: number;
  now?: () => number;
}

export class StatusWriter implements StatusSink {
  private readonly pending = new Map<string, BGPVRFInstanceStatus>();
  /** Keys held back while busy, with when their hold began. */
  private readonly held = new Map<string, number>();
  private readonly queue: WorkQueue;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    write: (name: string, status: BGPVRFInstanceStatus) => Promise<void>,
    private readonly opts: StatusWriterOptions,
  ) {
    this.queue = new WorkQueue({
      workers: opts.workers,
      backoff: { baseMs: 500, maxMs: 30_000 },
      reconcile: async (name) => {
        const status = this.pending.get(name);
        if (status === undefined) return;
        this.pending.delete(name);
        try {
          await write(name, status);
        } catch (err) {
          // Keep it unless a newer one arrived meanwhile; the queue retries with backoff.
          if (!this.pending.has(name)) this.pending.set(name, status);
          throw err;
        }
      },
      onResult: (name, result, _ms, err) => {
        if (result === "error") opts.log.warn({ key: name, err: err instanceof Error ? err.message : JSON.stringify(err) }, "status write failed; retrying");
        if (result !== "requeue") opts.onResult?.(result);
      },
    });
  }

  private now(): number {
    return (this.opts.now ?? monotonicMs)();
  }

  set(name: string, status: BGPVRFInstanceStatus): void {
    this.pending.set(name, status);
    if (this.held.has(name)) return;
    if (this.stopped || this.opts.busy?.() !== true) {
      this.queue.add(name);
      return;
    }
    this.held.set(name, this.now());
    this.timer ??= setInterval(() => this.release(false), this.opts.checkMs ?? 100).unref();
  }

  /** Queues held keys: all once not busy (or when forced), else those held longest. */
  private release(all: boolean): void {
    const everything = all || this.opts.busy?.() !== true;
    const limit = this.now() - (this.opts.maxHoldMs ?? 5000);
    for (const [name, since] of this.held) {
      if (!everything && since > limit) continue;
      this.held.delete(name);
      this.queue.add(name);
    }
    if (this.held.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Statuses not written yet (held or queued). */
  get backlog(): number {
    return this.pending.size;
  }

  /** Statuses held back right now. */
  get holding(): number {
    return this.held.size;
  }

  /** Resolves when nothing is queued or being written (held statuses are released first). */
  idle(): Promise<void> {
    this.release(true);
    return this.queue.idle();
  }

  async stop(): Promise<void> {
    // Last values go out before shutdown, unless the API server is unreachable.
    this.stopped = true;
    this.release(true);
    await Promise.race([this.queue.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.queue.stop();
  }
}
