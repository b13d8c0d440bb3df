import { describe, expect, it } from "vitest";
import { matchesSelector, type LabelSelector } from "./label-selector.js";

const labels = { "kubernetes.io/hostname": "iad", role: "worker", zone: "us-east" };

describe("matchesSelector", () => {
  it.each<[string, LabelSelector | undefined, boolean]>([
    ["undefined selects nothing", undefined, false],
    ["empty selects everything", {}, true],
    ["matchLabels hit", { matchLabels: { role: "worker" } }, true],
    ["matchLabels miss", { matchLabels: { role: "rr" } }, false],
    ["In hit", { matchExpressions: [{ key: "zone", operator: "In", values: ["us-east", "us-west"] }] }, true],
    ["In on missing key", { matchExpressions: [{ key: "rack", operator: "In", values: ["a"] }] }, false],
    ["NotIn on missing key", { matchExpressions: [{ key: "rack", operator: "NotIn", values: ["a"] }] }, true],
    ["NotIn hit", { matchExpressions: [{ key: "role", operator: "NotIn", values: ["worker"] }] }, false],
    ["Exists", { matchExpressions: [{ key: "role", operator: "Exists" }] }, true],
    ["DoesNotExist", { matchExpressions: [{ key: "role", operator: "DoesNotExist" }] }, false],
    ["both must hold", { matchLabels: { role: "worker" }, matchExpressions: [{ key: "zone", operator: "In", values: ["eu"] }] }, false],
  ])("%s", (_name, selector, want) => {
    expect(matchesSelector(selector, labels)).toBe(want);
  });
});
