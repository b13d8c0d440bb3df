// Sends the path changes of concurrent callers to gobgpd together. Reconciles of different VRFs run
// at the same time; each wants a path or two added. gobgpd serves API calls one at a time in its
// main loop, so one AddPathStream request carrying all of them costs about what one AddPath does.
// A batch is sent as soon as the event loop is free (no timer): when nothing else is waiting it
// leaves at once, and while batches are in flight the next one gathers everything that arrives.
// Up to `maxInFlight` batches are in flight, so gobgpd always has the next one queued instead of
// idling while a response travels back and kvrfd's busy event loop gets to it: with one, a
// reconcile waited ~20 ms for its path at 1,000 VRFs (measured), longer than for its AddVrf.
// Order between batches in flight is not kept, and need not be: a key is reconciled by one worker
// at a time and waits for its batch, so one VRF's paths are never in two batches at once.
// A failed batch fails every caller in it (each retries): inputs were checked by each caller
// before they were queued, so what fails a batch is gobgpd itself (not started, gone).

interface Entry<P> {
  paths: readonly P[];
  resolve(): void;
  reject(err: unknown): void;
}

export class PathBatcher<P> {
  private readonly pending: Entry<P>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    /** Sends one batch (all paths in one request, in order). */
    private readonly send: (paths: P[]) => Promise<void>,
    private readonly maxPaths = 1000,
    private readonly maxInFlight = 4,
  ) {}

  /** Resolves once the batch carrying `paths` has been accepted by gobgpd. */
  submit(paths: readonly P[]): Promise<void> {
    if (paths.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ paths, resolve, reject });
      this.schedule();
    });
  }

  /** Sends the gathered paths once the current turn of the event loop is over. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.sendNext();
    });
  }

  private sendNext(): void {
    if (this.inFlight >= this.maxInFlight || this.pending.length === 0) return;
    const batch: Entry<P>[] = [];
    let n = 0;
    while (this.pending.length > 0 && (batch.length === 0 || n + (this.pending[0]?.paths.length ?? 0) <= this.maxPaths)) {
      const e = this.pending.shift() as Entry<P>;
      batch.push(e);
      n += e.paths.length;
    }
    this.inFlight++;
    this.send(batch.flatMap((e) => e.paths)).then(
      () => {
        for (const e of batch) e.resolve();
      },
      (err: unknown) => {
        for (const e of batch) e.reject(err);
      },
    ).finally(() => {
      this.inFlight--;
      this.schedule();
    });
    // What did not fit in this batch goes out in the next, if there is room for it.
    this.schedule();
  }
}

/** A client stream of one message. */
export async function* once<T>(x: T): AsyncGenerator<T> {
  yield x;
}
