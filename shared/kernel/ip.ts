// The one place that runs iproute2. Node cannot move a thread into another network namespace, so
// namespace-scoped work runs as `ip -n NAME …` (named namespaces) or `nsenter --net=PATH ip …`
// (any namespace path, e.g. CNI_NETNS). Everything else in kvrf goes through this module.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export interface IpOptions {
  /** Network namespace: a name under /var/run/netns, or an absolute path (nsenter). Default: ours. */
  netns?: string;
  /**
   * Feed these lines to `ip [ARGS] -batch -` (one command per line, without the leading "ip").
   * Global options such as -6 go in ARGS: iproute2 does not parse them inside batch lines.
   */
  batch?: readonly string[];
  /** With batch: run every line even after one fails (`-force`); the call still rejects. */
  force?: boolean;
  /** Abort after this many ms (default 10 s). */
  timeoutMs?: number;
  /** Which iproute2 tool: `ip` (default) or `bridge`. */
  tool?: Tool;
}

/** A failed `ip` invocation; `stderr` is what iproute2 said. */
export class IpError extends Error {
  override readonly name = "IpError";
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`ip ${args.join(" ")}: ${stderr.trim() || `exit ${exitCode}`}`);
  }

  /** The object already exists (EEXIST). */
  get exists(): boolean {
    return /File exists/.test(this.stderr);
  }

  /** The object (device, route, rule, namespace) is not there. */
  get notFound(): boolean {
    return /Cannot find device|No such process|No such file or directory|does not exist|not found|Cannot open network namespace/i.test(
      this.stderr,
    );
  }
}

/** Which binaries to run; tests may point these elsewhere. */
export const binaries = { ip: "ip", bridge: "bridge", nsenter: "nsenter" };

/** iproute2's tools: `ip`, and `bridge` for forwarding-database entries (VXLAN). */
export type Tool = "ip" | "bridge";

function command(args: readonly string[], netns: string | undefined, tool: Tool = "ip"): [string, string[]] {
  const bin = binaries[tool];
  if (netns === undefined || netns === "") return [bin, [...args]];
  if (netns.startsWith("/")) return [binaries.nsenter, [`--net=${netns}`, "--", bin, ...args]];
  return [bin, ["-n", netns, ...args]];
}

/** Runs `ip ARGS` (in `opts.netns`) and resolves with stdout; rejects with IpError. */
export function ip(args: readonly string[], opts: IpOptions = {}): Promise<string> {
  const full = opts.batch ? [...args, ...(opts.force ? ["-force"] : []), "-batch", "-"] : args;
  const [cmd, argv] = command(full, opts.netns, opts.tool);
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      argv,
      { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 64 << 20, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const code = typeof err.code === "number" ? err.code : null;
        const why = stderr !== "" ? stderr : err.message;
        reject(new IpError(opts.netns ? [`(netns ${opts.netns})`, ...full] : full, why, code));
      },
    );
    // A child that exits before reading its input (e.g. nsenter into a namespace just removed)
    // makes the write fail with EPIPE: the exit status reports that failure, not this event.
    child.stdin?.on("error", () => undefined);
    if (opts.batch) child.stdin?.end(opts.batch.join("\n") + "\n");
  });
}

/** Failed lines of a -force batch (1-based line → iproute2's words), from its stderr. */
export function batchFailures(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let words: string[] = [];
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    const m = /^Command failed -:(\d+)$/.exec(line);
    if (m === null) {
      if (line !== "") words.push(line);
      continue;
    }
    out.set(Number(m[1]), words.join("; ") || "failed");
    words = [];
  }
  return out;
}

/** `ip -j ARGS` parsed; iproute2 prints nothing (not "[]") for some empty dumps. */
export async function ipJson<T>(args: readonly string[], opts: IpOptions = {}): Promise<T[]> {
  const out = await ip(["-j", ...args], opts);
  if (out.trim() === "") return [];
  return JSON.parse(out) as T[];
}

/** `bridge -j ARGS` parsed (forwarding-database dumps). */
export function bridgeJson<T>(args: readonly string[], opts: IpOptions = {}): Promise<T[]> {
  const [cmd, argv] = command(["-j", ...args], opts.netns, "bridge");
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 64 << 20, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err !== null) return reject(new IpError(["bridge", ...argv], stderr !== "" ? stderr : err.message, typeof err.code === "number" ? err.code : null));
      try {
        resolve(stdout.trim() === "" ? [] : (JSON.parse(stdout) as T[]));
      } catch (e) {
        reject(new IpError(["bridge", ...argv], `unparsable output: ${(e as Error).message}`, null));
      }
    });
  });
}

/** Runs `ip ARGS`, treating "already exists" as success. */
export async function ipIdempotentAdd(args: readonly string[], opts: IpOptions = {}): Promise<void> {
  try {
    await ip(args, opts);
  } catch (err) {
    if (!(err instanceof IpError && err.exists)) throw err;
  }
}

/** Runs `ip ARGS`, treating "not found" as success (deleting what is already gone). */
export async function ipIdempotentDel(args: readonly string[], opts: IpOptions = {}): Promise<void> {
  try {
    await ip(args, opts);
  } catch (err) {
    if (!(err instanceof IpError && err.notFound)) throw err;
  }
}

interface BatchRun {
  /** Line number (1-based, in the process's whole input) of this run's first line. */
  first: number;
  /** Line number of the marker that ends this run. */
  marker: number;
  failed: Map<number, string>;
  timer: NodeJS.Timeout;
  resolve(failed: Map<number, string>): void;
  reject(err: unknown): void;
}

/**
 * One long-lived `ip -force -batch -` that runs line batches as they are written, so that a daemon
 * writing routes all day does not fork itself for each batch (a fork of a large process blocks its
 * event loop until the child has exec'd: under load, tens of milliseconds each).
 *
 * iproute2 reads its batch input line by line and reports a failed line on stderr as
 * "Command failed -:N" (N counts every line the process read), after that line's own messages.
 * Success is silent, so each batch ends with a marker line that always fails without touching
 * anything (`link show dev` of a name longer than any interface name can be): its report says
 * every line before it has run. Lines that call iproute2's exit() (malformed arguments) end the
 * process: the batches in flight fail and the next one starts a new process.
 */
export class IpBatchProcess {
  static readonly marker = "link show dev kvrf-batch-end-marker";
  private child: ChildProcessWithoutNullStreams | undefined;
  private lines = 0;
  private readonly runs: BatchRun[] = [];
  private stderr = "";
  private messages: string[] = [];

  constructor(private readonly opts: { netns?: string; timeoutMs?: number } = {}) {}

  /** Runs `lines`; resolves with the failed ones (0-based index → iproute2's messages). */
  run(lines: readonly string[]): Promise<Map<number, string>> {
    if (lines.some((l) => l.includes("\n"))) return Promise.reject(new Error("ip batch lines must not contain newlines"));
    const child = this.child ?? this.start();
    return new Promise((resolve, reject) => {
      const first = this.lines + 1;
      this.lines += lines.length + 1;
      const run: BatchRun = {
        first,
        marker: this.lines,
        failed: new Map(),
        resolve,
        reject,
        timer: setTimeout(() => this.fail(child, new IpError(["-batch", "-"], `no answer within ${this.opts.timeoutMs ?? 30_000} ms`, null)), this.opts.timeoutMs ?? 30_000),
      };
      run.timer.unref();
      this.runs.push(run);
      this.hold(child, true);
      child.stdin.write([...lines, IpBatchProcess.marker].join("\n") + "\n");
    });
  }

  /** Ends the process (pending batches fail). */
  close(): void {
    if (this.child !== undefined) this.fail(this.child, new Error("ip batch process closed"));
  }

  private start(): ChildProcessWithoutNullStreams {
    const [cmd, argv] = command(["-force", "-batch", "-"], this.opts.netns);
    const child = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.lines = 0;
    this.stderr = "";
    this.messages = [];
    child.stdout.resume();
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => this.onStderr(child, d));
    child.stdin.on("error", () => undefined);
    child.on("error", (err) => this.fail(child, err));
    child.on("exit", (code) => this.fail(child, new IpError(["-force", "-batch", "-"], this.messages.join("; ") || "ip exited", code)));
    this.hold(child, false);
    return child;
  }

  /**
   * Only batches in flight keep the caller's process alive; an idle `ip` does not (when the caller
   * exits, ip reads the end of its input and exits too).
   */
  private hold(child: ChildProcessWithoutNullStreams, busy: boolean): void {
    const handles = [child, child.stdin, child.stdout, child.stderr] as unknown as { ref?: () => void; unref?: () => void }[];
    for (const h of handles) (busy ? h.ref : h.unref)?.call(h);
  }

  private onStderr(child: ChildProcessWithoutNullStreams, data: string): void {
    if (child !== this.child) return;
    this.stderr += data;
    const parts = this.stderr.split("\n");
    this.stderr = parts.pop() ?? "";
    for (const raw of parts) {
      const line = raw.trim();
      const m = /^Command failed -:(\d+)$/.exec(line);
      if (m === null) {
        if (line !== "") this.messages.push(line);
        continue;
      }
      const n = Number(m[1]);
      const message = this.messages.join("; ") || "failed";
      this.messages = [];
      const run = this.runs[0];
      if (run === undefined) continue;
      if (n === run.marker) {
        this.runs.shift();
        clearTimeout(run.timer);
        if (this.runs.length === 0) this.hold(child, false);
        run.resolve(run.failed);
      } else if (n >= run.first && n < run.marker) {
        run.failed.set(n - run.first, message);
      }
    }
  }

  private fail(child: ChildProcessWithoutNullStreams, err: unknown): void {
    if (child !== this.child) return;
    this.child = undefined;
    child.kill("SIGKILL");
    for (const run of this.runs.splice(0)) {
      clearTimeout(run.timer);
      run.reject(err);
    }
  }
}
