import { describe, expect, it } from "vitest";
import { aaKey } from "../../shared/route-distinguisher.js";
import { RibView } from "./rib.js";
import type { RibPath } from "./speaker.js";

const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });

/** A RIB path (remote unless said otherwise; `neighbor: undefined` for our own). */
function path(rd: number, prefix: string, over: { [K in keyof RibPath]?: RibPath[K] | undefined } = {}): RibPath {
  const p: { [K in keyof RibPath]?: RibPath[K] | undefined } = { family: prefix.includes(":") ? "ipv6" : "ipv4", rd: rt(rd), prefix, rts: [rt(rd)], nextHop: "fd00:ff::b", sid: `fd00:0:b::${rd}`, behavior: 20, best: true, local: false, neighbor: "fd00:ff::1", withdraw: false, ...over };
  if (p.neighbor === undefined) delete p.neighbor;
  return p as RibPath;
}

const view = (v: RibView, rts: number[]): string[] =>
  v
    .imported(rts.map(rt))
    .map((p) => `${p.rd.type === 1 ? "" : p.rd.assigned} ${p.prefix} ${p.sid ?? "-"}`)
    .sort();

describe("RibView", () => {
  it("is not synced until the table was read; events meanwhile apply on top of the read, in order", () => {
    const v = new RibView();
    expect(v.synced).toBe(false);
    const t = v.beginRead();
    // Changes the watch reported while the table was being listed: the listing may predate them.
    expect(v.apply([path(1, "10.0.0.1/32", { sid: "fd00::new" })])).toBeUndefined();
    expect(v.apply([path(2, "10.0.0.2/32", { withdraw: true })])).toBeUndefined();
    expect(v.synced).toBe(false);
    expect(v.finishRead(t, [path(1, "10.0.0.1/32"), path(2, "10.0.0.2/32"), path(3, "10.0.0.3/32")])).toBe(true);
    expect(v.synced).toBe(true);
    expect(view(v, [1, 2, 3])).toEqual(["1 10.0.0.1/32 fd00::new", "3 10.0.0.3/32 fd00:0:b::3"]);
  });

  it("keeps only best paths of the read, and every path this node originates (best or not)", () => {
    const v = new RibView();
    const t = v.beginRead();
    v.finishRead(t, [
      path(1, "10.0.0.1/32", { best: false, local: true, neighbor: undefined, nextHop: "fd00:ff::a", sid: "fd00:0:a::1" }),
      path(1, "10.0.0.1/32"),
      path(2, "10.0.0.2/32", { best: true, local: true, neighbor: undefined }),
    ]);
    expect(view(v, [1])).toEqual(["1 10.0.0.1/32 fd00:0:b::1"]);
    expect(v.localPaths(rt(1), "vpc-1")).toEqual([{ vrf: "vpc-1", prefix: "10.0.0.1/32", nextHop: "fd00:ff::a", encap: "srv6", sid: "fd00:0:a::1", behavior: 20 }]);
    expect([...v.localPrefixes(rt(2))]).toEqual(["10.0.0.2/32"]);
  });

  it("a re-read (periodic) keeps the view in use, corrects drift, and keeps changes and own writes made meanwhile", () => {
    const v = new RibView();
    v.finishRead(v.beginRead(), [path(1, "10.0.0.1/32"), path(2, "10.0.0.2/32")]);
    const lp = { vrf: "vpc-3", prefix: "10.0.0.3/32", nextHop: "fd00:ff::a", encap: "srv6" as const, sid: "fd00::3", behavior: 20 as const };
    const t = v.beginRead();
    expect(v.synced).toBe(true);
    // Reported and applied at once, and kept for the read.
    expect(v.apply([path(4, "10.0.0.4/32")])?.map((c) => c.rd)).toEqual([aaKey(rt(4))]);
    v.setLocal(rt(3), lp);
    expect(view(v, [1, 2, 3, 4])).toEqual(["1 10.0.0.1/32 fd00:0:b::1", "2 10.0.0.2/32 fd00:0:b::2", "4 10.0.0.4/32 fd00:0:b::4"]);
    // The read (taken before those) says 10.0.0.2 is gone: the view had drifted.
    expect(v.finishRead(t, [path(1, "10.0.0.1/32")])).toBe(true);
    expect(view(v, [1, 2, 3, 4])).toEqual(["1 10.0.0.1/32 fd00:0:b::1", "4 10.0.0.4/32 fd00:0:b::4"]);
    expect(v.localPaths(rt(3), "vpc-3")).toEqual([lp]);
  });

  it("a superseded read changes nothing", () => {
    const v = new RibView();
    const old = v.beginRead();
    const t = v.beginRead();
    expect(v.finishRead(old, [path(1, "10.0.0.1/32")])).toBe(false);
    expect(v.finishRead(t, [])).toBe(true);
    expect(view(v, [1])).toEqual([]);
  });

  it("a reset during a read (BGP started: the RIB is empty) drops what the read returns and what came before", () => {
    const v = new RibView();
    const t = v.beginRead();
    v.apply([path(1, "10.0.0.1/32")]);
    v.reset();
    v.apply([path(2, "10.0.0.2/32")]);
    expect(v.finishRead(t, [path(3, "10.0.0.3/32")])).toBe(true);
    expect(view(v, [1, 2, 3])).toEqual(["2 10.0.0.2/32 fd00:0:b::2"]);
  });

  const own = { local: true, neighbor: undefined };
  it.each([
    ["a new path", [], [path(1, "10.0.0.1/32")], [[1], false]],
    ["a withdrawal names the route targets the path had", [path(1, "10.0.0.1/32", { rts: [rt(1), rt(7)] })], [path(1, "10.0.0.1/32", { withdraw: true, rts: [] })], [[1, 7], false]],
    ["a new best path with other route targets names both", [path(1, "10.0.0.1/32")], [path(1, "10.0.0.1/32", { rts: [rt(2)] })], [[1, 2], false]],
    ["a withdrawal of an unknown destination changes nothing", [], [path(1, "10.0.0.1/32", { withdraw: true })], undefined],
    ["a path of our own, added", [], [path(1, "10.0.0.1/32", own)], [[1], true]],
    ["a path of our own, replaced", [path(1, "10.0.0.1/32", own)], [path(1, "10.0.0.1/32", { ...own, sid: "fd00::2" })], [[1], true]],
    ["a path of our own, withdrawn", [path(1, "10.0.0.1/32", own)], [path(1, "10.0.0.1/32", { ...own, withdraw: true })], [[1], true]],
    ["our path withdrawn, a remote one of the same RD is best now", [path(1, "10.0.0.1/32", own)], [path(1, "10.0.0.1/32")], [[1], false]],
    ["a remote path replaced by ours", [path(1, "10.0.0.1/32")], [path(1, "10.0.0.1/32", own)], [[1], false]],
  ] as const)("apply: %s", (_what, before, change, want) => {
    const v = new RibView();
    v.finishRead(v.beginRead(), [...before]);
    const got = v.apply([...change]);
    expect(got?.map((c) => [[...c.rts].sort(), c.ownOnly, c.rd])).toEqual(want === undefined ? [] : [[want[0].map((n) => aaKey(rt(n))).sort(), want[1], aaKey(rt(1))]]);
  });

  it("imports by route target: a path with several route targets is seen by each, once", () => {
    const v = new RibView();
    v.finishRead(v.beginRead(), [path(1, "10.0.0.1/32", { rts: [rt(1), rt(2)] }), path(2, "10.0.0.2/32")]);
    expect(view(v, [1])).toEqual(["1 10.0.0.1/32 fd00:0:b::1"]);
    expect(view(v, [1, 2])).toEqual(["1 10.0.0.1/32 fd00:0:b::1", "2 10.0.0.2/32 fd00:0:b::2"]);
    v.apply([path(1, "10.0.0.1/32", { withdraw: true })]);
    expect(view(v, [1, 2])).toEqual(["2 10.0.0.2/32 fd00:0:b::2"]);
  });

  it("tracks our own paths by RD through our writes; deleting the VRF drops them", () => {
    const v = new RibView();
    v.reset();
    expect(v.synced).toBe(true);
    const lp = { vrf: "vpc-1", prefix: "10.0.0.1/32", nextHop: "fd00:ff::a", encap: "srv6" as const, sid: "fd00::1", behavior: 20 as const };
    v.setLocal(rt(1), lp);
    v.setLocal(rt(1), { ...lp, prefix: "10.0.0.2/32" });
    v.deleteLocal(rt(1), { prefix: "10.0.0.2/32", encap: "srv6" });
    expect(v.localPaths(rt(1), "vpc-x")).toEqual([{ ...lp, vrf: "vpc-x" }]);
    v.dropLocal(rt(1));
    expect(v.localPaths(rt(1), "vpc-1")).toEqual([]);
  });

  it("after the watch ends, nothing counts until the next read", () => {
    const v = new RibView();
    v.finishRead(v.beginRead(), [path(1, "10.0.0.1/32")]);
    v.invalidate();
    expect(v.synced).toBe(false);
    expect(v.apply([path(2, "10.0.0.2/32")])).toBeUndefined();
  });
});
