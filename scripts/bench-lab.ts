// Convergence times of the lab's scenarios (docs/lab.md), each run --runs times (default 3):
// median and max, printed and written to docs/benchmarks.md (one section per encapsulation and
// underlay family). Root only.
// Usage: tsx scripts/bench-lab.ts [--runs N] [--encap srv6|vxlan|auto] [--underlay 4|6]
import { attachDemoPods, attachPod, converge, crashGobgpd, detachPod, down, kernelRoutes, pidfiles, restartDaemon, up, type AttachedPod } from "./netns-lab/lab.js";
import { quantile, table } from "./lib/stats.js";
import { writeSection } from "./lib/report.js";
import { repoRoot } from "../test/harness/tools.js";
import { chooseSettings } from "./netns-lab/settings.js";
import { describeSettings } from "./netns-lab/topology.js";

const runsFlag = process.argv.indexOf("--runs");
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 3;

async function converged(pods: AttachedPod[]): Promise<number> {
  const { ms, cells } = await converge(pods, 120_000);
  if (Number.isNaN(ms)) throw new Error(`not converged: ${JSON.stringify(cells.filter((c) => c.ok !== c.expected))}`);
  return ms;
}

async function main(): Promise<void> {
  const settings = await chooseSettings(process.argv.slice(2), (s) => void process.stderr.write(`${s}\n`));
  const samples = new Map<string, number[]>();
  const add = (k: string, v: number): void => void samples.set(k, [...(samples.get(k) ?? []), v]);
  await down();
  try {
    for (let run = 0; run < runs; run++) {
      const t0 = Date.now();
      await up(undefined, settings);
      add("lab up (control plane, 4 nodes, BGP sessions)", Date.now() - t0);
      const t1 = Date.now();
      const pods = await attachDemoPods();
      add("6 pods attached (sequential cnitool ADDs)", Date.now() - t1);
      add("first full matrix after the last ADD", await converged(pods));

      const gone = pods.find((p) => p.name === "a1-dfw");
      if (gone === undefined) throw new Error("no a1-dfw");
      const t2 = Date.now();
      await detachPod(gone);
      for (;;) {
        const left = [...(await kernelRoutes("iad", 0xa1)), ...(await kernelRoutes("sjc", 0xa1))].filter((r) => r.startsWith(`${gone.ipv4} `) || r.startsWith(`${gone.ipv6} `));
        if (left.length === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      add("pod DEL → its prefixes gone from remote kernels", Date.now() - t2);
      pods.splice(pods.indexOf(gone), 1, await attachPod(gone));
      await converged(pods);

      let t = Date.now();
      await crashGobgpd("sjc", 0);
      add("worker gobgpd kill -9 + restart → full matrix", (Date.now() - t) + (await converged(pods)));
      t = Date.now();
      await crashGobgpd("rr", 0);
      add("route reflector kill -9 + restart → full matrix", (Date.now() - t) + (await converged(pods)));
      t = Date.now();
      await restartDaemon(pidfiles.kvrfd("iad"), "SIGTERM", 0);
      add("kvrfd restart → full matrix", (Date.now() - t) + (await converged(pods)));
      t = Date.now();
      await restartDaemon(pidfiles.apiserver(), "SIGTERM", 0);
      add("API server restart → full matrix", (Date.now() - t) + (await converged(pods)));
      await down();
      process.stderr.write(`run ${run + 1}/${runs} done\n`);
    }
  } finally {
    await down();
  }
  const rows = [...samples].map(([k, v]) => [k, quantile(v, 0.5).toFixed(0), Math.max(...v).toFixed(0), String(v.length)]);
  const t = table(["scenario", "median ms", "max ms", "runs"], rows);
  process.stdout.write(t);
  const section = settings.encap === "srv6" ? "lab" : `lab-vxlan-ipv${settings.underlay}`;
  writeSection(
    repoRoot,
    section,
    `## Lab convergence, ${describeSettings(settings)} (scripts/bench-lab.ts --encap ${settings.encap} --underlay ${settings.underlay})\n\nThe network-namespace lab (docs/lab.md) on this 2-core machine, ${runs} runs, ${new Date().toISOString().slice(0, 10)}. ` +
      "\"Full matrix\" means every ordered pod pair answers a ping (IPv4 and IPv6) exactly when the VPCs allow it; times include the restart itself.\n\n```\n" +
      t +
      "```",
  );
}

await main();
