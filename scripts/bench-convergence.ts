// Convergence of one VRF across nodes in steady state: a BGPVRFInstance created (then deleted) on
// worker `a` → its path best in a's gobgpd, in the route reflector's, in b's, and the seg6 route in
// b's kernel (added, then removed). The reference is BGP itself: the time to b's gobgpd is what
// the speakers take; what follows is kvrfd on b (the RIB event, --rib-debounce, the reconcile, the
// kernel write). Real kube-apiserver, gobgpd 4.x and kvrfd in network namespaces (root required).
// Usage: tsx scripts/bench-convergence.ts [--rounds 10] [--no-write]
// Prints the table and writes it into docs/benchmarks.md (section "convergence") unless --no-write.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { GoBgpService, WatchEventRequest_Table_Filter_Type } from "../proto/gen/api/gobgp_pb.js";
import { createUnixGrpcTransport } from "../shared/gobgp/transport.js";
import { startFabric } from "../test/harness/kvrfd.js";
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
const rounds = Number(arg("rounds", "10"));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Calls back with (prefix, withdraw) for every VPN best-path change in a gobgpd. */
function watchBest(socket: string, signal: AbortSignal, on: (prefix: string, withdraw: boolean) => void): void {
  const client = createClient(GoBgpService, createUnixGrpcTransport(socket));
  void (async () => {
    try {
      for await (const e of client.watchEvent({ table: { filters: [{ type: WatchEventRequest_Table_Filter_Type.BEST, init: false }] } }, { signal })) {
        if (e.event.case !== "table") continue;
        for (const p of e.event.value.paths) {
          const n = p.nlri?.nlri;
          if (n?.case === "labeledVpnIpPrefix") on(`${n.value.prefix}/${n.value.prefixLen}`, p.isWithdraw);
        }
      }
    } catch {
      // aborted at the end of the round
    }
  })();
}

type Stage = "a" | "rr" | "b" | "kernel";

runFabricBench("bench-convergence", async (dir, cp) => {
  const add: Record<Stage, number[]> = { a: [], rr: [], b: [], kernel: [] };
  const del: Record<Stage, number[]> = { a: [], rr: [], b: [], kernel: [] };
  const f = await startFabric({ label: "cv", gobgpd: tool("gobgpd4"), kubeconfig: cp.kubeconfig, dir, workers: ["a", "b"], logLevel: "info" });
  try {
    const a = f.worker("a");
    const b = f.worker("b");
    // Sessions up and the first replay over before measuring.
    await sleep(8000);
    for (let r = 0; r < rounds; r++) {
      const vpc = (0x200 + r).toString(16);
      const prefix = `10.1.${r}.1/32`;
      await f.putVrf("b", vpc, 0x200 + r, [{ id: 1, prefixes: [`10.2.${r}.1/32`] }]);
      await sleep(1500);
      const ac = new AbortController();
      const seen = { add: new Map<Stage, number>(), del: new Map<Stage, number>() };
      const mark = (stage: Stage) => (p: string, gone: boolean) => {
        if (p !== prefix) return;
        const m = gone ? seen.del : seen.add;
        if (!m.has(stage)) m.set(stage, Date.now());
      };
      watchBest(a.gobgpd.socket, ac.signal, mark("a"));
      watchBest(f.rr.gobgpd.socket, ac.signal, mark("rr"));
      watchBest(b.gobgpd.socket, ac.signal, mark("b"));
      const kernel = watchKvrfdRoutes(b.netns.name, ({ prefix: p, deleted }) => mark("kernel")(p, deleted));
      await sleep(300);
      const t0 = Date.now();
      await f.putVrf("a", vpc, 0x200 + r, [{ id: 1, prefixes: [prefix] }]);
      for (let i = 0; i < 100 && !seen.add.has("kernel"); i++) await sleep(50);
      await sleep(300);
      const t1 = Date.now();
      await f.deleteVrf("a", vpc);
      for (let i = 0; i < 100 && !seen.del.has("kernel"); i++) await sleep(50);
      ac.abort();
      kernel.stop();
      for (const s of ["a", "rr", "b", "kernel"] as const) {
        add[s].push((seen.add.get(s) ?? Number.NaN) - t0);
        del[s].push((seen.del.get(s) ?? Number.NaN) - t1);
      }
      await f.deleteVrf("b", vpc);
    }
  } finally {
    await f.stop();
  }
  const fmt = (xs: number[]): string => `${quantile(xs, 0.5).toFixed(0)}/${Math.max(...xs).toFixed(0)}`;
  const row = (label: string, s: Stage): string[] => [label, fmt(add[s]), fmt(del[s])];
  const share = (m: Record<Stage, number[]>): string => {
    const k = quantile(m.kernel, 0.5);
    return `${(((k - quantile(m.b, 0.5)) / k) * 100).toFixed(0)} %`;
  };
  const t = table(
    ["from the API write to", "create p50/max ms", "delete p50/max ms"],
    [
      row("best path in a's gobgpd (kvrfd on a)", "a"),
      row("best path in the reflector", "rr"),
      row("best path in b's gobgpd (reference: BGP)", "b"),
      row("route in b's kernel (kvrfd on b)", "kernel"),
      ["kvrfd on b, share of the total (p50)", share(add), share(del)],
    ],
  );
  const os = await import("node:os");
  const head = `${rounds} rounds, gobgpd 4.8, node ${process.version}, ${os.cpus().length} CPUs, default kvrfd flags; ${new Date().toISOString().slice(0, 10)}.`;
  process.stdout.write(`${head}\n\n${t}`);
  if (!process.argv.includes("--no-write")) {
    const file = writeSection(root, "convergence", `## Convergence of one VRF (scripts/bench-convergence.ts)\n\n${head}\n\n\`\`\`\n${t}\`\`\``);
    process.stderr.write(`bench: results written to ${path.relative(root, file)} (section convergence)\n`);
  }
});
