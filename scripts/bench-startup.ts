// Size and startup time of the CNI executable, next to a bare start of the same Node.
// Startup matters: containerd ≥2.0.1 runs CNI STATUS every ~5 s, and kubelet runs ADD/DEL per pod.
// Usage: tsx scripts/bench-startup.ts [--runs N]   (after `npm run build`)
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { quantile, table } from "./lib/stats.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const runsFlag = process.argv.indexOf("--runs");
const runs = runsFlag > 0 ? Number(process.argv[runsFlag + 1]) : 20;
const kvrf = path.join(root, "dist/kvrf");
const bundle = path.join(root, "dist/kvrf.cjs");
if (!existsSync(kvrf)) throw new Error(`${kvrf} not found: run \`npm run build\` first`);

interface Case {
  name: string;
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}
const versionEnv = { CNI_COMMAND: "VERSION" };
const cases: Case[] = [
  { name: `node -e 0 (${process.version}, reference)`, cmd: process.execPath, args: ["-e", "0"], env: {} },
  { name: "node dist/kvrf.cjs VERSION", cmd: process.execPath, args: [bundle], env: versionEnv },
  { name: "dist/kvrf VERSION (SEA, env -i)", cmd: kvrf, args: [], env: versionEnv },
];

function timeOnce(c: Case): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(c.cmd, c.args, { env: c.env, stdio: ["ignore", "pipe", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stdout.toString()}${r.stderr.toString()}`);
  return ms;
}

// Interleave the cases so a drifting machine affects all of them alike; one warm-up each.
const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
for (const c of cases) timeOnce(c);
for (let i = 0; i < runs; i++) for (const c of cases) samples.get(c.name)?.push(timeOnce(c));

const ref = quantile(samples.get(cases[0]?.name ?? "") ?? [], 0.5);
process.stdout.write(`dist/kvrf size: ${(statSync(kvrf).size / (1 << 20)).toFixed(1)} MiB; ${runs} runs each, interleaved\n\n`);
process.stdout.write(
  table(
    ["command", "median ms", "p95 ms", "min ms", "× reference"],
    cases.map((c) => {
      const s = samples.get(c.name) ?? [];
      const med = quantile(s, 0.5);
      return [c.name, med.toFixed(1), quantile(s, 0.95).toFixed(1), Math.min(...s).toFixed(1), (med / ref).toFixed(2)];
    }),
  ),
);
