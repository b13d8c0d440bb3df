// DEL: take the attachment out of the API first (BGP withdrawal starts while the pod can still
// forward), then remove the data plane, then the IPAM lease. The removal of the VPC's last
// attachment on the node also releases the node's route-target hold (route-target-hold.ts). What
// is already gone counts as removed, so DEL succeeds without a netns, without an object, and when
// repeated. With vpcFromNamespace the VPC is the one ADD recorded, not what the namespace says now
// (pod-vpc.ts); DEL succeeds without a namespace, and without a record (a reboot).
import { findAttachment, forVpc, kubeClient, makeContext, mode, type Context } from "./context.js";
import { removeRecord } from "./attachment-record.js";
import { ioFailure } from "./error.js";
import { attachmentVpc } from "./pod-vpc.js";
import { invokeIpam } from "./ipam.js";
import { detach, releaseVpcIfUnused, type AttachmentIds } from "./dataplane/attachment.js";
import { withLock } from "./dataplane/lock.js";
import type { DataplaneMode } from "./dataplane/mode.js";
import { withdrawAttachment } from "./kube/objects.js";
import type { KubeClient } from "./kube/client.js";
import { releaseRouteTargets } from "./route-target-hold.js";
import type { CmdArgs } from "./skel.js";

export async function del(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const base = makeContext(args, env);
  const client = await kubeClient(base.conf);
  try {
    // The VPC ADD put the attachment in (pod-vpc.ts): the node's record of it, else the config's
    // fixed VPC, else the host interface's, else the node's object of a VPC it could be in.
    const found = await attachmentVpc(base, client, true);
    if (found === undefined) {
      // Nothing of the attachment is left where it could be: only its lease, if any.
      await invokeIpam(base.conf.ipam.type, "DEL", args.path, env, args.stdin);
      base.log.info({ apiRoundTrips: client.roundTrips }, "detached: no VPC holds this attachment on this node");
      return;
    }
    const ctx = forVpc(base, found.vpc, found.namespace);
    const started = performance.now();
    // Where the time goes, for the benchmark (scripts/bench-cni.ts reads these from the log).
    const phase: Record<string, number> = { startup: Math.round(process.uptime() * 1000) };
    let mark = started;
    const lap = (name: string): void => {
      const now = performance.now();
      phase[name] = Math.round((now - mark) * 10) / 10;
      mark = now;
    };
    const ids = await findAttachment(ctx, client);
    lap("find");
    const lastOfVpc = await removeAttachment(
      ctx,
      client,
      args.containerId,
      args.ifName,
      ids,
      () => invokeIpam(ctx.conf.ipam.type, "DEL", args.path, env, args.stdin).then(() => lap("ipam")),
      lap,
    );
    try {
      removeRecord(ctx.conf.stateDir, ctx.conf.name, args.containerId, args.ifName);
    } catch (err) {
      throw ioFailure("stateDir", ctx.conf.stateDir, err);
    }
    ctx.log.info(
      { ms: Math.round(performance.now() - started), phaseMs: phase, apiRoundTrips: client.roundTrips, apiMs: client.requestMs, lastOfVpc, vpcFrom: found.from },
      "detached",
    );
  } finally {
    client.close();
  }
}

/**
 * Removes one attachment (also used by GC; `ids` undefined: nothing of it is left in the
 * kernel): its BGPVRFInstance entry first, then under the VPC lock its kernel state — and with
 * the VPC's last attachment on the node, the VPC's table state and the node's route-target hold —
 * then `afterKernel` (the IPAM lease). True when no attachment of the VPC is left on the node.
 */
export async function removeAttachment(
  ctx: Context,
  client: KubeClient,
  containerId: string,
  ifName: string,
  ids: AttachmentIds | undefined,
  afterKernel: () => Promise<void> = () => Promise.resolve(),
  lap: (step: string) => void = () => undefined,
): Promise<boolean> {
  const { conf } = ctx;
  const entries = await withdrawAttachment(client, conf.nodeName, conf.vpcHex, containerId, ifName);
  lap("withdraw");
  const dpMode = await mode(ctx);
  const last = await withLock(`vpc-${conf.vpcHex}`, async () => {
    if (ids !== undefined) await detach({ mode: dpMode, table: conf.table, hostIf: ids.hostIf, sid: ids.sid, sid6: ids.sid6 });
    lap("detach");
    return releaseVpc(ctx, client, dpMode, entries === "gone");
  });
  lap("release");
  await afterKernel();
  return last;
}

/**
 * With the VPC lock held: when no attachment of the VPC is left in the node's kernel, removes the
 * VPC's table state and releases the node's route-target holds. True when the VPC was unused.
 * `objectGone`: see releaseRouteTargets.
 */
export async function releaseVpc(ctx: Context, client: KubeClient, dpMode: DataplaneMode, objectGone = false): Promise<boolean> {
  const { conf, log } = ctx;
  if (!(await releaseVpcIfUnused(dpMode, conf.vpc, conf.table))) return false;
  log.info({ table: conf.table }, "released the VPC's table: no attachment of it left on this node");
  await releaseRouteTargets(client, conf.stateDir, conf.nodeName, conf.vpcHex, log, objectGone);
  return true;
}
