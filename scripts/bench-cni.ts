// CNI ADD/DEL latency of dist/kvrf against the reference bridge + host-local plugins and a bare
// start of the same Node, all exec'd the way libcni does (env + stdin) inside a namespace that
// plays the node, against a real API server. Also: API round trips per ADD and where ADD's time
// goes (from the plugin's own log). Root only; run after `npm run build` and `scripts/test-env ensure`.
// Usage: tsx scripts/bench-cni.ts [--pods N]
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { startApiBridge } from "../test/harness/api-bridge.js";
import { startControlPlane } from "../test/harness/apiserver.js";
import { CniNode, runPlugin } from "../test/harness/cni.js";
import { cleanupNetns, createNetns, type Netns } from "../test/harness/netns.js";
import { cniBinDir, repoRoot, testEnvDir, tool } from "../test/harness/tools.js";
import { quantile, table } from "./lib/stats.js";
import { writeSection } from "./lib/report.js";

const podsFlag = process.argv.indexOf("--pods");
const pods = podsFlag > 0 ? Number(process.argv[podsFlag + 1]) : 50;

function timed(fn: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<number> {
  const t0 = performance.now();
  return fn().then((r) => {
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout}${r.stderr}`);
    return performance.now() - t0;
  });
}

function execIn(netns: string, cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile("ip", ["netns", "exec", netns, cmd, ...args], { encoding: "utf8" }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : 1, stdout, stderr }),
    ),
  );
}

async function main(): Promise<void> {
  const dir = path.join(testEnvDir, "run", `bench-cni-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cp = await startControlPlane({ dir: path.join(dir, "cp") });
  const netnses: Netns[] = [];
  try {
    execFileSyncOk("kubectl", ["--kubeconfig", cp.kubeconfig, "apply", "--server-side", "-f", path.join(repoRoot, "manifests/crds")]);
    execFileSyncOk("kubectl", ["--kubeconfig", cp.kubeconfig, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
    const node = await createNetns("bench-node");
    netnses.push(node);
    const bridge = await startApiBridge(cp.url, dir);
    await bridge.into(node.name);
    const kubeconfig = bridge.nsKubeconfig(cp.kubeconfig, path.join(dir, "kvrf.kubeconfig"));
    const cni = new CniNode({ netns: node.name, dir });
    const logFile = path.join(dir, "kvrf.log");
    const kvrfConf = {
      cniVersion: "1.1.0",
      name: "bench",
      type: "kvrf",
      vpc: "beef",
      srv6Locator: "fd00:0:a::/48",
      kubeconfig,
      nodeName: "bench",
      asn: 65000,
      stateDir: path.join(dir, "state"),
      logFile,
      ipam: cni.hostLocal([[{ subnet: "10.8.0.0/16" }], [{ subnet: "fd80::/64" }]], "kvrf"),
    };
    const bridgeConf = {
      cniVersion: "1.1.0",
      name: "bench-bridge",
      type: "bridge",
      bridge: "kvbench0",
      isGateway: true,
      ipam: cni.hostLocal([[{ subnet: "10.9.0.0/16" }], [{ subnet: "fd90::/64" }]], "bridge"),
    };
    const pool = await Promise.all(Array.from({ length: pods }, (_, i) => createNetns(`b${i}`)));
    netnses.push(...pool);
    // A resident pod keeps the VPC on the node, as in a running cluster (and without kvrfd here,
    // deleting the VPC's last attachment would leave its object waiting on kvrfd's finalizer).
    const resident = await createNetns("resident");
    netnses.push(resident);
    const residentVars = { containerId: "resident", podNetns: resident.path, ifName: "eth0" };
    const r = await runPlugin(cni, node.name, "ADD", kvrfConf, residentVars);
    if (r.code !== 0) throw new Error(`resident ADD: ${r.stdout}`);
    rmSync(logFile, { force: true });

    const samples: Record<string, number[]> = { bare: [], kvrfAdd: [], kvrfDel: [], refAdd: [], refDel: [], nsexec: [] };
    for (const [i, pod] of pool.entries()) {
      samples["nsexec"]?.push(await timed(() => execIn(node.name, "true", [])));
      samples["bare"]?.push(await timed(() => execIn(node.name, process.execPath, ["-e", "0"])));
      const vars = { containerId: `c${i}`, podNetns: pod.path, ifName: "eth0" };
      samples["kvrfAdd"]?.push(await timed(() => runPlugin(cni, node.name, "ADD", kvrfConf, vars)));
      samples["refAdd"]?.push(await timed(() => runPlugin(cni, node.name, "ADD", bridgeConf, { ...vars, ifName: "eth1" })));
    }
    for (const [i, pod] of pool.entries()) {
      const vars = { containerId: `c${i}`, podNetns: pod.path, ifName: "eth0" };
      samples["kvrfDel"]?.push(await timed(() => runPlugin(cni, node.name, "DEL", kvrfConf, vars)));
      samples["refDel"]?.push(await timed(() => runPlugin(cni, node.name, "DEL", bridgeConf, { ...vars, ifName: "eth1" })));
    }

    const adds = readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes('"msg":"attached"'))
      .map((l) => JSON.parse(l) as { ms: number; apiRoundTrips: number; phaseMs: Record<string, number> });
    const bare = quantile(samples["bare"] ?? [], 0.5);
    const row = (name: string, key: string): string[] => {
      const s = samples[key] ?? [];
      const med = quantile(s, 0.5);
      return [name, med.toFixed(1), quantile(s, 0.95).toFixed(1), (med / bare).toFixed(2)];
    };
    const out: string[] = [];
    const emit = (t: string): void => {
      out.push(t);
      process.stdout.write(t);
    };
    emit(`CNI latency, ${pods} pods, sequential, each run via \`ip netns exec\` in the node namespace (Node ${process.version}, ${cniBinDir()})\n\n`);
    emit(
      table(
        ["operation", "median ms", "p95 ms", "× bare node"],
        [
          row("ip netns exec true (harness floor)", "nsexec"),
          row("node -e 0 (bare start, reference)", "bare"),
          row("kvrf ADD", "kvrfAdd"),
          row("bridge + host-local ADD (reference)", "refAdd"),
          row("kvrf DEL", "kvrfDel"),
          row("bridge + host-local DEL (reference)", "refDel"),
        ],
      ),
    );
    const trips = adds.map((a) => a.apiRoundTrips);
    emit(`\nAPI round trips per ADD: ${Math.min(...trips)}–${Math.max(...trips)} (asn in the config)\n\n`);
    const phases = ["startup", "config", "claim", "ipam", "kernel", "publish"];
    emit(
      table(
        ["ADD phase (plugin's own clock)", "median ms", "p95 ms"],
        phases.map((p) => {
          const v = adds.map((a) => a.phaseMs[p] ?? 0);
          return [p, quantile(v, 0.5).toFixed(1), quantile(v, 0.95).toFixed(1)];
        }),
      ),
    );
    const target = bare * 2.5 + quantile(adds.map((a) => a.phaseMs["publish"] ?? 0), 0.5);
    emit(`\ntarget: ADD median ≤ 2.5 × bare start + one API round trip (publish) = ${target.toFixed(1)} ms; measured ${quantile(samples["kvrfAdd"] ?? [], 0.5).toFixed(1)} ms\n`);
    writeSection(
      repoRoot,
      "cni",
      `## CNI ADD/DEL latency (scripts/bench-cni.ts)\n\n${new Date().toISOString().slice(0, 10)}, this 2-core machine. Phases: \`startup\` is the process's age when ADD begins (Node bootstrap + bundle load with the code cache); the claim runs concurrently with IPAM and the kernel work.\n\n\`\`\`\n${out.join("")}\`\`\`\n`,
    );
    await runPlugin(cni, node.name, "DEL", kvrfConf, residentVars);
    await bridge.close();
  } finally {
    await cleanupNetns();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function execFileSyncOk(cmd: "kubectl", args: string[]): void {
  execFileSync(tool(cmd), args, { stdio: ["ignore", "ignore", "inherit"] });
}

await main();
