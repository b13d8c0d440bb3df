// Every Kubernetes API call kvrfd makes, behind two small interfaces the controllers use (unit
// tests give them in-memory fakes). client-node has no request timeout (FACTS §4), so each call
// carries an AbortSignal through a request middleware: a hung API server fails the reconcile,
// which retries with backoff, instead of wedging a worker forever.
import * as k8s from "@kubernetes/client-node";
import { apiVersion, bgpInstance, bgpVrfInstance, group, version, vrfFinalizer, type BGPVRFInstance, type BGPVRFInstanceStatus } from "../shared/api-types.js";
import type { BGPInstance, BGPInstanceNodeStatus, SecretKeyRef } from "./bgp-instance.js";
import type { ListResult } from "./informer.js";

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

export function loadKubeConfig(file: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file !== undefined && file !== "") kc.loadFromFile(file);
  else if (process.env["KUBERNETES_SERVICE_HOST"] !== undefined) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** A connection pool shared by calls (see callOptions). */
export interface SharedDispatcher {
  dispatcher?: ReturnType<k8s.RequestContext["getDispatcher"]>;
}

/**
 * Per-call options: a timeout (and an outer signal), an optional Content-Type, and a shared
 * connection pool. client-node 2.0.1 gives every request a new undici Agent, i.e. a new TCP and
 * TLS handshake per call (measured: TLS setup dominated kvrfd's CPU at 100 VRFs); the first
 * request's Agent is kept and reused, so calls share keep-alive connections.
 */
export function callOptions(timeoutMs: number, signal?: AbortSignal, contentType?: string, shared?: SharedDispatcher): k8s.ConfigurationOptions {
  // The object-parameter API runs middlewares of the observable flavour (as setHeaderOptions does).
  const middleware: k8s.ObservableMiddleware = {
    pre: (ctx) => {
      const t = AbortSignal.timeout(timeoutMs);
      ctx.setSignal(signal === undefined ? t : AbortSignal.any([signal, t]));
      if (contentType !== undefined) ctx.setHeaderParam("Content-Type", contentType);
      if (shared !== undefined) {
        if (shared.dispatcher === undefined) shared.dispatcher = ctx.getDispatcher();
        else ctx.setDispatcher(shared.dispatcher);
      }
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (r) => new k8s.Observable(Promise.resolve(r)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" };
}

export function apiStatus(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

export class KubeApi implements VrfApi, SpeakerApi {
  readonly custom: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;
  readonly watch: k8s.Watch;
  private readonly shared: SharedDispatcher = {};

  constructor(
    readonly kc: k8s.KubeConfig,
    private readonly nodeName: string,
    private readonly timeoutMs = 15_000,
  ) {
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.watch = new k8s.Watch(kc);
  }

  private opts(contentType?: string, signal?: AbortSignal): k8s.ConfigurationOptions {
    return callOptions(this.timeoutMs, signal, contentType, this.shared);
  }

  async listVrfInstances(labelSelector: string, signal: AbortSignal): Promise<ListResult<BGPVRFInstance>> {
    return (await this.custom.listClusterCustomObject(
      { group, version, plural: bgpVrfInstance.plural, labelSelector },
      this.opts(undefined, signal),
    )) as ListResult<BGPVRFInstance>;
  }

  async listBgpInstances(signal: AbortSignal): Promise<ListResult<BGPInstance>> {
    return (await this.custom.listClusterCustomObject({ group, version, plural: bgpInstance.plural }, this.opts(undefined, signal))) as ListResult<BGPInstance>;
  }

  async listOwnNode(signal: AbortSignal): Promise<ListResult<k8s.V1Node>> {
    const l = await this.core.listNode({ fieldSelector: `metadata.name=${this.nodeName}` }, this.opts(undefined, signal));
    const rv = l.metadata?.resourceVersion;
    return { items: l.items, ...(rv !== undefined ? { metadata: { resourceVersion: rv } } : {}) };
  }

  async patchStatus(name: string, status: BGPVRFInstanceStatus): Promise<void> {
    try {
      await this.custom.patchClusterCustomObjectStatus(
        { group, version, plural: bgpVrfInstance.plural, name, body: { status } },
        this.opts(k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  async addFinalizer(obj: BGPVRFInstance): Promise<void> {
    const name = obj.metadata.name ?? "";
    const fins = obj.metadata.finalizers;
    // The resourceVersion test makes this a compare-and-swap: a concurrent writer's finalizers survive.
    const body =
      fins === undefined
        ? [
            { op: "test", path: "/metadata/resourceVersion", value: obj.metadata.resourceVersion },
            { op: "add", path: "/metadata/finalizers", value: [vrfFinalizer] },
          ]
        : [{ op: "add", path: "/metadata/finalizers/-", value: vrfFinalizer }];
    await this.custom.patchClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name, body }, this.opts(k8s.PatchStrategy.JsonPatch));
  }

  async removeFinalizer(obj: BGPVRFInstance): Promise<void> {
    const name = obj.metadata.name ?? "";
    const i = (obj.metadata.finalizers ?? []).indexOf(vrfFinalizer);
    if (i < 0) return;
    // test+remove by index: removes exactly our entry, or fails (422) if the list moved under us.
    const body = [
      { op: "test", path: `/metadata/finalizers/${i}`, value: vrfFinalizer },
      { op: "remove", path: `/metadata/finalizers/${i}` },
    ];
    try {
      await this.custom.patchClusterCustomObject({ group, version, plural: bgpVrfInstance.plural, name, body }, this.opts(k8s.PatchStrategy.JsonPatch));
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }

  async event(obj: { kind: string; apiVersion: string; name: string; uid?: string }, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const now = new Date();
    // Events of cluster-scoped objects live in "default" (what kubectl describe looks up).
    const namespace = "default";
    await this.core.createNamespacedEvent(
      {
        namespace,
        body: {
          metadata: { name: `${obj.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`, namespace },
          involvedObject: { kind: obj.kind, apiVersion: obj.apiVersion, name: obj.name, ...(obj.uid !== undefined ? { uid: obj.uid } : {}) },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: "kvrfd", host: this.nodeName },
          reportingComponent: "kvrf.dev/kvrfd",
          reportingInstance: this.nodeName,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      },
      this.opts(),
    );
  }

  async secretValue(ref: SecretKeyRef): Promise<string | undefined> {
    try {
      const s = await this.core.readNamespacedSecret({ namespace: ref.namespace, name: ref.name }, this.opts());
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
    const body = { apiVersion, kind: bgpInstance.kind, metadata: { name: instance }, status: { nodes: entry === undefined ? [] : [entry] } };
    try {
      await this.custom.patchClusterCustomObjectStatus(
        { group, version, plural: bgpInstance.plural, name: instance, body, fieldManager: `kvrfd-${this.nodeName}`.slice(0, 128), force: true },
        this.opts(k8s.PatchStrategy.ServerSideApply),
      );
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  }
}
