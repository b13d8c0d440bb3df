// A rate-limited work queue of keys, after client-go's workqueue: a key waits in the queue at most
// once, is handed to at most one worker at a time (a key added while it is being processed runs
// again afterwards), and a failed key comes back after a per-key exponential backoff. Events only
// name keys; the reconcile reads a fresh snapshot, so coalescing many events into one run is safe.
//
// Two lanes: "high" for keys whose object changed, "low" for periodic and RIB-driven passes over
// every key, so that a burst of new objects is not stuck behind a full pass.
import { monotonicMs } from "../shared/clock.js";
import { Backoff, type BackoffOptions } from "./backoff.js";

export type Lane = "high" | "low";

export type ReconcileResult =
  /** Done; forget the key's failures. */
  | { kind: "done" }
  /** Run again after this delay without counting a failure (e.g. waiting for a hold to end). */
  | { kind: "requeue-after"; ms: number };

export interface QueueOptions {
  workers: number;
  backoff: BackoffOptions;
  /** Called for each key; throwing counts a failure and schedules a retry with backoff. */
  reconcile: (key: string) => Promise<ReconcileResult | void>;
  /** Observes every run: for metrics and logs. */
  onResult?: (key: string, result: "success" | "error" | "requeue", durationMs: number, err?: unknown) => void;
  now?: () => number;
}

export class WorkQueue {
  private readonly high: string[] = [];
  private readonly low: string[] = [];
  private readonly queued = new Map<string, Lane>();
  private readonly processing = new Set<string>();
  /** Keys added while processing, with the lane to re-add them in afterwards. */
  private readonly dirty = new Map<string, Lane>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Keys waiting out a failure backoff: full passes (low lane) leave them alone. */
  private readonly retrying = new Set<string>();
  private readonly backoff: Backoff;
  private active = 0;
  private activeLow = 0;
  private readonly runningLane = new Map<string, Lane>();
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: QueueOptions) {
    this.backoff = new Backoff(opts.backoff);
  }

  /** Queues `key` (no-op if already queued; a low-lane key is promoted by a high add). */
  add(key: string, lane: Lane = "high"): void {
    if (this.stopped) return;
    if (lane === "low" && this.retrying.has(key)) return;
    if (this.processing.has(key)) {
      if (this.dirty.get(key) !== "high") this.dirty.set(key, lane);
      return;
    }
    const at = this.queued.get(key);
    if (at === "high" || at === lane) return;
    if (at === "low") {
      const i = this.low.indexOf(key);
      if (i >= 0) this.low.splice(i, 1);
    }
    this.queued.set(key, lane);
    (lane === "high" ? this.high : this.low).push(key);
    this.pump();
  }

  /** Queues `key` after `ms` (a later call replaces an earlier pending one). */
  addAfter(key: string, ms: number, lane: Lane = "high"): void {
    if (this.stopped) return;
    const old = this.timers.get(key);
    if (old !== undefined) clearTimeout(old);
    this.retrying.delete(key);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.retrying.delete(key);
      this.add(key, lane);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  addAll(keys: Iterable<string>, lane: Lane): void {
    for (const k of keys) this.add(k, lane);
  }

  get depth(): number {
    return this.high.length + this.low.length;
  }

  get inFlight(): number {
    return this.active;
  }

  /** Keys waiting in the low lane plus low-lane keys running: whether a pass is still going on. */
  get lowPending(): number {
    return this.low.length + this.activeLow;
  }

  failures(key: string): number {
    return this.backoff.failuresOf(key);
  }

  /** Resolves when nothing is queued or running (pending retries do not count). */
  idle(): Promise<void> {
    if (this.depth === 0 && this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking work, drops pending retries and waits for running reconciles to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.retrying.clear();
    this.high.length = 0;
    this.low.length = 0;
    this.queued.clear();
    this.dirty.clear();
    await this.idle();
  }

  private take(): string | undefined {
    const key = this.high.shift() ?? this.low.shift();
    if (key !== undefined) {
      const lane = this.queued.get(key) ?? "high";
      this.queued.delete(key);
      this.runningLane.set(key, lane);
      if (lane === "low") this.activeLow++;
    }
    return key;
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.workers) {
      const key = this.take();
      if (key === undefined) break;
      this.active++;
      this.processing.add(key);
      void this.run(key);
    }
    if (this.depth === 0 && this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async run(key: string): Promise<void> {
    const now = this.opts.now ?? monotonicMs;
    const started = now();
    try {
      const result = await this.opts.reconcile(key);
      if (result?.kind === "requeue-after") {
        this.backoff.forget(key);
        this.opts.onResult?.(key, "requeue", now() - started);
        this.addAfter(key, result.ms, "low");
      } else {
        this.backoff.forget(key);
        this.opts.onResult?.(key, "success", now() - started);
      }
    } catch (err) {
      this.opts.onResult?.(key, "error", now() - started, err);
      if (!this.stopped) {
        this.addAfter(key, this.backoff.next(key), "high");
        this.retrying.add(key);
      }
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.runningLane.get(key) === "low") this.activeLow--;
      this.runningLane.delete(key);
      const again = this.dirty.get(key);
      if (again !== undefined) {
        this.dirty.delete(key);
        this.add(key, again);
      }
      this.pump();
    }
  }
}
