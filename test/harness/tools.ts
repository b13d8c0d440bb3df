// Locates the pinned upstream binaries that `scripts/test-env ensure` provisions.
// The contract is `.testenv/env.json`; `KVRF_TOOL_<NAME>` (upper case, `-` → `_`) overrides one
// tool's path, e.g. KVRF_TOOL_GOBGPD4=/tmp/gobgpd.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const testEnvDir = process.env["KVRF_TESTENV_DIR"] ?? path.join(repoRoot, ".testenv");

export type ToolName =
  | "kube-apiserver"
  | "kubectl"
  | "etcd"
  | "gobgpd4"
  | "gobgp4"
  | "gobgpd3"
  | "gobgp3"
  | "cnitool"
  // The lab's kubelet runtime and the cluster tier (scripts/netns-lab/kubelet.ts).
  | "kubelet"
  | "kube-scheduler"
  | "kube-controller-manager"
  | "containerd"
  | "ctr"
  | "runc";

export interface ToolInfo {
  path: string;
  version: string;
}

/** The vm tier's guest (`scripts/test-env ensure vm`): a stock distribution kernel and its initramfs. */
export interface VmImage {
  kernel: string;
  initrd: string;
  /** `uname -r` inside the guest, e.g. 6.1.0-57-amd64. */
  kernelVersion: string;
  /** The Debian package it came from, and its version. */
  package: string;
  packageVersion: string;
  qemu: string;
}

interface EnvFile {
  tools: Partial<Record<ToolName, ToolInfo>>;
  /** Directory holding the reference CNI plugins (host-local, static, bridge, loopback). */
  cniBinDir?: string;
  vm?: VmImage;
}

let cached: EnvFile | undefined;

function envFile(): EnvFile {
  if (cached === undefined) {
    const file = path.join(testEnvDir, "env.json");
    try {
      cached = JSON.parse(readFileSync(file, "utf8")) as EnvFile;
    } catch (err) {
      throw new Error(`cannot read ${file} (${String(err)}); run \`scripts/test-env ensure\` first`, {
        cause: err,
      });
    }
  }
  return cached;
}

/** Absolute path of a provisioned tool, or a thrown error saying how to provision it. */
export function tool(name: ToolName): string {
  const override = process.env[`KVRF_TOOL_${name.toUpperCase().replaceAll("-", "_")}`];
  if (override !== undefined && override !== "") return override;
  const info = envFile().tools[name];
  if (info === undefined) {
    throw new Error(`${name} is not provisioned in ${testEnvDir}/env.json; run \`scripts/test-env ensure\``);
  }
  return info.path;
}

export function cniBinDir(): string {
  const override = process.env["KVRF_CNI_BIN_DIR"];
  if (override !== undefined && override !== "") return override;
  const dir = envFile().cniBinDir;
  if (dir === undefined) throw new Error(`cniBinDir missing in ${testEnvDir}/env.json; run \`scripts/test-env ensure\``);
  return dir;
}

/** The vm tier's kernel, initramfs and emulator, or a thrown error saying how to provision them. */
export function vmImage(): VmImage {
  const vm = envFile().vm;
  if (vm === undefined) throw new Error(`the vm image is not provisioned in ${testEnvDir}/env.json; run \`scripts/test-env ensure vm\``);
  return vm;
}
