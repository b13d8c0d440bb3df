// gRPC (HTTP/2 cleartext) transport to a gobgpd listening on a unix socket (`--api-hosts unix:///path`).
// connect-node has no native unix: support; nodeOptions.createConnection is handed straight to
// http2.connect, so every (re)connect dials the socket. The :authority is the dummy baseUrl host.
import net from "node:net";
import path from "node:path";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

export interface UnixGrpcTransportOptions {
  /** Default timeout for every call, in ms (per-call `timeoutMs` overrides it). */
  defaultTimeoutMs?: number;
}

/**
 * Accepts "/abs/path.sock", "unix:///abs/path.sock" or "unix:/abs/path.sock" and returns the
 * absolute filesystem path. Relative paths are rejected: gobgpd and we may not share a cwd.
 */
export function unixSocketPath(target: string): string {
  let p = target;
  if (p.startsWith("unix://")) p = p.slice("unix://".length);
  else if (p.startsWith("unix:")) p = p.slice("unix:".length);
  if (!path.isAbsolute(p)) {
    throw new Error(`gobgp API socket must be an absolute path or unix:///abs/path, got ${JSON.stringify(target)}`);
  }
  return p;
}

export function createUnixGrpcTransport(socket: string, opts: UnixGrpcTransportOptions = {}): Transport {
  const socketPath = unixSocketPath(socket);
  return createGrpcTransport({
    baseUrl: "http://localhost",
    nodeOptions: { createConnection: () => net.connect(socketPath) },
    ...(opts.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: opts.defaultTimeoutMs } : {}),
  });
}
