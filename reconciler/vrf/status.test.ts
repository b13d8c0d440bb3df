import { describe, expect, it } from "vitest";
import { buildStatus, failed, ok, sameStatus, unknown } from "./status.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:01:00Z");

describe("status", () => {
  it("is Ready only when the VRF and routes are, and carries the first failure otherwise", () => {
    const good = buildStatus(undefined, { generation: 3, vrf: ok("Configured", "v"), routes: ok("Programmed", "r"), localPrefixes: 2, remotePrefixes: 5 }, t0);
    expect(good.observedGeneration).toBe(3);
    expect(good.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "True", "Ready"],
      ["VRFConfigured", "True", "Configured"],
      ["RoutesProgrammed", "True", "Programmed"],
    ]);
    const bad = buildStatus(good, { generation: 3, vrf: failed("SpeakerError", "boom"), routes: unknown("VRFNotConfigured", "-"), localPrefixes: 0, remotePrefixes: 5 }, t1);
    expect(bad.conditions?.[0]).toMatchObject({ type: "Ready", status: "False", reason: "SpeakerError", message: "boom", lastTransitionTime: "2026-01-01T00:01:00Z" });
  });

  it("keeps lastTransitionTime while a condition keeps its status, and compares without timestamps", () => {
    const o = { generation: 1, vrf: ok("Configured", "v"), routes: ok("Programmed", "r"), localPrefixes: 1, remotePrefixes: 1 };
    const a = buildStatus(undefined, o, t0);
    const b = buildStatus(a, { ...o, routes: ok("Programmed", "r2") }, t1);
    expect(b.conditions?.[2]?.lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    expect(sameStatus(a, buildStatus(a, o, t1))).toBe(true);
    expect(sameStatus(a, b)).toBe(false);
    expect(sameStatus(undefined, a)).toBe(false);
  });
});
