import { describe, expect, it } from "vitest";
import { Metrics } from "./metrics.js";

describe("Metrics", () => {
  it("reads the status backlog when scraped", async () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(await m.registry.getSingleMetricAsString("kvrfd_status_pending")).toMatch(/^kvrfd_status_pending 0$/m);
    let pending = 3;
    m.statusBacklog = () => pending;
    expect(await m.registry.getSingleMetricAsString("kvrfd_status_pending")).toMatch(/^kvrfd_status_pending 3$/m);
    pending = 0;
    expect(await m.registry.getSingleMetricAsString("kvrfd_status_pending")).toMatch(/^kvrfd_status_pending 0$/m);
  });
});
