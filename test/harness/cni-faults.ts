// A node for the CNI plugin's bad-input and fault-injection suites: a namespace playing the node,
// dist/kvrf run in it directly (env + stdin, the way libcni execs a plugin), the real API server
// behind a proxy that can misbehave (api-faults.ts), `ip` behind a double that can die
// (fault-ip.ts), an IPAM double that delegates to host-local (fault-ipam.ts), and the checks of
// the property every run must keep:
//   - stdout carries exactly one answer: a result (ADD, VERSION) or nothing (other verbs) with
//     exit status 0, or one CNI error JSON with a known code (never 999), a message, no stack
//     trace, and exit status 1; the process exits by itself, promptly, never by a signal;
//   - after a failed ADD (and after a successful one and its DEL) nothing is left: no interface,
//     rule or kvrf route in the node's kernel, no interface in the pod, no IPAM lease, no
//     BGPVRFInstance entry, no route-target or VNI hold, no hold marker in the state directory.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { expect } from "vitest";
import { ApiFaultProxy } from "./api-faults.js";
import { startNsForwarder } from "./api-bridge.js";
import { FaultIp } from "./fault-ip.js";
import { createNetns, type Netns } from "./netns.js";
import type { Daemon } from "./process.js";
import { cniBinDir, repoRoot, testEnvDir } from "./tools.js";
import type { BaseConfig } from "./variants.js";
import { bgpVrfInstance, group, nodeLabel, nodeLabelValue, routeTargetClaim, version, vniClaim, vpcLabel } from "../../shared/api-types.js";

/** CNI error codes the plugin may answer with (docs/cni-config.md); 999 means a bug. */
export const knownCodes: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 103, 104]);
/** A stack trace line as V8 and Go print them. */
export const stackTrace = /\n\s+at .+[(\s].*:\d+(:\d+)?\)?|goroutine \d+ \[|\.go:\d+ \+0x/;

/** The plugin under test: dist/kvrf, or KVRF_TOOL_KVRF (as tools.ts overrides tools). */
export function pluginBinary(): string {
  return process.env["KVRF_TOOL_KVRF"] || path.join(repoRoot, "dist/kvrf");
}

export interface PluginRun {
  verb: string;
  /** Exit status; null when a signal ended it. */
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunEnv {
  containerId?: string;
  /** CNI_NETNS (a path). */
  netns?: string;
  ifName?: string;
  args?: string;
  /** CNI_PATH; default: the node's bin dir and the reference plugins. */
  cniPath?: string;
  /** Replaces the whole CNI_* environment (property tests). */
  raw?: Record<string, string>;
}

/** An IPAM double's behaviour for one verb (fault-ipam.ts). */
export interface IpamFault {
  delayMs?: number;
  then: "pass" | "error" | "crash" | "lease-then-crash" | "lease-then-garbage";
  code?: number;
  garbage?: string;
}


function crdsApplied(kc: k8s.KubeConfig): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const crdDir = path.join(repoRoot, "manifests/crds");
  return (async () => {
    const names: string[] = [];
    for (const f of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
      const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(path.join(crdDir, f), "utf8"));
      await objects.patch(crd, undefined, undefined, "kvrf-test", true, k8s.PatchStrategy.ServerSideApply);
      if (crd.metadata?.name !== undefined) names.push(crd.metadata.name);
    }
    const deadline = Date.now() + 30_000;
    for (const name of names) {
      for (;;) {
        const c = await ext.readCustomResourceDefinition({ name });
        if (c.status?.conditions?.some((x) => x.type === "Established" && x.status === "True")) break;
        if (Date.now() > deadline) throw new Error(`CRD ${name} not established`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
}

interface Listed {
  metadata: { name: string; deletionTimestamp?: string; finalizers?: string[]; labels?: Record<string, string> };
  spec?: { attachments?: unknown[]; holders?: { node?: string }[] };
}

/**
 * The kernel's own rules, never kvrf's: local/main/default, and the l3mdev rule the VRF driver adds
 * with a namespace's first VRF device and keeps for good (deleting it would break VRF lookups).
 */
function kernelRule(line: string): boolean {
  return /^(0|32766|32767):/.test(line) || /^1000:\s+from all lookup \[l3mdev-table\]/.test(line);
}

export class FaultNode {
  readonly binDir: string;
  readonly stateDir: string;
  readonly logFile: string;
  /** The plugin's kubeconfig: the API server through the fault proxy. */
  readonly kubeconfig: string;
  readonly ipamDir: string;
  private readonly custom: k8s.CustomObjectsApi;
  /** Pod namespaces made here (and not deleted by a test). */
  private readonly pods = new Set<Netns>();
  /** Interfaces of the node itself (a variant's prepareNode), not left behind by anyone. */
  private readonly own = new Set<string>(["lo"]);

  private constructor(
    readonly nodeName: string,
    readonly dir: string,
    readonly node: Netns,
    readonly api: ApiFaultProxy,
    readonly ip: FaultIp,
    private readonly forwarder: Daemon,
    kc: k8s.KubeConfig,
  ) {
    this.binDir = path.join(dir, "bin");
    this.stateDir = path.join(dir, "state");
    this.logFile = path.join(dir, "kvrf.log");
    this.kubeconfig = path.join(dir, "kvrf.kubeconfig");
    this.ipamDir = path.join(dir, "ipam");
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /** `adminKubeconfig`: the integration tier's (inject("kubeconfig")). */
  static async start(label: string, nodeName: string, adminKubeconfig: string): Promise<FaultNode> {
    if (!existsSync(pluginBinary())) throw new Error(`${pluginBinary()} not found: run \`npm run build\` first`);
    await reapStaleMounts();
    const dir = path.join(testEnvDir, "run", `${label}-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(adminKubeconfig);
    await crdsApplied(kc);
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .createNode({ body: { metadata: { name: nodeName } } })
      .catch(() => undefined);
    const node = await createNetns(label);
    const api = await ApiFaultProxy.start(adminKubeconfig, dir);
    const forwarder = await startNsForwarder(node.name, api.socket, dir);
    const n = new FaultNode(nodeName, dir, node, api, new FaultIp(dir), forwarder, kc);
    mkdirSync(n.binDir, { recursive: true });
    symlinkSync(pluginBinary(), path.join(n.binDir, "kvrf"));
    const double = path.join(n.binDir, "kvrf-fault-ipam");
    writeFileSync(double, `#!/bin/sh\nexec ${process.execPath} --no-warnings ${path.join(repoRoot, "test/harness/fault-ipam.ts")} "$@"\n`);
    chmodSync(double, 0o755);
    api.kubeconfig(n.kubeconfig);
    return n;
  }

  async close(): Promise<void> {
    await this.forwarder.stop();
    await this.api.close();
    for (const p of this.pods) await p.delete().catch(() => undefined);
    await this.node.delete().catch(() => undefined);
    if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(this.dir, { recursive: true, force: true });
  }

  /** Prepares the node for a variant (variants.ts prepareNode). */
  async prepareFor(v: { prepareNode?(node: Netns): Promise<string[]> }): Promise<void> {
    for (const i of (await v.prepareNode?.(this.node)) ?? []) this.own.add(i);
  }

  /** A pod: a namespace of its own (deleted by close()). */
  async pod(label: string): Promise<Netns> {
    const p = await createNetns(label);
    this.pods.add(p);
    return p;
  }

  /** host-local's ipam entry, leases under this node's directory. */
  hostLocal(pool = "default", ranges: unknown[][] = [[{ subnet: "10.61.0.0/24" }], [{ subnet: "fd61::/64" }]]): Record<string, unknown> {
    return { type: "host-local", dataDir: path.join(this.ipamDir, pool), ranges };
  }

  /** The IPAM double (fault-ipam.ts) around host-local, misbehaving per verb as `faults` say. */
  faultIpam(faults: Partial<Record<"ADD" | "DEL" | "CHECK" | "STATUS" | "GC", IpamFault>> = {}, pool = "default"): Record<string, unknown> {
    return { type: "kvrf-fault-ipam", delegatePlugin: path.join(cniBinDir(), "host-local"), delegate: this.hostLocal(pool), faults };
  }

  /** The addresses host-local has leased, from every pool of this node. */
  leases(): string[] {
    if (!existsSync(this.ipamDir)) return [];
    return readdirSync(this.ipamDir, { recursive: true, encoding: "utf8" })
      .map((f) => path.basename(f))
      .filter((f) => isIP(f) !== 0);
  }

  /** What every variant's config gets. */
  base(vpc: string, ipam: Record<string, unknown> = this.hostLocal(), asn = 64602): BaseConfig {
    return { vpc, kubeconfig: this.kubeconfig, nodeName: this.nodeName, asn, stateDir: this.stateDir, logFile: this.logFile, ipam };
  }

  /** Runs dist/kvrf in the node's namespace with `verb`, the network config (or raw stdin) and env. */
  run(verb: string, config: Record<string, unknown> | Buffer, env: RunEnv = {}, timeoutMs = 90_000): Promise<PluginRun> {
    const stdin = Buffer.isBuffer(config) ? config : Buffer.from(JSON.stringify({ cniVersion: "1.1.0", name: "faults", ...config }));
    const cni: Record<string, string> = env.raw ?? {
      CNI_COMMAND: verb,
      CNI_PATH: env.cniPath ?? `${this.binDir}:${cniBinDir()}`,
      ...(env.containerId !== undefined ? { CNI_CONTAINERID: env.containerId } : {}),
      ...(env.netns !== undefined ? { CNI_NETNS: env.netns } : {}),
      ...(env.ifName !== undefined ? { CNI_IFNAME: env.ifName } : {}),
      ...(env.args !== undefined ? { CNI_ARGS: env.args } : {}),
    };
    const full = { PATH: `${this.ip.binDir}:/usr/sbin:/usr/bin:/sbin:/bin`, KVRF_IP_FAULTS: this.ip.rulesFile, ...cni };
    const t0 = performance.now();
    return new Promise((resolve) => {
      const child = execFile(this.ip.realIp, ["netns", "exec", this.node.name, pluginBinary()], { env: full, cwd: this.dir, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const status = err === null ? 0 : typeof err.code === "number" ? err.code : null;
        resolve({ verb, status, signal: err?.signal ?? null, stdout, stderr, ms: Math.round(performance.now() - t0) });
      });
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(stdin);
    });
  }

  /**
   * Everything an attachment could have left: in the node's kernel and the given pods, the IPAM
   * store, the API server (entries and holds of this node; terminating objects are kvrfd's to
   * finish and are finished here) and the state directory. Empty when nothing is left.
   */
  async leftovers(pods: readonly Netns[] = [...this.pods]): Promise<string[]> {
    const left: string[] = [];
    const links = (out: string, own: ReadonlySet<string>): string[] =>
      out
        .split("\n")
        .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
        .filter((n): n is string => n !== undefined && !own.has(n));
    left.push(...links(await this.node.ip("-o", "link", "show"), this.own).map((l) => `node interface ${l}`));
    for (const fam of ["-4", "-6"]) {
      const rules = (await this.node.ip(fam, "rule", "show")).split("\n").filter((l) => l.trim() !== "" && !kernelRule(l));
      left.push(...rules.map((r) => `node ${fam} rule ${r.trim()}`));
      const routes = (await this.node.ip(fam, "route", "show", "table", "all", "proto", "240")).split("\n").filter((l) => l.trim() !== "");
      left.push(...routes.map((r) => `node ${fam} route ${r.trim()}`));
    }
    for (const p of pods) {
      if (!existsSync(p.path)) continue;
      left.push(...links(await p.ip("-o", "link", "show"), new Set(["lo"])).map((l) => `pod ${p.name} interface ${l}`));
    }
    left.push(...this.leases().map((a) => `IPAM lease ${a}`));
    const claimsDir = path.join(this.stateDir, "claims");
    if (existsSync(claimsDir)) left.push(...readdirSync(claimsDir).map((f) => `state ${path.join("claims", f)}`));
    if (existsSync(this.stateDir)) left.push(...readdirSync(this.stateDir).filter((f) => f !== "claims" && f !== "kernel.json" && f !== "booted").map((f) => `state ${f}`));
    await this.finishDeletions();
    for (const o of await this.list(bgpVrfInstance.plural, `${nodeLabel}=${nodeLabelValue(this.nodeName)}`)) {
      const n = o.spec?.attachments?.length ?? 0;
      left.push(`BGPVRFInstance ${o.metadata.name}${n > 0 ? ` with ${n} entries` : ""}${o.metadata.deletionTimestamp !== undefined ? " (terminating)" : ""}`);
    }
    for (const plural of [routeTargetClaim.plural, vniClaim.plural]) {
      for (const o of await this.list(plural)) {
        if ((o.spec?.holders ?? []).some((h) => h.node === this.nodeName)) left.push(`${plural} ${o.metadata.name} held by ${this.nodeName}`);
      }
    }
    return left;
  }

  /** Plays kvrfd at deletion: lets go of this node's terminating BGPVRFInstances. */
  async finishDeletions(): Promise<void> {
    for (const o of await this.list(bgpVrfInstance.plural, `${nodeLabel}=${nodeLabelValue(this.nodeName)}`)) {
      // Deleted with its last entry still in it, as DEL does: what kvrfd sees go.
      if (o.metadata.deletionTimestamp === undefined) continue;
      await this.custom
        .patchClusterCustomObject(
          { group, version, plural: bgpVrfInstance.plural, name: o.metadata.name, body: [{ op: "remove", path: "/metadata/finalizers" }] },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
        )
        .catch(() => undefined);
    }
    for (let i = 0; i < 50; i++) {
      const terminating = (await this.list(bgpVrfInstance.plural, `${nodeLabel}=${nodeLabelValue(this.nodeName)}`)).filter((o) => o.metadata.deletionTimestamp !== undefined);
      if (terminating.length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Removes whatever a failed check found, so that one failure does not fail the cases after it
   * (the failure itself has already been reported).
   */
  async scrub(pods: readonly Netns[] = [...this.pods]): Promise<void> {
    const ipq = (...args: string[]): Promise<unknown> => this.node.ip(...args).catch(() => undefined);
    for (const l of (await this.node.ip("-o", "link", "show")).split("\n")) {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
      if (name !== undefined && !this.own.has(name)) await ipq("link", "del", name);
    }
    for (const fam of ["-4", "-6"]) {
      for (const l of (await this.node.ip(fam, "rule", "show")).split("\n")) {
        const pref = /^(\d+):/.exec(l)?.[1];
        if (pref !== undefined && !kernelRule(l)) await ipq(fam, "rule", "del", "pref", pref);
      }
      await ipq(fam, "route", "flush", "table", "all", "proto", "240");
    }
    for (const p of pods) {
      if (!existsSync(p.path)) continue;
      for (const l of (await p.ip("-o", "link", "show")).split("\n")) {
        const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
        if (name !== undefined && name !== "lo") await p.ip("link", "del", name).catch(() => undefined);
      }
    }
    rmSync(this.ipamDir, { recursive: true, force: true });
    rmSync(path.join(this.stateDir, "claims"), { recursive: true, force: true });
    if (existsSync(this.stateDir)) for (const f of readdirSync(this.stateDir)) if (f !== "kernel.json") rmSync(path.join(this.stateDir, f), { recursive: true, force: true });
    for (const o of await this.list(bgpVrfInstance.plural, `${nodeLabel}=${nodeLabelValue(this.nodeName)}`)) {
      await this.custom.deleteClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name: o.metadata.name }).catch(() => undefined);
    }
    await this.finishDeletions();
    for (const plural of [routeTargetClaim.plural, vniClaim.plural]) {
      for (const o of await this.list(plural)) {
        if ((o.spec?.holders ?? []).some((h) => h.node === this.nodeName)) {
          await this.custom.deleteClusterCustomObject({ group, version, plural, name: o.metadata.name }).catch(() => undefined);
        }
      }
    }
  }

  /** Asserts nothing is left; scrubs (and fails) otherwise. */
  async expectNothingLeft(what: string, pods?: readonly Netns[]): Promise<void> {
    const left = await this.leftovers(pods);
    if (left.length > 0) await this.scrub(pods);
    expect(left, `left behind by ${what}`).toEqual([]);
  }

  /**
   * Runs one case and then checks that nothing is left, also when the case failed half-way (then
   * only scrubbing, so that its leftovers do not fail the cases after it).
   */
  async checked(what: string, pods: readonly Netns[], body: () => Promise<void>): Promise<void> {
    let passed = false;
    try {
      await body();
      passed = true;
    } finally {
      this.ip.set([]);
      this.api.set([]);
      if (passed) await this.expectNothingLeft(what, pods);
      else await this.scrub(pods).catch(() => undefined);
    }
  }

  /** The node's kernel.json (the plugin's record of the kernel's capabilities), made by a DEL if need be. */
  async kernelJson(config: Record<string, unknown>): Promise<string> {
    const file = path.join(this.stateDir, "kernel.json");
    if (!existsSync(file)) await this.run("DEL", { ...config, stateDir: this.stateDir }, { containerId: "probe", ifName: "eth0" });
    return readFileSync(file, "utf8");
  }

  /** The node's BGPVRFInstance of `vpc`, if any. */
  async bvi(vpc: string): Promise<Listed | undefined> {
    return (await this.list(bgpVrfInstance.plural, `${nodeLabel}=${nodeLabelValue(this.nodeName)},${vpcLabel}=${vpc}`))[0];
  }

  private async list(plural: string, labelSelector?: string): Promise<Listed[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = (await this.custom.listClusterCustomObject({ group, version, plural, ...(labelSelector !== undefined ? { labelSelector } : {}) })) as { items?: Listed[] };
        return r.items ?? [];
      } catch (err) {
        const code = (err as { code?: number }).code;
        // A CRD this checkout does not have yet is nothing left behind.
        if (code === 404) return [];
        // Right after a CRD is created: "storage is (re)initializing".
        if (code === 429 && attempt < 20) {
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        throw err;
      }
    }
  }
}

export interface Answer {
  /** The error, when the run failed. */
  error?: { code: number; msg: string; details?: string; cniVersion: string };
  /** The parsed result or VERSION reply, when it succeeded and printed one. */
  result?: Record<string, unknown>;
}

/** Checks the answer property of one run (see the top of this file) and returns the answer. */
export function expectAnswer(r: PluginRun, context = ""): Answer {
  const show = `${context}\n${r.verb} exit ${r.status} signal ${r.signal} in ${r.ms} ms\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 3000)}`;
  expect(r.signal, `ended by a signal: ${show}`).toBeNull();
  expect([0, 1], `exit status: ${show}`).toContain(r.status);
  expect(r.stderr, `the last resort answered: ${show}`).not.toMatch(/"msg":"internal error: (uncaught exception|unhandled rejection)"/);
  expect(stackTrace.test(r.stdout), `stack trace on stdout: ${show}`).toBe(false);
  const docs = r.stdout.split("\n").filter((l) => l.trim() !== "");
  if (r.status === 0) {
    if (r.verb === "ADD" || r.verb === "VERSION") {
      expect(docs, `one result: ${show}`).toHaveLength(1);
      const result = JSON.parse(docs[0] ?? "") as Record<string, unknown>;
      expect(result, show).not.toHaveProperty("code");
      return { result };
    }
    expect(r.stdout, `nothing on stdout: ${show}`).toBe("");
    return {};
  }
  expect(docs, `one error document: ${show}`).toHaveLength(1);
  let error: Answer["error"];
  expect(() => (error = JSON.parse(docs[0] ?? "") as Answer["error"]), `error JSON: ${show}`).not.toThrow();
  const e = error as NonNullable<Answer["error"]>;
  expect(typeof e.msg, show).toBe("string");
  expect(e.msg.length, show).toBeGreaterThan(0);
  expect(typeof e.cniVersion, show).toBe("string");
  expect(knownCodes.has(e.code), `code ${e.code}: ${show}`).toBe(true);
  return { error: e };
}

const tmpfsSource = "kvrf-test-state";

/** Unmounts the state-directory tmpfs mounts a crashed run left (its pid is in the path, and gone). */
async function reapStaleMounts(): Promise<void> {
  const root = path.join(testEnvDir, "run") + "/";
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [source, target] = line.split(" ");
    if (source !== tmpfsSource || target === undefined || !target.startsWith(root)) continue;
    const pid = Number(/-(\d+)\//.exec(target.slice(root.length))?.[1]);
    if (!Number.isInteger(pid) || existsSync(`/proc/${pid}`)) continue;
    await new Promise<void>((resolve) => execFile("umount", [target], () => resolve()));
  }
}

export interface MountedDir {
  remount(how: "read-only" | "writable"): Promise<void>;
  /** Fills what is left of it. */
  fill(): Promise<void>;
  unmount(): Promise<void>;
}

/**
 * A small tmpfs at `dir` (a state directory that can be made read-only or full; root ignores
 * permissions, so a chmod would not do), holding copies of `keep` (e.g. kernel.json). Unmount it.
 */
export async function mountTmpfs(dir: string, keep: Record<string, string> = {}): Promise<MountedDir> {
  mkdirSync(dir, { recursive: true });
  const run = (cmd: string, args: string[]): Promise<void> =>
    new Promise((resolve, reject) =>
      execFile(cmd, args, (err, _o, stderr) => (err ? reject(new Error(`${cmd} ${args.join(" ")}: ${stderr || err.message}`)) : resolve())),
    );
  await run("mount", ["-t", "tmpfs", "-o", "size=256k,mode=0755", tmpfsSource, dir]);
  for (const [name, text] of Object.entries(keep)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return {
    remount: (how) => run("mount", ["-o", `remount,${how === "read-only" ? "ro" : "rw"}`, dir]),
    fill: () => run("sh", ["-c", `dd if=/dev/zero of='${dir}/filler' bs=4k 2>/dev/null; true`]),
    unmount: () => run("umount", [dir]),
  };
}
