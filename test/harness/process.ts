// The daemon helpers live in scripts/lib/process.ts (the lab scripts use them, and scripts do not
// import from test/); the harness keeps its import path.
export * from "../../scripts/lib/process.js";
