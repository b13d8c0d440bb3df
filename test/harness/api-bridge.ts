// Makes the test API server reachable from network namespaces: a unix socket in the root
// namespace relays to the API server, and a forwarder inside each namespace listens on its
// 127.0.0.1:6443 and relays to that socket (see forwarder.ts). kubeconfigs for code running in a
// namespace then point at https://127.0.0.1:6443, which the serving certificate covers.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
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

export async function startApiBridge(apiserverUrl: string, dir: string): Promise<ApiBridge> {
  const url = new URL(apiserverUrl);
  const socket = path.join(dir, "apiserver.sock");
  rmSync(socket, { force: true });
  const server: Server = createServer((client) => {
    const upstream = connect(Number(url.port), url.hostname.replace(/^\[|\]$/g, ""));
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const forwarders: Daemon[] = [];
  return {
    socket,
    async into(netns) {
      const d = spawnDaemon(`forwarder-${netns}`, "ip", ["netns", "exec", netns, process.execPath, path.join(repoRoot, "test/harness/forwarder.ts"), String(nsApiPort), socket], { dir });
      forwarders.push(d);
      await waitFor(`forwarder in ${netns}`, async () => readFileSync(d.logFile, "utf8").includes("listening"), { timeoutMs: 10_000, daemon: d });
      return d;
    },
    nsKubeconfig(kubeconfig, out) {
      const cfg = JSON.parse(readFileSync(kubeconfig, "utf8")) as { clusters: { cluster: { server: string } }[] };
      for (const c of cfg.clusters) c.cluster.server = `https://127.0.0.1:${nsApiPort}`;
      writeFileSync(out, JSON.stringify(cfg, null, 2));
      return out;
    },
    async close() {
      await Promise.all(forwarders.map((f) => f.stop()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(socket, { force: true });
    },
  };
}
