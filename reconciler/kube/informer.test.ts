import { pino } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Informer, withoutManagedFields, type ListResult } from "./informer.js";

interface Obj {
  metadata: { name: string; resourceVersion: string };
}

const o = (name: string, rv: number): Obj => ({ metadata: { name, resourceVersion: String(rv) } });

/** A Watch whose streams the test drives: push events, end them, or never answer. */
class FakeWatch {
  calls: { params: Record<string, unknown>; cb: (phase: string, obj: unknown) => void; done: (err: unknown) => void; aborted: boolean }[] = [];

  watch(
    _path: string,
    params: Record<string, string | number | boolean | undefined>,
    cb: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const ac = new AbortController();
    const call = { params, cb, done, aborted: false };
    this.calls.push(call);
    ac.signal.addEventListener("abort", () => {
      if (call.aborted) return;
      call.aborted = true;
      done(Object.assign(new Error("aborted"), { name: "AbortError" }));
    });
    return Promise.resolve(ac);
  }

  last(): FakeWatch["calls"][number] {
    const c = this.calls.at(-1);
    if (c === undefined) throw new Error("no watch yet");
    return c;
  }
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

describe("Informer", () => {
  const log = pino({ level: "silent" });
  let inf: Informer<Obj> | undefined;
  afterEach(async () => inf?.stop());

  function make(lists: (() => ListResult<Obj> | Promise<ListResult<Obj>>)[], opts: { stallMs?: number } = {}) {
    const w = new FakeWatch();
    const events: string[] = [];
    let n = 0;
    inf = new Informer<Obj>({
      name: "t",
      path: "/x",
      watch: w,
      list: async () => {
        const f = lists[Math.min(n++, lists.length - 1)];
        if (f === undefined) throw new Error("no list");
        return f();
      },
      resyncMs: 60_000,
      stallMs: opts.stallMs ?? 60_000,
      backoff: { baseMs: 10, maxMs: 20 },
      log,
    });
    inf.on({
      add: (x) => events.push(`add ${x.metadata.name}`),
      update: (_a, x) => events.push(`update ${x.metadata.name}@${x.metadata.resourceVersion}`),
      delete: (x) => events.push(`delete ${x.metadata.name}`),
      resync: () => events.push("resync"),
    });
    inf.start();
    return { w, events, lists: () => n };
  }

  it("lists, then watches from the list's resourceVersion and applies events", async () => {
    const { w, events } = make([() => ({ items: [o("a", 1)], metadata: { resourceVersion: "5" } })]);
    await inf?.whenSynced();
    await until("watch", () => w.calls.length === 1);
    expect(w.last().params["resourceVersion"]).toBe("5");
    w.last().cb("ADDED", o("b", 6));
    w.last().cb("MODIFIED", o("a", 7));
    w.last().cb("DELETED", o("b", 8));
    expect(events).toEqual(["add a", "resync", "add b", "update a@7", "delete b"]);
    // A clean end (server timeout) rewatches from the last event's resourceVersion without relisting.
    w.last().done(null);
    await until("rewatch", () => w.calls.length === 2);
    expect(w.last().params["resourceVersion"]).toBe("8");
  });

  it("relists on 410 Gone and reports objects that vanished meanwhile as deleted", async () => {
    const { w, events } = make([
      () => ({ items: [o("a", 1), o("b", 1)], metadata: { resourceVersion: "5" } }),
      () => ({ items: [o("a", 9)], metadata: { resourceVersion: "20" } }),
    ]);
    await until("watch", () => w.calls.length === 1);
    w.last().cb("ERROR", { code: 410, message: "too old resource version" });
    await until("rewatch", () => w.calls.length === 2);
    expect(events).toEqual(["add a", "add b", "resync", "update a@9", "delete b", "resync"]);
    expect(w.last().params["resourceVersion"]).toBe("20");
  });

  it("keeps going after errors that would stop client-node's informer", async () => {
    const { w, lists } = make([
      () => {
        throw Object.assign(new Error("storage is (re)initializing"), { code: 429 });
      },
      () => ({ items: [], metadata: { resourceVersion: "1" } }),
    ]);
    await until("watch after a failed list", () => w.calls.length === 1);
    w.last().done(Object.assign(new Error("Internal Server Error"), { statusCode: 500 }));
    await until("relist after a watch error", () => lists() === 3 && w.calls.length === 2);
  });

  it("relists when a watch goes silent", async () => {
    const { w, lists } = make([() => ({ items: [], metadata: { resourceVersion: "1" } })], { stallMs: 100 });
    await until("watch", () => w.calls.length === 1);
    await until("stall detected", () => lists() >= 2 && w.calls.length >= 2, 2000);
    expect(w.calls[0]?.aborted).toBe(true);
  });

  it("caches listed and watched objects through its transform (managedFields dropped)", async () => {
    const w = new FakeWatch();
    const mf = [{ manager: "kvrf-cni/c1/eth0", operation: "Apply" }];
    const withMf = (name: string, rv: number) => ({ metadata: { name, resourceVersion: String(rv), managedFields: mf } });
    const seen: unknown[] = [];
    const i = new Informer<Obj & { metadata: { managedFields?: unknown } }>({
      name: "t",
      path: "/x",
      watch: w,
      list: () => Promise.resolve({ items: [withMf("a", 1)], metadata: { resourceVersion: "1" } }),
      resyncMs: 60_000,
      stallMs: 60_000,
      log,
      transform: withoutManagedFields,
    });
    inf = i;
    i.on({ add: (x) => seen.push(x), update: (_o, x) => seen.push(x) });
    i.start();
    await until("watch", () => w.calls.length === 1);
    w.last().cb("ADDED", withMf("b", 2));
    w.last().cb("MODIFIED", withMf("a", 3));
    expect(i.get("a")).toEqual({ metadata: { name: "a", resourceVersion: "3" } });
    expect(i.get("b")).toEqual({ metadata: { name: "b", resourceVersion: "2" } });
    expect(seen.every((x) => !Object.hasOwn((x as { metadata: object }).metadata, "managedFields"))).toBe(true);
    expect(seen).toHaveLength(3);
  });
});
