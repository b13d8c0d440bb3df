// The local data plane of one attachment, in two kernel modes and two encapsulations
// (docs/dataplane.md). The kernel lines come from lines.ts (pure, golden-tested); this file runs
// them: when, in which batch, and how a failure is told apart and undone.
//   vrf             the host veth is enslaved to the VPC's VRF device (table T); with SRv6 the SID
//                   decapsulates with End.DT46 into that VRF.
//   policy-routing  an `ip rule iif <veth> lookup T` puts the pod's traffic in the VPC's table; with
//                   SRv6 the SID decapsulates with End.DX4 (and a second one with End.DX6) straight to
//                   the pod, through a node-unique next hop with a permanent neighbour entry.
//   vxlan           no per-attachment decapsulation: the VPC's VXLAN device (vpc.ts) delivers into T.
// Pods get /32 and /128 addresses and reach everything through link-local gateways that resolve
// to the host veth's MAC by permanent neighbour entries, so no ARP/NDP proxying is needed and
// pods of different VPCs may use the same addresses.
import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import type { Encapsulation } from "../../shared/api-types.js";
import { ip, ipJson, IpError, type IpOptions } from "../../shared/kernel/ip.js";
import { hostVethName } from "../../shared/ifnames.js";
import { attachmentSid, attachmentSid6, type Locator } from "../../shared/srv6-sid.js";
import { CniError, ErrorCode } from "../error.js";
import type { IpamIp, IpamRoute } from "../ipam.js";
import type { Termination } from "../config.js";
import { detachBatches, hostBatch, needsDx4, podBatch, prepareBatch, withDx4, type AttachmentShape, type Batch, type VxlanVpc } from "./lines.js";
import type { DataplaneMode } from "./mode.js";
import type { UndoStack } from "./undo.js";
import { ensureVrfDevice, inspectVxlanDevice, kernelError, makeVxlanDevice } from "./vpc.js";

export { podGateway4, podGateway6, rulePreference } from "./lines.js";
export { ensureVpc, releaseVpcIfUnused } from "./vpc.js";

/** End.DX4 next hops are drawn from here (clear of 169.254.169.254 and 169.254.1.1). */
const nextHopPool4 = { base: ipaddr.parse("169.254.64.0").toByteArray(), size: 1 << 14 };
/** End.DX6 next hops: this /64 plus the 64-bit (vpc << 16 | attachment), unique per node. */
const nextHopPrefix6 = 0xfd6b_7672_6600_0000n;

export interface AttachmentSpec {
  /** Namespace acting as the node (tests); undefined: the plugin's own namespace. */
  hostNs?: string | undefined;
  mode: DataplaneMode;
  /** Default srv6. */
  encap?: Encapsulation | undefined;
  vpc: bigint;
  /** The attachment ID, or undefined to pick a free one on this node. */
  attachment: number | undefined;
  /** Seed for picking a free attachment ID (e.g. containerID/ifName), so retries pick the same. */
  seed: string;
  table: number;
  /** SRv6: the node's locator (the attachment's SIDs are in it). */
  locator?: Locator | undefined;
  /** VXLAN: the VPC's VNI and the node's VTEP and router MAC (the VPC's VXLAN device). */
  vxlan?: VxlanVpc | undefined;
  podIf: string;
  /** CNI_NETNS path. */
  netns: string;
  mtu: number;
  ips: IpamIp[];
  routes: IpamRoute[];
  terminations: Termination[];
  /** Interface alias recording whose attachment this is (GC reads it). */
  alias: string;
}

/** An attachment's kernel identity, all derived from (vpc, attachment) and the locator. */
export interface AttachmentIds {
  attachment: number;
  hostIf: string;
  /** The SRv6 SID (undefined without a locator: VXLAN). */
  sid: string | undefined;
  /** The policy-routing mode's End.DX6 SID (undefined for a 64-bit locator, or without one). */
  sid6: string | undefined;
}

export function attachmentIds(locator: Locator | undefined, vpc: bigint, attachment: number): AttachmentIds {
  return {
    attachment,
    hostIf: hostVethName(vpc, attachment),
    sid: locator === undefined ? undefined : attachmentSid(locator, vpc, attachment),
    sid6: locator === undefined ? undefined : attachmentSid6(locator, vpc, attachment),
  };
}

export interface Attached extends AttachmentIds {
  hostMac: string;
  podMac: string;
  /** Addresses as configured in the pod (/32, /128). */
  podAddresses: string[];
}

function hostAddress(cidr: string): string {
  return ipaddr.parseCIDR(cidr)[0].toString();
}

export function nextHop6(vpc: bigint, attachment: number): string {
  const v = (nextHopPrefix6 << 64n) | (vpc << 16n) | BigInt(attachment);
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((v >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

function nextHop4Candidate(vpc: bigint, attachment: number, probe: number): string {
  const h = createHash("sha256").update(`${vpc}/${attachment}`).digest().readUInt32BE(0);
  const idx = (h + probe) % nextHopPool4.size;
  const b = [...nextHopPool4.base];
  b[2] = (b[2] ?? 0) + (idx >> 8);
  b[3] = idx & 0xff;
  return ipaddr.fromByteArray(b).toString();
}

/** The pod's addresses as configured in the pod (/32, /128), canonical. */
export function podAddressesOf(ips: readonly IpamIp[]): string[] {
  return ips.map((i) => `${hostAddress(i.address)}/${i.family === 4 ? 32 : 128}`);
}

/** Refuses IPv6 pods on a 64-bit locator in SRv6 policy-routing mode: End.DX6 needs a SID bit. */
export function checkLocator(mode: DataplaneMode, locator: Locator | undefined, ips: readonly IpamIp[]): void {
  if (locator !== undefined && mode === "policy-routing" && ips.some((i) => i.family === 6) && locator.length > 63) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      "srv6Locator: a 64-bit locator leaves no bit for the IPv6 (End.DX6) SID on a kernel without VRF devices; use a locator of 63 bits or less",
    );
  }
}

/**
 * Builds the attachment, recording an undo for each step: prepare(), then configure() with the
 * addresses. The caller holds the VPC lock (prepare needs it). Throws CniError; on failure the
 * caller unwinds `undo`.
 */
export async function attach(spec: AttachmentSpec, undo: UndoStack): Promise<Attached> {
  return configure(await prepare(spec, undo), spec.ips, spec.routes);
}

export type PrepareSpec = Omit<AttachmentSpec, "ips" | "routes">;

/** An attachment whose veth exists (prepare), waiting for its addresses (configure). */
export interface Prepared extends AttachmentIds {
  spec: Omit<PrepareSpec, "attachment">;
  hostMac: string;
  podMac: string;
}

/** Index (1-based) of the batch line that failed, from iproute2's "Command failed -:N". */
function failedLine(err: unknown): number | undefined {
  if (!(err instanceof IpError)) return undefined;
  const m = /Command failed -:(\d+)\b/.exec(err.stderr);
  return m ? Number(m[1]) : undefined;
}

function shape(spec: PrepareSpec, ids: AttachmentIds, hostMac: string, podMac: string): AttachmentShape {
  return {
    mode: spec.mode,
    encap: spec.encap ?? "srv6",
    vpc: spec.vpc,
    table: spec.table,
    hostIf: ids.hostIf,
    hostMac,
    podIf: spec.podIf,
    podMac,
    netns: spec.netns,
    mtu: spec.mtu,
    alias: spec.alias,
    sid: ids.sid,
    sid6: ids.sid6,
  };
}

function run(b: Batch, h: IpOptions): Promise<string> {
  return ip(b.args, { ...h, batch: b.lines });
}

/**
 * Everything that does not need the IPAM result: the VPC's per-node state (VRF device, VXLAN
 * device), then one `ip -6 -batch` (lines.ts prepareBatch) with the table's IPv6 default, the veth
 * pair — host end up with its MAC, pod end created directly inside the pod's namespace under its
 * final name, both with their MTU —, the alias recording whose it is, and the pod traffic's entry
 * into the VPC (the IPv6 `iif` rule, or VRF membership and with SRv6 the End.DT46 SID). The caller
 * holds the VPC lock: the rule or membership is what tells releaseVpcIfUnused (and the claims'
 * hold) that the VPC is in use. The host end is named from (vpc, attachment), so the kernel's
 * EEXIST on it is the atomic test-and-set that keeps attachment IDs (and with them SIDs) unique.
 */
export async function prepare(spec: PrepareSpec, undo: UndoStack): Promise<Prepared> {
  const h: IpOptions = spec.hostNs !== undefined ? { netns: spec.hostNs } : {};
  const encap = spec.encap ?? "srv6";
  if (encap === "srv6" && spec.locator === undefined) throw new CniError(ErrorCode.InvalidConfig, "srv6Locator: required with the srv6 encapsulation");
  if (encap === "vxlan" && spec.vxlan === undefined) throw new CniError(ErrorCode.InvalidConfig, "vtep: required with the vxlan encapsulation");
  // The VXLAN device (or the VTEP) is checked before anything is made.
  const vx = spec.vxlan !== undefined && encap === "vxlan" ? { mode: spec.mode, encap, vpc: spec.vpc, table: spec.table, mtu: spec.mtu, vxlan: spec.vxlan } : undefined;
  const vxState = vx !== undefined ? await inspectVxlanDevice(vx, h) : undefined;
  if (spec.mode === "vrf") await ensureVrfDevice(spec.vpc, spec.table, h, encap === "srv6");
  if (vx !== undefined && vxState === "make") await makeVxlanDevice(vx, h);
  const candidates =
    spec.attachment !== undefined
      ? [spec.attachment]
      : Array.from({ length: 32 }, (_, i) => (createHash("sha256").update(spec.seed).digest().readUInt16BE(0) + i * 7919) & 0xffff);
  for (const candidate of candidates) {
    const ids = attachmentIds(spec.locator, spec.vpc, candidate);
    const { host: hostMac, pod: podMac } = macs(spec.vpc, candidate);
    const batch = prepareBatch(shape(spec, ids, hostMac, podMac));
    const undoVeth = (): void =>
      undo.push(`attachment ${ids.hostIf}`, () => detach({ hostNs: spec.hostNs, mode: spec.mode, table: spec.table, hostIf: ids.hostIf, sid: ids.sid, sid6: ids.sid6 }));
    try {
      await run(batch, h);
    } catch (err) {
      const line = failedLine(err);
      if (line === undefined || line > batch.vethLine) {
        // Past the veth (or unknown: a timeout): ours if it carries our MAC, which is derived from
        // this very (vpc, attachment) and set atomically with its creation.
        const ours =
          line !== undefined ||
          (await ipJson<{ address?: string }>(["link", "show", "dev", ids.hostIf], h).then(
            (l) => l[0]?.address === hostMac,
            () => false,
          ));
        if (ours) undoVeth();
        throw kernelError(`preparing ${ids.hostIf} for VPC ${spec.vpc.toString(16)}`, err);
      }
      if (line < batch.vethLine || !(err instanceof IpError && err.exists)) throw kernelError(`creating veth ${ids.hostIf}/${spec.podIf}`, err);
      const hostExists = await ipJson(["link", "show", "dev", ids.hostIf], h).then(
        (l) => l.length > 0,
        () => false,
      );
      if (!hostExists) throw new CniError(ErrorCode.InvalidConfig, `interface ${spec.podIf} already exists in ${spec.netns}`);
      if (spec.attachment !== undefined) {
        throw new CniError(
          ErrorCode.InvalidConfig,
          `vpcAttachment: attachment ${candidate.toString(16)} of VPC ${spec.vpc.toString(16)} is already in use on this node (interface ${ids.hostIf} exists)`,
        );
      }
      continue;
    }
    undoVeth();
    const { attachment: _auto, ...rest } = spec;
    return { spec: rest, ...ids, hostMac, podMac };
  }
  throw new CniError(ErrorCode.TryAgainLater, `no free attachment ID for VPC ${spec.vpc.toString(16)} on this node after ${candidates.length} tries`);
}

/**
 * The rest, once IPAM has answered: the pod side (addresses, link-local gateways with permanent
 * neighbours, routes) and the host side (routes and neighbours to the pod and its terminations,
 * the IPv4 rule, SRv6 decapsulation per family), one batch each, run concurrently. Needs no lock:
 * prepare already made the VPC count as in use. prepare's undo removes all of it.
 */
export async function configure(p: Prepared, ips: IpamIp[], routes: IpamRoute[]): Promise<Attached> {
  const s = p.spec;
  const h: IpOptions = s.hostNs !== undefined ? { netns: s.hostNs } : {};
  checkLocator(s.mode, (s.encap ?? "srv6") === "srv6" ? s.locator : undefined, ips);
  const { hostMac, podMac } = p;
  try {
    const podAddresses = podAddressesOf(ips);
    const x = { podAddresses, routes, terminations: s.terminations };
    const a = shape({ ...s, attachment: p.attachment }, p, hostMac, podMac);
    const pod = podBatch(a, x);
    const host = hostBatch(a, x, nextHop6(s.vpc, p.attachment));
    const hostDone = needsDx4(a, x) ? withNextHop4(p, h, host, a) : run(host, h);
    const [podRun, hostRun] = await Promise.allSettled([run(pod, { netns: s.netns }), hostDone]);
    if (podRun.status === "rejected") throw podRun.reason;
    if (hostRun.status === "rejected") throw hostRun.reason;
    return { hostMac, podMac, podAddresses, attachment: p.attachment, hostIf: p.hostIf, sid: p.sid, sid6: p.sid6 };
  } catch (err) {
    throw kernelError(`attaching ${p.hostIf} to VPC ${s.vpc.toString(16)}`, err);
  }
}

/** Locally administered unicast MACs for both ends, fixed per attachment (no read-back needed). */
export function macs(vpc: bigint, attachment: number): { host: string; pod: string } {
  const mac = (role: string): string => {
    const b = createHash("sha256").update(`${role}/${vpc}/${attachment}`).digest();
    return ["02", ...[...b.subarray(0, 5)].map((x) => x.toString(16).padStart(2, "0"))].join(":");
  };
  return { host: mac("host"), pod: mac("pod") };
}

/** Runs the host batch with a free End.DX4 next hop (lines.ts withDx4: EEXIST on line 1 = taken). */
async function withNextHop4(p: Prepared, h: IpOptions, host: Batch, a: AttachmentShape): Promise<void> {
  for (let probe = 0; probe < 64; probe++) {
    const nh = nextHop4Candidate(p.spec.vpc, p.attachment, probe);
    try {
      await run(withDx4(host, a, nh), h);
      return;
    } catch (err) {
      if (!(err instanceof IpError && err.exists && failedLine(err) === 1)) throw err;
    }
  }
  throw new CniError(ErrorCode.Kernel, "no free End.DX4 next hop in 169.254.64.0/18 after 64 probes");
}

export interface DetachSpec {
  hostNs?: string | undefined;
  mode: DataplaneMode;
  table: number;
  hostIf: string;
  sid: string | undefined;
  sid6: string | undefined;
}

/** Removes an attachment's kernel state (lines.ts detachBatches); what is already gone counts as removed. */
export async function detach(s: DetachSpec): Promise<void> {
  const h: IpOptions = s.hostNs !== undefined ? { netns: s.hostNs } : {};
  // The two batches touch disjoint state, so they run concurrently.
  const runs = await Promise.allSettled(
    detachBatches(s).map((b) =>
      ip(b.args, { ...h, batch: b.lines, force: true }).catch((err: unknown) => {
        if (!(err instanceof IpError)) throw err;
        // Killed or timed out (no exit status): nothing says how much of the batch ran.
        if (err.exitCode === null) throw kernelError(`detaching ${s.hostIf}`, err);
        const real = err.stderr
          .split("\n")
          .filter((l) => l.trim() !== "" && !/No such process|Cannot find device|No such file or directory|does not exist|Command failed/i.test(l));
        if (real.length > 0) throw kernelError(`detaching ${s.hostIf}`, new Error(real.join("; ")));
      }),
    ),
  );
  for (const r of runs) if (r.status === "rejected") throw r.reason;
}
