// GC: remove this network's attachments that the runtime no longer lists as valid
// (cni.dev/valid-attachments; cni.dev/attachments is read too, see FACTS §1), from the kernel and
// the API, release the node's route-target holds of VPCs with no attachment left on the node,
// then forward GC to the IPAM plugin. Continues past errors and reports them together.
import { CniError, ErrorCode, ioFailure } from "./error.js";
import { attachmentAlias, forVpc, kubeClient, makeContext, mode, type BaseContext } from "./context.js";
import { listRecords, removeRecord } from "./attachment-record.js";
import { vpcOf, type Vpc } from "./config.js";
import { markedVpcs } from "./pod-vpc.js";
import { attachmentIds } from "./dataplane/attachment.js";
import { invokeIpam } from "./ipam.js";
import { releaseVpc, removeAttachment } from "./del.js";
import { withLock } from "./dataplane/lock.js";
import { getBgpVrfInstance, listAllClaims } from "./kube/objects.js";
import type { KubeClient } from "./kube/client.js";
import { ipJson } from "../shared/kernel/ip.js";
import { parseHostVethName } from "../shared/ifnames.js";
import { parseVpc } from "../shared/ids.js";
import type { CmdArgs } from "./skel.js";

export interface Valid {
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
  const base = makeContext(args, env);
  const valid = new Set(validList(args.config).map((v) => `${v.containerID}/${v.ifname}`));
  const { errors } = await collect(base, valid, false);
  await invokeIpam(base.conf.ipam.type, "GC", args.path, env, args.stdin).catch((err: unknown) => errors.push((err as Error).message));
  if (errors.length > 0) throw new CniError(ErrorCode.Kernel, `GC left ${errors.length} attachment(s) behind`, errors.join("\n"));
}

/**
 * Removes this network's attachments that are not in `valid`: their host veths, their API entries
 * whose interface is gone, their records; then the route-target holds of VPCs left without an
 * attachment on the node. The API entries are looked for in the config's VPC and the recorded
 * ones. `afterBoot` (the sweep after a boot, boot-sweep.ts) keeps every live host veth, and looks
 * for entries also in every VPC whose route-target claim names this node as a holder, leaving
 * alone an entry any network still has (an interface, a record). Returns the errors and this
 * network's live attachments; does not touch IPAM.
 */
export async function collect(base: BaseContext, valid: ReadonlySet<string>, afterBoot: boolean): Promise<{ errors: string[]; live: Valid[] }> {
  const { conf, log } = base;
  const prefix = attachmentAlias(conf.name, "", "").slice(0, -2); // "kvrf:<network>"
  const client = await kubeClient(conf);
  const errors: string[] = [];
  const removed = new Set<string>();
  /** Attachments whose removal failed: their records stay for the next try. */
  const failed = new Set<string>();
  // The VPC each attachment of this network was ADDed to, as the node recorded it (attachment-record.ts).
  const records = new Map(listRecords(conf.stateDir, conf.name).map((r) => [`${r.containerID}/${r.ifName}`, r]));
  const forget = (containerId: string, ifName: string): void => {
    try {
      removeRecord(conf.stateDir, conf.name, containerId, ifName);
    } catch (err) {
      errors.push(`${containerId}/${ifName}: ${ioFailure("stateDir", conf.stateDir, err).message}`);
    }
  };
  /** "<containerID>/<ifName>" of this network's host veths. */
  const live = new Set<string>();
  try {
    const links = await ipJson<{ ifname: string; ifalias?: string }>(["link", "show", "type", "veth"]);
    /** "<containerID>/<ifName>" of every kvrf host veth, whatever its network (afterBoot). */
    const liveAny = new Set<string>();
    for (const link of links) {
      const ids = parseHostVethName(link.ifname);
      const alias = link.ifalias ?? "";
      if (ids !== undefined && alias.startsWith("kvrf:")) {
        const fields = alias.split(":");
        if (fields.length >= 4) liveAny.add(`${fields.slice(2, -1).join(":")}/${fields.at(-1) ?? ""}`);
      }
      if (ids === undefined || !alias.startsWith(`${prefix}:`)) continue;
      const rest = alias.slice(prefix.length + 1);
      const sep = rest.lastIndexOf(":");
      const key = `${rest.slice(0, sep)}/${rest.slice(sep + 1)}`;
      live.add(key);
      if (valid.has(key) || afterBoot) continue;
      try {
        await removeAttachment(forVpc(base, vpcOf(ids.vpc)), client, rest.slice(0, sep), rest.slice(sep + 1), attachmentIds(conf.locator, ids.vpc, ids.attachment), () =>
          releaseLease(base, rest.slice(0, sep), rest.slice(sep + 1)),
        );
        removed.add(key);
        forget(rest.slice(0, sep), rest.slice(sep + 1));
        log.info({ stale: key, hostIf: link.ifname }, "GC removed a stale attachment");
      } catch (err) {
        failed.add(key);
        errors.push(`${key}: ${(err as Error).message}`);
      }
    }
    // API entries whose interface is gone (e.g. the node rebooted): every entry of the config's
    // VPC (without vpcFromNamespace, the VPC of all this network's attachments), and in the other
    // VPCs the entries this network's records put there.
    const apiVpcs = new Map<string, Vpc>();
    if (conf.defaultVpc !== undefined) apiVpcs.set(conf.defaultVpc.vpcHex, conf.defaultVpc);
    for (const r of records.values()) if (!apiVpcs.has(r.vpc)) apiVpcs.set(r.vpc, vpcOf(parseVpc(r.vpc)));
    const heldOnly = new Set<string>();
    if (afterBoot) {
      for (const v of await heldVpcs(client, conf.nodeName)) {
        if (!apiVpcs.has(v.vpcHex)) {
          apiVpcs.set(v.vpcHex, v);
          heldOnly.add(v.vpcHex);
        }
      }
    }
    const anyRecord = afterBoot ? new Set(listRecords(conf.stateDir).map((r) => `${r.containerID}/${r.ifName}`)) : new Set<string>();
    for (const v of apiVpcs.values()) {
      const ctx = forVpc(base, v);
      const bvi = await getBgpVrfInstance(client, conf.nodeName, v.vpcHex).catch((err: unknown) => {
        errors.push((err as Error).message);
        return undefined;
      });
      for (const a of bvi?.spec.attachments ?? []) {
        const key = `${a.containerID}/${a.ifName}`;
        if (valid.has(key) || live.has(key) || removed.has(key)) continue;
        const rec = records.get(key);
        // The sweep after a boot never takes what any network on the node still has (an interface,
        // a record) for stale; in a VPC found only through the node's claims, the rest is stale
        // whichever network made it.
        if (afterBoot && (liveAny.has(key) || anyRecord.has(key))) continue;
        if (!heldOnly.has(v.vpcHex) && v.vpcHex !== conf.defaultVpc?.vpcHex && rec?.vpc !== v.vpcHex) continue; // another network's
        try {
          await removeAttachment(ctx, client, a.containerID, a.ifName, attachmentIds(conf.locator, v.vpc, parseInt(a.attachment, 16)), () =>
            releaseLease(ctx, a.containerID, a.ifName),
          );
          removed.add(key);
          forget(a.containerID, a.ifName);
          log.info({ stale: key, vpc: v.vpcHex }, "GC removed a stale API entry");
        } catch (err) {
          failed.add(key);
          errors.push(`${key}: ${(err as Error).message}`);
        }
      }
    }
    // Records of attachments that left nothing behind (an ADD killed before its first change,
    // whose DEL never came).
    for (const [key, r] of records) {
      if (valid.has(key) || live.has(key) || removed.has(key) || failed.has(key)) continue;
      forget(r.containerID, r.ifName);
    }
    // Holds of VPCs with no attachment left on the node: the config's VPC, the recorded ones, and
    // every VPC this node has a hold marker for (a DEL that failed after removing its kernel
    // state, never retried).
    const vpcs = new Map<string, Vpc>(apiVpcs);
    for (const v of markedVpcs(conf.stateDir)) if (!vpcs.has(v.vpcHex)) vpcs.set(v.vpcHex, v);
    const dpMode = await mode(base);
    for (const v of vpcs.values()) {
      try {
        if (await withLock(`vpc-${v.vpcHex}`, () => releaseVpc(forVpc(base, v), client, dpMode))) log.info({ vpc: v.vpcHex }, "GC: no attachment of the VPC left on this node");
      } catch (err) {
        errors.push(`route-target hold of VPC ${v.vpcHex}: ${(err as Error).message}`);
      }
    }
  } finally {
    client.close();
  }
  return { errors, live: [...live].map((k) => ({ containerID: k.slice(0, k.lastIndexOf("/")), ifname: k.slice(k.lastIndexOf("/") + 1) })) };
}

/** VPCs whose route-target claim names this node as a holder (the plugin may list claims, not BGPVRFInstances). */
async function heldVpcs(client: KubeClient, nodeName: string): Promise<Vpc[]> {
  const out = new Map<string, Vpc>();
  for (const c of await listAllClaims(client, "routeTarget")) {
    const vpc = c.spec?.vpc;
    if (vpc === undefined || !(c.spec?.holders ?? []).some((h) => h.node === nodeName)) continue;
    try {
      out.set(vpc, vpcOf(parseVpc(vpc)));
    } catch {
      // not a VPC ID: not ours to judge
    }
  }
  return [...out.values()];
}

/** The stale attachment's IPAM lease, released as its DEL would (IPAM plugins key leases by container and interface). */
async function releaseLease(ctx: BaseContext, containerId: string, ifName: string): Promise<void> {
  const env = { ...ctx.env, CNI_CONTAINERID: containerId, CNI_IFNAME: ifName, CNI_NETNS: "" };
  const { "cni.dev/valid-attachments": _v, "cni.dev/attachments": _a, ...conf } = ctx.args.config;
  await invokeIpam(ctx.conf.ipam.type, "DEL", ctx.args.path, env, Buffer.from(JSON.stringify(conf)));
}
