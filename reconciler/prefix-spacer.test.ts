import { describe, expect, it } from "vitest";
import { PrefixSpacer } from "./prefix-spacer.js";

describe("PrefixSpacer", () => {
  it("runs changes of one prefix one at a time, spaced when the VRF differs", async () => {
    const sp = new PrefixSpacer(80);
    const log: [string, number][] = [];
    const t0 = Date.now();
    const op = (what: string, ms = 10) => async () => {
      log.push([`${what} start`, Date.now() - t0]);
      await new Promise((r) => setTimeout(r, ms));
      log.push([`${what} end`, Date.now() - t0]);
    };
    await Promise.all([
      sp.run("10.0.0.5/32", "vpc-a", op("a")),
      sp.run("10.0.0.5/32", "vpc-b", op("b")),
      sp.run("10.0.0.5/32", "vpc-b", op("b2")),
      sp.run("10.0.0.6/32", "vpc-c", op("c")),
    ]);
    const at = (k: string): number => log.find(([w]) => w === k)?.[1] ?? -1;
    // Other prefixes do not wait.
    expect(at("c start")).toBeLessThan(at("a end"));
    // Another VRF's change waits for the gap after the previous one ended…
    expect(at("b start")).toBeGreaterThanOrEqual(at("a end") + 75);
    // …the same VRF's next change only for it to end.
    expect(at("b2 start")).toBeGreaterThanOrEqual(at("b end"));
    expect(at("b2 start")).toBeLessThan(at("b end") + 60);
  });
});
