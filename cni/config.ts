// The kvrf network configuration: parse, validate, and resolve into a typed NetConf.
// Every message names the field and the value (docs/cni-config.md documents each field).
import path from "node:path";
import ipaddr from "ipaddr.js";
import { CniError, ErrorCode } from "./error.js";
import { IdError, hex, parseAttachment, parseVpc, vpcNumber } from "../shared/ids.js";
import { encapsulations, type Encapsulation } from "../shared/api-types.js";
import { SidError, parseLocator, type Locator } from "../shared/srv6-sid.js";

/**
 * Bytes each encapsulation adds: SRv6 an outer IPv6 header (40) + SRH with one segment (8 + 16);
 * VXLAN outer IP (20 or 40) + UDP (8) + VXLAN (8) + inner Ethernet (14), the IPv6 underlay's 70 so
 * one default serves both underlay families.
 */
export const encapOverhead: Record<Encapsulation, number> = { srv6: 64, vxlan: 70 };
export const defaultMtu = 1500 - encapOverhead.srv6;

/** The pod MTU: the config's, else 1500 minus the encapsulation's overhead. */
export function mtuFor(conf: Pick<NetConf, "mtu">, encap: Encapsulation): number {
  return conf.mtu ?? 1500 - encapOverhead[encap];
}
/** Kernel tables a VPC may not use: unspec, default, main, local. */
const reservedTables = new Set([0, 253, 254, 255]);

function isCidr(s: string): boolean {
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A code-7 error naming the field; with a value (even undefined), also what was given. */
function invalid(field: string, message: string, ...given: [unknown?]): CniError {
  return new CniError(ErrorCode.InvalidConfig, `${field}: ${message}${given.length > 0 ? ` (got ${describe(given[0])})` : ""}`);
}

// Field readers: each names the field and the offending value. Hand-written rather than a schema
// library: the plugin starts once per pod operation, and zod alone doubled its start-up time.
function str(raw: Record<string, unknown>, field: string, need: string, prefix = ""): string {
  const v = raw[field];
  if (typeof v !== "string" || v === "") throw invalid(`${prefix}${field}`, `required: ${need}`, v);
  return v;
}

function optStr(raw: Record<string, unknown>, field: string): string | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw invalid(field, "must be a non-empty string", v);
  return v;
}

function optAbsPath(raw: Record<string, unknown>, field: string): string | undefined {
  const v = optStr(raw, field);
  if (v !== undefined && !path.isAbsolute(v)) throw invalid(field, "must be an absolute path", v);
  return v;
}

function optInt(raw: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw invalid(field, `must be an integer from ${min} to ${max}`, v);
  return v;
}

function optEnum<T extends string>(raw: Record<string, unknown>, field: string, values: readonly T[]): T | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) throw invalid(field, `must be one of ${values.join(", ")}`, v);
  return v as T;
}

export interface Termination {
  network: string;
  via: string;
}

/** A VPC as the plugin uses it: its 48-bit ID, the ID's canonical hex, and its kernel table. */
export interface Vpc {
  vpc: bigint;
  vpcHex: string;
  /** Kernel routing table of the VPC on every node: uint32(vpc), unique per the RT claim. */
  table: number;
}

/**
 * The namespace annotation that selects the VPC of a namespace's pods when the network config
 * sets `vpcFromNamespace` (the same key as the VPC label of kvrf's objects).
 */
export const namespaceVpcAnnotation = "kvrf.dev/vpc";

/**
 * Parses a VPC ID from `field` (the config's "vpc", or a namespace's annotation): 48-bit hex whose
 * low 32 bits are not a reserved kernel table. Throws code 7 naming `field` and the value.
 */
export function parseVpcId(text: string, field: string): Vpc {
  let vpc: bigint;
  try {
    vpc = parseVpc(text, field);
  } catch (err) {
    if (err instanceof IdError) throw new CniError(ErrorCode.InvalidConfig, err.message);
    throw err;
  }
  const table = vpcNumber(vpc);
  if (reservedTables.has(table)) {
    throw invalid(field, `"${text}": its low 32 bits (${table}) are a reserved kernel routing table (0, 253, 254, 255), which kvrf uses as the VPC's table`);
  }
  return { vpc, vpcHex: hex(vpc), table };
}

/** The VPC of an ID known to be valid (an interface name, a record, an object of the plugin's own). */
export function vpcOf(vpc: bigint): Vpc {
  return { vpc, vpcHex: hex(vpc), table: vpcNumber(vpc) };
}

/** The network config with the VPC of this invocation resolved (the config's, or its namespace's). */
export type VpcConf = NetConf & Vpc;

/** `conf` acting on `vpc`. */
export function withVpc(conf: NetConf, vpc: Vpc): VpcConf {
  return { ...conf, vpc: vpc.vpc, vpcHex: vpc.vpcHex, table: vpc.table };
}

export interface NetConf {
  name: string;
  cniVersion: string;
  /**
   * The config's `vpc`: the VPC of every attachment, or with `vpcFromNamespace` the VPC of pods
   * whose namespace has no annotation (undefined: there is no default, such pods are refused).
   */
  defaultVpc: Vpc | undefined;
  /** ADD takes the VPC from the pod namespace's kvrf.dev/vpc annotation (namespaceVpcAnnotation). */
  vpcFromNamespace: boolean;
  /** Undefined: pick a free one on ADD; find it on the node or in the API otherwise. */
  attachment: number | undefined;
  ipam: Record<string, unknown> & { type: string };
  /** Undefined: 1500 minus the encapsulation's overhead (mtuFor). */
  mtu: number | undefined;
  terminations: Termination[];
  /** SRv6: the node's locator (required when the encapsulation is srv6). */
  locator: Locator | undefined;
  /** Undefined: take it from the BGPInstance that selects this node. */
  encapsulation: Encapsulation | undefined;
  /** VXLAN: the node's VTEP, an address of the node (required when the encapsulation is vxlan). */
  vtep: string | undefined;
  kubeconfig: string;
  /** Undefined: take it from the BGPInstance that selects this node. */
  asn: number | undefined;
  /**
   * The cluster-wide ASN of the VPCs' route targets. Only with `asn` (a self-contained config);
   * undefined there means `asn`. Without `asn` both come from the BGPInstance.
   */
  routeTargetASN: number | undefined;
  nodeName: string;
  logFile: string | undefined;
  logLevel: "debug" | "info" | "warn" | "error";
  /** "auto" probes the kernel once per boot. */
  dataplaneMode: "auto" | "vrf" | "policy-routing";
  /** Node-local state (the detected mode); a tmpfs so it is forgotten at reboot. */
  stateDir: string;
  /** prevResult when chained (already a parsed object). */
  prevResult: Record<string, unknown> | undefined;
}

/**
 * Validates the decoded config and resolves the node name (config "nodeName", then CNI_ARGS
 * NODE_NAME, then the NODE_NAME environment variable). Throws CniError code 7 naming the field.
 */
export function parseNetConf(raw: Record<string, unknown>, cniArgs: ReadonlyMap<string, string>, env: Readonly<Record<string, string | undefined>>): NetConf {
  const fromNamespace = raw["vpcFromNamespace"];
  if (fromNamespace !== undefined && typeof fromNamespace !== "boolean") throw invalid("vpcFromNamespace", "must be true or false", fromNamespace);
  const vpcFromNamespace = fromNamespace === true;
  // With vpcFromNamespace the config's VPC is only the default, and may be left out.
  const vpcText = vpcFromNamespace && raw["vpc"] === undefined ? undefined : str(raw, "vpc", "the VPC ID, 48-bit hex");
  // The attachment ID: from the config, Multus-style "args": {"cni": {...}}, or CNI_ARGS;
  // none means "pick a free one on this node".
  const argsCni = (raw["args"] as { cni?: Record<string, unknown> } | undefined)?.cni ?? {};
  const attachmentText =
    optStr(raw, "vpcAttachment") ?? optStr(argsCni, "vpcAttachment") ?? (cniArgs.get("KVRF_VPC_ATTACHMENT") || undefined);
  const ipamRaw = raw["ipam"];
  if (typeof ipamRaw !== "object" || ipamRaw === null || Array.isArray(ipamRaw)) {
    throw invalid("ipam", "required: an object naming the IPAM plugin to delegate to in \"type\"", ipamRaw);
  }
  const ipam = ipamRaw as Record<string, unknown>;
  const ipamType = str(ipam, "type", "the IPAM plugin to delegate to (e.g. host-local)", "ipam.");
  const locatorText = optStr(raw, "srv6Locator");
  const encapsulation = optEnum(raw, "encapsulation", encapsulations);
  const vtepText = optStr(raw, "vtep");
  if (vtepText !== undefined && !ipaddr.isValid(vtepText)) throw invalid("vtep", "not an IP address", vtepText);
  const vtep = vtepText === undefined ? undefined : ipaddr.process(vtepText).toString();
  if (vtep !== undefined && ["unspecified", "multicast", "loopback", "broadcast"].includes(ipaddr.process(vtep).range())) {
    throw invalid("vtep", "must be a unicast address of the node's underlay", vtepText);
  }
  const kubeconfig = str(raw, "kubeconfig", "path of the plugin's kubeconfig");
  if (!path.isAbsolute(kubeconfig)) throw invalid("kubeconfig", "must be an absolute path", kubeconfig);
  const mtu = optInt(raw, "mtu", 1280, 65535);
  const asn = optInt(raw, "asn", 1, 4294967295);
  const routeTargetASN = optInt(raw, "routeTargetASN", 1, 4294967295);
  if (routeTargetASN !== undefined && asn === undefined) {
    throw invalid("routeTargetASN", "is set only together with asn (without asn, both come from the BGPInstance selecting the node)", routeTargetASN);
  }
  const configNode = optStr(raw, "nodeName");
  const logFile = optAbsPath(raw, "logFile");
  const logLevel = optEnum(raw, "logLevel", ["debug", "info", "warn", "error"] as const);
  const dataplaneMode = optEnum(raw, "dataplaneMode", ["auto", "vrf", "policy-routing"] as const);
  const stateDir = optAbsPath(raw, "stateDir");
  const termRaw = raw["terminations"] ?? [];
  if (!Array.isArray(termRaw)) throw invalid("terminations", "must be a list of {network, via}", termRaw);
  const defaultVpc = vpcText === undefined ? undefined : parseVpcId(vpcText, "vpc");
  let attachment: number | undefined;
  let locator: Locator | undefined;
  try {
    attachment = attachmentText === undefined ? undefined : parseAttachment(attachmentText, "vpcAttachment");
    locator = locatorText === undefined ? undefined : parseLocator(locatorText, "srv6Locator");
  } catch (err) {
    if (err instanceof IdError || err instanceof SidError) throw new CniError(ErrorCode.InvalidConfig, err.message);
    throw err;
  }
  const terminations = (termRaw as unknown[]).map((t, i) => {
    if (typeof t !== "object" || t === null) throw invalid(`terminations.${i}`, "must be an object {network, via}", t);
    const { network: netText, via: viaText } = t as { network?: unknown; via?: unknown };
    if (typeof netText !== "string" || !isCidr(netText)) throw invalid(`terminations.${i}.network`, "not a CIDR", netText);
    if (typeof viaText !== "string" || !ipaddr.isValid(viaText)) throw invalid(`terminations.${i}.via`, "not an IP address", viaText);
    const [net, len] = ipaddr.parseCIDR(netText);
    const via = ipaddr.parse(viaText);
    if (net.kind() !== via.kind()) {
      throw invalid(`terminations.${i}`, `network ${netText} and via ${viaText} are of different address families`);
    }
    const network = net.kind() === "ipv4" ? ipaddr.IPv4.networkAddressFromCIDR(netText) : ipaddr.IPv6.networkAddressFromCIDR(netText);
    const canonical = `${network.toString()}/${len}`;
    if (network.toString() !== net.toString()) {
      throw invalid(`terminations.${i}.network`, `"${netText}" has host bits set (did you mean ${canonical}?)`);
    }
    return { network: canonical, via: via.toString() };
  });
  const nodeName = configNode ?? cniArgs.get("NODE_NAME") ?? env["NODE_NAME"];
  if (nodeName === undefined || nodeName === "") {
    throw invalid("nodeName", "the node name is unknown: set \"nodeName\" in the config, NODE_NAME in CNI_ARGS or in the environment");
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(nodeName) || nodeName.length > 253) {
    throw invalid("nodeName", `"${nodeName}" is not a valid Kubernetes node name (DNS subdomain)`);
  }
  const prev = raw["prevResult"];
  return {
    name: String(raw["name"]),
    cniVersion: String(raw["cniVersion"]),
    defaultVpc,
    vpcFromNamespace,
    attachment,
    ipam: { ...ipam, type: ipamType },
    mtu,
    terminations,
    locator,
    encapsulation,
    vtep,
    kubeconfig,
    asn,
    routeTargetASN,
    nodeName,
    logFile,
    logLevel: logLevel ?? "info",
    dataplaneMode: dataplaneMode ?? "auto",
    stateDir: stateDir ?? "/run/kvrf",
    prevResult: typeof prev === "object" && prev !== null ? (prev as Record<string, unknown>) : undefined,
  };
}
