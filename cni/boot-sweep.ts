// The sweep after a boot. A reboot takes every pod's network namespace, veth, route and rule with
// the old kernel, but not what the attachments left outside it: their entries in the node's
// BGPVRFInstances (the other nodes still route those addresses here) and the IPAM leases on disk.
// The runtime cleans those up only for sandboxes it still knows (DEL) or when it calls GC —
// containerd 2.4 never calls GC, and a node whose runtime state was wiped knows no sandbox at all.
// So the first ADD or STATUS of a network after the node (re)started sweeps them: GC, node-wide,
// with only what is alive now as valid (host veths carrying the network's alias, attachment
// records), then the IPAM plugin's GC with the same list. Every ADD passes the sweep before it
// changes anything, under a node lock, so nothing of this boot can be mistaken for stale; a live
// attachment (an upgrade from a version without the sweep) is never touched.
// The marker `<stateDir>/booted/<network>` holds the kernel's boot ID: a new boot ID (a state
// directory on disk), or a state directory cleared with /run (its default, /run/kvrf, a tmpfs),
// means the sweep is due.
import { existsSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { CniError, ErrorCode, ioFailure } from "./error.js";
import type { BaseContext } from "./context.js";
import { listRecords } from "./attachment-record.js";
import { collect } from "./gc.js";
import { invokeIpam } from "./ipam.js";
import { withLock } from "./dataplane/lock.js";
import { bootId } from "./route-target-hold.js";
import { writeFileAtomic } from "../shared/atomic-write.js";

export function bootMarkerPath(stateDir: string, network: string): string {
  const name = /^[A-Za-z0-9._-]{1,200}$/.test(network) && !network.startsWith(".") ? network : `h-${createHash("sha256").update(network).digest("hex").slice(0, 40)}`;
  return path.join(stateDir, "booted", name);
}

/** The boot the marker names: undefined without one. */
function markedBoot(marker: string): string | undefined {
  try {
    return existsSync(marker) ? readFileSync(marker, "utf8").trim() : undefined;
  } catch {
    return undefined;
  }
}

function swept(marker: string): boolean {
  return markedBoot(marker) === bootId();
}

/**
 * Sweeps what the network's attachments of an earlier boot left, once per boot; a no-op (one
 * small file read) after that. Throws (code 11, try again) when the sweep could not finish: the
 * caller must not add an attachment before it has.
 */
export async function sweepAfterBoot(base: BaseContext): Promise<void> {
  const { conf, log, args, env } = base;
  const marker = bootMarkerPath(conf.stateDir, conf.name);
  if (swept(marker)) return;
  await withLock(`boot-${createHash("sha256").update(conf.name).digest("hex").slice(0, 16)}`, async () => {
    if (swept(marker)) return; // another run swept while this one waited
    const t0 = performance.now();
    // Records count as alive (an ADD of an older plugin still running) unless the marker names
    // another boot: then the state directory is on disk and they are the old boot's. Live host
    // veths are always kept (collect, afterBoot).
    const previous = markedBoot(marker);
    const records = previous === undefined || previous === "" ? listRecords(conf.stateDir, conf.name).map((r) => ({ containerID: r.containerID, ifname: r.ifName })) : [];
    const { errors, live } = await collect(base, new Set(records.map((a) => `${a.containerID}/${a.ifname}`)), true).catch((err: unknown) => ({
      errors: [CniError.from(err).message],
      live: [],
    }));
    if (errors.length > 0) {
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
      throw new CniError(ErrorCode.TryAgainLater, `cleaning up what the node's previous boot left failed: ${errors[0] ?? ""}${more}; no attachment is added until it succeeds`, errors.join("\n"));
    }
    const alive = [...new Map([...records, ...live].map((a) => [`${a.containerID}/${a.ifname}`, a])).values()];
    // The IPAM plugin's leases: GC with the same valid list (GC needs CNI 1.1). A plugin that cannot
    // GC keeps its leases (logged): blocking every ADD for it would be worse than the leak.
    const { "cni.dev/valid-attachments": _v, "cni.dev/attachments": _a, prevResult: _p, ...rest } = args.config;
    const version = typeof rest["cniVersion"] === "string" ? rest["cniVersion"] : "";
    const stdin = Buffer.from(JSON.stringify({ ...rest, cniVersion: /^(0\.|1\.0\.)/.test(version) ? "1.1.0" : version, "cni.dev/valid-attachments": alive }));
    await invokeIpam(conf.ipam.type, "GC", args.path, env, stdin).catch((err: unknown) =>
      log.warn({ ipam: conf.ipam.type, err: (err as Error).message }, "after the boot: the IPAM plugin's GC failed; its leases from the previous boot stay"),
    );
    try {
      writeFileAtomic(marker, `${bootId()}\n`);
    } catch (err) {
      throw ioFailure("stateDir", conf.stateDir, err);
    }
    log.info({ alive: alive.length, ms: Math.round(performance.now() - t0) }, "swept what the node's previous boot left");
  });
}
