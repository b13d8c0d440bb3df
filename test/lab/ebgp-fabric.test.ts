// The lab as an eBGP fabric (LabSettings.fabric "ebgp", `scripts/lab up --reflector frr --fabric
// ebgp`): each worker its own ASN (iad 65001, sjc 65002, dfw 65003), eBGP with FRR 8.4 as the spine
// of AS 65000 in the reflector's namespace, the VPCs' route targets from the cluster-wide
// route-target ASN 65000 (docs/fabric.md). Pods are attached by the real CNI plugin (which reads
// both ASNs from its config), routed by each worker's kvrfd and gobgpd:
//  - every worker's session with the spine is eBGP, in its own ASN;
//  - each node's BGPVRFInstance has its node's ASN in the RD and the cluster's in the route target;
//  - pods of a VPC reach each other across the ASNs, never another VPC;
//  - the spine holds each pod's route under its node's RD with the cluster's route target, the
//    node's VTEP as next hop (passed on unchanged);
//  - a deleted pod's route leaves the other workers across the spine.
import { afterAll, beforeAll, expect, it } from "vitest";
import * as k8s from "@kubernetes/client-node";
import { attachPod, converge, detachPod, down, kernelRoutes, kubeClient, readState, reflectorFrrName, up, type AttachedPod } from "../../scripts/netns-lab/lab.js";
import { demoPods, describeSettings, labNodes, underlayAddress, workerAsn, workers, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { vtyshJson } from "../../scripts/netns-lab/frr.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { bgpVrfInstanceName, type BGPVRFInstance } from "../../shared/api-types.js";
import { describeNeeds, timeScale } from "../harness/needs.js";
import { waitFor } from "../harness/process.js";

const log = (s: string): void => void process.stderr.write(`[lab/ebgp] ${s}\n`);
const lab: LabSettings = { encap: "vxlan", underlay: 4, reflector: "frr", fabric: "ebgp" };
const needs = [...new Set([...cniNeeds("policy-routing", lab.encap), ...kvrfdNeeds(lab.encap, lab.underlay)])];

describeNeeds(needs, `the lab: ${describeSettings(lab)}`, () => {
  const pods: AttachedPod[] = [];
  const pod = (name: string): AttachedPod => {
    const p = pods.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  };
  const nodeAddress = (name: string): string => {
    const n = labNodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return underlayAddress(n, lab);
  };

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods) pods.push(await attachPod(p));
  });

  afterAll(async () => {
    await down(log);
  });

  it("peers every worker with the spine over eBGP, each in its own ASN", async () => {
    type Summary = Record<string, { peers?: Record<string, { state?: string; remoteAs?: number }> } | undefined>;
    const summary = await vtyshJson<Summary>(reflectorFrrName, "show bgp summary json");
    expect(Object.entries(summary.l2VpnEvpn?.peers ?? {}).map(([a, p]) => [a, p.remoteAs, p.state]).sort()).toEqual(
      workers.map((w) => [underlayAddress(w, lab), workerAsn(w, lab), "Established"]).sort(),
    );
    expect(new Set(workers.map((w) => workerAsn(w, lab))).size).toBe(workers.length);
  });

  it("gives each node's VRF its node's ASN in the RD and the cluster's in the route target", async () => {
    const state = readState();
    if (state === undefined) throw new Error("the lab is not up");
    const custom = kubeClient(state).makeApiClient(k8s.CustomObjectsApi);
    for (const w of workers) {
      const o = (await custom.getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpvrfinstances", name: bgpVrfInstanceName(w.name, "a1") })) as BGPVRFInstance;
      expect(o.spec).toMatchObject({ asn: workerAsn(w, lab), routeTargetASN: 65000, routeDistinguisher: `${workerAsn(w, lab)}:161`, importRouteTargets: ["65000:161"] });
    }
  });

  it("pods of a VPC reach each other across the ASNs, never another VPC", async () => {
    const { ms, cells } = await converge(pods, 90_000 * timeScale);
    log(`converged in ${ms} ms`);
    expect(cells.filter((c) => c.ok !== c.expected)).toEqual([]);
    expect(cells.filter((c) => c.expected).length).toBeGreaterThan(0);
    expect(cells.filter((c) => !c.expected).length).toBeGreaterThan(0);
  });

  it("the spine holds each pod's route under its node's RD, with the cluster's route target and the node's VTEP", async () => {
    const p = pod("a1-sjc");
    const rd = `${workerAsn({ name: "sjc" }, lab)}:161`;
    type Route = { paths?: { extendedCommunity?: { string?: string }; nexthops?: { ip?: string }[] }[][] };
    const table = await vtyshJson<Record<string, Record<string, unknown>>>(reflectorFrrName, "show bgp l2vpn evpn route detail type prefix json");
    const route = table[rd]?.[`[5]:[0]:[32]:[${p.ipv4}]`] as Route | undefined;
    const path = route?.paths?.flat()[0];
    expect(path?.extendedCommunity?.string?.split(" ")).toContain("RT:65000:161");
    expect(path?.nexthops?.[0]?.ip).toBe(nodeAddress("sjc"));
  });

  it("withdraws a deleted pod's route across the spine", async () => {
    const gone = pod("a1-sjc");
    const routesTo = async (): Promise<string[]> => (await kernelRoutes("iad", 161)).filter((r) => r.includes(gone.ipv4));
    expect(await routesTo()).not.toEqual([]);
    await detachPod(gone);
    pods.splice(pods.indexOf(gone), 1);
    await waitFor(`iad's route to ${gone.ipv4} to go`, async () => (await routesTo()).length === 0, { timeoutMs: 30_000 });
    const { cells } = await converge(pods, 90_000 * timeScale);
    expect(cells.filter((c) => c.ok !== c.expected)).toEqual([]);
  });
});
