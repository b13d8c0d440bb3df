// dist/kubectl-kvrf's entry point (main.ts has the commands). Exit codes: 0 all good, 1 drift or
// a broken path found, 2 the command itself failed (usage, API, a node that cannot be read).
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kubectl kvrf: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
