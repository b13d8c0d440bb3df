import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";
import { WorkQueue } from "./queue.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("Backoff", () => {
  it("doubles per failure up to the cap and forgets on success", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1000 }, () => 0.5);
    expect([b.next("k"), b.next("k"), b.next("k"), b.next("k"), b.next("k")]).toEqual([100, 200, 400, 800, 1000]);
    b.forget("k");
    expect(b.next("k")).toBe(100);
  });
});

describe("WorkQueue", () => {
  it("coalesces adds of a queued key and never runs one key twice at once", async () => {
    const running = new Set<string>();
    const runs: string[] = [];
    let overlap = false;
    const gate = deferred();
    const q = new WorkQueue({
      workers: 2,
      backoff: { baseMs: 10, maxMs: 100 },
      reconcile: async (key) => {
        if (running.has(key)) overlap = true;
        running.add(key);
        runs.push(key);
        if ((key === "a" && runs.length === 1) || key === "c") await gate.promise;
        running.delete(key);
      },
    });
    q.add("a");
    q.add("c"); // both workers busy from here on
    q.add("a"); // while running: marked dirty, runs once more afterwards
    q.add("a");
    q.add("b"); // queued: further adds coalesce
    q.add("b");
    await sleep(5);
    gate.resolve();
    await q.idle();
    expect(overlap).toBe(false);
    expect(runs.filter((k) => k === "a")).toHaveLength(2);
    expect(runs.filter((k) => k === "b")).toHaveLength(1);
  });

  it("retries a failing key with growing delays, then forgets its failures", async () => {
    const times: number[] = [];
    let n = 0;
    const q = new WorkQueue({
      workers: 1,
      backoff: { baseMs: 20, maxMs: 1000 },
      reconcile: async () => {
        times.push(Date.now());
        if (++n < 4) throw new Error("not yet");
      },
    });
    q.add("k");
    for (let i = 0; i < 100 && n < 4; i++) await sleep(20);
    expect(n).toBe(4);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
    expect(gaps[1]).toBeGreaterThan((gaps[0] ?? 0) * 1.3);
    expect(gaps[2]).toBeGreaterThan((gaps[1] ?? 0) * 1.3);
    expect(q.failures("k")).toBe(0);
  });

  it("runs high-lane keys before a pass over everything, and passes leave keys in backoff alone", async () => {
    const runs: string[] = [];
    const gate = deferred();
    let failOnce = true;
    const q = new WorkQueue({
      workers: 1,
      backoff: { baseMs: 200, maxMs: 1000 },
      reconcile: async (key) => {
        runs.push(key);
        if (key === "block") await gate.promise;
        if (key === "bad" && failOnce) {
          failOnce = false;
          throw new Error("x");
        }
      },
    });
    q.add("bad");
    await q.idle();
    q.add("block");
    q.addAll(["p1", "p2", "bad"], "low");
    q.add("new", "high");
    gate.resolve();
    await q.idle();
    expect(runs).toEqual(["bad", "block", "new", "p1", "p2"]);
  });

  it("counts a pass (low lane) as pending until its last key has run", async () => {
    const gate = deferred();
    const q = new WorkQueue({
      workers: 1,
      backoff: { baseMs: 10, maxMs: 10 },
      reconcile: async (key) => {
        if (key === "p2") await gate.promise;
      },
    });
    q.addAll(["p1", "p2"], "low");
    await sleep(5);
    expect(q.lowPending).toBe(1); // p2 running
    gate.resolve();
    await q.idle();
    expect(q.lowPending).toBe(0);
  });

  it("stop waits for running reconciles and drops the rest", async () => {
    const gate = deferred();
    const runs: string[] = [];
    const q = new WorkQueue({
      workers: 1,
      backoff: { baseMs: 10, maxMs: 10 },
      reconcile: async (key) => {
        runs.push(key);
        await gate.promise;
      },
    });
    q.add("a");
    q.add("b");
    const stopped = q.stop();
    gate.resolve();
    await stopped;
    expect(runs).toEqual(["a"]);
  });
});
