import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskGroup, withTasks } from "./task-group.js";

/** Unhandled rejections seen while a test runs (vitest would report them after the fact). */
const unhandled: unknown[] = [];
const record = (reason: unknown): void => void unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", record);
});
afterEach(() => {
  process.off("unhandledRejection", record);
});

describe("TaskGroup", () => {
  it("keeps a step that throws synchronously from becoming an unhandled rejection (issue #17)", async () => {
    // The shape of the bug: a step fails at once while its owner awaits something else.
    const err = await withTasks(async (tasks) => {
      const ipam = tasks.start("ipam", () => {
        throw new Error("plugin not found");
      });
      await nextTurn();
      await sleep(5);
      return ipam;
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("plugin not found");
    await sleep(5);
    expect(unhandled).toEqual([]);
  });

  it("does not let the owner go on until every step has settled", async () => {
    const events: string[] = [];
    await expect(
      withTasks(async (tasks) => {
        tasks.start("slow lease", async () => {
          await sleep(30);
          events.push("lease taken");
        }).catch(() => undefined);
        await tasks.start("fast failure", () => Promise.reject(new Error("kernel")));
      }),
    ).rejects.toThrow("kernel");
    events.push("unwind");
    expect(events).toEqual(["lease taken", "unwind"]);
  });

  it("reports the first failure in start order, whatever order they fail in", async () => {
    for (const [a, b] of [
      [1, 20],
      [20, 1],
    ] as const) {
      const err = await withTasks(async (tasks) => {
        void tasks.start("first", () => sleep(a).then(() => Promise.reject(new Error("first"))));
        void tasks.start("second", () => sleep(b).then(() => Promise.reject(new Error("second"))));
        await tasks.join();
      }).catch((e: unknown) => e);
      expect((err as Error).message).toBe("first");
    }
    expect(unhandled).toEqual([]);
  });

  it("settles steps started while it waits", async () => {
    const tasks = new TaskGroup();
    let late = false;
    void tasks.start("outer", async () => {
      await sleep(5);
      void tasks.start("inner", async () => {
        await sleep(10);
        late = true;
      });
    });
    await tasks.settle();
    expect(late).toBe(true);
  });

  it("fails a body that returned while a step it never awaited failed", async () => {
    await expect(
      withTasks(async (tasks) => {
        void tasks.start("forgotten", () => sleep(5).then(() => Promise.reject(new Error("forgotten"))));
        return "done";
      }),
    ).rejects.toThrow("forgotten");
  });

  it("for any schedule of steps: settles all before returning, reports the first started failure, leaves nothing unhandled", async () => {
    const step = fc.record({ delay: fc.integer({ min: 0, max: 4 }), outcome: fc.constantFrom("ok", "reject", "throw", "reject-non-error") });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), fc.integer({ min: 0, max: 3 }), async (steps, bodyDelay) => {
        unhandled.length = 0;
        const settled: number[] = [];
        let outcome: { ok: true } | { ok: false; err: unknown };
        try {
          await withTasks(async (tasks) => {
            steps.forEach((s, i) => {
              void tasks.start(`s${i}`, () => {
                if (s.outcome === "throw" && s.delay === 0) throw new Error(`s${i}`);
                return sleep(s.delay).then(() => {
                  settled.push(i);
                  if (s.outcome === "ok") return i;
                  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
                  if (s.outcome === "reject-non-error") return Promise.reject(`s${i}`);
                  throw new Error(`s${i}`);
                });
              });
            });
            await sleep(bodyDelay);
            await tasks.join();
          });
          outcome = { ok: true };
        } catch (err) {
          outcome = { ok: false, err };
        }
        const failing = steps.findIndex((s) => s.outcome !== "ok");
        const delayed = steps.filter((s) => !(s.outcome === "throw" && s.delay === 0)).length;
        expect(settled).toHaveLength(delayed);
        if (failing < 0) {
          expect(outcome.ok).toBe(true);
        } else {
          expect(outcome.ok).toBe(false);
          const err = (outcome as { err: unknown }).err;
          expect(err instanceof Error ? err.message : err).toBe(`s${failing}`);
        }
        await nextTurn();
        expect(unhandled).toEqual([]);
      }),
      { numRuns: 200, seed: 17 },
    );
  });
});
