// Prometheus metrics of kvrfd, on a registry of its own (tests create as many daemons as they like).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<"controller" | "result">;
  readonly reconcileDuration: Histogram<"controller">;
  readonly queueDepth: Gauge<"controller">;
  readonly vrfs: Gauge;
  readonly vrfsNotReady: Gauge;
  readonly localPaths: Gauge;
  readonly remotePaths: Gauge;
  readonly remotePathsIgnored: Gauge<"reason">;
  readonly kernelRoutes: Gauge;
  readonly gobgpdConnected: Gauge;
  readonly bgpStarted: Gauge;
  readonly peers: Gauge<"state">;
  readonly peersEstablished: Gauge;
  readonly speakerWrites: Counter<"op">;
  readonly kernelWrites: Counter<"op">;
  readonly replays: Counter<"reason">;
  readonly informerRestarts: Counter<"informer" | "reason">;
  readonly routerIdConflicts: Gauge;
  readonly statusWrites: Counter<"result">;
  readonly statusPending: Gauge;
  /** Read when metrics are scraped: the status writer's backlog (set by the daemon). */
  statusBacklog: () => number = () => 0;
  readonly ribPasses: Counter;
  readonly ipRuns: Counter<"kind">;
  readonly apiRequests: Counter<"call">;
  readonly kernelCapability: Gauge<"capability">;
  readonly kernelCapabilitiesMissing: Gauge;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: r, prefix: "kvrfd_" });
    this.reconciles = new Counter({ name: "kvrfd_reconciles_total", help: "Reconciles by controller and result (success, error, requeue).", labelNames: ["controller", "result"], registers: [r] });
    this.reconcileDuration = new Histogram({
      name: "kvrfd_reconcile_duration_seconds",
      help: "Duration of one reconcile.",
      labelNames: ["controller"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    this.queueDepth = new Gauge({ name: "kvrfd_queue_depth", help: "Keys waiting in the work queue.", labelNames: ["controller"], registers: [r] });
    this.vrfs = new Gauge({ name: "kvrfd_vrfs", help: "GoBGP VRFs kvrfd manages.", registers: [r] });
    this.vrfsNotReady = new Gauge({ name: "kvrfd_vrfs_not_ready", help: "BGPVRFInstances of this node whose Ready condition is not True.", registers: [r] });
    this.localPaths = new Gauge({ name: "kvrfd_local_paths", help: "Prefixes this node originates into VRFs.", registers: [r] });
    this.remotePaths = new Gauge({ name: "kvrfd_remote_paths", help: "Remote best paths in this node's VRFs.", registers: [r] });
    this.remotePathsIgnored = new Gauge({
      name: "kvrfd_remote_paths_ignored",
      help: "Remote paths this node's VRFs do not import because the nodes' published locators, VTEPs or router MACs contradict them, or the BGPInstance's externalRoutes refuse them, by reason.",
      labelNames: ["reason"],
      registers: [r],
    });
    this.kernelRoutes = new Gauge({ name: "kvrfd_kernel_routes", help: "Kernel routes owned by kvrfd (proto 241).", registers: [r] });
    this.gobgpdConnected = new Gauge({ name: "kvrfd_gobgpd_connected", help: "1 while kvrfd holds a session with gobgpd.", registers: [r] });
    this.bgpStarted = new Gauge({ name: "kvrfd_bgp_started", help: "1 while gobgpd runs BGP with the node's BGPInstance.", registers: [r] });
    this.peers = new Gauge({ name: "kvrfd_bgp_peers", help: "Configured BGP peers by session state.", labelNames: ["state"], registers: [r] });
    this.peersEstablished = new Gauge({ name: "kvrfd_bgp_peers_established", help: "BGP peers in state established.", registers: [r] });
    this.speakerWrites = new Counter({ name: "kvrfd_speaker_writes_total", help: "Changes kvrfd made in gobgpd, by operation.", labelNames: ["op"], registers: [r] });
    this.kernelWrites = new Counter({ name: "kvrfd_kernel_route_writes_total", help: "Kernel route changes kvrfd made, by operation.", labelNames: ["op"], registers: [r] });
    this.replays = new Counter({ name: "kvrfd_replays_total", help: "Full replays into gobgpd after it lost its state.", labelNames: ["reason"], registers: [r] });
    this.informerRestarts = new Counter({ name: "kvrfd_informer_restarts_total", help: "Informer relists by informer and reason.", labelNames: ["informer", "reason"], registers: [r] });
    this.ipRuns = new Counter({ name: "kvrfd_ip_runs_total", help: "iproute2 processes run, by purpose (batch of writes, dump, lookup, flush).", labelNames: ["kind"], registers: [r] });
    this.ribPasses = new Counter({ name: "kvrfd_rib_passes_total", help: "Passes over every VRF after RIB events.", registers: [r] });
    this.statusWrites = new Counter({ name: "kvrfd_status_writes_total", help: "BGPVRFInstance status writes by result.", labelNames: ["result"], registers: [r] });
    const backlog = (): number => this.statusBacklog();
    this.statusPending = new Gauge({
      name: "kvrfd_status_pending",
      help: "BGPVRFInstance statuses computed but not written yet (held back during bursts, queued or retrying).",
      registers: [r],
      collect() {
        this.set(backlog());
      },
    });
    this.apiRequests = new Counter({ name: "kvrfd_api_requests_total", help: "Kubernetes API requests by call (list, watch, status, finalizer, event, secret, node-status, review: the debug endpoint's token and access reviews).", labelNames: ["call"], registers: [r] });
    this.kernelCapability = new Gauge({ name: "kvrfd_kernel_capability", help: "1 when the node's kernel has the data-plane capability (probed at start), else 0.", labelNames: ["capability"], registers: [r] });
    this.kernelCapabilitiesMissing = new Gauge({ name: "kvrfd_kernel_capabilities_missing", help: "Capabilities the node's data plane needs and its kernel lacks (see the BGPInstance's KernelCapabilities condition).", registers: [r] });
    this.routerIdConflicts = new Gauge({ name: "kvrfd_router_id_conflicts", help: "Other nodes publishing this node's router ID.", registers: [r] });
  }
}
