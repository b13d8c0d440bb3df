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
import { ip, ipJson, IpError, type IpOptions } from "../../shared/kernel/ip.js";
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
    // Every attachment has an IPv4 and an IPv6 rule. The IPv6 one is made first, with the veth and
    // under the VPC lock (prepare), so it also counts an ADD still waiting for its addresses.
    if ((await ipJson(["-6", "rule", "show", "table", t], h)).length > 0) return false;
  }
  await ip([], {
    ...h,
    batch: [`route del unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${t}`, `route del unreachable ::/0 metric ${unreachableMetric} table ${t}`],
    force: true,
  }).catch(() => undefined);
  return true;
}

/** The pod's addresses as configured in the pod (/32, /128), canonical. */
export function podAddressesOf(ips: readonly IpamIp[]): string[] {
  return ips.map((i) => `${hostAddress(i.address)}/${i.family === 4 ? 32 : 128}`);
}

/** Refuses IPv6 pods on a 64-bit locator in policy-routing mode: End.DX6 needs a SID bit. */
export function checkLocator(mode: DataplaneMode, locator: Locator, ips: readonly IpamIp[]): void {
  if (mode === "policy-routing" && ips.some((i) => i.family === 6) && locator.length > 63) {
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

/**
 * Everything that does not need the IPAM result, in one `ip -6 -batch` (each `ip` run costs a
 * process start): the VPC table's IPv6 unreachable default, the veth pair — host end up with its
 * MAC, pod end created directly inside the pod's namespace under its final name, both with their
 * MTU — the alias recording whose it is, and the pod traffic's entry into the VPC (the IPv6
 * `iif` rule, or VRF membership and the End.DT46 SID). The caller holds the VPC lock: the rule or
 * membership is what tells releaseVpcIfUnused (and the route-target hold) that the VPC is in use.
 * The host end is named from (vpc, attachment), so the kernel's EEXIST on it is the atomic
 * test-and-set that keeps attachment IDs (and with them SIDs) unique on the node.
 */
export async function prepare(spec: PrepareSpec, undo: UndoStack): Promise<Prepared> {
  const h: IpOptions = spec.hostNs !== undefined ? { netns: spec.hostNs } : {};
  const t = String(spec.table);
  const vrf = vrfDeviceName(spec.vpc);
  const before: string[] = [];
  if (spec.mode === "vrf") {
    try {
      await ip(["link", "add", vrf, "type", "vrf", "table", t], h);
    } catch (err) {
      if (!(err instanceof IpError && err.exists)) throw kernelError(`creating VRF device ${vrf}`, err);
    }
    before.push(`link set ${vrf} up`);
  }
  before.push(`route replace unreachable ::/0 metric ${unreachableMetric} table ${t} proto ${proto}`);
  const vethLine = before.length + 1;
  const candidates =
    spec.attachment !== undefined
      ? [spec.attachment]
      : Array.from({ length: 32 }, (_, i) => (createHash("sha256").update(spec.seed).digest().readUInt16BE(0) + i * 7919) & 0xffff);
  for (const candidate of candidates) {
    const ids = attachmentIds(spec.locator, spec.vpc, candidate);
    const { host: hostMac, pod: podMac } = macs(spec.vpc, candidate);
    const mtu = String(spec.mtu);
    const lines = [
      ...before,
      `link add ${ids.hostIf} address ${hostMac} mtu ${mtu} up type veth peer name ${spec.podIf} address ${podMac} mtu ${mtu} netns ${spec.netns}`,
      `link set ${ids.hostIf} alias ${spec.alias}`,
      ...(spec.mode === "vrf"
        ? [`link set ${ids.hostIf} master ${vrf}`, `route add ${ids.sid}/128 encap seg6local action End.DT46 vrftable ${t} dev ${vrf} proto ${proto}`]
        : [`rule add iif ${ids.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`]),
    ];
    const undoVeth = (): void =>
      undo.push(`attachment ${ids.hostIf}`, () => detach({ hostNs: spec.hostNs, mode: spec.mode, table: spec.table, hostIf: ids.hostIf, sid: ids.sid, sid6: ids.sid6 }));
    try {
      await ip(["-6"], { ...h, batch: lines });
    } catch (err) {
      const line = failedLine(err);
      if (line === undefined || line > vethLine) {
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
      if (line < vethLine || !(err instanceof IpError && err.exists)) throw kernelError(`creating veth ${ids.hostIf}/${spec.podIf}`, err);
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
  const t = String(s.table);
  const has4 = ips.some((i) => i.family === 4);
  const has6 = ips.some((i) => i.family === 6);
  checkLocator(s.mode, s.locator, ips);
  const { hostMac, podMac } = p;
  try {
    const podAddresses = podAddressesOf(ips);

    // The pod side: addresses, link-local gateways with permanent neighbours, routes.
    const pod: string[] = ["link set lo up"];
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
    for (const r of routes) {
      const v = family(r.dst.split("/")[0] ?? "");
      if (r.dst === "0.0.0.0/0" || r.dst === "::/0") continue;
      if ((v === 4 && !has4) || (v === 6 && !has6)) continue;
      pod.push(`route replace ${r.dst} via ${v === 4 ? podGateway4 : podGateway6} dev ${s.podIf}`);
    }

    // The host side, in one batch (every line's family follows from its addresses): the VPC
    // table's IPv4 default, routes to the pod and its terminations, SRv6 decapsulation into it.
    const host: string[] = [`route replace unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${t} proto ${proto}`];
    if (s.mode === "policy-routing") host.push(`rule add iif ${p.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`);
    for (const a of podAddresses) {
      const addr = hostAddress(a);
      host.push(`neigh replace ${addr} lladdr ${podMac} dev ${p.hostIf} nud permanent`);
      host.push(`route add ${a} dev ${p.hostIf} table ${t} proto ${proto}${family(addr) === 4 ? " scope link" : ""}`);
    }
    for (const term of s.terminations) {
      host.push(`route add ${term.network} via ${term.via} dev ${p.hostIf} table ${t} proto ${proto} onlink`);
    }
    let hostDone: Promise<unknown>;
    if (s.mode === "vrf") {
      hostDone = ip([], { ...h, batch: host });
    } else {
      if (has6 && p.sid6 !== undefined) {
        const nh = nextHop6(s.vpc, p.attachment);
        host.push(
          `route add ${nh}/128 dev ${p.hostIf} proto ${proto}`,
          `neigh replace ${nh} lladdr ${podMac} dev ${p.hostIf} nud permanent`,
          `route add ${p.sid6}/128 encap seg6local action End.DX6 nh6 ${nh} dev ${p.hostIf} proto ${proto}`,
        );
      }
      hostDone = has4
        ? withNextHop4(p, h, host, (nh) => [
            `neigh replace ${nh} lladdr ${podMac} dev ${p.hostIf} nud permanent`,
            `route add ${p.sid}/128 encap seg6local action End.DX4 nh4 ${nh} dev ${p.hostIf} proto ${proto}`,
          ])
        : ip([], { ...h, batch: host });
    }
    const [podRun, hostRun] = await Promise.allSettled([ip([], { netns: s.netns, batch: pod }), hostDone]);
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

/**
 * Runs the host batch with a free End.DX4 next hop: its route is the batch's first line, so the
 * kernel's EEXIST on it (nothing else applied yet: a batch stops at its first failure) is the
 * allocator's atomic test-and-set; concurrent ADDs never share one.
 */
async function withNextHop4(p: Prepared, h: IpOptions, host: string[], then: (nh: string) => string[]): Promise<void> {
  for (let probe = 0; probe < 64; probe++) {
    const nh = nextHop4Candidate(p.spec.vpc, p.attachment, probe);
    try {
      await ip([], { ...h, batch: [`route add ${nh}/32 dev ${p.hostIf} proto ${proto}`, ...host, ...then(nh)] });
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
  // The two batches touch disjoint state, so they run concurrently.
  const runs = await Promise.allSettled(
    steps.map(([args, batch]) =>
      ip(args, { ...h, batch, force: true }).catch((err: unknown) => {
        if (!(err instanceof IpError)) throw err;
        const real = err.stderr
          .split("\n")
          .filter((l) => l.trim() !== "" && !/No such process|Cannot find device|No such file or directory|does not exist|Command failed/i.test(l));
        if (real.length > 0) throw kernelError(`detaching ${s.hostIf}`, new Error(real.join("; ")));
      }),
    ),
  );
  for (const r of runs) if (r.status === "rejected") throw r.reason;
}
