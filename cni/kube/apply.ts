// Server-side apply with one field manager per list-map entry: per attachment in a BGPVRFInstance,
// per node in a RouteTargetClaim. Each manager owns its own entry and co-owns the shared fields,
// so concurrent writers on one object merge in the API server without read-modify-write races,
// and a writer that relinquishes everything drops its manager from managedFields (nothing
// accumulates as pods and nodes come and go).
import { createHash } from "node:crypto";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";

/** The field manager of one attachment (≤ 128 bytes, as the API server requires). */
export function attachmentManager(containerId: string, ifName: string): string {
  const m = `kvrf-cni/${containerId}/${ifName}`;
  return m.length <= 128 ? m : `kvrf-cni/${createHash("sha256").update(`${containerId}/${ifName}`).digest("hex")}`;
}

/** The field manager of one node's entry in shared objects (route-target claims). */
export function nodeManager(nodeName: string): string {
  const m = `kvrf-cni-node/${nodeName}`;
  return m.length <= 128 ? m : `kvrf-cni-node/${createHash("sha256").update(nodeName).digest("hex")}`;
}

export function applyObject<T>(client: KubeClient, resourcePath: string, body: object, manager: string): Promise<T> {
  return client
    .request<T>("PATCH", resourcePath, {
      body,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: manager, force: "false" },
    })
    .then((r) => r.body);
}

export interface RemoveOptions<T> {
  client: KubeClient;
  resourcePath: string;
  /** apiVersion/kind/metadata.name of the object, for the relinquishing apply. */
  identity: { apiVersion: string; kind: string; metadata: { name: string } };
  manager: string;
  /** True when `obj` holds no entry but ours (deleting it is ours to do). */
  onlyOurs(obj: T): boolean;
  /** True when `obj` holds our entry at all. */
  holdsOurs(obj: T): boolean;
}

/**
 * Takes our entry out of a shared object, deleting the object when ours was the last one.
 * The common case is one request (an apply that relinquishes all our fields). When we were the
 * last holder, the required shared fields lose their last owner and the apply is refused (422);
 * then the object is read and deleted with a resourceVersion precondition, so a concurrent ADD
 * that added an entry in between makes the delete fail (409) and we start over.
 * Returns "gone" when the object no longer exists afterwards, "kept" otherwise.
 */
export async function removeOrDelete<T extends { metadata?: { resourceVersion?: string; uid?: string } }>(o: RemoveOptions<T>): Promise<"gone" | "kept"> {
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      await applyObject<T>(o.client, o.resourcePath, o.identity, o.manager);
      return "kept";
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      if (err.notFound) return "gone";
      if (err.status !== 422 && !err.conflict) throw err;
    }
    let obj: T;
    try {
      obj = (await o.client.request<T>("GET", o.resourcePath)).body;
    } catch (err) {
      if (err instanceof KubeError && err.notFound) return "gone";
      throw err;
    }
    if (!o.holdsOurs(obj) && !o.onlyOurs(obj)) return "kept";
    if (!o.onlyOurs(obj)) continue;
    try {
      await o.client.request("DELETE", o.resourcePath, {
        body: {
          apiVersion: "v1",
          kind: "DeleteOptions",
          preconditions: { resourceVersion: obj.metadata?.resourceVersion, uid: obj.metadata?.uid },
        },
      });
      return "gone";
    } catch (err) {
      if (!(err instanceof KubeError)) throw err;
      if (err.notFound) return "gone";
      if (!err.conflict) throw err;
    }
  }
  throw new KubeError(409, "Conflict", `${o.resourcePath}: kept changing while removing ${o.manager}; giving up after 8 attempts`);
}
