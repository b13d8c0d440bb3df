// Structured logs as JSON lines (pino's field names: level, time, msg) to stderr or the config's
// logFile — never stdout, which carries only the CNI result. Written synchronously because the
// process exits right after. pino itself costs the plugin ~10 ms of start-up per run for
// asynchronous throughput it never needs; kvrfd, a long-running daemon, uses pino.
import { appendFileSync, mkdirSync, writeSync } from "node:fs";
import path from "node:path";

const levels = { debug: 20, info: 30, warn: 40, error: 50 } as const;
export type Level = keyof typeof levels;

export interface Logger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export function createLogger(opts: { logFile?: string | undefined; level?: Level; bindings?: Record<string, unknown> }): Logger {
  const min = levels[opts.level ?? "info"];
  const base = { plugin: "kvrf", pid: process.pid, ...opts.bindings };
  let toFile = opts.logFile !== undefined;
  const write = (line: string): void => {
    if (toFile && opts.logFile !== undefined) {
      try {
        mkdirSync(path.dirname(opts.logFile), { recursive: true });
        appendFileSync(opts.logFile, line);
        return;
      } catch {
        toFile = false; // unwritable log file: fall back to stderr rather than fail the operation
      }
    }
    writeSync(2, line);
  };
  const at =
    (level: Level) =>
    (fields: Record<string, unknown>, msg: string): void => {
      if (levels[level] < min) return;
      write(JSON.stringify({ level: levels[level], time: Date.now(), ...base, ...fields, msg }) + "\n");
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
