// GC: remove this network's attachments that the runtime no longer lists as valid
// (cni.dev/valid-attachments; cni.dev/attachments is read too, see FACTS §1), from the kernel and
// the API, release the node's route-target holds of VPCs with no attachment left on the node,
// then forward GC to the IPAM plugin. Continues past errors and reports them together.
import { readdirSync } from "node:fs";
import path from "node:path";
import { CniError, ErrorCode } from "./error.js";
import { attachmentAlias, kubeClient, makeContext, mode, type Context } from "./context.js";
import { attachmentIds } from "./dataplane/attachment.js";
import { invokeIpam } from "./ipam.js";
import { releaseVpc, removeAttachment } from "./del.js";
import { withLock } from "./dataplane/lock.js";
import { markerPath } from "./route-target-hold.js";
import { getBgpVrfInstance } from "./kube/objects.js";
import { ipJson } from "../shared/kernel/ip.js";
import { parseHostVethName } from "../shared/ifnames.js";
import { hex, parseVpc, vpcNumber } from "../shared/ids.js";
import type { CmdArgs } from "./skel.js";

interface Valid {
  containerID: string;
  ifname: string;
}

/**
 * The runtime's valid attachments. libcni sends no list when its caller gives none (cnitool's
 * gc): libcni has then already DELed every attachment it knows, and nothing is valid.
 */
function validList(config: Record<string, unknown>): Valid[] {
  const raw = config["cni.dev/valid-attachments"] ?? config["cni.dev/attachments"] ?? [];
  if (!Array.isArray(raw)) {
    throw new CniError(ErrorCode.InvalidConfig, "cni.dev/valid-attachments: must be a list of {containerID, ifname}");
  }
  return raw.filter((v): v is Valid => typeof v === "object" && v !== null && typeof (v as Valid).containerID === "string" && typeof (v as Valid).ifname === "string");
}

export async function gc(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const ctx = makeContext(args, env);
  const { conf, log } = ctx;
  const valid = new Set(validList(args.config).map((v) => `${v.containerID}/${v.ifname}`));
  const prefix = attachmentAlias(conf.name, "", "").slice(0, -2); // "kvrf:<network>"
  const client = await kubeClient(conf);
  const errors: string[] = [];
  const removed = new Set<string>();
  try {
    const links = await ipJson<{ ifname: string; ifalias?: string }>(["link", "show", "type", "veth"]);
    const live = new Set<string>();
    for (const link of links) {
      const ids = parseHostVethName(link.ifname);
      const alias = link.ifalias ?? "";
      if (ids === undefined || !alias.startsWith(`${prefix}:`)) continue;
      const rest = alias.slice(prefix.length + 1);
      const sep = rest.lastIndexOf(":");
      const key = `${rest.slice(0, sep)}/${rest.slice(sep + 1)}`;
      live.add(key);
      if (valid.has(key)) continue;
      try {
        await removeAttachment(forVpc(ctx, ids.vpc), client, rest.slice(0, sep), rest.slice(sep + 1), attachmentIds(conf.locator, ids.vpc, ids.attachment), () =>
          releaseLease(ctx, rest.slice(0, sep), rest.slice(sep + 1)),
        );
        removed.add(key);
        log.info({ stale: key, hostIf: link.ifname }, "GC removed a stale attachment");
      } catch (err) {
        errors.push(`${key}: ${(err as Error).message}`);
      }
    }
    // API entries of this VPC on this node whose interface is gone (e.g. the node rebooted).
    const bvi = await getBgpVrfInstance(client, conf.nodeName, conf.vpcHex).catch((err: unknown) => {
      errors.push((err as Error).message);
      return undefined;
    });
    for (const a of bvi?.spec.attachments ?? []) {
      const key = `${a.containerID}/${a.ifName}`;
      if (valid.has(key) || live.has(key) || removed.has(key)) continue;
      try {
        await removeAttachment(ctx, client, a.containerID, a.ifName, attachmentIds(conf.locator, conf.vpc, parseInt(a.attachment, 16)), () =>
          releaseLease(ctx, a.containerID, a.ifName),
        );
        log.info({ stale: key }, "GC removed a stale API entry");
      } catch (err) {
        errors.push(`${key}: ${(err as Error).message}`);
      }
    }
    // Holds of VPCs with no attachment left on the node: this network's VPC, and every VPC this
    // node has a hold marker for (a DEL that failed after removing its kernel state, never retried).
    const vpcs = new Map<string, bigint>([[conf.vpcHex, conf.vpc]]);
    for (const name of markedVpcs(conf.stateDir)) {
      try {
        vpcs.set(name, parseVpc(name));
      } catch {
        // not a marker
      }
    }
    const dpMode = await mode(ctx);
    for (const [vpcHex, vpc] of vpcs) {
      const c = vpc === conf.vpc ? ctx : forVpc(ctx, vpc);
      try {
        if (await withLock(`vpc-${vpcHex}`, () => releaseVpc(c, client, dpMode))) log.info({ vpc: vpcHex }, "GC: no attachment of the VPC left on this node");
      } catch (err) {
        errors.push(`route-target hold of VPC ${vpcHex}: ${(err as Error).message}`);
      }
    }
  } finally {
    client.close();
  }
  await invokeIpam(conf.ipam.type, "GC", args.path, env, args.stdin).catch((err: unknown) => errors.push((err as Error).message));
  if (errors.length > 0) throw new CniError(ErrorCode.Kernel, `GC left ${errors.length} attachment(s) behind`, errors.join("\n"));
}

/** The stale attachment's IPAM lease, released as its DEL would (IPAM plugins key leases by container and interface). */
async function releaseLease(ctx: Context, containerId: string, ifName: string): Promise<void> {
  const env = { ...ctx.env, CNI_CONTAINERID: containerId, CNI_IFNAME: ifName, CNI_NETNS: "" };
  const { "cni.dev/valid-attachments": _v, "cni.dev/attachments": _a, ...conf } = ctx.args.config;
  await invokeIpam(ctx.conf.ipam.type, "DEL", ctx.args.path, env, Buffer.from(JSON.stringify(conf)));
}

/** VPCs this node has a route-target hold marker for. */
function markedVpcs(stateDir: string): string[] {
  try {
    return readdirSync(path.dirname(markerPath(stateDir, "x"))).filter((n) => !n.includes("."));
  } catch {
    return [];
  }
}

/** The context of another VPC's attachment of this network (GC), from its interface name. */
function forVpc(ctx: Context, vpc: bigint): Context {
  return { ...ctx, conf: { ...ctx.conf, vpc, vpcHex: hex(vpc), table: vpcNumber(vpc) } };
}
