import { describe, expect, it } from "vitest";
import { KernelRouteCache, parseOwnedRoutes, WriteReadGate } from "./kernel-routes.js";
import { FakeKernel } from "../testing/fake-kernel.js";

describe("iproute2 output", () => {
  it("parses owned routes of every table and family (host routes print without a length)", () => {
    // Shapes as printed by `ip -j route show table all proto 241` (iproute2 6.1).
    const got = parseOwnedRoutes([
      { dst: "10.1.1.2", encap: "seg6", segs: ["fd00:0:b::abc:0:1"], dev: "d0", table: "100" },
      { dst: "2001:db8::5", encap: "seg6", segs: ["fd00:0:B:0::2"], dev: "d0", table: "100" },
      { dst: "10.9.0.0/16", encap: "seg6", segs: ["fd00::9"], dev: "d0" },
    ]);
    expect(got).toEqual([
      { table: 100, prefix: "10.1.1.2/32", sid: "fd00:0:b::abc:0:1", dev: "d0" },
      { table: 100, prefix: "2001:db8::5/128", sid: "fd00:0:b::2", dev: "d0" },
      { table: 254, prefix: "10.9.0.0/16", sid: "fd00::9", dev: "d0" },
    ]);
  });

  it("reads default routes (a gateway's 0.0.0.0/0 and ::/0) by the family of their dump", () => {
    // iproute2 prints both as "default"; only `-4`/`-6` on the dump tells them apart.
    const seen = { dst: "default", encap: "seg6", segs: ["fd00:0:50:0:100::"], dev: "fab0", table: "161" };
    expect(parseOwnedRoutes([seen], undefined, 4)).toEqual([{ table: 161, prefix: "0.0.0.0/0", sid: "fd00:0:50:0:100::", dev: "fab0" }]);
    expect(parseOwnedRoutes([{ ...seen, segs: ["fd00:0:50:0:200::"] }], 161, 6)).toEqual([{ table: 161, prefix: "::/0", sid: "fd00:0:50:0:200::", dev: "fab0" }]);
    expect(() => parseOwnedRoutes([seen])).toThrow(/dump each family on its own/);
  });
});

describe("KernelRouteCache", () => {
  const r = (prefix: string, sid = "fd00::1") => ({ table: 100, prefix, sid, dev: "fab0" });

  it("tracks its writes, and reports a foreign route in the way instead of overwriting it", async () => {
    const k = new FakeKernel();
    k.put({ ...r("10.0.0.9/32"), proto: 240 });
    k.put({ ...r("10.0.0.3/32"), proto: 241 });
    const c = new KernelRouteCache(k);
    await c.load();
    expect(c.table(100)).toEqual([r("10.0.0.3/32")]);
    const failures = await c.apply({ add: [r("10.0.0.1/32"), r("10.0.0.9/32")], replace: [], remove: [r("10.0.0.3/32")] });
    expect(failures.map((f) => [f.route.prefix, f.foreignOwner])).toEqual([["10.0.0.9/32", "240"]]);
    expect(c.table(100)).toMatchObject([r("10.0.0.1/32")]);
    expect(c.table(100)[0]?.since).toBeTypeOf("number");
    expect(k.routes.get("100 10.0.0.9/32")?.proto).toBe(240);
  });

  it("counts its routes through every change, and forgets tables left empty", async () => {
    const k = new FakeKernel();
    k.put({ ...r("10.0.0.3/32"), proto: 241 });
    k.put({ ...r("10.0.0.4/32"), table: 200, proto: 241 });
    const c = new KernelRouteCache(k);
    await c.load();
    expect(c.count()).toBe(2);
    await c.apply({ add: [r("10.0.0.1/32"), r("10.0.0.2/32")], replace: [r("10.0.0.3/32", "fd00::9")], remove: [] });
    expect(c.count()).toBe(4);
    await c.apply({ add: [], replace: [], remove: [{ ...r("10.0.0.4/32"), table: 200 }] });
    expect([c.count(), c.tables()]).toEqual([3, [100]]);
    k.put({ ...r("10.0.0.5/32"), proto: 241 });
    await c.reloadTable(100);
    expect(c.count()).toBe(4);
    await c.clearTable(100);
    expect([c.count(), c.tables()]).toEqual([0, []]);
  });

  it("treats an add that meets its own route as a stale view, not a failure", async () => {
    const k = new FakeKernel();
    const c = new KernelRouteCache(k);
    await c.load();
    k.put({ ...r("10.0.0.1/32"), proto: 241 });
    expect(await c.apply({ add: [r("10.0.0.1/32")], replace: [], remove: [] })).toEqual([]);
    expect(c.table(100)).toEqual([r("10.0.0.1/32")]);
  });

  it("clears a table: the routes it knows, unknown ones of both families by a proto-241 flush, never other owners", async () => {
    const k = new FakeKernel();
    k.put({ ...r("2001:db8::1/128"), proto: 241 });
    const c = new KernelRouteCache(k);
    await c.load();
    k.put({ ...r("10.0.0.1/32"), proto: 241 });
    k.put({ ...r("2001:db8::2/128"), proto: 241 });
    k.put({ ...r("10.0.0.2/32"), proto: 240 });
    expect(await c.clearTable(100)).toEqual([]);
    expect([...k.routes.keys()]).toEqual(["100 10.0.0.2/32"]);
    expect(c.table(100)).toEqual([]);
  });

  it("does not forget a write that lands while it re-reads the kernel (the re-read waits for it, or it for the re-read)", async () => {
    const k = new FakeKernel();
    const c = new KernelRouteCache(k);
    await c.load();
    // A re-read whose dump is held open, and a write arriving meanwhile.
    let release!: () => void;
    k.dumpGate = new Promise<void>((res) => (release = res));
    const reading = c.load();
    await new Promise((res) => setTimeout(res, 5));
    const writing = c.apply({ add: [r("2001:db8::5/128")], replace: [], remove: [] });
    await new Promise((res) => setTimeout(res, 5));
    k.dumpGate = undefined;
    release();
    expect(await writing).toEqual([]);
    await reading;
    expect(c.table(100)).toMatchObject([r("2001:db8::5/128")]);
    // And the other way: a write in flight when the re-read starts.
    let finish!: () => void;
    const slow = new Promise<void>((res) => (finish = res));
    const apply = k.apply.bind(k);
    k.apply = async (plan) => {
      await slow;
      return apply(plan);
    };
    const writing2 = c.apply({ add: [], replace: [], remove: [r("2001:db8::5/128")] });
    const reading2 = c.load();
    await new Promise((res) => setTimeout(res, 5));
    finish();
    await Promise.all([writing2, reading2]);
    expect(c.table(100)).toEqual([]);
    expect(k.owned(100)).toEqual([]);
  });
});

describe("WriteReadGate", () => {
  const tick = (): Promise<void> => new Promise((res) => setTimeout(res, 1));
  it("lets writes overlap, holds a read until the writes in flight end, and new writes until the read ends", async () => {
    const g = new WriteReadGate();
    const log: string[] = [];
    const step = (name: string, gate: Promise<void>) => async (): Promise<void> => {
      log.push(`${name}+`);
      await gate;
      log.push(`${name}-`);
    };
    let endW1!: () => void;
    let endR!: () => void;
    const w1 = g.write(step("w1", new Promise<void>((res) => (endW1 = res))));
    const w2 = g.write(step("w2", Promise.resolve()));
    await tick();
    const rd = g.read(step("r", new Promise<void>((res) => (endR = res))));
    const rd2 = g.read(step("r2", Promise.resolve()));
    await tick();
    const w3 = g.write(step("w3", Promise.resolve()));
    await tick();
    expect(log).toEqual(["w1+", "w2+", "w2-"]);
    endW1();
    await tick();
    expect(log).toEqual(["w1+", "w2+", "w2-", "w1-", "r+"]);
    endR();
    await Promise.all([w1, w2, w3, rd, rd2]);
    // Reads run one at a time; the write that came during them waits for both.
    expect(log.slice(5)).toEqual(["r-", "r2+", "r2-", "w3+", "w3-"]);
  });
});
