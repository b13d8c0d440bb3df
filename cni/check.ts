// CHECK: the attachment still looks the way ADD left it (prevResult): interfaces, addresses,
// routes, rules or VRF membership, the decapsulation (SRv6 SIDs, or the VPC's VXLAN device) and
// the API entry. Code 100 names the
// first kernel difference, 101 an API one.
import ipaddr from "ipaddr.js";
import { CniError, ErrorCode } from "./error.js";
import { findAttachment, forVpc, kubeClient, makeContext, mode, type Context } from "./context.js";
import { attachmentVpc } from "./pod-vpc.js";
import type { AttachmentIds } from "./dataplane/attachment.js";
import type { DataplaneMode } from "./dataplane/mode.js";
import { invokeIpam } from "./ipam.js";
import { getBgpVrfInstance } from "./kube/objects.js";
import { ipJson, ip } from "../shared/kernel/ip.js";
import { vrfDeviceName, vxlanDeviceName } from "../shared/ifnames.js";
import type { BGPVRFInstance, Encapsulation } from "../shared/api-types.js";
import type { CmdArgs } from "./skel.js";

interface Link {
  ifname: string;
  operstate?: string;
  flags?: string[];
  ifalias?: string;
  master?: string;
  address?: string;
}

function differs(what: string): CniError {
  return new CniError(ErrorCode.Kernel, `CHECK: ${what}`);
}

export async function check(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const base = makeContext(args, env);
  const prev = base.conf.prevResult;
  if (prev === undefined) throw new CniError(ErrorCode.InvalidConfig, "prevResult: CHECK needs the result of ADD");
  const ifaces = (Array.isArray(prev["interfaces"]) ? prev["interfaces"] : []) as { name?: string; sandbox?: string }[];
  const podIndex = ifaces.findIndex((i) => i.name === args.ifName && i.sandbox !== undefined);
  const addresses = ((Array.isArray(prev["ips"]) ? prev["ips"] : []) as { address?: string; interface?: number }[])
    .filter((i) => i.interface === podIndex && typeof i.address === "string")
    .map((i) => i.address as string);
  if (podIndex < 0 || addresses.length === 0) throw new CniError(ErrorCode.InvalidConfig, `prevResult: no addresses on ${args.ifName}`);
  const dpMode = await mode(base);
  const client = await kubeClient(base.conf);
  try {
    // The VPC ADD recorded (or the config's fixed one, or the host interface's): not the one the
    // namespace's annotation names now.
    const found = await attachmentVpc(base, client, false);
    if (found === undefined) throw differs(`no interface on this node carries ${base.alias}`);
    const ctx = forVpc(base, found.vpc, found.namespace);
    const { conf } = ctx;
    const ids = await findAttachment(ctx, client);
    if (ids === undefined) throw differs(`no interface on this node carries ${ctx.alias}`);
    const bvi = await getBgpVrfInstance(client, conf.nodeName, conf.vpcHex);
    await checkKernel(ctx, dpMode, bvi?.spec.encapsulation ?? conf.encapsulation ?? "srv6", ids, addresses);
    checkApi(ctx, bvi, addresses);
  } finally {
    client.close();
  }
  await invokeIpam(base.conf.ipam.type, "CHECK", args.path, env, args.stdin);
}

async function checkKernel(ctx: Context, dpMode: DataplaneMode, encap: Encapsulation, ids: AttachmentIds, addresses: string[]): Promise<void> {
  const { conf, args } = ctx;
  const host = (await ipJson<Link>(["link", "show", "dev", ids.hostIf]).catch(() => []))[0];
  if (host === undefined) throw differs(`host interface ${ids.hostIf} is missing`);
  if (!(host.flags ?? []).includes("UP")) throw differs(`host interface ${ids.hostIf} is down`);
  if (host.ifalias !== ctx.alias) throw differs(`host interface ${ids.hostIf} belongs to ${host.ifalias ?? "nobody"}, not ${ctx.alias}`);
  if (dpMode === "vrf" && host.master !== vrfDeviceName(conf.vpc)) throw differs(`${ids.hostIf} is not enslaved to ${vrfDeviceName(conf.vpc)}`);

  const pod = (await ipJson<Link & { addr_info?: { local: string; prefixlen: number }[] }>(["addr", "show", "dev", args.ifName], { netns: args.netns }).catch(() => []))[0];
  if (pod === undefined) throw differs(`interface ${args.ifName} is missing in ${args.netns}`);
  const have = new Set((pod.addr_info ?? []).map((a) => `${ipaddr.parse(a.local).toString()}/${a.prefixlen}`));
  for (const a of addresses) if (!have.has(a)) throw differs(`${args.ifName} lacks address ${a}`);

  const t = String(conf.table);
  for (const a of addresses) {
    const fam = a.includes(":") ? "-6" : "-4";
    const routes = await ipJson<{ dst: string; dev?: string }>([fam, "route", "show", "table", t, "exact", a]);
    const addr = a.split("/")[0] ?? "";
    if (!routes.some((r) => (r.dst === a || r.dst === addr) && r.dev === ids.hostIf)) throw differs(`table ${t} has no route ${a} dev ${ids.hostIf}`);
  }
  if (dpMode === "policy-routing") {
    for (const fam of ["-4", "-6"]) {
      const rules = await ipJson<{ iif?: string; table?: string }>([fam, "rule", "show", "iif", ids.hostIf]);
      if (!rules.some((r) => r.table === t)) throw differs(`no ${fam} rule iif ${ids.hostIf} lookup ${t}`);
    }
  }
  if (encap === "vxlan") {
    const vx = vxlanDeviceName(conf.vpc);
    const dev = (await ipJson<Link>(["link", "show", "dev", vx]).catch(() => []))[0];
    if (dev === undefined) throw differs(`the VPC's VXLAN device ${vx} is missing`);
    if (!(dev.flags ?? []).includes("UP")) throw differs(`the VPC's VXLAN device ${vx} is down`);
    if (dpMode === "vrf" && dev.master !== vrfDeviceName(conf.vpc)) throw differs(`${vx} is not enslaved to ${vrfDeviceName(conf.vpc)}`);
    if (dpMode === "policy-routing") {
      for (const fam of ["-4", "-6"]) {
        const rules = await ipJson<{ iif?: string; table?: string }>([fam, "rule", "show", "iif", vx]);
        if (!rules.some((r) => r.table === t)) throw differs(`no ${fam} rule iif ${vx} lookup ${t}`);
      }
    }
    return;
  }
  const want: [string | undefined, string][] =
    dpMode === "vrf"
      ? [[ids.sid, "End.DT46"]]
      : [
          ...(addresses.some((a) => !a.includes(":")) ? ([[ids.sid, "End.DX4"]] as [string, string][]) : []),
          ...(addresses.some((a) => a.includes(":")) ? ([[ids.sid6, "End.DX6"]] as [string | undefined, string][]) : []),
        ];
  for (const [sid, action] of want) {
    const out = sid === undefined ? "" : await ip(["-6", "route", "show", `${sid}/128`]);
    if (!out.includes(`action ${action} `)) throw differs(`SID ${sid ?? "(none)"} does not decapsulate with ${action}`);
  }
}

function checkApi(ctx: Context, bvi: BGPVRFInstance | undefined, addresses: string[]): void {
  const { conf, args } = ctx;
  const entry = bvi?.spec.attachments?.find((a) => a.containerID === args.containerId && a.ifName === args.ifName);
  if (entry === undefined) throw new CniError(ErrorCode.KubernetesApi, `CHECK: BGPVRFInstance of VPC ${conf.vpcHex} on ${conf.nodeName} has no entry for this attachment`);
  for (const a of addresses) {
    if (!entry.prefixes.includes(a)) throw new CniError(ErrorCode.KubernetesApi, `CHECK: BGPVRFInstance entry lacks prefix ${a}`);
  }
  if (bvi?.metadata.deletionTimestamp !== undefined) throw new CniError(ErrorCode.KubernetesApi, "CHECK: BGPVRFInstance is being deleted");
}
