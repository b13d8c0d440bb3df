// kvrfd speed and scale (issue #4): for N VRFs with one prefix each on one node, the time from
// object creation to VRF+path in gobgpd and to the remote node's kernel route, reconciles per
// second, replay throughput after gobgpd loses its state, and kvrfd's RSS; next to the raw limit
// of the same client adding VRFs to gobgpd in a tight loop. Real kube-apiserver, gobgpd 4.x, a
// route reflector and two workers in network namespaces (root required).
// Usage: tsx scripts/bench-kvrfd.ts [--sizes 1,100,1000] [--concurrency 16] [--node-args "…"] [--no-write]
// Prints the table and writes it into docs/benchmarks.md (section "kvrfd") unless --no-write.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import * as k8s from "@kubernetes/client-node";
import { build } from "esbuild";
import { GoBgpService, WatchEventRequest_Table_Filter_Type } from "../proto/gen/api/gobgp_pb.js";
import { createUnixGrpcTransport } from "../shared/gobgp/transport.js";
import { bgpVrfInstance, group, version } from "../shared/api-types.js";
import { KubeClient } from "../cni/kube/client.js";
import { loadKubeconfig, type Credentials } from "../cni/kube/credentials.js";
import { publishAttachment } from "../cni/kube/objects.js";
import { connectSpeaker } from "../reconciler/gobgp/connect.js";
import { startGobgpd } from "../test/harness/gobgpd.js";
import { sidOf, startFabric, type Fabric, type FabricNode } from "../test/harness/kvrfd.js";
import { tool } from "../test/harness/tools.js";
import { runFabricBench } from "./lib/fabric-run.js";
import { watchKvrfdRoutes } from "./lib/route-monitor.js";
import { writeSection } from "./lib/report.js";
import { quantile, table } from "./lib/stats.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const sizes = arg("sizes", "1,100,1000").split(",").map(Number);
const concurrency = Number(arg("concurrency", "16"));
// V8 sizes its heap for throughput and lets garbage pile up (measured: 23 MiB live, 200+ MiB heap
// at 1,000 VRFs); these caps are what the DaemonSet should run kvrfd with (docs/kvrfd.md).
const nodeArgs = arg("node-args", "--max-old-space-size=96 --max-semi-space-size=8");
const asn = 65000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The objects' creators' credentials (the admin kubeconfig of the test API server). */
let creds: Credentials;

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

async function pool<T>(items: readonly T[], n: number, f: (x: T, lane: number) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async (_, lane) => {
      while (i < items.length) {
        const x = items[i++] as T;
        await f(x, lane);
      }
    }),
  );
}

/**
 * The kvrfd the benchmark runs: a bundle of the current sources made like scripts/build.ts makes
 * dist/kvrfd (a dist/kvrfd from an older build would measure old code).
 */
async function kvrfdBundle(dir: string): Promise<string> {
  const out = path.join(dir, "kvrfd.cjs");
  await build({
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    // Readable names in the CPU profiles of KVRF_BENCH_PROFILE=1.
    minify: process.env["KVRF_BENCH_PROFILE"] !== "1",
    keepNames: true,
    entryPoints: [path.join(root, "reconciler/main.ts")],
    outfile: out,
    // yargs (ESM) calls createRequire(import.meta.url), which a CJS bundle leaves undefined.
    banner: { js: 'var __kvrfImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    define: { "import.meta.url": "__kvrfImportMetaUrl" },
    logLevel: "warning",
  });
  return out;
}

/** First time each RD number shows up as a best path in a gobgpd's RIB (v4 WatchEvent BEST). */
class RibWatcher {
  seen = new Map<number, number>();
  /** Paths already there when the watch started (its initial table). */
  initial = 0;
  private ac = new AbortController();

  start(socket: string): void {
    this.ac = new AbortController();
    this.initial = 0;
    let first = true;
    const client = createClient(GoBgpService, createUnixGrpcTransport(socket));
    const signal = this.ac.signal;
    void (async () => {
      try {
        const stream = client.watchEvent({ table: { filters: [{ type: WatchEventRequest_Table_Filter_Type.BEST, init: true }] } }, { signal });
        for await (const e of stream) {
          if (e.event.case !== "table") continue;
          const now = Date.now();
          const init = first;
          first = false;
          for (const p of e.event.value.paths) {
            const n = p.nlri?.nlri;
            // Only this node's own prefixes (10.1/16; the remote node's are 10.2/16 and share the RDs).
            if (n?.case !== "labeledVpnIpPrefix" || p.isWithdraw || !n.value.prefix.startsWith("10.1.")) continue;
            const rd = n.value.rd?.rd;
            if (rd?.case !== "twoOctetAsn") continue;
            if (!this.seen.has(rd.value.assigned)) {
              this.seen.set(rd.value.assigned, now);
              if (init) this.initial++;
            }
          }
        }
      } catch {
        // Aborted, or gobgpd went away (restart test): start() again.
      }
    })();
  }

  stop(): void {
    this.ac.abort();
  }
}

/** CPU seconds (user + system) used so far by each node's kvrfd and gobgpd. */
function cpuOf(nodes: readonly FabricNode[]): Map<string, number> {
  const ticks = (pid: number): number => {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const rest = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      return (Number(rest[11]) + Number(rest[12])) / 100;
    } catch {
      return 0;
    }
  };
  const out = new Map<string, number>();
  for (const n of nodes) {
    out.set(`kvrfd ${n.name}`, ticks(n.kvrfd.daemon.pid));
    out.set(`gobgpd ${n.name}`, ticks(n.gobgpd.pid));
  }
  return out;
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

/**
 * The raw limit: the same client adding VRFs (and VRF+path) to a fresh gobgpd, sequentially. The
 * loop warms up first (JIT, the HTTP/2 session) and the best of `rounds` fresh gobgpds counts: the
 * reference is the most the client and gobgpd can do, not a cold start on a busy moment.
 */
async function rawLimit(dir: string, n: number, rounds = 2): Promise<{ vrf: number; vrfPath: number }> {
  let best = { vrf: 0, vrfPath: 0 };
  for (let r = 0; r < rounds; r++) {
    const g = await startGobgpd({ binary: tool("gobgpd4"), dir: path.join(dir, `raw${r}`), logLevel: "warn" });
    try {
      const s = await connectSpeaker(g.socket);
      await s.startBgp({ asn, routerId: "10.0.0.1", listenPort: -1 });
      const rt = (i: number) => ({ type: 0 as const, asn, assigned: i });
      const vrfOf = (i: number) => ({ name: `raw-${i}`, rd: rt(i), importRts: [rt(i)], exportRts: [rt(i)], id: i });
      const pathOf = (i: number) => ({ vrf: `raw-${i}`, prefix: `10.${(i >> 8) & 255}.${i & 255}.1/32`, nextHop: "fd00::1", encap: "srv6" as const, sid: "fd00:0:1::1", behavior: 20 as const });
      const warm = 200;
      for (let i = 1; i <= warm; i++) {
        await s.addVrf(vrfOf(i));
        await s.addLocalPaths(vrfOf(i), [pathOf(i)]);
      }
      let t = performance.now();
      for (let i = warm + 1; i <= warm + n; i++) await s.addVrf(vrfOf(i));
      const vrf = n / ((performance.now() - t) / 1000);
      t = performance.now();
      for (let i = warm + n + 1; i <= warm + 2 * n; i++) {
        await s.addVrf(vrfOf(i));
        await s.addLocalPaths(vrfOf(i), [pathOf(i)]);
      }
      const vrfPath = n / ((performance.now() - t) / 1000);
      s.close();
      best = { vrf: Math.max(best.vrf, vrf), vrfPath: Math.max(best.vrfPath, vrfPath) };
    } finally {
      await g.stop();
    }
  }
  return best;
}

interface Result {
  n: number;
  createSpan: number;
  toGobgpd: number[];
  toRemote: number[];
  endToEnd: number;
  afterLastCreate: number;
  reconcilesPerSec: number;
  replaySec: number;
  /** VRFs/s while the middle 80 % of the replayed paths came back. */
  replaySustained: number;
  /** The same with the other nodes paused (kvrfd and gobgpd alone on the machine). */
  replayAlone: number;
  rssA: number;
  rssB: number;
}

/**
 * Kills a's gobgpd and restarts it; resolves when every path of `vpcs` is back in it, with the
 * replay's duration and its sustained rate: the middle 80 % of the paths (10th to 90th percentile
 * of their return times) over the time they took — no gobgpd start, reconnect, ramp-up or tail.
 */
async function replay(f: Fabric, vpcs: readonly number[], watcher: RibWatcher, label: string): Promise<{ sec: number; sustained: number }> {
  const a = f.worker("a");
  const b = f.worker("b");
  const n = vpcs.length;
  watcher.stop();
  watcher.seen = new Map();
  await a.gobgpd.kill();
  const tr = Date.now();
  const cpuBefore = cpuOf([a, b, f.rr]);
  const writesBefore = await a.kvrfd.metric("kvrfd_status_writes_total", { result: "success" });
  await a.restartGobgpd();
  watcher.start(a.gobgpd.socket);
  await until(`${n} paths replayed`, () => vpcs.every((v) => watcher.seen.has(v)), 300_000);
  const sec = (Date.now() - tr) / 1000;
  const back = vpcs.map((v) => watcher.seen.get(v) ?? Number.NaN).sort((x, y) => x - y);
  const p10 = quantile(back, 0.1);
  const p90 = quantile(back, 0.9);
  const sustained = n >= 10 && p90 > p10 ? (0.8 * n) / ((p90 - p10) / 1000) : Number.NaN;
  if (watcher.initial > n / 10) process.stderr.write(`bench: ${watcher.initial} paths came in the RIB watcher's first event (if that was its initial table, they were back before it started: the sustained rate is less certain)\n`);
  if (process.env["KVRF_BENCH_DEBUG"] === "1") {
    const cpuAfter = cpuOf([a, b, f.rr]);
    process.stderr.write(`-- replay ${label}: ${sec.toFixed(2)} s, sustained ${sustained.toFixed(0)}/s; CPU seconds: ${[...cpuAfter].map(([k, v]) => `${k} ${(v - (cpuBefore.get(k) ?? 0)).toFixed(2)}`).join(", ")}\n`);
    process.stderr.write(`-- status writes of ${a.name} during the replay: ${(await a.kvrfd.metric("kvrfd_status_writes_total", { result: "success" })) - writesBefore}\n`);
    // (Not from paused nodes: their metrics endpoint would not answer.)
    for (const node of label === "alone" ? [a] : [a, b]) {
      const m = await node.kvrfd.metrics().catch(() => "");
      process.stderr.write(`-- ${node.name}\n` + m.split("\n").filter((l) => /^kvrfd_(reconcile|speaker_writes|kernel_route_writes|queue|rib_passes|status_writes|ip_runs)/.test(l) && !/_bucket/.test(l)).join("\n") + "\n");
    }
  }
  return { sec, sustained };
}

async function runSize(f: Fabric, n: number, offset: number, watcher: RibWatcher): Promise<Result> {
  const a = f.worker("a");
  const b = f.worker("b");
  const vpcs = Array.from({ length: n }, (_, i) => offset + i);
  // Objects are published the way the CNI plugin publishes them (cni/kube/objects.ts: a
  // server-side apply of the node's BGPVRFInstance of the VPC, one field manager per attachment),
  // each of the `concurrency` lanes a client with its own kept-alive connection, like one CNI
  // process. (client-node, used before, made a TLS handshake per request: 76–211 creations/s
  // against an idle API server, where these clients reach 183–502/s with the heavier apply.)
  const lanes = Array.from({ length: concurrency }, () => new KubeClient(creds, 30_000));
  const create = (node: FabricNode, idx: number) => (v: number, lane: number) =>
    publishAttachment(
      lanes[lane % lanes.length] as KubeClient,
      { nodeName: node.name, vpcHex: v.toString(16), asn, rd: `${asn}:${v}`, rt: `${asn}:${v}`, table: v, encapsulation: "srv6" },
      { containerID: `c${v}`, ifName: "eth0", attachment: "1", sid: sidOf(idx, v.toString(16), 1), prefixes: [`10.${idx + 1}.${(v >> 8) & 255}.${v & 255}/32`] },
    );
  // The CNI plugin claims a VPC's route target before it publishes the VPC's first object; kvrfd
  // programs a VPC only while the VPC holds it.
  await pool(vpcs, concurrency, (v) => f.claim(v.toString(16)));

  // The remote side's VRFs exist first, so a's paths have somewhere to be imported.
  await pool(vpcs, concurrency, create(b, 1));
  await until(`b has ${n} VRFs`, async () => {
    const s = await b.speaker();
    try {
      return (await s.listVrfs()).length >= n;
    } finally {
      s.close();
    }
  }, 120_000);

  const tables = new Set(vpcs);
  const remoteSeen = new Map<number, number>();
  const monitor = watchKvrfdRoutes(b.netns.name, ({ table, deleted }) => {
    if (!deleted && tables.has(table) && !remoteSeen.has(table)) remoteSeen.set(table, Date.now());
  });
  const reconcilesBefore = await a.kvrfd.metric("kvrfd_reconciles_total", { controller: "vrf" });
  let rssA = 0;
  let rssB = 0;
  const sampler = setInterval(() => {
    rssA = Math.max(rssA, rssMiB(a.kvrfd.daemon.pid));
    rssB = Math.max(rssB, rssMiB(b.kvrfd.daemon.pid));
  }, 200);
  const created = new Map<number, number>();
  const t0 = Date.now();
  await pool(vpcs, concurrency, async (v, lane) => {
    await create(a, 0)(v, lane);
    created.set(v, Date.now());
  });
  const createSpan = (Date.now() - t0) / 1000;
  await until(`${n} paths in a's gobgpd`, () => vpcs.every((v) => watcher.seen.has(v)), 300_000);
  const inGobgpd = Date.now();
  await until(`${n} routes in b's kernel`, () => remoteSeen.size >= n, 300_000);
  monitor.stop();
  const toGobgpd = vpcs.map((v) => (watcher.seen.get(v) ?? Number.NaN) - (created.get(v) ?? t0));
  const endToEnd = (Math.max(...remoteSeen.values()) - t0) / 1000;
  const afterLastCreate = (Math.max(...remoteSeen.values()) - Math.max(...created.values())) / 1000;
  const reconciles = (await a.kvrfd.metric("kvrfd_reconciles_total", { controller: "vrf" })) - reconcilesBefore;
  const reconcilesPerSec = reconciles / ((inGobgpd - t0) / 1000);

  // Replay: gobgpd on a loses everything; time until every path is back. First a's kvrfd settles
  // (statuses of the creations written), so the replay measures the replay alone.
  const settled = async (): Promise<void> =>
    until("a's statuses written", async () => (await a.kvrfd.metric("kvrfd_status_pending")) === 0 && (await a.kvrfd.metric("kvrfd_queue_depth", { controller: "all" })) === 0, 120_000);
  await settled();
  const bRoutes = await b.kvrfd.metric("kvrfd_kernel_routes");
  const inFabric = await replay(f, vpcs, watcher, "with the fabric");
  // The same replay with the other nodes' daemons paused (SIGSTOP): kvrfd and its gobgpd alone on
  // the machine's cores, the setting of the raw limit (measured before the fabric starts). In the
  // fabric, b's kvrfd and gobgpd and the reflector work through a's withdrawals and re-adds on the
  // same two cores meanwhile.
  let alone = Number.NaN;
  if (n >= 100) {
    await until(`b's routes back`, async () => (await b.kvrfd.metric("kvrfd_kernel_routes")) === bRoutes && (await b.kvrfd.metric("kvrfd_queue_depth", { controller: "all" })) === 0, 120_000);
    await settled();
    const others = [b.kvrfd.daemon.pid, b.gobgpd.pid, f.rr.kvrfd.daemon.pid, f.rr.gobgpd.pid];
    for (const pid of others) process.kill(pid, "SIGSTOP");
    try {
      alone = (await replay(f, vpcs, watcher, "alone")).sustained;
    } finally {
      for (const pid of others) process.kill(pid, "SIGCONT");
    }
  }
  clearInterval(sampler);
  // The next size starts with a's BGP session up again: after a peer's session drops, gobgpd (the
  // reflector here) idles 5 s before it accepts a new one (GoBGP's FSM), and paths created in
  // that window would wait for it.
  for (const node of [a, b, f.rr]) await established(node);

  const toRemote = vpcs.map((v) => (remoteSeen.get(v) ?? Number.NaN) - (created.get(v) ?? t0));
  for (const l of lanes) l.close();
  return { n, createSpan, toGobgpd, toRemote, endToEnd, afterLastCreate, reconcilesPerSec, replaySec: inFabric.sec, replaySustained: inFabric.sustained, replayAlone: alone, rssA, rssB };
}

async function established(n: FabricNode): Promise<void> {
  await until(
    `${n.name}'s BGP sessions established`,
    async () => {
      const s = await n.speaker();
      try {
        return (await s.listPeers()).every((p) => p.state === "established");
      } finally {
        s.close();
      }
    },
    60_000,
  );
}

async function cleanup(f: Fabric): Promise<void> {
  const custom = f.kc.makeApiClient(k8s.CustomObjectsApi);
  const list = (await custom.listClusterCustomObject({ group, version, plural: bgpVrfInstance.plural })) as { items: { metadata: { name: string } }[] };
  await pool(list.items, concurrency, async (o) => {
    await custom.deleteClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name: o.metadata.name }).catch(() => undefined);
  });
  await until(
    "objects deleted",
    async () => ((await custom.listClusterCustomObject({ group, version, plural: bgpVrfInstance.plural })) as { items: unknown[] }).items.length === 0,
    300_000,
  );
}

runFabricBench("bench-kvrfd", async (dir, cp) => {
  process.env["KVRF_KVRFD_BIN"] = await kvrfdBundle(dir);
  process.env["KVRF_KVRFD_NODE_ARGS"] = nodeArgs;
  if (process.env["KVRF_BENCH_PROFILE"] === "1") process.env["NODE_OPTIONS"] = `--cpu-prof --cpu-prof-dir=${path.join(dir, "prof")}`;
  creds = await loadKubeconfig(cp.kubeconfig);
  let f: Fabric | undefined;
  const watcher = new RibWatcher();
  try {
    const maxN = Math.max(...sizes);
    process.stderr.write(`bench: raw limit (${maxN} VRFs)…\n`);
    const raw = await rawLimit(dir, maxN);
    f = await startFabric({ label: "bn", gobgpd: tool("gobgpd4"), kubeconfig: cp.kubeconfig, dir, workers: ["a", "b"], logLevel: "info" });
    for (const n of [f.worker("a"), f.worker("b"), f.rr]) await established(n);
    watcher.start(f.worker("a").gobgpd.socket);
    const results: Result[] = [];
    let offset = 0x1000;
    for (const n of sizes) {
      process.stderr.write(`bench: ${n} VRFs…\n`);
      // The watcher's own first-sighting times drive the create→gobgpd latencies.
      const r = await runSize(f, n, offset, watcher);
      results.push(r);
      await cleanup(f);
      offset += n;
    }
    const os = await import("node:os");
    const head =
      `gobgpd ${execFileSync(tool("gobgpd4"), ["--version"], { encoding: "utf8" }).trim().replace(/^gobgpd version /, "")}, node ${process.version}, ` +
      `${os.cpus().length} CPUs (load average ${os.loadavg()[0]?.toFixed(1)} at the end), kvrfd bundled from the current sources and run with ` +
      `\`node ${nodeArgs}\`, objects created ${concurrency} at a time; ${new Date().toISOString().slice(0, 10)}.`;
    const raw1 = `raw limit (same client, sequential, warmed up, best of 2): ${raw.vrf.toFixed(0)} AddVrf/s; ${raw.vrfPath.toFixed(0)} (AddVrf+AddPath)/s`;
    const t = table(
      ["VRFs", "creating s", "create→gobgpd p50/p95 ms", "create→remote kernel p50/p95 ms", "end to end s (after last create)", "reconciles/s", "replay s (VRFs/s)", "sustained VRFs/s", "alone VRFs/s", "RSS a/b MiB"],
      results.map((r) => [
        String(r.n),
        r.createSpan.toFixed(2),
        `${quantile(r.toGobgpd, 0.5).toFixed(0)}/${quantile(r.toGobgpd, 0.95).toFixed(0)}`,
        `${quantile(r.toRemote, 0.5).toFixed(0)}/${quantile(r.toRemote, 0.95).toFixed(0)}`,
        `${r.endToEnd.toFixed(2)} (${r.afterLastCreate.toFixed(2)})`,
        r.reconcilesPerSec.toFixed(0),
        `${r.replaySec.toFixed(2)} (${(r.n / r.replaySec).toFixed(0)})`,
        Number.isNaN(r.replaySustained) ? "-" : r.replaySustained.toFixed(0),
        Number.isNaN(r.replayAlone) ? "-" : r.replayAlone.toFixed(0),
        `${r.rssA.toFixed(0)}/${r.rssB.toFixed(0)}`,
      ]),
    );
    process.stdout.write(`${head}\n\n${raw1}\n\n${t}`);
    if (!process.argv.includes("--no-write")) {
      const file = writeSection(root, "kvrfd", `Measured by \`scripts/bench-kvrfd.ts\`: ${head}\n\n\`\`\`\n${raw1}\n\n${t}\`\`\``);
      process.stderr.write(`bench: results written to ${path.relative(root, file)} (section kvrfd)\n`);
    }
  } finally {
    watcher.stop();
    await f?.stop().catch(() => undefined);
  }
});
