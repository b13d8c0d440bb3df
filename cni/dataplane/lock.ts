// Node-local mutual exclusion between concurrent plugin runs (kubelet runs ADD/DEL in parallel).
// A lock is an abstract unix socket ("\0kvrf/<name>"): binding it is atomic, it lives in the
// network namespace we configure, and the kernel releases it when the holder exits or crashes,
// so there is never a stale lock to clean up.
import { createServer, type Server } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { CniError, ErrorCode } from "../error.js";

export interface Lock {
  release(): Promise<void>;
}

function tryBind(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", (err: NodeJS.ErrnoException) => (err.code === "EADDRINUSE" ? resolve(undefined) : reject(err)));
    srv.listen({ path: `\0kvrf/${name}` }, () => {
      srv.unref();
      resolve(srv);
    });
  });
}

export async function acquireLock(name: string, timeoutMs = 60_000): Promise<Lock> {
  const deadline = Date.now() + timeoutMs;
  let wait = 2;
  for (;;) {
    const srv = await tryBind(name);
    if (srv !== undefined) {
      return { release: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
    }
    if (Date.now() > deadline) {
      throw new CniError(ErrorCode.TryAgainLater, `lock ${name} held by another kvrf run for over ${timeoutMs} ms`);
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 50);
  }
}

export async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(name);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
