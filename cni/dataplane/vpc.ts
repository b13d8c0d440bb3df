// The per-VPC state on a node, shared by the VPC's attachments: its table's unreachable defaults,
// the VRF device (VRF mode) and the VXLAN device (VXLAN). Made by the first attachment's prepare
// under the VPC lock, removed with the last attachment (releaseVpcIfUnused). The lines come from
// lines.ts; this file decides order, idempotency and what "in use" means.
import { ensureSysctl } from "../../shared/kernel/sysctl.js";
import { batchFailures, ip, ipJson, IpError, type IpOptions } from "../../shared/kernel/ip.js";
import { vrfDeviceName, vxlanDeviceName } from "../../shared/ifnames.js";
import { canonicalMac } from "../../shared/router-mac.js";
import { CniError, ErrorCode } from "../error.js";
import { releaseTableLines, tableDefaultLines, vxlanDeviceBatches, vxlanReleaseBatches, type Batch, type VpcShape, type VxlanVpc } from "./lines.js";
import type { DataplaneMode } from "./mode.js";

export function kernelError(what: string, err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(ErrorCode.Kernel, `${what}: ${(err as Error).message}`, "", { cause: err });
}

/** Runs a -force batch whose lines are idempotent when "File exists" counts as done. */
async function runIdempotent(b: Batch, h: IpOptions): Promise<void> {
  try {
    await ip(b.args, { ...h, batch: b.lines, force: true });
  } catch (err) {
    if (!(err instanceof IpError)) throw err;
    const real = [...batchFailures(err.stderr)].filter(([, words]) => !/File exists/.test(words));
    if (real.length > 0 || batchFailures(err.stderr).size === 0) {
      const detail = real.map(([n, words]) => `${b.lines[n - 1] ?? `line ${n}`}: ${words}`).join("; ");
      throw new IpError(b.args, detail || err.stderr, err.exitCode);
    }
  }
}

/**
 * The VPC's VRF device (idempotent). With SRv6 also VRF strict mode in the node's namespace: the
 * kernel refuses End.DT46 decapsulation into a VRF unless `net.vrf.strict_mode=1` ("Strict mode for
 * VRF is disabled"), and distribution kernels default to 0. kvrf owns this sysctl in VRF mode;
 * strict mode only forbids two VRF devices sharing a table, which the route-target claim already
 * rules out for kvrf's tables. The sysctl exists once the vrf module is loaded (after a VRF device).
 */
export async function ensureVrfDevice(vpc: bigint, table: number, h: IpOptions, strictMode: boolean): Promise<string> {
  const dev = vrfDeviceName(vpc);
  try {
    await ip(["link", "add", dev, "type", "vrf", "table", String(table)], h);
  } catch (err) {
    if (!(err instanceof IpError && err.exists)) throw kernelError(`creating VRF device ${dev}`, err);
  }
  if (!strictMode) return dev;
  try {
    await ensureSysctl("net.vrf.strict_mode", "1", h.netns);
  } catch (err) {
    throw new CniError(ErrorCode.Kernel, `enabling VRF strict mode (net.vrf.strict_mode=1, which End.DT46 decapsulation needs): ${(err as Error).message}`, "", {
      cause: err,
    });
  }
  return dev;
}

interface VxlanLink {
  ifname: string;
  address?: string;
  operstate?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string; port?: number } };
}

async function vxlanLink(dev: string, h: IpOptions): Promise<VxlanLink | undefined> {
  try {
    return (await ipJson<VxlanLink>(["-d", "link", "show", "dev", dev], h))[0];
  } catch (err) {
    if (err instanceof IpError && err.notFound) return undefined;
    throw err;
  }
}

/** Whether `address` is configured on an interface of the node (the VXLAN socket binds to it). */
async function isLocalAddress(address: string, h: IpOptions): Promise<boolean> {
  const fam = address.includes(":") ? "-6" : "-4";
  const got = await ipJson<{ addr_info?: { local?: string }[] }>([fam, "addr", "show"], h);
  return got.some((l) => (l.addr_info ?? []).some((a) => a.local === address));
}

/**
 * Reads the VPC's VXLAN device and checks it against the config: "up" when an earlier ADD finished
 * it (one `ip` read and nothing else), "make" when it is absent or not up yet. One that exists but
 * differs is refused rather than replaced: the VPC's running pods use it. An absent one needs the
 * VTEP to be an address of the node. Changes nothing, so ADD checks before making anything.
 */
export async function inspectVxlanDevice(v: VpcShape & { vxlan: VxlanVpc }, h: IpOptions): Promise<"up" | "make"> {
  const dev = vxlanDeviceName(v.vpc);
  const have = await vxlanLink(dev, h);
  if (have !== undefined) {
    const d = have.linkinfo?.info_data ?? {};
    const local = d.local ?? d.local6;
    const mismatch = [
      have.linkinfo?.info_kind !== "vxlan" ? `it is a ${have.linkinfo?.info_kind ?? "non-VXLAN"} device` : "",
      d.id !== v.vxlan.vni ? `VNI ${String(d.id)} (want ${v.vxlan.vni})` : "",
      local !== v.vxlan.vtep ? `local ${local ?? "none"} (want ${v.vxlan.vtep})` : "",
      canonicalMac(have.address ?? "") !== v.vxlan.routerMac ? `address ${have.address ?? "none"} (want ${v.vxlan.routerMac})` : "",
    ].filter((m) => m !== "");
    if (mismatch.length > 0) {
      throw new CniError(
        ErrorCode.InvalidConfig,
        `vtep: the VPC's VXLAN device ${dev} exists with ${mismatch.join(", ")}; attachments of the VPC on this node use it (remove them, or restore the previous vtep)`,
      );
    }
    if ((have.flags ?? []).includes("UP")) return "up";
  } else if (!(await isLocalAddress(v.vxlan.vtep, h))) {
    throw new CniError(ErrorCode.InvalidConfig, `vtep: ${v.vxlan.vtep} is not an address of this node (the VXLAN device decapsulates on it)`);
  }
  return "make";
}

/**
 * Makes (or finishes) the VPC's VXLAN device: bound to its table — in VRF mode a member of the
 * VPC's VRF device, which must exist — before it comes up (lines.ts). Idempotent.
 */
export async function makeVxlanDevice(v: VpcShape & { vxlan: VxlanVpc }, h: IpOptions): Promise<void> {
  const dev = vxlanDeviceName(v.vpc);
  for (const b of vxlanDeviceBatches(v)) {
    try {
      await runIdempotent(b, h);
    } catch (err) {
      throw kernelError(`creating VXLAN device ${dev} (VNI ${v.vxlan.vni}) of VPC ${v.vpc.toString(16)}`, err);
    }
  }
}

/** The per-VPC state (idempotent): VRF device, table defaults, VXLAN device. */
export async function ensureVpc(mode: DataplaneMode, vpc: bigint, table: number, hostNs?: string, extra: Partial<Pick<VpcShape, "encap" | "vxlan" | "mtu">> = {}): Promise<void> {
  const h: IpOptions = hostNs !== undefined ? { netns: hostNs } : {};
  const encap = extra.encap ?? "srv6";
  const vx = encap === "vxlan" && extra.vxlan !== undefined ? { mode, encap, vpc, table, mtu: extra.mtu ?? 1430, vxlan: extra.vxlan } : undefined;
  const vxState = vx !== undefined ? await inspectVxlanDevice(vx, h) : undefined;
  const lines: string[] = [];
  if (mode === "vrf") lines.push(`link set ${await ensureVrfDevice(vpc, table, h, encap === "srv6")} up`);
  lines.push(...tableDefaultLines(table));
  try {
    await ip([], { ...h, batch: lines });
  } catch (err) {
    throw kernelError(`preparing table ${table} of VPC ${vpc.toString(16)}`, err);
  }
  if (vx !== undefined && vxState === "make") await makeVxlanDevice(vx, h);
}

/**
 * Removes the per-VPC state when no attachment of the VPC is left on the node. "In use" means an
 * attachment's VRF membership or IPv6 `iif` rule — made first, with the veth and under the VPC lock
 * (prepare), so it also counts an ADD still waiting for its addresses. The VPC's own VXLAN device
 * is a member (or has a rule) too, and does not count.
 */
export async function releaseVpcIfUnused(mode: DataplaneMode, vpc: bigint, table: number, hostNs?: string): Promise<boolean> {
  const h: IpOptions = hostNs !== undefined ? { netns: hostNs } : {};
  const vx = vxlanDeviceName(vpc);
  if (mode === "vrf") {
    const members = await ipJson<{ ifname: string }>(["link", "show", "master", vrfDeviceName(vpc)], h).catch((err: unknown) => {
      if (err instanceof IpError && err.notFound) return [];
      throw err;
    });
    if (members.some((m) => m.ifname !== vx)) return false;
  } else {
    const rules = await ipJson<{ iif?: string }>(["-6", "rule", "show", "table", String(table)], h);
    if (rules.some((r) => r.iif !== vx)) return false;
  }
  // The VXLAN device first, and for sure: without its VRF or rules it would decapsulate into main.
  await ip(["link", "del", vx], h).catch((err: unknown) => {
    if (!(err instanceof IpError && err.notFound)) throw kernelError(`removing VXLAN device ${vx}`, err);
  });
  for (const b of vxlanReleaseBatches({ mode, vpc, table })) await ip(b.args, { ...h, batch: b.lines, force: true }).catch(() => undefined);
  if (mode === "vrf") {
    await ip(["link", "del", vrfDeviceName(vpc)], h).catch((err: unknown) => {
      if (!(err instanceof IpError && err.notFound)) throw kernelError(`removing VRF device ${vrfDeviceName(vpc)}`, err);
    });
  }
  await ip([], { ...h, batch: releaseTableLines(table), force: true }).catch(() => undefined);
  return true;
}
