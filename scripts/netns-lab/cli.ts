// `scripts/lab up | status | demo | test | down` — see docs/lab.md.
import { execFileSync, spawnSync } from "node:child_process";
import * as k8s from "@kubernetes/client-node";
import { demoWorkloads, matrixPods, startWorkloads } from "./kubelet.js";
import { attachDemoPods, labDir, type AttachedPod, converge, down, kernelRoutes, kubeClient, kubectlKvrfCommand, labSettings, readState, reflectorFrrName, renderMatrix, speakerOf, up, usesFrr } from "./lab.js";
import { vtyshJson } from "./frr.js";
import { describeSettings, labNodes, underlayAddress, workers } from "./topology.js";
import { chooseSettings as choose } from "./settings.js";
import { copyFileSync, cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeClientCert, makePki } from "../../test/harness/pki.js";
import { cniBinDir, repoRoot, tool } from "../../test/harness/tools.js";
import type { BGPVRFInstance } from "../../shared/api-types.js";

const log = (s: string): void => void process.stdout.write(`${s}\n`);

/** The kubelet lab's demo: a Deployment per VPC created with kubectl; kubelet attaches the pods through kvrf. */
async function kubeletDemoPods(): Promise<AttachedPod[]> {
  const state = readState();
  if (state === undefined) throw new Error("the lab is not up");
  return matrixPods(await startWorkloads(labDir, state.kubeconfig, demoWorkloads, log));
}

async function status(): Promise<void> {
  const state = readState();
  if (state === undefined) {
    log("lab is down (scripts/lab up)");
    return;
  }
  log(`lab: ${describeSettings(labSettings(state))}`);
  const custom = kubeClient(state).makeApiClient(k8s.CustomObjectsApi);
  const list = (await custom.listClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpvrfinstances" })) as { items: BGPVRFInstance[] };
  for (const node of labNodes) {
    if (usesFrr(node, labSettings(state))) {
      await frrStatus(node);
      continue;
    }
    const s = await speakerOf(node.name).catch(() => undefined);
    if (s === undefined) {
      log(`${node.name}: gobgpd not answering`);
      continue;
    }
    try {
      const peers = await s.listPeers();
      const vrfs = await s.listVrfs();
      log(`${node.name} (${node.role}, ${underlayAddress(node, labSettings(state))}, gobgp ${s.api})`);
      log(`  BGP: ${peers.map((p) => `${p.address} ${p.state}`).join(", ") || "no peers"}`);
      for (const v of vrfs) {
        const paths = [...(await s.listVrfPaths(v.name, "ipv4")), ...(await s.listVrfPaths(v.name, "ipv6")), ...(await s.listVrfPaths(v.name, "evpn"))];
        const local = paths.filter((p) => p.local).length;
        const remote = paths.filter((p) => !p.local && p.best).length;
        const routes = await kernelRoutes(node.name, v.id);
        log(`  VRF ${v.name} table ${v.id}: ${local} local, ${remote} remote prefixes; ${routes.length} kernel routes`);
      }
      for (const o of list.items.filter((i) => i.spec.nodeName === node.name)) {
        const conds = (o.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ""}`).join(" ");
        log(`  ${o.metadata.name}: ${conds || "no status yet"}`);
      }
    } finally {
      s.close();
    }
  }
}

/** The FRR route reflector's sessions and what it holds per family (`show bgp summary json`). */
async function frrStatus(node: (typeof labNodes)[number]): Promise<void> {
  type Summary = Record<string, { peers?: Record<string, { state?: string; pfxRcd?: number; pfxSnt?: number }> } | undefined>;
  const summary = await vtyshJson<Summary>(reflectorFrrName, "show bgp summary json").catch((err: unknown) => err as Error);
  if (summary instanceof Error) {
    log(`${node.name}: FRR not answering (${summary.message})`);
    return;
  }
  log(`${node.name} (${node.role}, FRR, vtysh -N ${reflectorFrrName})`);
  for (const [family, s] of Object.entries(summary)) {
    const peers = Object.entries(s?.peers ?? {});
    log(`  ${family}: ${peers.map(([a, p]) => `${a} ${p.state ?? "?"} (${p.pfxRcd ?? 0} received, ${p.pfxSnt ?? 0} sent)`).join(", ") || "no peers"}`);
  }
}

async function demo(args: readonly string[]): Promise<void> {
  const settings = await choose(args, log);
  await up(log, settings);
  const t0 = Date.now();
  const pods = settings.runtime === "kubelet" ? await kubeletDemoPods() : await attachDemoPods();
  log(`\n${settings.runtime === "kubelet" ? "kubelet attached" : "attached"} ${pods.length} pods in ${Date.now() - t0} ms:`);
  for (const p of pods) log(`  ${p.name.padEnd(9)} VPC ${p.vpc} on ${p.node}: ${p.ipv4}, ${p.ipv6}`);
  const { ms, cells } = await converge(pods);
  log(`\nconnectivity over ${describeSettings(settings)} (ping, IPv4 and IPv6), ${Number.isNaN(ms) ? "NOT converged after 120 s" : `converged ${ms} ms after the last pod was attached`}:\n`);
  log(renderMatrix(pods, cells));
  const iad = workers[0]?.name ?? "iad";
  const how = settings.encap === "srv6" ? "encapsulated to the remote attachment SIDs" : "via the remote VTEPs on the VPC's VXLAN device";
  log(`\nVPC a1's remote prefixes in ${iad}'s kernel (table 161, ${how}):`);
  for (const r of await kernelRoutes(iad, 0xa1)) log(`  ${r}`);
  if (Number.isNaN(ms) || cells.some((c) => c.ok !== c.expected)) process.exitCode = 1;
  log("\nscripts/lab status | scripts/lab down");
}

/** PKI and kubeconfig for the containerlab topology (API server at 172.31.255.10:6443). */
function containerlabPki(dir: string): void {
  const pki = makePki(path.resolve(dir), ["DNS:localhost", "IP:127.0.0.1", "IP:172.31.255.10"]);
  const admin = makeClientCert(pki, "admin", "kvrf-admin", ["system:masters"]);
  // Inside the containers the PKI is mounted at /etc/kvrf/pki.
  const inC = (f: string): string => `/etc/kvrf/pki/${path.basename(f)}`;
  const kubeconfig = (server: string, file: (f: string) => string): string =>
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "kvrf-clab", cluster: { server, "certificate-authority": file(pki.caCert) } }],
      users: [{ name: "kvrf-admin", user: { "client-certificate": file(admin.cert), "client-key": file(admin.key) } }],
      contexts: [{ name: "kvrf-clab", context: { cluster: "kvrf-clab", user: "kvrf-admin" } }],
      "current-context": "kvrf-clab",
    }, null, 2);
  writeFileSync(path.join(pki.dir, "admin.kubeconfig"), kubeconfig("https://172.31.255.10:6443", (f) => path.resolve(f)));
  // The lab's nodes use the admin identity; a cluster uses the DaemonSet's (docs/deploy.md).
  writeFileSync(path.join(pki.dir, "kvrf.kubeconfig"), kubeconfig("https://172.31.255.10:6443", inC));
  writeFileSync(
    path.join(pki.dir, "control-plane.sh"),
    `#!/bin/sh
# Runs etcd and kube-apiserver in the containerlab "api" node (flags as test/harness/apiserver.ts).
etcd --data-dir=/var/lib/etcd --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:2380 &
exec kube-apiserver --etcd-servers=http://127.0.0.1:2379 --secure-port=6443 --bind-address=0.0.0.0 --advertise-address=172.31.255.10 \
  --tls-cert-file=${inC(pki.serverCert)} --tls-private-key-file=${inC(pki.serverKey)} --client-ca-file=${inC(pki.caCert)} \
  --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
  --service-account-issuer=https://172.31.255.10:6443/ --service-account-key-file=${inC(pki.saPub)} --service-account-signing-key-file=${inC(pki.saKey)}
`,
    { mode: 0o755 },
  );
  log(`PKI, kubeconfigs and control-plane.sh in ${pki.dir}`);
}

/** The build context of containerlab/Dockerfile: this repository's artifacts and pinned binaries. */
function containerlabContext(dir: string): void {
  const out = path.resolve(dir);
  rmSync(out, { recursive: true, force: true });
  for (const d of ["bin", "dist", "cni"]) mkdirSync(path.join(out, d), { recursive: true });
  for (const f of ["kvrf", "kvrfd", "kvrf-install", "package.json"]) copyFileSync(path.join(repoRoot, "dist", f), path.join(out, "dist", f));
  for (const t of ["kube-apiserver", "etcd", "kubectl", "gobgpd4", "gobgp4", "cnitool"] as const) {
    copyFileSync(tool(t), path.join(out, "bin", t.replace(/4$/, "")));
  }
  for (const p of ["host-local", "loopback"]) copyFileSync(path.join(cniBinDir(), p), path.join(out, "bin", p));
  cpSync(path.join(repoRoot, "containerlab/cni"), path.join(out, "cni"), { recursive: true });
  copyFileSync(path.join(repoRoot, "containerlab/Dockerfile"), path.join(out, "Dockerfile"));
  log(`docker build -t kvrf/lab-node:dev ${out}`);
}

async function main(): Promise<void> {
  const cmd = process.argv[2] ?? "help";
  switch (cmd) {
    case "up":
      await up(log, await choose(process.argv.slice(3), log));
      return;
    case "down":
      await down(log);
      log("lab removed");
      return;
    case "status":
      await status();
      return;
    case "demo":
      await demo(process.argv.slice(3));
      return;
    case "pki":
      containerlabPki(process.argv[3] ?? "containerlab/pki");
      return;
    case "clab-context":
      containerlabContext(process.argv[3] ?? ".clab-build");
      return;
    case "kvrf": {
      if (readState() === undefined) throw new Error("lab is down (scripts/lab up)");
      const [cmd, argv] = kubectlKvrfCommand(process.argv.slice(3));
      const r = spawnSync(cmd, argv, { stdio: "inherit" });
      process.exitCode = r.status ?? 2;
      return;
    }
    case "test":
      execFileSync("scripts/test", ["lab"], { cwd: repoRoot, stdio: "inherit" });
      return;
    default:
      log("usage: scripts/lab up|demo [--encap srv6|vxlan|auto] [--underlay 4|6] [--reflector gobgpd|frr] [--fabric ibgp|ebgp] [--kubelet] | status | kvrf ARGS (kubectl kvrf in the lab) | test | down | pki DIR | clab-context DIR");
      process.exitCode = cmd === "help" ? 0 : 2;
  }
}

await main();
