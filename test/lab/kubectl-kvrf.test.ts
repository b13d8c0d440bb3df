// `kubectl kvrf` against the network-namespace lab (VXLAN over IPv4, which the host kernel runs),
// run the way an operator on the fabric would (scripts/lab kvrf: from the route reflector's
// namespace, admin kubeconfig, a minted kvrf-debug token, each node's kvrfd over the underlay).
// Each case breaks one thing for real, checks that the data plane really lost it (ping), that the
// commands name the node, the hop and the reason, then repairs it and waits for "no drift".
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import * as k8s from "@kubernetes/client-node";
import { attachPod, converge, down, kubeClient, kubectlKvrf, pidfiles, ping, readState, restartDaemon, speakerOf, up, type AttachedPod } from "../../scripts/netns-lab/lab.js";
import { demoPods, describeSettings, labNodes, nodeNetns, underlayAddress, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { debugAudience, debugSnapshotPath } from "../../shared/debug-snapshot.js";
import { routeTargetClaimName, type BGPVRFInstance } from "../../shared/api-types.js";
import { waitFor } from "../harness/process.js";
import { describeNeeds, timeScale } from "../harness/needs.js";

const run = promisify(execFile);
const lab: LabSettings = { encap: "vxlan", underlay: 4 };
const log = (s: string): void => void process.stderr.write(`[kubectl-kvrf] ${s}\n`);
const needs = [...new Set([...cniNeeds("policy-routing", "vxlan"), ...kvrfdNeeds("vxlan", 4)])];

describeNeeds(needs, `kubectl kvrf in the lab over ${describeSettings(lab)}`, () => {
  const pods: AttachedPod[] = [];
  const pod = (name: string): AttachedPod => {
    const p = pods.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  };
  const kvrf = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = await kubectlKvrf(args);
    log(`kubectl kvrf ${args.join(" ")} → ${r.code}\n${r.stdout}${r.stderr}`);
    return r;
  };
  const noDrift = async (what: string): Promise<void> => {
    await waitFor(`no drift after ${what}`, async () => (await kubectlKvrf(["status"])).code === 0, { timeoutMs: 60_000, intervalMs: 500 });
  };
  const custom = (): k8s.CustomObjectsApi => kubeClient(readState() ?? (() => { throw new Error("lab is down"); })()).makeApiClient(k8s.CustomObjectsApi);

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods) pods.push(await attachPod(p));
    const { cells } = await converge(pods, 90_000 * timeScale);
    expect(cells.filter((c) => c.ok !== c.expected)).toEqual([]);
  });

  afterAll(async () => {
    await down(log);
  });

  it("explains itself, and sees every node ready without drift in a healthy lab", async () => {
    const help = await kvrf("--help");
    expect(help.code).toBe(0);
    for (const c of ["status", "vpc <id>", "diff", "trace <from> <to>"]) expect(help.stdout).toContain(c);
    const status = await kvrf("status");
    expect(status.code).toBe(0);
    // Workers derive their router ID from their InternalIP; the route reflector's is set by hand.
    for (const n of labNodes) {
      const id = n.role === "worker" ? underlayAddress(n, lab).replace(/\./g, "\\.") : "\\S+";
      expect(status.stdout).toMatch(new RegExp(`^${n.name}\\s+yes\\s+${id}\\s+\\d+/\\d+\\s.*\\snone\\s*$`, "m"));
    }
    const vpc = await kvrf("vpc", "a1");
    expect(vpc.code).toBe(0);
    expect(vpc.stdout).toMatch(/no drift$/m);
    const diff = await kvrf("diff", "--node", "iad");
    expect(diff.code).toBe(0);
    expect(diff.stdout).toMatch(/^a1\s+remote\s+10\.10\.12\.2\/32\s+sjc\s+VNI 161 VTEP 198\.51\.100\.12\s+ok .*ok via 198\.51\.100\.12 dev kvx-/m);
    expect(diff.stdout).toContain("iad: no drift");
    // A container ID (lab pods have no Pod object) and a pod address of the same VPC.
    const vrfs = (await custom().listClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpvrfinstances" })) as { items: BGPVRFInstance[] };
    const src = vrfs.items.find((o) => o.spec.nodeName === "iad" && o.spec.vpc === "a1")?.spec.attachments?.find((a) => a.prefixes.includes(`${pod("a1-iad-1").ipv4}/32`));
    expect(src).toBeDefined();
    const tr = await kvrf("trace", `container:${src?.containerID ?? ""}`, pod("a1-dfw").ipv6);
    expect(tr.code).toBe(0);
    expect(tr.stdout.trim().split("\n").map((l) => l.split(/\s+/).slice(0, 4).join(" "))).toEqual(["✓ 1. iad source", "✓ 2. iad lookup", "✓ 3. iad encap", "✓ 4. dfw decap", "✓ 5. dfw deliver"]);
    // Across VPCs there is no path by design, and the trace says so.
    const across = await kvrf("trace", `container:${src?.containerID ?? ""}`, `container:${vrfs.items.find((o) => o.spec.vpc === "b1" && o.spec.nodeName === "sjc")?.spec.attachments?.[0]?.containerID ?? ""}`);
    expect(across.code).toBe(1);
    expect(across.stdout).toMatch(/VPCs are isolated/);
  });

  it("names the node, hop and reason when a remote route is removed from one node's kernel", async () => {
    const target = pod("a1-sjc").ipv4;
    await run("ip", ["-n", nodeNetns("iad"), "route", "del", `${target}/32`, "table", String(0xa1), "proto", "241"]);
    expect(await ping(pod("a1-iad-1"), target)).toBe(false);
    const diff = await kvrf("diff", "--node", "iad");
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain(`iad: 1 of`);
    expect(diff.stdout).toContain(`a1 remote ${target}/32: kernel: iad's table 161 has no kvrfd route (proto 241) for ${target}/32, which gobgpd imported`);
    const tr = await kvrf("trace", pod("a1-iad-1").ipv4, target, "--vpc", "a1");
    expect(tr.code).toBe(1);
    expect(tr.stdout).toMatch(new RegExp(`^✗ 2\\. iad\\s+lookup\\s+table 161 has only the unreachable default for ${target.replace(/\./g, "\\.")}: iad's table 161 has no kvrfd route`, "m"));
    const vpc = await kvrf("vpc", "a1");
    expect(vpc.code).toBe(1);
    expect(vpc.stdout).toContain(`iad: remote ${target}/32 (of sjc): kernel:`);
    // The other nodes are fine; only iad drifts.
    const status = await kvrf("status");
    expect(status.stdout).toMatch(/^iad\s.*1 \(kubectl kvrf diff --node iad\)/m);
    expect(status.stdout).toMatch(/^sjc\s.*\snone\s*$/m);
    // kvrfd puts it back when it starts again (it reads the kernel at start).
    await restartDaemon(pidfiles.kvrfd("iad"), "SIGTERM", 0);
    await noDrift("kvrfd restart on iad");
    expect(await ping(pod("a1-iad-1"), target)).toBe(true);
  });

  it("names the node, hop and reason when a VRF is deleted from one node's gobgpd", async () => {
    const s = await speakerOf("sjc");
    try {
      await s.deleteVrf("vpc-a1");
    } finally {
      s.close();
    }
    const target = pod("a1-sjc").ipv4;
    await waitFor("a1-sjc withdrawn from iad's kernel", async () => !(await ping(pod("a1-iad-1"), target)), { timeoutMs: 30_000 });
    const diff = await kvrf("diff", "--node", "sjc");
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain("a1 vrf vpc-a1: gobgp: VRF vpc-a1 is missing from sjc's gobgpd");
    expect(diff.stdout).toContain(`a1 local ${target}/32: gobgp: sjc's gobgpd does not advertise ${target}/32 with RD 65000:161`);
    const vpc = await kvrf("vpc", "a1");
    expect(vpc.code).toBe(1);
    for (const n of ["iad", "dfw"]) expect(vpc.stdout).toContain(`${n}: remote ${target}/32 (of sjc): gobgp: ${n}'s gobgpd has no path for ${target}/32 of sjc`);
    expect(vpc.stdout).toMatch(/^sjc\s+65000:161\s.*\s0\/2\s/m);
    const tr = await kvrf("trace", pod("a1-dfw").ipv4, target, "--vpc", "a1");
    expect(tr.code).toBe(1);
    expect(tr.stdout).toMatch(/^✗ 2\. dfw\s+lookup\s+.*dfw's gobgpd has no path for .* of sjc \(VNI 161 VTEP 198\.51\.100\.12\): not advertised by sjc/m);
    // kvrfd reads gobgpd's VRFs when it connects: a restart puts the VRF and its paths back.
    await restartDaemon(pidfiles.kvrfd("sjc"), "SIGTERM", 0);
    await noDrift("kvrfd restart on sjc");
    expect(await ping(pod("a1-iad-1"), target)).toBe(true);
  });

  it("names the claim when a VPC's route target is claimed by another VPC", async () => {
    const api = custom();
    const name = routeTargetClaimName("65000:177");
    const claim = (await api.getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "routetargetclaims", name })) as { spec: Record<string, unknown> };
    // Claims are immutable: an operator (or a compromised writer) replaces it with another VPC's.
    const replace = async (vpc: string): Promise<void> => {
      await api.deleteClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "routetargetclaims", name });
      await waitFor(`claim ${name} gone`, async () => api.getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "routetargetclaims", name }).then(() => false, () => true), { timeoutMs: 10_000 });
      await api.createClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "routetargetclaims", body: { apiVersion: "kvrf.dev/v1alpha1", kind: "RouteTargetClaim", metadata: { name }, spec: { ...claim.spec, vpc } } });
    };
    await replace("10000000b1");
    await waitFor("b1 withdrawn", async () => !(await ping(pod("b1-iad"), pod("b1-sjc").ipv4)), { timeoutMs: 30_000 });
    const vpc = await kvrf("vpc", "b1");
    expect(vpc.code).toBe(1);
    for (const n of ["iad", "sjc"]) {
      expect(vpc.stdout).toContain(`${n}: not programmed: route target 65000:177 of VPC b1 is claimed by VPC 10000000b1 (RouteTargetClaim ${name})`);
      expect(vpc.stdout).toMatch(new RegExp(`^${n}\\s+65000:177\\s.*False ClaimMismatch$`, "m"));
    }
    const tr = await kvrf("trace", pod("b1-iad").ipv4, pod("b1-sjc").ipv4, "--vpc", "b1");
    expect(tr.code).toBe(1);
    expect(tr.stdout).toMatch(/^✗ 1\. iad\s+source\s+VPC b1 is not programmed on iad: route target 65000:177 of VPC b1 is claimed by VPC 10000000b1/m);
    await replace("b1");
    await noDrift("claim restored");
    await waitFor("b1 back", async () => ping(pod("b1-iad"), pod("b1-sjc").ipv4), { timeoutMs: 30_000 });
  });

  it("lets no one read a node's snapshot without a token the API server vouches for and RBAC allows", async () => {
    const iad = labNodes.find((n) => n.name === "iad");
    if (iad === undefined) throw new Error("no iad");
    const url = `http://${underlayAddress(iad, lab)}:9477${debugSnapshotPath}`;
    const curl = async (...headers: string[]): Promise<string> =>
      (await run("ip", ["netns", "exec", nodeNetns("rr"), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", ...headers.flatMap((h) => ["-H", h]), url])).stdout;
    expect(await curl()).toBe("401");
    const kc = kubeClient(readState() ?? (() => { throw new Error("lab is down"); })());
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const token = async (sa: string, audiences?: string[]): Promise<string> =>
      (await core.createNamespacedServiceAccountToken({ name: sa, namespace: "kvrf-system", body: { spec: { ...(audiences !== undefined ? { audiences } : {}), expirationSeconds: 600 } } })).status?.token ?? "";
    // kvrf-debug's token for the API server's own audience: valid for the API, not for kvrfd.
    expect(await curl(`Authorization: Bearer ${await token("kvrf-debug")}`)).toBe("401");
    // The right audience, but an identity RBAC does not allow.
    await core.createNamespacedServiceAccount({ namespace: "kvrf-system", body: { metadata: { name: "not-an-operator" } } });
    expect(await curl(`Authorization: Bearer ${await token("not-an-operator", [debugAudience])}`)).toBe("403");
    expect(await curl(`Authorization: Bearer ${await token("kvrf-debug", [debugAudience])}`)).toBe("200");
    // The command says which node refused and why.
    const refused = await kvrf("status", "--node", "iad", "--token", await token("not-an-operator", [debugAudience]));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("HTTP 403: system:serviceaccount:kvrf-system:not-an-operator may not get kvrf.dev nodes/debug iad");
  });
});
