// Sends the path changes of concurrent callers to gobgpd together. Reconciles of different VRFs run
// at the same time; each wants a path or two added. gobgpd serves API calls one at a time in its
// main loop, so one AddPathStream request carrying all of them costs about what one AddPath does.
// A batch is sent as soon as the event loop is free (no timer): when nothing else is waiting it
// leaves at once, and while one batch is in flight the next one gathers everything that arrives.
// A failed batch fails every caller in it (each retries): inputs were checked by each caller
// before they were queued, so what fails a batch is gobgpd itself (not started, gone).

interface Entry<P> {
  paths: readonly P[];
  resolve(): void;
  reject(err: unknown): void;
}

export class PathBatcher<P> {
  private readonly pending: Entry<P>[] = [];
  private draining = false;

  constructor(
    /** Sends one batch (all paths in one request, in order). */
    private readonly send: (paths: P[]) => Promise<void>,
    private readonly maxPaths = 1000,
  ) {}

  /** Resolves once the batch carrying `paths` has been accepted by gobgpd. */
  submit(paths: readonly P[]): Promise<void> {
    if (paths.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ paths, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch: Entry<P>[] = [];
        let n = 0;
        while (this.pending.length > 0 && (batch.length === 0 || n + (this.pending[0]?.paths.length ?? 0) <= this.maxPaths)) {
          const e = this.pending.shift() as Entry<P>;
          batch.push(e);
          n += e.paths.length;
        }
        try {
          await this.send(batch.flatMap((e) => e.paths));
          for (const e of batch) e.resolve();
        } catch (err) {
          for (const e of batch) e.reject(err);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}

/** A client stream of one message. */
export async function* once<T>(x: T): AsyncGenerator<T> {
  yield x;
}
