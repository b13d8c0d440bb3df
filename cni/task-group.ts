// Concurrent steps of one operation, none of which can fail unobserved. A promise that rejects
// while its owner awaits something else is an unhandled rejection, and Node ends the process on
// the spot: no answer on stdout, no undo (issue #17: IPAM failed while ADD awaited its kernel
// work). Every concurrent step goes through a group instead:
//   - `start` runs the step at once and marks its rejection handled before anything else can run;
//     the step's promise is returned for the caller to await as usual;
//   - `withTasks` returns or throws only once every step its body started has settled, so the
//     undo that follows a failure sees every step's effects (a step still running could otherwise
//     finish after the unwind, e.g. an IPAM lease taken after its undo ran).
// The failure reported is the first in start order, not the first in time: the same faults give
// the same answer whatever order they happen in.

const handled = (): void => undefined;

interface Step {
  name: string;
  done: Promise<PromiseSettledResult<unknown>>;
}

export class TaskGroup {
  private readonly steps: Step[] = [];

  /**
   * Starts `fn` now. A synchronous throw becomes a rejection, and the rejection is marked handled
   * at once: await the returned promise (it is `fn`'s own) to get its value or its error.
   */
  start<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = Promise.resolve(fn());
    } catch (err) {
      // Kept as thrown, Error or not: CniError.from makes the answer of it.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      p = Promise.reject(err);
    }
    p.catch(handled);
    this.steps.push({
      name,
      done: p.then(
        (value) => ({ status: "fulfilled", value }),
        (reason: unknown) => ({ status: "rejected", reason }),
      ),
    });
    return p;
  }

  /** Waits until every step started so far (and any they start meanwhile) has settled. */
  async settle(): Promise<PromiseSettledResult<unknown>[]> {
    let seen = 0;
    const results: PromiseSettledResult<unknown>[] = [];
    while (seen < this.steps.length) {
      const batch = this.steps.slice(seen);
      seen = this.steps.length;
      results.push(...(await Promise.all(batch.map((s) => s.done))));
    }
    return results;
  }

  /** Waits for every step; then throws the first failure in start order, if any. */
  async join(): Promise<void> {
    const results = await this.settle();
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }
}

/**
 * Runs `body` with a task group and settles everything it started before returning or throwing:
 * when `body` throws, its error is rethrown once every step has settled; when it returns, steps it
 * started but never awaited still settle, and the first of them that failed is thrown.
 */
export async function withTasks<T>(body: (tasks: TaskGroup) => Promise<T>): Promise<T> {
  const tasks = new TaskGroup();
  let value: T;
  try {
    value = await body(tasks);
  } catch (err) {
    await tasks.settle();
    throw err;
  }
  await tasks.join();
  return value;
}
