// ADD: build the pod's data plane and publish it in the node's BGPVRFInstance, print the result.
// IPAM runs concurrently with the kernel work that does not need its answer (the VPC table, the
// veth pair, the VPC's entry rule) and, on the VPC's first attachment on this node, with the
// route-target claim (route-target-hold.ts); then the addresses and routes go in while the
// attachment is published. Every step records its undo; any failure unwinds them all, so a failed
// ADD leaves no interface, route, rule, lease, hold or object.
import { setImmediate as nextTurn } from "node:timers/promises";
import { CniError, ErrorCode, ioFailure, stackOf } from "./error.js";
import { connect, credentials, dataplaneOf, forVpc, makeContext, prefixesOf, readyMode, routing, speakerSettings, type Context } from "./context.js";
import { readRecord, removeRecord, writeRecord, type AttachmentRecord } from "./attachment-record.js";
import { chooseVpc } from "./pod-vpc.js";
import { sweepAfterBoot } from "./boot-sweep.js";
import { findPlugin, invokeIpam, IpamError, parseIpamResult } from "./ipam.js";
import { checkLocator, configure, podAddressesOf, podGateway4, podGateway6, prepare } from "./dataplane/attachment.js";
import { withLock } from "./dataplane/lock.js";
import { UndoStack } from "./dataplane/undo.js";
import { releaseVpc } from "./del.js";
import type { KubeClient } from "./kube/client.js";
import { publishAttachment, withdrawAttachment, type VrfIdentity } from "./kube/objects.js";
import { holdRouteTarget } from "./route-target-hold.js";
import { checkPrevResult } from "./prev-result.js";
import { mergeInto, render, type Result } from "./result.js";
import { withTasks } from "./task-group.js";
import type { CmdArgs } from "./skel.js";

export async function add(args: CmdArgs, env: Readonly<Record<string, string | undefined>>): Promise<Result> {
  const base = makeContext(args, env);
  // Before anything changes (code 7 naming the field otherwise): the IPAM plugin must be there,
  // and a chained ADD's prevResult must be one to append to.
  findPlugin(base.conf.ipam.type, args.path);
  checkPrevResult(args.config["prevResult"]);
  const creds = await credentials(base.conf);
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
    if (clientP === undefined) {
      clientP = connect(creds);
      // Shared by several steps and the undo, each awaiting it: its failure is theirs to report.
      clientP.catch(() => undefined);
    }
    return clientP;
  };
  let log = base.log;
  /** The attachment's record as it was before this ADD (a repeated ADD), restored by a clean undo. */
  let record: { before: AttachmentRecord | undefined } | undefined;
  try {
    // The VPC: the config's, or the pod namespace's annotation (one request) with vpcFromNamespace.
    const chosen = await chooseVpc(base, api);
    const ctx = forVpc(base, chosen.vpc, chosen.namespace);
    const { conf } = ctx;
    log = ctx.log;
    // The speaker config (the network config's, else the node's BGPInstance's) says which data
    // plane; the kernel must have what it needs. Both are known before anything changes.
    const sp = await speakerSettings(conf, api);
    const dp = dataplaneOf(conf, sp.encapsulation, chosen.field);
    const dpMode = await readyMode(ctx, sp.encapsulation);
    const { rd, rt } = routing(sp, conf);
    const id: VrfIdentity = {
      nodeName: conf.nodeName,
      vpcHex: conf.vpcHex,
      asn: sp.asn,
      routeTargetAsn: sp.routeTargetAsn,
      rd,
      rt,
      table: conf.table,
      encapsulation: dp.encap,
      ...(dp.vxlan !== undefined ? { vxlan: dp.vxlan } : {}),
    };
    phase["config"] = since(started);
    // Checked, nothing changed yet: the first ADD after a boot waits for what the previous boot
    // left to be swept (boot-sweep.ts).
    await sweepAfterBoot(base);
    // With the VPC chosen from the namespace, the node records it before the first change, so
    // DEL, CHECK and GC act on this VPC whatever the namespace says later (attachment-record.ts).
    if (conf.vpcFromNamespace) {
      const before = readRecord(conf.stateDir, conf.name, args.containerId, args.ifName);
      try {
        writeRecord(conf.stateDir, {
          network: conf.name,
          containerID: args.containerId,
          ifName: args.ifName,
          vpc: conf.vpcHex,
          ...(chosen.namespace !== undefined ? { namespace: chosen.namespace } : {}),
        });
      } catch (err) {
        throw ioFailure("stateDir", conf.stateDir, err);
      }
      record = { before };
    }

    const t0 = performance.now();
    // Every concurrent step runs in a task group (task-group.ts): none can fail unobserved, and
    // withTasks returns or throws only once each has settled, so the unwind below sees them all.
    const lockName = `vpc-${conf.vpcHex}`;
    let claimed = false;
    const { ipam, ready, client } = await withTasks(async (tasks) => {
      // Undone last, after the kernel state: an address is never handed out again while a route
      // to it is still in the VPC table. Released when IPAM leased, and also when its ADD ended
      // without an answer (killed, timed out, garbled): it may hold a lease then.
      let leased = false;
      undo.push("IPAM lease", () => (leased ? invokeIpam(conf.ipam.type, "DEL", args.path, env, args.stdin).then(() => undefined) : Promise.resolve()));
      // Under the VPC lock: the kernel work that makes the VPC count as in use on this node, and
      // the node's hold on the route-target claim (a request only when the node's marker does not
      // show it). Both settle before the lock is let go, so a DEL of the VPC's last other
      // attachment on this node sees either this attachment or no hold. When several steps fail,
      // the first started is reported: the hold (a collision, 103, says the most), the kernel,
      // IPAM, the API client.
      const prepared = tasks.start("VPC lock", () =>
        withLock(lockName, () =>
          withTasks(async (locked) => {
            phase["lockWait"] = since(t0);
            undo.push("VPC table and route-target hold", async () => {
              const c = await api();
              await withLock(lockName, () => releaseVpc(ctx, c, dpMode));
            });
            const t1 = performance.now();
            void locked.start("route-target hold", async () => {
              try {
                claimed = await holdRouteTarget(api, conf.stateDir, id);
              } catch (err) {
                throw ioFailure("stateDir", conf.stateDir, err);
              }
              if (claimed) phase["claim"] = since(t1);
            });
            const kernel = locked.start("prepare", () =>
              prepare(
                {
                  mode: dpMode,
                  encap: dp.encap,
                  vpc: conf.vpc,
                  attachment: conf.attachment,
                  seed: `${args.containerId}/${args.ifName}`,
                  table: conf.table,
                  locator: dp.locator,
                  vxlan: dp.vxlan,
                  podIf: args.ifName,
                  netns: args.netns,
                  mtu: dp.mtu,
                  terminations: conf.terminations,
                  alias: ctx.alias,
                },
                undo,
              ).then((p) => {
                phase["prepare"] = since(t1);
                return p;
              }),
            );
            await locked.join();
            return kernel;
          }),
        ),
      );
      const ipamDone = tasks.start("IPAM ADD", async () => {
        let out: string;
        try {
          out = await invokeIpam(conf.ipam.type, "ADD", args.path, env, args.stdin);
        } catch (err) {
          if (err instanceof IpamError && !err.answered) {
            leased = true;
            log.warn({ ipamStderr: err.stderr.slice(0, 4000) }, "IPAM ADD ended without an answer; its lease is released");
          }
          throw err;
        }
        leased = true;
        const parsed = parseIpamResult(out, conf.ipam.type);
        phase["ipam"] = since(t0);
        return parsed;
      });
      // After the IPAM plugin and the first kernel batch have been spawned.
      await nextTurn();
      const connected = tasks.start("API client", api);
      await tasks.join();
      return { ipam: await ipamDone, ready: await prepared, client: await connected };
    });

    // The publication, then (once its request is on its way) the addresses and routes: nothing
    // can use the attachment before ADD returns, and a failure of either undoes both.
    checkLocator(dpMode, dp.locator, ipam.ips);
    const t2 = performance.now();
    const sid6 = dpMode === "policy-routing" && ipam.ips.some((i) => i.family === 6) ? ready.sid6 : undefined;
    const prefixes = prefixesOf(podAddressesOf(ipam.ips), conf);
    const attached = await withTasks(async (tasks) => {
      undo.push("BGPVRFInstance entry", () => withdrawAttachment(client, conf.nodeName, conf.vpcHex, args.containerId, args.ifName).then(() => undefined));
      void tasks.start("publish", () =>
        publishAttachment(client, id, {
          containerID: args.containerId,
          ifName: args.ifName,
          attachment: ready.attachment.toString(16),
          ...(ready.sid !== undefined ? { sid: ready.sid } : {}),
          ...(sid6 !== undefined ? { sid6 } : {}),
          prefixes,
        }).then(() => {
          phase["publish"] = since(t2);
        }),
      );
      await nextTurn();
      const kernel = tasks.start("configure", () =>
        configure(ready, ipam.ips, ipam.routes).then((a) => {
          phase["configure"] = since(t2);
          return a;
        }),
      );
      await tasks.join();
      return kernel;
    });
    undo.commit();
    log.info(
      {
        ms: Math.round(performance.now() - started),
        phaseMs: phase,
        apiRoundTrips: client.roundTrips,
        apiMs: client.requestMs,
        claimed,
        mode: dpMode,
        attachment: attached.attachment.toString(16),
        prefixes,
        sid: attached.sid,
      },
      "attached",
    );
    return render(result(ctx, dp.mtu, attached.hostIf, attached.hostMac, attached.podMac, attached.podAddresses, ipam.routes, ipam.dns), conf.cniVersion);
  } catch (err) {
    const failures = await undo.unwind();
    // The record goes with a clean undo (a repeated ADD's failure puts back the record of the
    // attachment that exists); after a partial one it stays for the runtime's DEL.
    if (record !== undefined && failures.length === 0) {
      try {
        if (record.before !== undefined) writeRecord(base.conf.stateDir, record.before);
        else removeRecord(base.conf.stateDir, base.conf.name, args.containerId, args.ifName);
      } catch (e) {
        failures.push(`undo attachment record: ${(e as Error).message}`);
      }
    }
    const e = CniError.from(err);
    log.error({ err: e.message, code: e.code, undoFailures: failures, ...(e.code === ErrorCode.Internal ? { stack: stackOf(err) } : {}) }, "ADD failed; undone");
    if (failures.length > 0) {
      throw new CniError(e.code, e.message, [e.details, `cleanup left: ${failures.join("; ")}`].filter((s) => s !== "").join("\n"), { cause: err });
    }
    throw e;
  } finally {
    (await clientP?.catch(() => undefined))?.close();
  }
}

function result(
  ctx: Context,
  mtu: number,
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
      { name: ctx.args.ifName, mac: podMac, mtu, sandbox: ctx.args.netns },
    ],
    ips: podAddresses.map((address) => ({ address, gateway: address.includes(":") ? podGateway6 : podGateway4, interface: 1 })),
    routes,
    ...(dns ? { dns } : {}),
  });
}
