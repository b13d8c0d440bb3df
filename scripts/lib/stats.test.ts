import { describe, expect, it } from "vitest";
import { formatSpread, quantile, ratio, spread } from "./stats.js";

describe("benchmark statistics", () => {
  it("quantile interpolates between samples", () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([10, 20], 0.9)).toBe(19);
    expect(quantile([], 0.5)).toBeNaN();
  });

  it("spread: median, min, max", () => {
    expect(spread([900, 1200, 1000])).toEqual({ median: 1000, min: 900, max: 1200, n: 3 });
    expect(spread([]).n).toBe(0);
    expect(formatSpread([900.4, 1200.6, 1000])).toBe("1000 (900–1201)");
    expect(formatSpread([])).toBe("-");
  });

  it("ratio: two decimals, or - when undefined", () => {
    expect(ratio(3000, 2000)).toBe("1.50");
    expect(ratio(1, 0)).toBe("-");
    expect(ratio(Number.NaN, 2)).toBe("-");
  });
});
