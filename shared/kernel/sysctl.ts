// Sysctls the data plane owns, set where they apply: in our own network namespace by writing
// /proc/sys directly (no process), in another one (a namespace playing the node in tests) through
// `ip netns exec` or nsenter, the same way shared/kernel/ip.ts reaches namespaces. A value that is
// already right is not written again.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

export class SysctlError extends Error {
  override readonly name = "SysctlError";
}

function file(key: string): string {
  if (!/^[a-z0-9_.-]+$/i.test(key)) throw new SysctlError(`invalid sysctl name ${key}`);
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

function inNamespace(netns: string, script: string): Promise<string> {
  const [cmd, argv] = netns.startsWith("/") ? ["nsenter", [`--net=${netns}`, "--", "sh", "-c", script]] : ["ip", ["netns", "exec", netns, "sh", "-c", script]];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: "utf8", timeout: 10_000 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new SysctlError(stderr.trim() || err.message));
    });
  });
}

/** Reads a sysctl; undefined when the kernel has no such key (e.g. its module is not loaded). */
export async function readSysctl(key: string, netns?: string): Promise<string | undefined> {
  const f = file(key);
  if (netns === undefined) {
    try {
      return readFileSync(f, "utf8").trim();
    } catch {
      return undefined;
    }
  }
  const out = await inNamespace(netns, `cat ${f} 2>/dev/null || echo '<missing>'`);
  return out.trim() === "<missing>" ? undefined : out.trim();
}

/** Sets `key` to `value` unless it already is; true when it wrote. Throws SysctlError naming the key. */
export async function ensureSysctl(key: string, value: string, netns?: string): Promise<boolean> {
  const f = file(key);
  const now = await readSysctl(key, netns);
  if (now === undefined) throw new SysctlError(`${key} does not exist on this kernel`);
  if (now === value) return false;
  try {
    if (netns === undefined) writeFileSync(f, value);
    else await inNamespace(netns, `echo ${value} > ${f}`);
  } catch (err) {
    throw new SysctlError(`setting ${key}=${value}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return true;
}
