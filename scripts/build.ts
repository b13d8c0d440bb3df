// Builds the two artifacts and prints what it built:
//   dist/kvrf   the CNI plugin as a Node single-executable application (no Node needed on the host)
//   dist/kvrfd  the node daemon as one CommonJS bundle run by Node
// Usage: tsx scripts/build.ts [--no-sea]
import { build, type BuildOptions, type Metafile } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "postject";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
const version = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
// The SEA fuse every Node binary carries; postject flips it when the blob is injected.
const seaFuse = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export const common: BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node24",
  format: "cjs",
  minify: true,
  keepNames: true,
  legalComments: "none",
  // ESM-only dependencies (yargs) call createRequire(import.meta.url), which a CommonJS bundle
  // does not have: give them the bundle's own file URL.
  define: { "process.env.KVRF_VERSION": JSON.stringify(version), "import.meta.url": "__kvrfImportMetaUrl" },
  banner: { js: 'var __kvrfImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: "warning",
  metafile: true,
};

function size(file: string): string {
  const bytes = statSync(file).size;
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

async function bundle(entry: string, outfile: string, shebang?: string): Promise<Metafile> {
  const js = [shebang, common.banner?.["js"]].filter((l) => l !== undefined).join("\n");
  const r = await build({ ...common, entryPoints: [path.join(root, entry)], outfile, banner: { js } });
  return r.metafile ?? { inputs: {}, outputs: {} };
}

/**
 * Packages kept out of dist/kvrfd. V8 parses the whole bundle at start, so even code that never
 * runs costs memory (measured: client-node bundled behind a lazy import() +28 MiB of RSS, the
 * full zod +14 MiB; docs/kvrfd.md "Memory"). kvrfd has its own Kubernetes transport and uses zod/mini.
 */
export const keptOutOfKvrfd: readonly { pattern: RegExp; why: string }[] = [
  { pattern: /node_modules\/@kubernetes\/client-node\//, why: "kvrfd talks to the API server through reconciler/kube-client.ts (import only types from client-node)" },
  { pattern: /node_modules\/undici\//, why: "client-node's HTTP stack; kvrfd uses node:https" },
  { pattern: /node_modules\/zod\/v4\/classic\//, why: 'import "zod/mini", not "zod"' },
];

/** The inputs of a bundle that must not be in it, with the reason; empty when it is clean. */
export function forbiddenInputs(meta: Metafile, rules = keptOutOfKvrfd): string[] {
  const found = new Map<string, string>();
  for (const input of Object.keys(meta.inputs)) {
    for (const r of rules) if (r.pattern.test(input) && !found.has(r.why)) found.set(r.why, input);
  }
  return [...found].map(([why, input]) => `${input}: ${why}`);
}

/** Turns a CJS bundle into a single executable: blob (with V8 code cache) injected into a copy of node. */
async function makeSea(bundleFile: string, output: string): Promise<void> {
  const blob = `${output}.blob`;
  const seaConfig = `${output}.sea.json`;
  writeFileSync(
    seaConfig,
    JSON.stringify({ main: bundleFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false }),
  );
  // The blob and its code cache must come from the very Node binary it is injected into.
  execFileSync(process.execPath, ["--experimental-sea-config", seaConfig], { stdio: ["ignore", "ignore", "inherit"] });
  // Made under a temporary name and renamed over the old one: a run of the old executable (a test
  // calling dist/kvrf while this builds) never finds a plain node, or half a file, at its path.
  const tmp = `${output}.building`;
  rmSync(tmp, { force: true });
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  try {
    // Symbols are ~15% of node's size and never used by the plugin.
    execFileSync("strip", ["--strip-all", tmp], { stdio: "ignore" });
  } catch {
    process.stderr.write("build: `strip` not available, dist/kvrf keeps node's debug symbols\n");
  }
  await inject(tmp, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: seaFuse });
  renameSync(tmp, output);
  rmSync(blob);
  rmSync(seaConfig);
}

async function main(): Promise<void> {
  const noSea = process.argv.includes("--no-sea");
  mkdirSync(dist, { recursive: true });
  // The bundles are CommonJS; without this, Node would read the extensionless dist/kvrfd as ESM
  // (the repository's package.json says "type": "module").
  writeFileSync(path.join(dist, "package.json"), JSON.stringify({ type: "commonjs" }) + "\n");
  const rows: [string, string][] = [];

  const kvrfBundle = path.join(dist, "kvrf.cjs");
  await bundle("cni/main.ts", kvrfBundle);
  rows.push(["dist/kvrf.cjs (bundle)", size(kvrfBundle)]);
  if (!noSea) {
    await makeSea(kvrfBundle, path.join(dist, "kvrf"));
    rows.push([`dist/kvrf (single executable, node ${process.version})`, size(path.join(dist, "kvrf"))]);
  }

  const kvrfd = path.join(dist, "kvrfd");
  const kvrfdMeta = await bundle("reconciler/main.ts", kvrfd, "#!/usr/bin/env node");
  const forbidden = forbiddenInputs(kvrfdMeta);
  if (forbidden.length > 0) throw new Error(`dist/kvrfd must not bundle these (each MB of bundle is memory):\n  ${forbidden.join("\n  ")}`);
  chmodSync(kvrfd, 0o755);
  rows.push(["dist/kvrfd (bundle, runs on node ≥24)", size(kvrfd)]);

  // The DaemonSet's init container: installs kvrf, its token and kubeconfig onto the host.
  const install = path.join(dist, "kvrf-install");
  await bundle("cni/install/main.ts", install, "#!/usr/bin/env node");
  chmodSync(install, 0o755);
  rows.push(["dist/kvrf-install (bundle, runs on node ≥24)", size(install)]);

  // `kubectl kvrf`: operators' machines have no Node 24, so it is a single executable like kvrf.
  const kubectlBundle = path.join(dist, "kubectl-kvrf.cjs");
  await bundle("reconciler/kubectl/cli.ts", kubectlBundle);
  rows.push(["dist/kubectl-kvrf.cjs (bundle)", size(kubectlBundle)]);
  if (!noSea) {
    await makeSea(kubectlBundle, path.join(dist, "kubectl-kvrf"));
    rows.push([`dist/kubectl-kvrf (single executable, node ${process.version})`, size(path.join(dist, "kubectl-kvrf"))]);
  }

  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, s] of rows) process.stdout.write(`${name.padEnd(width)}  ${s.padStart(10)}\n`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
