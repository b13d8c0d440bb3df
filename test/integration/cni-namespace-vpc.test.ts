// The VPC of a namespace ("vpcFromNamespace": true) end to end on one node: cnitool (libcni) runs
// dist/kvrf inside a namespace playing the node with CNI_ARGS K8S_POD_NAMESPACE as kubelet's
// runtimes pass it, host-local hands out addresses from one pool shared by the node's VPCs, and the
// real API server holds the Namespaces (with their kvrf.dev/vpc annotation), BGPVRFInstances and
// claims. Pods are network namespaces. DEL, CHECK and GC act on the VPC ADD chose, whatever the
// annotation says later and whether the namespace still exists.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { startApiBridge, type ApiBridge } from "../harness/api-bridge.js";
import { CniNode, cnitoolContainerId, runPlugin } from "../harness/cni.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";
import { cniNeeds } from "../../shared/kernel/capabilities.js";
import { waitFor } from "../harness/process.js";
import { repoRoot, testEnvDir } from "../harness/tools.js";
import { parseHostVethName } from "../../shared/ifnames.js";

const group = "kvrf.dev";
const version = "v1alpha1";
/** Policy routing with VXLAN runs on every mainstream kernel (the host's); the VPC choice does not depend on the data plane. */
const mode = "policy-routing";
const encap = "vxlan";
const nodeName = "cni-nsvpc";
const vtep = "192.0.2.110";
const network = "tenants";
/** Namespaces of this file's own (the API server is shared by every file). */
const nsPrefix = `nsvpc-${process.pid}`;

interface Bvi {
  metadata: { name: string; deletionTimestamp?: unknown };
  spec: { vpc: string; table: number; attachments?: { containerID: string; ifName: string; attachment: string; prefixes: string[] }[] };
}

function expectOk(r: { code: number; stderr: string }): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
}

describeNeeds(cniNeeds(mode, encap), "kvrf CNI plugin: the VPC of a namespace (vpcFromNamespace), with cnitool, host-local and a real API server", () => {
  const kc = new k8s.KubeConfig();
  let custom: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  let bridge: ApiBridge;
  let node: Netns;
  let cni: CniNode;
  let nsKubeconfig: string;
  const dir = path.join(testEnvDir, "run", `cni-nsvpc-${process.pid}`);
  const state = path.join(dir, "state");
  const logFile = path.join(dir, "kvrf.log");
  const namespaces: string[] = [];

  /** The network: VPC from the namespace, `vpc` (when given) the default; one host-local pool for every VPC. */
  const plugin = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: "kvrf",
    vpcFromNamespace: true,
    dataplaneMode: mode,
    encapsulation: encap,
    vtep,
    kubeconfig: nsKubeconfig,
    nodeName,
    asn: 65000,
    stateDir: state,
    logFile,
    ipam: cni.hostLocal([[{ subnet: "10.60.0.0/24" }], [{ subnet: "fd60::/64" }]], "shared"),
    ...extra,
  });
  const namespace = async (label: string, vpc?: string): Promise<string> => {
    const name = `${nsPrefix}-${label}`;
    await core.createNamespace({ body: { metadata: { name, ...(vpc !== undefined ? { annotations: { "kvrf.dev/vpc": vpc } } : {}) } } });
    namespaces.push(name);
    return name;
  };
  const annotate = (name: string, vpc: string): Promise<unknown> =>
    core.patchNamespace({ name, body: { metadata: { annotations: { "kvrf.dev/vpc": vpc } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
  /** Deletes a namespace for good: nothing runs the namespace controller here, so its finalizer is taken off by hand. */
  const deleteNamespace = async (name: string): Promise<void> => {
    await core.deleteNamespace({ name });
    await core.replaceNamespaceFinalize({ name, body: { metadata: { name }, spec: { finalizers: [] } } }).catch(() => undefined);
    await waitFor(`namespace ${name} gone`, async () => core.readNamespace({ name }).then(() => false, () => true), { timeoutMs: 20_000 });
  };
  /** CNI_ARGS as containerd and CRI-O pass them (IgnoreUnknown: host-local refuses keys it does not know otherwise). */
  const args = (ns: string): string => `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=pod;K8S_POD_INFRA_CONTAINER_ID=x`;

  const getBvi = async (vpc: string): Promise<Bvi | undefined> =>
    (custom.getClusterCustomObject({ group, version, plural: "bgpvrfinstances", name: `${nodeName}.vpc-${vpc}` }) as Promise<Bvi>).catch(() => undefined);
  const getClaim = async (nn: number): Promise<unknown> =>
    custom.getClusterCustomObject({ group, version, plural: "routetargetclaims", name: `rt-65000-${nn}` }).catch(() => undefined);
  /** Plays kvrfd's part at deletion: release the finalizer of a terminating object. */
  const finishDeletion = async (vpc: string): Promise<void> => {
    const bvi = await getBvi(vpc);
    if (bvi?.metadata.deletionTimestamp === undefined) return;
    await custom.patchClusterCustomObject(
      { group, version, plural: "bgpvrfinstances", name: bvi.metadata.name, body: [{ op: "remove", path: "/metadata/finalizers" }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );
    await waitFor(`BGPVRFInstance of VPC ${vpc} gone`, async () => (await getBvi(vpc)) === undefined, { timeoutMs: 10_000 });
  };
  const kvrfLinks = async (): Promise<string[]> => (await node.ip("-o", "link", "show")).split("\n").filter((l) => / kv[a-z2-7]{13}[@:]/.test(l));
  const leases = (): string[] => {
    const d = cni.leaseDir("shared");
    if (!existsSync(d)) return [];
    return readdirSync(d, { recursive: true, encoding: "utf8" }).map((f) => path.basename(f)).filter((f) => isIP(f) !== 0);
  };
  const records = (): string[] => (existsSync(path.join(state, "attachments")) ? readdirSync(path.join(state, "attachments")) : []);
  const record = (containerID: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(state, "attachments", `${network}:${containerID}:eth0`), "utf8")) as Record<string, unknown>;
  /** The plugin's "detached" log lines of a container: where DEL found the VPC. */
  const detached = (containerID: string): { vpc?: string; vpcFrom?: string; msg: string }[] =>
    readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes('"msg":"detached'))
      .map((l) => JSON.parse(l) as { containerID: string; vpc?: string; vpcFrom?: string; msg: string })
      .filter((l) => l.containerID === containerID);
  /** Nothing of any VPC left on the node: interfaces, VXLAN devices, rules and routes of the tables, leases, records. */
  const expectNothingLeft = async (tables: number[]): Promise<void> => {
    expect(await kvrfLinks()).toEqual([]);
    expect(await node.ip("-o", "link", "show")).not.toMatch(/kvx-|kvrf-/);
    const routes = `${await node.ip("-4", "route", "show", "table", "all")}${await node.ip("-6", "route", "show", "table", "all")}`;
    for (const t of tables) {
      expect(await node.ip("-4", "rule", "show", "table", String(t))).toBe("");
      expect(await node.ip("-6", "rule", "show", "table", String(t))).toBe("");
      expect(routes).not.toContain(`table ${t} `);
    }
    expect(leases()).toEqual([]);
    expect(records()).toEqual([]);
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
    await core.createNode({ body: { metadata: { name: nodeName } } }).catch(() => undefined);
    node = await createNetns("nsvpc-node");
    await node.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
    await node.ip("addr", "add", `${vtep}/32`, "dev", "lo");
    bridge = await startApiBridge(inject("apiserverUrl"), dir);
    await bridge.into(node.name);
    nsKubeconfig = bridge.nsKubeconfig(inject("kubeconfig"), path.join(dir, "kvrf.kubeconfig"));
    cni = new CniNode({ netns: node.name, dir });
  });

  afterAll(async () => {
    await cleanupNetns();
    await bridge?.close();
    for (const name of namespaces) await core?.deleteNamespace({ name }).catch(() => undefined);
    if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
  });

  it("puts the pods of two namespaces into their namespaces' VPCs: tables, objects, claims, records", async () => {
    cni.writeConflist(network, [plugin({ vpc: "ab" })]);
    const [red, blue] = [await namespace("red", "a1"), await namespace("blue", "0x0000000000b1")];
    const [pr, pb] = await Promise.all([createNetns("red"), createNetns("blue")]);
    const rr = await cni.cnitool("add", network, pr.path, { args: args(red) });
    expectOk(rr);
    const rb = await cni.cnitool("add", network, pb.path, { args: args(blue) });
    expectOk(rb);
    const [cr, cb] = [await cnitoolContainerId(pr.path), await cnitoolContainerId(pb.path)];
    type Res = { interfaces: { name: string }[]; ips: { address: string }[] };
    const hostR = (rr.json as Res).interfaces[0]?.name ?? "";
    const hostB = (rb.json as Res).interfaces[0]?.name ?? "";
    const ipR = (rr.json as Res).ips[0]?.address ?? "";
    const ipB = (rb.json as Res).ips[0]?.address ?? "";
    // Each host interface is in its namespace's VPC, and each VPC's table routes its own pod only.
    expect(parseHostVethName(hostR)?.vpc).toBe(0xa1n);
    expect(parseHostVethName(hostB)?.vpc).toBe(0xb1n);
    expect(await node.ip("-4", "route", "show", "table", String(0xa1))).toContain(`${ipR.split("/")[0] ?? ""} dev ${hostR}`);
    expect(await node.ip("-4", "route", "show", "table", String(0xa1))).not.toContain(hostB);
    expect(await node.ip("-4", "route", "show", "table", String(0xb1))).toContain(`${ipB.split("/")[0] ?? ""} dev ${hostB}`);
    expect(await node.ip("-4", "route", "show", "table", String(0xb1))).not.toContain(hostR);
    expect(await node.ip("-4", "rule", "show", "iif", hostR)).toContain(`lookup ${0xa1}`);
    expect(await node.ip("-4", "rule", "show", "iif", hostB)).toContain(`lookup ${0xb1}`);
    // One BGPVRFInstance per VPC, each with its pod; none of the default VPC ab.
    expect((await getBvi("a1"))?.spec).toMatchObject({ vpc: "a1", table: 0xa1, attachments: [{ containerID: cr, ifName: "eth0", prefixes: [ipR, expect.stringMatching(/^fd60::/) as unknown] }] });
    expect((await getBvi("b1"))?.spec).toMatchObject({ vpc: "b1", table: 0xb1, attachments: [{ containerID: cb, ifName: "eth0", prefixes: [ipB, expect.stringMatching(/^fd60::/) as unknown] }] });
    expect(await getBvi("ab")).toBeUndefined();
    expect(await getClaim(0xa1)).toBeDefined();
    expect(await getClaim(0xb1)).toBeDefined();
    // The node's records, and the one host-local pool the two VPCs share (distinct addresses).
    expect(record(cr)).toEqual({ network, containerID: cr, ifName: "eth0", vpc: "a1", namespace: red });
    expect(record(cb)).toEqual({ network, containerID: cb, ifName: "eth0", vpc: "b1", namespace: blue });
    expect(ipR).not.toBe(ipB);
    expect(leases()).toHaveLength(4);
    // The VPCs are separate: a pod cannot reach the other VPC's pod.
    expect(await pr.exec("ping", "-c", "1", "-W", "1", ipB.split("/")[0] ?? "").catch((e: unknown) => String(e))).not.toMatch(/ 1 received/);

    expectOk(await cni.cnitool("check", network, pr.path, { args: args(red) }));
    expectOk(await cni.cnitool("check", network, pb.path, { args: args(blue) }));
    expectOk(await cni.cnitool("del", network, pr.path, { args: args(red) }));
    expectOk(await cni.cnitool("del", network, pb.path, { args: args(blue) }));
    expect(detached(cr).map((l) => [l.vpc, l.vpcFrom])).toEqual([["a1", "record"]]);
    expect(detached(cb).map((l) => [l.vpc, l.vpcFrom])).toEqual([["b1", "record"]]);
    expect((await getBvi("a1"))?.metadata.deletionTimestamp).toBeDefined();
    expect((await getBvi("b1"))?.metadata.deletionTimestamp).toBeDefined();
    await finishDeletion("a1");
    await finishDeletion("b1");
    expect(await getClaim(0xa1)).toBeUndefined();
    expect(await getClaim(0xb1)).toBeUndefined();
    await expectNothingLeft([0xa1, 0xb1]);
  });

  it("keeps a pod in its VPC when the annotation changes: CHECK and DEL act on the original VPC, nothing is left", async () => {
    cni.writeConflist(network, [plugin({ vpc: "ab" })]);
    const ns = await namespace("moves", "c1");
    const pod = await createNetns("moves");
    expectOk(await cni.cnitool("add", network, pod.path, { args: args(ns) }));
    const id = await cnitoolContainerId(pod.path);
    await annotate(ns, "c2");
    // CHECK compares with the VPC ADD recorded, not the one the annotation names now.
    expectOk(await cni.cnitool("check", network, pod.path, { args: args(ns) }));
    expect((await getBvi("c1"))?.spec.attachments?.map((a) => a.containerID)).toEqual([id]);
    // The pod's network namespace goes first (its veth with it), as it may in a real node.
    const podPath = pod.path;
    await pod.delete();
    expectOk(await cni.cnitool("del", network, podPath, { args: args(ns) }));
    expect(detached(id).map((l) => [l.vpc, l.vpcFrom])).toEqual([["c1", "record"]]);
    expect((await getBvi("c1"))?.metadata.deletionTimestamp).toBeDefined();
    expect(await getBvi("c2")).toBeUndefined();
    await finishDeletion("c1");
    expect(await getClaim(0xc1)).toBeUndefined();
    expect(await getClaim(0xc2)).toBeUndefined();
    expect(existsSync(path.join(state, "claims", "c1"))).toBe(false);
    expectOk(await cni.cnitool("del", network, podPath, { args: args(ns) })); // twice
    await expectNothingLeft([0xc1, 0xc2]);
  });

  it("refuses a pod whose namespace has no annotation when the config has no default VPC (code 7), leaving nothing behind", async () => {
    const { vpc: _none, ...noDefault } = plugin();
    cni.writeConflist(network, [noDefault]);
    const ns = await namespace("plain");
    const pod = await createNetns("plain");
    const conf = { cniVersion: "1.1.0", name: network, ...noDefault };
    const r = await runPlugin(cni, node.name, "ADD", conf, { containerId: "plain1", podNetns: pod.path, ifName: "eth0", args: args(ns) });
    expect(r.json).toEqual({
      cniVersion: "1.1.0",
      code: 7,
      msg: `namespace ${ns} has no kvrf.dev/vpc annotation and the network config "${network}" has no default "vpc": annotate the namespace with its VPC (kubectl annotate namespace ${ns} kvrf.dev/vpc=<48-bit hex VPC ID>) or set "vpc" in the config`,
    });
    expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
    // An invalid annotation is refused the same way, naming the namespace and the annotation.
    await annotate(ns, "1000000fe");
    const bad = await runPlugin(cni, node.name, "ADD", conf, { containerId: "plain1", podNetns: pod.path, ifName: "eth0", args: args(ns) });
    expect(bad.json).toMatchObject({
      code: 7,
      msg: `namespace ${ns} annotation kvrf.dev/vpc: "1000000fe": its low 32 bits (254) are a reserved kernel routing table (0, 253, 254, 255), which kvrf uses as the VPC's table`,
    });
    // The runtime's DEL after the failed ADD succeeds.
    const del = await runPlugin(cni, node.name, "DEL", conf, { containerId: "plain1", ifName: "eth0", args: args(ns) });
    expect({ code: del.code, out: del.stdout }).toEqual({ code: 0, out: "" });
    await expectNothingLeft([]);
    // And once the admin annotates the namespace, the runtime's retry succeeds.
    await annotate(ns, "c3");
    expectOk(await cni.cnitool("add", network, pod.path, { args: args(ns) }));
    expectOk(await cni.cnitool("del", network, pod.path, { args: args(ns) }));
    await finishDeletion("c3");
    await expectNothingLeft([0xc3]);
  });

  it("DELs a pod whose namespace is gone", async () => {
    cni.writeConflist(network, [plugin()]);
    const ns = await namespace("gone", "c4");
    const pod = await createNetns("gone");
    expectOk(await cni.cnitool("add", network, pod.path, { args: args(ns) }));
    const id = await cnitoolContainerId(pod.path);
    await deleteNamespace(ns);
    expectOk(await cni.cnitool("del", network, pod.path, { args: args(ns) }));
    expect(detached(id).map((l) => [l.vpc, l.vpcFrom])).toEqual([["c4", "record"]]);
    await finishDeletion("c4");
    expect(await getClaim(0xc4)).toBeUndefined();
    await expectNothingLeft([0xc4]);
  });

  it("without the node's record (a reboot cleared the state directory) DEL finds the attachment in the kernel, else in its VPC's object", async () => {
    cni.writeConflist(network, [plugin()]);
    const ns = await namespace("lost", "c5");
    const [p1, p2] = await Promise.all([createNetns("lost1"), createNetns("lost2")]);
    expectOk(await cni.cnitool("add", network, p1.path, { args: args(ns) }));
    expectOk(await cni.cnitool("add", network, p2.path, { args: args(ns) }));
    const [id1, id2] = [await cnitoolContainerId(p1.path), await cnitoolContainerId(p2.path)];
    rmSync(path.join(state, "attachments"), { recursive: true });
    await annotate(ns, "c6");
    // p1's host interface still says c5.
    expectOk(await cni.cnitool("del", network, p1.path, { args: args(ns) }));
    expect(detached(id1).map((l) => [l.vpc, l.vpcFrom])).toEqual([["c5", "interface"]]);
    // p2's is gone with its network namespace: the node's object of c5 (a VPC it holds a claim for) has its entry.
    const p2Path = p2.path;
    await p2.delete();
    expectOk(await cni.cnitool("del", network, p2Path, { args: args(ns) }));
    expect(detached(id2).map((l) => [l.vpc, l.vpcFrom])).toEqual([["c5", "object"]]);
    expect((await getBvi("c5"))?.metadata.deletionTimestamp).toBeDefined();
    await finishDeletion("c5");
    expect(await getClaim(0xc5)).toBeUndefined();
    await expectNothingLeft([0xc5, 0xc6]);
  });

  it("GC removes an attachment of a namespace's VPC that the runtime no longer knows, found through the node's record", async () => {
    cni.writeConflist(network, [plugin({ vpc: "ab" })]);
    const ns = await namespace("gc", "c7");
    const pod = await createNetns("gc");
    const conf = { cniVersion: "1.1.0", name: network, ...plugin({ vpc: "ab" }) };
    expectOk(await runPlugin(cni, node.name, "ADD", conf, { containerId: "gc1", podNetns: pod.path, ifName: "eth0", args: args(ns) }));
    // The pod's namespace (and with it the veth) is gone, and so is the runtime's memory of it.
    await pod.delete();
    await annotate(ns, "c8");
    const gc = await runPlugin(cni, node.name, "GC", { ...conf, "cni.dev/valid-attachments": [] });
    expect({ code: gc.code, out: gc.stdout }).toEqual({ code: 0, out: "" });
    expect((await getBvi("c7"))?.metadata.deletionTimestamp).toBeDefined();
    await finishDeletion("c7");
    expect(await getClaim(0xc7)).toBeUndefined();
    await expectNothingLeft([0xc7]);
  });
  it("after a reboot (pods' namespaces gone, state directory cleared) the first ADD sweeps what the old boot left: API entries, claims, leases, rules; a live pod is kept", async () => {
    cni.writeConflist(network, [plugin()]);
    const [nsA, nsB] = [await namespace("boot-a", "c9"), await namespace("boot-b", "ca")];
    const [p1, p2, live] = await Promise.all([createNetns("boot1"), createNetns("boot2"), createNetns("boot3")]);
    const added = new Map<string, string>();
    for (const [pod, ns] of [[p1, nsA], [p2, nsB], [live, nsA]] as const) {
      const r = await cni.cnitool("add", network, pod.path, { args: args(ns) });
      expectOk(r);
      added.set(pod.name, (r.json as { interfaces: { name: string }[] }).interfaces[0]?.name ?? "");
    }
    const [id1, id2, idLive] = [await cnitoolContainerId(p1.path), await cnitoolContainerId(p2.path), await cnitoolContainerId(live.path)];
    const leasesBefore = leases().length;
    const sweeps = (): number => readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("swept what the node's previous boot left")).length;
    const sweepsBefore = sweeps();
    // The "reboot": two pods' network namespaces die with their veths (their iif rules stay in the
    // kernel), the state directory (a tmpfs) is empty, and no runtime remembers them: no DEL comes.
    // One pod lives on, as it would through an upgrade to a plugin with the sweep.
    await Promise.all([p1.delete(), p2.delete()]);
    rmSync(state, { recursive: true, force: true });
    expect(await node.ip("-4", "rule", "show")).toContain(`iif ${added.get(p1.name) ?? "?"} `);
    const fresh = await createNetns("boot4");
    expectOk(await cni.cnitool("add", network, fresh.path, { args: args(nsA) }));
    const idFresh = await cnitoolContainerId(fresh.path);
    expect(sweeps()).toBe(sweepsBefore + 1);
    expect((await getBvi("c9"))?.spec.attachments?.map((a) => a.containerID).sort()).toEqual([idLive, idFresh].sort());
    expect((await getBvi("ca"))?.metadata.deletionTimestamp).toBeDefined();
    await finishDeletion("ca");
    expect(await getClaim(0xca)).toBeUndefined();
    expect(await getClaim(0xc9)).toBeDefined();
    const rules = `${await node.ip("-4", "rule", "show")}${await node.ip("-6", "rule", "show")}`;
    expect(rules).not.toContain(added.get(p1.name) ?? "?");
    expect(rules).not.toContain(added.get(p2.name) ?? "?");
    expect(rules).toContain(`iif ${added.get(live.name) ?? "?"} `);
    // The two dead pods' leases went back to the pool (two families each), the live one's stayed.
    expect(leases()).toHaveLength(leasesBefore - 4 + 2);
    // Once per boot: the next ADD does not sweep again.
    const again = await createNetns("boot5");
    expectOk(await cni.cnitool("add", network, again.path, { args: args(nsA) }));
    expect(sweeps()).toBe(sweepsBefore + 1);
    for (const pod of [live, fresh, again]) expectOk(await cni.cnitool("del", network, pod.path, { args: args(nsA) }));
    await finishDeletion("c9");
    expect([id1, id2].some((id) => records().some((r) => r.includes(id)))).toBe(false);
    await expectNothingLeft([0xc9, 0xca]);
  });
});
