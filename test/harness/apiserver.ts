// A real control plane for tests and the lab: etcd and kube-apiserver on loopback (or a given
// address), TLS with a throwaway CA, RBAC authorization, an admin kubeconfig and a
// service-account signing key, the same shape envtest runs. Stopped by PID.
import { request } from "node:https";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { makeClientCert, makePki, type Pki } from "./pki.js";
import { spawnDaemon, waitFor, type Daemon } from "./process.js";
import { tool } from "./tools.js";

export interface ControlPlane {
  url: string;
  /** Admin kubeconfig (user in system:masters). */
  kubeconfig: string;
  pki: Pki;
  etcd: Daemon;
  /** etcd's client URL (plain HTTP on loopback): for tests that write past admission (etcd.ts). */
  etcdUrl: string;
  apiserver: Daemon;
  /** Writes a kubeconfig for a client-certificate user; RBAC decides what it may do. */
  userKubeconfig(name: string, user: string, groups?: readonly string[]): string;
  /** Stops kube-apiserver and etcd only (state is kept), for restart tests. */
  stopApiserver(): Promise<void>;
  startApiserver(): Promise<void>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  dir: string;
  /** Address kube-apiserver binds and advertises in kubeconfigs; default 127.0.0.1. */
  bindAddress?: string;
  /** Fixed secure port; default a free one. */
  port?: number;
  /** Let etcd and kube-apiserver outlive this process (the lab). */
  detached?: boolean;
  /**
   * For real kubelets (the lab's kubelet runtime): the Node authorizer and NodeRestriction
   * admission beside RBAC, and the ServiceAccount admission plugin on (pods get their account's
   * token), as a cluster installer sets them. Default: RBAC only, no ServiceAccount admission.
   */
  kubelets?: boolean;
}

/** A TCP port that was free a moment ago on `host`. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function hostForUrl(addr: string): string {
  return addr.includes(":") ? `[${addr}]` : addr;
}

function httpsGet(url: string, pki: Pki, cert: string, key: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: readFileSync(pki.caCert), cert: readFileSync(cert), key: readFileSync(key), timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function writeKubeconfig(file: string, server: string, caCert: string, cert: string, key: string, user: string): void {
  const cfg = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kvrf-test", cluster: { server, "certificate-authority": caCert } }],
    users: [{ name: user, user: { "client-certificate": cert, "client-key": key } }],
    contexts: [{ name: "kvrf-test", context: { cluster: "kvrf-test", user } }],
    "current-context": "kvrf-test",
  };
  writeFileSync(file, JSON.stringify(cfg, null, 2));
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const bind = opts.bindAddress ?? "127.0.0.1";
  const sans = ["DNS:localhost", "IP:127.0.0.1", "IP:::1", ...(bind === "127.0.0.1" ? [] : [`IP:${bind}`])];
  const pki = makePki(path.join(opts.dir, "pki"), sans);
  const admin = makeClientCert(pki, "admin", "kvrf-admin", ["system:masters"]);
  const etcdPort = await freePort();
  const port = opts.port ?? (await freePort(bind));
  const url = `https://${hostForUrl(bind)}:${port}`;
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;

  const etcd = spawnDaemon(
    "etcd",
    tool("etcd"),
    [
      "--name=kvrf-test",
      `--data-dir=${path.join(opts.dir, "etcd-data")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      "--listen-peer-urls=http://127.0.0.1:0",
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    { dir: opts.dir, detached: opts.detached ?? false },
  );
  try {
    await waitFor("etcd /health", async () => (await fetch(`${etcdUrl}/health`)).ok, { timeoutMs: 30_000, daemon: etcd });
  } catch (err) {
    await etcd.stop();
    throw err;
  }

  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${path.join(opts.dir, "apiserver-certs")}`,
    `--tls-cert-file=${pki.serverCert}`,
    `--tls-private-key-file=${pki.serverKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--secure-port=${port}`,
    `--bind-address=${bind}`,
    ...(bind === "127.0.0.1" ? [] : [`--advertise-address=${bind}`]),
    "--service-cluster-ip-range=10.0.0.0/24",
    "--allow-privileged=true",
    ...(opts.kubelets === true
      ? ["--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction"]
      : ["--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC"]),
    `--service-account-issuer=${url}/`,
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    "--enable-priority-and-fairness=false",
    "--v=1",
  ];
  let apiserver: Daemon | undefined;
  const startApiserver = async (): Promise<void> => {
    const d = spawnDaemon("kube-apiserver", tool("kube-apiserver"), apiserverArgs, { dir: opts.dir, detached: opts.detached ?? false });
    apiserver = d;
    await waitFor(
      "kube-apiserver /readyz",
      async () => (await httpsGet(`${url}/readyz`, pki, admin.cert, admin.key)).status === 200,
      { timeoutMs: 90_000, daemon: d, intervalMs: 250 },
    );
  };
  try {
    await startApiserver();
  } catch (err) {
    await apiserver?.stop();
    await etcd.stop();
    throw err;
  }

  const kubeconfig = path.join(opts.dir, "admin.kubeconfig");
  writeKubeconfig(kubeconfig, url, pki.caCert, admin.cert, admin.key, "kvrf-admin");
  const cp: ControlPlane = {
    url,
    kubeconfig,
    pki,
    etcd,
    etcdUrl,
    get apiserver(): Daemon {
      if (apiserver === undefined) throw new Error("kube-apiserver not started");
      return apiserver;
    },
    userKubeconfig(name, user, groups = []) {
      const c = makeClientCert(pki, name, user, groups);
      const file = path.join(opts.dir, `${name}.kubeconfig`);
      writeKubeconfig(file, url, pki.caCert, c.cert, c.key, user);
      return file;
    },
    stopApiserver: async () => apiserver?.stop(),
    startApiserver,
    stop: async () => {
      await apiserver?.stop();
      await etcd.stop();
    },
  };
  return cp;
}
