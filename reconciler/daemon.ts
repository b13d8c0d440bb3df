// kvrfd wired together: informers feed one work queue; the VRF controller and the speaker
// controller reconcile its keys; the speaker link reports gobgpd sessions and RIB events; the
// health server exposes readiness and metrics. Separate from main.ts so tests can run it in-process.
import type { V1Node } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { bgpInstance, bgpVrfInstance, group, nodeLabel, nodeLabelValue, version, type BGPVRFInstance } from "../shared/api-types.js";
import { ipJson } from "../shared/kernel/ip.js";
import type { BGPInstance } from "./bgp-instance.js";
import type { Config } from "./config.js";
import { HealthServer, type Check } from "./health.js";
import { Informer, type Named } from "./informer.js";
import { IpRouteBackend, KernelRouteCache, type KernelRouteBackend } from "./kernel-routes.js";
import { KubeApi, loadKubeConfig } from "./kube.js";
import { Metrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import type { Speaker } from "./speaker.js";
import { SpeakerController, speakerKey } from "./speaker-controller.js";
import { PrefixSpacer } from "./prefix-spacer.js";
import { SpeakerLink } from "./speaker-link.js";
import { StatusWriter } from "./status-writer.js";
import { orphanKey, VrfController, type Underlay } from "./vrf-controller.js";

const speakerGraceMs = 10_000;

export interface DaemonDeps {
  connect: () => Promise<Speaker>;
  kernel?: KernelRouteBackend;
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

export class Daemon {
  readonly metrics = new Metrics();
  readonly kube: KubeApi;
  readonly vrfs: Informer<BGPVRFInstance>;
  readonly instances: Informer<BGPInstance>;
  readonly nodes: Informer<V1Node>;
  readonly link: SpeakerLink;
  readonly kernel: KernelRouteCache;
  readonly queue: WorkQueue;
  readonly vrfController: VrfController;
  readonly speakerController: SpeakerController;
  readonly statusWriter: StatusWriter;
  private readonly health: HealthServer;
  private underlayResolved: Underlay | undefined;
  private underlayLookup: Promise<Underlay> | undefined;
  private ribTimer: NodeJS.Timeout | undefined;
  private ribDirty = false;
  private lastPass = 0;
  private downTimer: NodeJS.Timeout | undefined;
  private readonly peerStates = new Map<string, string>();
  private peerGeneration = 0;
  private started = false;
  healthPort = 0;

  constructor(
    private readonly cfg: Config,
    private readonly log: Logger,
    deps: DaemonDeps,
  ) {
    this.kube = new KubeApi(loadKubeConfig(cfg.kubeconfig), cfg.nodeName, cfg.apiTimeoutSeconds * 1000);
    const common = {
      watch: this.kube.watch,
      resyncMs: cfg.resyncSeconds * 1000,
      stallMs: cfg.stallSeconds * 1000,
      listTimeoutMs: cfg.apiTimeoutSeconds * 4000,
      log,
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
    this.link = new SpeakerLink({
      connect: deps.connect,
      probeIntervalMs: cfg.probeSeconds * 1000,
      backoff: { baseMs: 250, maxMs: 5000 },
      log: log.child({ component: "speaker-link" }),
    });
    this.kernel = new KernelRouteCache(deps.kernel ?? new IpRouteBackend(cfg.netns, (kind) => this.metrics.ipRuns.inc({ kind })));
    this.statusWriter = new StatusWriter((name, status) => this.kube.patchStatus(name, status), {
      workers: 4,
      log: log.child({ component: "status" }),
      onResult: (result) => this.metrics.statusWrites.inc({ result }),
    });
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
      busy: () => this.queue.depth > 0,
      spacer: new PrefixSpacer(300),
    });
    this.speakerController = new SpeakerController({
      nodeName: cfg.nodeName,
      nodes: this.nodes,
      instances: this.instances,
      link: this.link,
      api: this.kube,
      metrics: this.metrics,
      log: log.child({ component: "speaker" }),
      onSpeakerReset: () => this.passOverVrfs(),
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
    this.health = new HealthServer({ healthy: () => this.healthChecks(), ready: () => this.readyChecks(), registry: this.metrics.registry });
    this.wire();
  }

  private vrfKeys(): string[] {
    return [...new Set([...this.vrfs.keys(), ...this.vrfController.knownKeys()])];
  }

  /** A pass over every VRF key (low lane), plus the orphan sweep. */
  private passOverVrfs(): void {
    this.lastPass = Date.now();
    this.queue.addAll(this.vrfKeys(), "low");
    this.queue.add(orphanKey, "low");
  }

  /**
   * RIB events name no VRF, so each burst means "some VRF's RIB changed" and costs a pass over
   * every VRF (two RIB listings each). Passes are therefore spaced out: events are gathered for
   * --rib-debounce, and a new pass starts only once the previous one has finished, so at most one
   * is ever queued and a burst of new objects (high lane) is never stuck behind them.
   */
  private onRib(): void {
    this.ribDirty = true;
    if (this.ribTimer !== undefined) return;
    this.ribTimer = setTimeout(() => {
      this.ribTimer = undefined;
      if (!this.ribDirty) return;
      if (this.queue.lowPending > 0) return this.onRib();
      this.ribDirty = false;
      const now = Date.now();
      this.log.debug({ keys: this.vrfKeys().length, sinceLastPassMs: now - this.lastPass }, "RIB pass");
      this.lastPass = now;
      this.metrics.ribPasses.inc();
      this.queue.addAll(this.vrfKeys(), "low");
    }, this.cfg.ribDebounceMs);
    this.ribTimer.unref();
  }

  private wire(): void {
    this.vrfs.on({
      add: (o) => this.queue.add(o.metadata.name ?? "", "high"),
      update: (old, o) => {
        // Our own status writes come back as updates; only spec, deletion and finalizers matter.
        if (!sameMeta(old, o)) this.queue.add(o.metadata.name ?? "", "high");
      },
      delete: (o) => this.queue.add(o.metadata.name ?? "", "high"),
      resync: () => this.passOverVrfs(),
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
    this.vrfs.start();
    this.instances.start();
    this.nodes.start();
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
      event: (s, e) => {
        if (e.kind === "rib") this.onRib();
        else {
          if (s.generation !== this.peerGeneration) {
            this.peerGeneration = s.generation;
            this.peerStates.clear();
          }
          const before = this.peerStates.get(e.address);
          this.peerStates.set(e.address, e.state);
          // A session that came up: a transition we saw, or the first news of a peer of a BGP we
          // started ourselves. Not a session we first hear of as up in a gobgpd that was already
          // running (kvrfd restarted: the watch replays current states, nothing was sent anew).
          const cameUp = before === undefined ? s.freshSince !== undefined : before !== "established";
          if (e.state === "established" && cameUp) {
            // Chosen now (what the table transfer held), run a moment later: gobgpd sends the
            // table when the session comes up, so any later path change goes out after it.
            const keys = this.vrfController.markReannounce();
            if (keys.length > 0) setTimeout(() => this.queue.addAll(keys, "high"), 500).unref();
          }
          // Peer state changes: one speaker reconcile per burst is plenty.
          peerTimer ??= setTimeout(() => {
            peerTimer = undefined;
            this.queue.add(speakerKey, "low");
          }, 200).unref();
        }
      },
    });
    this.log.info({ healthPort: this.healthPort, netns: this.cfg.netns, gobgpSocket: this.cfg.gobgpSocket }, "kvrfd started");
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
    await Promise.all([this.vrfs.stop(), this.instances.stop(), this.nodes.stop()]);
    await this.queue.stop();
    await this.statusWriter.stop();
    await this.link.stop();
    await this.health.close();
  }

  private underlay(): Promise<Underlay> {
    if (this.underlayResolved !== undefined) return Promise.resolve(this.underlayResolved);
    // One lookup for the many reconciles that start together; a failure is retried next time.
    this.underlayLookup ??= this.resolveUnderlay().finally(() => (this.underlayLookup = undefined));
    return this.underlayLookup;
  }

  private async resolveUnderlay(): Promise<Underlay> {
    const dev = this.cfg.underlayInterface;
    if (dev === undefined) throw new Error("no underlay interface configured (--underlay-interface / KVRFD_UNDERLAY_INTERFACE)");
    let nextHop = this.cfg.nextHop;
    if (nextHop === undefined) {
      const links = await ipJson<{ addr_info?: { family: string; local: string; scope: string }[] }>(
        ["-6", "addr", "show", "dev", dev, "scope", "global"],
        this.cfg.netns === undefined ? {} : { netns: this.cfg.netns },
      );
      nextHop = links.flatMap((l) => l.addr_info ?? []).find((a) => a.family === "inet6" && a.scope === "global")?.local;
      if (nextHop === undefined) throw new Error(`underlay interface ${dev} has no global IPv6 address to advertise as next hop (set --next-hop)`);
    }
    this.underlayResolved = { dev, nextHop };
    this.log.info(this.underlayResolved, "underlay resolved");
    return this.underlayResolved;
  }

  private informers(): Pick<Informer<Named>, "idleMs" | "hasSynced">[] {
    return [this.vrfs, this.instances, this.nodes];
  }

  healthChecks(): Check[] {
    // Liveness fails only when kvrfd itself is wedged; an unreachable API server or gobgpd is a
    // readiness matter (restarting kvrfd would not bring them back).
    const limit = this.cfg.stallSeconds * 1000 * 3;
    return this.informers().map((i, n) => {
      const idle = i.idleMs();
      return { ok: idle < limit, detail: `informer ${["bgpvrfinstances", "bgpinstances", "node"][n]} active ${Math.round(idle / 1000)} s ago` };
    });
  }

  readyChecks(): Check[] {
    const s = this.link.current();
    return [
      ...this.informers().map((i, n) => ({ ok: i.hasSynced, detail: `informer ${["bgpvrfinstances", "bgpinstances", "node"][n]} synced` })),
      { ok: this.kernel.isLoaded, detail: "kernel routes read" },
      { ok: s !== undefined, detail: s === undefined ? "gobgpd not connected" : `gobgpd connected (${s.speaker.api}, BGP ${s.started ? "running" : "not running"})` },
    ];
  }
}
