// The local data plane of one attachment, in two kernel modes (docs/dataplane.md):
//   vrf             the host veth is enslaved to the VPC's VRF device (table T); the SID
//                   decapsulates with End.DT46 into that VRF.
//   policy-routing  an `ip rule iif <veth> lookup T` puts the pod's traffic in the VPC's table;
//                   the SID decapsulates with End.DX4 (and a second one with End.DX6) straight to
//                   the pod, through a node-unique next hop with a permanent neighbour entry.
// Pods get /32 and /128 addresses and reach everything through link-local gateways that resolve
// to the host veth's MAC by permanent neighbour entries, so no ARP/NDP proxying is needed and
// pods of different VPCs may use the same addresses.
import { createHash } from "node:crypto";
import ipaddr from "ipaddr.js";
import { routeProtocol } from "../../shared/api-types.js";
import { ip, ipIdempotentDel, ipJson, IpError, type IpOptions } from "../../shared/kernel/ip.js";
import { hostVethName, vrfDeviceName } from "../../shared/ifnames.js";
import { attachmentSid, attachmentSid6, type Locator } from "../../shared/srv6-sid.js";
import { CniError, ErrorCode } from "../error.js";
import type { IpamIp, IpamRoute } from "../ipam.js";
import type { Termination } from "../config.js";
import type { DataplaneMode } from "./mode.js";
import type { UndoStack } from "./undo.js";

export const podGateway4 = "169.254.1.1";
export const podGateway6 = "fe80::1";
/** Rule preference of the per-attachment `iif` rules: before main (32766), after local (0). */
export const rulePreference = 1000;
/** Metric of the VPC table's unreachable defaults: last resort, so nothing leaks to main. */
const unreachableMetric = "4278198272";
/** End.DX4 next hops are drawn from here (clear of 169.254.169.254 and 169.254.1.1). */
const nextHopPool4 = { base: ipaddr.parse("169.254.64.0").toByteArray(), size: 1 << 14 };
/** End.DX6 next hops: this /64 plus the 64-bit (vpc << 16 | attachment), unique per node. */
const nextHopPrefix6 = 0xfd6b_7672_6600_0000n;

const proto = String(routeProtocol.cni);

export interface AttachmentSpec {
  /** Namespace acting as the node (tests); undefined: the plugin's own namespace. */
  hostNs?: string | undefined;
  mode: DataplaneMode;
  vpc: bigint;
  /** The attachment ID, or undefined to pick a free one on this node. */
  attachment: number | undefined;
  /** Seed for picking a free attachment ID (e.g. containerID/ifName), so retries pick the same. */
  seed: string;
  table: number;
  locator: Locator;
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
  sid: string;
  /** The policy-routing mode's End.DX6 SID (undefined for a 64-bit locator). */
  sid6: string | undefined;
}

export function attachmentIds(locator: Locator, vpc: bigint, attachment: number): AttachmentIds {
  return {
    attachment,
    hostIf: hostVethName(vpc, attachment),
    sid: attachmentSid(locator, vpc, attachment),
    sid6: attachmentSid6(locator, vpc, attachment),
  };
}

type Resolved = Omit<AttachmentSpec, "attachment"> & AttachmentIds;

export interface Attached extends AttachmentIds {
  hostMac: string;
  podMac: string;
  /** Addresses as configured in the pod (/32, /128). */
  podAddresses: string[];
}

function hostAddress(cidr: string): string {
  return ipaddr.parseCIDR(cidr)[0].toString();
}

function family(addr: string): 4 | 6 {
  return ipaddr.parse(addr).kind() === "ipv4" ? 4 : 6;
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

function kernelError(what: string, err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(ErrorCode.Kernel, `${what}: ${(err as Error).message}`, "", { cause: err });
}

/** The per-VPC state on the node, shared by its attachments (idempotent). */
export async function ensureVpc(mode: DataplaneMode, vpc: bigint, table: number, hostNs?: string): Promise<void> {
  const h: IpOptions = hostNs !== undefined ? { netns: hostNs } : {};
  const t = String(table);
  const lines: string[] = [];
  if (mode === "vrf") {
    const dev = vrfDeviceName(vpc);
    try {
      await ip(["link", "add", dev, "type", "vrf", "table", t], h);
    } catch (err) {
      if (!(err instanceof IpError && err.exists)) throw kernelError(`creating VRF device ${dev}`, err);
    }
    lines.push(`link set ${dev} up`);
  }
  lines.push(`route replace unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${t} proto ${proto}`);
  lines.push(`route replace unreachable ::/0 metric ${unreachableMetric} table ${t} proto ${proto}`);
  try {
    await ip([], { ...h, batch: lines });
  } catch (err) {
    throw kernelError(`preparing table ${t} of VPC ${vpc.toString(16)}`, err);
  }
}

/** Removes the per-VPC state when no attachment of the VPC is left on the node. */
export async function releaseVpcIfUnused(mode: DataplaneMode, vpc: bigint, table: number, hostNs?: string): Promise<boolean> {
  const h: IpOptions = hostNs !== undefined ? { netns: hostNs } : {};
  const t = String(table);
  if (mode === "vrf") {
    const dev = vrfDeviceName(vpc);
    const members = await ipJson<{ ifname: string }>(["link", "show", "master", dev], h).catch((err: unknown) => {
      if (err instanceof IpError && err.notFound) return [];
      throw err;
    });
    if (members.length > 0) return false;
    await ip(["link", "del", dev], h).catch((err: unknown) => {
      if (!(err instanceof IpError && err.notFound)) throw err;
    });
  } else {
    // Every attachment has an IPv4 and an IPv6 rule; the IPv4 ones tell whether any is left.
    if ((await ipJson(["-4", "rule", "show", "table", t], h)).length > 0) return false;
  }
  await ip([], {
    ...h,
    batch: [`route del unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${t}`, `route del unreachable ::/0 metric ${unreachableMetric} table ${t}`],
    force: true,
  }).catch(() => undefined);
  return true;
}

/**
 * Builds the attachment, recording an undo for each step. The caller holds the VPC lock and has
 * run ensureVpc. Throws CniError; on failure the caller unwinds `undo`.
 */
export async function attach(spec: AttachmentSpec, undo: UndoStack): Promise<Attached> {
  const h: IpOptions = spec.hostNs !== undefined ? { netns: spec.hostNs } : {};
  const has6 = spec.ips.some((i) => i.family === 6);
  if (spec.mode === "policy-routing" && has6 && spec.locator.length > 63) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      "srv6Locator: a 64-bit locator leaves no bit for the IPv6 (End.DX6) SID on a kernel without VRF devices; use a locator of 63 bits or less",
    );
  }
  // 1. The veth pair, the pod end created directly inside the pod's namespace under its final
  // name. The host end is named from (vpc, attachment), so the kernel's EEXIST on it is the
  // atomic test-and-set that keeps attachment IDs (and with them SIDs) unique on the node.
  const candidates =
    spec.attachment !== undefined
      ? [spec.attachment]
      : Array.from({ length: 32 }, (_, i) => (createHash("sha256").update(spec.seed).digest().readUInt16BE(0) + i * 7919) & 0xffff);
  for (const candidate of candidates) {
    const ids = attachmentIds(spec.locator, spec.vpc, candidate);
    try {
      await ip(["link", "add", ids.hostIf, "mtu", String(spec.mtu), "type", "veth", "peer", "name", spec.podIf, "mtu", String(spec.mtu), "netns", spec.netns], h);
    } catch (err) {
      if (!(err instanceof IpError && err.exists)) throw kernelError(`creating veth ${ids.hostIf}/${spec.podIf}`, err);
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
    undo.push(`veth ${ids.hostIf}`, () => ipIdempotentDel(["link", "del", ids.hostIf], h));
    const { attachment: _auto, ...rest } = spec;
    return configure({ ...rest, ...ids }, undo, h);
  }
  throw new CniError(ErrorCode.TryAgainLater, `no free attachment ID for VPC ${spec.vpc.toString(16)} on this node after ${candidates.length} tries`);
}

async function configure(s: Resolved, undo: UndoStack, h: IpOptions): Promise<Attached> {
  const t = String(s.table);
  const has4 = s.ips.some((i) => i.family === 4);
  const has6 = s.ips.some((i) => i.family === 6);
  const { host: hostMac, pod: podMac } = macs(s.vpc, s.attachment);
  // One undo for everything below: detach() removes it all and tolerates what is not there.
  undo.push(`attachment ${s.hostIf}`, () => detach({ hostNs: s.hostNs, mode: s.mode, table: s.table, hostIf: s.hostIf, sid: s.sid, sid6: s.sid6 }));
  try {
    const podAddresses = s.ips.map((i) => `${hostAddress(i.address)}/${i.family === 4 ? 32 : 128}`);

    // The pod side: addresses, link-local gateways with permanent neighbours, routes.
    const pod: string[] = ["link set lo up", `link set ${s.podIf} address ${podMac}`];
    for (const a of podAddresses) pod.push(`addr add ${a} dev ${s.podIf}${family(hostAddress(a)) === 6 ? " nodad" : ""}`);
    pod.push(`link set ${s.podIf} up`);
    if (has4) {
      pod.push(`neigh replace ${podGateway4} lladdr ${hostMac} dev ${s.podIf} nud permanent`);
      pod.push(`route add ${podGateway4}/32 dev ${s.podIf} scope link`);
      pod.push(`route add default via ${podGateway4} dev ${s.podIf}`);
    }
    if (has6) {
      pod.push(`neigh replace ${podGateway6} lladdr ${hostMac} dev ${s.podIf} nud permanent`);
      pod.push(`route add ::/0 via ${podGateway6} dev ${s.podIf}`);
    }
    for (const r of s.routes) {
      const v = family(r.dst.split("/")[0] ?? "");
      if (r.dst === "0.0.0.0/0" || r.dst === "::/0") continue;
      if ((v === 4 && !has4) || (v === 6 && !has6)) continue;
      pod.push(`route replace ${r.dst} via ${v === 4 ? podGateway4 : podGateway6} dev ${s.podIf}`);
    }
    await ip([], { netns: s.netns, batch: pod });

    // The host side, in one batch per family (each `ip` run costs a process start): VPC
    // membership, routes to the pod and its terminations, and SRv6 decapsulation into it.
    const up = `link set ${s.hostIf} address ${hostMac} alias ${s.alias} up`;
    const host: string[] = [];
    if (s.mode === "vrf") host.push(up, `link set ${s.hostIf} master ${vrfDeviceName(s.vpc)}`);
    for (const a of podAddresses) {
      const addr = hostAddress(a);
      host.push(`neigh replace ${addr} lladdr ${podMac} dev ${s.hostIf} nud permanent`);
      host.push(`route add ${a} dev ${s.hostIf} table ${t} proto ${proto}${family(addr) === 4 ? " scope link" : ""}`);
    }
    for (const term of s.terminations) {
      host.push(`route add ${term.network} via ${term.via} dev ${s.hostIf} table ${t} proto ${proto} onlink`);
    }
    const host6: string[] = [];
    if (s.mode === "vrf") {
      host.push(`route add ${s.sid}/128 encap seg6local action End.DT46 vrftable ${t} dev ${vrfDeviceName(s.vpc)} proto ${proto}`);
      await ip([], { ...h, batch: host });
    } else {
      host.push(`rule add iif ${s.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`);
      host6.push(`rule add iif ${s.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`);
      if (has6 && s.sid6 !== undefined) {
        const nh = nextHop6(s.vpc, s.attachment);
        host6.push(
          `route add ${nh}/128 dev ${s.hostIf} proto ${proto}`,
          `neigh replace ${nh} lladdr ${podMac} dev ${s.hostIf} nud permanent`,
          `route add ${s.sid6}/128 encap seg6local action End.DX6 nh6 ${nh} dev ${s.hostIf} proto ${proto}`,
        );
      }
      if (has4) await withNextHop4(s, h, up, host, (nh) => [
        `neigh replace ${nh} lladdr ${podMac} dev ${s.hostIf} nud permanent`,
        `route add ${s.sid}/128 encap seg6local action End.DX4 nh4 ${nh} dev ${s.hostIf} proto ${proto}`,
      ]);
      else await ip([], { ...h, batch: [up, ...host] });
      await ip(["-6"], { ...h, batch: host6 });
    }
    return { hostMac, podMac, podAddresses, attachment: s.attachment, hostIf: s.hostIf, sid: s.sid, sid6: s.sid6 };
  } catch (err) {
    throw kernelError(`attaching ${s.hostIf} to VPC ${s.vpc.toString(16)}`, err);
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

/**
 * Runs the host batch with a free End.DX4 next hop: its route comes right after bringing the
 * veth up (idempotent), so the kernel's EEXIST on it (nothing else applied yet: a batch stops at
 * its first failure) is the allocator's atomic test-and-set; concurrent ADDs never share one.
 */
async function withNextHop4(s: Resolved, h: IpOptions, up: string, host: string[], then: (nh: string) => string[]): Promise<void> {
  for (let probe = 0; probe < 64; probe++) {
    const nh = nextHop4Candidate(s.vpc, s.attachment, probe);
    try {
      await ip([], { ...h, batch: [up, `route add ${nh}/32 dev ${s.hostIf} proto ${proto}`, ...host, ...then(nh)] });
      return;
    } catch (err) {
      if (!(err instanceof IpError && err.exists && /Command failed -:2\b/.test(err.stderr))) throw err;
    }
  }
  throw new CniError(ErrorCode.Kernel, "no free End.DX4 next hop in 169.254.64.0/18 after 64 probes");
}

export interface DetachSpec {
  hostNs?: string | undefined;
  mode: DataplaneMode;
  table: number;
  hostIf: string;
  sid: string;
  sid6: string | undefined;
}

/** Removes an attachment's kernel state; what is already gone counts as removed. */
export async function detach(s: DetachSpec): Promise<void> {
  const h: IpOptions = s.hostNs !== undefined ? { netns: s.hostNs } : {};
  const t = String(s.table);
  // Only our own SID routes (proto 196): a rollback must not remove a route someone else holds.
  const sids = [s.sid, ...(s.sid6 !== undefined ? [s.sid6] : [])].map((sid) => `route del ${sid}/128 proto ${proto}`);
  // Rules name the interface, so they outlive it: remove them explicitly (twice, in case an
  // interrupted earlier run added one more).
  const rules = [`rule del iif ${s.hostIf} lookup ${t}`, `rule del iif ${s.hostIf} lookup ${t}`];
  const steps: [string[], string[]][] = [
    [["-6"], [...sids, ...rules]],
    // Deleting the host end removes the pod end, and every route and neighbour through it.
    [["-4"], [...rules, `link del ${s.hostIf}`]],
  ];
  for (const [args, batch] of steps) {
    await ip(args, { ...h, batch, force: true }).catch((err: unknown) => {
      if (!(err instanceof IpError)) throw err;
      const real = err.stderr
        .split("\n")
        .filter((l) => l.trim() !== "" && !/No such process|Cannot find device|No such file or directory|does not exist|Command failed/i.test(l));
      if (real.length > 0) throw kernelError(`detaching ${s.hostIf}`, new Error(real.join("; ")));
    });
  }
}
