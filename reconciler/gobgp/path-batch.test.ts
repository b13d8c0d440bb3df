import { describe, expect, it } from "vitest";
import { PathBatcher } from "./path-batch.js";

describe("PathBatcher", () => {
  it("sends what callers submit at the same time in one request, in order; later ones wait for the next", async () => {
    const sent: string[][] = [];
    let release!: () => void;
    const b = new PathBatcher<string>(
      async (paths) => {
        sent.push(paths);
        if (sent.length === 1) await new Promise<void>((r) => (release = r));
      },
      1000,
      1,
    );
    const first = [b.submit(["a1", "a2"]), b.submit(["b1"])];
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([["a1", "a2", "b1"]]);
    // While the first request is in flight, the next ones gather.
    const second = [b.submit(["c1"]), b.submit(["d1", "d2"])];
    release();
    await Promise.all([...first, ...second]);
    expect(sent).toEqual([["a1", "a2", "b1"], ["c1", "d1", "d2"]]);
  });

  it("fails every caller of a failed request and goes on with the next", async () => {
    let calls = 0;
    const b = new PathBatcher<number>(async () => {
      if (++calls === 1) throw new Error("not started");
    });
    const r = await Promise.allSettled([b.submit([1]), b.submit([2])]);
    expect(r.map((x) => x.status)).toEqual(["rejected", "rejected"]);
    await expect(b.submit([3])).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });

  it("caps a request's size without splitting a caller's paths", async () => {
    const sent: number[][] = [];
    const b = new PathBatcher<number>(async (paths) => void sent.push(paths), 3);
    await Promise.all([b.submit([1, 2]), b.submit([3, 4]), b.submit([5]), b.submit([6, 7, 8, 9])]);
    expect(sent).toEqual([[1, 2], [3, 4, 5], [6, 7, 8, 9]]);
  });

  it("keeps up to maxInFlight requests in flight; the rest gather for the next free one", async () => {
    const sent: number[][] = [];
    const releases: (() => void)[] = [];
    const b = new PathBatcher<number>(
      async (paths) => {
        sent.push(paths);
        await new Promise<void>((r) => releases.push(r));
      },
      1000,
      2,
    );
    const done: number[] = [];
    const submit = (p: number[]) => b.submit(p).then(() => done.push(...p));
    const all = [submit([1])];
    await new Promise((r) => setImmediate(r));
    all.push(submit([2]));
    await new Promise((r) => setImmediate(r));
    all.push(submit([3]), submit([4]));
    await new Promise((r) => setImmediate(r));
    // Two in flight ([1], [2]); 3 and 4 wait together for a free slot.
    expect(sent).toEqual([[1], [2]]);
    releases[1]?.();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(done).toEqual([2]);
    expect(sent).toEqual([[1], [2], [3, 4]]);
    releases[0]?.();
    releases[2]?.();
    await Promise.all(all);
    expect(done.sort()).toEqual([1, 2, 3, 4]);
  });

  it("sends nothing for nothing", async () => {
    let calls = 0;
    const b = new PathBatcher<number>(async () => void calls++);
    await b.submit([]);
    expect(calls).toBe(0);
  });
});
