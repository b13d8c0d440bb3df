// The integration tier's control plane when it runs in the vm tier's guest: the host's, not one of
// its own. etcd and kube-apiserver under emulation took ~100 s to come up and then ate the guest's
// CPU for the whole run; on the host they run natively. scripts/vm/tier.ts starts one on the host
// (startHostControlPlane) and passes its kubeconfig to the guest, where this module is the
// integration project's global setup instead of global-integration.ts (vitest.config.ts):
//
//   KVRF_VM_KUBECONFIG      the host control plane's admin kubeconfig (the guest sees the host's
//                           files at the same paths); its server is https://127.0.0.1:PORT
//   KVRF_VM_ETCD_URL        its etcd, http://127.0.0.1:PORT (tests that rewrite objects in etcd)
//
// The guest reaches the host's loopback at 10.0.2.2 (qemu user-mode networking), so relays here
// listen on the guest's own 127.0.0.1:PORT and forward there: the kubeconfig, the server
// certificate (issued for 127.0.0.1) and every namespace bridge (api-bridge.ts) stay as they are.
import { readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startControlPlane, type ControlPlane } from "./apiserver.js";
import { testEnvDir } from "./tools.js";

/** The host's loopback as qemu's user-mode network shows it to the guest. */
export const hostFromGuest = "10.0.2.2";

const relays: Server[] = [];

function serverOf(kubeconfig: string): URL {
  const cfg = JSON.parse(readFileSync(kubeconfig, "utf8")) as { clusters: { cluster: { server: string } }[] };
  const server = cfg.clusters[0]?.cluster.server;
  if (server === undefined) throw new Error(`${kubeconfig} names no server`);
  return new URL(server);
}

/** Listens on the guest's 127.0.0.1:port and relays each connection to the host's same port. */
async function relayToHost(port: number): Promise<void> {
  const server = createServer((client) => {
    const upstream = connect(port, hostFromGuest);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  server.unref();
  relays.push(server);
}

/** Global setup in the guest: relays to the host's API server and etcd, and provides them. */
export async function setup(project: TestProject): Promise<void> {
  const kubeconfig = process.env["KVRF_VM_KUBECONFIG"];
  const etcdUrl = process.env["KVRF_VM_ETCD_URL"];
  if (kubeconfig === undefined || etcdUrl === undefined) throw new Error("KVRF_VM_KUBECONFIG and KVRF_VM_ETCD_URL must be set: this global setup is for the vm tier's guest");
  const url = serverOf(kubeconfig);
  await relayToHost(Number(url.port));
  await relayToHost(Number(new URL(etcdUrl).port));
  project.provide("kubeconfig", kubeconfig);
  project.provide("apiserverUrl", url.origin);
  project.provide("etcdUrl", etcdUrl);
}

export async function teardown(): Promise<void> {
  await Promise.all(relays.splice(0).map((r) => new Promise<void>((resolve) => r.close(() => resolve()))));
}

/** On the host: a control plane for the guest, stopped (and its directory removed) by `stop`. */
export async function startHostControlPlane(): Promise<{ cp: ControlPlane; stop(): Promise<void> }> {
  const dir = path.join(testEnvDir, "run", `vm-apiserver-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const cp = await startControlPlane({ dir });
  return {
    cp,
    stop: async () => {
      await cp.stop();
      if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(dir, { recursive: true, force: true });
    },
  };
}
