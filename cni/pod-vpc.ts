// Which VPC an attachment is in. ADD chooses it: the network config's `vpc`, or with
// `vpcFromNamespace` the pod namespace's kvrf.dev/vpc annotation (the config's `vpc` being the
// default for namespaces without one). DEL, CHECK and GC must act on the VPC ADD chose, whatever
// the annotation says now or whether the namespace still exists: they find it in the node's
// record of the attachment (attachment-record.ts), else in the kernel (the host veth's name
// encodes it), else — DEL only, after a reboot cleared the records and the kernel — in the node's
// BGPVRFInstances of the VPCs it could be in (docs/cni-config.md#the-vpc-of-a-namespace).
import { CniError, ErrorCode } from "./error.js";
import { namespaceVpcAnnotation, parseVpcId, vpcOf, type Vpc } from "./config.js";
import { readRecord } from "./attachment-record.js";
import { kvrfLinksByAlias, type BaseContext } from "./context.js";
import type { KubeClient } from "./kube/client.js";
import { namespaceAnnotations } from "./kube/namespace.js";
import { getBgpVrfInstance } from "./kube/objects.js";
import { markerPath } from "./route-target-hold.js";
import { parseHostVethName } from "../shared/ifnames.js";
import { parseVpc } from "../shared/ids.js";
import { readdirSync } from "node:fs";
import path from "node:path";

/** The CNI_ARGS key carrying the pod's namespace (kubelet's runtimes set it, with K8S_POD_NAME). */
export const podNamespaceArg = "K8S_POD_NAMESPACE";

export interface ChosenVpc {
  vpc: Vpc;
  /** The pod's namespace, when the config looks at it. */
  namespace?: string;
  /** Where the VPC came from, as messages name it: "vpc" (the config) or the namespace's annotation. */
  field: string;
}

/** The annotation of `namespace`, as error messages name it. */
export function annotationField(namespace: string): string {
  return `namespace ${namespace} annotation ${namespaceVpcAnnotation}`;
}

/**
 * ADD: the VPC of a new attachment. Without `vpcFromNamespace`, the config's (the namespace is
 * never read). With it, the annotation of the namespace named by CNI_ARGS K8S_POD_NAMESPACE (one
 * GET), else the config's `vpc`; neither is code 7 naming the namespace and the annotation.
 */
export async function chooseVpc(ctx: BaseContext, client: () => Promise<KubeClient>): Promise<ChosenVpc> {
  const { conf, args } = ctx;
  const fallback = conf.defaultVpc;
  if (!conf.vpcFromNamespace) {
    if (fallback === undefined) throw new CniError(ErrorCode.Internal, "vpc: no VPC in a config without vpcFromNamespace");
    return { vpc: fallback, field: "vpc" };
  }
  const namespace = args.args.get(podNamespaceArg);
  if (namespace === undefined || namespace === "") {
    if (fallback !== undefined) return { vpc: fallback, field: "vpc" };
    throw new CniError(
      ErrorCode.InvalidConfig,
      `vpcFromNamespace: CNI_ARGS has no ${podNamespaceArg} (not a Kubernetes pod?) and the network config "${conf.name}" has no default "vpc"`,
    );
  }
  const annotations = await namespaceAnnotations(await client(), namespace);
  if (annotations === undefined) {
    throw new CniError(ErrorCode.InvalidConfig, `${podNamespaceArg}: namespace ${namespace} does not exist in the cluster, so it cannot give the pod a VPC`);
  }
  const text = annotations[namespaceVpcAnnotation];
  if (text !== undefined) {
    const field = annotationField(namespace);
    return { vpc: parseVpcId(text, field), namespace, field };
  }
  if (fallback !== undefined) return { vpc: fallback, namespace, field: "vpc" };
  throw new CniError(
    ErrorCode.InvalidConfig,
    `namespace ${namespace} has no ${namespaceVpcAnnotation} annotation and the network config "${conf.name}" has no default "vpc": ` +
      `annotate the namespace with its VPC (kubectl annotate namespace ${namespace} ${namespaceVpcAnnotation}=<48-bit hex VPC ID>) or set "vpc" in the config`,
  );
}

export interface FoundVpc {
  vpc: Vpc;
  /** Where it was found: the node's record, the config (fixed VPC), the host interface, the VPC's object. */
  from: "record" | "config" | "interface" | "object";
  namespace?: string;
}

/**
 * DEL, CHECK: the VPC the attachment was ADDed to. In order: the node's record of it; a config
 * without `vpcFromNamespace` (its fixed VPC, as always); the host veth carrying the attachment's
 * alias (its name encodes the VPC). With `search` (DEL), then the node's BGPVRFInstance of each
 * VPC it could be in — the one ADD would choose now, the config's default, and every VPC the
 * node holds a claim for — holding an entry of the attachment (the plugin may `get` its node's
 * objects, not list them). Undefined: none of them knows the attachment.
 */
export async function attachmentVpc(ctx: BaseContext, client: KubeClient, search: boolean): Promise<FoundVpc | undefined> {
  const { conf, args } = ctx;
  const rec = readRecord(conf.stateDir, conf.name, args.containerId, args.ifName);
  if (rec !== undefined) return { vpc: vpcOf(parseVpc(rec.vpc)), from: "record", ...(rec.namespace !== undefined ? { namespace: rec.namespace } : {}) };
  if (!conf.vpcFromNamespace && conf.defaultVpc !== undefined) return { vpc: conf.defaultVpc, from: "config" };
  const hostIf = (await kvrfLinksByAlias()).get(ctx.alias);
  const fromName = hostIf === undefined ? undefined : parseHostVethName(hostIf);
  if (fromName !== undefined) return { vpc: vpcOf(fromName.vpc), from: "interface" };
  if (!search) return undefined;
  const candidates = new Map<string, Vpc>();
  const now = await currentVpc(ctx, client);
  if (now !== undefined) candidates.set(now.vpcHex, now);
  if (conf.defaultVpc !== undefined) candidates.set(conf.defaultVpc.vpcHex, conf.defaultVpc);
  for (const v of markedVpcs(conf.stateDir)) if (!candidates.has(v.vpcHex)) candidates.set(v.vpcHex, v);
  for (const v of candidates.values()) {
    const bvi = await getBgpVrfInstance(client, conf.nodeName, v.vpcHex);
    if (bvi?.spec.attachments?.some((a) => a.containerID === args.containerId && a.ifName === args.ifName) === true) return { vpc: v, from: "object" };
  }
  return undefined;
}

/** The VPC the namespace's annotation names now; undefined when there is no namespace, annotation or valid value. */
async function currentVpc(ctx: BaseContext, client: KubeClient): Promise<Vpc | undefined> {
  const namespace = ctx.args.args.get(podNamespaceArg);
  if (namespace === undefined || namespace === "") return undefined;
  const text = (await namespaceAnnotations(client, namespace))?.[namespaceVpcAnnotation];
  if (text === undefined) return undefined;
  try {
    return parseVpcId(text, annotationField(namespace));
  } catch {
    return undefined;
  }
}

/** VPCs this node holds a claim for (route-target hold markers, this boot's and older). */
export function markedVpcs(stateDir: string): Vpc[] {
  let names: string[];
  try {
    names = readdirSync(path.dirname(markerPath(stateDir, "x")));
  } catch {
    return [];
  }
  const out: Vpc[] = [];
  for (const name of names) {
    if (name.includes(".")) continue; // a temporary file
    try {
      out.push(vpcOf(parseVpc(name)));
    } catch {
      // not a marker
    }
  }
  return out;
}
