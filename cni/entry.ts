// The process around dispatch(): stdin, stdout, the exit status, and the last resort.
//
// The runtime reads exactly one thing: stdout (a result, or one CNI error JSON) with the exit
// status. dispatch() turns whatever a handler throws into that answer. What it cannot see is an
// error thrown outside any await chain (an 'error' event nobody listens to, a rejection nobody
// handles): Node would then print a stack on stderr and exit 1 with nothing on stdout, and the
// runtime would only learn "unexpected end of JSON input" (issue #17). For those, and only those,
// the last resort answers code 999 naming what happened, logs the stack, and ends the process at
// once, as Node would have: nothing is swallowed, and the bug stays visible as a 999.
import { writeSync } from "node:fs";
import { dispatch, type Handlers } from "./skel.js";
import { CniError, ErrorCode, stackOf } from "./error.js";
import { currentVersion } from "./version.js";

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** One JSON line on stderr (the runtime's log), as cni/log.ts writes them. */
function logLine(fields: Record<string, unknown>, msg: string): void {
  try {
    writeSync(2, JSON.stringify({ level: 50, time: Date.now(), plugin: "kvrf", pid: process.pid, ...fields, msg }) + "\n");
  } catch {
    // stderr is gone too
  }
}

/** Runs one invocation of the plugin in this process and exits with its status. */
export function runPlugin(handlers: Handlers): void {
  /** Whether stdout carries the answer already: it carries at most one. */
  let answered = false;
  const answer = (text: string): void => {
    if (answered) {
      logLine({ dropped: text.slice(0, 2000) }, "a second answer was not printed: stdout already carries one");
      return;
    }
    answered = true;
    const bytes = Buffer.from(text);
    for (let off = 0; off < bytes.length; ) off += writeSync(1, bytes, off);
  };
  const lastResort =
    (kind: string) =>
    (err: unknown): void => {
      const e = CniError.from(err);
      logLine({ kind, stack: stackOf(err) }, `internal error: ${kind}`);
      if (!answered) {
        answer(JSON.stringify(new CniError(ErrorCode.Internal, `internal error (${kind}): ${e.message}`).toJSON(currentVersion)) + "\n");
        process.exit(1);
      }
      // After the answer (dispatch had returned, and set the status that goes with it): the
      // operation is done and its status stands; the stack above is the bug report.
      process.exit();
    };
  process.on("uncaughtException", lastResort("uncaught exception"));
  process.on("unhandledRejection", lastResort("unhandled rejection"));

  void dispatch(handlers, {
    env: process.env,
    readStdin: () => readAll(process.stdin),
    writeStdout: answer,
    logError: (err, reported) => logLine({ code: reported.code, err: reported.message, stack: stackOf(err) }, "unexpected error"),
  }).then((code) => {
    process.exitCode = code;
  });
}
