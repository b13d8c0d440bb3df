// This node's speaker config: the ASN and the encapsulation of the BGPInstance whose nodeSelector
// matches the Node's labels (two requests), for what the network config does not set itself.
import { CniError, ErrorCode } from "../error.js";
import { apiVersion, bgpInstance, type Encapsulation } from "../../shared/api-types.js";
import { matchesSelector, type LabelSelector } from "../../shared/label-selector.js";
import type { KubeClient } from "./client.js";
import { KubeError } from "./credentials.js";

interface BgpInstanceObj {
  metadata?: { name?: string };
  spec?: { asn?: number; routeTargetASN?: number; encapsulation?: Encapsulation; nodeSelector?: LabelSelector };
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

/** The speaker config of exactly one BGPInstance selecting the node (code 7 naming `field` otherwise). */
export async function speakerFor(
  client: KubeClient,
  nodeName: string,
  field = "asn",
): Promise<{ name: string; asn: number; routeTargetAsn: number; encapsulation: Encapsulation }> {
  const matches = await speakerConfigsFor(client, nodeName);
  const names = matches.map((m) => m.metadata?.name ?? "?").join(", ");
  if (matches.length === 0) {
    throw new CniError(ErrorCode.InvalidConfig, `${field}: not set in the config and no BGPInstance selects node ${nodeName}`);
  }
  if (matches.length > 1) {
    throw new CniError(ErrorCode.InvalidConfig, `${field}: not set in the config and several BGPInstances select node ${nodeName} (${names})`);
  }
  const asn = matches[0]?.spec?.asn;
  if (asn === undefined) throw new CniError(ErrorCode.InvalidConfig, `${field}: BGPInstance ${names} has no spec.asn`);
  return { name: names, asn, routeTargetAsn: matches[0]?.spec?.routeTargetASN ?? asn, encapsulation: matches[0]?.spec?.encapsulation ?? "srv6" };
}

/** The ASN from exactly one BGPInstance selecting the node. */
export async function asnForNode(client: KubeClient, nodeName: string): Promise<number> {
  return (await speakerFor(client, nodeName)).asn;
}
