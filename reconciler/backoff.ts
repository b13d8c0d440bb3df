// Per-key exponential backoff, shared by the work queue, the informers' relists and the gobgpd
// session's reconnects.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/** Per-key exponential backoff: base·2^(failures-1), capped, with ±10% jitter so retries spread. */
export class Backoff {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const raw = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(n - 1, 30));
    return Math.round(raw * (0.9 + 0.2 * this.random()));
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}
