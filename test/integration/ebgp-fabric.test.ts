// An eBGP fabric (RFC 7938): two workers of different ASNs (65001, 65002), each peering with a
// spine of ASN 65000 — FRR 8.4, an independent implementation, as a ToR would run it. The VPC's
// route target comes from the cluster-wide route-target ASN (65000), not from each node's ASN, so
// the racks import each other's routes; each RD keeps its node's ASN. Real kube-apiserver, gobgpd
// and kvrfd per worker (test/harness/kvrfd.ts), the kernel the encapsulation needs (VXLAN here,
// SRv6 in the vm tier).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { vtepNextHop } from "../../reconciler/kernel/vtep.js";
import { describeNeeds, timeScale } from "../harness/needs.js";
import { sidOf, startFabric, workerAsn, type Fabric, type FabricNode } from "../harness/kvrfd.js";
import { testEnvDir, tool } from "../harness/tools.js";

// Convergence waits stretch with the vm's emulation (vitest's own timeouts do, vitest.config.ts).
const poll = { timeout: 45_000 * timeScale, interval: 250 };

interface FrrPeer {
  state?: string;
  remoteAs?: number;
}

for (const encap of ["vxlan", "srv6"] as const) {
  describeNeeds(kvrfdNeeds(encap, 6), `eBGP fabric, an ASN per worker, FRR 8.4 as the spine (${encap === "srv6" ? "SRv6" : "VXLAN"})`, () => {
    let f: Fabric;
    let dir: string;
    let a: FabricNode;
    let b: FabricNode;
    const vxlan = encap === "vxlan";
    const label = vxlan ? "ebx" : "ebs";
    /** Where worker `node`'s attachment is reached from the other worker. */
    const via = (node: 0 | 1, vpc: string, att: number): string => (vxlan ? vtepNextHop(6, `fd00:ff::${node + 1}`).via : sidOf(node, vpc, att));

    beforeAll(async () => {
      const root = path.join(testEnvDir, "run");
      mkdirSync(root, { recursive: true });
      dir = mkdtempSync(path.join(root, `kvrfd-${label}-`));
      f = await startFabric({ label, encap, ebgp: true, gobgpd: tool("gobgpd4"), kubeconfig: inject("kubeconfig"), dir, workers: ["a", "b"] });
      a = f.worker("a");
      b = f.worker("b");
    });

    afterAll(async () => {
      await f?.stop();
      if (dir !== undefined && process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
    });

    it("peers each worker with the spine over eBGP, with its own ASN", async () => {
      const spine = f.spine;
      if (spine === undefined) throw new Error("no spine");
      await expect
        .poll(async () => {
          const sum = await spine.json<{ ipv4Vpn?: { peers?: Record<string, FrrPeer> }; l2VpnEvpn?: { peers?: Record<string, FrrPeer> } }>("show bgp summary json");
          const peers = (vxlan ? sum.l2VpnEvpn : sum.ipv4Vpn)?.peers ?? {};
          return Object.entries(peers)
            .map(([addr, p]) => `${addr} ${p.remoteAs} ${p.state}`)
            .sort();
        }, poll)
        .toEqual([`${a.address} ${workerAsn(0)} Established`, `${b.address} ${workerAsn(1)} Established`]);
    });

    it("imports the VPC's routes across ASNs: the route target is the cluster's, each RD its node's", async () => {
      await f.putVrf("a", "abc", 2748, [{ id: 1, prefixes: ["10.1.0.5/32", "2001:db8:1::5/128"] }]);
      await f.putVrf("b", "abc", 2748, [{ id: 1, prefixes: ["10.1.1.7/32"] }]);
      await expect.poll(() => b.routes(2748), poll).toEqual([`10.1.0.5/32 ${via(0, "abc", 1)}`, `2001:db8:1::5/128 ${via(0, "abc", 1)}`]);
      await expect.poll(() => a.routes(2748), poll).toEqual([`10.1.1.7/32 ${via(1, "abc", 1)}`]);
      expect((await f.getVrf("a", "abc"))?.spec).toMatchObject({ asn: 65001, routeTargetASN: 65000, routeDistinguisher: "65001:2748", importRouteTargets: ["65000:2748"] });
      // What the spine saw: worker a's route under a's RD, with the cluster's route target, and a's
      // next hop passed on (the VTEP, or the owner of the SID).
      const spine = f.spine;
      if (spine === undefined) throw new Error("no spine");
      const shown = vxlan
        ? await spine.vtysh("show bgp l2vpn evpn route rd 65001:2748 type prefix")
        : await spine.vtysh("show bgp ipv4 vpn rd 65001:2748 10.1.0.5/32");
      expect(shown).toContain("RT:65000:2748");
      expect(shown).toContain(a.address);
    });

    it("keeps another VPC's routes out, whatever the ASNs", async () => {
      await f.putVrf("b", "def", 3567, [{ id: 1, prefixes: ["10.2.2.2/32"] }]);
      await f.putVrf("a", "def", 3567, [{ id: 1, prefixes: ["10.1.0.5/32"] }]);
      await expect.poll(() => a.routes(3567), poll).toEqual([`10.2.2.2/32 ${via(1, "def", 1)}`]);
      expect(await a.routes(2748)).toEqual([`10.1.1.7/32 ${via(1, "abc", 1)}`]);
      expect(await b.routes(2748)).toEqual([`10.1.0.5/32 ${via(0, "abc", 1)}`, `2001:db8:1::5/128 ${via(0, "abc", 1)}`]);
    });

    it("withdraws across the spine when a VPC goes from a worker", async () => {
      await f.deleteVrf("b", "def");
      await expect.poll(() => f.getVrf("b", "def"), poll).toBeUndefined();
      await expect.poll(() => a.routes(3567), poll).toEqual([]);
      expect(await a.routes(2748)).toEqual([`10.1.1.7/32 ${via(1, "abc", 1)}`]);
    });
  });
}
