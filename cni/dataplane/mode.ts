// The node's kernel as the plugin sees it: what it can do (shared/kernel/capabilities.ts), probed
// once per boot and remembered in the state directory (a tmpfs under /run, cleared on reboot), and
// the kernel mode that follows: "vrf" where the kernel has VRF devices (CONFIG_NET_VRF), else
// "policy-routing" (a table per VPC selected by ip rules). Every verb that touches the data plane
// checks the capabilities its mode and encapsulation need first, so a kernel that lacks one gets a
// message naming the feature and its kernel option before anything is changed.
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../../shared/atomic-write.js";
import path from "node:path";
import {
  cniNeeds,
  defaultMode,
  describeMissing,
  missingCapabilities,
  probeCapabilities,
  type Capability,
  type CapabilityReport,
  type Encapsulation,
  type KernelMode,
} from "../../shared/kernel/capabilities.js";

export type DataplaneMode = KernelMode;

export interface KernelInfo {
  mode: DataplaneMode;
  /** Why this mode: what the probe saw, or the configuration. */
  reason: string;
  capabilities: CapabilityReport;
}

const stateFile = "kernel.json";

function readSaved(file: string): CapabilityReport | undefined {
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as Partial<CapabilityReport>;
    return saved.results !== undefined && typeof saved.kernel === "string" ? (saved as CapabilityReport) : undefined;
  } catch {
    return undefined; // first run since boot, or unreadable: probe
  }
}

/**
 * The node's capabilities: the remembered probe, or a fresh one that is then remembered (atomic
 * rename, so concurrent first runs never read half a file). `fresh` says which.
 */
export async function kernelCapabilities(stateDir: string): Promise<CapabilityReport & { fresh: boolean }> {
  const file = path.join(stateDir, stateFile);
  const saved = readSaved(file);
  if (saved !== undefined) return { ...saved, fresh: false };
  const report = await probeCapabilities();
  writeFileAtomic(file, JSON.stringify(report));
  return { ...report, fresh: true };
}

/** The node's kernel: capabilities and the mode (forced by configuration, or following them). */
export async function kernelInfo(stateDir: string, forced?: DataplaneMode): Promise<KernelInfo & { fresh: boolean }> {
  const { fresh, ...capabilities } = await kernelCapabilities(stateDir);
  const chosen = forced !== undefined ? { mode: forced, reason: "forced by configuration" } : defaultMode(capabilities);
  return { ...chosen, capabilities, fresh };
}

/** What the data plane of `mode` and `encap` needs and the kernel lacks (empty when ready). */
export function missingFor(info: KernelInfo, encap: Encapsulation): Capability[] {
  return missingCapabilities(info.capabilities, cniNeeds(info.mode, encap));
}

/** "<mode> mode with <encap> needs …, which this kernel (<release>) lacks" — or undefined. */
export function notReadyReason(info: KernelInfo, encap: Encapsulation): string | undefined {
  const missing = missingFor(info, encap);
  if (missing.length === 0) return undefined;
  return `the ${info.mode} data plane with ${encap === "srv6" ? "SRv6" : "VXLAN"} needs ${describeMissing(missing)}, which this kernel (${info.capabilities.kernel}) lacks`;
}
