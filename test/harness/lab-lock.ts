// One lab at a time. The network-namespace lab (scripts/netns-lab/lab.ts) is a singleton of the
// machine: its namespaces are named kvrf-lab-*, its FRR pathspace kvrf-lab-rr, its files live in
// .testenv/lab, and `up` starts with `down`, which removes all of them. Two test files that bring
// labs up at once (the lab tier's and the cluster tier's, another checkout's, another vitest run's)
// would tear down each other's. The test files of both tiers take this lock for as long as they use
// the lab (test/harness/lab-session.ts, a setup file of both vitest projects); `scripts/lab` does
// not: it leaves its lab up when it exits, so no process could own the lock for it. Node built-ins
// only, so a plain `node` runs it too (the unit test's competing processes).
//
// The lock is a directory holding an `owner` file, created whole by renaming a prepared directory
// onto the lock's path (a rename onto a directory that has a file in it fails), so it never exists
// without its owner. The owner is a process, named by boot ID, PID and start time (a reused PID
// is another process); a lock whose owner is gone is taken over. Takeovers happen one at a time
// under a second directory and read the owner again there, so a waiter that saw the dead owner
// never removes the lock a live process took since. A process's own release is a rename away
// first: the lock's path is never an empty directory.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Machine-wide, like the lab's namespaces (so not per checkout); the vm tier's guest has its own /run. */
export const labLockDir = "/run/lock/kvrf-lab.lock";

export interface LockOwner {
  pid: number;
  /** /proc/sys/kernel/random/boot_id of the owner's kernel. */
  boot: string;
  /** Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot. */
  start: string;
  /** What holds it, for whoever waits (a test file). */
  what: string;
  /** ISO time it was taken. */
  since: string;
}

let bootId: string | undefined;
function thisBoot(): string {
  bootId ??= readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  return bootId;
}

/** Field 22 (start time) of a /proc/PID/stat line. */
export function statStart(stat: string): string | undefined {
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/** A process's start time (field 22 of /proc/PID/stat), or undefined when there is no such process. */
export function processStart(pid: number): string | undefined {
  try {
    return statStart(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The identity of process `pid` as an owner (this process by default). */
export function ownerOf(what: string, pid = process.pid): LockOwner {
  const start = processStart(pid);
  if (start === undefined) throw new Error(`no process ${pid}`);
  return { pid, boot: thisBoot(), start, what, since: new Date().toISOString() };
}

/** Is the process that took the lock still running (on this kernel, the same process)? */
export function ownerAlive(owner: LockOwner): boolean {
  return owner.boot === thisBoot() && processStart(owner.pid) === owner.start;
}

const ownerFile = (lock: string): string => path.join(lock, "owner");
const sibling = (lock: string, kind: string): string => `${lock}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`;

/** The owner file's text; undefined when there is no lock. */
function readOwnerText(lock: string): string | undefined {
  try {
    return readFileSync(ownerFile(lock), "utf8");
  } catch {
    return undefined;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    return typeof o.pid === "number" && typeof o.boot === "string" && typeof o.start === "string" ? (o as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** The lock's owner, or undefined when it is free (or its owner file is not one). */
export function lockOwner(lock: string): LockOwner | undefined {
  const text = readOwnerText(lock);
  return text === undefined ? undefined : parseOwner(text);
}

/** Moves the lock aside (atomic) and removes it: its path is never an empty directory. */
function removeLock(lock: string): void {
  const trash = sibling(lock, "gone");
  try {
    renameSync(lock, trash);
  } catch {
    return;
  }
  rmSync(trash, { recursive: true, force: true });
}

/**
 * Removes the lock if its owner file still reads `seen` and that owner is gone. One taker at a time
 * (the `.takeover` directory, held for a few file operations; one older than a minute belonged to a
 * taker that died in between and is removed).
 */
function takeOver(lock: string, seen: string): void {
  const guard = `${lock}.takeover`;
  try {
    mkdirSync(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    try {
      if (Date.now() - statSync(guard).mtimeMs > 60_000) rmSync(guard, { recursive: true, force: true });
    } catch {
      // gone meanwhile
    }
    return;
  }
  try {
    const text = readOwnerText(lock);
    if (text !== seen) return;
    const owner = parseOwner(text);
    if (owner === undefined || !ownerAlive(owner)) removeLock(lock);
  } finally {
    rmSync(guard, { recursive: true, force: true });
  }
}

export interface LockOptions {
  /** Shown to whoever waits for it. */
  what: string;
  /** Give up after this long (throws). */
  timeoutMs: number;
  pollMs?: number;
  /** Called while waiting: at once, then about every `reportMs` (default a minute). */
  onWait?: (owner: LockOwner | undefined, waitedMs: number) => void;
  reportMs?: number;
}

/** Takes the lock at `lock` (a directory path), waiting for its owner; resolves with its release. */
export async function acquireLock(lock: string, opts: LockOptions): Promise<() => void> {
  mkdirSync(path.dirname(lock), { recursive: true });
  const me = ownerOf(opts.what);
  const pollMs = opts.pollMs ?? 1000;
  const reportMs = opts.reportMs ?? 60_000;
  const t0 = Date.now();
  let reported = -Infinity;
  for (;;) {
    const draft = sibling(lock, "new");
    mkdirSync(draft);
    // The draft's name is unique: the text tells this taking of the lock from any other.
    const mine = JSON.stringify({ ...me, draft: path.basename(draft) });
    writeFileSync(ownerFile(draft), mine);
    try {
      renameSync(draft, lock);
      return () => {
        // Only our own: a lock is taken over only from a dead owner, so it is still ours.
        if (readOwnerText(lock) === mine) removeLock(lock);
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
    } finally {
      rmSync(draft, { recursive: true, force: true });
    }
    const seen = readOwnerText(lock);
    if (seen === undefined) continue; // released meanwhile
    const owner = parseOwner(seen);
    if (owner === undefined || !ownerAlive(owner)) {
      takeOver(lock, seen);
      await sleep(Math.min(pollMs, 50));
      continue;
    }
    const waited = Date.now() - t0;
    if (waited > opts.timeoutMs) {
      throw new Error(`waited ${Math.round(waited / 1000)} s for ${lock}: held by pid ${owner.pid} (${owner.what}) since ${owner.since}`);
    }
    if (waited - reported >= reportMs) {
      reported = waited;
      opts.onWait?.(owner, waited);
    }
    await sleep(pollMs);
  }
}
