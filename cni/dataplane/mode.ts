// Kernel mode: "vrf" where the kernel has VRF devices (CONFIG_NET_VRF), else "policy-routing"
// (a table per VPC selected by ip rules). Detected once per boot by creating and deleting a probe
// VRF device, and remembered in the state directory (a tmpfs under /run, cleared on reboot).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ip, IpError } from "../../shared/kernel/ip.js";

export type DataplaneMode = "vrf" | "policy-routing";

export interface ModeInfo {
  mode: DataplaneMode;
  /** Why: what the probe saw. */
  reason: string;
  detectedAt: string;
}

export async function probeMode(hostNs?: string): Promise<ModeInfo> {
  const h = hostNs !== undefined ? { netns: hostNs } : {};
  const probe = `kvrfprobe${process.pid % 100000}`;
  const detectedAt = new Date().toISOString();
  try {
    await ip(["link", "add", probe, "type", "vrf", "table", "252"], h);
    await ip(["link", "del", probe], h).catch(() => undefined);
    return { mode: "vrf", reason: "the kernel created a VRF device", detectedAt };
  } catch (err) {
    if (err instanceof IpError && /Unknown device type|not supported|Operation not supported/i.test(err.stderr)) {
      return { mode: "policy-routing", reason: `no VRF devices: ${err.stderr.trim()}`, detectedAt };
    }
    throw err;
  }
}

/** The node's mode: the remembered one, or a fresh probe that is then remembered. */
export async function dataplaneMode(stateDir: string, forced?: DataplaneMode): Promise<ModeInfo & { fresh: boolean }> {
  if (forced !== undefined) return { mode: forced, reason: "forced by configuration", detectedAt: new Date().toISOString(), fresh: false };
  const file = path.join(stateDir, "dataplane-mode.json");
  try {
    const saved = JSON.parse(readFileSync(file, "utf8")) as ModeInfo;
    if (saved.mode === "vrf" || saved.mode === "policy-routing") return { ...saved, fresh: false };
  } catch {
    // first run since boot, or unreadable: probe
  }
  const info = await probeMode();
  mkdirSync(stateDir, { recursive: true });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(info));
  renameSync(tmp, file);
  return { ...info, fresh: true };
}
