// Verb handlers. The attachment logic (ADD/DEL/CHECK/STATUS/GC) lands with issue #3; until then
// every verb but VERSION answers with a clear error instead of pretending to succeed.
import { CniError, ErrorCode } from "./error.js";
import type { CmdArgs, Handlers } from "./skel.js";

function notImplemented(args: CmdArgs): never {
  throw new CniError(ErrorCode.Internal, `CNI_COMMAND ${args.verb} is not implemented in this build of kvrf`);
}

export const handlers: Handlers = {
  add: async (args) => notImplemented(args),
  del: async (args) => notImplemented(args),
  check: async (args) => notImplemented(args),
  status: async (args) => notImplemented(args),
  gc: async (args) => notImplemented(args),
};
