// STATUS: ready for ADD when the API server answers and a BGPInstance selects this node (the
// speaker config ADD takes the ASN from); forwarded to the IPAM plugin as the spec requires.
import { CniError, ErrorCode } from "./error.js";
import { kubeClient, makeContext } from "./context.js";
import { invokeIpam } from "./ipam.js";
import { speakerConfigsFor } from "./kube/speaker-config.js";
import type { CmdArgs } from "./skel.js";

export async function status(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const ctx = makeContext(args, env);
  const client = await kubeClient(ctx.conf);
  try {
    let selecting;
    try {
      selecting = await speakerConfigsFor(client, ctx.conf.nodeName);
    } catch (err) {
      throw new CniError(ErrorCode.NotAvailable, `not ready: ${CniError.from(err).message}`);
    }
    if (selecting.length === 0) {
      throw new CniError(ErrorCode.NotAvailable, `not ready: no BGPInstance selects node ${ctx.conf.nodeName}, so it has no BGP speaker config`);
    }
  } finally {
    client.close();
  }
  await invokeIpam(ctx.conf.ipam.type, "STATUS", args.path, env, args.stdin);
}
