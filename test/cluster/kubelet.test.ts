// kvrf under its real callers: the lab's workers run containerd 2.4 + kubelet 1.35 (scripts/lab up
// --kubelet, scripts/netns-lab/kubelet.ts), kvrf is deployed from manifests/ with kubectl as users
// deploy it (the DaemonSet's installer, kvrfd and gobgpd in their pods with the manifests' security
// context), and pods come from Deployments created with kubectl — kubelet, not cnitool, calls the
// plugin (ADD, DEL, CHECK, STATUS, GC on the runtime's schedule). VXLAN over IPv4, the encapsulation
// this machine's kernel runs; the kernel mode is whatever the plugin picks (auto).
// Times are logged, never asserted (scripts/bench-lab.ts measures).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { converge, down, kernelRoutes, labDir, readState, up } from "../../scripts/netns-lab/lab.js";
import {
  demoWorkloads,
  kubectl,
  kubectlApply,
  kubeletPods,
  matrixPods,
  nodeFootprint,
  rebootNode,
  restartKubelet,
  runtimeDir,
  startProbes,
  startWorkloads,
  workloadNamespace,
  workloadObjects,
  type KubeletPod,
  type ProbeResult,
} from "../../scripts/netns-lab/kubelet.js";
import { describeSettings, labNodes, underlayAddress, workers, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { repoRoot } from "../harness/tools.js";
import { waitFor } from "../harness/process.js";
import { describeNeeds, timeScale } from "../harness/needs.js";

const lab: LabSettings = { encap: "vxlan", underlay: 4, runtime: "kubelet" };
const log = (s: string): void => void process.stderr.write(`[kubelet] ${s}\n`);
const needs = [...new Set([...cniNeeds("policy-routing", lab.encap), ...kvrfdNeeds(lab.encap, lab.underlay)])];

describeNeeds(needs, `kvrf under kubelet + containerd, deployed from manifests/ (${describeSettings(lab)})`, () => {
  let kubeconfig = "";
  let pods: KubeletPod[] = [];
  const k = (...args: string[]): Promise<string> => kubectl(kubeconfig, args);
  const convergeOk = async (what: string): Promise<void> => {
    const { ms, cells } = await converge(matrixPods(pods), 90_000 * timeScale);
    log(`${what}: matrix of ${pods.length} pods as expected after ${ms} ms`);
    expect(cells.filter((c) => c.ok !== c.expected)).toEqual([]);
  };
  const readyCondition = async (node: string): Promise<string> =>
    k("get", "node", node, "-o", 'jsonpath={range .status.conditions[?(@.type=="Ready")]}{.status} {.message}{end}');

  beforeAll(async () => {
    await up(log, lab);
    const state = readState();
    if (state === undefined) throw new Error("the lab did not record its state");
    kubeconfig = state.kubeconfig;
    pods = await startWorkloads(labDir, kubeconfig, demoWorkloads, log, 180_000 * timeScale);
  });
  afterAll(async () => {
    await down(log);
  });

  it("the DaemonSet's installer put the plugin, its node-bound credentials and the conflist on every node, and every node is Ready", async () => {
    const plugin = createHash("sha256").update(readFileSync(path.join(repoRoot, "dist/kvrf"))).digest("hex");
    for (const w of workers) {
      const root = path.join(runtimeDir(labDir, w.name), "root");
      const bin = path.join(root, "opt/cni/bin/kvrf");
      expect(createHash("sha256").update(readFileSync(bin)).digest("hex"), `${w.name}: /opt/cni/bin/kvrf is the image's dist/kvrf`).toBe(plugin);
      const conf = JSON.parse(readFileSync(path.join(root, "etc/cni/net.d/90-kvrf.conflist"), "utf8")) as { plugins: Record<string, unknown>[] };
      const kvrf = conf.plugins[0] ?? {};
      expect(kvrf).toMatchObject({ type: "kvrf", nodeName: w.name, vtep: underlayAddress(w, lab), kubeconfig: "/etc/cni/net.d/kvrf.kubeconfig" });
      expect(JSON.stringify(kvrf["ipam"])).toContain(`10.10.${w.index}.0/24`);
      // The plugin's token is bound to the node: its claims name the Node object.
      const token = readFileSync(path.join(root, "etc/cni/net.d/kvrf.token"), "utf8").trim();
      const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { "kubernetes.io"?: { node?: { name?: string } }; sub?: string };
      expect(claims.sub).toBe("system:serviceaccount:kvrf-system:kvrf-cni");
      expect(claims["kubernetes.io"]?.node?.name).toBe(w.name);
      expect(await readyCondition(w.name)).toMatch(/^True /);
    }
    const ds = JSON.parse(await k("-n", "kvrf-system", "get", "daemonset", "kvrf-node", "-o", "json")) as { status: { numberReady: number } };
    expect(ds.status.numberReady).toBe(workers.length);
  });

  it("pods created with kubectl in two VPCs' namespaces reach their own VPC across nodes, never the other", async () => {
    expect(new Set(pods.map((p) => p.node)).size).toBeGreaterThan(1);
    expect(pods.filter((p) => p.vpc === "b1").length).toBe(2);
    await convergeOk("kubectl-created pods");
    // On every node with a pod of a VPC, the VPC's table routes its pods on the other nodes, and
    // never an address only the other VPC has (a node without a pod of a VPC does not import it).
    for (const w of workers) {
      const tables = { a1: await kernelRoutes(w.name, 0xa1), b1: await kernelRoutes(w.name, 0xb1) };
      for (const vpc of ["a1", "b1"] as const) {
        const other = vpc === "a1" ? "b1" : "a1";
        const prefixes = tables[vpc].map((r) => r.split(" ")[0]);
        if (pods.some((p) => p.vpc === vpc && p.node === w.name)) {
          for (const p of pods.filter((x) => x.vpc === vpc && x.node !== w.name)) expect(prefixes, `${vpc}'s ${p.ipv4} in ${w.name}'s table of ${vpc}`).toContain(p.ipv4);
        }
        for (const p of pods.filter((x) => x.vpc === other && !pods.some((y) => y.vpc === vpc && y.ipv4 === x.ipv4))) {
          expect(prefixes, `${other}'s ${p.ipv4} must not be in ${w.name}'s table of ${vpc}`).not.toContain(p.ipv4);
        }
      }
    }
  });

  it("deleting a pod: kubelet's DEL detaches it and every node withdraws its address; the replacement is reachable", async () => {
    const victim = pods.find((p) => p.vpc === "a1" && p.node === "sjc") ?? pods.find((p) => p.vpc === "a1" && p.node !== "iad");
    if (victim === undefined) throw new Error("no a1 pod off iad");
    const t0 = Date.now();
    await k("-n", victim.namespace, "delete", "pod", victim.name, "--wait=true", "--timeout=120s");
    await waitFor(
      `${victim.ipv4} withdrawn from iad's table 161`,
      async () => !(await kernelRoutes("iad", 0xa1)).some((r) => r.startsWith(`${victim.ipv4} `)) || (await kubeletPods(labDir, kubeconfig)).some((p) => p.ipv4 === victim.ipv4),
      { timeoutMs: 60_000 * timeScale, intervalMs: 250 },
    );
    log(`pod ${victim.name} deleted and its address withdrawn in ${Date.now() - t0} ms`);
    const footprint = await nodeFootprint(labDir, victim.node);
    expect((footprint["leases"] ?? []).filter((l) => l.endsWith(`/${victim.ipv4}`)).length, "host-local lease released (unless the replacement took it)").toBeLessThanOrEqual(
      (await kubeletPods(labDir, kubeconfig)).some((p) => p.ipv4 === victim.ipv4 && p.node === victim.node) ? 1 : 0,
    );
    const want = demoWorkloads.reduce((n, w) => n + w.replicas, 0);
    await waitFor(`${want} pods running again`, async () => (pods = await kubeletPods(labDir, kubeconfig)).length === want && pods.every((p) => p.ipv4 !== ""), {
      timeoutMs: 120_000 * timeScale,
      intervalMs: 1000,
    });
    await convergeOk("after the replacement");
  });

  it("churn: pods created and deleted at once on every node leave no link, rule, route, lease, namespace or object behind", async () => {
    // 10 per node in CI (time); KVRF_CHURN_PER_NODE=30 for the 30 per node (docs/benchmarks.md).
    const perNode = Number(process.env["KVRF_CHURN_PER_NODE"] ?? 10);
    const before = Object.fromEntries(await Promise.all(workers.map(async (w) => [w.name, await nodeFootprint(labDir, w.name)] as const)));
    const objectsBefore = await k("get", "bgpvrfinstances,routetargetclaims,vniclaims", "-o", "name");
    const churn = workloadObjects({ vpc: "b1", replicas: perNode * workers.length }).filter((o) => o["kind"] === "Deployment");
    for (const d of churn) (d["metadata"] as { name: string }).name = "churn";
    const t0 = Date.now();
    await kubectlApply(kubeconfig, churn);
    const selector = "kvrf.dev/lab-workload=b1";
    await waitFor(
      `${perNode * workers.length} churn pods running`,
      async () => (await kubeletPods(labDir, kubeconfig, selector)).length >= perNode * workers.length + demoWorkloads.filter((w) => w.vpc === "b1").reduce((n, w) => n + w.replicas, 0),
      { timeoutMs: 300_000 * timeScale, intervalMs: 2000 },
    );
    const up = Date.now() - t0;
    await k("-n", workloadNamespace("b1"), "delete", "deployment", "churn", "--wait=true", "--timeout=300s");
    await waitFor("churn pods gone", async () => (JSON.parse(await k("-n", workloadNamespace("b1"), "get", "pods", "-o", "json")) as { items: unknown[] }).items.length === 2, {
      timeoutMs: 300_000 * timeScale,
      intervalMs: 2000,
    });
    log(`churn: ${perNode * workers.length} pods running after ${up} ms, all deleted after ${Date.now() - t0} ms`);
    for (const w of workers) {
      await waitFor(`${w.name}'s footprint back to what it was`, async () => JSON.stringify(await nodeFootprint(labDir, w.name)) === JSON.stringify(before[w.name]), {
        timeoutMs: 60_000 * timeScale,
        intervalMs: 1000,
      }).catch(async (err: unknown) => {
        expect(await nodeFootprint(labDir, w.name), `${w.name} after churn`).toEqual(before[w.name]);
        throw err;
      });
    }
    await waitFor("API objects back to what they were", async () => (await k("get", "bgpvrfinstances,routetargetclaims,vniclaims", "-o", "name")) === objectsBefore, {
      timeoutMs: 60_000 * timeScale,
      intervalMs: 1000,
    });
    await convergeOk("after the churn");
  }, 900_000 * timeScale);

  it("a node whose plugin STATUS says not ready is NotReady with the plugin's reason, and Ready again once fixed", async () => {
    // No BGPInstance selects a node without the worker label: the plugin cannot add pods there.
    await k("label", "node", "sjc", "kvrf.dev/role-");
    try {
      await waitFor("sjc NotReady", async () => (await readyCondition("sjc")).startsWith("False"), { timeoutMs: 90_000 * timeScale, intervalMs: 1000 });
      expect(await readyCondition("sjc")).toContain("no BGPInstance selects node sjc");
    } finally {
      await k("label", "node", "sjc", "kvrf.dev/role=worker", "--overwrite");
    }
    await waitFor("sjc Ready", async () => (await readyCondition("sjc")).startsWith("True"), { timeoutMs: 90_000 * timeScale, intervalMs: 1000 });
    await convergeOk("sjc Ready again");
    // Without a BGPInstance kvrfd stopped BGP, which gobgpd 4 cannot start again: its liveness
    // probe (gobgp-alive) failed and kubelet restarted it, and kvrfd started BGP on the new one.
    const restarts = await k("-n", "kvrf-system", "get", "pods", "--field-selector", "spec.nodeName=sjc", "-o", 'jsonpath={.items[0].status.containerStatuses[?(@.name=="gobgpd")].restartCount}');
    log(`sjc's gobgpd container restarted ${restarts} time(s)`);
    expect(Number(restarts)).toBeGreaterThanOrEqual(1);
  });

  it("kubelet restart: the pods keep their sandboxes and addresses and stay reachable", async () => {
    const before = (await kubeletPods(labDir, kubeconfig)).filter((p) => p.node === "iad").map((p) => `${p.name} ${p.ipv4} ${p.netnsPath}`).sort();
    await restartKubelet(labDir, "iad", 2000);
    await waitFor("iad Ready after the kubelet restart", async () => (await readyCondition("iad")).startsWith("True"), { timeoutMs: 90_000 * timeScale, intervalMs: 1000 });
    await new Promise((r) => setTimeout(r, 5000));
    pods = await kubeletPods(labDir, kubeconfig);
    expect(pods.filter((p) => p.node === "iad").map((p) => `${p.name} ${p.ipv4} ${p.netnsPath}`).sort()).toEqual(before);
    await convergeOk("after kubelet restarted on iad");
    expect(existsSync(path.join(runtimeDir(labDir, "iad"), "kubelet.pid"))).toBe(true);
    void labNodes;
  });

  it("kvrfd's pod deleted, then a rolling update of the DaemonSet: every pod keeps reaching the other nodes' pods (longest outage measured)", async () => {
    // One a1 pod per node probes an a1 pod on every other node, 5 probes a second.
    const a1 = pods.filter((p) => p.vpc === "a1");
    const firstOn = workers.map((w) => a1.find((p) => p.node === w.name)).filter((p): p is KubeletPod => p !== undefined);
    const pairs = firstOn.flatMap((from) => firstOn.filter((to) => to.node !== from.node).map((to) => ({ from, to })));
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    const ds = (): Promise<{ desired: number; updated: number; ready: number; generation: number; observed: number }> =>
      k("-n", "kvrf-system", "get", "daemonset", "kvrf-node", "-o", "json").then((t) => {
        const d = JSON.parse(t) as { metadata: { generation: number }; status: { desiredNumberScheduled: number; updatedNumberScheduled?: number; numberReady: number; observedGeneration?: number } };
        return { desired: d.status.desiredNumberScheduled, updated: d.status.updatedNumberScheduled ?? 0, ready: d.status.numberReady, generation: d.metadata.generation, observed: d.status.observedGeneration ?? 0 };
      });
    const report = (what: string, results: ProbeResult[]): void => {
      for (const r of results) log(`${what}: ${r.from} -> ${r.to}: ${r.received}/${r.sent} answered, longest outage ${r.longestOutageMs} ms`);
      log(`${what}: longest outage of any pod ${Math.max(...results.map((r) => r.longestOutageMs))} ms`);
      // Graceful restart (the lab's BGPInstances set it) and kvrfd leaving the kernel's routes in
      // place on SIGTERM: the pods' traffic never notices, not one probe is lost.
      for (const r of results) expect({ pair: `${r.from} -> ${r.to}`, longestOutageMs: r.longestOutageMs, lostAtEnd: r.lostAtEnd }).toEqual({ pair: `${r.from} -> ${r.to}`, longestOutageMs: 0, lostAtEnd: 0 });
    };

    /** Probes running while `during` runs, and 10 s after it (the pings hold the pods' namespaces: always stopped). */
    const probed = async (what: string, during: () => Promise<void>): Promise<void> => {
      const probes = startProbes(pairs);
      let results: ProbeResult[];
      try {
        await new Promise((r) => setTimeout(r, 3000));
        const t0 = Date.now();
        await during();
        log(`${what}: done after ${Date.now() - t0} ms`);
        await new Promise((r) => setTimeout(r, 10_000));
      } finally {
        results = await probes.stop();
      }
      report(what, results);
    };

    // kvrfd's pod on sjc deleted: the DaemonSet makes a new one (graceful restart keeps the routes).
    const old = (await k("-n", "kvrf-system", "get", "pods", "--field-selector", "spec.nodeName=sjc", "-o", "jsonpath={.items[0].metadata.name}")).trim();
    await probed("kvrfd pod restart on sjc", async () => {
      await k("-n", "kvrf-system", "delete", "pod", old, "--wait=true", "--timeout=180s");
      await waitFor("kvrf-node ready on every node again", async () => {
        const d = await ds();
        const now = (await k("-n", "kvrf-system", "get", "pods", "--field-selector", "spec.nodeName=sjc", "-o", "jsonpath={.items[*].metadata.name}")).trim();
        return d.ready === d.desired && now !== "" && now !== old;
      }, { timeoutMs: 180_000 * timeScale, intervalMs: 1000 });
    });

    // A rolling update (kubectl rollout restart: a new pod template), one node at a time.
    await probed("rolling update of kvrf-node", async () => {
      await k("-n", "kvrf-system", "rollout", "restart", "daemonset/kvrf-node");
      await k("-n", "kvrf-system", "rollout", "status", "daemonset/kvrf-node", `--timeout=${Math.round(600 * timeScale)}s`);
    });
    const d = await ds();
    expect(d).toMatchObject({ updated: d.desired, ready: d.desired, observed: d.generation });
    await convergeOk("after the rolling update");
  }, 900_000 * timeScale);

  it("node reboot (everything killed, /run and the runtime's state cleared): the first plugin run after the boot sweeps the old pods' entries, leases and rules; new pods reachable, old addresses gone everywhere", async () => {
    const node = "sjc";
    const old = (await kubeletPods(labDir, kubeconfig)).filter((p) => p.node === node);
    expect(old.length).toBeGreaterThan(0);
    const oldVeths = ((await nodeFootprint(labDir, node))["links"] ?? []).join("\n").match(/kv[a-z2-7]{13}/g) ?? [];
    const t0 = Date.now();
    await rebootNode(labDir, node, log);
    await waitFor(`${node} Ready after the reboot`, async () => (await readyCondition(node)).startsWith("True"), { timeoutMs: 120_000 * timeScale, intervalMs: 1000 });
    const want = demoWorkloads.reduce((n, w) => n + w.replicas, 0);
    await waitFor(`${want} pods running after ${node}'s reboot`, async () => (pods = await kubeletPods(labDir, kubeconfig)).length === want && pods.every((p) => p.ipv4 !== "" && p.ipv6 !== ""), {
      timeoutMs: 180_000 * timeScale,
      intervalMs: 1000,
    });
    log(`${node} rebooted: node Ready and ${want} pods running after ${Date.now() - t0} ms`);
    const now = pods.filter((p) => p.node === node);
    expect(now.map((p) => p.name).sort()).toEqual(old.map((p) => p.name).sort());
    const addresses = new Set(now.flatMap((p) => [p.ipv4, p.ipv6]));
    // host-local's leases (on disk, kept through the reboot): exactly the running pods' addresses.
    await waitFor(`${node}'s leases are its pods'`, async () => {
      const leased = ((await nodeFootprint(labDir, node))["leases"] ?? []).map((l) => l.split("/").pop() ?? "");
      return JSON.stringify(leased.sort()) === JSON.stringify([...addresses].sort());
    }, { timeoutMs: 30_000 * timeScale, intervalMs: 1000 }).catch(async (err: unknown) => {
      expect(((await nodeFootprint(labDir, node))["leases"] ?? []).map((l) => l.split("/").pop() ?? "").sort(), `${node}'s leased addresses`).toEqual([...addresses].sort());
      throw err;
    });
    // The API: the node's entries are its running pods' addresses, nothing of the old boot.
    const objs = JSON.parse(await k("get", "bgpvrfinstances", "-l", `kvrf.dev/node=${node}`, "-o", "json")) as { items: { spec: { attachments?: { prefixes: string[] }[] } }[] };
    expect(objs.items.flatMap((o) => (o.spec.attachments ?? []).flatMap((a) => a.prefixes.map((x) => x.split("/")[0] ?? ""))).sort()).toEqual([...addresses].sort());
    // The old veths' rules are gone with them; the new ones have theirs.
    const rules = ((await nodeFootprint(labDir, node))["rules"] ?? []).join("\n");
    for (const v of oldVeths) expect(rules, `rule of the old boot's ${v}`).not.toContain(`iif ${v} `);
    // No node keeps routing an old address that no running pod has. The peers kept sjc's routes as
    // stale when its speaker vanished (graceful restart, 120 s in the lab); they drop what the new
    // speaker does not advertise again once it has sent its End-of-RIB.
    const gone = old.map((p) => p.ipv4).filter((ip) => !pods.some((p) => p.ipv4 === ip));
    const stale = async (): Promise<string[]> => {
      const found: string[] = [];
      for (const w of workers) {
        const routes = [...(await kernelRoutes(w.name, 0xa1)), ...(await kernelRoutes(w.name, 0xb1))];
        for (const ip of gone) if (routes.some((r) => r.startsWith(`${ip} `))) found.push(`${w.name} routes ${ip}`);
      }
      return found;
    };
    await waitFor(`no node routing an address of ${node}'s old boot`, async () => (await stale()).length === 0, { timeoutMs: 150_000 * timeScale, intervalMs: 1000 }).catch(async (err: unknown) => {
      expect(await stale(), `routes to ${node}'s old pods`).toEqual([]);
      throw err;
    });
    log(`${node}'s old addresses gone from every node ${Date.now() - t0} ms after the reboot began`);
    await convergeOk(`after ${node}'s reboot`);
  }, 600_000 * timeScale);
});
