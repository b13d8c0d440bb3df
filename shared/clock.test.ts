import { afterEach, describe, expect, it, vi } from "vitest";
import { monotonicMs } from "./clock.js";

describe("monotonicMs", () => {
  afterEach(() => void vi.useRealTimers());

  it("reads like the wall clock at start, and ignores the wall clock's jumps after", () => {
    expect(Math.abs(monotonicMs() - Date.now())).toBeLessThan(5_000);
    vi.useFakeTimers({ toFake: ["Date"] });
    const before = monotonicMs();
    vi.setSystemTime(Date.now() + 3_600_000);
    expect(monotonicMs() - before).toBeLessThan(1_000);
    vi.setSystemTime(Date.now() - 7_200_000);
    expect(monotonicMs()).toBeGreaterThanOrEqual(before);
  });
});
