// The node's kernel as kvrfd reports it: probed once at start (shared/kernel/capabilities.ts;
// isolated when kvrfd may unshare, otherwise in place, since the DaemonSet gives kvrfd NET_ADMIN
// but not SYS_ADMIN), with what the node's data plane needs — kvrfd's own remote routes and the
// CNI plugin's attachments in the mode the plugin picks on this kernel — and what is missing.
// The BGPInstance status entry, /readyz and the kvrfd_kernel_* metrics all show the same answer.
import {
  cniNeeds,
  defaultMode,
  describeMissing,
  kvrfdNeeds,
  missingCapabilities,
  presentCapabilities,
  type Capability,
  type CapabilityReport,
  type Encapsulation,
  type KernelMode,
} from "../../shared/kernel/capabilities.js";

export interface NodeKernel {
  release: string;
  mode: KernelMode;
  encapsulation: Encapsulation;
  present: Capability[];
  /** What kvrfd's remote routes need (a VRF cannot program its routes without them). */
  kvrfdNeeds: Capability[];
  /** Everything the node's data plane needs that the kernel lacks. */
  missing: Capability[];
  /** Missing features with their kernel options; empty when nothing is missing. */
  message: string;
}

/** Pure: the report seen through the data plane's needs. */
export function nodeKernel(report: CapabilityReport, encapsulation: Encapsulation): NodeKernel {
  const { mode } = defaultMode(report);
  const own = kvrfdNeeds(encapsulation);
  const needs = [...new Set([...own, ...cniNeeds(mode, encapsulation)])];
  const missing = missingCapabilities(report, needs);
  return {
    release: report.kernel,
    mode,
    encapsulation,
    present: presentCapabilities(report),
    kvrfdNeeds: own,
    missing,
    message: missing.length === 0 ? "" : `kernel ${report.kernel} lacks ${describeMissing(missing)}`,
  };
}

/** Why this kernel cannot do `caps` (each missing one with its kernel option), or undefined (also before the probe). */
export function kernelLacks(report: CapabilityReport | undefined, caps: readonly Capability[]): string | undefined {
  if (report === undefined) return undefined;
  const lacking = missingCapabilities(report, caps);
  return lacking.length === 0 ? undefined : `kernel ${report.kernel} lacks ${describeMissing(lacking)}`;
}

