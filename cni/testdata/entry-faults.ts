// Test fixture for entry.test.ts: the plugin's process with handlers that go wrong in the ways
// dispatch() cannot see. Run with tsx; FAULT names the way.
import { runPlugin } from "../entry.js";
import type { Handlers } from "../skel.js";

const never = new Promise<never>(() => undefined);
const fault = process.env["FAULT"] ?? "";

const handlers: Handlers = {
  add: async (a) => {
    if (fault === "unhandled-rejection") {
      void Promise.reject(new Error("a step nobody awaited failed"));
      setTimeout(() => undefined, 5000);
      return never;
    }
    if (fault === "uncaught-exception") {
      setImmediate(() => {
        throw new TypeError("an event handler threw");
      });
      setTimeout(() => undefined, 5000);
      return never;
    }
    if (fault === "after-answer") {
      setTimeout(() => void Promise.reject(new Error("late")), 50);
    }
    return { cniVersion: a.cniVersion, ips: [] };
  },
  del: () => Promise.reject(new RangeError("thrown by DEL")),
  check: () => Promise.resolve(),
  status: () => Promise.resolve(),
  gc: () => Promise.resolve(),
};

runPlugin(handlers);
