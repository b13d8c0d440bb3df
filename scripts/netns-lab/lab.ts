// The network-namespace lab: the containerlab topology (containerlab/) rebuilt with network
// namespaces so it runs without Docker. Every daemon is detached with a pidfile under
// .testenv/lab, every namespace is named kvrf-lab-*, so `down` removes exactly what `up` made,
// also after a crash. Used by `scripts/lab` and the lab test tier.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { nsKubeconfig, startApiRelay, startNsForwarder } from "../../test/harness/api-bridge.js";
import { startControlPlane } from "../../test/harness/apiserver.js";
import { labControlPlaneFromHost, labControlPlanesVar, releaseLabControlPlane } from "../../test/harness/vm-apiserver.js";
import { startGobgpd } from "../../test/harness/gobgpd.js";
import { spawnDaemon, stopByPidfiles, waitFor } from "../lib/process.js";
import { removeFrrPathspace, startFrr } from "./frr.js";
import { labReflectorConfig, reflectorInstance } from "./frr-reflector.js";
import { cniBinDir, repoRoot, testEnvDir, tool } from "../../test/harness/tools.js";
import { bgpVrfInstanceName, type BGPVRFInstance } from "../../shared/api-types.js";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { Speaker } from "../../reconciler/gobgp/speaker.js";
import { deployKvrf, imageArchives, restoreKubeletSysctls, saveKubeletSysctls, startControllers, startNodeRuntime, stopNodeRuntime, runtimeDir } from "./kubelet.js";
import { bgpInstances, conflist, demoPods, fabricNetns, labNodes, labReflector, nodeAnnotations, nodeNetns, nsPrefix, podNetns, srv6Lab, underlayAddress, workers, type DemoPod, type LabNode, type LabSettings } from "./topology.js";

export const labDir = path.join(testEnvDir, "lab");
/** The FRR pathspace (-N) of the route reflector when FRR runs it: `vtysh -N kvrf-lab-rr`. */
export const reflectorFrrName = `${nsPrefix}rr`;
const stateFile = path.join(labDir, "state.json");

export interface LabState {
  apiserverUrl: string;
  kubeconfig: string;
  startedAt: string;
  /** Encapsulation and underlay family the lab runs (absent in a state from before: SRv6/IPv6). */
  settings?: LabSettings;
}

/** The settings of the lab that is up (or would be). */
export function labSettings(state: LabState | undefined = readState()): LabSettings {
  return state?.settings ?? srv6Lab;
}

function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: "utf8", maxBuffer: 16 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const ipn = (ns: string, ...args: string[]): Promise<string> => run("ip", ["-n", ns, ...args]);
const inNs = (ns: string, cmd: string, ...args: string[]): Promise<string> => run("ip", ["netns", "exec", ns, cmd, ...args]);

export function readState(): LabState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile, "utf8")) as LabState;
  } catch {
    return undefined;
  }
}

export function kubeClient(state: LabState): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(state.kubeconfig);
  return kc;
}

async function labNamespaces(): Promise<string[]> {
  const out = await run("ip", ["netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(nsPrefix));
}

/** Is the lab fully up (state, every namespace, every daemon), with these settings when given? */
export async function isUp(settings?: LabSettings): Promise<boolean> {
  const state = readState();
  if (state === undefined) return false;
  const running = labSettings(state);
  if (
    settings !== undefined &&
    (running.encap !== settings.encap || running.underlay !== settings.underlay || running.mode !== settings.mode || labReflector(running) !== labReflector(settings))
  ) {
    return false;
  }
  const have = new Set(await labNamespaces());
  if (![fabricNetns, ...labNodes.map((n) => nodeNetns(n.name))].every((n) => have.has(n))) return false;
  for (const n of labNodes) {
    const pidfile = usesFrr(n, running)
      ? path.join(labDir, n.name, "frr", "frr-bgpd.pid")
      : usesKubelet(n, running)
        ? path.join(runtimeDir(labDir, n.name), "kubelet.pid")
        : path.join(labDir, n.name, "kvrfd.pid");
    if (!existsSync(pidfile)) return false;
    const { pid } = JSON.parse(readFileSync(pidfile, "utf8")) as { pid: number };
    if (!existsSync(`/proc/${pid}`)) return false;
  }
  try {
    await kubeClient(state).makeApiClient(k8s.CoreV1Api).readNode({ name: "rr" });
    return true;
  } catch {
    return false;
  }
}

/** Removes every daemon, namespace and file the lab made. Safe after a crash and when not up. */
export async function down(log: (s: string) => void = () => undefined): Promise<void> {
  for (const pod of await labNamespaces()) if (pod.startsWith(`${nsPrefix}pod-`)) await run("ip", ["netns", "del", pod]).catch(() => undefined);
  // Kubelet nodes first: kubelet, then everything in the node's cgroup (containerd, shims, pods).
  for (const w of workers) {
    if (!existsSync(runtimeDir(labDir, w.name))) continue;
    const problems = await stopNodeRuntime(labDir, w.name);
    for (const p of problems) log(`down: ${p}`);
  }
  restoreKubeletSysctls(labDir);
  const stopped = await stopByPidfiles(labDir);
  if (stopped.length > 0) log(`stopped ${stopped.join(", ")}`);
  // In the vm tier's guest: the control plane the host ran for this lab (vm-apiserver.ts).
  await releaseLabControlPlane(path.join(labDir, "control-plane"));
  for (const ns of await labNamespaces()) await run("ip", ["netns", "del", ns]).catch(() => undefined);
  // The FRR reflector's daemons are gone (their pidfiles above): now its pathspace.
  removeFrrPathspace(reflectorFrrName);
  rmSync(labDir, { recursive: true, force: true });
}

/** Do containerd and kubelet (instead of the lab) run this node's kvrf, as a DaemonSet pod? */
export function usesKubelet(node: Pick<LabNode, "role">, settings: LabSettings): boolean {
  return node.role === "worker" && settings.runtime === "kubelet";
}

/** Does FRR (instead of gobgpd and kvrfd) run this node's BGP under these settings? */
export function usesFrr(node: Pick<LabNode, "role">, settings: LabSettings): boolean {
  return node.role === "route-reflector" && labReflector(settings) === "frr";
}

/** Brings the lab up with `settings`; a no-op when it already is, with them. */
export async function up(log: (s: string) => void = () => undefined, settings: LabSettings = srv6Lab): Promise<LabState> {
  if (await isUp(settings)) {
    log("lab is already up");
    return readState() as LabState;
  }
  await down(log);
  mkdirSync(labDir, { recursive: true });
  const t0 = Date.now();
  try {
    // Control plane in the root namespace; namespaces reach it through a relay (no root addresses).
    const kubelets = settings.runtime === "kubelet";
    // In the vm tier's guest the host runs it, natively (test/harness/vm-apiserver.ts); a kubelet
    // lab starts its own (Node authorizer, NodeRestriction, its PKI for the kubelets' certificates).
    const cpDir = path.join(labDir, "control-plane");
    const own = process.env[labControlPlanesVar] === "host" && !kubelets ? undefined : await startControlPlane({ dir: cpDir, detached: true, kubelets });
    const cp = own ?? (await labControlPlaneFromHost(cpDir));
    log(`kube-apiserver ${cp.url} (${Date.now() - t0} ms)`);
    const { socket: apiSocket } = await startApiRelay(cp.url, labDir, true);
    let images: string[] = [];
    const pki = own?.pki;
    if (kubelets) {
      if (pki === undefined) throw new Error("a kubelet lab needs its own control plane");
      saveKubeletSysctls(labDir);
      await startControllers({ dir: cpDir, kubeconfig: cp.kubeconfig, pki, log });
      images = await imageArchives(path.join(labDir, "images"), log);
    }

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    await applyObjects(kc, settings);

    // Underlay: a bridge in the fabric namespace, one veth per node.
    await run("ip", ["netns", "add", fabricNetns]);
    await ipn(fabricNetns, "link", "add", "br0", "type", "bridge");
    await ipn(fabricNetns, "link", "set", "br0", "up");
    for (const node of labNodes) await buildNode(node, apiSocket, cp.kubeconfig, settings);
    if (kubelets && pki !== undefined) {
      for (const w of workers) {
        await startNodeRuntime({
          labDir,
          node: w,
          nodeIp: underlayAddress(w, settings),
          pki,
          adminKubeconfig: cp.kubeconfig,
          images,
          labels: { "kvrf.dev/role": w.role },
          log,
        });
      }
      await deployKvrf({ kubeconfig: cp.kubeconfig, nodes: workers.map((w) => w.name), log });
    }

    const state: LabState = { apiserverUrl: cp.url, kubeconfig: cp.kubeconfig, startedAt: new Date().toISOString(), settings };
    writeFileSync(stateFile, JSON.stringify(state, null, 2));
    await waitSessions(log, settings);
    log(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return state;
  } catch (err) {
    if (process.env["KVRF_LAB_KEEP_FAILED"] === "1") {
      log(`lab up failed: ${(err as Error).message}; left as it is for inspection (KVRF_LAB_KEEP_FAILED=1): scripts/lab down removes it`);
      throw err;
    }
    log(`lab up failed: ${(err as Error).message}; removing what was made`);
    await down(log);
    throw err;
  }
}

async function applyObjects(kc: k8s.KubeConfig, settings: LabSettings): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const crdDir = path.join(repoRoot, "manifests/crds");
  const names: string[] = [];
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
    const crd = k8s.loadYaml<k8s.KubernetesObject>(readFileSync(path.join(crdDir, file), "utf8"));
    await objects.patch(crd, undefined, undefined, "kvrf-lab", true, k8s.PatchStrategy.ServerSideApply);
    names.push(crd.metadata?.name ?? "");
  }
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const name of names) {
    await waitFor(`CRD ${name}`, async () => {
      const c = await ext.readCustomResourceDefinition({ name });
      return c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True") ?? false;
    }, { timeoutMs: 30_000 });
  }
  // `kubectl kvrf`'s access (manifests/rbac/debug.yaml): the kvrf-debug identity whose audience-bound
  // tokens each kvrfd accepts for its debug snapshot, and the operator roles.
  for (const file of ["manifests/base/namespace.yaml", "manifests/rbac/debug.yaml"]) {
    for (const obj of k8s.loadAllYaml(readFileSync(path.join(repoRoot, file), "utf8")) as k8s.KubernetesObject[]) {
      await objects.patch(obj, undefined, undefined, "kvrf-lab", true, k8s.PatchStrategy.ServerSideApply);
    }
  }
  for (const n of labNodes) {
    // No kubelets here: the lab registers the nodes, InternalIP being the underlay address.
    // With kubelets the workers' Nodes are made here too (labels and the operator's annotations
    // before the DaemonSet's installer reads them); each kubelet then registers over its own.
    await core.createNode({ body: { metadata: { name: n.name, labels: { "kvrf.dev/role": n.role, "kubernetes.io/hostname": n.name }, annotations: nodeAnnotations(n, settings) } } });
    // A merge patch: the node controllers (kubelet lab) may change the Node in between.
    await core.patchNodeStatus(
      { name: n.name, body: { status: { addresses: [{ type: "InternalIP", address: underlayAddress(n, settings) }] } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }
  // With FRR as the reflector no kvrfd reads the reflector's BGPInstance: FRR's configuration is
  // rendered from it instead (frr-reflector.ts), and the API holds only what kvrfd runs.
  const skip = labReflector(settings) === "frr" ? reflectorInstance(settings).instance.metadata.name : undefined;
  for (const inst of (bgpInstances(settings) as k8s.KubernetesObject[]).filter((i) => i.metadata?.name !== skip)) {
    await waitFor(`BGPInstance ${inst.metadata?.name}`, async () => {
      await objects.patch(inst, undefined, undefined, "kvrf-lab", true, k8s.PatchStrategy.ServerSideApply);
      return true;
    }, { timeoutMs: 30_000 });
  }
}

/**
 * `kubectl kvrf ARGS` as an operator on the fabric would run it: from the route reflector's
 * namespace, which reaches every node's kvrfd over the underlay, with its kubeconfig (admin).
 */
export function kubectlKvrfCommand(args: readonly string[]): [string, string[]] {
  const rr = labNodes.find((n) => n.role === "route-reflector");
  if (rr === undefined) throw new Error("the lab has no route reflector");
  return ["ip", ["netns", "exec", nodeNetns(rr.name), path.join(repoRoot, "dist/kubectl-kvrf"), "--kubeconfig", path.join(nodeDir(rr.name), "kubeconfig"), ...args]];
}

/** Runs `kubectl kvrf ARGS` in the lab (kubectlKvrfCommand); resolves with its exit code and output. */
export function kubectlKvrf(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = kubectlKvrfCommand(args);
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : undefined;
      if (code === undefined) return reject(new Error(`kubectl kvrf ${args.join(" ")}: ${err?.message ?? "?"}\n${stderr}`));
      resolve({ code, stdout, stderr });
    });
  });
}

export function nodeDir(node: string): string {
  return path.join(labDir, node);
}

async function buildNode(node: LabNode, apiSocket: string, adminKubeconfig: string, settings: LabSettings): Promise<void> {
  const ns = nodeNetns(node.name);
  const dir = nodeDir(node.name);
  mkdirSync(dir, { recursive: true });
  await run("ip", ["netns", "add", ns]);
  await ipn(ns, "link", "set", "lo", "up");
  const port = `p-${node.name}`;
  await run("ip", ["link", "add", "fab0", "netns", ns, "type", "veth", "peer", "name", port, "netns", fabricNetns]);
  await ipn(fabricNetns, "link", "set", port, "master", "br0", "up");
  // Both families on every node; the settings choose which one BGP, next hops and VTEPs use.
  await ipn(ns, "-6", "addr", "add", `${node.address}/64`, "dev", "fab0", "nodad");
  await ipn(ns, "addr", "add", `${node.address4}/24`, "dev", "fab0");
  // Nodes accept router advertisements though they forward (accept_ra=2, as many IPv6 Kubernetes
  // nodes are set up): when FRR is the reflector it sends them (to every peer it negotiates extended
  // next hops with) and each worker autoconfigures a second address on fab0, which kvrfd must not
  // take for its next hop (reconciler/kernel/underlay.ts chooseNextHop, docs/interop.md).
  await inNs(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.fab0.accept_ra=2", "net.ipv6.conf.all.seg6_enabled=1", "net.ipv6.conf.fab0.seg6_enabled=1");
  await ipn(ns, "link", "set", "fab0", "up");
  for (const other of workers) {
    if (other.name !== node.name && other.locator !== undefined) await ipn(ns, "-6", "route", "add", other.locator, "via", other.address);
  }

  // The API server on this namespace's 127.0.0.1:6443, through the relay.
  await startNsForwarder(ns, apiSocket, dir, true);
  const kubeconfig = nsKubeconfig(adminKubeconfig, path.join(dir, "kubeconfig"));

  if (usesKubelet(node, settings)) {
    // containerd + kubelet start after every namespace is up (kubelet.ts); kvrf comes as a DaemonSet pod.
    return;
  }
  if (usesFrr(node, settings)) {
    // FRR's bgpd + zebra instead of gobgpd + kvrfd, detached with pidfiles like every lab daemon.
    await startFrr({ name: reflectorFrrName, netns: ns, dir: path.join(dir, "frr"), config: await labReflectorConfig(settings), detached: true });
  } else {
    const gobgpd = await startGobgpd({ binary: tool("gobgpd4"), dir: path.join(dir, "gobgp"), netns: ns, logLevel: "warn", detached: true });
    await startKvrfd(node, gobgpd.socket);
  }

  if (node.role === "worker") {
    const bin = path.join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    symlinkSync(path.join(repoRoot, "dist/kvrf"), path.join(bin, "kvrf"));
    mkdirSync(path.join(dir, "net.d"), { recursive: true });
    for (const vpc of ["a1", "b1"]) {
      writeFileSync(path.join(dir, "net.d", `vpc-${vpc}.conflist`), JSON.stringify(conflist(node, vpc, kubeconfig, path.join(dir, "cni-state"), path.join(dir, "kvrf-cni.log"), settings), null, 2));
    }
  }
}

/** Starts (or restarts) kvrfd inside the node's namespace, as a DaemonSet pod would run. */
export async function startKvrfd(node: LabNode, gobgpSocket = path.join(nodeDir(node.name), "gobgp", "gobgpd.sock"), wrap: readonly string[] = []): Promise<void> {
  const dir = nodeDir(node.name);
  const kvrfd = path.join(repoRoot, "dist/kvrfd");
  // `wrap`: a command that runs kvrfd's command line (e.g. env with a fake clock, bench-faults.ts).
  const d = spawnDaemon(
    "kvrfd",
    wrap[0] ?? "ip",
    [
      ...(wrap.length > 0 ? [...wrap.slice(1), "ip"] : []),
      "netns", "exec", nodeNetns(node.name), process.execPath, kvrfd,
      "--node-name", node.name,
      "--kubeconfig", path.join(dir, "kubeconfig"),
      "--gobgp-socket", gobgpSocket,
      // dfw finds its underlay itself (the link toward its BGP peer, as the base DaemonSet does).
      ...(node.name === "dfw" ? [] : ["--underlay-interface", "fab0"]),
      // Every address: `kubectl kvrf` reads each node's debug snapshot over the underlay.
      "--health-address", "::",
      "--health-port", "9477",
      "--route-hold", "10",
    ],
    { dir, detached: true },
  );
  await waitFor(`kvrfd on ${node.name}`, async () => (await inNs(nodeNetns(node.name), "curl", "-sf", "http://127.0.0.1:9477/healthz").then(() => true, () => false)), {
    timeoutMs: 30_000,
    daemon: d,
    intervalMs: 200,
  });
}

export async function stopKvrfd(node: string, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
  const pidfile = path.join(nodeDir(node), "kvrfd.pid");
  const { pid } = JSON.parse(readFileSync(pidfile, "utf8")) as { pid: number };
  process.kill(pid, signal);
  await waitFor(`kvrfd on ${node} to exit`, async () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "), { timeoutMs: 30_000 });
  rmSync(pidfile, { force: true });
}

export async function speakerOf(node: string): Promise<Speaker> {
  return connectSpeaker(path.join(nodeDir(node), "gobgp", "gobgpd.sock"), { timeoutMs: 5000 });
}

/** Every worker's session with the route reflector established (seen from the workers: either reflector). */
export async function waitSessions(log: (s: string) => void, settings: LabSettings): Promise<void> {
  const t0 = Date.now();
  const rr = labNodes.find((n) => n.role === "route-reflector");
  if (rr === undefined) throw new Error("the lab has no route reflector");
  await waitFor("BGP sessions with the route reflector", async () => {
    if (settings.runtime === "kubelet" && !usesFrr(rr, settings)) {
      // The workers' gobgpd sockets are inside their pods: ask the reflector's gobgpd.
      const s = await speakerOf(rr.name);
      try {
        const peers = await s.listPeers();
        return workers.every((w) => peers.some((p) => p.address === underlayAddress(w, settings) && p.state === "established"));
      } finally {
        s.close();
      }
    }
    for (const w of workers) {
      const s = await speakerOf(w.name);
      try {
        const peers = await s.listPeers();
        if (!peers.some((p) => p.address === underlayAddress(rr, settings) && p.state === "established")) return false;
      } finally {
        s.close();
      }
    }
    return true;
  }, { timeoutMs: 90_000, intervalMs: 500 });
  log(`BGP sessions established (${Date.now() - t0} ms)`);
}

/** cnitool inside the pod's worker namespace, the way the runtime would attach it. */
async function cnitool(verb: "add" | "del", pod: DemoPod): Promise<string> {
  const dir = nodeDir(pod.node);
  const env = { ...process.env, NETCONFPATH: path.join(dir, "net.d"), CNI_PATH: `${path.join(dir, "bin")}:${cniBinDir()}` };
  return new Promise((resolve, reject) =>
    execFile("ip", ["netns", "exec", nodeNetns(pod.node), tool("cnitool"), verb, `vpc-${pod.vpc}`, `/var/run/netns/${podNetns(pod.name)}`], { env, encoding: "utf8" }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`cnitool ${verb} ${pod.name}: ${stderr.trim() || err.message}`)),
    ),
  );
}

export interface AttachedPod extends DemoPod {
  ipv4: string;
  ipv6: string;
  /** A pod kubelet runs: its network namespace (/proc/<pid>/ns/net of a container), not a named one. */
  netnsPath?: string;
}

export async function attachPod(pod: DemoPod): Promise<AttachedPod> {
  const ns = podNetns(pod.name);
  if (!(await labNamespaces()).includes(ns)) await run("ip", ["netns", "add", ns]);
  const out = JSON.parse(await cnitool("add", pod)) as { ips: { address: string }[] };
  const addr = (v6: boolean): string => (out.ips.find((i) => i.address.includes(":") === v6)?.address ?? "").split("/")[0] ?? "";
  return { ...pod, ipv4: addr(false), ipv6: addr(true) };
}

export async function detachPod(pod: DemoPod): Promise<void> {
  await cnitool("del", pod);
  await run("ip", ["netns", "del", podNetns(pod.name)]).catch(() => undefined);
}

export async function attachDemoPods(): Promise<AttachedPod[]> {
  const pods: AttachedPod[] = [];
  for (const p of demoPods) pods.push(await attachPod(p));
  return pods;
}

/** One ping from a pod; true when answered. */
export async function ping(from: AttachedPod, to: string): Promise<boolean> {
  const args = ["ping", to.includes(":") ? "-6" : "-4", "-c", "1", "-W", "1", to];
  const done = from.netnsPath !== undefined ? run("nsenter", [`--net=${from.netnsPath}`, "--", ...args]) : inNs(podNetns(from.name), ...(args as [string, ...string[]]));
  return done.then(
    () => true,
    () => false,
  );
}

export interface MatrixCell {
  from: string;
  to: string;
  family: 4 | 6;
  expected: boolean;
  /** The target's address also belongs to a pod of the source's own VPC (overlapping ranges). */
  shadowed: boolean;
  ok: boolean;
}

export async function matrix(pods: AttachedPod[]): Promise<MatrixCell[]> {
  const cells: Promise<MatrixCell>[] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      for (const family of [4, 6] as const) {
        const to = family === 4 ? b.ipv4 : b.ipv6;
        // VPCs may use the same addresses: a ping answers when the address exists in the source's
        // own VPC, whoever else has it. Which pod answered is checked by the lab tests' counters.
        const shadowed = a.vpc !== b.vpc && pods.some((p) => p.vpc === a.vpc && (family === 4 ? p.ipv4 : p.ipv6) === to);
        const expected = a.vpc === b.vpc || shadowed;
        cells.push(ping(a, to).then((ok) => ({ from: a.name, to: b.name, family, expected, shadowed, ok })));
      }
    }
  }
  return Promise.all(cells);
}

/** Polls the matrix until it is as expected; resolves with the time that took (ms) and the last matrix. */
export async function converge(pods: AttachedPod[], timeoutMs = 120_000): Promise<{ ms: number; cells: MatrixCell[] }> {
  const t0 = Date.now();
  let cells: MatrixCell[] = [];
  while (Date.now() - t0 < timeoutMs) {
    cells = await matrix(pods);
    if (cells.every((c) => c.ok === c.expected)) return { ms: Date.now() - t0, cells };
    await sleep(250);
  }
  return { ms: Number.NaN, cells };
}

export function renderMatrix(pods: AttachedPod[], cells: MatrixCell[]): string {
  const cell = (a: string, b: string, f: 4 | 6): string => {
    const c = cells.find((x) => x.from === a && x.to === b && x.family === f);
    if (c === undefined) return "  ";
    if (c.shadowed) return c.ok ? "=" : "✗";
    return c.ok === c.expected ? (c.ok ? "✓" : "·") : c.ok ? "!" : "✗";
  };
  const w = Math.max(...pods.map((p) => p.name.length));
  const lines = [`${"from \\ to".padEnd(w)}  ${pods.map((p) => p.name.padEnd(9)).join(" ")}`];
  for (const a of pods) {
    lines.push(`${a.name.padEnd(w)}  ${pods.map((b) => (a === b ? "-".padEnd(9) : `v4${cell(a.name, b.name, 4)} v6${cell(a.name, b.name, 6)}`.padEnd(9))).join(" ")}`);
  }
  lines.push(
    "",
    "✓ reachable, same VPC   · unreachable, other VPC   = other VPC's address that also exists in the own VPC (answered there)",
    "✗ expected but unreachable   ! isolation broken",
  );
  return lines.join("\n");
}

/**
 * kvrfd's routes (proto 241) in a node's table, "prefix SID" (SRv6) or "prefix next-hop" (VXLAN) per
 * line; a default route (a gateway's) as 0.0.0.0/0 or ::/0 (iproute2 prints "default" for both).
 */
export async function kernelRoutes(node: string, table: number): Promise<string[]> {
  const out = await ipn(nodeNetns(node), "-4", "-j", "route", "show", "table", String(table), "proto", "241").catch(() => "[]");
  const six = await ipn(nodeNetns(node), "-6", "-j", "route", "show", "table", String(table), "proto", "241").catch(() => "[]");
  const parse = (s: string, any: string): { dst: string; type?: string; encap?: string; segs?: string[]; gateway?: string; via?: { host?: string } }[] =>
    (s.trim() === "" ? [] : (JSON.parse(s) as { dst: string }[])).map((r) => (r.dst === "default" ? { ...r, dst: any } : r));
  // SRv6: the remote SID; VXLAN: the next hop on the VPC's VXLAN device (the remote VTEP's key).
  return [...parse(out, "0.0.0.0/0"), ...parse(six, "::/0")].filter((r) => r.type !== "throw").map((r) => `${r.dst} ${r.segs?.[0] ?? r.gateway ?? r.via?.host ?? "-"}`).sort();
}

/** The RoutesProgrammed condition of a node's BGPVRFInstance for a VPC (empty strings when absent). */
export async function routesProgrammed(node: string, vpc: string): Promise<{ status: string; message: string }> {
  const state = readState();
  if (state === undefined) throw new Error("the lab is not up");
  const o = (await kubeClient(state)
    .makeApiClient(k8s.CustomObjectsApi)
    .getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpvrfinstances", name: bgpVrfInstanceName(node, vpc) })) as BGPVRFInstance;
  const c = o.status?.conditions?.find((x) => x.type === "RoutesProgrammed");
  return { status: c?.status ?? "", message: c?.message ?? "" };
}

/**
 * Stops a lab daemon by its pidfile (SIGTERM, or SIGKILL for a crash), waits `downMs`, and starts
 * the very same command line again (detached, same log). For the failure scenarios.
 */
export async function restartDaemon(pidfile: string, signal: "SIGTERM" | "SIGKILL", downMs = 0, beforeStart?: () => void): Promise<void> {
  const stopped = await stopDaemon(pidfile, signal);
  if (downMs > 0) await sleep(downMs);
  beforeStart?.();
  startDaemon(stopped);
}

/** A lab daemon stopped by stopDaemon: what startDaemon starts again. */
export interface StoppedDaemon {
  pidfile: string;
  command: string[];
}

/** Sends `signal` to the daemon of `pidfile` and waits until it has exited. */
export async function stopDaemon(pidfile: string, signal: "SIGTERM" | "SIGKILL"): Promise<StoppedDaemon> {
  const { pid, cmdline, spawn } = JSON.parse(readFileSync(pidfile, "utf8")) as { pid: number; cmdline: string[]; spawn?: string[] };
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
  await waitFor(`pid ${pid} to exit`, async () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "), { timeoutMs: 30_000 });
  rmSync(pidfile, { force: true });
  return { pidfile, command: spawn ?? cmdline };
}

/** Starts a daemon stopDaemon stopped, as it was started, detached with its pidfile. */
export function startDaemon(d: StoppedDaemon): void {
  const [cmd, ...args] = d.command;
  spawnDaemon(path.basename(d.pidfile, ".pid"), cmd ?? "", args, { dir: path.dirname(d.pidfile), detached: true });
}

export const pidfiles = {
  gobgpd: (node: string): string => path.join(nodeDir(node), "gobgp", "gobgpd.pid"),
  kvrfd: (node: string): string => path.join(nodeDir(node), "kvrfd.pid"),
  apiserver: (): string => path.join(labDir, "control-plane", "kube-apiserver.pid"),
  etcd: (): string => path.join(labDir, "control-plane", "etcd.pid"),
};

/**
 * What a rolling update of the DaemonSet does to a node's kvrf pod (manifests/base/daemonset.yaml):
 * both preStop hooks at once — kvrfd's `prestop` and gobgpd's `gobgp-drain` (short drain) — then
 * SIGTERM to both containers and the new pod's kvrfd and gobgpd. Resolves with what the hooks said.
 */
export async function replaceKvrfPod(node: string): Promise<{ drain: string; prestop: string }> {
  const socket = path.join(nodeDir(node), "gobgp", "gobgpd.sock");
  const exec = promisify(execFile);
  const [hook, drain] = await Promise.all([
    exec("ip", ["netns", "exec", nodeNetns(node), process.execPath, path.join(repoRoot, "dist/kvrfd"), "prestop", "--gobgp-socket", socket]),
    exec("ip", ["netns", "exec", nodeNetns(node), path.join(repoRoot, "images/gobgpd/gobgp-drain")], {
      env: { ...process.env, GOBGP: tool("gobgp4"), GOBGPD_SOCKET: socket, KVRF_DRAIN_SECONDS: "10" },
    }),
  ]);
  // The old pod is gone before the new one starts (the DaemonSet's rolling update, maxSurge 0): both
  // containers stop, then the new pod's start. (Starting the new kvrfd before the old gobgpd had its
  // SIGTERM let the new kvrfd reach the stopping gobgpd and start BGP on it again, prestop having
  // stopped it; its exit then sent the peers a Hard Reset: a state no pod replacement produces.)
  const [kvrfd, gobgpd] = await Promise.all([stopDaemon(pidfiles.kvrfd(node), "SIGTERM"), stopDaemon(pidfiles.gobgpd(node), "SIGTERM")]);
  await sleep(1000);
  rmSync(socket, { force: true });
  startDaemon(gobgpd);
  startDaemon(kvrfd);
  const last = (out: string): string => out.trim().split("\n").at(-1) ?? "";
  let prestop = last(hook.stderr);
  try {
    prestop = (JSON.parse(prestop) as { msg?: string }).msg ?? prestop;
  } catch {
    // not a log line: keep the text
  }
  return { drain: last(drain.stdout).replace(/^gobgp-drain: /, ""), prestop: prestop.replace(/^prestop: /, "") };
}

/**
 * One CNI call as a runtime makes it, without throwing: ok, or the CNI error code and message the
 * plugin answered (code 11 "try again later" while the API server is away).
 */
export async function tryCni(verb: "add" | "del", pod: DemoPod): Promise<{ ok: true } | { ok: false; code?: number; message: string }> {
  const ns = podNetns(pod.name);
  if (verb === "add" && !(await labNamespaces()).includes(ns)) await run("ip", ["netns", "add", ns]);
  try {
    await cnitool(verb, pod);
    if (verb === "del") await run("ip", ["netns", "del", ns]).catch(() => undefined);
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = /"code":\s*(\d+)/.exec(message);
    return { ok: false, ...(code !== null ? { code: Number(code[1]) } : {}), message };
  }
}

/** gobgpd crashes (SIGKILL: its state is lost, its socket file stays) and comes back. */
export async function crashGobgpd(node: string, downMs = 0): Promise<void> {
  const socket = path.join(nodeDir(node), "gobgp", "gobgpd.sock");
  await restartDaemon(pidfiles.gobgpd(node), "SIGKILL", downMs, () => rmSync(socket, { force: true }));
  await waitFor(`gobgpd on ${node}`, async () => {
    const s = await speakerOf(node).catch(() => undefined);
    if (s === undefined) return false;
    try {
      await s.getGlobal();
      return true;
    } catch {
      return false;
    } finally {
      s.close();
    }
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

/** Counts of ICMP echo requests a pod has received (to tell which pod answered a ping). */
export function echoRequests(pod: string): Promise<{ v4: number; v6: number }> {
  return echoRequestsIn(podNetns(pod));
}

/** Counts of ICMP echo requests a network namespace has received (a pod's, a host's behind a gateway). */
export async function echoRequestsIn(netns: string): Promise<{ v4: number; v6: number }> {
  const out = await inNs(netns, "cat", "/proc/net/snmp", "/proc/net/snmp6");
  const v4 = /^Icmp: (.*)$/gm;
  const lines = [...out.matchAll(v4)].map((m) => m[1]?.split(" ") ?? []);
  const idx = lines[0]?.indexOf("InEchos") ?? -1;
  const v6 = /^Icmp6InEchos\s+(\d+)/m.exec(out);
  return { v4: Number(lines[1]?.[idx] ?? 0), v6: Number(v6?.[1] ?? 0) };
}

/** IPv4 packets a pod's kernel has received (Ip InReceives): whatever reached it, for it or not. */
export async function ipv4Receives(pod: string): Promise<number> {
  const out = await inNs(podNetns(pod), "cat", "/proc/net/snmp");
  const lines = [...out.matchAll(/^Ip: (.*)$/gm)].map((m) => m[1]?.split(" ") ?? []);
  const idx = lines[0]?.indexOf("InReceives") ?? -1;
  return Number(lines[1]?.[idx] ?? 0);
}
