import { describe, expect, it } from "vitest";
import { compareText } from "./order.js";

describe("compareText", () => {
  it("orders by code unit, not by locale", () => {
    expect(["b", "B", "a", "10.0.0.0/8", "9.0.0.0/8", "ä"].sort(compareText)).toEqual(["10.0.0.0/8", "9.0.0.0/8", "B", "a", "b", "ä"]);
  });
  it("is zero only for equal strings", () => {
    expect(compareText("x", "x")).toBe(0);
    expect(compareText("x", "y")).toBeLessThan(0);
    expect(compareText("y", "x")).toBeGreaterThan(0);
  });
});
