// kvrfd's VXLAN routes and remote-VTEP entries against the real kernel (IpRouteBackend), over an
// IPv4 and an IPv6 underlay (a VXLAN device sends to VTEPs of its local address's family): written,
// read back as its own, removed, and written again after the VPC's VXLAN device was made anew
// (a new ifindex under the same name: the CNI plugin removes it with the VPC's last attachment
// on the node and makes it again with the next one).
import { afterAll, beforeAll, expect, it } from "vitest";
import { IpRouteBackend, KernelRouteCache } from "../../reconciler/kernel/kernel-routes.js";
import { remoteRoutes, planRoutes, vtepsOf } from "../../reconciler/vrf/planner.js";
import { planVteps } from "../../reconciler/kernel/vtep.js";
import type { VrfPath } from "../../reconciler/gobgp/speaker.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";

const dev = "kvx-aaaaaaaafb";

for (const u of [
  { family: 4, local: "198.51.100.11", a: "198.51.100.12", b: "198.51.100.13" },
  { family: 6, local: "fd00:ff::11", a: "fd00:ff::12", b: "fd00:ff::13" },
] as const) {
describeNeeds(["vxlan", "ipv4-via-ipv6", "policy-routing"], `kvrfd's VXLAN routes and VTEP entries in the kernel (IPv${u.family} underlay)`, () => {
  let node: Netns;
  let cache: KernelRouteCache;

  const makeDevice = async (): Promise<void> => {
    await node.ip("link", "add", dev, "address", "02:00:00:00:00:0b", "type", "vxlan", "id", "161", "local", u.local, "dstport", "4789", "nolearning");
    await node.ip("link", "set", dev, "up");
  };
  const path = (prefix: string, nextHop: string, mac: string): VrfPath => ({ vrf: "vpc-a1", prefix, nextHop, best: true, local: false, neighbor: "198.51.100.1", evpn: { vni: 161, routerMac: mac } });
  const want = (): ReturnType<typeof remoteRoutes>["routes"] =>
    remoteRoutes(
      [path("10.10.12.2/32", u.a, "02:00:00:00:00:12"), path("fd10:a1:12::2/128", u.a, "02:00:00:00:00:12"), path("10.10.13.2/32", u.b, "02:00:00:00:00:13")],
      161,
      { srv6: { unusable: "-" }, vxlan: { dev, family: u.family, ipv4ViaIpv6: true } },
    ).routes;
  const sync = async (routes = want()): Promise<void> => {
    const plan = planRoutes(routes, cache.table(161));
    plan.vteps = planVteps(vtepsOf(routes), cache.vteps(dev));
    expect(await cache.apply(plan)).toEqual([]);
  };
  const kernel = async (): Promise<string> =>
    [
      await node.ip("route", "show", "table", "161", "proto", "241"),
      await node.ip("-6", "route", "show", "table", "161", "proto", "241"),
      await node.ip("neigh", "show", "dev", dev, "nud", "permanent"),
      await node.exec("bridge", "fdb", "show", "dev", dev),
    ].join("");

  beforeAll(async () => {
    node = await createNetns("vxroutes");
    await node.ip("addr", "add", `${u.local}/${u.family === 4 ? 32 : 128}`, "dev", "lo");
    await makeDevice();
    cache = new KernelRouteCache(new IpRouteBackend(node.name));
    await cache.load();
  });

  afterAll(cleanupNetns);

  it("writes the routes, neighbours and FDB entries, and reads them back as its own", async () => {
    await sync();
    const k = await kernel();
    if (u.family === 4) {
      expect(k).toContain(`10.10.12.2 via ${u.a} dev ${dev}`);
      expect(k).toContain(`fd10:a1:12::2 via ::ffff:${u.a} dev ${dev}`);
    } else {
      expect(k).toMatch(new RegExp(`10\\.10\\.12\\.2 via inet6 fe80::[0-9a-f:]+ dev ${dev}`));
      expect(k).toMatch(new RegExp(`fd10:a1:12::2 via fe80::[0-9a-f:]+ dev ${dev}`));
    }
    expect(k).toContain(`02:00:00:00:00:12 dst ${u.a} self permanent`);
    expect(k).toContain(`02:00:00:00:00:13 dst ${u.b} self permanent`);
    const fresh = new KernelRouteCache(new IpRouteBackend(node.name));
    await fresh.load();
    expect(planRoutes(want(), fresh.table(161))).toEqual({ add: [], replace: [], remove: [] });
    expect(planVteps(vtepsOf(want()), fresh.vteps(dev))).toEqual({ add: [], remove: [] });
  });

  it("removes a VTEP's entries with its last route, and keeps the others", async () => {
    await sync(want().filter((r) => !r.prefix.startsWith("10.10.13.")));
    const k = await kernel();
    expect(k).not.toContain(`dst ${u.b} `);
    expect(k).not.toContain("02:00:00:00:00:13");
    expect(k).not.toContain("10.10.13.2");
    expect(k).toContain(`02:00:00:00:00:12 dst ${u.a} self permanent`);
  });

  it("writes them again after the VXLAN device was made anew under the same name", async () => {
    await node.ip("link", "del", dev);
    await makeDevice();
    await cache.load();
    await sync();
    const k = await kernel();
    expect(k).toContain(`02:00:00:00:00:12 dst ${u.a} self permanent`);
    expect(k).toContain(`02:00:00:00:00:13 dst ${u.b} self permanent`);
    expect(k).toContain("10.10.12.2 via ");
    // And takes everything away again.
    await sync([]);
    expect(await kernel()).toBe("");
  });

  it("reads back default routes of both families (a gateway's) as its own, and removes them", async () => {
    const gw = [path("0.0.0.0/0", u.a, "02:00:00:00:00:12"), path("::/0", u.a, "02:00:00:00:00:12")];
    const routes = remoteRoutes(gw, 161, { srv6: { unusable: "-" }, vxlan: { dev, family: u.family, ipv4ViaIpv6: true } }).routes;
    await sync(routes);
    const fresh = new KernelRouteCache(new IpRouteBackend(node.name));
    await fresh.load();
    expect(fresh.table(161).map((r) => r.prefix).sort()).toEqual(["0.0.0.0/0", "::/0"]);
    expect(planRoutes(routes, fresh.table(161))).toEqual({ add: [], replace: [], remove: [] });
    const plan = planRoutes([], fresh.table(161));
    plan.vteps = planVteps([], fresh.vteps(dev));
    expect(await fresh.apply(plan)).toEqual([]);
    expect(await kernel()).toBe("");
    await cache.load();
  });

  it("clears a table of its routes of both families, also those written behind its back, and no one else's", async () => {
    await sync();
    // Routes of kvrfd's protocol the cache never saw (a view gone stale), and another owner's.
    const behind = u.family === 4 ? ["via", u.b] : ["via", "inet6", "fe80::1"];
    await node.ip("route", "add", "10.10.99.1/32", ...behind, "dev", dev, "table", "161", "proto", "241", "onlink");
    await node.ip("-6", "route", "add", "fd10:a1:99::1/128", "dev", dev, "table", "161", "proto", "241");
    await node.ip("-6", "route", "add", "fd10:a1:99::2/128", "dev", dev, "table", "161", "proto", "240");
    expect(await cache.clearTable(161)).toEqual([]);
    expect(await kernel()).toBe("");
    expect(await node.ip("-6", "route", "show", "table", "161")).toMatch(/^fd10:a1:99::2 dev \S+ proto 240/);
    expect(cache.table(161)).toEqual([]);
  });
});
}
