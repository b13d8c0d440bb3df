// Every Kubernetes API call kvrfd makes, behind two small interfaces the controllers use (unit
// tests give them in-memory fakes), over kvrfd's own transport (kube-client.ts: one keep-alive
// connection pool, a timeout on every request, raw JSON objects as the watch delivers them).
import type { V1Node } from "@kubernetes/client-node";
import { apiVersion, bgpInstance, bgpVrfInstance, group, version, vrfFinalizer, type BGPVRFInstance, type BGPVRFInstanceStatus } from "../../shared/api-types.js";
import type { BGPInstance, BGPInstanceNodeStatus, SecretKeyRef } from "../bgp-instance/bgp-instance.js";
import type { ListResult } from "./informer.js";
import { apiStatus, KubeClient, type CallOptions, type KubeAccess, type Watcher } from "./kube-client.js";

export { apiStatus, KubeError } from "./kube-client.js";

/** What the VRF controller writes. */
export interface VrfApi {
  patchStatus(name: string, status: BGPVRFInstanceStatus): Promise<void>;
  addFinalizer(obj: BGPVRFInstance): Promise<void>;
  removeFinalizer(obj: BGPVRFInstance): Promise<void>;
  event(obj: { kind: string; apiVersion: string; name: string; uid?: string }, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
}

/** What the speaker controller reads and writes. */
export interface SpeakerApi {
  secretValue(ref: SecretKeyRef): Promise<string | undefined>;
  /** Writes this node's entry in the instance's status.nodes (undefined removes it). */
  applyNodeStatus(instance: string, entry: BGPInstanceNodeStatus | undefined): Promise<void>;
  event(obj: { kind: string; apiVersion: string; name: string; uid?: string }, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
}

const crd = `/apis/${group}/${version}`;

/** A RouteTargetClaim or VNIClaim as kvrfd reads it: which VPC holds it. */
export interface ClaimObject {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { vpc?: string };
}
const vrfPath = (name?: string): string => `${crd}/${bgpVrfInstance.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
const instancePath = (name?: string): string => `${crd}/${bgpInstance.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;

const mergePatch = "application/merge-patch+json";
const jsonPatch = "application/json-patch+json";
const applyPatch = "application/apply-patch+yaml";

/** What kvrfd asks of the API server, for kvrfd_api_requests_total. */
export type ApiCall = "list" | "watch" | "status" | "finalizer" | "event" | "secret" | "node-status" | "review";

export class KubeApi implements VrfApi, SpeakerApi {
  readonly client: KubeClient;
  /** The informers' watches, counted. */
  readonly watcher: Watcher;

  constructor(
    access: KubeAccess,
    private readonly nodeName: string,
    private readonly timeoutMs = 15_000,
    private readonly onCall: (call: ApiCall) => void = () => undefined,
  ) {
    this.client = new KubeClient(access, timeoutMs, 30_000, `kvrfd/${process.env["KVRF_VERSION"] ?? "dev"} (${nodeName})`);
    this.watcher = {
      watch: (apiPath, query, cb, done) => {
        this.onCall("watch");
        return this.client.watch(apiPath, query, cb, done);
      },
    };
  }

  private request<T>(call: ApiCall, method: string, apiPath: string, opts: CallOptions = {}): Promise<T> {
    this.onCall(call);
    return this.client.request<T>(method, apiPath, opts);
  }

  /** Lists get four times the request timeout (1,000 objects are a few MB). */
  private list<T>(apiPath: string, query: Record<string, string>, signal: AbortSignal): Promise<ListResult<T>> {
    return this.request<ListResult<T>>("list", "GET", apiPath, { query, signal, timeoutMs: this.timeoutMs * 4 });
  }

  listVrfInstances(labelSelector: string, signal: AbortSignal): Promise<ListResult<BGPVRFInstance>> {
    return this.list(vrfPath(), { labelSelector }, signal);
  }

  listBgpInstances(signal: AbortSignal): Promise<ListResult<BGPInstance>> {
    return this.list(instancePath(), {}, signal);
  }

  /** Every Node: their published locators, VTEPs and addresses (reconciler/vrf/trust.ts). */
  listNodes(signal: AbortSignal): Promise<ListResult<V1Node>> {
    return this.list("/api/v1/nodes", {}, signal);
  }

  /** RouteTargetClaims or VNIClaims (cluster-scoped). */
  listClaims(plural: string, signal: AbortSignal): Promise<ListResult<ClaimObject>> {
    return this.list(`${crd}/${plural}`, {}, signal);
  }

  listOwnNode(signal: AbortSignal): Promise<ListResult<V1Node>> {
    return this.list("/api/v1/nodes", { fieldSelector: `metadata.name=${this.nodeName}` }, signal);
  }

  async patchStatus(name: string, status: BGPVRFInstanceStatus): Promise<void> {
    try {
      await this.request("status", "PATCH", `${vrfPath(name)}/status`, { body: { status }, contentType: mergePatch });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  async addFinalizer(obj: BGPVRFInstance): Promise<void> {
    const fins = obj.metadata.finalizers;
    // The resourceVersion test makes this a compare-and-swap: a concurrent writer's finalizers survive.
    const body =
      fins === undefined
        ? [
            { op: "test", path: "/metadata/resourceVersion", value: obj.metadata.resourceVersion },
            { op: "add", path: "/metadata/finalizers", value: [vrfFinalizer] },
          ]
        : [{ op: "add", path: "/metadata/finalizers/-", value: vrfFinalizer }];
    await this.request("finalizer", "PATCH", vrfPath(obj.metadata.name ?? ""), { body, contentType: jsonPatch });
  }

  async removeFinalizer(obj: BGPVRFInstance): Promise<void> {
    const i = (obj.metadata.finalizers ?? []).indexOf(vrfFinalizer);
    if (i < 0) return;
    // test+remove by index: removes exactly our entry, or fails (422) if the list moved under us.
    const body = [
      { op: "test", path: `/metadata/finalizers/${i}`, value: vrfFinalizer },
      { op: "remove", path: `/metadata/finalizers/${i}` },
    ];
    try {
      await this.request("finalizer", "PATCH", vrfPath(obj.metadata.name ?? ""), { body, contentType: jsonPatch });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  async event(obj: { kind: string; apiVersion: string; name: string; uid?: string }, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const now = new Date();
    // Events of cluster-scoped objects live in "default" (what kubectl describe looks up).
    const namespace = "default";
    const ts = now.toISOString().replace(/\.\d{3}Z$/, "Z");
    await this.request("event", "POST", `/api/v1/namespaces/${namespace}/events`, {
      body: {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name: `${obj.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace },
        involvedObject: { kind: obj.kind, apiVersion: obj.apiVersion, name: obj.name, ...(obj.uid !== undefined ? { uid: obj.uid } : {}) },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: "kvrfd", host: this.nodeName },
        reportingComponent: "kvrf.dev/kvrfd",
        reportingInstance: this.nodeName,
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
      },
    });
  }

  async secretValue(ref: SecretKeyRef): Promise<string | undefined> {
    try {
      const s = await this.request<{ data?: Record<string, string> }>("secret", "GET", `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/secrets/${encodeURIComponent(ref.name)}`);
      const v = s.data?.[ref.key];
      return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }

  async applyNodeStatus(instance: string, entry: BGPInstanceNodeStatus | undefined): Promise<void> {
    // Server-side apply with a per-node field manager: each kvrfd owns exactly its own entry of the
    // status.nodes list-map, so nodes never overwrite each other and an empty list drops ours.
    // The two maps repeat the entry's router ID and session count under the node's own key, for
    // the printer columns (a column prints only the first match of a list path).
    const mine = (v: string | number | undefined): Record<string, string | number> | undefined => (v === undefined ? undefined : { [this.nodeName]: v });
    const status =
      entry === undefined
        ? { nodes: [] }
        : { nodes: [entry], ...(entry.routerID !== undefined ? { routerIDs: mine(entry.routerID) } : {}), ...(entry.establishedPeers !== undefined ? { establishedPeers: mine(entry.establishedPeers) } : {}) };
    const body = { apiVersion, kind: bgpInstance.kind, metadata: { name: instance }, status };
    try {
      await this.request("node-status", "PATCH", `${instancePath(instance)}/status`, {
        body,
        contentType: applyPatch,
        query: { fieldManager: `kvrfd-${this.nodeName}`.slice(0, 128), force: true },
      });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  /** TokenReview / SubjectAccessReview for the debug endpoint's callers (reconciler/debug/auth.ts). */
  review<T>(kind: "tokenreviews" | "subjectaccessreviews", body: unknown): Promise<T> {
    const group = kind === "tokenreviews" ? "authentication.k8s.io" : "authorization.k8s.io";
    return this.request<T>("review", "POST", `/apis/${group}/v1/${kind}`, { body });
  }

  close(): void {
    this.client.close();
  }
}
