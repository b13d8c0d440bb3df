// kvrfd wired together: informers feed one work queue; the VRF controller and the speaker
// controller reconcile its keys; the speaker link reports gobgpd sessions and RIB events; the
// health server exposes readiness and metrics. Separate from main.ts so tests can run it in-process.
import { monotonicMs } from "../shared/clock.js";
import type { V1Node } from "@kubernetes/client-node";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import {
  bgpInstance,
  bgpVrfInstance,
  group,
  locatorAnnotation,
  nodeLabel,
  nodeLabelValue,
  routeTargetClaim,
  routeTargetAsnOf,
  routeTargetClaimName,
  version,
  vniClaim,
  vniClaimName,
  vtepAnnotation,
  type BGPVRFInstance,
} from "../shared/api-types.js";
import { parseVpc, vpcNumber, vpcVni } from "../shared/ids.js";
import { ipJson } from "../shared/kernel/ip.js";
import { allCapabilities, probeCapabilities, type CapabilityReport } from "../shared/kernel/capabilities.js";
import type { Encapsulation } from "../shared/api-types.js";
import { kernelLacks, nodeKernel, type NodeKernel } from "./kernel/node-kernel.js";
import { selectInstance, type BGPInstance } from "./bgp-instance/bgp-instance.js";
import type { Config } from "./config.js";
import { HealthServer, type Check } from "./health.js";
import { DebugAuth } from "./debug/auth.js";
import { takeSnapshot } from "./debug/snapshot.js";
import { debugSnapshotPath } from "../shared/debug-snapshot.js";
import { Informer, withoutManagedFields, type Named } from "./kube/informer.js";
import { IpRouteBackend, KernelRouteCache, type KernelRouteBackend } from "./kernel/kernel-routes.js";
import { KubeApi } from "./kube/kube.js";
import type { KubeAccess } from "./kube/kube-client.js";
import { Metrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import type { RibChange } from "./gobgp/rib.js";
import type { Speaker } from "./gobgp/speaker.js";
import { SpeakerController, speakerKey } from "./bgp-instance/speaker-controller.js";
import { SpeakerLink } from "./gobgp/speaker-link.js";
import { StatusWriter } from "./vrf/status-writer.js";
import { chooseNextHop, underlayTowardPeers, type AddrInfo, type RouteGet, type Underlay } from "./kernel/underlay.js";
import { orphanKey, VrfController } from "./vrf/vrf-controller.js";
import { indexNodes, nodeRecord, type NodeIndex } from "./vrf/trust.js";
import type { ClaimObject } from "./kube/kube.js";

const speakerGraceMs = 10_000;
/** The informers' names, in the order of Daemon.informers(). */
const informerNames = ["bgpvrfinstances", "bgpinstances", "node", "nodes", "routetargetclaims", "vniclaims"];

export interface DaemonDeps {
  connect: () => Promise<Speaker>;
  /** Where the API server is and how to authenticate (loadKubeAccess). */
  kubeAccess: KubeAccess;
  kernel?: KernelRouteBackend;
  /** Probes the node's kernel capabilities (default: shared/kernel/capabilities.ts in cfg.netns). */
  probeKernel?: () => Promise<CapabilityReport>;
}

function routerIds(i: BGPInstance): string {
  return (i.status?.nodes ?? [])
    .map((n) => `${n.nodeName}=${n.routerID ?? ""}`)
    .sort()
    .join(",");
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : JSON.stringify(err);
}

function sameMeta(a: BGPVRFInstance, b: BGPVRFInstance): boolean {
  return (
    a.metadata.generation === b.metadata.generation &&
    String(a.metadata.deletionTimestamp ?? "") === String(b.metadata.deletionTimestamp ?? "") &&
    JSON.stringify(a.metadata.finalizers ?? []) === JSON.stringify(b.metadata.finalizers ?? [])
  );
}

/** A Node cut down to what trust.ts reads: name, the two annotations, addresses. */
function publishedRecord(n: V1Node): V1Node {
  const a = n.metadata?.annotations ?? {};
  const annotations: Record<string, string> = {};
  for (const k of [locatorAnnotation, vtepAnnotation]) if (a[k] !== undefined) annotations[k] = a[k];
  return {
    metadata: { name: n.metadata?.name ?? "", resourceVersion: n.metadata?.resourceVersion ?? "", annotations },
    status: { addresses: n.status?.addresses ?? [] },
  };
}

export class Daemon {
  readonly metrics = new Metrics();
  readonly kube: KubeApi;
  readonly vrfs: Informer<BGPVRFInstance>;
  readonly instances: Informer<BGPInstance>;
  readonly nodes: Informer<V1Node>;
  /** Every node's published record (trust.ts), and the claims: what objects and paths are checked against. */
  readonly fabric: Informer<V1Node>;
  readonly rtClaims: Informer<ClaimObject>;
  readonly vniClaims: Informer<ClaimObject>;
  private nodeIndexMemo: { version: number; index: NodeIndex } | undefined;
  private readonly recordWarned = new Map<string, string>();
  readonly link: SpeakerLink;
  readonly kernel: KernelRouteCache;
  readonly queue: WorkQueue;
  readonly vrfController: VrfController;
  readonly speakerController: SpeakerController;
  readonly statusWriter: StatusWriter;
  private readonly health: HealthServer;
  private readonly debugAuth: DebugAuth;
  private underlayResolved: Underlay | undefined;
  private underlayLookup: Promise<Underlay> | undefined;
  private ribTimer: NodeJS.Timeout | undefined;
  /** Best-path changes since the last RIB batch. */
  private ribChanges: RibChange[] = [];
  private downTimer: NodeJS.Timeout | undefined;
  private passwordTimer: NodeJS.Timeout | undefined;
  private started = false;
  private kernelWarned: string | undefined;
  /** The node's kernel capabilities, once probed. */
  kernelReport: CapabilityReport | undefined;
  private readonly probeKernel: () => Promise<CapabilityReport>;
  healthPort = 0;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
    deps: DaemonDeps,
  ) {
    this.probeKernel = deps.probeKernel ?? (() => probeCapabilities(cfg.netns === undefined ? {} : { netns: cfg.netns }));
    this.kube = new KubeApi(deps.kubeAccess, cfg.nodeName, cfg.apiTimeoutSeconds * 1000, (call) => this.metrics.apiRequests.inc({ call }));
    const common = {
      watch: this.kube.watcher,
      resyncMs: cfg.resyncSeconds * 1000,
      stallMs: cfg.stallSeconds * 1000,
      listTimeoutMs: cfg.apiTimeoutSeconds * 4000,
      log,
      transform: withoutManagedFields,
    };
    const restarts = (informer: string) => (reason: string) => this.metrics.informerRestarts.inc({ informer, reason });
    const selector = `${nodeLabel}=${nodeLabelValue(cfg.nodeName)}`;
    this.vrfs = new Informer<BGPVRFInstance>({
      ...common,
      name: "bgpvrfinstances",
      path: `/apis/${group}/${version}/${bgpVrfInstance.plural}`,
      labelSelector: selector,
      list: (signal) => this.kube.listVrfInstances(selector, signal),
      onRestart: restarts("bgpvrfinstances"),
      // Status writes (ours) do not change what is derived from the objects (conflicts).
      significant: (old, o) => !sameMeta(old, o),
    });
    this.instances = new Informer<BGPInstance>({
      ...common,
      name: "bgpinstances",
      path: `/apis/${group}/${version}/${bgpInstance.plural}`,
      list: (signal) => this.kube.listBgpInstances(signal),
      onRestart: restarts("bgpinstances"),
    });
    this.nodes = new Informer<V1Node>({
      ...common,
      name: "node",
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${cfg.nodeName}`,
      list: (signal) => this.kube.listOwnNode(signal),
      onRestart: restarts("node"),
    });
    this.fabric = new Informer<V1Node>({
      ...common,
      name: "nodes",
      path: "/api/v1/nodes",
      list: (signal) => this.kube.listNodes(signal),
      onRestart: restarts("nodes"),
      // Only what trust.ts reads is kept: a large cluster's Nodes are mostly images and conditions.
      transform: publishedRecord,
      significant: (old, o) => JSON.stringify(nodeRecord(old)) !== JSON.stringify(nodeRecord(o)),
    });
    const claims = (plural: string): Informer<ClaimObject> =>
      new Informer<ClaimObject>({
        ...common,
        name: plural,
        path: `/apis/${group}/${version}/${plural}`,
        list: (signal) => this.kube.listClaims(plural, signal),
        onRestart: restarts(plural),
        transform: (c) => ({ metadata: { name: c.metadata?.name ?? "", resourceVersion: c.metadata?.resourceVersion ?? "" }, spec: { vpc: c.spec?.vpc ?? "" } }),
      });
    this.rtClaims = claims(routeTargetClaim.plural);
    this.vniClaims = claims(vniClaim.plural);
    this.link = new SpeakerLink({
      connect: deps.connect,
      probeIntervalMs: cfg.probeSeconds * 1000,
      // gobgpd is local (same pod): a connect attempt costs nothing, and a restarted gobgpd should
      // be picked up within a second, not after a backoff grown while it was starting.
      backoff: { baseMs: 100, maxMs: 1000 },
      log: log.child({ component: "speaker-link" }),
    });
    this.kernel = new KernelRouteCache(deps.kernel ?? new IpRouteBackend(cfg.netns, (kind) => this.metrics.ipRuns.inc({ kind })));
    this.statusWriter = new StatusWriter((name, status) => this.kube.patchStatus(name, status), {
      workers: 4,
      log: log.child({ component: "status" }),
      onResult: (result) => this.metrics.statusWrites.inc({ result }),
      // A burst of changes first, then the newest status of each object once (status-writer.ts).
      busy: () => this.queue.depth > 0,
    });
    this.metrics.statusBacklog = () => this.statusWriter.backlog;
    const trustInformers = [this.fabric, this.rtClaims, this.vniClaims];
    this.vrfController = new VrfController({
      nodeName: cfg.nodeName,
      objects: this.vrfs,
      link: this.link,
      kernel: this.kernel,
      api: this.kube,
      status: this.statusWriter,
      underlay: () => this.underlay(),
      metrics: this.metrics,
      log: log.child({ component: "vrf" }),
      routeHoldMs: cfg.routeHoldSeconds * 1000,
      speakerGraceMs,
      kernelLacks: (caps) => kernelLacks(this.kernelReport, caps),
      trust: {
        claims: { routeTargetClaim: (name) => this.rtClaims.get(name)?.spec, vniClaim: (name) => this.vniClaims.get(name)?.spec },
        nodes: () => this.nodeIndex(),
        external: () => this.speakerController.external,
        get hasSynced(): boolean {
          return trustInformers.every((i) => i.hasSynced);
        },
      },
    });
    const fabric = this.fabric;
    this.speakerController = new SpeakerController({
      nodeName: cfg.nodeName,
      nodes: this.nodes,
      instances: this.instances,
      cluster: {
        nextHops: () => [...this.nodeIndex().byAddress.keys()],
        get hasSynced(): boolean {
          return fabric.hasSynced;
        },
      },
      link: this.link,
      api: this.kube,
      metrics: this.metrics,
      log: log.child({ component: "speaker" }),
      onSpeakerReset: () => this.passOverVrfs(),
      onExternalRoutesChange: () => this.passOverVrfs(),
      kernel: (encap) => this.nodeKernel(encap),
    });
    this.queue = new WorkQueue({
      workers: cfg.workers,
      backoff: { baseMs: 200, maxMs: 30_000 },
      reconcile: (key) => (key === speakerKey ? this.speakerController.reconcile() : this.vrfController.reconcile(key)),
      onResult: (key, result, ms, err) => {
        const controller = key === speakerKey ? "speaker" : "vrf";
        this.metrics.reconciles.inc({ controller, result });
        this.metrics.reconcileDuration.observe({ controller }, ms / 1000);
        this.metrics.queueDepth.set({ controller: "all" }, this.queue.depth);
        if (result === "error") this.log.warn({ key: key.replace("\u0000", ""), err: errText(err), failures: this.queue.failures(key) + 1 }, "reconcile failed; retrying with backoff");
      },
    });
    this.health = new HealthServer({
      healthy: () => this.healthChecks(),
      ready: () => this.readyChecks(),
      registry: this.metrics.registry,
      ...(cfg.debugEndpoint ? { debug: { [debugSnapshotPath]: (req) => this.debugSnapshot(req) } } : {}),
    });
    this.debugAuth = new DebugAuth({ nodeName: cfg.nodeName, review: (kind, body) => this.kube.review(kind, body) });
    this.wire();
  }

  private vrfKeys(): string[] {
    return [...new Set([...this.vrfs.keys(), ...this.vrfController.knownKeys()])];
  }

  /** A pass over every VRF key (low lane), plus the orphan sweep. */
  private passOverVrfs(): void {
    this.queue.addAll(this.vrfKeys(), "low");
    this.queue.add(orphanKey, "low");
  }

  /**
   * Best paths changed in gobgpd's global VPN tables (the watch carries them, with their route
   * targets): only the VRFs that import one of those route targets are reconciled. Changes are
   * gathered for --rib-debounce, so a burst reconciles each affected VRF once.
   */
  private onRib(changes: readonly RibChange[]): void {
    // (Not push(...changes): a spread of a table's worth of changes can exceed the call stack.)
    for (const c of changes) this.ribChanges.push(c);
    this.ribTimer ??= setTimeout(() => {
      const pass = (): void => {
        this.ribTimer = undefined;
        const keys = this.vrfController.keysAffected(this.ribChanges);
        this.ribChanges = [];
        this.log.debug({ keys: keys.length }, "RIB changes");
        this.metrics.ribPasses.inc();
        this.queue.addAll(keys, "low");
      };
      void this.holdIfRestarting().finally(pass);
    }, this.cfg.ribDebounceMs).unref();
  }

  /**
   * Graceful restart keeps forwarding through a restart of either end: while a session with
   * graceful restart is not established, what it took away from the RIB — the peer's routes when
   * our gobgpd drops them, e.g. on StopBgp or a restarting peer whose stale routes expired — must
   * not take the node's kernel routes with it at once. The removals are held as after a restart of
   * gobgpd (`--route-hold`); routes still unlearned when it ends go. Checked before each RIB pass
   * (one ListPeer), only when the node's instance asks for graceful restart.
   */
  private async holdIfRestarting(): Promise<void> {
    const s = this.link.current();
    const graceful = this.speakerController.gracefulPeers;
    if (s === undefined || !s.started || graceful.size === 0) return;
    let down: string[];
    try {
      const peers = await s.speaker.listPeers();
      down = [...graceful].filter((a) => peers.find((p) => p.address === a)?.state !== "established");
    } catch (err) {
      // gobgpd stopping (StopBgp answers "server stopped" from then on): nothing it says now counts.
      down = [`gobgpd: ${errText(err)}`];
    }
    if (down.length === 0) return;
    const now = monotonicMs();
    if (s.freshSince !== undefined && now < s.freshSince + this.cfg.routeHoldSeconds * 1000) return;
    s.freshSince = now;
    this.log.info({ down, holdSeconds: this.cfg.routeHoldSeconds }, "graceful-restart session down: holding kernel routes against withdrawals");
  }

  private wire(): void {
    this.vrfs.on({
      add: (o) => this.queue.add(o.metadata.name ?? "", "high"),
      update: (old, o) => {
        // Our own status writes come back as updates; only spec, deletion and finalizers matter.
        if (!sameMeta(old, o)) this.queue.add(o.metadata.name ?? "", "high");
      },
      delete: (o) => this.queue.add(o.metadata.name ?? "", "high"),
      resync: () => {
        this.passOverVrfs();
        // gobgpd's tables are read again too: a safety net under the RIB view kept from events.
        this.link.refreshRib();
      },
    });
    const speaker = (): void => this.queue.add(speakerKey);
    // Every kvrfd writes its own entry of an instance's status: reacting to all of them would make
    // each status write reconcile every node. Only spec changes and published router IDs matter.
    this.instances.on({
      add: speaker,
      delete: speaker,
      update: (old, o) => {
        if (old.metadata.generation !== o.metadata.generation || routerIds(old) !== routerIds(o)) speaker();
      },
      resync: () => this.queue.add(speakerKey, "low"),
    });
    // A node's published record changed (not its heartbeats): every VRF's remote
    // paths are judged again. Its first list passes over every VRF (gated on it until then).
    // An annotation kvrfd cannot read leaves that node's paths unjudged: say so, once per value.
    const warnRecord = (n: V1Node): void => {
      const r = nodeRecord(n);
      if (r.problem !== undefined && this.recordWarned.get(r.name) !== r.problem) {
        this.recordWarned.set(r.name, r.problem);
        this.log.warn({ node: r.name, reason: r.problem }, "a Node's kvrf annotation cannot be read; its paths are not checked against it");
      }
    };
    // The cluster's next hops are also what a peer with exportRoutes Pods is sent paths of: the
    // speaker reconciles too (it changes gobgpd only when the session policy's content did).
    const recordsChanged = (): void => {
      this.passOverVrfs();
      this.queue.add(speakerKey, "low");
    };
    this.fabric.on({
      add: (o) => {
        warnRecord(o);
        recordsChanged();
      },
      update: (old, o) => {
        warnRecord(o);
        if (JSON.stringify(nodeRecord(old)) !== JSON.stringify(nodeRecord(o))) recordsChanged();
      },
      delete: recordsChanged,
      resync: recordsChanged,
    });
    // A claim that appears, goes or changes hands: the VRFs of its value again.
    const claimChanged = (kind: "rt" | "vni") => (c: ClaimObject) => {
      const name = c.metadata?.name ?? "";
      for (const o of this.vrfs.list()) {
        let vpc: bigint;
        try {
          vpc = parseVpc(o.spec.vpc);
        } catch {
          continue;
        }
        const mine = kind === "rt" ? routeTargetClaimName(`${routeTargetAsnOf(o.spec)}:${vpcNumber(vpc)}`) : vniClaimName(vpcVni(vpc));
        if (mine === name) this.queue.add(o.metadata.name ?? "", "high");
      }
    };
    for (const [informer, kind] of [
      [this.rtClaims, "rt"],
      [this.vniClaims, "vni"],
    ] as const) {
      informer.on({
        add: claimChanged(kind),
        delete: claimChanged(kind),
        update: (old, c) => {
          if (old.spec?.vpc !== c.spec?.vpc) claimChanged(kind)(c);
        },
        resync: () => this.passOverVrfs(),
      });
    }
    // Node status heartbeats are noise; labels select the instance, addresses make the router ID.
    this.nodes.on({
      add: speaker,
      delete: speaker,
      update: (old, o) => {
        const view = (n: V1Node): string => JSON.stringify([n.metadata?.labels ?? {}, n.status?.addresses ?? []]);
        if (view(old) !== view(o)) speaker();
      },
      resync: () => this.queue.add(speakerKey, "low"),
    });
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.healthPort = await this.health.listen(this.cfg.healthPort, this.cfg.healthAddress);
    for (;;) {
      try {
        await this.kernel.load();
        this.metrics.kernelRoutes.set(this.kernel.count());
        break;
      } catch (err) {
        this.log.error({ err: String(err) }, "cannot read kernel routes; retrying");
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    await this.probeNodeKernel();
    this.vrfs.start();
    this.instances.start();
    this.nodes.start();
    for (const i of [this.fabric, this.rtClaims, this.vniClaims]) i.start();
    this.armSpeakerDownReport();
    let peerTimer: NodeJS.Timeout | undefined;
    this.link.start({
      up: (s) => {
        if (this.downTimer !== undefined) clearTimeout(this.downTimer);
        this.downTimer = undefined;
        this.metrics.gobgpdConnected.set(1);
        this.queue.add(speakerKey);
        if (s.started) this.passOverVrfs();
      },
      down: () => {
        this.metrics.gobgpdConnected.set(0);
        this.metrics.bgpStarted.set(0);
        this.armSpeakerDownReport();
      },
      lost: () => {
        this.metrics.bgpStarted.set(0);
        this.queue.add(speakerKey);
      },
      rib: (_s, changes) => this.onRib(changes),
      // The RIB view is complete (again): every VRF's routes are recomputed from it.
      ribSynced: () => this.passOverVrfs(),
      event: () => {
        // Peer state changes: one speaker reconcile per burst is plenty.
        peerTimer ??= setTimeout(() => {
          peerTimer = undefined;
          this.queue.add(speakerKey, "low");
        }, 200).unref();
      },
    });
    if (this.cfg.passwordRefreshSeconds > 0) {
      // Password Secrets are read, not watched: a rotation shows up at the next reconcile, which
      // changes nothing in gobgpd unless a password did (peer fingerprints, speaker-planner.ts).
      this.passwordTimer = setInterval(() => {
        if (this.speakerController.readsSecrets) this.queue.add(speakerKey, "low");
      }, this.cfg.passwordRefreshSeconds * 1000).unref();
    }
    this.log.info({ healthPort: this.healthPort, netns: this.cfg.netns, gobgpSocket: this.cfg.gobgpSocket }, "kvrfd started");
  }

  /**
   * Probes the kernel once (capabilities do not change while a kernel runs). A probe that cannot run
   * at all is retried, like the first read of the kernel routes: nothing can be reported without it.
   */
  private async probeNodeKernel(): Promise<void> {
    let report: CapabilityReport;
    for (;;) {
      try {
        report = await this.probeKernel();
        break;
      } catch (err) {
        this.log.error({ err: errText(err) }, "cannot probe the kernel's capabilities; retrying");
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    this.kernelReport = report;
    const k = this.nodeKernel(this.encapsulation()) as NodeKernel;
    for (const c of allCapabilities) this.metrics.kernelCapability.set({ capability: c }, k.present.includes(c) ? 1 : 0);
    const fields = { release: k.release, mode: k.mode, isolation: report.isolation, capabilities: k.present };
    this.log.info(fields, "kernel capabilities probed");
  }

  /** The node's kernel seen through the needs of `encap`'s data plane (undefined before the probe). */
  nodeKernel(encap: Encapsulation): NodeKernel | undefined {
    if (this.kernelReport === undefined) return undefined;
    const k = nodeKernel(this.kernelReport, encap);
    this.metrics.kernelCapabilitiesMissing.set(k.missing.length);
    if (k.missing.length > 0 && this.kernelWarned !== k.message) {
      this.kernelWarned = k.message;
      this.log.error({ release: k.release, mode: k.mode, encapsulation: encap, missing: k.missing, reason: k.message }, "the node's kernel lacks what its data plane needs");
    }
    return k;
  }

  /** The encapsulation of the BGPInstance that selects this node (srv6 when none does yet). */
  private encapsulation(): Encapsulation {
    const node = this.nodes.get(this.cfg.nodeName);
    const { chosen } = node === undefined ? { chosen: undefined } : selectInstance(this.instances.list(), node.metadata?.labels ?? {});
    return chosen?.spec.encapsulation ?? "srv6";
  }

  /** Reports gobgpd's absence on every object only if it lasts: a restart takes about a second. */
  private armSpeakerDownReport(): void {
    this.downTimer ??= setTimeout(() => {
      this.downTimer = undefined;
      if (this.link.current() === undefined) this.passOverVrfs();
    }, speakerGraceMs + 100).unref();
  }

  async stop(): Promise<void> {
    this.log.info("shutting down");
    if (this.ribTimer !== undefined) clearTimeout(this.ribTimer);
    if (this.downTimer !== undefined) clearTimeout(this.downTimer);
    if (this.passwordTimer !== undefined) clearInterval(this.passwordTimer);
    await Promise.all([this.vrfs, this.instances, this.nodes, this.fabric, this.rtClaims, this.vniClaims].map((i) => i.stop()));
    await this.queue.stop();
    await this.statusWriter.stop();
    await this.link.stop();
    await this.health.close();
    this.kube.close();
  }

  /**
   * /debug/v1/snapshot: gobgpd's and the kernel's state now, for callers the API server vouches
   * for (reconciler/debug/auth.ts). Every answer is logged with the caller or the refusal.
   */
  private async debugSnapshot(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const decision = await this.debugAuth.check(req.headers.authorization);
    const from = req.socket.remoteAddress;
    if (!decision.allowed) {
      this.log.warn({ from, status: decision.status, reason: decision.reason }, "debug snapshot refused");
      return { status: decision.status, body: `${decision.reason}\n` };
    }
    const snap = await takeSnapshot({
      nodeName: this.cfg.nodeName,
      version: process.env["KVRF_VERSION"] ?? "0.1.0",
      ready: () => this.readyChecks(),
      kernel: () => {
        const k = this.nodeKernel(this.encapsulation());
        return k === undefined ? undefined : { release: k.release, mode: k.mode, capabilities: [...k.present], missing: [...k.missing] };
      },
      speaker: () => this.link.current()?.speaker,
      ...(this.cfg.netns !== undefined ? { netns: this.cfg.netns } : {}),
    });
    this.log.info({ from, user: decision.user, paths: snap.gobgp.paths.length, routes: snap.linux.routes.length }, "debug snapshot served");
    return { status: 200, body: JSON.stringify(snap) };
  }

  /** The nodes' published records, indexed once per change of the node cache. */
  private nodeIndex(): NodeIndex {
    const v = this.fabric.version();
    if (this.nodeIndexMemo?.version !== v) this.nodeIndexMemo = { version: v, index: indexNodes(this.fabric.list().map(nodeRecord)) };
    return this.nodeIndexMemo.index;
  }

  private underlay(): Promise<Underlay> {
    if (this.underlayResolved !== undefined) return Promise.resolve(this.underlayResolved);
    // One lookup for the many reconciles that start together; a failure is retried next time.
    this.underlayLookup ??= this.resolveUnderlay().finally(() => (this.underlayLookup = undefined));
    return this.underlayLookup;
  }

  private async resolveUnderlay(): Promise<Underlay> {
    const netnsOpt = this.cfg.netns === undefined ? {} : { netns: this.cfg.netns };
    let dev = this.cfg.underlayInterface;
    let kernelChoice: string | undefined;
    const node = this.nodes.get(this.cfg.nodeName);
    if (dev === undefined) {
      // Not configured: the link toward the node's IPv6 BGP peers (reconciler/kernel/underlay.ts).
      const { chosen } = node === undefined ? { chosen: undefined } : selectInstance(this.instances.list(), node.metadata?.labels ?? {});
      const found = await underlayTowardPeers(
        (chosen?.spec.peers ?? []).map((p) => p.address),
        (address) => ipJson<RouteGet>(["-6", "route", "get", address], netnsOpt),
      );
      this.log.info({ dev: found.dev, source: found.nextHop, peer: found.peer }, "underlay found from the route toward a BGP peer");
      dev = found.dev;
      kernelChoice = found.nextHop;
    }
    let nextHop = this.cfg.nextHop;
    if (nextHop === undefined) {
      const links = await ipJson<{ addr_info?: AddrInfo[] }>(["-6", "addr", "show", "dev", dev, "scope", "global"], netnsOpt);
      const nodeAddresses = node === undefined ? [] : nodeRecord(node).addresses;
      const chosen = chooseNextHop(links.flatMap((l) => l.addr_info ?? []), nodeAddresses, kernelChoice);
      if (chosen === undefined) throw new Error(`underlay interface ${dev} has no global IPv6 address to advertise as next hop (set --next-hop)`);
      this.log.info({ dev, nextHop: chosen.address, why: chosen.why, nodeAddresses }, "next hop chosen among the underlay link's addresses");
      nextHop = chosen.address;
    }
    this.underlayResolved = { dev, nextHop };
    this.log.info(this.underlayResolved, "underlay resolved");
    return this.underlayResolved;
  }

  private informers(): Pick<Informer<Named>, "idleMs" | "hasSynced">[] {
    return [this.vrfs, this.instances, this.nodes, this.fabric, this.rtClaims, this.vniClaims];
  }

  healthChecks(): Check[] {
    // Liveness fails only when kvrfd itself is wedged; an unreachable API server or gobgpd is a
    // readiness matter (restarting kvrfd would not bring them back).
    const limit = this.cfg.stallSeconds * 1000 * 3;
    return this.informers().map((i, n) => {
      const idle = i.idleMs();
      return { ok: idle < limit, detail: `informer ${informerNames[n] ?? n} active ${Math.round(idle / 1000)} s ago` };
    });
  }

  private kernelCheck(): Check {
    const k = this.nodeKernel(this.encapsulation());
    if (k === undefined) return { ok: false, detail: "kernel capabilities not probed yet" };
    if (k.missing.length > 0) return { ok: false, detail: k.message };
    return { ok: true, detail: `kernel ${k.release} has what the ${k.mode} data plane with ${k.encapsulation} needs` };
  }

  readyChecks(): Check[] {
    const s = this.link.current();
    return [
      ...this.informers().map((i, n) => ({ ok: i.hasSynced, detail: `informer ${informerNames[n] ?? n} synced` })),
      { ok: this.kernel.isLoaded, detail: "kernel routes read" },
      this.kernelCheck(),
      { ok: s !== undefined, detail: s === undefined ? "gobgpd not connected" : `gobgpd connected (${s.speaker.api}, BGP ${s.started ? "running" : "not running"})` },
    ];
  }
}
