// Runs a throw-away gobgpd (v3.10 or v4.8; both take the flags used here) with its gRPC API on a unix
// socket inside `dir`, no config file and no BGP listener until StartBgp. Always `await stop()`.
// With `netns`, gobgpd runs inside that network namespace (its BGP sessions use the namespace's
// links) while the API socket, a filesystem path, stays reachable from here.
import { accessSync, constants, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { GoBgpService } from "../../proto/gen/api/gobgp_pb.js";
import { createUnixGrpcTransport } from "../../shared/gobgp/transport.js";
import { spawnDaemon, waitFor } from "./process.js";

export interface StartGobgpdOptions {
  /** Path of the gobgpd binary, e.g. tool("gobgpd4"). */
  binary: string;
  /** Directory for the API socket, log file and pidfile; created if missing. */
  dir: string;
  /** gobgpd --log-level (panic, fatal, error, warn, info, debug, trace); default "info". */
  logLevel?: string;
  /** How long to wait for the API to answer; default 15 s. */
  readyTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL in stop(); default 5 s. */
  stopTimeoutMs?: number;
  /** Network namespace name to run gobgpd in (`ip netns exec NAME`). */
  netns?: string;
  /** Let gobgpd outlive this process (the lab). */
  detached?: boolean;
}

export interface Gobgpd {
  /** Absolute path of the API unix socket (pass to createUnixGrpcTransport). */
  socket: string;
  pid: number;
  logFile: string;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL without grace (a crash); the socket file stays behind, as it would. */
  kill(): Promise<void>;
  /** Resolves with the exit code (or signal name) when gobgpd exits, e.g. when it crashes (Go panics exit 2). */
  exited: Promise<number | string>;
}

/** sun_path is 108 bytes on Linux including the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** gRPC codes that mean "nobody answered yet" rather than "gobgpd answered with an error". */
const NOT_SERVING = new Set([Code.Unavailable, Code.Internal, Code.DeadlineExceeded, Code.Canceled]);

export async function startGobgpd(opts: StartGobgpdOptions): Promise<Gobgpd> {
  const dir = path.resolve(opts.dir);
  const socket = path.join(dir, "gobgpd.sock");
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new Error(`gobgpd socket path too long for a unix socket (${Buffer.byteLength(socket)} bytes): ${socket}`);
  }
  try {
    accessSync(opts.binary, constants.X_OK);
  } catch (err) {
    throw new Error(`gobgpd binary ${opts.binary} is not executable: ${String(err)}`, { cause: err });
  }
  // A SIGKILLed gobgpd leaves its socket behind, and the next one dies with "bind: address already in use".
  rmSync(socket, { force: true });

  const args = ["--api-hosts", `unix://${socket}`, "--pprof-disable", "--log-level", opts.logLevel ?? "info", "--log-plain"];
  // `ip netns exec` execs gobgpd in place, so the pid is gobgpd's own.
  const daemon =
    opts.netns === undefined
      ? spawnDaemon("gobgpd", opts.binary, args, { dir, detached: opts.detached ?? false })
      : spawnDaemon("gobgpd", "ip", ["netns", "exec", opts.netns, opts.binary, ...args], { dir, detached: opts.detached ?? false });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= daemon.stop(opts.stopTimeoutMs ?? 5000).then(() => rmSync(socket, { force: true }));
    return stopping;
  };

  try {
    // Any gRPC status proves a serving gobgpd: v3 answers this v4 probe with Unimplemented, v4 answers
    // GetBgp before StartBgp with an empty Global. Connection-level failures are retried.
    const probe = createClient(GoBgpService, createUnixGrpcTransport(socket));
    await waitFor(
      `gobgpd API on ${socket}`,
      async () => {
        try {
          await probe.getBgp({}, { timeoutMs: 1000 });
          return true;
        } catch (err) {
          const ce = ConnectError.from(err);
          if (NOT_SERVING.has(ce.code)) throw ce;
          return true;
        }
      },
      { timeoutMs: opts.readyTimeoutMs ?? 15_000, daemon },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  if (opts.netns !== undefined) {
    // After the exec, /proc/<pid>/cmdline is gobgpd's; the pidfile must say so for reapStale().
    // (No pidfile means gobgpd already exited, and the next call will say so.)
    const pidFile = path.join(dir, "gobgpd.pid");
    if (existsSync(pidFile)) {
      const record = JSON.parse(readFileSync(pidFile, "utf8")) as Record<string, unknown>;
      writeFileSync(pidFile, JSON.stringify({ ...record, cmdline: [opts.binary, ...args] }));
      // (spawnDaemon records the same for `ip netns exec`; kept for pidfiles written before.)
    }
  }
  return { socket, pid: daemon.pid, logFile: daemon.logFile, stop, kill: () => daemon.kill(), exited: daemon.exited };
}
