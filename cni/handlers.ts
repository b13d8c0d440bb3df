// The verb table. Each verb's module is loaded only when that verb runs: VERSION and argument
// errors never pay for the Kubernetes client, the kernel code or the IPAM delegation, and the
// bundle stays one file (esbuild turns these imports into lazy initialisers).
import type { Handlers } from "./skel.js";

export function makeHandlers(env: Readonly<Record<string, string | undefined>>): Handlers {
  return {
    add: async (args) => (await import("./add.js")).add(args, env),
    del: async (args) => (await import("./del.js")).del(args, env),
    check: async (args) => (await import("./check.js")).check(args, env),
    status: async (args) => (await import("./status.js")).status(args, env),
    gc: async (args) => (await import("./gc.js")).gc(args, env),
  };
}
