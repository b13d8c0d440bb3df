// Throwaway network namespaces for kernel tests, created and deleted by name. Names carry the test
// run's pid so parallel runs never collide, and `cleanupNetns` removes exactly the ones made here.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const made = new Set<string>();

/** Runs `ip` with the given arguments; rejects with ip's stderr in the message. */
export async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run("ip", args);
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

export interface Netns {
  readonly name: string;
  /** Path usable as CNI_NETNS. */
  readonly path: string;
  /** `ip -n <name> ...` */
  ip(...args: string[]): Promise<string>;
  /** Runs a command inside the namespace (ip netns exec). */
  exec(cmd: string, ...args: string[]): Promise<string>;
  delete(): Promise<void>;
}

let counter = 0;

export async function createNetns(label: string): Promise<Netns> {
  const name = `kvrft-${process.pid}-${counter++}-${label}`.slice(0, 60);
  await ip("netns", "add", name);
  made.add(name);
  await ip("-n", name, "link", "set", "lo", "up");
  return {
    name,
    path: `/var/run/netns/${name}`,
    ip: (...args) => ip("-n", name, ...args),
    exec: async (cmd, ...args) => {
      try {
        return (await run("ip", ["netns", "exec", name, cmd, ...args])).stdout;
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(`[${name}] ${cmd} ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}\n${e.stdout ?? ""}`, {
          cause: err,
        });
      }
    },
    delete: async () => {
      if (!made.has(name)) return;
      await ip("netns", "del", name);
      made.delete(name);
    },
  };
}

/** Deletes every namespace this process created and has not deleted yet. */
export async function cleanupNetns(): Promise<void> {
  for (const name of [...made]) {
    await ip("netns", "del", name).catch(() => undefined);
    made.delete(name);
  }
}
