import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { BGPVRFInstanceStatus } from "../../shared/api-types.js";
import { StatusWriter } from "./status-writer.js";

const st = (n: number): BGPVRFInstanceStatus => ({ observedGeneration: n });

describe("StatusWriter", () => {
  it("writes only the newest status of a key and retries a failed write", async () => {
    const written: [string, number | undefined][] = [];
    let failures = 1;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = new StatusWriter(
      async (name, s) => {
        if (name === "slow") await gate;
        if (name === "flaky" && failures-- > 0) throw new Error("apiserver away");
        written.push([name, s.observedGeneration]);
      },
      { workers: 2, log: pino({ level: "silent" }) },
    );
    w.set("slow", st(1));
    w.set("a", st(1));
    w.set("a", st(2)); // replaces 1 if not yet written
    w.set("flaky", st(7));
    w.set("slow", st(2)); // arrives while 1 is being written: written afterwards, once
    release();
    await w.idle();
    await new Promise((r) => setTimeout(r, 700));
    await w.idle();
    expect(written.filter(([n]) => n === "slow")).toEqual([
      ["slow", 1],
      ["slow", 2],
    ]);
    expect(written.filter(([n]) => n === "a").at(-1)).toEqual(["a", 2]);
    expect(written.filter(([n]) => n === "flaky")).toEqual([["flaky", 7]]);
    expect(w.backlog).toBe(0);
    await w.stop();
  });

  it("holds statuses back while busy and writes each key's newest once the burst is over", async () => {
    const written: [string, number | undefined][] = [];
    let busy = true;
    const w = new StatusWriter(
      (name, s) => {
        written.push([name, s.observedGeneration]);
        return Promise.resolve();
      },
      { workers: 4, log: pino({ level: "silent" }), busy: () => busy, maxHoldMs: 10_000, checkMs: 10 },
    );
    // A burst: first statuses (no remote routes yet), then the ones with routes.
    for (const k of ["a", "b", "c"]) w.set(k, st(1));
    for (const k of ["a", "b", "c"]) w.set(k, st(2));
    await new Promise((r) => setTimeout(r, 60));
    expect(written).toEqual([]);
    expect(w.holding).toBe(3);
    busy = false;
    await new Promise((r) => setTimeout(r, 60));
    await w.idle();
    expect(written.sort()).toEqual([
      ["a", 2],
      ["b", 2],
      ["c", 2],
    ]);
    // Not busy: written at once.
    w.set("d", st(1));
    await w.idle();
    expect(written.at(-1)).toEqual(["d", 1]);
    await w.stop();
  });

  it("holds no status longer than maxHoldMs, and writes held ones on stop", async () => {
    const written: string[] = [];
    let now = 1000;
    const w = new StatusWriter(
      (name) => {
        written.push(name);
        return Promise.resolve();
      },
      { workers: 1, log: pino({ level: "silent" }), busy: () => true, maxHoldMs: 500, checkMs: 5, now: () => now },
    );
    w.set("old", st(1));
    now += 400;
    w.set("new", st(1));
    await new Promise((r) => setTimeout(r, 30));
    expect(written).toEqual([]);
    now += 200; // "old" has waited 600 ms, "new" 200 ms
    await new Promise((r) => setTimeout(r, 30));
    expect(written).toEqual(["old"]);
    expect(w.holding).toBe(1);
    await w.stop();
    expect(written).toEqual(["old", "new"]);
  });
});
