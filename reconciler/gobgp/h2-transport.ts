// A lean gRPC transport for the calls kvrfd makes most: unary calls (AddVrf, AddPath, GetBgp, …)
// client streams of a few messages (AddPathStream) and server streams (ListPath, ListVrf, ListPeer,
// WatchEvent), straight over node:http2 on gobgpd's unix socket. connect-node runs every call and
// every streamed message through a pipeline of async iterables, WHATWG Headers and interceptors:
// measured against gobgpd 4.8, ~600 µs of kvrfd CPU per AddVrf versus ~130 µs for the same call
// framed here, which decided kvrfd's replay rate.
//
// What is implemented of gRPC over HTTP/2: POST to /<service>/<method> with content-type
// application/grpc+proto and te: trailers, length-prefixed uncompressed messages, grpc-timeout,
// grpc-status/grpc-message from trailers or from a trailers-only response. Errors are ConnectErrors
// with the gRPC code and gobgpd's message text, as connect-node's would be, so errors.ts
// classifies them the same way.
import http2 from "node:http2";
import net from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type DescMethodStreaming, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";

interface Call {
  session: http2.ClientHttp2Session;
  reject(err: ConnectError): void;
}

/** What a request needs of a method descriptor. */
interface Method<O extends DescMessage> {
  name: string;
  parent: { typeName: string };
  output: O;
}

/** gRPC's mapping of HTTP statuses for responses without grpc-status (gRPC "HTTP to gRPC Status Code Mapping"). */
function codeOfHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

function grpcMessage(raw: unknown): string {
  const text = typeof raw === "string" ? raw : "";
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Response headers and trailers, made only if someone looks (nobody in kvrf does): the first
 * `Headers` loads Node's bundled undici, ~15 MiB (docs/kvrfd.md, Memory).
 */
function withLazyHeaders<T extends object>(o: T): T & { readonly header: Headers; readonly trailer: Headers } {
  return Object.defineProperties(o, {
    header: { get: () => new Headers(), enumerable: true },
    trailer: { get: () => new Headers(), enumerable: true },
  }) as T & { readonly header: Headers; readonly trailer: Headers };
}

/** One length-prefixed message (no compression). */
function frame(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + bytes.length);
  out[0] = 0;
  out.writeUInt32BE(bytes.length, 1);
  out.set(bytes, 5);
  return out;
}

export class H2Transport implements Transport {
  private session: http2.ClientHttp2Session | undefined;
  private readonly calls = new Set<Call>();
  private closed = false;

  constructor(
    private readonly socketPath: string,
    private readonly defaultTimeoutMs: number,
  ) {}

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    _header: ConstructorParameters<typeof Headers>[0],
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    const body = frame(toBinary(method.input, create(method.input, input)));
    const message = await this.call(method, signal, timeoutMs, body);
    return withLazyHeaders({ stream: false as const, service: method.parent, method, message });
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    _header: ConstructorParameters<typeof Headers>[0],
    input: AsyncIterable<MessageInitShape<I>>,
  ): Promise<StreamResponse<I, O>> {
    if (method.methodKind === "bidi_streaming") throw new ConnectError("bidi streams are not implemented", Code.Unimplemented);
    // Client streams here carry a few messages (kvrf's AddPathStream); all are sent at once.
    const frames: Buffer[] = [];
    for await (const m of input) frames.push(frame(toBinary(method.input, create(method.input, m))));
    const body = Buffer.concat(frames);
    if (method.methodKind === "client_streaming") {
      const message = await this.call(method, signal, timeoutMs, body);
      return withLazyHeaders({
        stream: true as const,
        service: method.parent,
        method,
        message: (async function* () {
          yield message;
        })(),
      });
    }
    return withLazyHeaders({ stream: true as const, service: method.parent, method, message: this.serverStream(method, signal, timeoutMs, body) });
  }

  /** Ends the connection; calls in flight fail with Canceled. */
  close(): void {
    this.closed = true;
    for (const c of [...this.calls]) c.reject(new ConnectError("speaker closed", Code.Canceled));
    this.session?.destroy();
    this.session = undefined;
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(this.socketPath) });
    const drop = (err?: Error): void => {
      if (this.session === session) this.session = undefined;
      // Calls on a session that failed fail as unavailable (gobgpd gone or restarting).
      if (err !== undefined) for (const c of [...this.calls]) if (c.session === session) c.reject(new ConnectError(err.message, Code.Unavailable));
    };
    session.on("error", (err: Error) => drop(err));
    session.on("goaway", () => drop());
    session.on("close", () => drop());
    session.unref();
    this.session = session;
    return session;
  }

  /** A unary call (or a client stream, framed the same): exactly one response message. */
  private call<O extends DescMessage>(method: Method<O>, signal: AbortSignal | undefined, timeoutMs: number | undefined, body: Buffer): Promise<MessageShape<O>> {
    return new Promise<MessageShape<O>>((resolve, reject) => {
      let value: MessageShape<O> | undefined;
      this.open(method, signal, timeoutMs, body, {
        message: (m) => {
          value ??= m;
        },
        end: (err) => {
          if (err !== undefined) reject(err);
          else if (value === undefined) reject(new ConnectError("response without a message", Code.Unimplemented));
          else resolve(value);
        },
      });
    });
  }

  /**
   * A server stream: messages as they arrive. Ends when gobgpd ends the stream with status OK,
   * throws its error otherwise; leaving the loop early cancels the stream.
   */
  private serverStream<O extends DescMessage>(method: Method<O>, signal: AbortSignal | undefined, timeoutMs: number | undefined, body: Buffer): AsyncIterable<MessageShape<O>> {
    const queue: MessageShape<O>[] = [];
    let ended = false;
    let failure: ConnectError | undefined;
    let wake: (() => void) | undefined;
    const cancel = this.open(method, signal, timeoutMs, body, {
      message: (m) => {
        queue.push(m);
        wake?.();
      },
      end: (err) => {
        ended = true;
        failure = err;
        wake?.();
      },
    });
    return (async function* () {
      try {
        for (;;) {
          const m = queue.shift();
          if (m !== undefined) {
            yield m;
            continue;
          }
          if (ended) {
            if (failure !== undefined) throw failure;
            return;
          }
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      } finally {
        if (!ended) cancel();
      }
    })();
  }

  /**
   * Opens one gRPC request and reports each response message, then the end (an error unless
   * grpc-status is 0). Returns a function that cancels the request.
   */
  private open<O extends DescMessage>(
    method: Method<O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    body: Buffer,
    on: { message(m: MessageShape<O>): void; end(err: ConnectError | undefined): void },
  ): () => void {
    let settled = false;
    const fail = (err: ConnectError): (() => void) => {
      settled = true;
      on.end(err);
      return () => undefined;
    };
    if (this.closed) return fail(new ConnectError("speaker closed", Code.Canceled));
    if (signal?.aborted === true) return fail(new ConnectError("the operation was aborted", Code.Canceled));
    const deadline = timeoutMs ?? this.defaultTimeoutMs;
    let session: http2.ClientHttp2Session;
    try {
      session = this.connect();
    } catch (err) {
      return fail(new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable));
    }
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": `/${method.parent.typeName}/${method.name}`,
      "content-type": "application/grpc+proto",
      te: "trailers",
    };
    if (deadline > 0) headers["grpc-timeout"] = `${Math.ceil(deadline)}m`;
    const req = session.request(headers);
    let pending: Buffer = Buffer.alloc(0);
    let status: string | undefined;
    let messageText: unknown;
    let httpStatus = 0;
    const finish = (err: ConnectError | undefined): void => {
      if (settled) return;
      settled = true;
      this.calls.delete(call);
      if (![...this.calls].some((c) => c.session === session)) session.unref();
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err !== undefined && !req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
      on.end(err);
    };
    const call: Call = { session, reject: (err) => finish(err) };
    const timer = deadline > 0 ? setTimeout(() => finish(new ConnectError(`the operation timed out after ${deadline} ms`, Code.DeadlineExceeded)), deadline) : undefined;
    const onAbort = (): void => finish(new ConnectError("the operation was aborted", Code.Canceled));
    this.calls.add(call);
    session.ref();
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("response", (h) => {
      httpStatus = Number(h[":status"] ?? 0);
      // A trailers-only response (typically an error) carries the status in its headers.
      if (h["grpc-status"] !== undefined) {
        status = String(h["grpc-status"]);
        messageText = h["grpc-message"];
      }
    });
    req.on("trailers", (t: http2.IncomingHttpHeaders) => {
      if (t["grpc-status"] !== undefined) {
        status = String(t["grpc-status"]);
        messageText = t["grpc-message"];
      }
    });
    req.on("data", (d: Buffer) => {
      if (settled) return;
      pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        if (pending[0] !== 0) return finish(new ConnectError("compressed response message (none was asked for)", Code.Internal));
        const len = pending.readUInt32BE(1);
        if (pending.length < 5 + len) break;
        let m: MessageShape<O>;
        try {
          // Unknown fields (those our proto subsets leave out) are skipped, not kept: kvrf never
          // re-encodes a decoded message, and keeping them cost ~15 % of decoding BEST events.
          m = fromBinary(method.output, pending.subarray(5, 5 + len), { readUnknownFields: false });
        } catch (err) {
          return finish(new ConnectError(`cannot decode ${method.output.typeName}: ${err instanceof Error ? err.message : String(err)}`, Code.Internal));
        }
        pending = pending.subarray(5 + len);
        on.message(m);
      }
    });
    req.on("error", (err: Error) => finish(new ConnectError(err.message, Code.Unavailable)));
    req.on("close", () => {
      if (settled) return;
      if (status === undefined) {
        const code = httpStatus === 200 || httpStatus === 0 ? Code.Unavailable : codeOfHttpStatus(httpStatus);
        return finish(new ConnectError(httpStatus === 0 ? "http/2 stream closed without a response" : `HTTP ${httpStatus} without grpc-status`, code));
      }
      const code = Number(status);
      if (code !== 0) return finish(new ConnectError(grpcMessage(messageText), code in Code ? code : Code.Unknown));
      if (pending.length > 0) return finish(new ConnectError("truncated response message", Code.Internal));
      finish(undefined);
    });
    req.end(body);
    return () => finish(new ConnectError("the operation was canceled", Code.Canceled));
  }
}
