// The ASN of this node's speaker: from the BGPInstance whose nodeSelector matches the Node's
// labels (two requests), when the network config does not set "asn".
import { CniError, ErrorCode } from "../error.js";
import { apiVersion, bgpInstance } from "../../shared/api-types.js";
import { matchesSelector, type LabelSelector } from "../../shared/label-selector.js";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";

interface BgpInstanceObj {
  metadata?: { name?: string };
  spec?: { asn?: number; nodeSelector?: LabelSelector };
}

/** The BGPInstances selecting `nodeName`; throws CniError when the API cannot answer. */
export async function speakerConfigsFor(client: KubeClient, nodeName: string): Promise<BgpInstanceObj[]> {
  try {
    const [node, list] = await Promise.all([
      client.request<{ metadata?: { labels?: Record<string, string> } }>("GET", `/api/v1/nodes/${encodeURIComponent(nodeName)}`),
      client.request<{ items?: BgpInstanceObj[] }>("GET", `/apis/${apiVersion}/${bgpInstance.plural}`),
    ]);
    const labels = node.body.metadata?.labels ?? {};
    return (list.body.items ?? []).filter((b) => matchesSelector(b.spec?.nodeSelector, labels));
  } catch (err) {
    if (err instanceof KubeError) {
      if (err.notFound && err.message.includes("/nodes/")) {
        throw new CniError(ErrorCode.InvalidConfig, `nodeName: node "${nodeName}" does not exist in the cluster`);
      }
      const code = err.unreachable ? ErrorCode.TryAgainLater : ErrorCode.KubernetesApi;
      throw new CniError(code, `reading the speaker config (BGPInstance) for node ${nodeName}: ${err.message}`, "", { cause: err });
    }
    throw err;
  }
}

/** The ASN from exactly one BGPInstance selecting the node. */
export async function asnForNode(client: KubeClient, nodeName: string): Promise<number> {
  const matches = await speakerConfigsFor(client, nodeName);
  const names = matches.map((m) => m.metadata?.name ?? "?").join(", ");
  if (matches.length === 0) {
    throw new CniError(ErrorCode.InvalidConfig, `asn: not set in the config and no BGPInstance selects node ${nodeName}`);
  }
  if (matches.length > 1) {
    throw new CniError(ErrorCode.InvalidConfig, `asn: not set in the config and several BGPInstances select node ${nodeName} (${names})`);
  }
  const asn = matches[0]?.spec?.asn;
  if (asn === undefined) throw new CniError(ErrorCode.InvalidConfig, `asn: BGPInstance ${names} has no spec.asn`);
  return asn;
}
