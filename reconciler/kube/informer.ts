// A restartable informer (list + watch + local cache) on a Watcher: kvrfd's own (kube-client.ts)
// or anything shaped like @kubernetes/client-node's Watch.
//
// client-node's own ListWatch stops for good on any error other than 410 or a timeout, and a
// restart resumes from the old resourceVersion without relisting, so objects deleted meanwhile
// would never be reported. This one never stops: every failure relists after a backoff (1 s
// doubling to 30 s), and the relist is diffed against the cache so vanished objects produce
// delete events. 410 Gone (HTTP or ERROR event) relists at once. Silent stalls are bounded three
// ways: each watch asks the server to close it after ~25 s, the watcher aborts a watch that
// carries no data for 30 s, and a watchdog relists when nothing at all (watch start, event, list)
// happened for `stallMs` (e.g. a list that never answers). A periodic full relist (`resyncMs`)
// repairs anything a watch may have missed and triggers a resync pass over every key.
import { monotonicMs } from "../../shared/clock.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { Watcher } from "./kube-client.js";
import { Backoff } from "../backoff.js";

export interface ListResult<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(old: T, obj: T): void;
  delete?(obj: T): void;
  /** After every successful (re)list: the cache is authoritative again. */
  resync?(): void;
}

export interface InformerOptions<T> {
  name: string;
  /** Watch path, e.g. /apis/kvrf.dev/v1alpha1/bgpvrfinstances. */
  path: string;
  list(signal: AbortSignal): Promise<ListResult<T>>;
  watch: Watcher;
  labelSelector?: string;
  fieldSelector?: string;
  resyncMs: number;
  stallMs: number;
  listTimeoutMs?: number;
  /** Delay before relisting after a failure; default 1 s doubling to 30 s. */
  backoff?: { baseMs: number; maxMs: number };
  log: Logger;
  onRestart?(reason: "resync" | "stall" | "error"): void;
  /** Whether an update changes what version() stands for; default: any new resourceVersion. */
  significant?(old: T, obj: T): boolean;
  /** Applied to every object before it is cached (e.g. withoutManagedFields). */
  transform?(obj: T): T;
}

/**
 * Drops metadata.managedFields: kvrfd never reads them, and objects written by server-side apply
 * (the CNI plugin's, one field manager per attachment) carry more of them than of anything else.
 */
export function withoutManagedFields<T>(obj: T): T {
  const m = (obj as { metadata?: { managedFields?: unknown } } | undefined)?.metadata;
  if (m?.managedFields !== undefined) delete m.managedFields;
  return obj;
}

interface Status {
  code?: number;
  message?: string;
}

class WatchEnded extends Error {
  constructor(
    readonly relist: boolean,
    readonly err?: unknown,
  ) {
    super(relist ? "watch ended: relist" : "watch ended");
  }
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { statusCode?: number; code?: number } | undefined;
  return typeof e?.statusCode === "number" ? e.statusCode : typeof e?.code === "number" ? e.code : undefined;
};

/** What the informer needs of an object. */
export interface Named {
  metadata?: { name?: string; resourceVersion?: string };
}

export class Informer<T extends Named> {
  private readonly cache = new Map<string, T>();
  private changes = 0;
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = "";
  private stopped = false;
  private stopSignal = new AbortController();
  private running: Promise<void> | undefined;
  private current: AbortController | undefined;
  private listAbort: AbortController | undefined;
  private needList = true;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private lastActivity = monotonicMs();
  private timers: NodeJS.Timeout[] = [];
  private readonly backoff: Backoff;

  constructor(private readonly opts: InformerOptions<T>) {
    this.backoff = new Backoff(opts.backoff ?? { baseMs: 1000, maxMs: 30_000 });
  }

  on(h: InformerHandlers<T>): void {
    this.handlers.push(h);
  }

  get(name: string): T | undefined {
    return this.cache.get(name);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  /** Changes whenever the cache does: lets callers reuse what they derived from list(). */
  version(): number {
    return this.changes;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Milliseconds since the informer last heard from the API server (or started a request). */
  idleMs(now = monotonicMs()): number {
    return now - this.lastActivity;
  }

  whenSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  start(): void {
    if (this.running !== undefined) return;
    this.stopped = false;
    this.stopSignal = new AbortController();
    this.lastActivity = monotonicMs();
    this.timers.push(
      setInterval(() => this.restart("resync", "periodic full resync"), this.opts.resyncMs).unref(),
      setInterval(() => {
        if (this.idleMs() > this.opts.stallMs) this.restart("stall", `no activity for ${Math.round(this.idleMs() / 1000)} s`);
      }, Math.max(50, Math.min(this.opts.stallMs / 4, 30_000))).unref(),
    );
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.current?.abort();
    this.listAbort?.abort();
    await this.running;
    this.running = undefined;
  }

  /** Drops the current list or watch and relists (stall, periodic resync). */
  restart(kind: "resync" | "stall", detail: string): void {
    if (this.stopped) return;
    this.opts.log[kind === "stall" ? "warn" : "debug"]({ informer: this.opts.name, reason: detail }, "informer relisting");
    this.opts.onRestart?.(kind);
    this.needList = true;
    this.lastActivity = monotonicMs();
    this.current?.abort();
    this.listAbort?.abort();
  }

  private touch(): void {
    this.lastActivity = monotonicMs();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.needList) await this.relist();
        await this.watchOnce();
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof WatchEnded) {
          if (err.relist) this.needList = true;
          if (err.err === undefined) continue;
        }
        this.needList = true;
        const cause = err instanceof WatchEnded ? err.err : err;
        const wait = this.backoff.next("informer");
        this.opts.onRestart?.("error");
        this.opts.log.warn({ informer: this.opts.name, err: errText(cause), retryMs: wait }, "informer failed; relisting after backoff");
        await sleep(wait, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
      }
    }
  }

  private async relist(): Promise<void> {
    const ac = new AbortController();
    this.listAbort = ac;
    const timeout = setTimeout(() => ac.abort(new Error("list timed out")), this.opts.listTimeoutMs ?? 60_000);
    this.touch();
    let res: ListResult<T>;
    try {
      res = await this.opts.list(ac.signal);
    } finally {
      clearTimeout(timeout);
      this.listAbort = undefined;
    }
    if (ac.signal.aborted) throw new Error(`list aborted: ${String(ac.signal.reason)}`);
    this.touch();
    const seen = new Set<string>();
    for (const item of res.items) {
      const obj = this.opts.transform?.(item) ?? item;
      const name = obj.metadata?.name;
      if (name === undefined) continue;
      seen.add(name);
      this.upsert(name, obj);
    }
    for (const [name, old] of this.cache) {
      if (!seen.has(name)) {
        this.cache.delete(name);
        this.changes++;
        for (const h of this.handlers) h.delete?.(old);
      }
    }
    this.resourceVersion = res.metadata?.resourceVersion ?? "";
    this.needList = false;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    for (const h of this.handlers) h.resync?.();
  }

  private upsert(name: string, obj: T): void {
    const old = this.cache.get(name);
    this.cache.set(name, obj);
    if (old === undefined) this.changes++;
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion && (this.opts.significant?.(old, obj) ?? true)) this.changes++;
    if (old === undefined) for (const h of this.handlers) h.add?.(obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) for (const h of this.handlers) h.update?.(old, obj);
  }

  private watchOnce(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (e: WatchEnded): void => {
        if (settled) return;
        settled = true;
        // A clean end with nothing wrong just rewatches from the last resourceVersion.
        if (!e.relist && e.err === undefined) resolve();
        else reject(e);
      };
      const params: Record<string, string | number | boolean | undefined> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 20 + Math.floor(Math.random() * 9),
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      };
      this.touch();
      const onEvent = (phase: string, obj: unknown): void => {
        this.touch();
        this.backoff.forget("informer");
        switch (phase) {
          case "ADDED":
          case "MODIFIED": {
            const o = this.opts.transform?.(obj as T) ?? (obj as T);
            const name = o.metadata?.name;
            if (name !== undefined) this.upsert(name, o);
            break;
          }
          case "DELETED": {
            const o = this.opts.transform?.(obj as T) ?? (obj as T);
            const name = o.metadata?.name;
            if (name !== undefined && this.cache.delete(name)) {
              this.changes++;
              for (const h of this.handlers) h.delete?.(o);
            }
            break;
          }
          case "BOOKMARK":
            break;
          case "ERROR": {
            const st = obj as Status;
            this.current?.abort();
            finish(new WatchEnded(true, st.code === 410 ? undefined : new Error(`watch error ${st.code ?? "?"}: ${st.message ?? ""}`)));
            return;
          }
        }
        const rv = (obj as Named).metadata?.resourceVersion;
        if (rv !== undefined && rv !== "") this.resourceVersion = rv;
      };
      const onDone = (err: unknown): void => {
        if (this.stopped || err === null || err === undefined) return finish(new WatchEnded(this.needList));
        if (statusOf(err) === 410) return finish(new WatchEnded(true));
        const name = (err as { name?: string }).name;
        if (name === "TimeoutError") return finish(new WatchEnded(this.needList));
        if (name === "AbortError" && this.needList) return finish(new WatchEnded(true));
        finish(new WatchEnded(true, err));
      };
      this.opts.watch.watch(this.opts.path, params, onEvent, onDone).then(
        (ac) => {
          this.current = ac;
          // restart() may have run before this watch had a controller to abort.
          if (settled || this.stopped || this.needList) ac.abort();
        },
        (err: unknown) => finish(new WatchEnded(true, err)),
      );
    });
  }
}

function errText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
