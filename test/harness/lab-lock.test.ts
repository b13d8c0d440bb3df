// The lab lock (lab-lock.ts) in a throwaway directory: one holder at a time, in one process and
// across processes; a dead owner's lock (also a reused PID, another boot, a broken owner file) is
// taken over, a live owner's never.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireLock, lockOwner, ownerAlive, ownerOf, processStart, statStart, type LockOwner } from "./lab-lock.js";

const module = path.join(path.dirname(fileURLToPath(import.meta.url)), "lab-lock.ts");
let dir = "";
let lock = "";
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvrf-lab-lock-"));
  lock = path.join(dir, "lab.lock");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const fast = { timeoutMs: 10_000, pollMs: 20 };
const plant = (owner: LockOwner | string): void => {
  mkdirSync(lock);
  writeFileSync(path.join(lock, "owner"), typeof owner === "string" ? owner : JSON.stringify(owner));
};
/** What is left beside the lock: nothing of the acquirers' drafts, takeovers or removed locks. */
const leftovers = (): string[] => readdirSync(dir).filter((f) => f !== "lab.lock");

describe("lab lock", () => {
  it("one holder at a time: the second waits, reported once, and gets it when the first releases", async () => {
    const releaseA = await acquireLock(lock, { what: "A", ...fast });
    expect(lockOwner(lock)).toMatchObject({ pid: process.pid, what: "A" });
    const waits: (LockOwner | undefined)[] = [];
    let gotB = false;
    const b = acquireLock(lock, { what: "B", ...fast, onWait: (o) => waits.push(o) }).then((r) => {
      gotB = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(gotB).toBe(false);
    expect(waits.map((o) => o?.what)).toEqual(["A"]);
    releaseA();
    const releaseB = await b;
    expect(lockOwner(lock)?.what).toBe("B");
    releaseA(); // a second release of a lock no longer held is a no-op
    expect(lockOwner(lock)?.what).toBe("B");
    releaseB();
    expect(lockOwner(lock)).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  it("a live owner's lock is never taken over: the wait ends with who holds it", async () => {
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      plant(ownerOf("the other file", other.pid));
      await expect(acquireLock(lock, { what: "B", timeoutMs: 300, pollMs: 20 })).rejects.toThrow(`held by pid ${other.pid} (the other file)`);
      expect(lockOwner(lock)?.pid).toBe(other.pid);
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("a dead owner's lock is taken over: once the owner is gone, without waiting", async () => {
    const other = spawn("sleep", ["60"], { stdio: "ignore" });
    plant(ownerOf("a crashed file", other.pid));
    const waits: string[] = [];
    const b = acquireLock(lock, { what: "B", ...fast, onWait: (o) => waits.push(o?.what ?? "") });
    await new Promise((r) => setTimeout(r, 200));
    await exited(other, "SIGKILL");
    const release = await b;
    expect(waits).toEqual(["a crashed file"]);
    expect(lockOwner(lock)?.what).toBe("B");
    release();
    expect(leftovers()).toEqual([]);
  });

  it("an owner is a process, not a PID: a reused PID, another boot, a broken owner file are all gone", async () => {
    const me = ownerOf("me");
    expect(ownerAlive(me)).toBe(true);
    for (const stale of [{ ...me, start: String(Number(me.start) - 1) }, { ...me, boot: "00000000-0000-0000-0000-000000000000" }]) {
      expect(ownerAlive(stale)).toBe(false);
      plant(stale);
      const t0 = Date.now();
      (await acquireLock(lock, { what: "B", ...fast }))();
      expect(Date.now() - t0).toBeLessThan(1000);
    }
    plant("not json");
    (await acquireLock(lock, { what: "B", ...fast }))();
    expect(leftovers()).toEqual([]);
  });

  it("the start time is field 22 of /proc/PID/stat, past a command name with spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    expect(statStart(`4242 (a (b) c) ${fields.join(" ")}`)).toBe("22");
    expect(processStart(process.pid)).toMatch(/^\d+$/);
    expect(processStart(2 ** 22 + 1)).toBeUndefined();
  });

  it("processes competing for it never hold it at once, also when one of them dies holding it", async () => {
    const log = path.join(dir, "log");
    // Each takes the lock, notes in and out around a short hold, and releases; the first is killed while holding it.
    const script = `
      import { acquireLock } from ${JSON.stringify(module)};
      import { appendFileSync } from "node:fs";
      const [lock, log, name, holdMs] = process.argv.slice(1);
      const release = await acquireLock(lock, { what: name, timeoutMs: 20000, pollMs: 10 });
      appendFileSync(log, "in " + name + "\\n");
      await new Promise((r) => setTimeout(r, Number(holdMs)));
      appendFileSync(log, "out " + name + "\\n");
      release();`;
    const start = (name: string, holdMs: number): ChildProcess =>
      spawn(process.execPath, ["--input-type=module", "-e", script, lock, log, name, String(holdMs)], { stdio: ["ignore", "ignore", "inherit"] });
    const crasher = start("crasher", 60_000);
    await until(() => readLog(log).includes("in crasher"));
    const others = ["p1", "p2", "p3", "p4"].map((n) => start(n, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(readLog(log)).toEqual(["in crasher"]);
    await exited(crasher, "SIGKILL");
    const codes = await Promise.all(others.map((p) => exited(p)));
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = readLog(log).slice(1);
    expect(lines.length).toBe(8);
    for (let i = 0; i < lines.length; i += 2) {
      const name = lines[i]?.slice(3);
      expect([lines[i], lines[i + 1]]).toEqual([`in ${name}`, `out ${name}`]);
    }
    expect(lockOwner(lock)).toBeUndefined();
    expect(leftovers().filter((f) => f !== "log")).toEqual([]);
  }, 30_000);
});

function readLog(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}

async function until(ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exited(p: ChildProcess, signal?: NodeJS.Signals): Promise<number | string> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve(p.exitCode ?? p.signalCode ?? "");
    p.once("exit", (code, sig) => resolve(code ?? sig ?? ""));
    if (signal !== undefined) p.kill(signal);
  });
}
