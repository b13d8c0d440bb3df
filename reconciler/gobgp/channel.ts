// The gRPC connection to gobgpd's unix socket, shared by both API adapters: every call goes
// through here so that errors are classified in one way and close() ends everything in flight.
// Calls go over a lean gRPC-over-HTTP/2 transport (h2-transport.ts) whose session redials on the
// next call after gobgpd restarts, so a Speaker outlives a gobgpd restart (the caller sees
// "unavailable" meanwhile, then getGlobal() === undefined).
import type { CallOptions, Transport } from "@connectrpc/connect";
import { unixSocketPath } from "../../shared/gobgp/transport.js";
import { SpeakerError } from "./speaker.js";
import { streamEndError, toSpeakerError } from "./errors.js";
import { H2Transport } from "./h2-transport.js";

export class Channel {
  readonly transport: Transport;
  readonly socket: string;
  private readonly lean: H2Transport;
  private readonly closing = new AbortController();

  /** `socket`: "/abs/path" or "unix:///abs/path"; `timeoutMs`: deadline of each unary or list call. */
  constructor(socket: string, timeoutMs: number) {
    this.socket = unixSocketPath(socket);
    this.lean = new H2Transport(this.socket, timeoutMs);
    this.transport = this.lean;
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private options(what: string): CallOptions {
    if (this.closed) throw new SpeakerError("unavailable", `${what}: the speaker connection is closed`);
    return { signal: this.closing.signal };
  }

  /** A unary call; any failure becomes a classified SpeakerError. */
  async call<T>(what: string, f: (opts: CallOptions) => Promise<T>): Promise<T> {
    const opts = this.options(what);
    try {
      return await f(opts);
    } catch (err) {
      throw toSpeakerError(err, what);
    }
  }

  /** A server-streaming list call, collected. */
  async list<T>(what: string, f: (opts: CallOptions) => AsyncIterable<T>): Promise<T[]> {
    const opts = this.options(what);
    const out: T[] = [];
    try {
      for await (const x of f(opts)) out.push(x);
    } catch (err) {
      throw toSpeakerError(err, what);
    }
    return out;
  }

  /**
   * A long-lived server stream: no deadline; ends quietly when `signal` aborts or the channel
   * closes, and throws SpeakerError "unavailable" when gobgpd goes away (including a stream that
   * gobgpd simply ends, which it does only when its server stops).
   */
  async *watch<T>(what: string, signal: AbortSignal, f: (opts: CallOptions) => AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    this.options(what);
    const stop = AbortSignal.any([signal, this.closing.signal]);
    if (stop.aborted) return;
    let failure: unknown;
    try {
      yield* f({ signal: stop, timeoutMs: 0 });
    } catch (err) {
      failure = err;
    }
    const err = streamEndError(failure, stop.aborted, what);
    if (err !== undefined) throw err;
  }

  /** Ends every call in flight (watchers end quietly) and refuses new ones. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closing.abort();
    this.lean.close();
  }
}
