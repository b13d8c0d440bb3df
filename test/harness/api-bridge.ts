// Makes the test API server reachable from network namespaces: a unix socket in the root
// namespace relays to the API server, and a forwarder inside each namespace listens on its
// 127.0.0.1:6443 and relays to that socket (see forwarder.ts). kubeconfigs for code running in a
// namespace then point at https://127.0.0.1:6443, which the serving certificate covers.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { spawnDaemon, waitFor, type Daemon } from "./process.js";
import { repoRoot } from "./tools.js";

export const nsApiPort = 6443;

export interface ApiBridge {
  socket: string;
  /** Starts a forwarder in `netns`; stopped with close(). */
  into(netns: string): Promise<Daemon>;
  /** A copy of `kubeconfig` whose server is the namespace-local forwarder. */
  nsKubeconfig(kubeconfig: string, out: string): string;
  close(): Promise<void>;
}

/** A copy of `kubeconfig` whose server is the namespace-local forwarder (127.0.0.1:6443). */
export function nsKubeconfig(kubeconfig: string, out: string): string {
  const cfg = JSON.parse(readFileSync(kubeconfig, "utf8")) as { clusters: { cluster: { server: string } }[] };
  for (const c of cfg.clusters) c.cluster.server = `https://127.0.0.1:${nsApiPort}`;
  writeFileSync(out, JSON.stringify(cfg, null, 2));
  return out;
}

const forwarder = path.join(repoRoot, "test/harness/forwarder.ts");

/** The relay in the root namespace: unix socket `dir/apiserver.sock` → the API server. */
export async function startApiRelay(apiserverUrl: string, dir: string, detached = false): Promise<{ socket: string; daemon: Daemon }> {
  const socket = path.join(dir, "apiserver.sock");
  const daemon = spawnDaemon("api-relay", process.execPath, [forwarder, "--to", new URL(apiserverUrl).host, socket], { dir, detached });
  await waitFor("API relay", async () => existsSync(socket) && readFileSync(daemon.logFile, "utf8").includes("listening"), { timeoutMs: 10_000, daemon });
  return { socket, daemon };
}

/** A forwarder inside `netns` serving its 127.0.0.1:6443 from the relay's socket. */
export async function startNsForwarder(netns: string, socket: string, dir: string, detached = false): Promise<Daemon> {
  const d = spawnDaemon(`forwarder-${netns}`, "ip", ["netns", "exec", netns, process.execPath, forwarder, String(nsApiPort), socket], { dir, detached });
  await waitFor(`forwarder in ${netns}`, async () => readFileSync(d.logFile, "utf8").includes("listening"), { timeoutMs: 10_000, daemon: d });
  return d;
}

export async function startApiBridge(apiserverUrl: string, dir: string): Promise<ApiBridge> {
  const relay = await startApiRelay(apiserverUrl, dir);
  const forwarders: Daemon[] = [];
  return {
    socket: relay.socket,
    async into(netns) {
      const d = await startNsForwarder(netns, relay.socket, dir);
      forwarders.push(d);
      return d;
    },
    nsKubeconfig,
    async close() {
      await Promise.all(forwarders.map((f) => f.stop()));
      await relay.daemon.stop();
    },
  };
}
