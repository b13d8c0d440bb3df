// kvrfd as a real process for integration tests and the benchmark, plus a small fabric to run it
// in: a route reflector and worker nodes, each a network namespace with its own gobgpd, joined by
// a bridge on fd00:ff::/64. kvrfd runs in the root namespace (it reaches the test API server on
// loopback and gobgpd by its socket path) and programs its node's namespace with --netns.
//
// kvrfd runs as `node --import tsx reconciler/main.ts` (one process, so its pid is kvrfd's own and
// kill -9 really kills it); KVRF_KVRFD_BIN=dist/kvrfd runs the built bundle instead, and
// KVRF_KVRFD_NODE_ARGS adds node flags (V8 heap limits).
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { attachmentSid, parseLocator } from "../../shared/srv6-sid.js";
import {
  apiVersion,
  bgpInstance,
  bgpVrfInstance,
  group,
  nodeLabel,
  nodeLabelValue,
  locatorAnnotation,
  vtepAnnotation,
  routeTargetClaim,
  routeTargetClaimName,
  version,
  vniClaim,
  vniClaimName,
  vpcLabel,
  vrfFinalizer,
  type BGPVRFInstance,
} from "../../shared/api-types.js";
import { connectSpeaker } from "../../reconciler/gobgp/connect.js";
import type { Speaker } from "../../reconciler/gobgp/speaker.js";
import { freePort } from "./apiserver.js";
import { startGobgpd, type Gobgpd } from "./gobgpd.js";
import { createNetns, ip, type Netns } from "./netns.js";
import { startFrr, type Frr } from "./frr.js";
import { spawnDaemon, waitFor, type Daemon } from "./process.js";
import { repoRoot, testEnvDir } from "./tools.js";
import { vxlanDeviceName } from "../../shared/ifnames.js";
import { routerMac } from "../../shared/router-mac.js";

export interface KvrfdOptions {
  dir: string;
  nodeName: string;
  kubeconfig: string;
  gobgpSocket: string;
  netns?: string;
  underlay?: string;
  /** Extra flags, e.g. ["--route-hold", "5"]. */
  args?: string[];
  logLevel?: string;
}

export interface Kvrfd {
  daemon: Daemon;
  healthPort: number;
  /** The Prometheus text of /metrics. */
  metrics(): Promise<string>;
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  ready(): Promise<boolean>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function startKvrfd(opts: KvrfdOptions): Promise<Kvrfd> {
  mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const flags = [
    "--node-name",
    opts.nodeName,
    "--kubeconfig",
    opts.kubeconfig,
    "--gobgp-socket",
    opts.gobgpSocket,
    "--health-address",
    "127.0.0.1",
    "--health-port",
    String(port),
    "--log-level",
    opts.logLevel ?? "debug",
    ...(opts.netns !== undefined ? ["--netns", opts.netns] : []),
    ...(opts.underlay !== undefined ? ["--underlay-interface", opts.underlay] : []),
    ...(opts.args ?? []),
  ];
  const bin = process.env["KVRF_KVRFD_BIN"];
  const node = path.join(repoRoot, "node_modules/.bin/node");
  // V8 heap flags (e.g. "--max-old-space-size=128") only work on the command line.
  const nodeArgs = (process.env["KVRF_KVRFD_NODE_ARGS"] ?? "").split(" ").filter((a) => a !== "");
  const [cmd, args] =
    bin !== undefined && bin !== ""
      ? [node, [...nodeArgs, path.resolve(repoRoot, bin), ...flags]]
      : [node, [...nodeArgs, "--import", "tsx", path.join(repoRoot, "reconciler/main.ts"), ...flags]];
  const daemon = spawnDaemon(`kvrfd-${opts.nodeName}`, cmd, args, { dir: opts.dir, env: { ...process.env, NODE_NO_WARNINGS: "1" } });
  const base = `http://127.0.0.1:${port}`;
  const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
  const k: Kvrfd = {
    daemon,
    healthPort: port,
    metrics,
    metric: async (name, labels = {}) => {
      let sum = 0;
      for (const line of (await metrics()).split("\n")) {
        const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? ([-+\d.eE]+|NaN)$/.exec(line);
        if (m === null || m[1] !== name) continue;
        const have = new Map([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x): [string, string] => [x[1] ?? "", x[2] ?? ""]));
        if (Object.entries(labels).every(([lk, lv]) => have.get(lk) === lv)) sum += Number(m[4]);
      }
      return sum;
    },
    ready: async () => {
      try {
        return (await fetch(`${base}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    stop: () => daemon.stop(10_000),
    kill: () => daemon.kill(),
  };
  await waitFor(`kvrfd ${opts.nodeName} /healthz`, async () => (await fetch(`${base}/healthz`)).ok, { timeoutMs: 30_000, daemon, intervalMs: 100 });
  return k;
}

/** Applies our CRDs (server-side apply) and waits until they are served. */
export async function applyCrds(kc: k8s.KubeConfig): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const file of ["bgpvrfinstances.kvrf.dev.yaml", "bgpinstances.kvrf.dev.yaml", "routetargetclaims.kvrf.dev.yaml", "vniclaims.kvrf.dev.yaml"]) {
    const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(readFileSync(path.join(repoRoot, "manifests/crds", file), "utf8"));
    await waitFor(
      `CRD ${file} applied`,
      async () => {
        await objects.patch(crd, undefined, undefined, "kvrf-test", true, k8s.PatchStrategy.ServerSideApply);
        return true;
      },
      { timeoutMs: 30_000 },
    );
    await waitFor(
      `CRD ${file} Established`,
      async () => {
        const got = await ext.readCustomResourceDefinition({ name: crd.metadata?.name ?? "" });
        return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
      },
      { timeoutMs: 30_000 },
    );
  }
  // Right after a CRD is established its storage may still answer 429/503 for a moment.
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await waitFor(
    "custom resources served",
    async () => {
      await custom.listClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, limit: 1 });
      await custom.listClusterCustomObject({ group, version, plural: bgpInstance.plural, limit: 1 });
      await custom.listClusterCustomObject({ group, version, plural: routeTargetClaim.plural, limit: 1 });
      await custom.listClusterCustomObject({ group, version, plural: vniClaim.plural, limit: 1 });
      return true;
    },
    { timeoutMs: 30_000 },
  );
}

export interface FabricNode {
  name: string;
  netns: Netns;
  /** Underlay address on fab0 (fd00:ff::/64). */
  address: string;
  gobgpd: Gobgpd;
  kvrfd: Kvrfd;
  /** Restarts gobgpd (after kill or stop) with the same socket. */
  restartGobgpd(): Promise<void>;
  startKvrfd(args?: string[]): Promise<void>;
  /** A Speaker on this node's gobgpd, for inspecting it. */
  speaker(): Promise<Speaker>;
  /** kvrfd's routes (proto 241) of a table, as "prefix sid" (SRv6) or "prefix next-hop" (VXLAN) lines. */
  routes(table: number): Promise<string[]>;
}

export interface FabricOptions {
  /** Short unique label; node names and BGPInstance names derive from it. */
  label: string;
  gobgpd: string;
  kubeconfig: string;
  dir: string;
  workers: string[];
  asn?: number;
  /** Extra kvrfd flags for every node. */
  kvrfdArgs?: string[];
  logLevel?: string;
  /**
   * The workers' objects: SRv6 attachments with SIDs (default), or VXLAN (VNI, the node's fabric
   * address as VTEP, its router MAC). With VXLAN the fabric plays the CNI plugin's part too: it
   * makes the VPC's VXLAN device on the node with the object.
   */
  encap?: "srv6" | "vxlan";
  /**
   * An eBGP fabric (RFC 7938) instead of the iBGP route reflector: worker i has its own ASN
   * (workerAsn(i)) and the cluster-wide route-target ASN `asn`; each peers with a spine of ASN
   * `asn`, FRR 8.4 in the "rr" namespace (whose gobgpd stays idle and runs no kvrfd), which passes
   * the workers' VPN/EVPN routes on with their next hops unchanged.
   */
  ebgp?: boolean;
  /**
   * A router outside the cluster on the fabric, at fd00:ff::200 (outsideAddress): a gobgpd 4.8
   * of no kvrf node, in its own namespace, not started (the test configures it), for sessions
   * with the reflector (`rrPeers`).
   */
  outside?: { gobgpd: string };
  /** More peers of the route reflector's BGPInstance (iBGP fabric only), e.g. the outside router. */
  rrPeers?: object[];
}

/** The outside router's fabric address (FabricOptions.outside). */
export const outsideAddress = "fd00:ff::200";

/** Worker i's ASN in an eBGP fabric. */
export function workerAsn(i: number): number {
  return 65001 + i;
}

export interface Fabric {
  kc: k8s.KubeConfig;
  rr: FabricNode;
  /** The eBGP fabric's spine (FRR), when FabricOptions.ebgp. */
  spine?: Frr;
  /** The router outside the cluster, when FabricOptions.outside. */
  outside?: { netns: Netns; gobgpd: Gobgpd };
  workers: Map<string, FabricNode>;
  worker(name: string): FabricNode;
  /** Creates or replaces a BGPVRFInstance for a worker (the CNI plugin's job in production). */
  putVrf(node: string, vpc: string, table: number, attachments: { id: number; prefixes: string[] }[]): Promise<BGPVRFInstance>;
  getVrf(node: string, vpc: string): Promise<BGPVRFInstance | undefined>;
  deleteVrf(node: string, vpc: string): Promise<void>;
  /** Claims the VPC's route target (and with VXLAN its VNI), as the CNI plugin would; putVrf does it too. Deleted by stop(). */
  claim(vpc: string): Promise<void>;
  stop(): Promise<void>;
}

export function vrfObjectName(node: string, vpc: string): string {
  return `${node}.vpc-${vpc}`;
}

/**
 * The attachment SID of (worker index, vpc, attachment) as the CNI plugin makes it
 * (shared/srv6-sid.ts): the worker's locator fd00:0:N::/48, padding, the VPC (48 bits) and the
 * attachment (16 bits), in canonical text.
 */
export function sidOf(nodeIndex: number, vpc: string, attachment: number): string {
  return attachmentSid(parseLocator(nodeLocator(nodeIndex)), BigInt(`0x${vpc}`), attachment);
}

/** Worker `nodeIndex`'s SRv6 locator, published on its Node (kvrfd checks remote SIDs against it). */
export function nodeLocator(nodeIndex: number): string {
  return `fd00:0:${(nodeIndex + 1).toString(16)}::/48`;
}

function isConflict(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 409;
}

function isNotFound(err: unknown): boolean {
  return err instanceof k8s.ApiException && err.code === 404;
}

/**
 * One fabric at a time per API server. Fabrics share what the API server holds cluster-wide — the
 * route-target and VNI claims of their VPCs (the same VPC IDs in every test), and Node records with
 * the same addresses and locators — so two at once meddle: one's stop() deletes the claims the
 * other's kvrfd programs its VPCs by (seen in the vm tier, where two files' fabrics overlapped). A
 * lock directory per server in the run directory, taken over when its owner process is gone.
 */
async function fabricLock(kc: k8s.KubeConfig): Promise<() => void> {
  const server = kc.getCurrentCluster()?.server ?? "";
  const lock = path.join(testEnvDir, "run", `fabric-${createHash("sha256").update(server).digest("hex").slice(0, 12)}.lock`);
  mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, "owner"), String(process.pid));
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(path.join(lock, "owner"), { encoding: "utf8", flag: "a+" }) || "0");
      if (owner > 0 && owner !== process.pid && !existsSync(`/proc/${owner}`)) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited 30 min for another fabric on ${server} (${lock})`, { cause: err });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function startFabric(opts: FabricOptions): Promise<Fabric> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(opts.kubeconfig);
  const unlock = await fabricLock(kc);
  try {
    return await buildFabric(opts, kc, unlock);
  } catch (err) {
    unlock();
    throw err;
  }
}

async function buildFabric(opts: FabricOptions, kc: k8s.KubeConfig, unlock: () => void): Promise<Fabric> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const asn = opts.asn ?? 65000;
  const rrAddress = "fd00:ff::100";
  const nodes: FabricNode[] = [];
  const made: { stop(): Promise<void> }[] = [];
  const fab = await createNetns(`${opts.label}-fab`);
  made.push({ stop: () => fab.delete() });
  await fab.ip("link", "add", "br0", "type", "bridge");
  await fab.ip("link", "set", "br0", "up");

  const roleLabel = `kvrf-test/role-${opts.label}`;
  const instanceNames: string[] = [];
  let spine: Frr | undefined;
  let outside: Fabric["outside"];
  try {
    await applyCrds(kc);
    const specs = [{ name: `${opts.label}-rr`, role: "rr", address: rrAddress }, ...opts.workers.map((w, i) => ({ name: `${opts.label}-${w}`, role: "worker", address: `fd00:ff::${(i + 1).toString(16)}` }))];
    for (const [i, spec] of specs.entries()) {
      const ns = await createNetns(`${opts.label}-${i}`);
      made.push({ stop: () => ns.delete() });
      const peer = `k${process.pid % 10000}${opts.label.slice(0, 3)}${i}`.slice(0, 15);
      await ip("link", "add", "fab0", "netns", ns.name, "type", "veth", "peer", "name", peer, "netns", fab.name);
      await fab.ip("link", "set", peer, "master", "br0", "up");
      await ns.ip("-6", "addr", "add", `${spec.address}/64`, "dev", "fab0", "nodad");
      await ns.ip("link", "set", "fab0", "up");
      await ns.exec("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.seg6_enabled=1", "net.ipv6.conf.fab0.seg6_enabled=1");
      // Node objects: the test API server has no kubelets. InternalIP drives the Auto router ID.
      // Workers publish their SRv6 locator (sidOf's) and VTEP as an operator would annotate them:
      // kvrfd checks remote paths against them (reconciler/vrf/trust.ts).
      await core.deleteNode({ name: spec.name }).catch(() => undefined);
      const annotations = spec.role === "worker" ? { [locatorAnnotation]: nodeLocator(i - 1), [vtepAnnotation]: spec.address } : {};
      const role = opts.ebgp && spec.role === "worker" ? `worker-${i - 1}` : spec.role;
      const created = await core.createNode({ body: { metadata: { name: spec.name, labels: { [roleLabel]: role }, annotations } } });
      await core.replaceNodeStatus({ name: spec.name, body: { ...created, status: { addresses: [{ type: "InternalIP", address: spec.address }] } } });
      const dir = path.join(opts.dir, spec.name);
      const socketDir = path.join(opts.dir, `s${i}`);
      let gobgpd = await startGobgpd({ binary: opts.gobgpd, dir: socketDir, netns: ns.name, logLevel: "warn" });
      const node: FabricNode = {
        name: spec.name,
        netns: ns,
        address: spec.address,
        gobgpd,
        kvrfd: undefined as unknown as Kvrfd,
        restartGobgpd: async () => {
          await node.gobgpd.stop();
          gobgpd = await startGobgpd({ binary: opts.gobgpd, dir: socketDir, netns: ns.name, logLevel: "warn" });
          node.gobgpd = gobgpd;
        },
        startKvrfd: async (args = []) => {
          node.kvrfd = await startKvrfd({
            dir,
            nodeName: spec.name,
            kubeconfig: opts.kubeconfig,
            gobgpSocket: node.gobgpd.socket,
            netns: ns.name,
            underlay: "fab0",
            args: [...(opts.kvrfdArgs ?? []), ...args],
            ...(opts.logLevel !== undefined ? { logLevel: opts.logLevel } : {}),
          });
        },
        speaker: () => connectSpeaker(node.gobgpd.socket, { timeoutMs: 5000 }),
        routes: async (table) => {
          const out = await ns.ip("-j", "route", "show", "table", "all", "proto", "241").catch(() => "[]");
          const list = JSON.parse(out.trim() === "" ? "[]" : out) as { dst: string; type?: string; table?: string; segs?: string[]; gateway?: string; via?: { host?: string } }[];
          // The encap routes; the throw routes for remote SIDs that go with them are checked apart.
          return list
            .filter((r) => Number(r.table ?? 254) === table && r.type !== "throw")
            .map((r) => `${r.dst.includes("/") ? r.dst : `${r.dst}/${r.dst.includes(":") ? 128 : 32}`} ${r.segs?.[0] ?? r.gateway ?? r.via?.host ?? "-"}`)
            .sort();
        },
      };
      made.push({ stop: () => node.gobgpd.stop() });
      made.push({ stop: async () => node.kvrfd?.stop() });
      nodes.push(node);
    }
    const workers = nodes.slice(1);
    // The route reflector reflects between the workers; the workers peer with it only.
    const encap = opts.encap ?? "srv6";
    const instance = (name: string, role: string, peers: object[]): k8s.KubernetesObject & { spec: object } => ({
      apiVersion,
      kind: bgpInstance.kind,
      metadata: { name },
      spec: { nodeSelector: { matchLabels: { [roleLabel]: role } }, asn, encapsulation: encap, listenPort: 179, peers },
    });
    const timers = { holdTime: 9, keepalive: 3 };
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const instances = opts.ebgp
      ? workers.map((w, i) => {
          const inst = instance(`${opts.label}-worker-${i}`, `worker-${i}`, [{ address: rrAddress, asn, timers }]);
          return { ...inst, spec: { ...inst.spec, asn: workerAsn(i), routeTargetASN: asn } };
        })
      : [
          instance(`${opts.label}-rr`, "rr", [...workers.map((w) => ({ address: w.address, asn, routeReflectorClient: true, timers })), ...(opts.rrPeers ?? [])]),
          instance(`${opts.label}-workers`, "worker", [{ address: rrAddress, asn, timers }]),
        ];
    instanceNames.push(...instances.map((i) => i.metadata?.name ?? ""));
    if (opts.outside !== undefined) {
      const ns = await createNetns(`${opts.label}-out`);
      made.push({ stop: () => ns.delete() });
      const peer = `k${process.pid % 10000}${opts.label.slice(0, 3)}o`.slice(0, 15);
      await ip("link", "add", "fab0", "netns", ns.name, "type", "veth", "peer", "name", peer, "netns", fab.name);
      await fab.ip("link", "set", peer, "master", "br0", "up");
      await ns.ip("-6", "addr", "add", `${outsideAddress}/64`, "dev", "fab0", "nodad");
      await ns.ip("link", "set", "fab0", "up");
      const gobgpd = await startGobgpd({ binary: opts.outside.gobgpd, dir: path.join(opts.dir, "sout"), netns: ns.name, logLevel: "warn" });
      made.push({ stop: () => gobgpd.stop() });
      outside = { netns: ns, gobgpd };
    }
    for (const inst of instances) await objects.patch(inst, undefined, undefined, "kvrf-test", true, k8s.PatchStrategy.ServerSideApply);
    if (opts.ebgp) {
      const rrNode = nodes[0] as FabricNode;
      spine = await startFrr({ name: `${opts.label}-spine`, netns: rrNode.netns.name, dir: path.join(opts.dir, "spine"), config: spineConfig(asn, workers.map((w, i) => ({ address: w.address, asn: workerAsn(i) }))) });
      made.push({ stop: async () => spine?.stop() });
      await Promise.all(workers.map((n) => n.startKvrfd()));
    } else {
      await Promise.all(nodes.map((n) => n.startKvrfd()));
    }
  } catch (err) {
    for (const m of made.reverse()) await m.stop().catch(() => undefined);
    throw err;
  }

  const [rr, ...workerList] = nodes as [FabricNode, ...FabricNode[]];
  const workers = new Map(workerList.map((w, i) => [opts.workers[i] ?? "", w]));
  const worker = (n: string): FabricNode => {
    const w = workers.get(n);
    if (w === undefined) throw new Error(`no worker ${n}`);
    return w;
  };
  // The CNI plugin's part too: the VPC's claims (kvrfd programs a VPC only while it holds them).
  // Created once per VPC and deleted at stop; a claim another VPC holds is a test clash, said so.
  const claimed = new Map<string, { plural: string; name: string }>();
  const ensureClaims = async (vpc: string, vxlan: boolean): Promise<void> => {
    const nn = BigInt(`0x${vpc}`) & 0xffffffffn;
    const wanted: { plural: string; kind: string; name: string; spec: Record<string, unknown> }[] = [
      { plural: routeTargetClaim.plural, kind: routeTargetClaim.kind, name: routeTargetClaimName(`${asn}:${nn}`), spec: { routeTarget: `${asn}:${nn}`, vpc } },
    ];
    const vni = Number(BigInt(`0x${vpc}`) & 0xffffffn);
    if (vxlan) wanted.push({ plural: vniClaim.plural, kind: vniClaim.kind, name: vniClaimName(vni), spec: { vni, vpc } });
    for (const c of wanted) {
      if (claimed.has(`${c.plural}/${c.name}`)) continue;
      try {
        await custom.createClusterCustomObject({ group, version, plural: c.plural, body: { apiVersion, kind: c.kind, metadata: { name: c.name, labels: { [vpcLabel]: vpc } }, spec: c.spec } });
        claimed.set(`${c.plural}/${c.name}`, c);
      } catch (err) {
        if (!isConflict(err)) throw err;
        const cur = (await custom.getClusterCustomObject({ group, version, plural: c.plural, name: c.name })) as { spec?: { vpc?: string } };
        if (cur.spec?.vpc !== vpc) {
          throw new Error(`${c.kind} ${c.name} is held by VPC ${String(cur.spec?.vpc)}, not ${vpc}: another test file uses a VPC ID with the same low bits`, { cause: err });
        }
      }
    }
  };
  const fabric: Fabric = {
    kc,
    rr,
    ...(spine !== undefined ? { spine } : {}),
    ...(outside !== undefined ? { outside } : {}),
    workers,
    worker,
    putVrf: async (n, vpc, table, attachments) => {
      const w = worker(n);
      const nodeIndex = workerList.indexOf(w);
      const nn = parseInt(vpc, 16);
      const name = vrfObjectName(w.name, vpc);
      const vxlan = (opts.encap ?? "srv6") === "vxlan";
      const vni = parseInt(vpc, 16) & 0xffffff;
      // eBGP: the node's own ASN in the RD, the cluster-wide one in the route targets.
      const nodeAsn = opts.ebgp ? workerAsn(nodeIndex) : asn;
      const spec = {
        nodeName: w.name,
        vpc,
        asn: nodeAsn,
        ...(opts.ebgp ? { routeTargetASN: asn } : {}),
        routeDistinguisher: `${nodeAsn}:${nn}`,
        importRouteTargets: [`${asn}:${nn}`],
        exportRouteTargets: [`${asn}:${nn}`],
        table,
        ...(vxlan ? { encapsulation: "vxlan", vni, vtep: w.address, routerMac: routerMac(w.name) } : { encapsulation: "srv6" }),
        attachments: attachments.map((a) => ({
          containerID: `c${a.id}`,
          ifName: "eth0",
          attachment: a.id.toString(16),
          ...(vxlan ? {} : { sid: sidOf(nodeIndex, vpc, a.id) }),
          prefixes: a.prefixes,
        })),
      };
      await ensureClaims(vpc, vxlan);
      if (vxlan) {
        // The CNI plugin's part: the VPC's VXLAN device on the node (kvrfd routes through it).
        const dev = vxlanDeviceName(BigInt(`0x${vpc}`));
        if (!(await w.netns.ip("-o", "link", "show")).includes(` ${dev}:`)) {
          await w.netns.ip("link", "add", dev, "address", routerMac(w.name), "type", "vxlan", "id", String(vni), "local", w.address, "dstport", "4789", "nolearning");
          await w.netns.ip("link", "set", dev, "up");
        }
      }
      try {
        const cur = (await custom.getClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name })) as BGPVRFInstance;
        return (await custom.replaceClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name, body: { ...cur, spec } })) as BGPVRFInstance;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      const body = {
        apiVersion,
        kind: bgpVrfInstance.kind,
        // As the CNI plugin creates them: node label, and the finalizer from the start.
        metadata: { name, labels: { [nodeLabel]: nodeLabelValue(w.name) }, finalizers: [vrfFinalizer] },
        spec,
      };
      return (await custom.createClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, body })) as BGPVRFInstance;
    },
    getVrf: async (n, vpc) => {
      try {
        return (await custom.getClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name: vrfObjectName(worker(n).name, vpc) })) as BGPVRFInstance;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    claim: (vpc) => ensureClaims(vpc, (opts.encap ?? "srv6") === "vxlan"),
    deleteVrf: async (n, vpc) => {
      await custom.deleteClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name: vrfObjectName(worker(n).name, vpc) });
    },
    stop: async () => {
      try {
        await stopFabric();
      } finally {
        unlock();
      }
    },
  };
  async function stopFabric(): Promise<void> {
      for (const n of nodes) await n.kvrfd?.stop().catch(() => undefined);
      // Objects left with our finalizer would never go away once no kvrfd runs: release them.
      const list = (await custom.listClusterCustomObject({ group, version, plural: bgpVrfInstance.plural })) as { items: BGPVRFInstance[] };
      for (const o of list.items) {
        if (!nodes.some((n) => o.spec.nodeName === n.name)) continue;
        await custom
          .patchClusterCustomObject(
            { group, version, plural: bgpVrfInstance.plural, name: o.metadata.name ?? "", body: { metadata: { finalizers: null } } },
            k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
          )
          .catch(() => undefined);
        await custom.deleteClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name: o.metadata.name ?? "" }).catch(() => undefined);
      }
      for (const name of instanceNames) await custom.deleteClusterCustomObject({ group, version, plural: bgpInstance.plural, name }).catch(() => undefined);
      for (const c of claimed.values()) await custom.deleteClusterCustomObject({ group, version, plural: c.plural, name: c.name }).catch(() => undefined);
      await spine?.stop();
      if (outside !== undefined) {
        await outside.gobgpd.stop().catch(() => undefined);
        await outside.netns.delete().catch(() => undefined);
      }
      for (const n of nodes) await core.deleteNode({ name: n.name }).catch(() => undefined);
      for (const n of nodes) await n.gobgpd.stop().catch(() => undefined);
      for (const n of nodes) await n.netns.delete().catch(() => undefined);
      await fab.delete().catch(() => undefined);
  }
  return fabric;
}

/**
 * The eBGP spine's FRR configuration: one eBGP session per worker, the VPN and EVPN families, and
 * next hops passed on unchanged — the worker's address is its VTEP (VXLAN) and the owner of the
 * SIDs it advertises (SRv6): kvrfd checks both against the node that advertises them
 * (reconciler/vrf/trust.ts), as a ToR of an EVPN fabric does.
 */
export function spineConfig(asn: number, workers: readonly { address: string; asn: number }[]): string {
  const families = ["ipv4 vpn", "ipv6 vpn", "l2vpn evpn"];
  return [
    "frr defaults datacenter",
    "hostname spine",
    "!",
    `router bgp ${asn}`,
    " bgp router-id 10.255.0.100",
    " no bgp ebgp-requires-policy",
    " no bgp default ipv4-unicast",
    // IPv4 VPN routes over these IPv6 sessions need RFC 8950's extended next hop, or FRR replaces
    // the next hop with its IPv4 router ID (then the SID's owner is no longer the advertiser).
    ...workers.flatMap((w) => [` neighbor ${w.address} remote-as ${w.asn}`, ` neighbor ${w.address} timers 3 9`, ` neighbor ${w.address} capability extended-nexthop`]),
    ...families.flatMap((f) => [` address-family ${f}`, ...workers.flatMap((w) => [`  neighbor ${w.address} activate`, `  neighbor ${w.address} attribute-unchanged next-hop`]), " exit-address-family"]),
    "!",
    "",
  ].join("\n");
}

/** `ip monitor route` (and other objects, e.g. neigh) in a namespace until stopped; returns the lines it printed. */
export function monitorRoutes(netns: string, objects: readonly string[] = ["route"]): { stop(): Promise<string[]> } {
  const child = execFile("ip", ["-n", netns, "monitor", ...objects], { maxBuffer: 16 << 20 });
  let out = "";
  child.stdout?.on("data", (d: string | Buffer) => (out += d.toString()));
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 200));
      const done = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await done;
      return out.split("\n").filter((l) => l.trim() !== "");
    },
  };
}
