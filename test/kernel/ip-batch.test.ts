// kvrfd's kernel route writes in a throwaway namespace, through the long-lived `ip -force -batch`
// process (shared/kernel/ip.ts IpBatchProcess) and IpRouteBackend on top of it: failures land on
// their own lines, concurrent requests share batches, a line that makes iproute2 exit fails only
// the batch it was in, and the next batch gets a new process.
import { afterAll, beforeAll, expect, it } from "vitest";
import { IpBatchProcess } from "../../shared/kernel/ip.js";
import { IpRouteBackend } from "../../reconciler/kernel/kernel-routes.js";
import { kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { describeNeeds } from "../harness/needs.js";
import { createNetns, type Netns } from "../harness/netns.js";

/** A namespace with an up veth pair and an IPv6 address on fab0, deleted after the suite. */
function underlay(label: string): () => Netns {
  let ns: Netns | undefined;
  beforeAll(async () => {
    ns = await createNetns(label);
    await ns.ip("link", "add", "fab0", "type", "veth", "peer", "name", "fab1");
    await ns.ip("link", "set", "fab1", "up");
    await ns.ip("link", "set", "fab0", "up");
    await ns.ip("-6", "addr", "add", "fd00:ff::a/64", "dev", "fab0", "nodad");
  });
  afterAll(async () => {
    await ns?.delete();
  });
  return () => {
    if (ns === undefined) throw new Error("namespace not set up");
    return ns;
  };
}

describeNeeds(["veth", "policy-routing"], "ip batch process", () => {
  const netns = underlay("ipbatch");
  let ns: Netns;
  let b: IpBatchProcess;

  beforeAll(() => {
    ns = netns();
    b = new IpBatchProcess({ netns: ns.name });
  });

  afterAll(() => {
    b?.close();
  });

  it("reports each failed line with its message, the others run", async () => {
    const failed = await b.run([
      "route add 10.0.0.0/24 dev fab0 table 100 proto 241",
      "route add 10.0.0.0/24 dev fab0 table 100 proto 241",
      "route add 10.0.1.0/24 dev nope table 100 proto 241",
      "route add 10.0.2.0/24 dev fab0 table 100 proto 241",
    ]);
    expect([...failed.keys()]).toEqual([1, 2]);
    expect(failed.get(1)).toMatch(/File exists/);
    expect(failed.get(2)).toMatch(/nope/);
    expect(await ns.ip("route", "show", "table", "100")).toMatch(/10\.0\.2\.0\/24/);
  });

  it("keeps line numbers straight across many concurrent batches", async () => {
    const lines = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `route add 10.1.${(from + i) >> 8}.${(from + i) & 255}/32 dev fab0 table 101 proto 241`);
    const runs = await Promise.all([b.run(lines(0, 500)), b.run([...lines(500, 10), ...lines(0, 1)]), b.run(lines(510, 300))]);
    expect(runs.map((m) => [...m.keys()])).toEqual([[], [10], []]);
    expect((await ns.ip("route", "show", "table", "101")).trim().split("\n")).toHaveLength(810);
  });

  it("a line that makes iproute2 exit fails its batch; the next one starts a new process", async () => {
    await expect(b.run(["route add not-a-prefix dev fab0 table 102"])).rejects.toThrow(/not-a-prefix/);
    expect(await b.run(["route add 10.2.0.0/24 dev fab0 table 102 proto 241"])).toEqual(new Map());
  });
});

// kvrfd's routes are seg6 encapsulations.
describeNeeds(["veth", ...kvrfdNeeds("srv6")], "kvrfd's kernel routes through the batch process", () => {
  const netns = underlay("iproutes");

  it("IpRouteBackend writes, attributes failures per request and reads back kvrfd's routes", async () => {
    const be = new IpRouteBackend(netns().name);
    const r = (prefix: string, sid: string) => ({ table: 200, prefix, sid, dev: "fab0" });
    const [one, two] = await Promise.all([
      be.apply({ add: [r("10.3.0.1/32", "fd00:0:b::1"), r("10.3.0.2/32", "fd00:0:b::2")], replace: [], remove: [] }),
      be.apply({ add: [r("10.3.0.1/32", "fd00:0:b::9")], replace: [], remove: [r("10.3.9.9/32", "fd00::9")] }),
    ]);
    expect(one).toEqual([]);
    // The second add of 10.3.0.1 is refused; removing what is not there is fine.
    expect(two.map((f) => [f.op, f.route.prefix])).toEqual([["add", "10.3.0.1/32"]]);
    expect((await be.dumpTable(200)).map((x) => [x.prefix, x.sid]).sort()).toEqual([
      ["10.3.0.1/32", "fd00:0:b::1"],
      ["10.3.0.2/32", "fd00:0:b::2"],
    ]);
  });
});
