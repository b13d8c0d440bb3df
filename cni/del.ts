// DEL: take the attachment out of the API first (BGP withdrawal starts while the pod can still
// forward), then remove the data plane, then the IPAM lease. What is already gone counts as
// removed, so DEL succeeds without a netns, without an object, and when repeated.
import { CniError } from "./error.js";
import { findAttachment, kubeClient, makeContext, mode, type Context } from "./context.js";
import { invokeIpam } from "./ipam.js";
import { detach, releaseVpcIfUnused, type AttachmentIds } from "./dataplane/attachment.js";
import { withLock } from "./dataplane/lock.js";
import { releaseRouteTarget, withdrawAttachment } from "./kube/objects.js";
import { KubeError, type KubeClient } from "./kube/client.js";
import { apiVersion, routeTargetClaim, vpcLabel } from "../shared/api-types.js";
import type { CmdArgs } from "./skel.js";

export async function del(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const ctx = makeContext(args, env);
  const client = await kubeClient(ctx.conf);
  try {
    const started = performance.now();
    await removeAttachment(ctx, client, args.containerId, args.ifName, await findAttachment(ctx, client), () =>
      invokeIpam(ctx.conf.ipam.type, "DEL", args.path, env, args.stdin).then(() => undefined),
    );
    ctx.log.info({ ms: Math.round(performance.now() - started), apiRoundTrips: client.roundTrips }, "detached");
  } finally {
    client.close();
  }
}

/**
 * Removes one attachment (also used by GC; `ids` undefined: nothing of it is left in the
 * kernel): its BGPVRFInstance entry first, then — concurrently — its route-target claim and its
 * kernel state followed by `afterKernel` (the IPAM lease).
 */
export async function removeAttachment(
  ctx: Context,
  client: KubeClient,
  containerId: string,
  ifName: string,
  ids: AttachmentIds | undefined,
  afterKernel: () => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const { conf } = ctx;
  await withdrawAttachment(client, conf.nodeName, conf.vpcHex, containerId, ifName);
  const holder = { node: conf.nodeName, containerID: containerId, ifName };
  // Claims are found by the VPC's label, not recomputed from the ASN: the config's ASN may have
  // changed since ADD, and a claim must never be left behind.
  const claims = releaseClaims(client, conf.vpcHex, holder);
  const local = (async () => {
    const dpMode = await mode(ctx);
    const lockName = `vpc-${conf.vpcHex}`;
    await withLock(lockName, async () => {
      if (ids !== undefined) await detach({ mode: dpMode, table: conf.table, hostIf: ids.hostIf, sid: ids.sid, sid6: ids.sid6 });
      if (await releaseVpcIfUnused(dpMode, conf.vpc, conf.table)) ctx.log.info({ table: conf.table }, "released the VPC's table: last attachment on this node");
    });
    await afterKernel();
  })();
  const [c, l] = await Promise.allSettled([claims, local]);
  if (c.status === "rejected") throw c.reason;
  if (l.status === "rejected") throw l.reason;
}

interface ClaimList {
  items?: { spec?: { routeTarget?: string; holders?: { node: string; containerID: string; ifName: string }[] } }[];
}

/**
 * Releases the claims this attachment holds. They are found by the VPC's label rather than by
 * route target, so DEL needs neither the ASN nor the speaker config.
 */
async function releaseClaims(client: KubeClient, vpcHex: string, holder: { node: string; containerID: string; ifName: string }): Promise<void> {
  let list: ClaimList;
  try {
    list = (
      await client.request<ClaimList>("GET", `/apis/${apiVersion}/${routeTargetClaim.plural}`, {
        query: { labelSelector: `${vpcLabel}=${vpcHex}` },
      })
    ).body;
  } catch (err) {
    if (err instanceof KubeError && err.notFound) return;
    throw new CniError(err instanceof KubeError && err.unreachable ? 11 : 101, `listing route target claims of VPC ${vpcHex}: ${(err as Error).message}`);
  }
  for (const claim of list.items ?? []) {
    const held = (claim.spec?.holders ?? []).some((h) => h.node === holder.node && h.containerID === holder.containerID && h.ifName === holder.ifName);
    if (held && claim.spec?.routeTarget !== undefined) await releaseRouteTarget(client, claim.spec.routeTarget, holder);
  }
}
