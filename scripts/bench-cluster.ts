// Pod ready time through kvrf against the reference `bridge` + `host-local` plugins, on the same
// node of the kubelet lab (containerd 2.4 + kubelet 1.35, docs/lab.md): for each plugin, --pods
// bare Pods pinned to --node (nodeSelector, so the scheduler is in the path as in a cluster) are
// created with one `kubectl apply`, then deleted with one `kubectl delete`; timed client side from a
// watch on the pods (ms): apply → each pod Ready, apply → all Ready, delete → each pod gone, delete
// → all gone; and kvrf's own ADD and DEL times, from its log on the node. --rounds rounds, the two
// plugins taking turns (kvrf first in rounds 1, 3, …, bridge first in rounds 2, 4, …, so that a
// change of load over the run falls on both).
//
// The reference runs on the node that kvrf's DaemonSet installed: the script writes
// 00-bridge.conflist (a bridge kvbench0 with its own subnets, 10.99.<node>.0/24 and
// fd99:0:<node>::/64) beside kvrf's 90-kvrf.conflist in the node's /etc/cni/net.d, copies the
// plugins into its /opt/cni/bin if missing, and waits until containerd has loaded it (containerd
// takes the lexically first conflist and reloads on changes; the CRI Status call says which
// network it holds: scripts/lib/cri.ts); removing the file switches the node back to kvrf. Pods
// are only created after the switch and always deleted before the next one (containerd tears a pod
// down with the network configuration it holds at that moment, not the one it set it up with), and
// each round checks its pods' addresses are in the plugin's subnet. A resident kvrf pod keeps the
// VPC on the node throughout (the common case, as in bench-cni.ts: kvrf's ADD and DEL then do not
// claim or release the VPC's route target and VNI).
//
// Brings the lab up (--kubelet, VXLAN over IPv4) when it is not, and down at the end if it did;
// leaves nothing behind either way: the pods and namespace, the conflist, the bridge device and the
// node's forwarding sysctls, host-local's leases of the bridge network, copied plugins. Root only.
// Prints a table and writes it to docs/benchmarks.md (section "cluster") unless --no-write.
// Usage: tsx scripts/bench-cluster.ts [--rounds 5] [--pods 10] [--node iad] [--timeout 180] [--no-write]
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { down, isUp, kubeClient, labDir, readState, up } from "./netns-lab/lab.js";
import { kubectl, kubectlApply, nodeFootprint, runtimeDir } from "./netns-lab/kubelet.js";
import { describeSettings, nodeNetns, workers, type LabSettings } from "./netns-lab/topology.js";
import { criStatusInfo, loadedCniNetworks } from "./lib/cri.js";
import { formatSpread, quantile, ratio, spread, table } from "./lib/stats.js";
import { writeSection } from "./lib/report.js";
import { cniBinDir, repoRoot, tool } from "../test/harness/tools.js";

const argv = await yargs(hideBin(process.argv))
  .scriptName("bench-cluster")
  .usage("$0 [flags]\n\nPod ready and delete times through kvrf against the bridge plugin on one node of the kubelet lab.")
  .strict()
  .option("rounds", { type: "number", default: 5, describe: "rounds (each: both plugins)" })
  .option("pods", { type: "number", default: 10, describe: "pods created at once per plugin and round" })
  .option("node", { type: "string", default: "iad", choices: workers.map((w) => w.name), describe: "the worker the pods run on" })
  .option("timeout", { type: "number", default: 180, describe: "seconds for a round's pods to be Ready (or gone)" })
  .option("write", { type: "boolean", default: true, describe: "write the table into docs/benchmarks.md (--no-write: print only)" })
  .parse();

const settings: LabSettings = { encap: "vxlan", underlay: 4, runtime: "kubelet" };
const log = (s: string): void => void process.stderr.write(`[bench-cluster] ${s}\n`);
const load = (): string => loadavg()[0]?.toFixed(1) ?? "?";

type Plugin = "kvrf" | "bridge";
const namespace = "kvrf-bench";
const roundLabel = "kvrf.dev/bench-round";
const vpc = "a1";
const image = "localhost:5000/kvrf/netshoot:dev";
const bridgeNet = "kvrf-bench-bridge";
const bridgeDev = "kvbench0";
const bridgeConflist = "00-bridge.conflist";
const refPlugins = ["bridge", "host-local", "loopback"];

const worker = workers.find((w) => w.name === argv.node);
if (worker?.index === undefined) throw new Error(`no worker ${argv.node}`);
const nodeIndex = worker.index;
const root = path.join(runtimeDir(labDir, worker.name), "root");
const confDir = path.join(root, "etc/cni/net.d");
const binDir = path.join(root, "opt/cni/bin");
const socket = path.join(runtimeDir(labDir, worker.name), "containerd.sock");
const netns = nodeNetns(worker.name);
/** The subnet each plugin gives pods on the node (IPv4 prefix, for the per-round check). */
const subnet4: Record<Plugin, string> = { kvrf: `10.10.${nodeIndex}.`, bridge: `10.99.${nodeIndex}.` };

function run(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`)))),
  );
}

function pod(name: string, labels: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: {
      nodeSelector: { "kubernetes.io/hostname": worker?.name },
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // Exits on SIGTERM (a plain `sleep` as PID 1 ignores it): the delete times are kubelet's and
      // the plugin's teardown, not the grace period.
      containers: [{ name: "sleep", image, imagePullPolicy: "Never", command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"], resources: { requests: { cpu: "1m", memory: "4Mi" } } }],
    },
  };
}

// --- which network containerd uses on the node ---------------------------------------------------

let active: Plugin = "kvrf";
let copied: string[] = [];
let savedSysctls: Record<string, string> | undefined;
const forwardingSysctls = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"];

function kvrfNetworkName(): string {
  return (JSON.parse(readFileSync(path.join(confDir, "90-kvrf.conflist"), "utf8")) as { name: string }).name;
}

async function waitLoaded(network: string): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const nets = loadedCniNetworks(await criStatusInfo(socket));
    if (nets.includes(network)) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) throw new Error(`containerd on ${worker?.name} still holds ${nets.join(", ")} 30 s after the switch to ${network}`);
    await sleep(50);
  }
}

async function use(plugin: Plugin): Promise<void> {
  if (plugin === active) return;
  if (plugin === "bridge") {
    // The bridge plugin (isGateway) turns forwarding on in the node; put back what was there.
    if (savedSysctls === undefined) {
      const out = await run("ip", ["netns", "exec", netns, "sysctl", "-n", ...forwardingSysctls]);
      savedSysctls = Object.fromEntries(forwardingSysctls.map((k, i) => [k, out.split("\n")[i]?.trim() ?? ""]));
    }
    for (const p of refPlugins) {
      if (existsSync(path.join(binDir, p))) continue;
      copyFileSync(path.join(cniBinDir(), p), path.join(binDir, p));
      copied.push(p);
    }
    const conf = {
      cniVersion: "1.1.0",
      name: bridgeNet,
      plugins: [
        {
          type: "bridge",
          bridge: bridgeDev,
          isGateway: true,
          ipMasq: false,
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: `10.99.${nodeIndex}.0/24` }], [{ subnet: `fd99:0:${nodeIndex}::/64` }]],
            routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
          },
        },
      ],
    };
    // Written whole, then renamed: containerd reloads on the directory's events.
    const tmp = path.join(confDir, `.${bridgeConflist}.tmp`);
    writeFileSync(tmp, JSON.stringify(conf, null, 2));
    active = "bridge";
    renameSync(tmp, path.join(confDir, bridgeConflist));
    log(`${worker?.name}: ${bridgeConflist} written; containerd loaded it after ${(await waitLoaded(bridgeNet)).toFixed(0)} ms`);
  } else {
    rmSync(path.join(confDir, bridgeConflist), { force: true });
    active = "kvrf";
    log(`${worker?.name}: ${bridgeConflist} removed; containerd back on kvrf after ${(await waitLoaded(kvrfNetworkName())).toFixed(0)} ms`);
  }
}

// --- one round --------------------------------------------------------------------------------

interface PodTimes {
  readyMs?: number;
  goneMs?: number;
  ipv4?: string;
}

interface RoundResult {
  allReadyMs: number;
  readyMs: number[];
  allGoneMs: number;
  goneMs: number[];
  /** kvrf only: its ADDs' and DELs' own durations (process start to result), from its log. */
  pluginAddMs: number[];
  pluginDelMs: number[];
  /** kvrf only: each phase's samples (the plugin's own clock), ADD and DEL. */
  addPhases: Map<string, number[]>;
  delPhases: Map<string, number[]>;
}

/** The plugin's log on the node (the lab's conflist: logFile /run/kvrf/kvrf-cni.log). */
const pluginLog = path.join(root, "run/kvrf/kvrf-cni.log");
const logSize = (): number => (existsSync(pluginLog) ? statSync(pluginLog).size : 0);

/** kvrf's "attached" and "detached" lines written since `offset`: each call's time from process start to its result. */
function pluginTimes(offset: number): { add: number[]; del: number[]; addPhases: Map<string, number[]>; delPhases: Map<string, number[]> } {
  const out = { add: [] as number[], del: [] as number[], addPhases: new Map<string, number[]>(), delPhases: new Map<string, number[]>() };
  if (!existsSync(pluginLog)) return out;
  const text = readFileSync(pluginLog).subarray(offset).toString("utf8");
  for (const line of text.split("\n")) {
    if (!line.includes('"msg":"attached"') && !line.includes('"msg":"detached"')) continue;
    let l: { msg: string; ms?: number; phaseMs?: Record<string, number> };
    try {
      l = JSON.parse(line) as typeof l;
    } catch {
      continue; // a line still being written
    }
    if (l.ms === undefined) continue;
    (l.msg === "attached" ? out.add : out.del).push(l.ms + (l.phaseMs?.["startup"] ?? 0));
    const phases = l.msg === "attached" ? out.addPhases : out.delPhases;
    for (const [k, v] of Object.entries(l.phaseMs ?? {})) phases.set(k, [...(phases.get(k) ?? []), v]);
  }
  return out;
}

interface WatchedPod {
  metadata?: { name?: string };
  status?: { conditions?: { type: string; status: string }[]; podIPs?: { ip: string }[] };
}

/** Creates the round's pods with one apply, waits for all Ready, deletes them with one delete, waits for all gone. */
async function round(kubeconfig: string, kc: k8s.KubeConfig, plugin: Plugin): Promise<RoundResult> {
  const names = Array.from({ length: argv.pods }, (_, i) => `bench-${i}`);
  const times = new Map<string, PodTimes>(names.map((n) => [n, {}]));
  let t0 = 0;
  let td = 0;
  let watchError: Error | undefined;
  const watch = await new k8s.Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: roundLabel },
    (type: string, obj: WatchedPod) => {
      const now = performance.now();
      const t = times.get(obj.metadata?.name ?? "");
      if (t === undefined || t0 === 0) return;
      if (type === "DELETED") {
        if (td > 0) t.goneMs ??= now - td;
        return;
      }
      const ipv4 = obj.status?.podIPs?.find((p) => !p.ip.includes(":"))?.ip;
      if (ipv4 !== undefined) t.ipv4 ??= ipv4;
      if (obj.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) t.readyMs ??= now - t0;
    },
    (err: unknown) => {
      watchError = err instanceof Error ? err : new Error(err === null || err === undefined ? "watch closed" : JSON.stringify(err));
    },
  );
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    const start = performance.now();
    while (!ok()) {
      if (watchError !== undefined && !ok()) throw new Error(`${plugin}: watching the pods ended while waiting for ${what}: ${watchError.message}`);
      if (performance.now() - start > argv.timeout * 1000) throw new Error(`${plugin}: ${what} not after ${argv.timeout} s`);
      await sleep(20);
    }
  };
  const offset = logSize();
  try {
    t0 = performance.now();
    await kubectlApply(kubeconfig, names.map((n) => pod(n, { [roundLabel]: plugin })));
    await until(`${argv.pods} pods Ready`, () => [...times.values()].every((t) => t.readyMs !== undefined));
    const wrong = [...times].filter(([, t]) => !(t.ipv4 ?? "").startsWith(subnet4[plugin]));
    if (wrong.length > 0) {
      throw new Error(`${plugin} round: pods not in ${subnet4[plugin]}0/24 (containerd used another network): ${wrong.map(([n, t]) => `${n} ${t.ipv4 ?? "no address"}`).join(", ")}`);
    }
    td = performance.now();
    await kubectl(kubeconfig, ["-n", namespace, "delete", "pods", "-l", roundLabel, "--wait=false"]);
    await until(`${argv.pods} pods gone`, () => [...times.values()].every((t) => t.goneMs !== undefined));
  } finally {
    watch.abort();
  }
  const ready = [...times.values()].map((t) => t.readyMs ?? Number.NaN);
  const gone = [...times.values()].map((t) => t.goneMs ?? Number.NaN);
  const own = plugin === "kvrf" ? pluginTimes(offset) : { add: [], del: [], addPhases: new Map<string, number[]>(), delPhases: new Map<string, number[]>() };
  return {
    allReadyMs: Math.max(...ready),
    readyMs: ready,
    allGoneMs: Math.max(...gone),
    goneMs: gone,
    pluginAddMs: own.add,
    pluginDelMs: own.del,
    addPhases: own.addPhases,
    delPhases: own.delPhases,
  };
}

// --- clean-up -----------------------------------------------------------------------------------

async function podsLeft(kubeconfig: string, selector: string): Promise<number> {
  const out = await kubectl(kubeconfig, ["-n", namespace, "get", "pods", "-l", selector, "-o", "name", "--ignore-not-found"]).catch(() => "");
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

/** Puts the node back as it was; each step on its own, so one failing does not skip the rest. */
async function cleanUp(kubeconfig: string): Promise<string[]> {
  const problems: string[] = [];
  const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  // Round pods go with the network they were made with (the one active now), then back to kvrf.
  await step("deleting the round's pods", () => kubectl(kubeconfig, ["-n", namespace, "delete", "pods", "-l", roundLabel, "--ignore-not-found", "--wait=true", "--timeout=120s"]));
  if ((await podsLeft(kubeconfig, roundLabel)) > 0) problems.push(`round pods still there; ${bridgeConflist} left in place so that they are torn down by the network that set them up`);
  else await step("switching back to kvrf", () => use("kvrf"));
  if (active === "kvrf") {
    await step("deleting the namespace", () => kubectl(kubeconfig, ["delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s"]));
  }
  await step(`removing ${bridgeDev}`, async () => {
    if ((await run("ip", ["-n", netns, "-o", "link", "show"])).includes(` ${bridgeDev}:`)) await run("ip", ["-n", netns, "link", "del", bridgeDev]);
  });
  if (savedSysctls !== undefined) {
    await step("restoring forwarding", () => run("ip", ["netns", "exec", netns, "sysctl", "-q", ...Object.entries(savedSysctls ?? {}).map(([k, v]) => `${k}=${v}`)]));
  }
  if (active === "kvrf") {
    rmSync(path.join(root, "var/lib/cni/networks", bridgeNet), { recursive: true, force: true });
    for (const p of copied) rmSync(path.join(binDir, p), { force: true });
    copied = [];
  }
  return problems;
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadStart = load();
  const broughtUp = !(await isUp(settings));
  const tUp = Date.now();
  await up(log, settings);
  if (broughtUp) log(`lab up in ${((Date.now() - tUp) / 1000).toFixed(0)} s`);
  const state = readState();
  if (state === undefined) throw new Error("the lab did not record its state");
  const { kubeconfig } = state;
  const kc = kubeClient(state);
  const results: Record<Plugin, RoundResult[]> = { kvrf: [], bridge: [] };
  let failure: Error | undefined;
  let problems: string[];
  let footprintNote = "";
  let before: Record<string, string[]> = {};
  try {
    if (existsSync(path.join(confDir, bridgeConflist))) throw new Error(`${path.join(confDir, bridgeConflist)} exists already (a run before this one did not finish?)`);
    await waitLoaded(kvrfNetworkName());
    before = await nodeFootprint(labDir, worker?.name ?? "");
    await kubectlApply(kubeconfig, [{ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, annotations: { "kvrf.dev/vpc": vpc } } }]);
    // The resident pod: the VPC stays on the node between rounds.
    await kubectlApply(kubeconfig, [pod("bench-resident", { "kvrf.dev/bench-resident": "" })]);
    await kubectl(kubeconfig, ["-n", namespace, "wait", "--for=condition=Ready", "pod/bench-resident", `--timeout=${argv.timeout}s`]);
    for (let r = 0; r < argv.rounds; r++) {
      const order: Plugin[] = r % 2 === 0 ? ["kvrf", "bridge"] : ["bridge", "kvrf"];
      for (const plugin of order) {
        await use(plugin);
        const res = await round(kubeconfig, kc, plugin);
        results[plugin].push(res);
        log(`round ${r + 1}/${argv.rounds} ${plugin}: ${argv.pods} pods Ready after ${res.allReadyMs.toFixed(0)} ms, gone ${res.allGoneMs.toFixed(0)} ms after the delete (load ${load()})`);
      }
    }
    await use("kvrf");
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
  } finally {
    problems = await cleanUp(kubeconfig);
    for (const p of problems) log(`clean-up: ${p}`);
  }
  if (failure === undefined && problems.length === 0) {
    // What the node holds once every pod is gone and the reference removed: the same as before the
    // first pod (kvrfd may take a moment to remove the VPC's device and routes).
    const t = Date.now();
    let after = await nodeFootprint(labDir, worker?.name ?? "");
    while (JSON.stringify(after) !== JSON.stringify(before) && Date.now() - t < 60_000) {
      await sleep(1000);
      after = await nodeFootprint(labDir, worker?.name ?? "");
    }
    footprintNote =
      JSON.stringify(after) === JSON.stringify(before)
        ? `${worker?.name}'s footprint after the run (links, rules, routes, leases, pod namespaces) identical to before it`
        : `${worker?.name}'s footprint differs after the run: before ${JSON.stringify(before)} after ${JSON.stringify(after)}`;
    log(footprintNote);
  }
  if (broughtUp && problems.length === 0) {
    await down(log);
    log("lab down");
  } else if (broughtUp) {
    log("lab left up for inspection because the clean-up had problems: scripts/lab down removes it");
  }
  if (failure !== undefined) throw failure;

  const pooled = (p: Plugin, k: "readyMs" | "goneMs"): number[] => results[p].flatMap((r) => r[k]);
  const all = (p: Plugin, k: "allReadyMs" | "allGoneMs"): number[] => results[p].map((r) => r[k]);
  const med = (s: number[]): number => spread(s).median;
  const q = (s: number[]): string => `${quantile(s, 0.5).toFixed(0)} / ${quantile(s, 0.9).toFixed(0)} / ${Math.max(...s).toFixed(0)}`;
  const rows = [
    [`apply → all ${argv.pods} Ready, median (min–max) of ${argv.rounds} rounds`, formatSpread(all("kvrf", "allReadyMs")), formatSpread(all("bridge", "allReadyMs")), ratio(med(all("kvrf", "allReadyMs")), med(all("bridge", "allReadyMs")))],
    [`apply → each pod Ready, p50 / p90 / max of ${argv.pods * argv.rounds}`, q(pooled("kvrf", "readyMs")), q(pooled("bridge", "readyMs")), ratio(med(pooled("kvrf", "readyMs")), med(pooled("bridge", "readyMs")))],
    [`delete → all ${argv.pods} gone, median (min–max)`, formatSpread(all("kvrf", "allGoneMs")), formatSpread(all("bridge", "allGoneMs")), ratio(med(all("kvrf", "allGoneMs")), med(all("bridge", "allGoneMs")))],
    [`delete → each pod gone, p50 / p90 / max`, q(pooled("kvrf", "goneMs")), q(pooled("bridge", "goneMs")), ratio(med(pooled("kvrf", "goneMs")), med(pooled("bridge", "goneMs")))],
  ];
  const t = table(["ms, client side", "kvrf", "bridge + host-local (reference)", "kvrf / bridge"], rows);
  const perRound = table(
    ["round", "kvrf all Ready", "bridge all Ready", "kvrf all gone", "bridge all gone"],
    results.kvrf.map((k, i) => {
      const b = results.bridge[i];
      return [String(i + 1), k.allReadyMs.toFixed(0), b?.allReadyMs.toFixed(0) ?? "-", k.allGoneMs.toFixed(0), b?.allGoneMs.toFixed(0) ?? "-"];
    }),
  );
  const phases = (k: "addPhases" | "delPhases"): string => {
    const all = new Map<string, number[]>();
    for (const r of results.kvrf) for (const [p, v] of r[k]) all.set(p, [...(all.get(p) ?? []), ...v]);
    return [...all].map(([p, v]) => `${p} ${quantile(v, 0.5).toFixed(0)}`).join(", ");
  };
  const addMs = results.kvrf.flatMap((r) => r.pluginAddMs);
  const delMs = results.kvrf.flatMap((r) => r.pluginDelMs);
  const own =
    `kvrf's own calls in these rounds (its log: process start → result), p50 / p90 / max: ADD ${q(addMs)} ms (${addMs.length} calls), ` +
    `DEL ${q(delMs)} ms (${delMs.length} calls)\n` +
    `  ADD phases, p50 ms: ${phases("addPhases")}\n` +
    `  DEL phases, p50 ms: ${phases("delPhases")}\n`;
  const head =
    `${argv.pods} pods at once on ${worker?.name}, ${argv.rounds} rounds (kvrf first in rounds 1, 3, …, bridge first in 2, 4, …), kubelet lab (${describeSettings(settings)}), ` +
    `containerd ${await containerdVersion()}, kubelet ${await kubeletVersion()}, Node ${process.version}, load average ${loadStart} at the start and ${load()} at the end`;
  process.stdout.write(`${head}\n\n${t}\n${perRound}\n${own}`);
  if (footprintNote !== "") process.stdout.write(`\n${footprintNote}\n`);
  if (argv.write) {
    const file = writeSection(
      repoRoot,
      "cluster",
      `## Pod ready time under kubelet: kvrf against the bridge plugin (scripts/bench-cluster.ts)\n\n` +
        `\`tsx scripts/bench-cluster.ts --rounds ${argv.rounds} --pods ${argv.pods} --node ${argv.node}\` (root), ${new Date().toISOString().slice(0, 10)}, this 2-core machine. ${head}.\n\n` +
        "```\n" +
        t +
        "\n" +
        perRound +
        "\n" +
        own +
        "```\n",
    );
    log(`written to ${file}`);
  }
}

async function containerdVersion(): Promise<string> {
  return (await run(tool("containerd"), ["--version"]).catch(() => "?")).split(" ")[2]?.trim() ?? "?";
}

async function kubeletVersion(): Promise<string> {
  return (await run(tool("kubelet"), ["--version"]).catch(() => "?")).split(" ")[1]?.trim() ?? "?";
}

await main();
