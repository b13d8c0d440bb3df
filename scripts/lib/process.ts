// Starts and stops the test environment's daemons by PID. Each daemon records a pidfile (pid and
// the exact command line) so a later run can reap what a crashed run left behind, checking the
// command line first so a reused PID is never signalled.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) when the process exits. */
  readonly exited: Promise<number | string>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL without grace (for crash tests). */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** Directory for the log file and pidfile. */
  dir: string;
  env?: NodeJS.ProcessEnv;
  /** Own session and no hold on our event loop: the daemon outlives this process (the lab). */
  detached?: boolean;
  /**
   * The command line /proc shows once `command` has exec'd in place into the daemon, when it is
   * not `ip netns exec`'s (e.g. `unshare … sh -c 'exec "$@"'`, `nsenter`): what a later run matches.
   */
  execs?: readonly string[];
}

export function spawnDaemon(name: string, command: string, args: readonly string[], opts: SpawnOptions): Daemon {
  mkdirSync(opts.dir, { recursive: true });
  const logFile = path.join(opts.dir, `${name}.log`);
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: ["ignore", fd, fd], env: opts.env ?? process.env, detached: opts.detached ?? false });
    if (opts.detached === true) child.unref();
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting ${name} (${command}) failed: no pid`);
  const pidFile = path.join(opts.dir, `${name}.pid`);
  // `ip netns exec NS CMD…` execs CMD in place: /proc then shows CMD…, and that is what a later
  // run must match before signalling the pid; `spawn` is what restarts it.
  const spawned = [command, ...args];
  const cmdline = opts.execs !== undefined ? [...opts.execs] : command === "ip" && args[0] === "netns" && args[1] === "exec" ? args.slice(3) : spawned;
  writeFileSync(pidFile, JSON.stringify({ pid, owner: process.pid, cmdline, spawn: spawned }));
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      // Only our own record: a restart may already have put its successor's pid there.
      try {
        if ((JSON.parse(readFileSync(pidFile, "utf8")) as { pid?: number }).pid === pid) rmSync(pidFile, { force: true });
      } catch {
        // already gone
      }
      resolve(code ?? signal ?? "unknown");
    });
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    if (done) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return {
    name,
    pid,
    logFile,
    exited,
    hasExited: () => done,
    stop,
    kill: async () => {
      if (done) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(file: string, lines = 20): string {
  if (!existsSync(file)) return "";
  return readFileSync(file, "utf8")
    .trimEnd()
    .split("\n")
    .slice(-lines)
    .map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l))
    .join("\n");
}

/**
 * How much slower this place is than the host: KVRF_TIME_SCALE, set by the vm tier (software
 * emulation). Read here, not from needs.ts, because scripts (the lab, the benchmarks) use waitFor too.
 */
const timeScale = Number(process.env["KVRF_TIME_SCALE"] ?? "1") || 1;

/**
 * Polls `probe` until it resolves truthy; fails early if `daemon` exits, with its log tail.
 * `timeoutMs` is what the wait takes on the host; it is multiplied by the time scale.
 */
/**
 * Polls `f` until `ok` holds for what it returns, and returns that; throws with the last value
 * after `timeoutMs` (stretched by timeScale, like waitFor).
 */
export async function eventually<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs * timeScale;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await f();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; daemon?: Daemon; intervalMs?: number },
): Promise<void> {
  const timeoutMs = opts.timeoutMs * timeScale;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    if (opts.daemon?.hasExited() === true) {
      throw new Error(`${opts.daemon.name} exited while waiting for ${what}; log ${opts.daemon.logFile}:\n${tail(opts.daemon.logFile)}`);
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const log = opts.daemon ? `; log ${opts.daemon.logFile}:\n${tail(opts.daemon.logFile)}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last error: ${String(lastErr)})${log}`);
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/**
 * Kills daemons a previous, crashed run left behind in `dir` (recursively): SIGKILL to each
 * recorded pid whose owner (the test process that started it) is gone and whose /proc cmdline
 * still equals the recorded command line. Daemons of a concurrent, live run are left alone.
 * Returns what it killed.
 */
export function reapStale(dir: string): string[] {
  const killed: string[] = [];
  if (!existsSync(dir)) return killed;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".pid")) continue;
    const file = path.join(entry.parentPath, entry.name);
    try {
      const { pid, owner, cmdline, spawn } = JSON.parse(readFileSync(file, "utf8")) as { pid: number; owner?: number; cmdline: string[]; spawn?: string[] };
      if (owner !== undefined && existsSync(`/proc/${owner}`)) continue;
      const live = JSON.stringify(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== ""));
      if (live === JSON.stringify(cmdline) || live === JSON.stringify(spawn)) {
        process.kill(pid, "SIGKILL");
        killed.push(`${entry.name.replace(/\.pid$/, "")} (pid ${pid})`);
      }
    } catch {
      // Process gone or pidfile unreadable: nothing to reap.
    }
    rmSync(file, { force: true });
  }
  return killed;
}

/**
 * Stops every daemon recorded by pidfiles in `dir` (recursively), whoever started it: SIGTERM,
 * then SIGKILL after `graceMs`, each only while /proc/<pid>/cmdline still equals the recorded
 * command line. For the lab, whose daemons outlive the command that started them.
 */
export async function stopByPidfiles(dir: string, graceMs = 5000): Promise<string[]> {
  const stopped: string[] = [];
  if (!existsSync(dir)) return stopped;
  const live = (pid: number, cmdlines: (string[] | undefined)[]): boolean => {
    try {
      const now = JSON.stringify(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== ""));
      return cmdlines.some((c) => c !== undefined && JSON.stringify(c) === now);
    } catch {
      return false;
    }
  };
  const targets: { file: string; pid: number; cmdline: string[]; spawn?: string[]; name: string }[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".pid")) continue;
    const file = path.join(entry.parentPath, entry.name);
    try {
      const { pid, cmdline, spawn } = JSON.parse(readFileSync(file, "utf8")) as { pid: number; cmdline: string[]; spawn?: string[] };
      targets.push({ file, pid, cmdline, ...(spawn ? { spawn } : {}), name: entry.name.replace(/\.pid$/, "") });
    } catch {
      rmSync(file, { force: true });
    }
  }
  for (const t of targets) if (live(t.pid, [t.cmdline, t.spawn])) process.kill(t.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  for (const t of targets) {
    while (live(t.pid, [t.cmdline, t.spawn]) && Date.now() < deadline) await sleep(50);
    if (live(t.pid, [t.cmdline, t.spawn])) process.kill(t.pid, "SIGKILL");
    stopped.push(`${t.name} (pid ${t.pid})`);
    rmSync(t.file, { force: true });
  }
  return stopped;
}
