// STATUS: ready for ADD when the node's kernel has what the data plane needs, the API server
// answers, exactly one BGPInstance selects this node (the speaker config ADD takes the ASN and the
// encapsulation from) and agrees with the network config, and the IPAM plugin is ready (the spec
// requires forwarding STATUS to it). The checks run at once, and a node that is not ready gets code
// 50 naming every reason, not just the first: an operator fixing one should not discover the next
// one five seconds later.
import { CniError, ErrorCode } from "./error.js";
import { encapsulation, kernel, kubeClient, makeContext } from "./context.js";
import { notReadyReason } from "./dataplane/mode.js";
import { invokeIpam } from "./ipam.js";
import { sweepAfterBoot } from "./boot-sweep.js";
import { speakerConfigsFor } from "./kube/speaker-config.js";
import type { CmdArgs } from "./skel.js";
import type { Encapsulation } from "../shared/api-types.js";

export async function status(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const ctx = makeContext(args, env);
  const { conf } = ctx;

  /** The speaker config's problems, and its encapsulation when the API answered. */
  const speaker = async (): Promise<{ reasons: string[]; encap?: Encapsulation }> => {
    const client = await kubeClient(conf);
    try {
      const selecting = await speakerConfigsFor(client, conf.nodeName);
      if (selecting.length === 0) return { reasons: [`no BGPInstance selects node ${conf.nodeName}, so it has no BGP speaker config`] };
      const names = selecting.map((s) => s.metadata?.name ?? "?");
      if (selecting.length > 1) return { reasons: [`several BGPInstances select node ${conf.nodeName} (${names.join(", ")}); ADD cannot choose an ASN`] };
      const encap = selecting[0]?.spec?.encapsulation ?? "srv6";
      // A config with its own asn builds its own encapsulation (srv6 unless set): it must agree.
      const own = conf.encapsulation ?? (conf.asn !== undefined ? "srv6" : undefined);
      if (own !== undefined && own !== encap) {
        return { reasons: [`encapsulation: the config says ${own} but BGPInstance ${names[0] ?? "?"} says ${encap}`], encap: own };
      }
      return { reasons: [], encap };
    } finally {
      client.close();
    }
  };
  const ipam = async (): Promise<void> => {
    await invokeIpam(conf.ipam.type, "STATUS", args.path, env, args.stdin);
  };

  const [k, sp, ip] = await Promise.allSettled([kernel(ctx), speaker(), ipam()]);
  const reasons: string[] = [];
  // Without an answer from the API server the config's encapsulation (default srv6) is judged.
  const encap = (sp.status === "fulfilled" ? sp.value.encap : undefined) ?? encapsulation(conf);
  if (k.status === "rejected") reasons.push(CniError.from(k.reason).message);
  else {
    const r = notReadyReason(k.value, encap);
    if (r !== undefined) reasons.push(`kernel: ${r}`);
  }
  if (sp.status === "rejected") reasons.push(CniError.from(sp.reason).message);
  else reasons.push(...sp.value.reasons);
  if (ip.status === "rejected") reasons.push(CniError.from(ip.reason).message);
  // A node otherwise ready sweeps what its previous boot left first (boot-sweep.ts): it is not
  // ready for ADD before that, and the first ADD would wait for it.
  if (reasons.length === 0) await sweepAfterBoot(ctx).catch((err: unknown) => reasons.push(CniError.from(err).message));
  if (reasons.length > 0) {
    ctx.log.warn({ reasons }, "not ready");
    throw new CniError(ErrorCode.NotAvailable, `not ready: ${reasons.join("; ")}`);
  }
}
