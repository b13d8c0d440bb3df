// The kvrf CNI plugin end to end on one node: cnitool (libcni) runs dist/kvrf inside a namespace
// playing the node, host-local hands out addresses, and the real API server holds the
// BGPVRFInstance, RouteTargetClaim and VNIClaim objects. Pods are namespaces. The same cases run
// for every data-plane variant (kernel mode × encapsulation), each on a kernel that can run it
// (test/harness/needs.ts): here or in the vm tier.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startApiBridge, type ApiBridge } from "../harness/api-bridge.js";
import { CniNode, cnitoolContainerId, runPlugin } from "../harness/cni.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";
import { cniNeeds, type Encapsulation, type KernelMode } from "../../shared/kernel/capabilities.js";
import { waitFor } from "../harness/process.js";
import { repoRoot, testEnvDir } from "../harness/tools.js";
import { parseHostVethName, vxlanDeviceName } from "../../shared/ifnames.js";

const group = "kvrf.dev";
const version = "v1alpha1";

interface CniVariant {
  mode: KernelMode;
  encap: Encapsulation;
  /** Node names of the variant's own (the API server is shared by every file and variant). */
  nodeName: string;
  /**
   * Every case, or only those whose outcome depends on the kernel mode or encapsulation: ADD,
   * CHECK, DEL and GC on the kernel, concurrency, kernel undo. Claims, IPAM and API undo, config
   * and STATUS errors, result rendering take the same path whatever the data plane, and each case
   * costs seconds to minutes under the vm tier's emulation.
   */
  full: boolean;
}

// Policy routing with VXLAN runs on every mainstream kernel; VRF mode with SRv6 is the production
// path of distribution kernels (the vm tier on this project's CI machines, where emulation makes
// every case cost seconds). The other two combinations share all but their kernel steps with
// these, and those steps run in the kernel tier in both modes and both encapsulations.
const cniVariants: CniVariant[] = [
  { mode: "policy-routing", encap: "vxlan", nodeName: "cni-prx", full: true },
  { mode: "vrf", encap: "srv6", nodeName: "cni-vrs", full: false },
];

/** VTEP addresses the node namespaces get (VXLAN): the plugin refuses one the node does not have. */
const vteps = { a: "192.0.2.100", b: "192.0.2.101" };

interface Bvi {
  metadata: { name: string; labels?: Record<string, string>; finalizers?: string[]; deletionTimestamp?: unknown };
  spec: { asn: number; routeDistinguisher: string; importRouteTargets: string[]; table: number; attachments?: { containerID: string; ifName: string; attachment: string; sid?: string; sid6?: string; prefixes: string[] }[] };
}
interface Claim {
  metadata: { managedFields?: { manager?: string }[] };
  spec: { vpc: string; routeTarget: string; holders?: { node: string }[] };
}

/** The plugin's "attached"/"detached" log lines, by container ID. */
interface Logged {
  msg: string;
  containerID: string;
  apiRoundTrips: number;
  claimed?: boolean;
  lastOfVpc?: boolean;
}

/** A successful cnitool run: exit 0 and nothing on stderr (shows stderr when not). */
function expectOk(r: { code: number; stderr: string }): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
}

/** Declares nothing: a case this variant does not run (not a skipped test: it is not its case). */
const notHere = (() => undefined) as unknown as typeof it & typeof describe;

for (const v of cniVariants) cniSuite(v);


function cniSuite(v: CniVariant): void {
  const { nodeName } = v;
  const itAll = v.full ? it : notHere;
  const describeAll = v.full ? describe : notHere;
  const nodeB = `${nodeName}-b`;
  const vxlan = v.encap === "vxlan";
  /** The variant's part of the plugin config: encapsulation, mode, locator or VTEP. */
  const dataplane = (vtep = vteps.a): Record<string, unknown> => ({
    dataplaneMode: v.mode,
    encapsulation: v.encap,
    ...(vxlan ? { vtep } : { srv6Locator: "fd00:0:a::/48" }),
  });
  /** API requests of a VPC's first ADD on a node: the claims (RT, and VNI with VXLAN) and the publication. */
  const firstAddRoundTrips = vxlan ? 3 : 2;
  const markerClaims = (nn: number): string[] => [`65000:${nn}`, ...(vxlan ? [`vni:${nn}`] : [])];
  describeNeeds(cniNeeds(v.mode, v.encap), `kvrf CNI plugin (${v.mode}, ${v.encap}) with cnitool, host-local and a real API server`, () => {
  const kc = new k8s.KubeConfig();
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let bridge: ApiBridge;
  let node: Netns;
  let cni: CniNode;
  let nsKubeconfig: string;
  const dir = path.join(testEnvDir, "run", `cni-${process.pid}-${nodeName}`);

  const plugin = (vpc: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: "kvrf",
    vpc,
    ...dataplane(),
    kubeconfig: nsKubeconfig,
    nodeName,
    asn: 65000,
    stateDir: path.join(dir, "state"),
    logFile: path.join(dir, "kvrf.log"),
    ipam: cni.hostLocal([[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd10::/64" }]], `vpc-${vpc}`),
    ...extra,
  });

  const getBvi = async (vpc: string, node = nodeName): Promise<Bvi | undefined> =>
    (custom.getClusterCustomObject({ group, version, plural: "bgpvrfinstances", name: `${node}.vpc-${vpc}` }) as Promise<Bvi>).catch(() => undefined);
  const getClaim = async (rt: string): Promise<Claim | undefined> =>
    (custom.getClusterCustomObject({ group, version, plural: "routetargetclaims", name: `rt-${rt.replace(":", "-")}` }) as Promise<Claim>).catch(() => undefined);
  const getVniClaim = async (vni: number): Promise<Claim | undefined> =>
    (custom.getClusterCustomObject({ group, version, plural: "vniclaims", name: `vni-${vni}` }) as Promise<Claim>).catch(() => undefined);
  /** Plays kvrfd's part at deletion: release the finalizer of a terminating object. */
  const finishDeletion = async (vpc: string, node = nodeName): Promise<void> => {
    const bvi = await getBvi(vpc, node);
    if (bvi?.metadata.deletionTimestamp === undefined) return;
    await custom.patchClusterCustomObject(
      { group, version, plural: "bgpvrfinstances", name: bvi.metadata.name, body: [{ op: "remove", path: "/metadata/finalizers" }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );
    await waitFor(`BGPVRFInstance of VPC ${vpc} gone`, async () => (await getBvi(vpc, node)) === undefined, { timeoutMs: 10_000 });
  };
  /** Plays kvrfd's part while `fn` runs: every terminating object of the VPC is let go at once. */
  const withKvrfd = async <T>(vpc: string, fn: () => Promise<T>): Promise<T> => {
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const bvi = await getBvi(vpc);
        if (bvi?.metadata.deletionTimestamp !== undefined) await finishDeletion(vpc).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      return await fn();
    } finally {
      stop = true;
      await loop;
    }
  };
  const marker = (vpc: string, state = path.join(dir, "state")): string => path.join(state, "claims", vpc);
  const logged = (msg: "attached" | "detached", containerID: string, logFile = path.join(dir, "kvrf.log")): Logged[] =>
    readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes(`"msg":"${msg}"`))
      .map((l) => JSON.parse(l) as Logged)
      .filter((l) => l.containerID === containerID);
  const kvrfLinks = async (): Promise<string[]> => (await node.ip("-o", "link", "show")).split("\n").filter((l) => / kv[a-z2-7]{13}[@:]/.test(l));
  /** Addresses host-local has leased from a VPC's pool (its files are named by address). */
  const leases = (vpc: string): string[] => {
    const d = cni.leaseDir(`vpc-${vpc}`);
    if (!existsSync(d)) return [];
    return readdirSync(d, { recursive: true, encoding: "utf8" }).map((f) => path.basename(f)).filter((f) => isIP(f) !== 0);
  };

  beforeAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    kc.loadFromFile(inject("kubeconfig"));
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const crdDir = path.join(repoRoot, "manifests/crds");
    for (const f of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
      const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(path.join(crdDir, f), "utf8"));
      await objects.patch(crd, undefined, undefined, "kvrf-test", true, k8s.PatchStrategy.ServerSideApply);
    }
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    for (const name of ["bgpvrfinstances.kvrf.dev", "routetargetclaims.kvrf.dev", "vniclaims.kvrf.dev"]) {
      await waitFor(`${name} established`, async () => {
        const c = await ext.readCustomResourceDefinition({ name });
        return c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True") ?? false;
      }, { timeoutMs: 30_000 });
    }
    await core.createNode({ body: { metadata: { name: nodeName, labels: { "kvrf.dev/role": "worker" } } } }).catch(() => undefined);
    node = await createNetns("node");
    await node.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
    if (vxlan) await node.ip("addr", "add", `${vteps.a}/32`, "dev", "lo");
    bridge = await startApiBridge(inject("apiserverUrl"), dir);
    await bridge.into(node.name);
    nsKubeconfig = bridge.nsKubeconfig(inject("kubeconfig"), path.join(dir, "kvrf.kubeconfig"));
    cni = new CniNode({ netns: node.name, dir });
  });

  afterAll(async () => {
    await cleanupNetns();
    await bridge?.close();
    if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
  });

  it("attaches two pods of one VPC, publishes them, and they reach each other", async () => {
    cni.writeConflist("vpc-aa", [plugin("aa")]);
    const [p1, p2] = await Promise.all([createNetns("p1"), createNetns("p2")]);
    const r1 = await cni.cnitool("add", "vpc-aa", p1.path);
    expectOk(r1);
    expectOk(await cni.cnitool("add", "vpc-aa", p2.path));

    const res = r1.json as { cniVersion: string; interfaces: { name: string; sandbox?: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: { dst: string; gw: string }[] };
    expect(res.cniVersion).toBe("1.1.0");
    expect(parseHostVethName(res.interfaces[0]?.name ?? "")?.vpc).toBe(0xaan);
    expect(res.interfaces[1]).toMatchObject({ name: "eth0", sandbox: p1.path, mtu: vxlan ? 1430 : 1436 });
    expect(res.ips).toEqual([
      { address: "10.1.0.2/32", gateway: "169.254.1.1", interface: 1 },
      { address: "fd10::2/128", gateway: "fe80::1", interface: 1 },
    ]);
    expect(res.routes).toEqual([{ dst: "0.0.0.0/0", gw: "169.254.1.1" }, { dst: "::/0", gw: "fe80::1" }]);

    const bvi = await getBvi("aa");
    expect(bvi?.metadata.labels).toEqual({ "kvrf.dev/node": nodeName, "kvrf.dev/vpc": "aa" });
    expect(bvi?.metadata.finalizers).toEqual(["kvrf.dev/vrf-cleanup"]);
    expect(bvi?.spec).toMatchObject({ asn: 65000, routeDistinguisher: "65000:170", importRouteTargets: ["65000:170"], table: 170, encapsulation: v.encap });
    if (vxlan) expect(bvi?.spec).toMatchObject({ vni: 170, vtep: vteps.a, routerMac: expect.stringMatching(/^02(:[0-9a-f]{2}){5}$/) as unknown });
    const c1 = await cnitoolContainerId(p1.path);
    const e1 = bvi?.spec.attachments?.find((a) => a.containerID === c1);
    const att = e1?.attachment ?? "";
    // SRv6: the attachment's SID (and in policy routing the End.DX6 one); VXLAN: none, the VPC's
    // VNI on the node's VTEP reaches every attachment.
    expect(e1).toEqual({
      containerID: c1,
      ifName: "eth0",
      attachment: att,
      ...(vxlan ? {} : { sid: `fd00:0:a::aa:${att}` }),
      ...(!vxlan && v.mode === "policy-routing" ? { sid6: `fd00:0:a:1::aa:${att}` } : {}),
      prefixes: ["10.1.0.2/32", "fd10::2/128"],
    });
    expect(bvi?.spec.attachments).toHaveLength(2);
    expect(new Set(bvi?.spec.attachments?.map((a) => a.attachment)).size).toBe(2);
    // The node holds the claim once, however many attachments it has; the first ADD claimed (two
    // API round trips), the second found the node's marker and sent only its publication.
    const claim = await getClaim("65000:170");
    expect(claim?.spec.holders).toEqual([{ node: nodeName }]);
    expect(claim?.metadata.managedFields?.map((m) => m.manager)).toEqual([`kvrf-cni-node/${nodeName}`]);
    if (vxlan) expect((await getVniClaim(170))?.spec).toEqual({ vni: 170, vpc: "aa", holders: [{ node: nodeName }] });
    else expect(await getVniClaim(170)).toBeUndefined();
    expect(existsSync(marker("aa"))).toBe(true);
    expect(logged("attached", c1).map((l) => [l.claimed, l.apiRoundTrips])).toEqual([[true, firstAddRoundTrips]]);
    expect(logged("attached", await cnitoolContainerId(p2.path)).map((l) => [l.claimed, l.apiRoundTrips])).toEqual([[false, 1]]);

    expect(await p1.exec("ping", "-c", "1", "-W", "2", "10.1.0.3")).toMatch(/1 received/);
    expect(await p1.exec("ping", "-6", "-c", "1", "-W", "2", "fd10::3")).toMatch(/1 received/);

    expectOk(await cni.cnitool("check", "vpc-aa", p1.path));

    // DEL one pod: only its entry and its kernel state go; the node keeps holding the claim, and
    // the DEL made one API request.
    expectOk(await cni.cnitool("del", "vpc-aa", p1.path));
    expect(logged("detached", c1).map((l) => [l.lastOfVpc, l.apiRoundTrips])).toEqual([[false, 1]]);
    expectOk(await cni.cnitool("del", "vpc-aa", p1.path)); // twice
    const after = await getBvi("aa");
    expect(after?.spec.attachments?.map((a) => a.containerID)).toEqual([await cnitoolContainerId(p2.path)]);
    expect((await getClaim("65000:170"))?.spec.holders).toEqual([{ node: nodeName }]);
    expect(existsSync(marker("aa"))).toBe(true);
    expect(await kvrfLinks()).toHaveLength(1);

    // The last one: object deleted (held by kvrfd's finalizer), claim and marker gone at once,
    // nothing in the kernel.
    expectOk(await cni.cnitool("del", "vpc-aa", p2.path));
    expect((await getBvi("aa"))?.metadata.deletionTimestamp).toBeDefined();
    expect(await getClaim("65000:170")).toBeUndefined();
    expect(await getVniClaim(170)).toBeUndefined();
    expect(existsSync(marker("aa"))).toBe(false);
    await finishDeletion("aa");
    expect(await kvrfLinks()).toEqual([]);
    expect(await node.ip("-o", "link", "show")).not.toMatch(/kvx-|kvrf-/);
    expect(await node.ip("rule", "show", "table", "170")).toBe("");
    expect(await node.ip("-6", "route", "show", "table", "all", "proto", "240")).toBe("");
    expect(leases("aa")).toEqual([]);
  });

  itAll("refuses a VPC whose route target another VPC holds, leaving nothing behind", async () => {
    cni.writeConflist("vpc-aa", [plugin("aa")]);
    const holder = await createNetns("rt-holder");
    expectOk(await cni.cnitool("add", "vpc-aa", holder.path));
    // 0x1000000aa and 0xaa share their low 32 bits: the same RT 65000:170.
    const pod = await createNetns("rt-loser");
    const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "vpc-big", ...plugin("1000000aa") }, { containerId: "loser", podNetns: pod.path, ifName: "eth0" });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 103 });
    expect(String(r.json?.["msg"])).toBe(
      "route target 65000:170 of VPC 1000000aa is already claimed by VPC aa (RouteTargetClaim rt-65000-170): their IDs share the low 32 bits, so they would import each other's routes",
    );
    expect(await getBvi("1000000aa")).toBeUndefined();
    expect((await getClaim("65000:170"))?.spec).toMatchObject({ vpc: "aa", holders: [{ node: nodeName }] });
    expect(existsSync(marker("1000000aa"))).toBe(false);
    expect(leases("1000000aa")).toEqual([]);
    expect((await kvrfLinks()).length).toBe(1);
    expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");

    expectOk(await cni.cnitool("del", "vpc-aa", holder.path));
    await finishDeletion("aa");
  });

  // Twenty on the all-cases variant: concurrency on the VPC lock, attachment IDs, IPAM, the claim
  // and the object, the same code whatever the data plane. Four elsewhere: still several veths
  // joining (VRF mode: enslaved to) one VPC's device at once and its last DEL racing the others to
  // remove it, at a fifth of the cost under the vm tier's emulation (each ADD there takes seconds).
  const parallel = v.full ? 20 : 4;
  it(`converges ${parallel} parallel ADDs and then ${parallel} parallel DELs of one VPC to nothing left`, async () => {
    cni.writeConflist("vpc-bb", [plugin("bb", { ipam: cni.hostLocal([[{ subnet: "10.2.0.0/24" }], [{ subnet: "fd20::/64" }]], "vpc-bb") })]);
    const pods = await Promise.all(Array.from({ length: parallel }, (_, i) => createNetns(`par${i}`)));
    const adds = await Promise.all(pods.map((p) => cni.cnitool("add", "vpc-bb", p.path)));
    for (const r of adds) expectOk(r);
    const bvi = await getBvi("bb");
    expect(bvi?.spec.attachments).toHaveLength(parallel);
    expect(new Set(bvi?.spec.attachments?.map((a) => a.attachment)).size).toBe(parallel);
    expect(new Set(bvi?.spec.attachments?.flatMap((a) => a.prefixes)).size).toBe(2 * parallel);
    expect((await getClaim("65000:187"))?.spec.holders).toEqual([{ node: nodeName }]);
    expect(await kvrfLinks()).toHaveLength(parallel);
    expect(leases("bb")).toHaveLength(2 * parallel);
    // Two of them talk across the shared VPC table.
    const ip1 = ((adds[1]?.json as { ips: { address: string }[] }).ips[0]?.address ?? "").split("/")[0] ?? "";
    expect(await pods[0]?.exec("ping", "-c", "1", "-W", "2", ip1)).toMatch(/1 received/);

    const dels = await Promise.all(pods.map((p) => cni.cnitool("del", "vpc-bb", p.path)));
    for (const r of dels) expectOk(r);
    // The last DEL deletes the object rather than emptying it; kvrfd's finalizer holds it.
    expect((await getBvi("bb"))?.metadata.deletionTimestamp).toBeDefined();
    expect((await getBvi("bb"))?.spec.attachments?.length ?? 0).toBeLessThanOrEqual(1);
    await finishDeletion("bb");
    expect(await getClaim("65000:187")).toBeUndefined();
    expect(existsSync(marker("bb"))).toBe(false);
    expect(await kvrfLinks()).toEqual([]);
    expect(await node.ip("-4", "rule", "show", "table", "187")).toBe("");
    expect(await node.ip("-6", "route", "show", "table", "all", "proto", "240")).toBe("");
    expect(await node.ip("-4", "route", "show", "table", "all", "proto", "240")).toBe("");
    expect(leases("bb")).toEqual([]);
  });

  describe("a failing ADD undoes every step", () => {
    itAll("at IPAM (pool exhausted): no claim hold, interface or entry", async () => {
      const ipam = cni.hostLocal([[{ subnet: "10.3.0.0/24", rangeStart: "10.3.0.9", rangeEnd: "10.3.0.9" }]], "vpc-cc");
      cni.writeConflist("vpc-cc", [plugin("cc", { ipam })]);
      const [first, second] = await Promise.all([createNetns("cc1"), createNetns("cc2")]);
      expectOk(await cni.cnitool("add", "vpc-cc", first.path));
      const r = await cni.cnitool("add", "vpc-cc", second.path);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/IPAM plugin host-local ADD: .*no IP addresses available/);
      expect((await getClaim("65000:204"))?.spec.holders).toEqual([{ node: nodeName }]);
      expect((await getBvi("cc"))?.spec.attachments).toHaveLength(1);
      expect(await kvrfLinks()).toHaveLength(1);
      expect(await second.ip("-o", "link", "show")).not.toContain("eth0");
      expectOk(await cni.cnitool("del", "vpc-cc", first.path));
      await finishDeletion("cc");
      expect(await getClaim("65000:204")).toBeUndefined();
    });

    it("in the kernel (the pod already has the interface): lease released, claim released", async () => {
      cni.writeConflist("vpc-cc", [plugin("cc")]);
      const pod = await createNetns("cc-busy");
      await pod.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
      const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "vpc-cc", ...plugin("cc") }, { containerId: "busy", podNetns: pod.path, ifName: "eth0" });
      expect(r.json).toMatchObject({ code: 7, msg: `interface eth0 already exists in ${pod.path}` });
      expect(leases("cc")).toEqual([]);
      expect(await getClaim("65000:204")).toBeUndefined();
      expect(await getBvi("cc")).toBeUndefined();
      expect(await kvrfLinks()).toEqual([]);
      expect(await node.ip("-4", "rule", "show", "table", "204")).toBe("");
      expect(await node.ip("-6", "route", "show", "table", "all", "proto", "240")).toBe("");
    });

    it("at the API (the node's object disagrees): kernel, lease and claim undone", async () => {
      // Someone else's BGPVRFInstance for VPC dd on this node with another ASN.
      const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
      await objects.patch(
        {
          apiVersion: "kvrf.dev/v1alpha1",
          kind: "BGPVRFInstance",
          metadata: { name: `${nodeName}.vpc-dd` },
          spec: { nodeName, vpc: "dd", asn: 64999, routeDistinguisher: "64999:221", importRouteTargets: ["64999:221"], exportRouteTargets: ["64999:221"], table: 221 },
        } as k8s.KubernetesObject,
        undefined,
        undefined,
        "someone-else",
        false,
        k8s.PatchStrategy.ServerSideApply,
      );
      cni.writeConflist("vpc-dd", [plugin("dd")]);
      const pod = await createNetns("dd");
      const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "vpc-dd", ...plugin("dd") }, { containerId: "dd1", podNetns: pod.path, ifName: "eth0" });
      expect(r.json).toMatchObject({ code: 101 });
      expect(String(r.json?.["msg"])).toContain(`BGPVRFInstance ${nodeName}.vpc-dd disagrees with this attachment (asn 65000, rd 65000:221, table 221)`);
      expect(await kvrfLinks()).toEqual([]);
      expect(leases("dd")).toEqual([]);
      expect(await getClaim("65000:221")).toBeUndefined();
      expect((await getBvi("dd"))?.spec.attachments).toBeUndefined();
      expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
      await custom.deleteClusterCustomObject({ group, version, plural: "bgpvrfinstances", name: `${nodeName}.vpc-dd` });
    });

    itAll("on a bad config (code 7, the field named), before touching anything", async () => {
      const pod = await createNetns("bad");
      const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "bad", ...plugin("aa", { srv6Locator: "fd00::/80" }) }, { containerId: "bad", podNetns: pod.path, ifName: "eth0" });
      expect(r.json).toEqual({ cniVersion: "1.1.0", code: 7, msg: 'srv6Locator: "fd00::/80" has prefix length 80; a locator is 1 to 64 bits (the rest holds vpc and attachment)' });
      expect(await kvrfLinks()).toEqual([]);
    });
  });

  it("DEL succeeds without ADD, twice, and after the pod's netns is gone", async () => {
    cni.writeConflist("vpc-ee", [plugin("ee")]);
    const never = await createNetns("never");
    expectOk(await cni.cnitool("del", "vpc-ee", never.path));
    expectOk(await cni.cnitool("del", "vpc-ee", never.path));
    const r = await runPlugin(cni, node.name, "DEL", { cniVersion: "1.1.0", name: "vpc-ee", ...plugin("ee") }, { containerId: "ghost", ifName: "eth0" });
    expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: "" });

    const pod = await createNetns("gone");
    expectOk(await cni.cnitool("add", "vpc-ee", pod.path));
    const path_ = pod.path;
    await pod.delete();
    expectOk(await cni.cnitool("del", "vpc-ee", path_));
    await finishDeletion("ee");
    expect(await kvrfLinks()).toEqual([]);
    expect(leases("ee")).toEqual([]);
    expect(await getClaim("65000:238")).toBeUndefined();
  });

  itAll("takes the ASN from the BGPInstance selecting the node, and refuses one that cannot encode the RD", async () => {
    await custom.createClusterCustomObject({
      group,
      version,
      plural: "bgpinstances",
      body: {
        apiVersion: "kvrf.dev/v1alpha1",
        kind: "BGPInstance",
        metadata: { name: "workers" },
        spec: { nodeSelector: { matchLabels: { "kvrf.dev/role": "worker" } }, asn: 4200000001, encapsulation: v.encap },
      },
    });
    const { asn: _drop, ...noAsn } = plugin("7");
    cni.writeConflist("vpc-7", [noAsn]);
    const pod = await createNetns("asn");
    expectOk(await cni.cnitool("add", "vpc-7", pod.path));
    expect((await getBvi("7"))?.spec).toMatchObject({ asn: 4200000001, routeDistinguisher: "4200000001:7", importRouteTargets: ["4200000001:7"] });
    // STATUS is ready now that a speaker config selects the node.
    const status = await runPlugin(cni, node.name, "STATUS", { cniVersion: "1.1.0", name: "vpc-7", ...noAsn });
    expect({ code: status.code, out: status.stdout }).toEqual({ code: 0, out: "" });
    expectOk(await cni.cnitool("del", "vpc-7", pod.path));
    await finishDeletion("7");

    // An eBGP fabric's rack: the node's own ASN in the RD, the cluster-wide route-target ASN in
    // the route target (and its claim), so racks of different ASNs import each other's routes.
    await custom.deleteClusterCustomObject({ group, version, plural: "bgpinstances", name: "workers" });
    await custom.createClusterCustomObject({
      group,
      version,
      plural: "bgpinstances",
      body: {
        apiVersion: "kvrf.dev/v1alpha1",
        kind: "BGPInstance",
        metadata: { name: "workers" },
        spec: { nodeSelector: { matchLabels: { "kvrf.dev/role": "worker" } }, asn: 65001, routeTargetASN: 65000, encapsulation: v.encap },
      },
    });
    expectOk(await cni.cnitool("add", "vpc-7", pod.path));
    expect((await getBvi("7"))?.spec).toMatchObject({ asn: 65001, routeTargetASN: 65000, routeDistinguisher: "65001:7", importRouteTargets: ["65000:7"], exportRouteTargets: ["65000:7"] });
    expect(await getClaim("65000:7")).toBeDefined();
    expectOk(await cni.cnitool("del", "vpc-7", pod.path));
    await finishDeletion("7");
    expect(await getClaim("65000:7")).toBeUndefined();
    await custom.deleteClusterCustomObject({ group, version, plural: "bgpinstances", name: "workers" });
    await custom.createClusterCustomObject({
      group,
      version,
      plural: "bgpinstances",
      body: {
        apiVersion: "kvrf.dev/v1alpha1",
        kind: "BGPInstance",
        metadata: { name: "workers" },
        spec: { nodeSelector: { matchLabels: { "kvrf.dev/role": "worker" } }, asn: 4200000001, encapsulation: v.encap },
      },
    });

    // 4-byte ASN with a VPC number above 16 bits: no RD encodes it; refused, never truncated.
    const big = await createNetns("asn-big");
    const { asn: _d2, ...bigConf } = plugin("10000");
    const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "vpc-10000", ...bigConf }, { containerId: "big", podNetns: big.path, ifName: "eth0" });
    expect(r.json).toMatchObject({ code: 7 });
    expect(String(r.json?.["msg"])).toContain("asn: route distinguisher 4200000001:65536 cannot be encoded");
    expect(await kvrfLinks()).toEqual([]);
    await custom.deleteClusterCustomObject({ group, version, plural: "bgpinstances", name: "workers" });
  });

  itAll("reports not ready (50) without a speaker config or an API server", async () => {
    const conf = { cniVersion: "1.1.0", name: "vpc-aa", ...plugin("aa") };
    const none = await runPlugin(cni, node.name, "STATUS", conf);
    expect(none.json).toMatchObject({ code: 50, msg: `not ready: no BGPInstance selects node ${nodeName}, so it has no BGP speaker config` });
    const dead = bridge.nsKubeconfig(inject("kubeconfig"), path.join(dir, "dead.kubeconfig"));
    const cfg = JSON.parse(readFileSync(dead, "utf8")) as { clusters: { cluster: { server: string } }[] };
    for (const c of cfg.clusters) c.cluster.server = "https://127.0.0.1:1";
    const { writeFileSync } = await import("node:fs");
    writeFileSync(dead, JSON.stringify(cfg));
    const down = await runPlugin(cni, node.name, "STATUS", { ...conf, kubeconfig: dead });
    expect(down.json).toMatchObject({ code: 50 });
    expect(String(down.json?.["msg"])).toMatch(/not ready: .*ECONNREFUSED/);
  });

  itAll("renders results for older spec versions (0.4.0: ips carry a version)", async () => {
    cni.writeConflist("vpc-fa", [plugin("fa", { ipam: cni.hostLocal([[{ subnet: "10.6.0.0/24" }]], "vpc-fa") })], "0.4.0");
    const pod = await createNetns("old");
    const r = await cni.cnitool("add", "vpc-fa", pod.path);
    expectOk(r);
    expect(r.json).toMatchObject({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.6.0.2/32", gateway: "169.254.1.1", interface: 1 }] });
    expect((r.json as { interfaces: Record<string, unknown>[] }).interfaces[1]).not.toHaveProperty("mtu");
    expectOk(await cni.cnitool("check", "vpc-fa", pod.path));
    expectOk(await cni.cnitool("del", "vpc-fa", pod.path));
    await finishDeletion("fa");
  });

  it("GC removes attachments the runtime no longer knows", async () => {
    cni.writeConflist("vpc-ab", [plugin("ab", { ipam: cni.hostLocal([[{ subnet: "10.7.0.0/24" }]], "vpc-ab") })]);
    const [keep, lost] = await Promise.all([createNetns("gc-keep"), createNetns("gc-lost")]);
    expectOk(await cni.cnitool("add", "vpc-ab", keep.path));
    expectOk(await cni.cnitool("add", "vpc-ab", lost.path));
    // The runtime forgets one attachment (its libcni cache entry is gone): only GC can find it.
    const cache = `/var/lib/cni/results/vpc-ab-${await cnitoolContainerId(lost.path)}-eth0`;
    expect(existsSync(cache)).toBe(true);
    rmSync(cache);
    // cnitool's GC passes no valid attachments: libcni DELs the cached one, GC must remove the other.
    expectOk(await cni.cnitool("gc", "vpc-ab", keep.path));
    expect(await kvrfLinks()).toEqual([]);
    expect(leases("ab")).toEqual([]);
    expect((await getBvi("ab"))?.metadata.deletionTimestamp).toBeDefined();
    await finishDeletion("ab");
    expect(await getClaim("65000:171")).toBeUndefined();
    expect(await lost.ip("-o", "link", "show")).not.toContain("eth0");
  });

  describeAll("route-target holds: one per node, as long as the node has an attachment of the VPC", () => {
    it("lists nodes as holders and deletes the claim with the last attachment on the last node", async () => {
      const netnsB = await createNetns("node-b");
      await bridge.into(netnsB.name);
      if (vxlan) await netnsB.ip("addr", "add", `${vteps.b}/32`, "dev", "lo");
      const dirB = path.join(dir, "node-b");
      const cniB = new CniNode({ netns: netnsB.name, dir: dirB });
      const stateB = path.join(dirB, "state");
      cni.writeConflist("vpc-ac", [plugin("ac")]);
      cniB.writeConflist("vpc-ac", [plugin("ac", { ...dataplane(vteps.b), nodeName: nodeB, stateDir: stateB, logFile: path.join(dirB, "kvrf.log") })]);
      const [a1, a2, b1] = await Promise.all([createNetns("ac-a1"), createNetns("ac-a2"), createNetns("ac-b1")]);
      expectOk(await cni.cnitool("add", "vpc-ac", a1.path));
      expectOk(await cniB.cnitool("add", "vpc-ac", b1.path));
      expectOk(await cni.cnitool("add", "vpc-ac", a2.path));
      const claim = await getClaim("65000:172");
      expect(claim?.spec.holders?.map((h) => h.node).sort()).toEqual([nodeName, nodeB]);
      expect(claim?.metadata.managedFields?.map((m) => m.manager).sort()).toEqual([`kvrf-cni-node/${nodeName}`, `kvrf-cni-node/${nodeB}`]);
      if (vxlan) expect((await getVniClaim(172))?.spec.holders?.map((h) => h.node).sort()).toEqual([nodeName, nodeB]);

      // Node A's attachments go one by one: its hold goes with the last of them, B's stays.
      expectOk(await cni.cnitool("del", "vpc-ac", a1.path));
      expect((await getClaim("65000:172"))?.spec.holders?.map((h) => h.node).sort()).toEqual([nodeName, nodeB]);
      expectOk(await cni.cnitool("del", "vpc-ac", a2.path));
      expect((await getClaim("65000:172"))?.spec.holders).toEqual([{ node: nodeB }]);
      if (vxlan) expect((await getVniClaim(172))?.spec.holders).toEqual([{ node: nodeB }]);
      expect(existsSync(marker("ac"))).toBe(false);
      expect(existsSync(marker("ac", stateB))).toBe(true);
      // The last attachment anywhere: the claim goes.
      expectOk(await cniB.cnitool("del", "vpc-ac", b1.path));
      expect(await getClaim("65000:172")).toBeUndefined();
      expect(await getVniClaim(172)).toBeUndefined();
      expect(existsSync(marker("ac", stateB))).toBe(false);
      await finishDeletion("ac");
      await finishDeletion("ac", nodeB);
    });

    it("converges concurrent ADDs and DELs of one VPC: the hold follows the attachments, nothing leaks", async () => {
      const ipam = cni.hostLocal([[{ subnet: "10.4.0.0/24" }], [{ subnet: "fd40::/64" }]], "vpc-ad");
      cni.writeConflist("vpc-ad", [plugin("ad", { ipam })]);
      const first = await Promise.all(Array.from({ length: 8 }, (_, i) => createNetns(`ad1-${i}`)));
      const second = await Promise.all(Array.from({ length: 8 }, (_, i) => createNetns(`ad2-${i}`)));
      for (const r of await Promise.all(first.map((p) => cni.cnitool("add", "vpc-ad", p.path)))) expectOk(r);
      // The first group goes while the second comes: the node's last attachment and its first one
      // may meet (its object deleted under a new ADD: kvrfd's part is played meanwhile).
      // An ADD that keeps meeting a terminating object answers code 11 (try again later) after its
      // wait; the runtime then retries it, and so does this test (a loaded machine gets there).
      const addRetried = async (p: Netns): Promise<{ code: number; stderr: string }> => {
        for (let attempt = 1; ; attempt++) {
          const r = await cni.cnitool("add", "vpc-ad", p.path);
          if (r.code === 0 || attempt === 3 || !r.stderr.includes("is still being deleted")) return r;
        }
      };
      const mixed = await withKvrfd("ad", () => Promise.all([...first.map((p) => cni.cnitool("del", "vpc-ad", p.path)), ...second.map(addRetried)]));
      for (const r of mixed) expectOk(r);
      expect((await getClaim("65000:173"))?.spec.holders).toEqual([{ node: nodeName }]);
      expect(existsSync(marker("ad"))).toBe(true);
      expect((await getBvi("ad"))?.spec.attachments?.map((a) => a.containerID).sort()).toEqual(
        (await Promise.all(second.map((p) => cnitoolContainerId(p.path)))).sort(),
      );
      for (const r of await Promise.all(second.map((p) => cni.cnitool("del", "vpc-ad", p.path)))) expectOk(r);
      expect(await getClaim("65000:173")).toBeUndefined();
      expect(existsSync(marker("ad"))).toBe(false);
      expect(await kvrfLinks()).toEqual([]);
      expect(await node.ip("-6", "rule", "show", "table", "173")).toBe("");
      await finishDeletion("ad");
    });

    it("keeps the claim exactly while the attachment exists when a first ADD fails beside another one", async () => {
      cni.writeConflist("vpc-b2", [plugin("b2")]);
      const conf = { cniVersion: "1.1.0", name: "vpc-b2", ...plugin("b2") };
      for (let round = 0; round < 4; round++) {
        const [bad, good] = await Promise.all([createNetns(`b2-bad${round}`), createNetns(`b2-good${round}`)]);
        await bad.ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth1"); // its ADD fails in the kernel
        const [rb, rg] = await Promise.all([
          runPlugin(cni, node.name, "ADD", conf, { containerId: `bad${round}`, podNetns: bad.path, ifName: "eth0" }),
          cni.cnitool("add", "vpc-b2", good.path),
        ]);
        expect(rb.json).toMatchObject({ code: 7 });
        expectOk(rg);
        expect((await getClaim("65000:178"))?.spec.holders).toEqual([{ node: nodeName }]);
        expect(existsSync(marker("b2"))).toBe(true);
        expectOk(await cni.cnitool("del", "vpc-b2", good.path));
        expect(await getClaim("65000:178")).toBeUndefined();
        expect(existsSync(marker("b2"))).toBe(false);
        await finishDeletion("b2");
      }
    });

    it("releases every claim of the VPC with its last attachment, also after the config's ASN changed", async () => {
      cni.writeConflist("vpc-af", [plugin("af")]);
      const [p1, p2] = await Promise.all([createNetns("af1"), createNetns("af2")]);
      expectOk(await cni.cnitool("add", "vpc-af", p1.path));
      // Another ASN: another route target, claimed; the publication then disagrees with the
      // node's object (another ASN), the ADD fails, and the node keeps both holds while p1 lives.
      cni.writeConflist("vpc-af", [plugin("af", { asn: 65001 })]);
      const r = await cni.cnitool("add", "vpc-af", p2.path);
      expect(r.code).not.toBe(0);
      expect((await getClaim("65000:175"))?.spec.holders).toEqual([{ node: nodeName }]);
      expect((await getClaim("65001:175"))?.spec.holders).toEqual([{ node: nodeName }]);
      expectOk(await cni.cnitool("del", "vpc-af", p2.path));
      expectOk(await cni.cnitool("del", "vpc-af", p1.path));
      expect(await getClaim("65000:175")).toBeUndefined();
      expect(await getClaim("65001:175")).toBeUndefined();
      expect(existsSync(marker("af"))).toBe(false);
      await finishDeletion("af");
    });

    it("claims again when the node's marker is from another boot (a state directory kept across a reboot)", async () => {
      cni.writeConflist("vpc-b0", [plugin("b0")]);
      mkdirSync(path.dirname(marker("b0")), { recursive: true });
      writeFileSync(marker("b0"), JSON.stringify({ boot: "another-boot", routeTargets: ["65000:176"] }));
      const pod = await createNetns("b0");
      expectOk(await cni.cnitool("add", "vpc-b0", pod.path));
      const id = await cnitoolContainerId(pod.path);
      expect(logged("attached", id).map((l) => [l.claimed, l.apiRoundTrips])).toEqual([[true, firstAddRoundTrips]]);
      expect((await getClaim("65000:176"))?.spec.holders).toEqual([{ node: nodeName }]);
      const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      expect(JSON.parse(readFileSync(marker("b0"), "utf8"))).toEqual({ boot, routeTargets: markerClaims(176) });
      expectOk(await cni.cnitool("del", "vpc-b0", pod.path));
      expect(await getClaim("65000:176")).toBeUndefined();
      await finishDeletion("b0");
    });

    it("GC releases the hold of a VPC that has no attachment left on the node", async () => {
      // What a DEL leaves when it removed the attachment's entry and kernel state and then lost
      // the API before releasing the hold, and was never retried: the claim and the marker.
      const ipam = cni.hostLocal([[{ subnet: "10.5.0.0/24" }]], "vpc-ae");
      const conf = { cniVersion: "1.1.0", name: "vpc-ae", ...plugin("ae", { ipam }) };
      const pod = await createNetns("ae");
      const r = await runPlugin(cni, node.name, "ADD", conf, { containerId: "ae1", podNetns: pod.path, ifName: "eth0" });
      expect(r.code).toBe(0);
      const hostIf = (r.json as { interfaces: { name: string }[] }).interfaces[0]?.name ?? "";
      await node.ip("link", "del", hostIf);
      if (v.mode === "policy-routing") {
        await node.ip("-4", "rule", "del", "iif", hostIf, "lookup", "174");
        await node.ip("-6", "rule", "del", "iif", hostIf, "lookup", "174");
      }
      await custom.deleteClusterCustomObject({ group, version, plural: "bgpvrfinstances", name: `${nodeName}.vpc-ae` });
      await finishDeletion("ae");
      expect((await getClaim("65000:174"))?.spec.holders).toEqual([{ node: nodeName }]);
      expect(existsSync(marker("ae"))).toBe(true);

      const gc = await runPlugin(cni, node.name, "GC", { ...conf, "cni.dev/valid-attachments": [] });
      expect({ code: gc.code, out: gc.stdout }).toEqual({ code: 0, out: "" });
      expect(await getClaim("65000:174")).toBeUndefined();
      expect(existsSync(marker("ae"))).toBe(false);
      expect(await node.ip("-6", "route", "show", "table", "174")).toBe("");
      expect(await node.ip("-o", "link", "show")).not.toMatch(/kvx-|kvrf-/);
    });
  });

  if (vxlan) {
    it("refuses a VPC whose VNI another VPC holds (code 105, both named), leaving nothing behind", async () => {
      cni.writeConflist("vpc-ca", [plugin("ca")]);
      const holder = await createNetns("vni-holder");
      expectOk(await cni.cnitool("add", "vpc-ca", holder.path));
      // 0x10000ca and 0xca share their low 24 bits (VNI 202) but not their low 32 (route targets
      // 65000:16777418 and 65000:202): only the VNI collides.
      const pod = await createNetns("vni-loser");
      const r = await runPlugin(cni, node.name, "ADD", { cniVersion: "1.1.0", name: "vpc-vni", ...plugin("10000ca") }, { containerId: "vni-loser", podNetns: pod.path, ifName: "eth0" });
      expect(r.json).toMatchObject({ code: 105 });
      expect(String(r.json?.["msg"])).toBe(
        "VNI 202 of VPC 10000ca is already claimed by VPC ca (VNIClaim vni-202): their IDs share the low 24 bits, so they would decapsulate into each other's tables",
      );
      expect(await getBvi("10000ca")).toBeUndefined();
      expect(await getClaim("65000:16777418")).toBeUndefined();
      expect((await getVniClaim(202))?.spec).toMatchObject({ vpc: "ca", holders: [{ node: nodeName }] });
      expect(existsSync(marker("10000ca"))).toBe(false);
      expect(leases("10000ca")).toEqual([]);
      expect(await node.ip("-o", "link", "show")).not.toContain(vxlanDeviceName(0x10000can));
      expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
      expectOk(await cni.cnitool("del", "vpc-ca", holder.path));
      await finishDeletion("ca");
      expect(await getVniClaim(202)).toBeUndefined();
    });
  }
  });
}
