import { pino } from "pino";
import { describe, expect, it } from "vitest";
import type { BGPVRFInstanceStatus } from "../shared/api-types.js";
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
});
