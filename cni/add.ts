// ADD: build the pod's data plane and publish it in the node's BGPVRFInstance, print the result.
// IPAM runs concurrently with the kernel work that does not need its answer (the VPC table, the
// veth pair, the VPC's entry rule) and, on the VPC's first attachment on this node, with the
// route-target claim (route-target-hold.ts); then the addresses and routes go in while the
// attachment is published. Every step records its undo; any failure unwinds them all, so a failed
// ADD leaves no interface, route, rule, lease, hold or object.
import { setImmediate as nextTurn } from "node:timers/promises";
import { CniError } from "./error.js";
import { connect, credentials, makeContext, mode, prefixesOf, routing, type Context } from "./context.js";
import { invokeIpam, parseIpamResult } from "./ipam.js";
import { checkLocator, configure, podAddressesOf, podGateway4, podGateway6, prepare } from "./dataplane/attachment.js";
import { withLock } from "./dataplane/lock.js";
import { UndoStack } from "./dataplane/undo.js";
import { releaseVpc } from "./del.js";
import type { KubeClient } from "./kube/client.js";
import { publishAttachment, withdrawAttachment, type VrfIdentity } from "./kube/objects.js";
import { asnForNode } from "./kube/speaker-config.js";
import { holdRouteTarget } from "./route-target-hold.js";
import { mergeInto, render, type Result } from "./result.js";
import type { CmdArgs } from "./skel.js";

export async function add(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<Result> {
  const ctx = makeContext(args, env);
  const { conf, log } = ctx;
  const creds = await credentials(conf);
  const started = performance.now();
  // Where the time goes, for the benchmark (scripts/bench-cni.ts reads these from the log).
  const phase: Record<string, number> = { startup: Math.round(process.uptime() * 1000) };
  const since = (t: number): number => Math.round((performance.now() - t) * 10) / 10;
  const undo = new UndoStack();
  // The API client, and with it node:https and node:tls (~10 ms of this thread) and the TLS
  // handshake, comes once the IPAM plugin and the first kernel batch are running (setImmediate
  // runs after both have been spawned), unless the ASN has to be looked up first.
  let clientP: Promise<KubeClient> | undefined;
  const api = (): Promise<KubeClient> => {
    clientP ??= connect(creds);
    return clientP;
  };
  try {
    const asn = conf.asn ?? (await asnForNode(await api(), conf.nodeName));
    const { rd, rt } = routing(asn, conf);
    const id: VrfIdentity = { nodeName: conf.nodeName, vpcHex: conf.vpcHex, asn, rd, rt, table: conf.table };
    const dpMode = await mode(ctx);
    phase["config"] = since(started);

    const t0 = performance.now();
    // Undone last, after the kernel state: an address is never handed out again while a route
    // to it is still in the VPC table.
    let leased = false;
    undo.push("IPAM lease", () => (leased ? invokeIpam(conf.ipam.type, "DEL", args.path, env, args.stdin).then(() => undefined) : Promise.resolve()));
    const ipamDone = (async () => {
      const out = await invokeIpam(conf.ipam.type, "ADD", args.path, env, args.stdin);
      leased = true;
      const ipam = parseIpamResult(out, conf.ipam.type);
      phase["ipam"] = since(t0);
      return ipam;
    })();
    // Under the VPC lock: the kernel work that makes the VPC count as in use on this node, and the
    // node's hold on the route-target claim (a request only when the node's marker does not show
    // it). Both settle before the lock is let go, so a DEL of the VPC's last other attachment on
    // this node sees either this attachment or no hold.
    const lockName = `vpc-${conf.vpcHex}`;
    let claimed = false;
    const prepared = withLock(lockName, async () => {
      phase["lockWait"] = since(t0);
      undo.push("VPC table and route-target hold", async () => {
        const client = await api();
        await withLock(lockName, () => releaseVpc(ctx, client, dpMode));
      });
      const t1 = performance.now();
      const kernel = prepare(
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
          terminations: conf.terminations,
          alias: ctx.alias,
        },
        undo,
      ).then((p) => {
        phase["prepare"] = since(t1);
        return p;
      });
      const hold = holdRouteTarget(api, conf.stateDir, id).then((c) => {
        claimed = c;
        if (c) phase["claim"] = since(t1);
      });
      const [k, c] = await Promise.allSettled([kernel, hold]);
      if (c.status === "rejected") throw c.reason;
      if (k.status === "rejected") throw k.reason;
      return k.value;
    });
    await nextTurn();
    const client = api();
    const [pre, ipamRun, connected] = await Promise.allSettled([prepared, ipamDone, client]);
    if (pre.status === "rejected") throw pre.reason;
    if (ipamRun.status === "rejected") throw ipamRun.reason;
    if (connected.status === "rejected") throw connected.reason;
    const ipam = ipamRun.value;
    const ready = pre.value;

    // The publication, then (once its request is on its way) the addresses and routes: nothing
    // can use the attachment before ADD returns, and a failure of either undoes both.
    checkLocator(dpMode, conf.locator, ipam.ips);
    const t2 = performance.now();
    const sid6 = dpMode === "policy-routing" && ipam.ips.some((i) => i.family === 6) ? ready.sid6 : undefined;
    const prefixes = prefixesOf(podAddressesOf(ipam.ips), conf);
    undo.push("BGPVRFInstance entry", () =>
      withdrawAttachment(connected.value, conf.nodeName, conf.vpcHex, args.containerId, args.ifName).then(() => undefined),
    );
    const published = publishAttachment(connected.value, id, {
      containerID: args.containerId,
      ifName: args.ifName,
      attachment: ready.attachment.toString(16),
      sid: ready.sid,
      ...(sid6 !== undefined ? { sid6 } : {}),
      prefixes,
    }).then(() => {
      phase["publish"] = since(t2);
    });
    await nextTurn();
    const kernel = configure(ready, ipam.ips, ipam.routes).then((a) => {
      phase["configure"] = since(t2);
      return a;
    });
    const [k, p] = await Promise.allSettled([kernel, published]);
    if (k.status === "rejected") throw k.reason;
    if (p.status === "rejected") throw p.reason;
    const attached = k.value;
    undo.commit();
    log.info(
      {
        ms: Math.round(performance.now() - started),
        phaseMs: phase,
        apiRoundTrips: connected.value.roundTrips,
        apiMs: connected.value.requestMs,
        claimed,
        mode: dpMode,
        attachment: attached.attachment.toString(16),
        prefixes,
        sid: attached.sid,
      },
      "attached",
    );
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
    (await clientP?.catch(() => undefined))?.close();
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
