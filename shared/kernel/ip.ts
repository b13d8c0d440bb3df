// The one place that runs iproute2. Node cannot move a thread into another network namespace, so
// namespace-scoped work runs as `ip -n NAME …` (named namespaces) or `nsenter --net=PATH ip …`
// (any namespace path, e.g. CNI_NETNS). Everything else in kvrf goes through this module.
import { execFile } from "node:child_process";

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
export const binaries = { ip: "ip", nsenter: "nsenter" };

function command(args: readonly string[], netns: string | undefined): [string, string[]] {
  if (netns === undefined || netns === "") return [binaries.ip, [...args]];
  if (netns.startsWith("/")) return [binaries.nsenter, [`--net=${netns}`, "--", binaries.ip, ...args]];
  return [binaries.ip, ["-n", netns, ...args]];
}

/** Runs `ip ARGS` (in `opts.netns`) and resolves with stdout; rejects with IpError. */
export function ip(args: readonly string[], opts: IpOptions = {}): Promise<string> {
  const full = opts.batch ? [...args, ...(opts.force ? ["-force"] : []), "-batch", "-"] : args;
  const [cmd, argv] = command(full, opts.netns);
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
    if (opts.batch) child.stdin?.end(opts.batch.join("\n") + "\n");
  });
}

/** `ip -j ARGS` parsed; iproute2 prints nothing (not "[]") for some empty dumps. */
export async function ipJson<T>(args: readonly string[], opts: IpOptions = {}): Promise<T[]> {
  const out = await ip(["-j", ...args], opts);
  if (out.trim() === "") return [];
  return JSON.parse(out) as T[];
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
