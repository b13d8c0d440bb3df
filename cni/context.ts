// What every verb derives from one invocation: the validated config, the kernel mode, a logger,
// a Kubernetes client, and the attachment's kernel identity (IDs, interface name, SIDs).
import { createHash } from "node:crypto";
import { CniError, ErrorCode } from "./error.js";
import { parseNetConf, withVpc, type NetConf, type Vpc, type VpcConf } from "./config.js";
import type { KubeClient } from "./kube/client.js";
import { KubeError, loadKubeconfig, type Credentials } from "./kube/credentials.js";
import { createLogger, type Logger } from "./log.js";
import { kernelInfo, notReadyReason, type DataplaneMode, type KernelInfo } from "./dataplane/mode.js";
import { attachmentIds, type AttachmentIds } from "./dataplane/attachment.js";
import { getBgpVrfInstance } from "./kube/objects.js";
import type { CmdArgs } from "./skel.js";
import { ipJson } from "../shared/kernel/ip.js";
import { parseHostVethName } from "../shared/ifnames.js";
import { RouteDistinguisherError } from "../shared/route-distinguisher.js";
import { vpcRoutingText } from "../shared/vpc-routing.js";
import { presentCapabilities, type Encapsulation } from "../shared/kernel/capabilities.js";
import { vpcVni } from "../shared/ids.js";
import { routerMac } from "../shared/router-mac.js";
import type { Locator } from "../shared/srv6-sid.js";
import { mtuFor } from "./config.js";
import type { VxlanVpc } from "./dataplane/lines.js";
import { speakerFor } from "./kube/speaker-config.js";

/** One invocation before its VPC is known (with `vpcFromNamespace` it depends on the pod's namespace). */
export interface BaseContext {
  args: CmdArgs;
  conf: NetConf;
  log: Logger;
  /** "kvrf:<network>:<containerID>:<ifName>" on the host veth, so DEL and GC know whose it is. */
  alias: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** One invocation acting on one VPC. */
export interface Context extends BaseContext {
  conf: VpcConf;
}

function logger(conf: NetConf, args: CmdArgs, fields: Record<string, unknown>): Logger {
  return createLogger({
    logFile: conf.logFile,
    level: conf.logLevel,
    bindings: {
      verb: args.verb,
      containerID: args.containerId,
      ifName: args.ifName,
      ...fields,
      ...(conf.attachment !== undefined ? { attachment: conf.attachment.toString(16) } : {}),
    },
  });
}

export function makeContext(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): BaseContext {
  const conf = parseNetConf(args.config, args.args, env);
  // A config's fixed VPC is in every log line from the start, as it always was.
  const log = logger(conf, args, !conf.vpcFromNamespace && conf.defaultVpc !== undefined ? { vpc: conf.defaultVpc.vpcHex } : {});
  return { args, conf, log, alias: attachmentAlias(conf.name, args.containerId, args.ifName), env };
}

/** The invocation acting on `vpc` (its log lines name it, and the pod's namespace when known). */
export function forVpc(ctx: BaseContext, vpc: Vpc, namespace?: string): Context {
  const conf = withVpc(ctx.conf, vpc);
  const log = logger(conf, ctx.args, { vpc: vpc.vpcHex, ...(namespace !== undefined ? { namespace } : {}) });
  return { ...ctx, conf, log };
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

export function routing(sp: { asn: number; routeTargetAsn: number }, conf: VpcConf): { rd: string; rt: string } {
  try {
    return vpcRoutingText(sp.asn, conf.vpc, sp.routeTargetAsn);
  } catch (err) {
    if (err instanceof RouteDistinguisherError) {
      const field = err.message.startsWith("route target") && sp.routeTargetAsn !== sp.asn ? "routeTargetASN" : "asn";
      throw new CniError(ErrorCode.InvalidConfig, `${field}: ${err.message}`);
    }
    throw err;
  }
}

/** The node's kernel (probed once per boot); a fresh probe is logged with what it found. */
export async function kernel(ctx: BaseContext): Promise<KernelInfo> {
  const forced = ctx.conf.dataplaneMode === "auto" ? undefined : ctx.conf.dataplaneMode;
  let info;
  try {
    info = await kernelInfo(ctx.conf.stateDir, forced);
  } catch (err) {
    throw new CniError(ErrorCode.Kernel, `probing the kernel's capabilities: ${(err as Error).message}`, "", { cause: err });
  }
  if (info.fresh) {
    const c = info.capabilities;
    const missing = Object.entries(c.results).filter(([, r]) => !r.ok);
    ctx.log.info(
      { mode: info.mode, reason: info.reason, kernel: c.kernel, capabilities: presentCapabilities(c), missing: Object.fromEntries(missing.map(([k, r]) => [k, r.detail])) },
      "probed the kernel",
    );
  }
  return info;
}

/** The kernel mode, for verbs that must work whatever the kernel lacks (DEL, GC, CHECK). */
export async function mode(ctx: BaseContext): Promise<DataplaneMode> {
  return (await kernel(ctx)).mode;
}

/** The node's speaker as the plugin needs it: the ASN (RD), the route targets' ASN and the encapsulation. */
export interface SpeakerSettings {
  asn: number;
  routeTargetAsn: number;
  encapsulation: Encapsulation;
}

/**
 * A config that sets `asn` is self-contained (no API request): its encapsulation, srv6 unless it
 * says otherwise. One without `asn` takes both from the one BGPInstance selecting the node, and an
 * encapsulation the config sets must agree with it (code 7): the node would build one data plane
 * and advertise another. STATUS compares the self-contained kind with the BGPInstance too.
 */
export async function speakerSettings(conf: NetConf, client: () => Promise<KubeClient>): Promise<SpeakerSettings> {
  if (conf.asn !== undefined) return { asn: conf.asn, routeTargetAsn: conf.routeTargetASN ?? conf.asn, encapsulation: conf.encapsulation ?? "srv6" };
  const inst = await speakerFor(await client(), conf.nodeName);
  if (conf.encapsulation !== undefined && conf.encapsulation !== inst.encapsulation) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      `encapsulation: the config says ${conf.encapsulation} but BGPInstance ${inst.name}, which selects node ${conf.nodeName}, says ${inst.encapsulation}`,
    );
  }
  return { asn: inst.asn, routeTargetAsn: inst.routeTargetAsn, encapsulation: inst.encapsulation };
}

/** The encapsulation as far as the config alone knows it (STATUS without an API server: the default). */
export function encapsulation(conf: NetConf): Encapsulation {
  return conf.encapsulation ?? "srv6";
}

/** What the attachment's data plane is made of, checked against what the encapsulation needs. */
export interface Dataplane {
  encap: Encapsulation;
  mtu: number;
  locator: Locator | undefined;
  vxlan: VxlanVpc | undefined;
}

/** `vpcField`: where the VPC came from, for the message (the config's "vpc", or a namespace's annotation). */
export function dataplaneOf(conf: VpcConf, encap: Encapsulation, vpcField = "vpc"): Dataplane {
  const mtu = mtuFor(conf, encap);
  if (encap === "srv6") {
    if (conf.locator === undefined) throw new CniError(ErrorCode.InvalidConfig, 'srv6Locator: required with the srv6 encapsulation: the node\'s SRv6 locator, e.g. "fd00:0:a::/48"');
    return { encap, mtu, locator: conf.locator, vxlan: undefined };
  }
  if (conf.vtep === undefined) throw new CniError(ErrorCode.InvalidConfig, "vtep: required with the vxlan encapsulation: the node's underlay address VXLAN packets are sent from and to");
  const vni = vpcVni(conf.vpc);
  if (vni === 0) throw new CniError(ErrorCode.InvalidConfig, `${vpcField}: "${conf.vpcHex}": its low 24 bits are 0, which is not a usable VNI`);
  return { encap, mtu, locator: undefined, vxlan: { vni, vtep: conf.vtep, routerMac: routerMac(conf.nodeName) } };
}

/**
 * The kernel mode, once the kernel is known to have everything the data plane needs (ADD):
 * otherwise code 104 naming each missing feature and its kernel option, before anything changed.
 */
export async function readyMode(ctx: BaseContext, encap: Encapsulation): Promise<DataplaneMode> {
  const info = await kernel(ctx);
  const reason = notReadyReason(info, encap);
  if (reason !== undefined) throw new CniError(ErrorCode.MissingCapability, `kernel: ${reason}`);
  return info.mode;
}

/** Every prefix the attachment routes into the VPC: its addresses and terminations. */
export function prefixesOf(podAddresses: readonly string[], conf: NetConf): string[] {
  return [...podAddresses, ...conf.terminations.map((t) => t.network)];
}
