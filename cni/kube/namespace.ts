// The pod's namespace as the plugin needs it: its annotations (one GET; RBAC: get namespaces).
import { CniError, ErrorCode } from "../error.js";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";

/** The namespace's annotations; undefined when the namespace does not exist. */
export async function namespaceAnnotations(client: KubeClient, namespace: string): Promise<Record<string, string> | undefined> {
  try {
    const r = await client.request<{ metadata?: { annotations?: Record<string, string> } }>("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    return r.body.metadata?.annotations ?? {};
  } catch (err) {
    if (err instanceof KubeError) {
      if (err.notFound) return undefined;
      const code = err.unreachable ? ErrorCode.TryAgainLater : ErrorCode.KubernetesApi;
      throw new CniError(code, `reading namespace ${namespace} for its VPC: ${err.message}`, "", { cause: err });
    }
    throw err;
  }
}
