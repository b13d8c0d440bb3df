// Writes status in the background, latest value per object, so a reconcile never waits for the
// API server: at 1,000 VRFs every remote-route change would otherwise hold a worker for a status
// round trip while gobgpd and the kernel sit idle. Coalesces (only the newest status of a key is
// written), retries failures with backoff, and one write per key is in flight at a time.
import type { Logger } from "pino";
import type { BGPVRFInstanceStatus } from "../shared/api-types.js";
import { WorkQueue } from "./queue.js";

export interface StatusSink {
  /** Queues `status` for `name`, replacing any not yet written. */
  set(name: string, status: BGPVRFInstanceStatus): void;
}

export class StatusWriter implements StatusSink {
  private readonly pending = new Map<string, BGPVRFInstanceStatus>();
  private readonly queue: WorkQueue;

  constructor(
    write: (name: string, status: BGPVRFInstanceStatus) => Promise<void>,
    opts: { workers: number; log: Logger; onResult?: (result: "success" | "error") => void },
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

  set(name: string, status: BGPVRFInstanceStatus): void {
    this.pending.set(name, status);
    this.queue.add(name);
  }

  get backlog(): number {
    return this.pending.size;
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  async stop(): Promise<void> {
    // Last values go out before shutdown, unless the API server is unreachable.
    await Promise.race([this.queue.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.queue.stop();
  }
}
