// Helpers for tests that call gobgpd's gRPC APIs directly (gobgp-api.test.ts, gobgp-evpn-api.test.ts).
import { ConnectError } from "@connectrpc/connect";

/** Every message of a server stream. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of stream) out.push(x);
  return out;
}

/** Awaits a call that must fail and returns the gRPC error. */
export async function grpcError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}
