// kvrf CNI plugin entry point: wires the process to the dispatcher and exits with its code.
// No top-level await: the single-executable build bundles this file as CommonJS.
import { dispatch } from "./skel.js";
import { makeHandlers } from "./handlers.js";

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

void dispatch(makeHandlers(process.env), {
  env: process.env,
  readStdin: () => readAll(process.stdin),
  writeStdout: (text) => process.stdout.write(text),
}).then((code) => {
  process.exitCode = code;
});
