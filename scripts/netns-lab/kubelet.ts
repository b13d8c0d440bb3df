// Lab nodes with a real container runtime: containerd + kubelet per worker, inside the worker's
// network namespace and a mount namespace of its own, joined to the lab's API server with a real
// kube-scheduler and kube-controller-manager. kvrf then runs as users deploy it: the DaemonSet of
// manifests/ (overlay manifests/overlays/lab-kubelet), its installer putting `kvrf`, a node-bound
// token and the conflist onto the node, and kubelet calling the plugin through containerd.
//
// Why a mount namespace per node: the DaemonSet's hostPaths (/opt/cni/bin, /etc/cni/net.d) and
// kubelet's, containerd's and the plugin's state (/var/lib/kubelet, /run/containerd, /run/kvrf,
// /var/lib/cni, /run/netns, …) are fixed paths on a real node; several nodes on one machine must
// each see their own. A holder process (`sleep`) keeps the node's mount namespace; containerd and
// kubelet enter it and the node's network namespace with nsenter. /sys is the node's (a sysfs
// mounted inside its network namespace) with the host's cgroup hierarchies bound back under it.
//
// cgroups: this machine has cgroup v1 (hybrid). kubelet 1.35 refuses v1 unless `failCgroupV1:
// false`; each kubelet gets its own cgroupRoot (/<netns name>) and cgroupfs driver, and the node's
// holder (so containerd, its shims and every container) lives under it in the pids hierarchy, so
// stopping a node kills exactly what it started, by PID, and removes its cgroups.
//
// Host state kubelet changes: vm.overcommit_memory, kernel.panic, kernel.panic_on_oops (kubelet sets
// them unless protectKernelDefaults); saved before the first kubelet and restored by `down`.
import { execFile } from "node:child_process";
import { copyFileSync, type Dirent, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { makeClientCert, type Pki } from "../../test/harness/pki.js";
import { cniBinDir, repoRoot, tool } from "../../test/harness/tools.js";
import { spawnDaemon, waitFor } from "../lib/process.js";
import { nodeNetns, type LabNode } from "./topology.js";
import type { AttachedPod } from "./lab.js";

/** Paths a real node has at fixed places: each lab node gets its own copy, bound there in its mount namespace. */
export const nodePaths = [
  "/opt/cni/bin",
  "/etc/cni/net.d",
  "/var/lib/cni",
  "/var/lib/kubelet",
  "/var/lib/containerd",
  "/var/log/pods",
  "/var/log/containers",
  "/run/containerd",
  "/run/kvrf",
  "/run/netns",
] as const;

/** The sandbox (pause) image containerd uses; built by scripts/images.ts and imported. */
export const sandboxImage = "registry.k8s.io/pause:3.10.1";

/** Host sysctls kubelet sets at start (unless protectKernelDefaults); `down` puts them back. */
const kubeletSysctls = ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"];

function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 300_000, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`));
    });
  });
}

/** The cgroup v1 hierarchies (controllers' mount points) on this machine. */
function cgroupHierarchies(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" "))
    .filter((f) => f.includes("cgroup") && f[f.indexOf("-") + 1] === "cgroup")
    .map((f) => f[4] ?? "")
    .filter((p) => p.startsWith("/sys/fs/cgroup/"));
}

export interface NodeRuntime {
  node: string;
  dir: string;
  /** containerd's CRI socket (on the host's filesystem, reachable from the root namespaces too). */
  containerdSocket: string;
  /** Runs a command inside the node (its network and mount namespaces). */
  exec(cmd: string, args: readonly string[], timeoutMs?: number): Promise<string>;
}

export function runtimeDir(labDir: string, node: string): string {
  return path.join(labDir, node, "runtime");
}

function holderPid(dir: string): number {
  return (JSON.parse(readFileSync(path.join(dir, "node-ns.pid"), "utf8")) as { pid: number }).pid;
}

/** nsenter into the node (holder's mount namespace + the node's network namespace). */
function enterArgs(dir: string): string[] {
  return ["--target", String(holderPid(dir)), "--mount", "--net", "--"];
}

/**
 * nsenter into the node and into its cgroup (pids hierarchy), then exec `cmd`: for the node's
 * daemons, so that stopping the node finds them (and their children) by cgroup.
 */
function daemonArgs(dir: string, node: string, cmd: string, args: readonly string[]): string[] {
  const procs = `/sys/fs/cgroup/pids/${cgroupName(node)}/runtime/cgroup.procs`;
  return [...enterArgs(dir), "bash", "-c", `echo $$ > ${procs} && exec "$@"`, `kvrf-${node}`, cmd, ...args];
}

export function nodeRuntime(labDir: string, node: string): NodeRuntime {
  const dir = runtimeDir(labDir, node);
  return {
    node,
    dir,
    containerdSocket: path.join(dir, "containerd.sock"),
    exec: (cmd, args, timeoutMs) => run("nsenter", [...enterArgs(dir), cmd, ...args], timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

/** Saves the host sysctls kubelet will change (once per lab). */
export function saveKubeletSysctls(labDir: string): void {
  const file = path.join(labDir, "host-sysctls.json");
  if (existsSync(file)) return;
  const saved = Object.fromEntries(kubeletSysctls.map((k) => [k, readFileSync(`/proc/sys/${k}`, "utf8").trim()]));
  writeFileSync(file, JSON.stringify(saved));
}

export function restoreKubeletSysctls(labDir: string): void {
  const file = path.join(labDir, "host-sysctls.json");
  if (!existsSync(file)) return;
  const saved = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  for (const [k, v] of Object.entries(saved)) {
    try {
      writeFileSync(`/proc/sys/${k}`, v);
    } catch {
      // best effort: the value stays as kubelet set it
    }
  }
  rmSync(file, { force: true });
}

/** Can this machine's root lower a process's OOM score (CAP_SYS_RESOURCE)? */
async function canLowerOomScore(): Promise<boolean> {
  return run("sh", ["-c", "echo -1 > /proc/self/oom_score_adj"]).then(() => true, () => false);
}

/**
 * The runc the nodes' containerd runs. kubelet asks for negative OOM scores (-997 for node-critical
 * pods such as kvrf's DaemonSet), which only a process holding CAP_SYS_RESOURCE may set; some
 * sandboxes withhold it from root (this one does), and runc then fails every such container with
 * "failed to update /proc/self/oom_score_adj: Permission denied". There, and only there, the lab
 * puts a wrapper in front of runc that raises negative scores in the bundle's config to 0.
 */
async function runcFor(labDir: string, log: (s: string) => void): Promise<string> {
  if (await canLowerOomScore()) return tool("runc");
  const wrapper = path.join(labDir, "runc-oom-clamp");
  if (!existsSync(wrapper)) {
    writeFileSync(
      wrapper,
      [
        "#!/bin/sh",
        "# Written by scripts/netns-lab/kubelet.ts: this machine withholds CAP_SYS_RESOURCE from root, so",
        "# no process may lower its OOM score; raise the negative scores kubelet asks for to 0, then run runc.",
        'bundle=""; prev=""',
        'for a in "$@"; do [ "$prev" = "--bundle" ] && bundle=$a; prev=$a; done',
        'if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then sed -i -E \'s/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/\' "$bundle/config.json"; fi',
        `exec ${tool("runc")} "$@"`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    log("this machine withholds CAP_SYS_RESOURCE (no negative OOM scores): runc runs behind runc-oom-clamp, which raises them to 0");
  }
  return wrapper;
}

export interface StartNodeOptions {
  labDir: string;
  node: LabNode;
  /** The node's address in the lab's underlay family: kubelet's --node-ip. */
  nodeIp: string;
  pki: Pki;
  /** Admin kubeconfig (the root namespace's server); the node's is derived from it. */
  adminKubeconfig: string;
  /** OCI archives to import into the node's containerd (scripts/images.ts). */
  images: readonly string[];
  labels: Record<string, string>;
  log: (s: string) => void;
}

const cgroupName = (node: string): string => nodeNetns(node);

/**
 * Starts the node's holder, containerd (images imported) and kubelet; resolves when kubelet has
 * registered the node (its Ready condition may still be False: the network plugin is not there yet).
 */
export async function startNodeRuntime(o: StartNodeOptions): Promise<NodeRuntime> {
  const name = o.node.name;
  const dir = runtimeDir(o.labDir, name);
  const rootfs = path.join(dir, "root");
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  // What a boot needs again (rebootNode).
  const { log: _log, ...saved } = o;
  writeFileSync(path.join(dir, "start.json"), JSON.stringify(saved));

  // Mount points that do not exist on the host are made, recorded, and removed by `down`.
  const created: string[] = [];
  for (const p of nodePaths) {
    if (!existsSync(p)) {
      // Record the topmost directory that did not exist (removed whole by `down` when empty).
      let top: string = p;
      while (!existsSync(path.dirname(top))) top = path.dirname(top);
      created.push(top);
      mkdirSync(p, { recursive: true });
    }
    mkdirSync(path.join(rootfs, p), { recursive: true });
  }
  writeFileSync(path.join(dir, "created-host-dirs.json"), JSON.stringify(created));

  // The node's standard plugins (a node's OS packages them, e.g. kubernetes-cni): loopback for
  // the runtime, host-local for kvrf's IPAM. kvrf itself comes from the DaemonSet's installer.
  for (const p of ["loopback", "host-local"]) copyFileSync(path.join(cniBinDir(), p), path.join(rootfs, "opt/cni/bin", p));

  // cgroups: /<netns name> in every v1 hierarchy; the holder (and so containerd and its shims) in
  // <root>/runtime of the pids hierarchy.
  for (const h of cgroupHierarchies()) mkdirSync(path.join(h, cgroupName(name), "runtime"), { recursive: true });

  const binds = nodePaths.map((p) => `mount --bind ${JSON.stringify(path.join(rootfs, p))} ${p}`).join("\n");
  const holderScript = [
    "set -eu",
    `echo $$ > /sys/fs/cgroup/pids/${cgroupName(name)}/runtime/cgroup.procs`,
    binds,
    // /sys of the node's network namespace, with the host's cgroup hierarchies bound back in.
    "mkdir -p /run/kvrf-cg-keep && mount --rbind /sys/fs/cgroup /run/kvrf-cg-keep",
    "mount -t sysfs sysfs /sys",
    "mount --rbind /run/kvrf-cg-keep /sys/fs/cgroup",
    "umount -l /run/kvrf-cg-keep",
    `touch ${JSON.stringify(path.join(dir, "node-ns.ready"))}`,
    `exec -a kvrf-node-${name} sleep infinity`,
  ].join("\n");
  rmSync(path.join(dir, "node-ns.ready"), { force: true });
  const holder = spawnDaemon("node-ns", "nsenter", [`--net=/run/netns/${nodeNetns(name)}`, "unshare", "--mount", "--propagation", "private", "bash", "-c", holderScript], {
    dir,
    detached: true,
    execs: [`kvrf-node-${name}`, "infinity"],
  });
  await waitFor(`node ${name}'s namespaces`, async () => existsSync(path.join(dir, "node-ns.ready")), { timeoutMs: 10_000, daemon: holder });
  // Under the holder's mount namespace, /run/kvrf-cg-keep was a directory of the host's /run.
  rmSync("/run/kvrf-cg-keep", { recursive: true, force: true });

  // containerd (CRI): its state at the fixed paths bound above; sockets under the node's dir.
  const socket = path.join(dir, "containerd.sock");
  const runc = await runcFor(o.labDir, o.log);
  const config = [
    "version = 3",
    `root = "/var/lib/containerd"`,
    `state = "/run/containerd"`,
    "[grpc]",
    `  address = ${JSON.stringify(socket)}`,
    "[ttrpc]",
    `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
    "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
    `  sandbox = ${JSON.stringify(sandboxImage)}`,
    "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
    `  runtime_type = "io.containerd.runc.v2"`,
    "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
    `  BinaryName = ${JSON.stringify(runc)}`,
    "  SystemdCgroup = false",
    "[plugins.'io.containerd.cri.v1.runtime'.cni]",
    `  bin_dirs = ["/opt/cni/bin"]`,
    `  conf_dir = "/etc/cni/net.d"`,
    "[plugins.'io.containerd.grpc.v1.cri']",
    `  stream_server_address = "127.0.0.1"`,
    "",
  ].join("\n");
  writeFileSync(path.join(dir, "containerd.toml"), config);
  const containerd = tool("containerd");
  const env = { ...process.env, PATH: `${path.dirname(containerd)}:${path.dirname(tool("runc"))}:${process.env["PATH"] ?? ""}` };
  const ctd = spawnDaemon("containerd", "nsenter", daemonArgs(dir, name, containerd, ["--config", path.join(dir, "containerd.toml")]), {
    dir,
    detached: true,
    env,
    execs: [containerd, "--config", path.join(dir, "containerd.toml")],
  });
  await waitFor(`containerd on ${name}`, async () => existsSync(socket) && (await run(tool("ctr"), ["--address", socket, "version"]).then(() => true, () => false)), {
    timeoutMs: 60_000,
    daemon: ctd,
    intervalMs: 250,
  });
  for (const image of o.images) {
    await run(tool("ctr"), ["--address", socket, "-n", "k8s.io", "images", "import", "--platform", "linux/amd64", image], { timeoutMs: 180_000 });
  }
  o.log(`${name}: containerd up, ${o.images.length} images imported (${Date.now() - t0} ms)`);

  // kubelet: node credentials (CN system:node:<name>, group system:nodes: the Node authorizer and
  // NodeRestriction admission bind it to its own Node), the API server through the namespace's forwarder.
  const creds = makeClientCert(o.pki, `kubelet-${name}`, `system:node:${name}`, ["system:nodes"]);
  const kubeconfig = path.join(dir, "kubelet.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "lab", cluster: { server: "https://127.0.0.1:6443", "certificate-authority": o.pki.caCert } }],
      users: [{ name: `system:node:${name}`, user: { "client-certificate": creds.cert, "client-key": creds.key } }],
      contexts: [{ name: "lab", context: { cluster: "lab", user: `system:node:${name}` } }],
      "current-context": "lab",
    }),
  );
  const kubeletConfig = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // cgroup v1 on this machine: kubelet 1.35 refuses it unless told (the lab's nodes are throwaway).
    failCgroupV1: false,
    failSwapOn: false,
    cgroupDriver: "cgroupfs",
    cgroupRoot: `/${cgroupName(name)}`,
    containerRuntimeEndpoint: `unix://${socket}`,
    address: o.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: o.pki.caCert } },
    authorization: { mode: "AlwaysAllow" },
    clusterDomain: "cluster.local",
    // Several kubelets share one disk and one memory: no evictions and no image GC in the lab
    // (the images are imported, never pulled).
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    localStorageCapacityIsolation: false,
    nodeStatusUpdateFrequency: "4s",
    nodeStatusReportFrequency: "10s",
    syncFrequency: "10s",
    serializeImagePulls: false,
    maxPods: 110,
  };
  writeFileSync(path.join(dir, "kubelet.yaml"), JSON.stringify(kubeletConfig, null, 2));
  const kubelet = tool("kubelet");
  const labels = Object.entries(o.labels).map(([k, v]) => `${k}=${v}`).join(",");
  const kubeletArgs = [
    "--config", path.join(dir, "kubelet.yaml"),
    "--kubeconfig", kubeconfig,
    "--hostname-override", name,
    "--node-ip", o.nodeIp,
    ...(labels !== "" ? ["--node-labels", labels] : []),
    "--v=1",
  ];
  const kl = spawnDaemon("kubelet", "nsenter", daemonArgs(dir, name, kubelet, kubeletArgs), { dir, detached: true, env, execs: [kubelet, ...kubeletArgs] });
  await waitFor(`kubelet on ${name} healthy`, async () => (await run("nsenter", [...enterArgs(dir), "curl", "-sf", "http://127.0.0.1:10248/healthz"]).then(() => true, () => false)), {
    timeoutMs: 90_000,
    daemon: kl,
    intervalMs: 500,
  });
  o.log(`${name}: kubelet up (${Date.now() - t0} ms)`);
  return nodeRuntime(o.labDir, name);
}

/** Paths of a node a reboot empties: /run (a tmpfs) and the runtime's state, so no sandbox is known after it. */
export const rebootClears = ["/run/containerd", "/run/kvrf", "/run/netns", "/var/lib/containerd", "/var/lib/kubelet"] as const;

/**
 * A node reboot, as far as a network namespace can have one: everything the node runs dies at
 * once and nothing is told (no DEL: kubelet, containerd, the shims and the containers are killed;
 * the pods' network namespaces, their veths and routes go with their last reference), /run is
 * emptied (containerd's state, the pods' netns pins, kvrf's state directory — tmpfs on a real
 * node) and so is the runtime's state (/var/lib/containerd, /var/lib/kubelet: the runtime knows no
 * sandbox afterwards, as on a node whose runtime state is ephemeral), then containerd (images
 * imported again) and kubelet start as at boot. What stays is what a disk keeps — /var/lib/cni
 * (host-local's leases), /etc/cni/net.d, /opt/cni/bin — and what a real reboot would clear but a
 * network namespace keeps: the rules, routes and devices in the node's namespace. Cleaning what is
 * kvrf's of those is the plugin's sweep after a boot (cni/boot-sweep.ts). Resolves when kubelet
 * is up again; the caller waits for Ready and for the pods.
 */
export async function rebootNode(labDir: string, node: string, log: (s: string) => void): Promise<void> {
  const dir = runtimeDir(labDir, node);
  const saved = JSON.parse(readFileSync(path.join(dir, "start.json"), "utf8")) as Omit<StartNodeOptions, "log">;
  const t0 = Date.now();
  const problems = await stopNodeRuntime(labDir, node);
  if (problems.length > 0) throw new Error(`reboot of ${node}: ${problems.join("; ")}`);
  const rootfs = path.join(dir, "root");
  // Nothing may still be mounted below the node's directories (the mount namespace died with its holder).
  const mounted = readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(`${rootfs}/`));
  if (mounted.length > 0) throw new Error(`reboot of ${node}: still mounted: ${mounted.join(", ")}`);
  for (const p of rebootClears) {
    const d = path.join(rootfs, p);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
  }
  // The pods' network namespaces are freed once nothing refers to them: their host veths go with them.
  await waitFor(`${node}'s pod veths gone`, async () => !/ kv[a-z2-7]{13}@/.test(await run("ip", ["-n", nodeNetns(node), "-o", "link", "show", "type", "veth"])), { timeoutMs: 30_000, intervalMs: 250 });
  log(`${node}: everything stopped, /run and the runtime's state cleared (${Date.now() - t0} ms); booting`);
  await startNodeRuntime({ ...saved, log });
}

/** Restarts the node's kubelet with the same command line (kubelet restart). */
export async function restartKubelet(labDir: string, node: string, downMs = 0): Promise<void> {
  const dir = runtimeDir(labDir, node);
  const pidfile = path.join(dir, "kubelet.pid");
  const { pid, spawn } = JSON.parse(readFileSync(pidfile, "utf8")) as { pid: number; spawn: string[] };
  process.kill(pid, "SIGTERM");
  await waitFor(`kubelet on ${node} to exit`, async () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z "), { timeoutMs: 30_000 });
  rmSync(pidfile, { force: true });
  if (downMs > 0) await sleep(downMs);
  const [cmd, ...args] = spawn;
  const cmdline = args.slice(args.indexOf(tool("kubelet")));
  spawnDaemon("kubelet", cmd ?? "nsenter", args, { dir, detached: true, execs: cmdline });
}

/**
 * Every process in a cgroup and below. The tree changes while it is read (runc and containerd remove
 * a container's cgroup as it exits, which the kills here cause): what vanished is skipped.
 */
function pidsIn(cgroup: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string): void => {
    for (const l of readIfThere(path.join(dir, "cgroup.procs")).split("\n")) if (l.trim() !== "") pids.add(Number(l));
    for (const e of readdirIfThere(dir)) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(cgroup);
  return [...pids];
}

/** A directory's entries; none when it is gone (ENOENT). */
function readdirIfThere(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** A file's text; empty when it is gone (ENOENT, or ENODEV for a cgroup file whose group went). */
function readIfThere(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENODEV") return "";
    throw err;
  }
}

function removeCgroupTree(dir: string): void {
  for (const e of readdirIfThere(dir)) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // gone, or busy (a process still inside): reported by the caller's check
  }
}

/**
 * Stops everything a node runs, by PID: kubelet, then every process in the node's cgroup (the
 * holder, containerd, shims, containers), then removes its cgroups and the host directories that
 * were made for its mount points. Safe when the node never started or is half up.
 */
export async function stopNodeRuntime(labDir: string, node: string): Promise<string[]> {
  const dir = runtimeDir(labDir, node);
  const problems: string[] = [];
  const kubeletPid = path.join(dir, "kubelet.pid");
  if (existsSync(kubeletPid)) {
    try {
      const { pid, cmdline } = JSON.parse(readFileSync(kubeletPid, "utf8")) as { pid: number; cmdline: string[] };
      const live = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== "");
      if (JSON.stringify(live) === JSON.stringify(cmdline)) process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
    rmSync(kubeletPid, { force: true });
  }
  const pidsCgroup = path.join("/sys/fs/cgroup/pids", cgroupName(node));
  for (let i = 0; i < 100; i++) {
    const pids = pidsIn(pidsCgroup);
    if (pids.length === 0) break;
    for (const p of pids) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await sleep(100);
  }
  const left = pidsIn(pidsCgroup);
  if (left.length > 0) problems.push(`${node}: processes left in ${pidsCgroup}: ${left.join(", ")}`);
  for (const h of cgroupHierarchies()) {
    removeCgroupTree(path.join(h, cgroupName(node)));
    if (existsSync(path.join(h, cgroupName(node)))) problems.push(`${node}: cgroup ${path.join(h, cgroupName(node))} left`);
  }
  for (const f of ["containerd.pid", "node-ns.pid"]) rmSync(path.join(dir, f), { force: true });
  const createdFile = path.join(dir, "created-host-dirs.json");
  if (existsSync(createdFile)) {
    for (const d of JSON.parse(readFileSync(createdFile, "utf8")) as string[]) {
      // Only directories the lab made, and only while they hold nothing but empty directories.
      try {
        if (statSync(d).isDirectory()) removeEmptyTree(d);
      } catch {
        // gone
      }
    }
    rmSync(createdFile, { force: true });
  }
  return problems;
}

function removeEmptyTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // not empty: leave it
  }
}

/**
 * kube-controller-manager and kube-scheduler in the root namespace (beside the API server),
 * detached with pidfiles in `dir`: Deployments, ReplicaSets, DaemonSets, the service-account
 * token and root-CA publishers (the DaemonSet's projected kube-root-ca.crt), node lifecycle.
 */
export async function startControllers(o: { dir: string; kubeconfig: string; pki: Pki; log: (s: string) => void }): Promise<void> {
  const t0 = Date.now();
  const kcmArgs = [
    "--kubeconfig", o.kubeconfig,
    "--leader-elect=false",
    "--secure-port=0",
    `--service-account-private-key-file=${o.pki.saKey}`,
    `--root-ca-file=${o.pki.caCert}`,
    "--use-service-account-credentials=false",
    "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
    "--concurrent-deployment-syncs=10",
    "--v=1",
  ];
  const kcm = spawnDaemon("kube-controller-manager", tool("kube-controller-manager"), kcmArgs, { dir: o.dir, detached: true });
  const schedArgs = ["--kubeconfig", o.kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=1"];
  const sched = spawnDaemon("kube-scheduler", tool("kube-scheduler"), schedArgs, { dir: o.dir, detached: true });
  // Neither serves health without a secure port: up = still running after their start-up checks.
  await sleep(2000);
  for (const d of [kcm, sched]) if (d.hasExited()) throw new Error(`${d.name} exited at start: ${readFileSync(d.logFile, "utf8").split("\n").slice(-15).join("\n")}`);
  o.log(`kube-controller-manager and kube-scheduler started (${Date.now() - t0} ms)`);
}

/**
 * The images the nodes import, built without Docker by scripts/images.ts into `dir` (OCI
 * archives; the Dockerfiles in images/ stay the source of truth, scripts/images.test.ts keeps the
 * two in step). Resolves with the archives' paths.
 */
export async function imageArchives(dir: string, log: (s: string) => void): Promise<string[]> {
  const t0 = Date.now();
  await run(process.execPath, ["--import", "tsx", path.join(repoRoot, "scripts/images.ts"), "build", "--out", dir], { timeoutMs: 300_000 });
  const manifest = JSON.parse(readFileSync(path.join(dir, "images.json"), "utf8")) as { images: { ref: string; archive: string }[] };
  log(`images built (${Date.now() - t0} ms): ${manifest.images.map((i) => i.ref).join(", ")}`);
  return manifest.images.map((i) => (path.isAbsolute(i.archive) ? i.archive : path.join(dir, i.archive)));
}

/** kubectl with the admin kubeconfig; resolves with stdout. */
export function kubectl(kubeconfig: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return run(tool("kubectl"), ["--kubeconfig", kubeconfig, ...args], { timeoutMs });
}

/**
 * Deploys kvrf as a user does: `kubectl apply --server-side -k manifests/overlays/lab-kubelet`,
 * then waits until the DaemonSet's pod on every node is ready (installer done, kvrfd ready).
 */
export async function deployKvrf(o: { kubeconfig: string; nodes: readonly string[]; log: (s: string) => void; timeoutMs?: number }): Promise<void> {
  const t0 = Date.now();
  await kubectl(o.kubeconfig, ["apply", "--server-side", "--field-manager=kvrf-lab", "-k", path.join(repoRoot, "manifests/overlays/lab-kubelet")]);
  await waitFor(
    "DaemonSet kvrf-system/kvrf-node ready on every node",
    async () => {
      const ds = JSON.parse(await kubectl(o.kubeconfig, ["-n", "kvrf-system", "get", "daemonset", "kvrf-node", "-o", "json"])) as {
        metadata: { generation?: number };
        status?: { numberReady?: number; desiredNumberScheduled?: number; updatedNumberScheduled?: number; observedGeneration?: number };
      };
      const st = ds.status ?? {};
      return st.observedGeneration === ds.metadata.generation && st.desiredNumberScheduled === o.nodes.length && st.numberReady === o.nodes.length && st.updatedNumberScheduled === o.nodes.length;
    },
    { timeoutMs: o.timeoutMs ?? Number(process.env["KVRF_LAB_DEPLOY_TIMEOUT_MS"] ?? 240_000), intervalMs: 1000 },
  ).catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}\n${await podDiagnostics(o.kubeconfig, "kvrf-system")}`, { cause: err });
  });
  o.log(`kvrf deployed from manifests/overlays/lab-kubelet: DaemonSet ready on ${o.nodes.join(", ")} (${Date.now() - t0} ms)`);
}

/** What an operator looks at when pods do not come up: the pods, their containers' states, the events. */
export async function podDiagnostics(kubeconfig: string, namespace: string): Promise<string> {
  const get = (args: string[]): Promise<string> => kubectl(kubeconfig, args).catch((e: unknown) => String(e));
  const pods = await get(["-n", namespace, "get", "pods", "-o", "wide"]);
  const states = await get(["-n", namespace, "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}{range .status.initContainerStatuses[*]} init:{.name}={.state}{end}{range .status.containerStatuses[*]} {.name}={.state}{end}{\"\\n\"}{end}"]);
  const events = await get(["-n", namespace, "get", "events", "--sort-by=.lastTimestamp", "-o", "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message"]);
  return `pods in ${namespace}:\n${pods}\ncontainer states:\n${states}\nevents:\n${events.split("\n").slice(-30).join("\n")}`;
}

/** A VPC's demo workload: a Deployment in a namespace whose annotation kvrf.dev/vpc names the VPC. */
export interface Workload {
  vpc: string;
  replicas: number;
}

/** VPC a1 on every worker (4 pods over 3 nodes), b1 on two; the same per-node ranges in both. */
export const demoWorkloads: Workload[] = [
  { vpc: "a1", replicas: 4 },
  { vpc: "b1", replicas: 2 },
];

export const workloadNamespace = (vpc: string): string => `vpc-${vpc}`;
export const workloadLabel = "kvrf.dev/lab-workload";

/** The namespace (annotated with its VPC) and Deployment of a workload, as `kubectl apply` takes them. */
export function workloadObjects(w: Workload, image = "localhost:5000/kvrf/netshoot:dev"): Record<string, unknown>[] {
  const labels = { [workloadLabel]: w.vpc };
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: workloadNamespace(w.vpc), annotations: { "kvrf.dev/vpc": w.vpc } } },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "pods", namespace: workloadNamespace(w.vpc), labels },
      spec: {
        replicas: w.replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            nodeSelector: { "kvrf.dev/role": "worker" },
            // Spread over the workers, so the VPC's pods talk across nodes.
            topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: labels } }],
            terminationGracePeriodSeconds: 1,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            containers: [{ name: "netshoot", image, imagePullPolicy: "Never", resources: { requests: { cpu: "1m", memory: "4Mi" } } }],
          },
        },
      },
    },
  ];
}

/** kubectl apply --server-side of objects (as YAML/JSON on stdin). */
export async function kubectlApply(kubeconfig: string, objects: readonly Record<string, unknown>[]): Promise<void> {
  const input = objects.map((o) => JSON.stringify(o)).join("\n");
  await new Promise<void>((resolve, reject) => {
    const child = execFile(tool("kubectl"), ["--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager=kvrf-lab", "-f", "-"], { encoding: "utf8", timeout: 120_000 }, (err, _o, stderr) =>
      err === null ? resolve() : reject(new Error(`kubectl apply: ${stderr.trim() || err.message}`)),
    );
    child.stdin?.end(input);
  });
}

interface PodJson {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; podIPs?: { ip: string }[]; containerStatuses?: { containerID?: string; ready?: boolean }[] };
}

export interface KubeletPod {
  name: string;
  namespace: string;
  vpc: string;
  node: string;
  ipv4: string;
  ipv6: string;
  /** /proc/<pid>/ns/net of the pod's container (found through the node's containerd). */
  netnsPath: string;
}

/** The running pods with `selector`: their addresses (pod status) and network namespaces (containerd). */
export async function kubeletPods(labDir: string, kubeconfig: string, selector = workloadLabel): Promise<KubeletPod[]> {
  const list = JSON.parse(await kubectl(kubeconfig, ["get", "pods", "-A", "-l", selector, "-o", "json"])) as { items: PodJson[] };
  const tasks = new Map<string, number>();
  for (const node of new Set(list.items.map((p) => p.spec.nodeName ?? ""))) {
    if (node === "") continue;
    const out = await run(tool("ctr"), ["--address", path.join(runtimeDir(labDir, node), "containerd.sock"), "-n", "k8s.io", "tasks", "ls"]);
    for (const line of out.split("\n").slice(1)) {
      const [id, pid, status] = line.trim().split(/\s+/);
      if (id !== undefined && status === "RUNNING") tasks.set(id, Number(pid));
    }
  }
  const pods: KubeletPod[] = [];
  for (const p of list.items) {
    if (p.status.phase !== "Running" || p.metadata.deletionTimestamp !== undefined) continue;
    const id = p.status.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, "");
    const pid = id === undefined ? undefined : tasks.get(id);
    if (pid === undefined) continue;
    const ip = (v6: boolean): string => p.status.podIPs?.find((x) => x.ip.includes(":") === v6)?.ip ?? "";
    pods.push({
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      vpc: p.metadata.labels?.[workloadLabel] ?? "",
      node: p.spec.nodeName ?? "",
      ipv4: ip(false),
      ipv6: ip(true),
      netnsPath: `/proc/${pid}/ns/net`,
    });
  }
  return pods.sort((a, b) => (a.vpc + a.node + a.name < b.vpc + b.node + b.name ? -1 : 1));
}

/** Applies the workloads and waits until each has all its replicas running with addresses. */
export async function startWorkloads(labDir: string, kubeconfig: string, workloads: readonly Workload[], log: (s: string) => void, timeoutMs = 180_000): Promise<KubeletPod[]> {
  const t0 = Date.now();
  await kubectlApply(kubeconfig, workloads.flatMap((w) => workloadObjects(w)));
  const want = workloads.reduce((n, w) => n + w.replicas, 0);
  let pods: KubeletPod[] = [];
  await waitFor(
    `${want} workload pods running`,
    async () => {
      pods = await kubeletPods(labDir, kubeconfig);
      return pods.length === want && pods.every((p) => p.ipv4 !== "" && p.ipv6 !== "");
    },
    { timeoutMs, intervalMs: 1000 },
  ).catch(async (err: unknown) => {
    const diag = await Promise.all(workloads.map((w) => podDiagnostics(kubeconfig, workloadNamespace(w.vpc))));
    throw new Error(`${(err as Error).message}\n${diag.join("\n")}`, { cause: err });
  });
  log(`${want} pods created with kubectl and running (${Date.now() - t0} ms)`);
  return pods;
}

/**
 * What kvrf and the runtime hold on a node, to compare before and after pod churn: links (veths,
 * VXLAN devices), ip rules of both families, routes outside the local and main tables, host-local's
 * leases, and the pod network namespaces containerd keeps. Sorted lines, no counters or ages.
 */
export async function nodeFootprint(labDir: string, node: string): Promise<Record<string, string[]>> {
  const ns = nodeNetns(node);
  const lines = (s: string): string[] => s.split("\n").map((l) => l.trim()).filter((l) => l !== "").sort();
  const ip = (...args: string[]): Promise<string> => run("ip", ["-n", ns, ...args]);
  const root = path.join(runtimeDir(labDir, node), "root");
  const leasesDir = path.join(root, "var/lib/cni/networks");
  const leases: string[] = [];
  if (existsSync(leasesDir)) {
    for (const net of readdirSync(leasesDir)) {
      for (const f of readdirSync(path.join(leasesDir, net))) if (!f.startsWith("last_reserved_ip") && f !== "lock") leases.push(`${net}/${f}`);
    }
  }
  const netnsDir = path.join(root, "run/netns");
  return {
    links: lines((await ip("-o", "link", "show")).replace(/^\d+: /gm, "").replace(/ qdisc.*$/gm, "").replace(/<[^>]*>/g, "")),
    rules: lines(`${await ip("-4", "rule")}\n${await ip("-6", "rule")}`),
    routes: lines(`${await ip("-4", "route", "show", "table", "all")}\n${await ip("-6", "route", "show", "table", "all")}`).filter(
      (l) => !/ table (local|main)\b/.test(l) && / table /.test(l),
    ),
    leases: leases.sort(),
    podNetns: existsSync(netnsDir) ? readdirSync(netnsDir).sort() : [],
  };
}

/** kubelet's pods as the lab's matrix takes them, named <vpc>-<node>-<n> (pod names are random). */
export function matrixPods(list: readonly KubeletPod[]): AttachedPod[] {
  const seen = new Map<string, number>();
  return list.map((p) => {
    const key = `${p.vpc}-${p.node}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return { name: `${key}-${n}`, vpc: p.vpc as AttachedPod["vpc"], node: p.node, ipv4: p.ipv4, ipv6: p.ipv6, netnsPath: p.netnsPath };
  });
}

export interface ProbeResult {
  from: string;
  to: string;
  sent: number;
  received: number;
  /** The longest run of unanswered probes, as time (probes × interval); 0 when none was lost. */
  longestOutageMs: number;
  /** Probes still unanswered at the end (the outage had not ended). */
  lostAtEnd: number;
}

/**
 * Continuous pings from pod to pod (ping -i in the source pod's network namespace), to measure
 * how long connectivity is lost while something happens. stop() ends them and says, per pair,
 * the longest run of unanswered probes.
 */
export function startProbes(pairs: readonly { from: KubeletPod; to: KubeletPod }[], intervalMs = 200): { stop(): Promise<ProbeResult[]> } {
  const running = pairs.map(({ from, to }) => {
    const child = execFile("nsenter", [`--net=${from.netnsPath}`, "ping", "-n", "-i", String(intervalMs / 1000), "-W", "1", to.ipv4], { encoding: "utf8", maxBuffer: 64 << 20 });
    let out = "";
    child.stdout?.on("data", (d: string) => (out += d));
    const done = new Promise<void>((resolve) => child.on("close", () => resolve()));
    return { from, to, child, done, out: () => out };
  });
  return {
    async stop(): Promise<ProbeResult[]> {
      for (const r of running) r.child.kill("SIGINT");
      await Promise.all(running.map((r) => r.done));
      return running.map((r) => {
        const text = r.out();
        const seqs = [...text.matchAll(/icmp_seq=(\d+) /g)].map((m) => Number(m[1]));
        const sent = Number(/(\d+) packets transmitted/.exec(text)?.[1] ?? seqs.at(-1) ?? 0);
        return { from: `${r.from.name}@${r.from.node}`, to: `${r.to.name}@${r.to.node}`, sent, received: seqs.length, ...outage(seqs, sent, intervalMs) };
      });
    },
  };
}

/**
 * The longest run of missing sequence numbers in 1..sent (answered: `seqs`), as time, and the run
 * at the end. The last second's probes may still have been in flight when ping was stopped: they
 * are left out.
 */
export function outage(seqs: readonly number[], sent: number, intervalMs: number): { longestOutageMs: number; lostAtEnd: number } {
  const got = new Set(seqs);
  const settled = sent - Math.ceil(1000 / intervalMs);
  let run = 0;
  let longest = 0;
  for (let s = 1; s <= settled; s++) {
    run = got.has(s) ? 0 : run + 1;
    longest = Math.max(longest, run);
  }
  return { longestOutageMs: longest * intervalMs, lostAtEnd: run };
}
