// The fault campaign: what pods feel while kvrf's parts fail. The lab (docs/lab.md) with its demo
// pods; for each fault, one at a time, steady traffic between every pair of pods of a VPC on
// different nodes (one ping per 10 ms per flow, scripts/netns-lab/flows.ts), then:
//  - packets lost: in all, on the worst flow, and on flows between nodes the fault did not touch;
//  - time to full matrix: from the fault to the first reply after the last loss on any flow;
//  - drift after it: `kubectl kvrf status` (objects vs GoBGP vs kernel on every node), polled until
//    none is left (leaked or lost routes) or 60 s;
//  - packets of another VPC: echo requests a pod received beyond what its own VPC's flows sent it.
// Prints a table and writes it to docs/benchmarks.md (section faults-<settings>). Root only.
// Usage: tsx scripts/bench-faults.ts [--encap srv6|vxlan|auto] [--underlay 4|6] [--only SUBSTRING]
import { execFile } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import * as k8s from "@kubernetes/client-node";
import { attachDemoPods, converge, crashGobgpd, down, kubeClient, kubectlKvrf, pidfiles, readState, replaceKvrfPod, restartDaemon, startKvrfd, stopKvrfd, tryCni, up, type AttachedPod } from "./netns-lab/lab.js";
import { Flows, type FlowResult } from "./netns-lab/flows.js";
import { chooseSettings } from "./netns-lab/settings.js";
import { describeSettings, labNodes, nodeNetns, workers, type DemoPod, type LabNode } from "./netns-lab/topology.js";
import { table } from "./lib/stats.js";
import { writeSection } from "./lib/report.js";
import { repoRoot } from "../test/harness/tools.js";

const run = promisify(execFile);
const log = (s: string): void => void process.stderr.write(`[faults] ${s}\n`);
const onlyFlag = process.argv.indexOf("--only");
const only = onlyFlag > 0 ? process.argv[onlyFlag + 1] : undefined;

interface Fault {
  name: string;
  /** Nodes whose pods the fault may cut off; flows between other nodes must lose nothing. */
  touches: string[];
  /** Before the traffic starts (settings the fault needs). */
  prepare?: () => Promise<void>;
  /** Breaks and repairs; resolves when the repair is done (not when everything converged). */
  run: () => Promise<string | undefined>;
}

/** Sets graceful restart on both lab instances and waits for the sessions and routes to settle. */
async function setGracefulRestart(enabled: boolean): Promise<void> {
  const state = readState();
  if (state === undefined) throw new Error("lab is down");
  const api = kubeClient(state).makeApiClient(k8s.CustomObjectsApi);
  for (const name of ["workers", "route-reflector"]) {
    await api.patchClusterCustomObject(
      { group: "kvrf.dev", version: "v1alpha1", plural: "bgpinstances", name, body: { spec: { gracefulRestart: { enabled, restartTime: 120 } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
  }
  await sleep(2000);
  await noDrift(120);
}

/** Seconds until `kubectl kvrf status` finds no drift on any node (undefined: still drifting after `limitS`), and what drifts. */
async function noDrift(limitS: number): Promise<{ seconds?: number; lines: number }> {
  const t0 = Date.now();
  let lines = 0;
  while (Date.now() - t0 < limitS * 1000) {
    const r = await kubectlKvrf(["status", "-o", "json"]);
    if (r.code === 0) return { seconds: (Date.now() - t0) / 1000, lines: 0 };
    try {
      lines = (JSON.parse(r.stdout) as { drift?: unknown[] }[]).reduce((n, x) => n + (x.drift?.length ?? 0), 0);
    } catch {
      lines = -1;
    }
    await sleep(1000);
  }
  return { lines };
}

/** A CNI call retried every 2 s until it succeeds: the first answer, and when it finally worked. */
async function retryCni(verb: "add" | "del", pod: DemoPod, t0: number): Promise<string> {
  let first: string | undefined;
  for (;;) {
    const r = await tryCni(verb, pod);
    if (r.ok) return `${verb.toUpperCase()} ${first ?? "ok at once"}, ok after ${((Date.now() - t0) / 1000).toFixed(0)} s`;
    // cnitool prints libcni's error text, which has the plugin's message but not its code.
    first ??= r.code !== undefined ? `code ${r.code}` : `"${r.message.replace(/^cnitool \w+ [\w-]+: /, "").slice(0, 70)}"`;
    await sleep(2000);
  }
}

const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const clockFile = path.join(os.tmpdir(), `kvrf-bench-clock-${process.pid}`);
const sjc = (): LabNode => {
  const n = labNodes.find((x) => x.name === "sjc");
  if (n === undefined) throw new Error("no sjc");
  return n;
};

function faults(): Fault[] {
  const extra = (i: number, node = "iad"): DemoPod => ({ name: `x${i}-${node}`, vpc: "a1", node });
  return [
    { name: "worker gobgpd kill -9 (no graceful restart)", touches: ["sjc"], prepare: () => setGracefulRestart(false), run: async () => (await crashGobgpd("sjc", 1000), undefined) },
    { name: "worker gobgpd kill -9 (graceful restart)", touches: ["sjc"], prepare: () => setGracefulRestart(true), run: async () => (await crashGobgpd("sjc", 1000), undefined) },
    {
      // What a rolling update of the DaemonSet does to a node's pod: both preStop hooks (kvrfd
      // prestop, gobgp-drain) at once, SIGTERM to both containers, the new pod's gobgpd and kvrfd.
      name: "sjc's kvrf pod replaced (preStop hooks, SIGTERM; graceful restart)",
      touches: ["sjc"],
      run: async () => {
        const said = await replaceKvrfPod("sjc");
        return `drain: ${said.drain}; prestop: ${said.prestop}`;
      },
    },
    {
      // The lab's nodes share the machine's clock, so one kvrfd gets a fake one (libfaketime, wall
      // clock only: its monotonic timers keep running), jumped forward in the middle of a route
      // hold (gobgpd killed just before), then back.
      name: "sjc's kvrfd wall clock +1 h during a route hold, then back (gobgpd kill -9, graceful restart)",
      touches: ["sjc"],
      prepare: async () => {
        if (!existsSync(libfaketime)) throw new Error(`${libfaketime} missing: apt-get install faketime (scripts/test-env ensure apt)`);
        writeFileSync(clockFile, "+0\n");
        await stopKvrfd("sjc");
        await startKvrfd(sjc(), undefined, ["env", `LD_PRELOAD=${libfaketime}`, `FAKETIME_TIMESTAMP_FILE=${clockFile}`, "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"]);
      },
      run: async () => {
        await crashGobgpd("sjc", 1000);
        writeFileSync(clockFile, "+1h\n");
        await sleep(10_000);
        writeFileSync(clockFile, "+0\n");
        await sleep(5000);
        await stopKvrfd("sjc");
        await startKvrfd(sjc());
        return "kvrfd under libfaketime; restarted without it after";
      },
    },
    { name: "worker kvrfd kill -9", touches: ["sjc"], run: async () => (await restartDaemon(pidfiles.kvrfd("sjc"), "SIGKILL", 1000), undefined) },
    {
      name: "kvrfd rolling restart (SIGTERM, every worker)",
      touches: workers.map((w) => w.name),
      run: async () => {
        for (const w of workers) {
          await restartDaemon(pidfiles.kvrfd(w.name), "SIGTERM", 0);
          await noDrift(60);
        }
        return undefined;
      },
    },
    { name: "route reflector gobgpd kill -9", touches: ["rr"], run: async () => (await crashGobgpd("rr", 1000), undefined) },
    {
      name: "API server down 60 s, a pod added and one deleted meanwhile",
      touches: [],
      prepare: async () => void (await tryCni("add", extra(0, "sjc"))),
      run: async () => {
        const t0 = Date.now();
        const stopped = restartDaemon(pidfiles.apiserver(), "SIGTERM", 60_000);
        await sleep(3000);
        const [add, del] = await Promise.all([retryCni("add", extra(1), t0), retryCni("del", extra(0, "sjc"), t0), stopped]);
        await tryCni("del", extra(1));
        return `${add}; ${del}`;
      },
    },
    { name: "etcd restart", touches: [], run: async () => (await restartDaemon(pidfiles.etcd(), "SIGTERM", 1000), undefined) },
    {
      name: "sjc's underlay link down 30 s",
      touches: ["sjc"],
      run: async () => {
        await run("ip", ["-n", nodeNetns("sjc"), "link", "set", "fab0", "down"]);
        await sleep(30_000);
        await run("ip", ["-n", nodeNetns("sjc"), "link", "set", "fab0", "up"]);
        return undefined;
      },
    },
    {
      name: "100 ADD/DEL on iad (50 pods, 10 at a time)",
      touches: [],
      run: async () => {
        const pods = Array.from({ length: 50 }, (_, i) => extra(100 + i));
        const failed: string[] = [];
        for (const verb of ["add", "del"] as const) {
          for (let i = 0; i < pods.length; i += 10) {
            const rs = await Promise.all(pods.slice(i, i + 10).map((p) => tryCni(verb, p)));
            rs.forEach((r, j) => {
              if (!r.ok) failed.push(`${verb} ${pods[i + j]?.name ?? "?"}: ${r.message.slice(0, 80)}`);
            });
          }
        }
        return failed.length === 0 ? "all 100 calls ok" : `${failed.length} calls failed: ${failed[0] ?? ""}`;
      },
    },
  ];
}

interface Row {
  fault: string;
  flows: number;
  lost: number;
  worst: number;
  untouched: number;
  fullMatrixS: string;
  drift: string;
  crossVpc: number;
  note: string;
}

async function measure(f: Fault, pods: AttachedPod[]): Promise<Row> {
  await f.prepare?.();
  const { ms } = await converge(pods, 120_000);
  if (Number.isNaN(ms)) throw new Error(`${f.name}: the lab is not converged before the fault`);
  const flows = await Flows.start(pods);
  let note: string | undefined;
  let result: { flows: FlowResult[]; crossVpc: { pod: string; extra: number }[] };
  await sleep(2000);
  const tFault = Date.now() / 1000;
  try {
    log(`${f.name}: fault`);
    note = await f.run();
    const settled = await noDrift(120);
    log(`${f.name}: no drift after ${settled.seconds ?? "—"} s (${settled.lines} lines left)`);
    await sleep(3000);
  } finally {
    result = await flows.stop();
  }
  const drift = await noDrift(60);
  const lost = result.flows.map((x) => x.lost.length);
  const untouched = result.flows.filter((x) => !x.nodes.some((n) => f.touches.includes(n)));
  const recovered = result.flows.map((x) => x.recoveredAt).filter((t): t is number => t !== undefined);
  return {
    fault: f.name,
    flows: result.flows.length,
    lost: lost.reduce((a, b) => a + b, 0),
    worst: Math.max(0, ...lost),
    untouched: untouched.reduce((n, x) => n + x.lost.length, 0),
    fullMatrixS: recovered.length === 0 ? "0 (no loss)" : (Math.max(...recovered) - tFault).toFixed(1),
    drift: drift.seconds !== undefined ? "none" : `${drift.lines} lines`,
    crossVpc: result.crossVpc.reduce((n, c) => n + c.extra, 0),
    note: note ?? "",
  };
}

async function main(): Promise<void> {
  const settings = await chooseSettings(process.argv.slice(2), log);
  await down();
  const rows: Row[] = [];
  try {
    await up(log, settings);
    const pods = await attachDemoPods();
    for (const f of faults()) {
      if (only !== undefined && !f.name.includes(only)) continue;
      const row = await measure(f, pods);
      log(JSON.stringify(row));
      rows.push(row);
    }
  } finally {
    await down();
    rmSync(clockFile, { force: true });
  }
  const t = table(
    ["fault", "flows", "lost", "worst flow", "lost elsewhere", "full matrix s", "drift after", "other VPC", "CNI calls / note"],
    rows.map((r) => [r.fault, String(r.flows), String(r.lost), String(r.worst), String(r.untouched), r.fullMatrixS, r.drift, String(r.crossVpc), r.note]),
  );
  process.stdout.write(t);
  if (only !== undefined) return;
  writeSection(
    repoRoot,
    `faults-${settings.encap}-ipv${settings.underlay}`,
    `## Fault campaign, ${describeSettings(settings)} (scripts/bench-faults.ts --encap ${settings.encap} --underlay ${settings.underlay})\n\n` +
      `The network-namespace lab (docs/lab.md) on this 2-core machine, ${new Date().toISOString().slice(0, 10)}; one fault at a time, each ` +
      "with an IPv4 ping every 10 ms on every flow (each ordered pair of pods of a VPC on different nodes). " +
      "*lost*: echo requests without a reply, all flows; *worst flow*: the most any one flow lost; *lost elsewhere*: on flows " +
      "between nodes the fault did not touch; *full matrix s*: from the fault to the first reply after the last loss; *drift " +
      "after*: `kubectl kvrf status` (objects vs GoBGP vs kernel, every node) once settled; *other VPC*: echo requests a pod " +
      "received beyond what its own VPC's flows sent it.\n\n```\n" +
      t +
      "```",
  );
}

await main();
