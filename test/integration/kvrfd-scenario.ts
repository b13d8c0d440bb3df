// The kvrfd integration scenario, run per gobgpd API and encapsulation (kvrfd-gobgp4.test.ts,
// kvrfd-gobgp3.test.ts): a real kube-apiserver, a route reflector and two workers in network
// namespaces, each with its own gobgpd and kvrfd. Steps run in order and build on each other's
// state. The same steps hold for SRv6 (VPN routes, seg6 encapsulation to each attachment's SID)
// and VXLAN (EVPN type-5 routes, the remote VTEP on the VPC's VXLAN device), each on a kernel
// that has it (test/harness/needs.ts).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { describeNeeds } from "../harness/needs.js";
import { bgpVrfInstance, group, vrfFinalizer, type BGPVRFInstance } from "../../shared/api-types.js";
import type { BGPInstance } from "../../reconciler/bgp-instance/bgp-instance.js";
import { monitorRoutes, sidOf, startFabric, vrfObjectName, type Fabric, type FabricNode } from "../harness/kvrfd.js";
import { rewriteInEtcd } from "../harness/etcd.js";
import { vtepNextHop } from "../../reconciler/kernel/vtep.js";
import { srv6Behavior, type LocalPath, type Vrf } from "../../reconciler/gobgp/speaker.js";
import { routerMac } from "../../shared/router-mac.js";
import { testEnvDir } from "../harness/tools.js";
import * as k8s from "@kubernetes/client-node";

const poll = { timeout: 45_000, interval: 200 };

async function vrfState(n: FabricNode, vrf: string): Promise<{ rts: string; local: string[] } | undefined> {
  const s = await n.speaker();
  try {
    const v = (await s.listVrfs()).find((x) => x.name === vrf);
    if (v === undefined) return undefined;
    const paths = [...(await s.listVrfPaths(vrf, "ipv4")), ...(await s.listVrfPaths(vrf, "ipv6")), ...(await s.listVrfPaths(vrf, "evpn"))];
    return {
      rts: `${v.importRts.map((r) => ("asn" in r ? `${r.asn}:${r.assigned}` : "?")).join(",")}/${v.exportRts.map((r) => ("asn" in r ? `${r.asn}:${r.assigned}` : "?")).join(",")}`,
      // SRv6: "prefix SID behaviour"; VXLAN: "prefix VTEP vni N".
      local: paths.filter((p) => p.local).map((p) => (p.evpn !== undefined ? `${p.prefix} ${p.nextHop} vni ${p.evpn.vni}` : `${p.prefix} ${p.sid ?? "-"} ${p.behavior ?? "-"}`)).sort(),
    };
  } finally {
    s.close();
  }
}

async function nodeStatus(f: Fabric, instance: string): Promise<NonNullable<BGPInstance["status"]>["nodes"]> {
  const custom = f.kc.makeApiClient(k8s.CustomObjectsApi);
  const o = (await custom.getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpinstances", name: instance })) as BGPInstance;
  return o.status?.nodes ?? [];
}

/** Declares nothing: a step this run of the scenario does not take (not a skipped test). */
const notHere = (() => undefined) as unknown as typeof it;

/**
 * `full`: every step. Otherwise the steps whose outcome depends on the encapsulation (VRFs, paths
 * and kernel routes made, isolated, changed and removed); the failure and restart steps exercise
 * kvrfd's and gobgpd's session handling, which is the same whatever the encapsulation, and under
 * the vm tier's emulation each costs minutes.
 */
export function kvrfdScenario(label: string, gobgpd: () => string, encap: "srv6" | "vxlan", full = true): void {
  const itFull = full ? it : notHere;
  describeNeeds(kvrfdNeeds(encap, 6), `kvrfd with ${label}, ${encap === "srv6" ? "SRv6" : "VXLAN"}`, () => {
    let f: Fabric;
    let dir: string;
    let a: FabricNode;
    let b: FabricNode;
    const vxlan = encap === "vxlan";
    /** Where node `node`'s attachment is reached: its SID (SRv6), or the next hop naming its VTEP (VXLAN). */
    const sid = (node: 0 | 1, vpc: string, att: number): string => (vxlan ? vtepNextHop(6, `fd00:ff::${node + 1}`).via : sidOf(node, vpc, att));
    /** A local path as vrfState shows it. */
    const local = (prefix: string, node: 0 | 1, vpc: string, att: number): string => (vxlan ? `${prefix} fd00:ff::${node + 1} vni ${parseInt(vpc, 16)}` : `${prefix} ${sidOf(node, vpc, att)} 20`);

    beforeAll(async () => {
      const root = path.join(testEnvDir, "run");
      mkdirSync(root, { recursive: true });
      dir = mkdtempSync(path.join(root, `kvrfd-${label}-`));
      f = await startFabric({
        label,
        encap,
        gobgpd: gobgpd(),
        kubeconfig: inject("kubeconfig"),
        dir,
        workers: ["a", "b"],
        // Fast periodic syncs so "survives every sync" covers many; a short hold keeps the test short.
        kvrfdArgs: ["--resync-period", "8", "--route-hold", "15", "--probe-interval", "1", "--password-refresh", "1"],
      });
      a = f.worker("a");
      b = f.worker("b");
      // Someone else's routes in the VPC tables of node a: a static route and the CNI plugin's
      // route to a local pod (proto 240). kvrfd must never touch either.
      await a.netns.ip("route", "add", "10.99.0.0/16", "dev", "fab0", "table", "2748", "proto", "static");
      await a.netns.ip("-6", "route", "add", "2001:db8:99::/48", "dev", "fab0", "table", "2748", "proto", "static");
      await a.netns.ip("route", "add", "10.1.0.5/32", "dev", "fab0", "table", "2748", "proto", "240");
    }, 120_000);

    afterAll(async () => {
      await f?.stop();
      if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1" && dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    const foreignRoutesIntact = async (): Promise<void> => {
      const v4 = await a.netns.ip("route", "show", "table", "2748");
      const v6 = await a.netns.ip("-6", "route", "show", "table", "2748");
      expect(v4).toMatch(/10\.99\.0\.0\/16 dev fab0 proto static/);
      expect(v4).toMatch(/10\.1\.0\.5 dev fab0 proto 240/);
      expect(v6).toMatch(/2001:db8:99::\/48 dev fab0 proto static/);
    };

    it("brings up BGP from the BGPInstances: workers peer with the route reflector", async () => {
      await expect
        .poll(async () => (await nodeStatus(f, `${label}-rr`))?.map((n) => `${n.nodeName} ${n.establishedPeers}`), poll)
        .toEqual([`${f.rr.name} 2`]);
      const workers = await nodeStatus(f, `${label}-workers`);
      expect(workers?.map((n) => [n.nodeName, n.routerID, n.routerIDSource?.startsWith("IPv6 InternalIP")]).sort()).toEqual([
        [a.name, "253.0.0.254", true],
        [b.name, "253.0.0.253", true],
      ]);
    });

    it(`creates VRFs and local paths in gobgpd, and each node's kernel gets the other's prefixes (${vxlan ? "via the VTEP" : "seg6 encap"})`, async () => {
      await f.putVrf("a", "abc", 2748, [{ id: 1, prefixes: ["10.1.0.5/32", "2001:db8:1::5/128"] }]);
      await f.putVrf("b", "abc", 2748, [{ id: 1, prefixes: ["10.1.1.7/32"] }]);
      // VPC def overlaps VPC abc's addresses on purpose.
      await f.putVrf("a", "def", 3567, [{ id: 1, prefixes: ["10.1.0.5/32"] }]);
      await f.putVrf("b", "def", 3567, [{ id: 1, prefixes: ["10.2.2.2/32"] }]);

      await expect.poll(() => b.routes(2748), poll).toEqual([`10.1.0.5/32 ${sid(0, "abc", 1)}`, `2001:db8:1::5/128 ${sid(0, "abc", 1)}`]);
      await expect.poll(() => a.routes(2748), poll).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
      await expect.poll(() => a.routes(3567), poll).toEqual([`10.2.2.2/32 ${sid(1, "def", 1)}`]);
      await expect.poll(() => b.routes(3567), poll).toEqual([`10.1.0.5/32 ${sid(0, "def", 1)}`]);
      expect(await b.netns.ip("route", "show", "table", "2748")).toMatch(
        vxlan
          ? new RegExp(`10\\.1\\.0\\.5 via inet6 ${sid(0, "abc", 1)} dev kvx-[a-z2-7]{10} proto 241 onlink`)
          : new RegExp(`10\\.1\\.0\\.5 +encap seg6 mode encap segs 1 \\[ ${sid(0, "abc", 1)} \\] dev fab0 proto 241`),
      );

      expect(await vrfState(a, "vpc-abc")).toEqual({
        rts: "65000:2748/65000:2748",
        local: [local("10.1.0.5/32", 0, "abc", 1), local("2001:db8:1::5/128", 0, "abc", 1)],
      });
      await expect.poll(async () => (await f.getVrf("a", "abc"))?.status?.conditions?.map((c) => `${c.type}=${c.status}`), poll).toEqual([
        "Ready=True",
        "VRFConfigured=True",
        "RoutesProgrammed=True",
      ]);
      const obj = await f.getVrf("a", "abc");
      expect(obj?.status).toMatchObject({ observedGeneration: obj?.metadata.generation, localPrefixes: 2, remotePrefixes: 1 });
      expect(obj?.metadata.finalizers).toEqual([vrfFinalizer]);
      await foreignRoutesIntact();
    });

    it("never lets VPC abc's routes into VPC def's table or VRF", async () => {
      expect(await a.routes(3567)).not.toContainEqual(expect.stringContaining("10.1.1.7"));
      expect(await b.routes(3567)).toEqual([`10.1.0.5/32 ${sid(0, "def", 1)}`]);
      const s = await a.speaker();
      try {
        const def = (await s.listVrfPaths("vpc-def", vxlan ? "evpn" : "ipv4")).map((p) => p.prefix).sort();
        expect(def).toEqual(["10.1.0.5/32", "10.2.2.2/32"]);
        const own = (await s.listVrfPaths("vpc-def", vxlan ? "evpn" : "ipv4")).find((p) => p.prefix === "10.1.0.5/32");
        if (vxlan) expect(own?.evpn?.vni).toBe(0xdef);
        else expect(own?.sid).toBe(sid(0, "def", 1));
      } finally {
        s.close();
      }
    });

    it("originates an added prefix and withdraws a removed one", async () => {
      await f.putVrf("a", "abc", 2748, [{ id: 1, prefixes: ["10.1.0.5/32", "2001:db8:1::5/128"] }, { id: 2, prefixes: ["10.1.0.6/32"] }]);
      await expect.poll(() => b.routes(2748), poll).toContain(`10.1.0.6/32 ${sid(0, "abc", 2)}`);
      await f.putVrf("a", "abc", 2748, [{ id: 1, prefixes: ["10.1.0.5/32", "2001:db8:1::5/128"] }]);
      await expect.poll(() => b.routes(2748), poll).toEqual([`10.1.0.5/32 ${sid(0, "abc", 1)}`, `2001:db8:1::5/128 ${sid(0, "abc", 1)}`]);
    });

    it("ignores paths a compromised node's speaker forges against the nodes' published records, and counts them", async () => {
      // Node b's gobgpd announces, with VPC abc's route target and an RD of its own, what kvrfd on
      // b never would: SRv6, a's attachment SID of VPC def (into another tenant) and a SID outside
      // b's locator; VXLAN, a's VTEP behind b's router MAC, and VPC def's VNI. The node records
      // (Node annotations kvrf.dev/srv6-locator and kvrf.dev/vtep, startFabric) contradict each.
      const forger: Vrf = { name: "forged", rd: { type: 0, asn: 65000, assigned: 99 }, importRts: [], exportRts: [{ type: 0, asn: 65000, assigned: 0xabc }], id: 99 };
      const forged: LocalPath[] = vxlan
        ? [
            { vrf: "forged", prefix: "10.1.0.77/32", nextHop: a.address, encap: "vxlan", vni: 0xabc, routerMac: routerMac(b.name) },
            { vrf: "forged", prefix: "10.1.0.78/32", nextHop: b.address, encap: "vxlan", vni: 0xdef, routerMac: routerMac(b.name) },
          ]
        : [
            { vrf: "forged", prefix: "10.1.0.77/32", nextHop: b.address, encap: "srv6", sid: sidOf(0, "def", 1), behavior: srv6Behavior.endDT46 },
            { vrf: "forged", prefix: "10.1.0.78/32", nextHop: b.address, encap: "srv6", sid: "fd00:0:99::abc:1", behavior: srv6Behavior.endDT46 },
          ];
      const reasons = vxlan ? ["vni-of-another-vpc", "vtep-not-advertisers"] : ["sid-of-another-vpc", "sid-outside-advertiser-locator"];
      const ignored = async (): Promise<string[]> =>
        (await a.kvrfd.metrics())
          .split("\n")
          .filter((l) => l.startsWith("kvrfd_remote_paths_ignored{"))
          .sort();
      const s = await b.speaker();
      try {
        await s.addLocalPaths(forger, forged);
        // a's gobgpd has them (imported into vpc-abc by route target), a's kernel does not.
        const importedOnA = async (): Promise<string[]> => {
          const x = await a.speaker();
          try {
            return (await x.listVrfPaths("vpc-abc", vxlan ? "evpn" : "ipv4")).map((p) => p.prefix);
          } finally {
            x.close();
          }
        };
        await expect.poll(importedOnA, poll).toEqual(expect.arrayContaining(["10.1.0.77/32", "10.1.0.78/32"]));
        await expect.poll(ignored, poll).toEqual(reasons.map((r) => `kvrfd_remote_paths_ignored{reason="${r}"} 1`));
        expect(await a.routes(2748)).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
        const routes = (await f.getVrf("a", "abc"))?.status?.conditions?.find((c) => c.type === "RoutesProgrammed");
        expect(routes).toMatchObject({ status: "True", reason: "Programmed" });
        expect(routes?.message).toMatch(/1 remote prefixes in table 2748; 2 remote paths ignored: 10\.1\.0\.77\/32 from fd00:ff::/);
        await s.deleteLocalPaths(forger, forged);
        await expect.poll(ignored, poll).toEqual(reasons.map((r) => `kvrfd_remote_paths_ignored{reason="${r}"} 0`));
        await expect.poll(async () => (await f.getVrf("a", "abc"))?.status?.conditions?.find((c) => c.type === "RoutesProgrammed")?.message, poll).toBe("1 remote prefixes in table 2748");
      } finally {
        s.close();
      }
    });

    itFull("refuses an object given another VPC's route target past admission: the VRF and its routes go, and come back with the VPC's own", async () => {
      // VPC def's route target on VPC abc's object. Admission refuses that (routing-identity.yaml);
      // written into etcd directly, it reaches kvrfd as it would with the policy unbound. Importing
      // it would put def's routes into abc's table: kvrfd refuses the object and withdraws its VRF.
      const def = `65000:${0xdef}`;
      await rewriteInEtcd<BGPVRFInstance>(inject("etcdUrl"), group, bgpVrfInstance.plural, vrfObjectName(a.name, "abc"), (o) => {
        o.spec.importRouteTargets = [def];
        o.spec.exportRouteTargets = [def];
        o.metadata.generation = (o.metadata.generation ?? 1) + 1;
      });
      await expect.poll(async () => (await f.getVrf("a", "abc"))?.status?.conditions?.find((c) => c.type === "VRFConfigured"), poll).toMatchObject({
        status: "False",
        reason: "RoutingIdentityMismatch",
        message: `spec.importRouteTargets: ["${def}"] is not VPC abc's ["65000:2748"] (ASN 65000, VPC abc)`,
      });
      await expect.poll(() => vrfState(a, "vpc-abc"), poll).toBeUndefined();
      await expect.poll(() => b.routes(2748), poll).toEqual([]);
      await expect.poll(() => a.routes(2748), poll).toEqual([]);
      // VPC def on a is untouched, and none of its routes went to abc.
      expect(await a.routes(3567)).toEqual([`10.2.2.2/32 ${sid(1, "def", 1)}`]);
      await f.putVrf("a", "abc", 2748, [{ id: 1, prefixes: ["10.1.0.5/32", "2001:db8:1::5/128"] }]);
      await expect.poll(() => b.routes(2748), poll).toHaveLength(2);
      await expect.poll(() => a.routes(2748), poll).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
      await foreignRoutesIntact();
    });

    itFull("replays everything into a gobgpd that was killed and restarted, keeping kernel routes meanwhile", async () => {
      await a.gobgpd.kill();
      await a.restartGobgpd();
      await expect.poll(async () => (await vrfState(a, "vpc-abc"))?.local.length, poll).toBe(2);
      // The hold keeps a's routes while its BGP session comes back.
      expect(await a.routes(2748)).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
      // vpc-def originates the same prefix (its own RD): both are back.
      await expect.poll(async () => (await vrfState(a, "vpc-def"))?.local, poll).toEqual([local("10.1.0.5/32", 0, "def", 1)]);
      expect(await a.kvrfd.metric("kvrfd_replays_total", { reason: "gobgpd-restart" })).toBeGreaterThanOrEqual(1);
      await expect.poll(() => b.routes(2748), { ...poll, timeout: 90_000 }).toHaveLength(2);
      await expect.poll(() => b.routes(3567), poll).toEqual([`10.1.0.5/32 ${sid(0, "def", 1)}`]);
      await expect.poll(() => a.routes(3567), poll).toEqual([`10.2.2.2/32 ${sid(1, "def", 1)}`]);
    }, 150_000);

    itFull("a session reset (route reflector restarted) brings both VPCs' copies of one prefix back to the other node", async () => {
      // a originates 10.1.0.5/32 in vpc-abc and in vpc-def. gobgpd 4.8 sent only one of them in
      // the table transfer of a new session while kvrfd originated paths with vrf_id (the NLRI text
      // it keys updates by had no RD); in VPN form each is its own destination.
      await f.rr.gobgpd.kill();
      await expect.poll(() => b.routes(3567), poll).toEqual([]);
      await expect.poll(() => b.routes(2748), poll).toEqual([]);
      await f.rr.restartGobgpd();
      await expect.poll(() => b.routes(3567), { ...poll, timeout: 90_000 }).toEqual([`10.1.0.5/32 ${sid(0, "def", 1)}`]);
      await expect.poll(() => b.routes(2748), poll).toEqual([`10.1.0.5/32 ${sid(0, "abc", 1)}`, `2001:db8:1::5/128 ${sid(0, "abc", 1)}`]);
      await expect.poll(() => a.routes(2748), poll).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
      await expect.poll(() => a.routes(3567), poll).toEqual([`10.2.2.2/32 ${sid(1, "def", 1)}`]);
    }, 150_000);

    itFull("does not churn routes or gobgpd state when kvrfd restarts", async () => {
      const monitor = monitorRoutes(a.netns.name, ["route", "neigh"]);
      await a.kvrfd.stop();
      await a.startKvrfd();
      await expect.poll(() => a.kvrfd.ready(), poll).toBe(true);
      // Let it reconcile every object at least once (and a RIB pass) before judging.
      await expect.poll(() => a.kvrfd.metric("kvrfd_reconciles_total", { controller: "vrf", result: "success" }), poll).toBeGreaterThanOrEqual(2);
      await new Promise((r) => setTimeout(r, 1500));
      const events = await monitor.stop();
      // Neither a route nor (VXLAN) a VTEP's neighbour entry of kvrfd's was touched.
      expect(events.filter((l) => / proto 241|kvx-/.test(l))).toEqual([]);
      expect(await a.kvrfd.metric("kvrfd_speaker_writes_total")).toBe(0);
      expect(await a.kvrfd.metric("kvrfd_kernel_route_writes_total")).toBe(0);
      expect(await a.routes(2748)).toEqual([`10.1.1.7/32 ${sid(1, "abc", 1)}`]);
    });

    itFull("finishes a deletion made while kvrfd was down: VRF and routes go, the finalizer is released", async () => {
      await a.kvrfd.kill();
      await f.deleteVrf("a", "def");
      // Held by the finalizer while nobody can clean up.
      const held = await f.getVrf("a", "def");
      expect(held?.metadata.deletionTimestamp).toBeDefined();
      await a.startKvrfd();
      await expect.poll(() => f.getVrf("a", "def"), poll).toBeUndefined();
      expect(await vrfState(a, "vpc-def")).toBeUndefined();
      expect(await a.routes(3567)).toEqual([]);
      await expect.poll(() => b.routes(3567), poll).toEqual([]);
    });

    it("on delete withdraws the VPC from gobgpd and the kernel and releases the finalizer", async () => {
      await f.deleteVrf("b", "abc");
      await expect.poll(() => f.getVrf("b", "abc"), poll).toBeUndefined();
      expect(await vrfState(b, "vpc-abc")).toBeUndefined();
      expect(await b.routes(2748)).toEqual([]);
      await expect.poll(() => a.routes(2748), poll).toEqual([]);
      await foreignRoutesIntact();
      // Ready objects that remain were never disturbed.
      expect((await f.getVrf("a", "abc"))?.status?.conditions?.[0]?.status).toBe("True");
    });

    itFull("applies a BGP password from a Secret, and a rotated one within --password-refresh, on both ends", async () => {
      const core = f.kc.makeApiClient(k8s.CoreV1Api);
      const objects = k8s.KubernetesObjectApi.makeApiClient(f.kc);
      const namespace = "default";
      const name = `${label}-bgp-password`;
      await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { session: "first-secret" } } });
      const ref = { namespace, name, key: "session" };
      // Both instances' peers take the password from the Secret (a merge patch replaces the lists).
      for (const inst of [`${label}-rr`, `${label}-workers`]) {
        const o = await objects.read<BGPInstance>({ apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name: inst } });
        const peers = (o.spec.peers ?? []).map((p) => ({ ...p, passwordSecretRef: ref }));
        await objects.patch({ apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name: inst }, spec: { peers } }, undefined, undefined, "kvrf-test", undefined, k8s.PatchStrategy.MergePatch);
      }
      const passwords = async (): Promise<string[]> => {
        const out: string[] = [];
        for (const n of [a, f.rr]) {
          const s = await n.speaker();
          try {
            out.push(...(await s.listPeers()).map((p) => `${n.name} ${p.password ?? "-"} ${p.state}`));
          } finally {
            s.close();
          }
        }
        return out.sort();
      };
      const expected = (pw: string): string[] => [`${a.name} ${pw} established`, `${f.rr.name} ${pw} established`, `${f.rr.name} ${pw} established`].sort();
      await expect.poll(passwords, { ...poll, timeout: 90_000 }).toEqual(expected("first-secret"));

      // The refresh, not this fabric's 8 s resync, re-reads the Secret: count reads over a window
      // in which no informer resynced (nothing else makes the speaker reconcile while BGP is quiet).
      const reads = (): Promise<number> => a.kvrfd.metric("kvrfd_api_requests_total", { call: "secret" });
      const resyncs = (): Promise<number> => a.kvrfd.metric("kvrfd_informer_restarts_total", { reason: "resync" });
      let windows = 0;
      for (let i = 0; i < 8 && windows === 0; i++) {
        const [r0, s0] = [await reads(), await resyncs()];
        await new Promise((r) => setTimeout(r, 3500));
        if ((await resyncs()) !== s0) continue;
        expect((await reads()) - r0).toBeGreaterThanOrEqual(2);
        windows++;
      }
      expect(windows).toBe(1);

      // Rotation: nothing about the BGPInstance changes, kvrfd reads the Secret again.
      await core.replaceNamespacedSecret({ namespace, name, body: { metadata: { name }, stringData: { session: "second-secret" } } });
      await expect.poll(passwords, { ...poll, timeout: 90_000 }).toEqual(expected("second-secret"));
    }, 200_000);
  });
}
