// kvrf CNI plugin entry point: the verb table, run in this process (entry.ts).
// No top-level await: the single-executable build bundles this file as CommonJS.
import { runPlugin } from "./entry.js";
import { makeHandlers } from "./handlers.js";

runPlugin(makeHandlers(process.env));
