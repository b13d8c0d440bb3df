// ADD: claim the VPC's route target, get addresses from IPAM, build the data plane, publish the
// attachment in the node's BGPVRFInstance, print the result. Every step records its undo; any
// failure unwinds them all, so a failed ADD leaves no interface, route, rule, lease or object.
import { CniError } from "./error.js";
import { kubeClient, makeContext, mode, prefixesOf, routing, type Context } from "./context.js";
import { invokeIpam, parseIpamResult } from "./ipam.js";
import { attach, ensureVpc, podGateway4, podGateway6, releaseVpcIfUnused } from "./dataplane/attachment.js";
import { withLock } from "./dataplane/lock.js";
import { UndoStack } from "./dataplane/undo.js";
import { claimRouteTarget, publishAttachment, releaseRouteTarget, withdrawAttachment, type VrfIdentity } from "./kube/objects.js";
import { asnForNode } from "./kube/speaker-config.js";
import { mergeInto, render, type Result } from "./result.js";
import type { CmdArgs } from "./skel.js";

export async function add(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<Result> {
  const ctx = makeContext(args, env);
  const { conf, log } = ctx;
  const client = await kubeClient(conf);
  const started = performance.now();
  // Where the time goes, for the benchmark (scripts/bench-cni.ts reads these from the log).
  const phase: Record<string, number> = { startup: Math.round(process.uptime() * 1000) };
  let mark = started;
  const lap = (name: string): void => {
    const now = performance.now();
    phase[name] = Math.round((now - mark) * 10) / 10;
    mark = now;
  };
  const undo = new UndoStack();
  try {
    const asn = conf.asn ?? (await asnForNode(client, conf.nodeName));
    const { rd, rt } = routing(asn, conf);
    const id: VrfIdentity = { nodeName: conf.nodeName, vpcHex: conf.vpcHex, asn, rd, rt, table: conf.table };
    const holder = { node: conf.nodeName, containerID: args.containerId, ifName: args.ifName };
    const dpMode = await mode(ctx);
    lap("config");

    // The route-target claim (an API round trip, with the TLS handshake) runs while IPAM and the
    // kernel work; nothing is published before both are done, and if either fails both are undone.
    const t0 = performance.now();
    const since = (t: number): number => Math.round((performance.now() - t) * 10) / 10;
    const claimed = claimRouteTarget(client, id, holder).then(() => {
      phase["claim"] = since(t0);
      undo.push("route target claim", () => releaseRouteTarget(client, rt, holder));
    });
    const local = (async () => {
      const ipamOut = await invokeIpam(conf.ipam.type, "ADD", args.path, env, args.stdin);
      undo.push("IPAM lease", () => invokeIpam(conf.ipam.type, "DEL", args.path, env, args.stdin).then(() => undefined));
      const ipam = parseIpamResult(ipamOut, conf.ipam.type);
      phase["ipam"] = since(t0);
      const t1 = performance.now();
      const lockName = `vpc-${conf.vpcHex}`;
      const attached = await withLock(lockName, async () => {
        undo.push("VPC table", () => withLock(lockName, () => releaseVpcIfUnused(dpMode, conf.vpc, conf.table)).then(() => undefined));
        await ensureVpc(dpMode, conf.vpc, conf.table);
        return attach(
          {
            mode: dpMode,
            vpc: conf.vpc,
            attachment: conf.attachment,
            seed: `${args.containerId}/${args.ifName}`,
            table: conf.table,
            locator: conf.locator,
            podIf: args.ifName,
            netns: args.netns,
            mtu: conf.mtu,
            ips: ipam.ips,
            routes: ipam.routes,
            terminations: conf.terminations,
            alias: ctx.alias,
          },
          undo,
        );
      });
      phase["kernel"] = since(t1);
      return { ipam, attached };
    })();
    const [claim, built] = await Promise.allSettled([claimed, local]);
    if (claim.status === "rejected") throw claim.reason;
    if (built.status === "rejected") throw built.reason;
    const { ipam, attached } = built.value;
    mark = performance.now();
    const prefixes = prefixesOf(attached.podAddresses, conf);
    const sid6 = dpMode === "policy-routing" && ipam.ips.some((i) => i.family === 6) ? attached.sid6 : undefined;
    undo.push("BGPVRFInstance entry", () =>
      withdrawAttachment(client, conf.nodeName, conf.vpcHex, args.containerId, args.ifName).then(() => undefined),
    );
    await publishAttachment(client, id, {
      containerID: args.containerId,
      ifName: args.ifName,
      attachment: attached.attachment.toString(16),
      sid: attached.sid,
      ...(sid6 !== undefined ? { sid6 } : {}),
      prefixes,
    });
    lap("publish");
    undo.commit();
    log.info({ ms: Math.round(performance.now() - started), phaseMs: phase, apiRoundTrips: client.roundTrips, mode: dpMode, attachment: attached.attachment.toString(16), prefixes, sid: attached.sid }, "attached");
    return render(result(ctx, attached.hostIf, attached.hostMac, attached.podMac, attached.podAddresses, ipam.routes, ipam.dns), conf.cniVersion);
  } catch (err) {
    const failures = await undo.unwind();
    const e = CniError.from(err);
    log.error({ err: e.message, code: e.code, undoFailures: failures }, "ADD failed; undone");
    if (failures.length > 0) {
      throw new CniError(e.code, e.message, [e.details, `cleanup left: ${failures.join("; ")}`].filter((s) => s !== "").join("\n"));
    }
    throw e;
  } finally {
    client.close();
  }
}

function result(
  ctx: Context,
  hostIf: string,
  hostMac: string,
  podMac: string,
  podAddresses: string[],
  ipamRoutes: { dst: string; gw?: string }[],
  dns: Record<string, unknown> | undefined,
): Omit<Result, "cniVersion"> {
  const has4 = podAddresses.some((a) => !a.includes(":"));
  const has6 = podAddresses.some((a) => a.includes(":"));
  const routes = [
    ...(has4 ? [{ dst: "0.0.0.0/0", gw: podGateway4 }] : []),
    ...(has6 ? [{ dst: "::/0", gw: podGateway6 }] : []),
    ...ipamRoutes
      .filter((r) => r.dst !== "0.0.0.0/0" && r.dst !== "::/0")
      .filter((r) => (r.dst.includes(":") ? has6 : has4))
      .map((r) => ({ dst: r.dst, gw: r.dst.includes(":") ? podGateway6 : podGateway4 })),
  ];
  return mergeInto(ctx.conf.prevResult, {
    interfaces: [
      { name: hostIf, mac: hostMac },
      { name: ctx.args.ifName, mac: podMac, mtu: ctx.conf.mtu, sandbox: ctx.args.netns },
    ],
    ips: podAddresses.map((address) => ({ address, gateway: address.includes(":") ? podGateway6 : podGateway4, interface: 1 })),
    routes,
    ...(dns ? { dns } : {}),
  });
}
