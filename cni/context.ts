// What every verb derives from one invocation: the validated config, the kernel mode, a logger,
// a Kubernetes client, and the attachment's kernel identity (IDs, interface name, SIDs).
import { createHash } from "node:crypto";
import { CniError, ErrorCode } from "./error.js";
import { parseNetConf, type NetConf } from "./config.js";
import type { KubeClient } from "./kube/client.js";
import { KubeError, loadKubeconfig, type Credentials } from "./kube/credentials.js";
import { createLogger, type Logger } from "./log.js";
import { dataplaneMode, type DataplaneMode } from "./dataplane/mode.js";
import { attachmentIds, type AttachmentIds } from "./dataplane/attachment.js";
import { getBgpVrfInstance } from "./kube/objects.js";
import type { CmdArgs } from "./skel.js";
import { ipJson } from "../shared/kernel/ip.js";
import { parseHostVethName } from "../shared/ifnames.js";
import { RouteDistinguisherError } from "../shared/route-distinguisher.js";
import { vpcRoutingText } from "../shared/vpc-routing.js";

export interface Context {
  args: CmdArgs;
  conf: NetConf;
  log: Logger;
  /** "kvrf:<network>:<containerID>:<ifName>" on the host veth, so DEL and GC know whose it is. */
  alias: string;
  env: Readonly<Record<string, string | undefined>>;
}

export function makeContext(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Context {
  const conf = parseNetConf(args.config, args.args, env);
  const log = createLogger({
    logFile: conf.logFile,
    level: conf.logLevel,
    bindings: {
      verb: args.verb,
      containerID: args.containerId,
      ifName: args.ifName,
      vpc: conf.vpcHex,
      ...(conf.attachment !== undefined ? { attachment: conf.attachment.toString(16) } : {}),
    },
  });
  return { args, conf, log, alias: attachmentAlias(conf.name, args.containerId, args.ifName), env };
}

export function attachmentAlias(network: string, containerId: string, ifName: string): string {
  const net = network.length <= 64 ? network : createHash("sha256").update(network).digest("hex").slice(0, 16);
  return `kvrf:${net}:${containerId}:${ifName}`;
}

/** Host veths carrying kvrf aliases, by alias. */
export async function kvrfLinksByAlias(): Promise<Map<string, string>> {
  const links = await ipJson<{ ifname: string; ifalias?: string }>(["link", "show", "type", "veth"]);
  return new Map(links.filter((l) => l.ifalias?.startsWith("kvrf:") === true).map((l) => [l.ifalias ?? "", l.ifname]));
}

/**
 * The IDs of this invocation's attachment: from the config when it names the attachment, else
 * from the host veth that carries our alias, else from our entry in the BGPVRFInstance.
 * Undefined when none of them knows it (nothing of it is left).
 */
export async function findAttachment(ctx: Context, client: KubeClient): Promise<AttachmentIds | undefined> {
  const { conf } = ctx;
  if (conf.attachment !== undefined) return attachmentIds(conf.locator, conf.vpc, conf.attachment);
  const hostIf = (await kvrfLinksByAlias()).get(ctx.alias);
  const fromName = hostIf === undefined ? undefined : parseHostVethName(hostIf);
  if (fromName !== undefined && fromName.vpc === conf.vpc) return attachmentIds(conf.locator, conf.vpc, fromName.attachment);
  const bvi = await getBgpVrfInstance(client, conf.nodeName, conf.vpcHex);
  const entry = bvi?.spec.attachments?.find((a) => a.containerID === ctx.args.containerId && a.ifName === ctx.args.ifName);
  return entry === undefined ? undefined : attachmentIds(conf.locator, conf.vpc, parseInt(entry.attachment, 16));
}

/** The config's kubeconfig, read and checked (code 7 when it is unusable). */
export async function credentials(conf: NetConf): Promise<Credentials> {
  try {
    return await loadKubeconfig(conf.kubeconfig);
  } catch (err) {
    if (err instanceof KubeError) throw new CniError(ErrorCode.InvalidConfig, `kubeconfig: ${err.message}`, "", { cause: err });
    throw err;
  }
}

/**
 * A client for `creds`, its TLS connection already being opened. Loading the client loads
 * node:https and node:tls (~10 ms of this thread), so ADD does it while its children run.
 */
export async function connect(creds: Credentials): Promise<KubeClient> {
  const { KubeClient } = await import("./kube/client.js");
  const client = new KubeClient(creds);
  client.preconnect();
  return client;
}

export async function kubeClient(conf: NetConf): Promise<KubeClient> {
  return connect(await credentials(conf));
}

export function routing(asn: number, conf: NetConf): { rd: string; rt: string } {
  try {
    return vpcRoutingText(asn, conf.vpc);
  } catch (err) {
    if (err instanceof RouteDistinguisherError) throw new CniError(ErrorCode.InvalidConfig, `asn: ${err.message}`);
    throw err;
  }
}

export async function mode(ctx: Context): Promise<DataplaneMode> {
  const forced = ctx.conf.dataplaneMode === "auto" ? undefined : ctx.conf.dataplaneMode;
  const m = await dataplaneMode(ctx.conf.stateDir, forced);
  if (m.fresh) ctx.log.info({ mode: m.mode, reason: m.reason }, "detected kernel data plane mode");
  return m.mode;
}

/** Every prefix the attachment routes into the VPC: its addresses and terminations. */
export function prefixesOf(podAddresses: readonly string[], conf: NetConf): string[] {
  return [...podAddresses, ...conf.terminations.map((t) => t.network)];
}
