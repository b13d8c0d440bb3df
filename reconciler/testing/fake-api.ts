// FakeKube: in-memory stand-ins for the informer caches and the API writes the controllers make
// (status, finalizers, events, Secrets, BGPInstance node status), for unit tests.
import { vrfFinalizer, type BGPVRFInstance, type BGPVRFInstanceStatus } from "../../shared/api-types.js";
import type { BGPInstanceNodeStatus, SecretKeyRef } from "../bgp-instance/bgp-instance.js";
import type { SpeakerApi, VrfApi } from "../kube/kube.js";

export class FakeStore<T extends { metadata: { name?: string } }> {
  readonly items = new Map<string, T>();
  hasSynced = true;
  private changes = 0;

  version(): number {
    // Tests also edit `items` directly; counting its size keeps deletions visible.
    return this.changes * 100_003 + this.items.size;
  }

  get(name: string): T | undefined {
    return this.items.get(name);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  put(o: T): void {
    this.items.set(o.metadata.name ?? "", o);
    this.changes++;
  }
}

export class FakeVrfApi implements VrfApi, SpeakerApi {
  readonly statuses = new Map<string, BGPVRFInstanceStatus>();
  readonly events: { name: string; type: string; reason: string; message: string }[] = [];
  readonly nodeStatus = new Map<string, BGPInstanceNodeStatus | undefined>();
  readonly secrets = new Map<string, string>();
  statusWrites = 0;
  failNext: string | undefined;

  constructor(private readonly store?: FakeStore<BGPVRFInstance>) {}

  private maybeFail(): void {
    if (this.failNext !== undefined) {
      const m = this.failNext;
      this.failNext = undefined;
      throw new Error(m);
    }
  }

  async patchStatus(name: string, status: BGPVRFInstanceStatus): Promise<void> {
    this.maybeFail();
    this.statusWrites++;
    this.statuses.set(name, status);
    const o = this.store?.get(name);
    if (o !== undefined) this.store?.put({ ...o, status, metadata: { ...o.metadata, resourceVersion: `${Number(o.metadata.resourceVersion ?? 0) + 1}` } });
  }

  async addFinalizer(obj: BGPVRFInstance): Promise<void> {
    this.maybeFail();
    const o = this.store?.get(obj.metadata.name ?? "");
    if (o !== undefined) this.store?.put({ ...o, metadata: { ...o.metadata, finalizers: [...(o.metadata.finalizers ?? []), vrfFinalizer] } });
  }

  async removeFinalizer(obj: BGPVRFInstance): Promise<void> {
    this.maybeFail();
    const name = obj.metadata.name ?? "";
    const o = this.store?.get(name);
    if (o === undefined) return;
    const finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== vrfFinalizer);
    // Like the API server: a deleting object without finalizers is gone.
    if (o.metadata.deletionTimestamp !== undefined && finalizers.length === 0) this.store?.items.delete(name);
    else this.store?.put({ ...o, metadata: { ...o.metadata, finalizers } });
  }

  async event(obj: { name: string }, type: string, reason: string, message: string): Promise<void> {
    this.events.push({ name: obj.name, type, reason, message });
  }

  async secretValue(ref: SecretKeyRef): Promise<string | undefined> {
    return this.secrets.get(`${ref.namespace}/${ref.name}/${ref.key}`);
  }

  async applyNodeStatus(instance: string, entry: BGPInstanceNodeStatus | undefined): Promise<void> {
    this.maybeFail();
    this.nodeStatus.set(instance, entry);
  }
}
