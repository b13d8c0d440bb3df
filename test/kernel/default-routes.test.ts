// A gateway's default routes (0.0.0.0/0 and ::/0 from a PE outside the cluster, docs/fabric.md
// "Routes from outside the cluster") in a VPC's table next to the CNI plugin's unreachable
// defaults, against the real kernel: kvrfd writes them, a kvrfd that starts again reads them back
// as its own (iproute2 prints both as "default"), and removes them when the gateway withdraws
// them, leaving the plugin's. VXLAN routes here (the host kernel has no SRv6); the SRv6 ones go
// through the same dump, and test/lab/frr-srv6-gateway.test.ts runs them with FRR in the vm tier.
import { afterAll, beforeAll, expect, it } from "vitest";
import { IpRouteBackend, KernelRouteCache } from "../../reconciler/kernel/kernel-routes.js";
import { planVteps } from "../../reconciler/kernel/vtep.js";
import { planRoutes, remoteRoutes, vtepsOf } from "../../reconciler/vrf/planner.js";
import type { VrfPath } from "../../reconciler/gobgp/speaker.js";
import { unreachableMetric } from "../../cni/dataplane/lines.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";

const dev = "kvx-aaaaaaaafb";
const gateway = "198.51.100.50";

describeNeeds(["vxlan", "policy-routing"], "kvrfd's default routes from a gateway, next to the CNI plugin's unreachable defaults", () => {
  let node: Netns;

  const path = (prefix: string): VrfPath => ({ vrf: "vpc-a1", prefix, nextHop: gateway, best: true, local: false, neighbor: "198.51.100.1", evpn: { vni: 161, routerMac: "02:00:00:00:00:50" } });
  const want = (prefixes = ["0.0.0.0/0", "::/0", "10.99.0.0/24"]): ReturnType<typeof remoteRoutes>["routes"] =>
    remoteRoutes(prefixes.map(path), 161, { srv6: { unusable: "-" }, vxlan: { dev, family: 4, ipv4ViaIpv6: true } }).routes;
  const sync = async (cache: KernelRouteCache, routes: ReturnType<typeof want>): Promise<void> => {
    const plan = planRoutes(routes, cache.table(161));
    plan.vteps = planVteps(vtepsOf(routes), cache.vteps(dev));
    expect(await cache.apply(plan)).toEqual([]);
  };
  const table = async (): Promise<string> => (await node.ip("route", "show", "table", "161")) + (await node.ip("-6", "route", "show", "table", "161"));

  beforeAll(async () => {
    node = await createNetns("gwdefault");
    await node.ip("addr", "add", "198.51.100.11/32", "dev", "lo");
    await node.ip("link", "add", dev, "address", "02:00:00:00:00:0b", "type", "vxlan", "id", "161", "local", "198.51.100.11", "dstport", "4789", "nolearning");
    await node.ip("link", "set", dev, "up");
    // The CNI plugin's last resort (cni/dataplane/lines.ts tableDefaultLines).
    await node.ip("route", "add", "unreachable", "0.0.0.0/0", "metric", unreachableMetric, "table", "161", "proto", "240");
    await node.ip("-6", "route", "add", "unreachable", "::/0", "metric", unreachableMetric, "table", "161", "proto", "240");
  });

  afterAll(cleanupNetns);

  it("writes them, reads them back as its own after a restart, and removes them on withdrawal, the plugin's defaults staying", async () => {
    const first = new KernelRouteCache(new IpRouteBackend(node.name));
    await first.load();
    await sync(first, want());
    expect(await table()).toMatch(new RegExp(`^default via ${gateway} dev ${dev} proto 241 onlink`, "m"));
    expect(await table()).toMatch(new RegExp(`^default via ::ffff:${gateway.replaceAll(".", "\\.")} dev ${dev} proto 241 .*onlink`, "m"));

    // kvrfd starts again: the kernel holds its routes, defaults included, and nothing is to do.
    const restarted = new KernelRouteCache(new IpRouteBackend(node.name));
    await restarted.load();
    expect(restarted.table(161).map((r) => r.prefix).sort()).toEqual(["0.0.0.0/0", "10.99.0.0/24", "::/0"]);
    expect(planRoutes(want(), restarted.table(161))).toEqual({ add: [], replace: [], remove: [] });

    // The gateway withdraws its defaults: they go, its prefix and the plugin's defaults stay.
    await sync(restarted, want(["10.99.0.0/24"]));
    const left = await table();
    expect(left).not.toMatch(/^default .*proto 241/m);
    expect(left).toMatch(/^10\.99\.0\.0\/24 via .* proto 241/m);
    expect(left.match(/^unreachable default (dev lo )?proto 240 metric 4278198272/gm)).toHaveLength(2);
  });

  it("tells its own default written behind its back from another owner's, the plugin's unreachable default being neither", async () => {
    const stale = new KernelRouteCache(new IpRouteBackend(node.name));
    await stale.load();
    // Its own route, which this cache has not seen: the add meets it and the cache catches up.
    await node.ip("route", "add", "0.0.0.0/0", "via", gateway, "dev", dev, "onlink", "table", "161", "proto", "241");
    const plan = planRoutes(want(), stale.table(161));
    plan.vteps = planVteps(vtepsOf(want()), stale.vteps(dev));
    expect(await stale.apply(plan)).toEqual([]);
    expect(stale.table(161).map((r) => r.prefix)).toContain("0.0.0.0/0");
    // Someone else's default at the metric kvrfd's would get: reported with its owner, kept.
    await sync(stale, want(["10.99.0.0/24"]));
    await node.ip("-6", "route", "add", "::/0", "dev", dev, "table", "161", "proto", "static");
    const blocked = planRoutes(want(["::/0", "10.99.0.0/24"]), stale.table(161));
    expect((await stale.apply(blocked)).map((f) => [f.route.prefix, f.foreignOwner])).toEqual([["::/0", "static"]]);
    expect(await node.ip("-6", "route", "show", "table", "161", "exact", "::/0")).toMatch(/^default dev \S+ proto static metric 1024/m);
  });
});
