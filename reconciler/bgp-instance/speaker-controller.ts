// The speaker controller: makes gobgpd run the BGPInstance that selects this node (StartBgp with
// ASN, router ID and listener; peers added, updated and removed to match), and publishes this
// node's entry in the instance's status. One key, so speaker changes never run concurrently.
import { monotonicMs } from "../../shared/clock.js";
import type { V1Node } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { apiVersion, bgpInstance, type Condition, type Encapsulation } from "../../shared/api-types.js";
import { desiredSpeaker, InstanceError, selectInstance, type BGPInstance, type BGPInstanceNodeStatus, type DesiredSpeaker } from "./bgp-instance.js";
import type { SpeakerApi } from "../kube/kube.js";
import type { Metrics } from "../metrics.js";
import type { ReconcileResult } from "../queue.js";
import { findRouterIdConflicts, type NodeAddress } from "./router-id.js";
import { SpeakerError, type PeerStatus } from "../gobgp/speaker.js";
import type { Session } from "../gobgp/speaker-link.js";
import { peerFingerprint, planGlobal, planPeers } from "./speaker-planner.js";
import type { NodeKernel } from "../kernel/node-kernel.js";
import { externalPolicy, type ExternalPolicy } from "../vrf/trust.js";
import { applySessionPolicy } from "./session-policy.js";

export const speakerKey = "\u0000speaker";

export interface SpeakerControllerDeps {
  nodeName: string;
  nodes: { get(name: string): V1Node | undefined; readonly hasSynced: boolean };
  instances: { list(): BGPInstance[]; readonly hasSynced: boolean };
  /**
   * The cluster's own next hops (every Node's addresses and published VTEP), which a peer with
   * exportRoutes Pods is sent paths of; the daemon reconciles again when they change. Absent: none.
   */
  cluster?: { nextHops(): string[]; readonly hasSynced: boolean };
  link: { current(): Session | undefined; report(s: Session, err: unknown): void; loadVrfs(s: Session): Promise<void> };
  api: SpeakerApi;
  metrics: Metrics;
  log: Logger;
  /** BGP started, stopped or restarted in gobgpd: every VRF must be (re)applied or re-reported. */
  onSpeakerReset(): void;
  /** The instance's externalRoutes changed: every VRF's imports must be screened again. */
  onExternalRoutesChange?(): void;
  /** The node's kernel as probed, seen through an encapsulation's needs (the node's status entry). */
  kernel?: (encap: Encapsulation) => NodeKernel | undefined;
  /** Hold deadlines' clock (default monotonicMs); the status timestamps' is wallNow (default Date.now). */
  now?: () => number;
  wallNow?: () => number;
}

export class SpeakerController {
  /** Peer fingerprints applied in the session of `appliedGeneration`. */
  private applied = new Map<string, string>();
  private appliedGeneration = -1;
  private published = new Map<string, string>();
  private lastView = "";
  private warned: string | undefined;
  /** BGP ran in gobgpd at some point while we watched: a later StartBgp is a replay. */
  private hadBgp = false;
  private starts = 0;
  private secretRefs = false;
  private externalText = "";
  private externalPolicy: ExternalPolicy | undefined;
  /** The peers' restrictions (session policies) applied in this speaker session; undefined: unknown. */
  private appliedPolicy: ReadonlyMap<string, readonly string[]> | undefined;
  private policyProblemsText = "";

  constructor(private readonly d: SpeakerControllerDeps) {}

  /** The clock of holds (monotonic, shared/clock.ts). */
  private now(): number {
    return (this.d.now ?? monotonicMs)();
  }

  /**
   * Whether this node's BGPInstance takes peer passwords from Secrets. kvrfd may only get those
   * Secrets by name (no watch, see manifests/rbac/kvrfd.yaml), so the daemon reconciles again
   * every --password-refresh to pick up a rotated password.
   */
  get readsSecrets(): boolean {
    return this.secretRefs;
  }

  /** The node's instance's rules for routes from outside the cluster (spec.externalRoutes), if any. */
  get external(): ExternalPolicy | undefined {
    return this.externalPolicy;
  }

  /** Peers of the node's instance with graceful restart (as of the last reconcile that could tell). */
  gracefulPeers: ReadonlySet<string> = new Set();

  async reconcile(): Promise<ReconcileResult> {
    if (!this.d.nodes.hasSynced || !this.d.instances.hasSynced || this.d.cluster?.hasSynced === false) return { kind: "done" };
    const node = this.d.nodes.get(this.d.nodeName);
    const instances = this.d.instances.list();
    const { chosen, ignored } = node === undefined ? { chosen: undefined, ignored: [] } : selectInstance(instances, node.metadata?.labels ?? {});
    if (node === undefined) this.d.log.warn({ node: this.d.nodeName }, "Node object not found; no BGPInstance can select it");
    this.secretRefs = (chosen?.spec.peers ?? []).some((p) => p.passwordSecretRef !== undefined);
    this.noteExternalRoutes(chosen);

    let desired: DesiredSpeaker | undefined;
    let problem: string | undefined;
    if (chosen !== undefined) {
      try {
        const addresses = (node?.status?.addresses ?? []) as NodeAddress[];
        desired = await desiredSpeaker(chosen, addresses, (ref) => this.d.api.secretValue(ref), this.d.cluster?.nextHops() ?? []);
        this.gracefulPeers = new Set(desired.peers.filter((p) => p.gracefulRestart !== undefined).map((p) => p.address));
      } catch (err) {
        if (!(err instanceof InstanceError)) throw err;
        problem = err.message;
      }
    }

    const s = this.d.link.current();
    let peers: PeerStatus[] = [];
    if (s !== undefined) {
      try {
        peers = await this.applySpeaker(s, chosen, desired, problem);
      } catch (err) {
        this.d.link.report(s, err);
        if (!s.settled) {
          // VRFs wait for the first speaker reconcile of a session; a failed one must not hold them forever.
          s.settled = true;
          this.d.onSpeakerReset();
        }
        await this.publish(chosen, ignored, node, desired, s, [], problem ?? `gobgpd: ${err instanceof Error ? err.message : String(err)}`);
        throw err;
      }
    }
    this.updatePeerMetrics(peers);
    if (s !== undefined) s.settled = true;
    // A new session, or BGP (re)started or stopped inside one: every VRF must be replayed or re-reported.
    const view = `${s?.generation ?? 0}/${s?.started === true}/${this.starts}`;
    if (view !== this.lastView) {
      this.lastView = view;
      this.d.onSpeakerReset();
    }
    await this.publish(chosen, ignored, node, desired, s, peers, problem);
    return { kind: "done" };
  }

  private noteExternalRoutes(chosen: BGPInstance | undefined): void {
    const text = JSON.stringify(chosen?.spec.externalRoutes ?? null);
    if (text === this.externalText) return;
    this.externalText = text;
    this.externalPolicy = externalPolicy(chosen?.spec.externalRoutes);
    for (const problem of this.externalPolicy?.problems ?? []) this.d.log.warn({ instance: chosen?.metadata.name, problem }, "externalRoutes entry ignored");
    this.d.log.info({ instance: chosen?.metadata.name, externalRoutes: chosen?.spec.externalRoutes ?? null }, "routes from outside the cluster: rules changed");
    this.d.onExternalRoutesChange?.();
  }

  private async applySpeaker(s: Session, chosen: BGPInstance | undefined, desired: DesiredSpeaker | undefined, problem: string | undefined): Promise<PeerStatus[]> {
    const firstLook = s.generation !== this.appliedGeneration;
    if (firstLook) {
      this.applied = new Map();
      this.appliedGeneration = s.generation;
      this.appliedPolicy = undefined;
    }
    const observed = await s.speaker.getGlobal();
    if (firstLook && observed !== undefined && s.freshSince === undefined) {
      // BGP was already running (kvrfd restarted). If some session is not up, its paths are not
      // in the RIB yet, e.g. kvrfd restarted right after gobgpd did: hold the kernel routes as
      // after a restart of our own, instead of removing and re-adding them.
      const peers = await s.speaker.listPeers();
      if (peers.some((p) => p.state !== "established")) s.freshSince = this.now();
    }
    if (observed !== undefined || s.started) this.hadBgp = true;
    if (observed === undefined && s.started) {
      s.started = false;
      s.vrfs.clear();
      s.rib.reset();
    }
    // An instance we cannot turn into a config (e.g. no InternalIP for Auto) leaves gobgpd as it is:
    // stopping BGP over a config error would take the node's VPCs down.
    const action = chosen !== undefined && desired === undefined ? undefined : planGlobal(desired?.global, observed);
    // BGP started now on a gobgpd without state: the peers added with it say we are restarting
    // (graceful restart's R and F bits), since the node's forwarding state — the kernel routes,
    // held by kvrfd — outlived gobgpd. Peers configured later in this session do not.
    const restarting = action?.op === "start" || action?.op === "restart";
    if (action !== undefined) {
      const log = this.d.log.child({ asn: desired?.global.asn, routerId: desired?.global.routerId });
      if (action.op === "stop" || action.op === "restart") {
        log.warn({ why: action.op === "restart" ? action.why : "no BGPInstance selects this node" }, "stopping BGP");
        await s.speaker.stopBgp();
        this.d.metrics.speakerWrites.inc({ op: "stop-bgp" });
        s.started = false;
        s.vrfs.clear();
        s.rib.reset();
        this.applied.clear();
      }
      if (action.op === "start" || action.op === "restart") {
        await s.speaker.startBgp(action.global);
        this.d.metrics.speakerWrites.inc({ op: "start-bgp" });
        s.started = true;
        // A fresh RIB: empty until we and the peers fill it (the watch reports that).
        s.rib.reset();
        s.freshSince = this.now();
        this.starts++;
        this.applied.clear();
        this.appliedPolicy = undefined;
        await this.d.link.loadVrfs(s);
        this.d.metrics.replays.inc({ reason: action.op === "restart" ? "config-change" : this.hadBgp ? "gobgpd-restart" : "start" });
        this.hadBgp = true;
        log.info({ listenPort: action.global.listenPort }, "BGP started");
      }
    }
    this.d.metrics.bgpStarted.set(s.started ? 1 : 0);
    if (!s.started || desired === undefined || problem !== undefined) return s.started ? s.speaker.listPeers() : [];

    const before = await s.speaker.listPeers();
    // Before any peer is added: a restricted peer never sees a moment without its filter.
    await this.applyPolicy(s, desired, before);
    const actions = planPeers(desired.peers, before, this.applied);
    for (const a of actions) {
      if (a.op === "delete-peer") {
        await s.speaker.deletePeer(a.address).catch(ignoreKind("not-found"));
        this.applied.delete(a.address);
      } else if (a.op === "add-peer") {
        await s.speaker.addPeer(restarting && a.peer.gracefulRestart !== undefined ? { ...a.peer, localRestarting: true } : a.peer);
        this.applied.set(a.peer.address, peerFingerprint(a.peer));
      } else {
        await s.speaker.updatePeer(a.peer);
        this.applied.set(a.peer.address, peerFingerprint(a.peer));
      }
      this.d.metrics.speakerWrites.inc({ op: a.op });
      this.d.log.info({ op: a.op, peer: a.op === "delete-peer" ? a.address : a.peer.address }, "peer changed");
    }
    // Peers that were already right when this session began count as applied from now on.
    for (const p of desired.peers) if (!this.applied.has(p.address)) this.applied.set(p.address, peerFingerprint(p));
    return actions.length > 0 ? s.speaker.listPeers() : before;
  }

  /** The session policies (peers' vpcs) into gobgpd; failures name themselves in the Ready condition. */
  private async applyPolicy(s: Session, desired: DesiredSpeaker, before: readonly PeerStatus[]): Promise<void> {
    const problems = desired.policyProblems.join("; ");
    if (problems !== this.policyProblemsText) {
      this.policyProblemsText = problems;
      if (problems !== "") this.d.log.warn({ problems: desired.policyProblems }, "peers' vpcs: VPCs left out");
    }
    const established = before.filter((p) => p.state === "established").map((p) => p.address);
    try {
      const r = await applySessionPolicy(s.speaker, desired.sessionPolicy, this.appliedPolicy, established);
      if (r.changed) {
        this.d.metrics.speakerWrites.inc({ op: "session-policy" });
        this.d.log.info({ policy: desired.sessionPolicy?.id ?? "none", restricted: [...(desired.sessionPolicy?.peers.keys() ?? [])], reset: r.reset }, "session policies applied");
      }
    } catch (err) {
      this.appliedPolicy = undefined;
      if (err instanceof SpeakerError) throw new SpeakerError(err.kind, `session policies (peers' vpcs, exportRoutes): ${err.message}`, { cause: err });
      throw err;
    }
    this.appliedPolicy = desired.sessionPolicy?.peers ?? new Map<string, string[]>();
  }

  private updatePeerMetrics(peers: readonly PeerStatus[]): void {
    this.d.metrics.peers.reset();
    for (const p of peers) this.d.metrics.peers.inc({ state: p.state });
    this.d.metrics.peersEstablished.set(peers.filter((p) => p.state === "established").length);
  }

  private async publish(
    chosen: BGPInstance | undefined,
    ignored: readonly BGPInstance[],
    node: V1Node | undefined,
    desired: DesiredSpeaker | undefined,
    s: Session | undefined,
    peers: readonly PeerStatus[],
    problem: string | undefined,
  ): Promise<void> {
    // Drop our entry from instances that no longer select us.
    for (const inst of ignored) await this.writeEntry(inst, undefined);
    for (const name of [...this.published.keys()]) {
      if (name !== chosen?.metadata.name && !ignored.some((i) => i.metadata.name === name)) {
        await this.d.api.applyNodeStatus(name, undefined);
        this.published.delete(name);
      }
    }
    if (chosen === undefined || node === undefined) return;

    const others = this.d.instances
      .list()
      .flatMap((i) => i.status?.nodes ?? [])
      .filter((n) => n.routerID !== undefined)
      .map((n) => ({ node: n.nodeName, routerId: n.routerID ?? "" }));
    const conflicts = desired === undefined ? [] : findRouterIdConflicts({ node: this.d.nodeName, routerId: desired.global.routerId }, others);
    this.d.metrics.routerIdConflicts.set(conflicts.length);

    const established = peers.filter((p) => p.state === "established").length;
    const ready: Condition =
      problem !== undefined
        ? { type: "Ready", status: "False", reason: "InvalidConfig", message: problem }
        : s === undefined
          ? { type: "Ready", status: "False", reason: "SpeakerUnavailable", message: "gobgpd is not reachable" }
          : !s.started
            ? { type: "Ready", status: "False", reason: "BGPNotStarted", message: "BGP is not running" }
            : (desired?.skippedPeers.length ?? 0) > 0
              ? { type: "Ready", status: "False", reason: "PeersSkipped", message: desired?.skippedPeers.join("; ") ?? "" }
              : { type: "Ready", status: "True", reason: "Running", message: `BGP running, ${established}/${peers.length} peers established` };
    const unique: Condition =
      conflicts.length === 0
        ? { type: "RouterIDUnique", status: "True", reason: "Unique", message: "no other node publishes this router ID" }
        : { type: "RouterIDUnique", status: "False", reason: "Collision", message: `router ID ${desired?.global.routerId} is also used by ${conflicts.join(", ")}; set routerID.source=Manual for one of them` };
    const k = this.d.kernel?.(chosen.spec.encapsulation ?? "srv6");
    const capable: Condition =
      k === undefined
        ? { type: "KernelCapabilities", status: "Unknown", reason: "NotProbed", message: "the kernel has not been probed yet" }
        : k.missing.length === 0
          ? { type: "KernelCapabilities", status: "True", reason: "Complete", message: `kernel ${k.release} has what the ${k.mode} data plane with ${k.encapsulation} needs` }
          : { type: "KernelCapabilities", status: "False", reason: "Missing", message: k.message };
    const entry: BGPInstanceNodeStatus = {
      nodeName: this.d.nodeName,
      conditions: [ready, unique, capable],
      ...(k !== undefined ? { kernel: { release: k.release, mode: k.mode, capabilities: k.present, missing: k.missing } } : {}),
      peers: peers.map((p) => ({ address: p.address, state: p.state })),
      establishedPeers: established,
    };
    if (chosen.metadata.generation !== undefined) entry.observedGeneration = chosen.metadata.generation;
    if (desired !== undefined) {
      entry.routerID = desired.global.routerId;
      entry.routerIDSource = desired.routerIdFrom;
      entry.asn = desired.global.asn;
    }
    if (s !== undefined) entry.api = s.speaker.api;
    await this.writeEntry(chosen, entry);

    const bad = ready.status === "False" ? ready : unique.status === "False" ? unique : capable.status === "False" ? capable : undefined;
    if (bad !== undefined && this.warned !== `${bad.reason}`) {
      this.warned = bad.reason;
      this.d.log.warn({ reason: bad.reason, message: bad.message }, "speaker problem");
      await this.d.api
        .event({ kind: bgpInstance.kind, apiVersion, name: chosen.metadata.name ?? "", ...(chosen.metadata.uid !== undefined ? { uid: chosen.metadata.uid } : {}) }, "Warning", bad.reason ?? "Problem", `node ${this.d.nodeName}: ${bad.message ?? ""}`)
        .catch((err: unknown) => this.d.log.debug({ err: String(err) }, "could not record event"));
    } else if (bad === undefined) {
      this.warned = undefined;
    }
  }

  private async writeEntry(inst: BGPInstance, entry: BGPInstanceNodeStatus | undefined): Promise<void> {
    const name = inst.metadata.name ?? "";
    const current = inst.status?.nodes?.find((n) => n.nodeName === this.d.nodeName);
    if (entry === undefined) {
      if (current === undefined && !this.published.has(name)) return;
      await this.d.api.applyNodeStatus(name, undefined);
      this.published.delete(name);
      return;
    }
    const now = new Date((this.d.wallNow ?? Date.now)()).toISOString().replace(/\.\d{3}Z$/, "Z");
    for (const c of entry.conditions ?? []) {
      const old = current?.conditions?.find((x) => x.type === c.type);
      c.lastTransitionTime = old?.status === c.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now;
    }
    const fingerprint = JSON.stringify({ ...entry, conditions: entry.conditions?.map((c) => ({ ...c, lastTransitionTime: undefined })) });
    const currentFp =
      current === undefined ? "" : JSON.stringify({ ...current, conditions: current.conditions?.map((c) => ({ ...c, lastTransitionTime: undefined })) });
    if (this.published.get(name) === fingerprint || currentFp === fingerprint) {
      this.published.set(name, fingerprint);
      return;
    }
    await this.d.api.applyNodeStatus(name, entry);
    this.published.set(name, fingerprint);
  }
}

function ignoreKind(kind: SpeakerError["kind"]): (err: unknown) => void {
  return (err) => {
    if (!(err instanceof SpeakerError && err.kind === kind)) throw err;
  };
}
