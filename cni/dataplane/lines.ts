// What the plugin tells the kernel, as data: pure functions from an attachment's or a VPC's
// description to `ip -batch` lines, per kernel mode (vrf, policy-routing), encapsulation (srv6,
// vxlan) and address family. Golden files pin each combination (lines.test.ts, testdata/); the
// code that runs the lines (attachment.ts, vpc.ts) decides only when and in which batch.
//
// The layout (docs/dataplane.md):
//   per VPC        table T = uint32(vpc) with unreachable IPv4/IPv6 defaults; VRF mode: a VRF device
//                  bound to T; VXLAN: a VXLAN device (the VPC's VNI, local = the node's VTEP, MAC =
//                  the node's router MAC) enslaved to the VRF or selected into T by `iif` rules.
//   per attachment a veth pair; VRF mode: the host end enslaved to the VRF, else `iif` rules into T;
//                  routes and permanent neighbours to the pod; with SRv6, the attachment's SID
//                  decapsulating into it (End.DT46 into the VRF, or End.DX4/End.DX6 to the pod).
import { routeProtocol } from "../../shared/api-types.js";
import type { Encapsulation } from "../../shared/api-types.js";
import { vrfDeviceName, vxlanDeviceName } from "../../shared/ifnames.js";
import type { DataplaneMode } from "./mode.js";

export const podGateway4 = "169.254.1.1";
export const podGateway6 = "fe80::1";
/** Rule preference of the `iif` rules: before main (32766), after local (0). */
export const rulePreference = 1000;
/** Metric of the VPC table's unreachable defaults: last resort, so nothing leaks to main. */
export const unreachableMetric = "4278198272";
/** VXLAN's IANA UDP port (RFC 7348). */
export const vxlanPort = 4789;

const proto = String(routeProtocol.cni);

/** A batch: global `ip` options (family) and the lines. */
export interface Batch {
  args: string[];
  lines: string[];
}

export interface VxlanVpc {
  vni: number;
  /** Local VTEP address (IPv4 or IPv6). */
  vtep: string;
  routerMac: string;
}

export interface VpcShape {
  mode: DataplaneMode;
  encap: Encapsulation;
  vpc: bigint;
  table: number;
  mtu: number;
  /** VXLAN only. */
  vxlan?: VxlanVpc | undefined;
}

/** The VPC table's unreachable defaults (idempotent `replace`). */
export function tableDefaultLines(table: number, family: 4 | 6 | "both" = "both"): string[] {
  const t = String(table);
  return [
    ...(family !== 6 ? [`route replace unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${t} proto ${proto}`] : []),
    ...(family !== 4 ? [`route replace unreachable ::/0 metric ${unreachableMetric} table ${t} proto ${proto}`] : []),
  ];
}

/**
 * The VPC's VXLAN device, in the order that keeps it harmless: created down, bound to the VPC's
 * table (VRF membership or an `iif` rule per family), and only then up — a VXLAN device that
 * decapsulates before it is bound would hand tenant packets to the main table. Run with -force;
 * "File exists" is success (a later ADD of the VPC, or a repair after an interrupted one).
 */
export function vxlanDeviceBatches(v: VpcShape): Batch[] {
  if (v.vxlan === undefined) return [];
  const dev = vxlanDeviceName(v.vpc);
  const t = String(v.table);
  const { vni, vtep, routerMac } = v.vxlan;
  const add = `link add ${dev} address ${routerMac} mtu ${v.mtu} type vxlan id ${vni} local ${vtep} dstport ${vxlanPort} nolearning`;
  const rule = `rule add iif ${dev} lookup ${t} pref ${rulePreference} protocol ${proto}`;
  if (v.mode === "vrf") return [{ args: [], lines: [add, `link set ${dev} master ${vrfDeviceName(v.vpc)}`, `link set ${dev} up`] }];
  return [
    { args: ["-4"], lines: [add, rule] },
    { args: ["-6"], lines: [rule, `link set ${dev} up`] },
  ];
}

/** The VXLAN device's rules, once the device is gone (they name it, so they would outlive it). */
export function vxlanReleaseBatches(v: Pick<VpcShape, "mode" | "vpc" | "table">): Batch[] {
  if (v.mode !== "policy-routing") return [];
  const rule = `rule del iif ${vxlanDeviceName(v.vpc)} lookup ${v.table}`;
  return [
    { args: ["-4"], lines: [rule] },
    { args: ["-6"], lines: [rule] },
  ];
}

/** The per-VPC table state when the VPC's last attachment has gone (best effort, -force). */
export function releaseTableLines(table: number): string[] {
  return [`route del unreachable 0.0.0.0/0 metric ${unreachableMetric} table ${table}`, `route del unreachable ::/0 metric ${unreachableMetric} table ${table}`];
}

export interface AttachmentShape {
  mode: DataplaneMode;
  encap: Encapsulation;
  vpc: bigint;
  table: number;
  hostIf: string;
  hostMac: string;
  podIf: string;
  podMac: string;
  /** CNI_NETNS. */
  netns: string;
  mtu: number;
  alias: string;
  /** SRv6: the attachment's SID (End.DT46 in VRF mode, End.DX4 in policy routing). */
  sid?: string | undefined;
  /** SRv6 policy routing: the End.DX6 SID. */
  sid6?: string | undefined;
}

/**
 * `prepare`: one `ip -6 -batch` that needs no IPAM answer, run under the VPC lock. The veth line's
 * index (1-based, `vethLine`) tells a "File exists" there (the attachment ID is taken: the host
 * end's name is derived from it) from one elsewhere.
 */
export function prepareBatch(a: AttachmentShape): Batch & { vethLine: number } {
  const t = String(a.table);
  const vrf = vrfDeviceName(a.vpc);
  const before = [...(a.mode === "vrf" ? [`link set ${vrf} up`] : []), ...tableDefaultLines(a.table, 6)];
  const lines = [
    ...before,
    `link add ${a.hostIf} address ${a.hostMac} mtu ${a.mtu} up type veth peer name ${a.podIf} address ${a.podMac} mtu ${a.mtu} netns ${a.netns}`,
    `link set ${a.hostIf} alias ${a.alias}`,
    ...(a.mode === "vrf"
      ? [
          `link set ${a.hostIf} master ${vrf}`,
          ...(a.encap === "srv6" && a.sid !== undefined ? [`route add ${a.sid}/128 encap seg6local action End.DT46 vrftable ${t} dev ${vrf} proto ${proto}`] : []),
        ]
      : [`rule add iif ${a.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`]),
  ];
  return { args: ["-6"], lines, vethLine: before.length + 1 };
}

export interface Addressing {
  /** The pod's addresses as configured in the pod: /32 and /128. */
  podAddresses: string[];
  /** Extra routes the IPAM plugin asked for (defaults are always added). */
  routes: { dst: string }[];
  terminations: { network: string; via: string }[];
}

const isV6 = (addr: string): boolean => addr.includes(":");
const hostOf = (cidr: string): string => cidr.split("/")[0] ?? cidr;

/** `configure`, pod side: addresses, link-local gateways with permanent neighbours, routes. */
export function podBatch(a: Pick<AttachmentShape, "podIf" | "hostMac" | "netns">, x: Addressing): Batch {
  const has4 = x.podAddresses.some((p) => !isV6(p));
  const has6 = x.podAddresses.some(isV6);
  const lines = ["link set lo up"];
  for (const p of x.podAddresses) lines.push(`addr add ${p} dev ${a.podIf}${isV6(p) ? " nodad" : ""}`);
  lines.push(`link set ${a.podIf} up`);
  if (has4) {
    lines.push(`neigh replace ${podGateway4} lladdr ${a.hostMac} dev ${a.podIf} nud permanent`);
    lines.push(`route add ${podGateway4}/32 dev ${a.podIf} scope link`);
    lines.push(`route add default via ${podGateway4} dev ${a.podIf}`);
  }
  if (has6) {
    lines.push(`neigh replace ${podGateway6} lladdr ${a.hostMac} dev ${a.podIf} nud permanent`);
    lines.push(`route add ::/0 via ${podGateway6} dev ${a.podIf}`);
  }
  for (const r of x.routes) {
    if (r.dst === "0.0.0.0/0" || r.dst === "::/0") continue;
    const v6 = isV6(r.dst);
    if ((v6 && !has6) || (!v6 && !has4)) continue;
    lines.push(`route replace ${r.dst} via ${v6 ? podGateway6 : podGateway4} dev ${a.podIf}`);
  }
  return { args: [], lines };
}

/**
 * `configure`, host side (every line's family follows from its addresses): the table's IPv4
 * default, the IPv4 rule (policy routing), routes and neighbours to the pod and its terminations.
 * SRv6 policy routing adds the End.DX6 decapsulation here (its next hop is fixed per attachment);
 * End.DX4's next hop is allocated by the runner (dx4Lines).
 */
export function hostBatch(a: AttachmentShape, x: Addressing, dx6NextHop?: string): Batch {
  const t = String(a.table);
  const lines = [...tableDefaultLines(a.table, 4)];
  if (a.mode === "policy-routing") lines.push(`rule add iif ${a.hostIf} lookup ${t} pref ${rulePreference} protocol ${proto}`);
  for (const p of x.podAddresses) {
    const addr = hostOf(p);
    lines.push(`neigh replace ${addr} lladdr ${a.podMac} dev ${a.hostIf} nud permanent`);
    lines.push(`route add ${p} dev ${a.hostIf} table ${t} proto ${proto}${isV6(addr) ? "" : " scope link"}`);
  }
  for (const term of x.terminations) lines.push(`route add ${term.network} via ${term.via} dev ${a.hostIf} table ${t} proto ${proto} onlink`);
  if (a.mode === "policy-routing" && a.encap === "srv6" && x.podAddresses.some(isV6) && a.sid6 !== undefined && dx6NextHop !== undefined) {
    lines.push(
      `route add ${dx6NextHop}/128 dev ${a.hostIf} proto ${proto}`,
      `neigh replace ${dx6NextHop} lladdr ${a.podMac} dev ${a.hostIf} nud permanent`,
      `route add ${a.sid6}/128 encap seg6local action End.DX6 nh6 ${dx6NextHop} dev ${a.hostIf} proto ${proto}`,
    );
  }
  return { args: [], lines };
}

/** Whether the host batch needs an End.DX4 next hop (SRv6 policy routing with an IPv4 address). */
export function needsDx4(a: Pick<AttachmentShape, "mode" | "encap" | "sid">, x: Pick<Addressing, "podAddresses">): boolean {
  return a.mode === "policy-routing" && a.encap === "srv6" && a.sid !== undefined && x.podAddresses.some((p) => !isV6(p));
}

/**
 * End.DX4 to the pod through a node-unique next hop: its route is the first line of the host batch,
 * so "File exists" on line 1 (nothing else applied: a batch stops at its first failure) is the
 * allocator's atomic test-and-set.
 */
export function withDx4(host: Batch, a: Pick<AttachmentShape, "hostIf" | "podMac" | "sid">, nh: string): Batch {
  return {
    args: host.args,
    lines: [
      `route add ${nh}/32 dev ${a.hostIf} proto ${proto}`,
      ...host.lines,
      `neigh replace ${nh} lladdr ${a.podMac} dev ${a.hostIf} nud permanent`,
      `route add ${a.sid ?? ""}/128 encap seg6local action End.DX4 nh4 ${nh} dev ${a.hostIf} proto ${proto}`,
    ],
  };
}

/**
 * Removing an attachment (best effort, -force, concurrently): only our own SID routes (proto 240:
 * a rollback must not remove a route someone else holds), the `iif` rules (they name the
 * interface, so they outlive it; twice, in case an interrupted earlier run added one more), and the
 * host end — which takes the pod end and every route and neighbour through it along.
 */
export function detachBatches(a: { table: number; hostIf: string; sid?: string | undefined; sid6?: string | undefined }): Batch[] {
  const sids = [a.sid, a.sid6].filter((s): s is string => s !== undefined).map((sid) => `route del ${sid}/128 proto ${proto}`);
  const rules = [`rule del iif ${a.hostIf} lookup ${a.table}`, `rule del iif ${a.hostIf} lookup ${a.table}`];
  return [
    { args: ["-6"], lines: [...sids, ...rules] },
    { args: ["-4"], lines: [...rules, `link del ${a.hostIf}`] },
  ];
}
