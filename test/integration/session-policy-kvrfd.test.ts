// Session policies end to end: the route reflector's BGPInstance lists a router outside the
// cluster (gobgpd 4.8 of no kvrf node) with `vpcs: [f01a]`; kvrfd on the reflector (gobgpd 4.8)
// turns that into gobgpd policy. Real kube-apiserver, kvrfd and gobgpd per node in network
// namespaces (test/harness/kvrfd.ts), VXLAN on the host kernel. The outside router receives VPC
// f01a's routes and not f01b's; of its routes, only those with f01a's route target alone reach a
// worker's table; listing f01b too applies without the session going down; with exportRoutes Pods
// the workers' routes still pass (kvrfd's list of the cluster's next hops). The cases of the
// policy itself, on both gobgpd versions: session-policy.test.ts.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { apiVersion, bgpInstance, group, version } from "../../shared/api-types.js";
import type { BGPInstance } from "../../reconciler/bgp-instance/bgp-instance.js";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { Speaker, SpeakerEvent } from "../../reconciler/gobgp/speaker.js";
import { describeNeeds, timeScale } from "../harness/needs.js";
import { outsideAddress, startFabric, type Fabric } from "../harness/kvrfd.js";
import { testEnvDir, tool } from "../harness/tools.js";

const run = promisify(execFile);
const poll = { timeout: 45_000 * timeScale, interval: 250 };
const rrAddress = "fd00:ff::100";
// VPC f01a: route target 65000:61466; VPC f01b: 65000:61467.
const rtA = "65000:61466";
const rtB = "65000:61467";

describeNeeds(kvrfdNeeds("vxlan", 6), "session policies through kvrfd: the reflector's session with a router outside the cluster", () => {
  let f: Fabric;
  let dir: string;
  let out: Speaker;
  const peerEvents: SpeakerEvent[] = [];
  const ac = new AbortController();
  const label = "pol";
  const outsidePeer = (vpcs: string[]) => ({ address: outsideAddress, asn: 64900, vpcs, timers: { holdTime: 9, keepalive: 3 } });

  const cli = async (...args: string[]): Promise<string> => {
    try {
      return (await run(tool("gobgp4"), ["--target", `unix://${f.outside?.gobgpd.socket}`, ...args])).stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`gobgp ${args.join(" ")}: ${(e.stderr ?? "").trim()} ${(e.stdout ?? "").trim()}`, { cause: err });
    }
  };
  const outsideHas = async (): Promise<string[]> =>
    (await out.listRib("evpn"))
      .filter((p) => p.neighbor === rrAddress)
      .map((p) => p.prefix)
      .sort();
  const prefixesIn = async (w: string, table: number): Promise<string[]> => (await f.worker(w).routes(table)).map((l) => l.split(" ")[0] ?? "").sort();

  beforeAll(async () => {
    const root = path.join(testEnvDir, "run");
    mkdirSync(root, { recursive: true });
    dir = mkdtempSync(path.join(root, `kvrfd-${label}-`));
    f = await startFabric({
      label,
      encap: "vxlan",
      gobgpd: tool("gobgpd4"),
      kubeconfig: inject("kubeconfig"),
      dir,
      workers: ["a", "b"],
      outside: { gobgpd: tool("gobgpd4") },
      rrPeers: [outsidePeer(["f01a"])],
    });
    const o = f.outside;
    if (o === undefined) throw new Error("no outside router");
    out = await connectSpeaker(o.gobgpd.socket);
    await out.startBgp({ asn: 64900, routerId: "10.255.0.200", listenPort: 179 });
    await out.addPeer({ address: rrAddress, asn: 65000, families: ["l2vpn-evpn"], holdTimeSeconds: 9, keepaliveSeconds: 3 });
    void (async () => {
      for await (const e of out.watch(ac.signal)) if (e.kind === "peer") peerEvents.push(e);
    })().catch(() => undefined);
    await f.putVrf("a", "f01a", 61466, [{ id: 1, prefixes: ["10.71.0.5/32"] }]);
    await f.putVrf("a", "f01b", 61467, [{ id: 1, prefixes: ["10.72.0.5/32"] }]);
    await f.putVrf("b", "f01a", 61466, [{ id: 1, prefixes: ["10.71.1.7/32"] }]);
    await f.putVrf("b", "f01b", 61467, [{ id: 1, prefixes: ["10.72.1.7/32"] }]);
    // Each with its VPC's VNI (kvrfd checks it); the one tagged with both carries f01a's.
    const common = ["gw", "0.0.0.0", "etag", "0", "rd", "64900:1", "encap", "vxlan", "router-mac", "02:00:5e:10:00:30", "nexthop", outsideAddress, "-a", "evpn"];
    await cli("global", "rib", "add", "prefix", "10.81.0.0/24", "label", "61466", "rt", rtA, ...common);
    await cli("global", "rib", "add", "prefix", "10.82.0.0/24", "label", "61467", "rt", rtB, ...common);
    await cli("global", "rib", "add", "prefix", "10.83.0.0/24", "label", "61466", "rt", rtA, rtB, ...common);
  }, 120_000);

  afterAll(async () => {
    ac.abort();
    out?.close();
    await f?.stop();
    if (dir !== undefined && process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("the outside router receives VPC f01a's routes, from both workers through the reflector, and not f01b's", async () => {
    await expect.poll(outsideHas, poll).toEqual(["10.71.0.5/32", "10.71.1.7/32"]);
    await expect.poll(() => prefixesIn("b", 61467), poll).toEqual(["10.72.0.5/32"]);
    expect(await outsideHas()).toEqual(["10.71.0.5/32", "10.71.1.7/32"]);
  });

  it("of its routes, only the one with f01a's route target alone reaches a worker's table; the reflector holds no other", async () => {
    await expect.poll(() => prefixesIn("b", 61466), poll).toEqual(["10.71.0.5/32", "10.81.0.0/24"]);
    expect(await prefixesIn("b", 61467)).toEqual(["10.72.0.5/32"]);
    const rr = await f.rr.speaker();
    try {
      expect((await rr.listRib("evpn")).filter((p) => p.neighbor === outsideAddress).map((p) => p.prefix)).toEqual(["10.81.0.0/24"]);
      expect((await rr.getGlobalPolicyAssignment("import")).policies).toEqual([expect.stringMatching(/^kvrf-[0-9a-f]{8}-import$/)]);
    } finally {
      rr.close();
    }
  });

  let exportBefore: string[] = [];
  it("listing f01b too applies by soft reset: the session stays up, both ways carry f01b", async () => {
    peerEvents.length = 0;
    const custom = f.kc.makeApiClient(k8s.CustomObjectsApi);
    const name = `${label}-rr`;
    const cur = (await custom.getClusterCustomObject({ group, version, plural: bgpInstance.plural, name })) as BGPInstance;
    const peers = (cur.spec.peers ?? []).map((p) => (p.address === outsideAddress ? { ...p, vpcs: ["f01a", "f01b"] } : p));
    await custom.replaceClusterCustomObject({ group, version, plural: bgpInstance.plural, name, body: { ...cur, apiVersion, spec: { ...cur.spec, peers } } });
    await expect.poll(outsideHas, poll).toEqual(["10.71.0.5/32", "10.71.1.7/32", "10.72.0.5/32", "10.72.1.7/32"]);
    await expect.poll(() => prefixesIn("b", 61467), poll).toEqual(["10.72.0.5/32", "10.82.0.0/24"]);
    // The route tagged with both VPCs now passes the session; kvrfd puts it into f01a only (its VNI's).
    await expect.poll(() => prefixesIn("b", 61466), poll).toEqual(["10.71.0.5/32", "10.81.0.0/24", "10.83.0.0/24"]);
    expect(peerEvents.filter((e) => e.kind === "peer" && e.state !== "established")).toEqual([]);
    const rr = await f.rr.speaker();
    exportBefore = (await rr.getGlobalPolicyAssignment("export")).policies;
    rr.close();
    const status = (await custom.getClusterCustomObject({ group, version, plural: bgpInstance.plural, name })) as BGPInstance;
    expect(status.status?.nodes?.[0]?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True" });
  });

  // exportRoutes Pods: kvrfd on the reflector takes the cluster's next hops from the Nodes (their
  // addresses and VTEPs): the workers' pod routes still pass. (That a route from outside is not
  // passed on to another router: session-policy.test.ts, on both gobgpd versions.)
  it("exportRoutes Pods: the workers' routes still reach the outside router, by the Nodes' next hops", async () => {
    const custom = f.kc.makeApiClient(k8s.CustomObjectsApi);
    const name = `${label}-rr`;
    const cur = (await custom.getClusterCustomObject({ group, version, plural: bgpInstance.plural, name })) as BGPInstance;
    const peers = (cur.spec.peers ?? []).map((p) => (p.address === outsideAddress ? { ...p, exportRoutes: "Pods" as const } : p));
    await custom.replaceClusterCustomObject({ group, version, plural: bgpInstance.plural, name, body: { ...cur, apiVersion, spec: { ...cur.spec, peers } } });
    const rr = await f.rr.speaker();
    try {
      // kvrf's export policy is replaced (its content, so its name, changed).
      await expect.poll(async () => (await rr.getGlobalPolicyAssignment("export")).policies, poll).not.toEqual(exportBefore);
    } finally {
      rr.close();
    }
    // (The peer is soft-reset right after the switch: what the policy no longer passes is withdrawn.)
    await new Promise((r) => setTimeout(r, 2000 * timeScale));
    expect(await outsideHas()).toEqual(["10.71.0.5/32", "10.71.1.7/32", "10.72.0.5/32", "10.72.1.7/32"]);
    const status = (await custom.getClusterCustomObject({ group, version, plural: bgpInstance.plural, name })) as BGPInstance;
    expect(status.status?.nodes?.[0]?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True" });
  });
});
