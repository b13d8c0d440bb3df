// What the running kernel can do for kvrf's data plane, probed rather than assumed: kernels differ
// between machines and over time (a distribution kernel has VRF devices and SRv6; a minimal cloud
// kernel may have neither). The probe runs one small shell script through `ip`:
//   isolated  `unshare --net`: a fresh, empty network namespace that the kernel destroys when the
//             script exits, so the probe can change sysctls and can never leave anything behind.
//   in-place  where unshare is not allowed (kvrfd holds NET_ADMIN but not SYS_ADMIN): uniquely
//             named devices and a private table, removed at the end; sysctls are only read.
// Each line of the script tries one feature and prints "ok NAME" or "no NAME <kernel's words>";
// the words are kept for logs, and users are told the feature and its kernel option instead.
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface CapabilityInfo {
  /** What it is, in the words of a message to an operator. */
  feature: string;
  /** Kernel configuration (or version) that provides it. */
  option: string;
}

export const capabilityInfo = {
  veth: { feature: "veth devices", option: "CONFIG_VETH" },
  "policy-routing": { feature: "policy routing (ip rules and several routing tables)", option: "CONFIG_IP_MULTIPLE_TABLES, CONFIG_IPV6_MULTIPLE_TABLES" },
  vrf: { feature: "VRF devices", option: "CONFIG_NET_VRF" },
  seg6: { feature: "SRv6 encapsulation (encap seg6)", option: "CONFIG_IPV6_SEG6_LWTUNNEL" },
  "seg6local-dx4": { feature: "SRv6 End.DX4 decapsulation (seg6local)", option: "CONFIG_IPV6_SEG6_LWTUNNEL" },
  "seg6local-dx6": { feature: "SRv6 End.DX6 decapsulation (seg6local)", option: "CONFIG_IPV6_SEG6_LWTUNNEL" },
  "seg6local-dt46": {
    feature: "SRv6 End.DT46 decapsulation into a VRF (seg6local with net.vrf.strict_mode=1)",
    option: "CONFIG_IPV6_SEG6_LWTUNNEL and CONFIG_NET_VRF, Linux 5.14 or newer",
  },
  vxlan: { feature: "VXLAN devices", option: "CONFIG_VXLAN" },
  "ipv4-via-ipv6": { feature: "IPv4 routes via IPv6 next hops", option: "Linux 5.2 or newer" },
} as const satisfies Record<string, CapabilityInfo>;

export type Capability = keyof typeof capabilityInfo;
export const allCapabilities = Object.keys(capabilityInfo) as Capability[];

export interface CapabilityResult {
  ok: boolean;
  /** The kernel's own words when it refused (for logs), or a note. */
  detail: string;
}

export interface CapabilityReport {
  /** `uname -r` of the probed kernel. */
  kernel: string;
  probedAt: string;
  isolation: "isolated" | "in-place";
  results: Record<Capability, CapabilityResult>;
}

export class CapabilityProbeError extends Error {
  override readonly name = "CapabilityProbeError";
}

/**
 * The probe script. `p` prefixes every device name (in-place probes need names of their own) and
 * `table` is a table nothing else uses. Documentation and ULA addresses only. In-place, the script
 * removes what it made and never writes a sysctl; End.DT46 is then only tried when the node's
 * net.vrf.strict_mode is already 1 (otherwise the result says so).
 */
export function probeScript(opts: { prefix: string; table: number; inPlace: boolean }): string {
  const { prefix: p, table: t } = opts;
  const lines = [
    "set -u",
    // try NAME CMD...: one line of verdict per feature.
    `try() { n=$1; shift; if out=$("$@" 2>&1); then echo "ok $n"; else echo "no $n $(printf '%s' "$out" | tr '\\n' ' ')"; return 1; fi; }`,
    ...(opts.inPlace ? [] : ["ip link set lo up"]),
    `try veth ip link add ${p}a type veth peer name ${p}b`,
    `ip link set ${p}a up 2>/dev/null`,
    `try policy-routing ip -6 rule add iif ${p}a lookup ${t} pref 32000`,
    `ip -6 rule del iif ${p}a lookup ${t} pref 32000 2>/dev/null`,
    `vrf=0; try vrf ip link add ${p}v type vrf table ${t} || vrf=1`,
    `ip link set ${p}v up 2>/dev/null`,
    `try seg6 ip -4 route add 192.0.2.1/32 encap seg6 mode encap segs fd00:ffff::2 dev ${p}a table ${t}`,
    `try seg6local-dx4 ip -6 route add fd00:ffff:1::1/128 encap seg6local action End.DX4 nh4 192.0.2.2 dev ${p}a table ${t}`,
    `try seg6local-dx6 ip -6 route add fd00:ffff:1::2/128 encap seg6local action End.DX6 nh6 fd00:ffff::3 dev ${p}a table ${t}`,
    opts.inPlace
      ? `if [ $vrf != 0 ]; then echo "no seg6local-dt46 no VRF devices"; elif [ "$(cat /proc/sys/net/vrf/strict_mode 2>/dev/null)" = 1 ]; then try seg6local-dt46 ip -6 route add fd00:ffff:1::3/128 encap seg6local action End.DT46 vrftable ${t} dev ${p}v table ${t}; else echo "unverified seg6local-dt46 net.vrf.strict_mode is not 1 yet (the CNI plugin sets it before its first VRF-mode attachment)"; fi`
      : `[ -w /proc/sys/net/vrf/strict_mode ] && echo 1 > /proc/sys/net/vrf/strict_mode; try seg6local-dt46 ip -6 route add fd00:ffff:1::3/128 encap seg6local action End.DT46 vrftable ${t} dev ${p}v table ${t}`,
    `try vxlan ip link add ${p}x type vxlan id 16777000 dstport 4789 local 192.0.2.9 nolearning`,
    `try ipv4-via-ipv6 ip -4 route add 192.0.2.128/25 via inet6 fe80::1 dev ${p}a table ${t}`,
  ];
  if (opts.inPlace) {
    lines.push(
      `ip -4 route flush table ${t} 2>/dev/null`,
      `ip -6 route flush table ${t} 2>/dev/null`,
      `for d in ${p}a ${p}v ${p}x; do ip link del $d 2>/dev/null; done`,
    );
  }
  lines.push("exit 0");
  return lines.join("\n") + "\n";
}

/** Reads the probe's verdict lines; a capability the script did not report counts as missing. */
export function parseProbe(out: string): Record<Capability, CapabilityResult> {
  const results = {} as Record<Capability, CapabilityResult>;
  for (const c of allCapabilities) results[c] = { ok: false, detail: "not probed" };
  for (const line of out.split("\n")) {
    const m = /^(ok|no|unverified) ([a-z0-9-]+)(?: (.*))?$/.exec(line.trim());
    if (m === null) continue;
    const name = m[2] as Capability;
    if (!(name in capabilityInfo)) continue;
    results[name] = { ok: m[1] !== "no", detail: (m[3] ?? "").trim() || (m[1] === "ok" ? "works" : "") };
  }
  return results;
}

function kernelRelease(): string {
  try {
    return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    return "unknown";
  }
}

interface ProbeCommand {
  cmd: string;
  args: string[];
  script: string;
  isolation: CapabilityReport["isolation"];
}

function commands(netns: string | undefined): ProbeCommand[] {
  const tag = `kvp${(process.pid % 46656).toString(36)}`;
  const isolated = { cmd: "unshare", args: ["--net", "--", "sh", "-s"], script: probeScript({ prefix: "kvp", table: 100, inPlace: false }), isolation: "isolated" as const };
  const inPlaceScript = probeScript({ prefix: tag, table: 0x7ffffff0, inPlace: true });
  const inPlace =
    netns === undefined
      ? { cmd: "sh", args: ["-s"], script: inPlaceScript, isolation: "in-place" as const }
      : { cmd: "ip", args: ["netns", "exec", netns, "sh", "-s"], script: inPlaceScript, isolation: "in-place" as const };
  return [isolated, inPlace];
}

function finish(out: string, isolation: CapabilityReport["isolation"]): CapabilityReport {
  return { kernel: kernelRelease(), probedAt: new Date().toISOString(), isolation, results: parseProbe(out) };
}

/** unshare refused (no CAP_SYS_ADMIN, or no unshare binary): fall back to probing in place. */
function cannotIsolate(stderr: string, code: unknown): boolean {
  return code === "ENOENT" || /Operation not permitted|Permission denied|not found/i.test(stderr);
}

/**
 * Probes the kernel. Isolated when allowed, else in place (in `netns` when given: a named
 * namespace, for tests that play a node). Rejects only when neither can run at all.
 */
export async function probeCapabilities(opts: { netns?: string; isolation?: "auto" | "in-place" } = {}): Promise<CapabilityReport> {
  const all = commands(opts.netns);
  const tries = opts.isolation === "in-place" ? all.slice(1) : all;
  let last = "";
  for (const c of tries) {
    const got = await new Promise<{ ok: true; out: string } | { ok: false; stderr: string; code: unknown }>((resolve) => {
      const child = execFile(c.cmd, c.args, { encoding: "utf8", timeout: 15_000 }, (err, stdout, stderr) =>
        resolve(err === null ? { ok: true, out: stdout } : { ok: false, stderr: String(stderr), code: (err as NodeJS.ErrnoException).code }),
      );
      child.stdin?.on("error", () => undefined);
      child.stdin?.end(c.script);
    });
    if (got.ok) return finish(got.out, c.isolation);
    last = `${c.cmd}: ${got.stderr.trim() || String(got.code)}`;
    if (!cannotIsolate(got.stderr, got.code)) break;
  }
  throw new CapabilityProbeError(`cannot probe the kernel's capabilities: ${last}`);
}

/** The same probe, synchronously (test collection needs the answer before it declares tests). */
export function probeCapabilitiesSync(): CapabilityReport {
  let last = "";
  for (const c of commands(undefined)) {
    try {
      const out = execFileSync(c.cmd, c.args, { input: c.script, encoding: "utf8", timeout: 15_000, stdio: ["pipe", "pipe", "pipe"] });
      return finish(out, c.isolation);
    } catch (err) {
      const e = err as { stderr?: string; code?: unknown };
      last = `${c.cmd}: ${String(e.stderr ?? "").trim() || String(e.code)}`;
      if (!cannotIsolate(String(e.stderr ?? ""), e.code)) break;
    }
  }
  throw new CapabilityProbeError(`cannot probe the kernel's capabilities: ${last}`);
}

/** The capabilities in `needs` that `report` lacks. */
export function missingCapabilities(report: Pick<CapabilityReport, "results">, needs: readonly Capability[]): Capability[] {
  return [...new Set(needs)].filter((c) => !report.results[c].ok);
}

export function presentCapabilities(report: Pick<CapabilityReport, "results">): Capability[] {
  return allCapabilities.filter((c) => report.results[c].ok);
}

/**
 * "VRF devices (CONFIG_NET_VRF); SRv6 End.DX4 decapsulation (seg6local) (CONFIG_IPV6_SEG6_LWTUNNEL)":
 * each missing feature with its kernel option, never iproute2's text.
 */
export function describeMissing(missing: readonly Capability[]): string {
  return missing.map((c) => `${capabilityInfo[c].feature} (${capabilityInfo[c].option})`).join("; ");
}

export type KernelMode = "vrf" | "policy-routing";
export type Encapsulation = "srv6" | "vxlan";

/** The kernel mode a node with these capabilities gets unless configured otherwise. */
export function defaultMode(report: Pick<CapabilityReport, "results">): { mode: KernelMode; reason: string } {
  return report.results.vrf.ok
    ? { mode: "vrf", reason: "the kernel has VRF devices" }
    : { mode: "policy-routing", reason: `no VRF devices (${capabilityInfo.vrf.option})` };
}

/**
 * What the CNI plugin's data plane needs on a node, per kernel mode and encapsulation
 * (docs/deploy.md has the table). `families` narrows SRv6 policy routing to the decapsulation the
 * attachment's address families use; without it, both.
 */
export function cniNeeds(mode: KernelMode, encap: Encapsulation, families: { v4: boolean; v6: boolean } = { v4: true, v6: true }): Capability[] {
  const base: Capability[] = ["veth", "policy-routing"];
  if (mode === "vrf") base.push("vrf");
  if (encap === "vxlan") return [...base, "vxlan"];
  if (mode === "vrf") return [...base, "seg6local-dt46"];
  return [...base, ...(families.v4 ? (["seg6local-dx4"] as const) : []), ...(families.v6 ? (["seg6local-dx6"] as const) : [])];
}

/** What kvrfd's remote routes need: SRv6 encapsulation, or VXLAN (IPv4 over an IPv6 underlay too). */
export function kvrfdNeeds(encap: Encapsulation, underlayFamily: 4 | 6 = 6): Capability[] {
  if (encap === "srv6") return ["policy-routing", "seg6"];
  return ["policy-routing", "vxlan", ...(underlayFamily === 6 ? (["ipv4-via-ipv6"] as const) : [])];
}
