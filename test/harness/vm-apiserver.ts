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
//
// The lab tier's suites in the guest get control planes from the host too, a fresh one per lab
// (`up` in scripts/netns-lab/lab.ts), as on the host: under emulation starting one took 26–33 s
// and it then shared the guest's CPU with the lab. They are asked for while the guest runs, through
// the job directory (its 9p share is not cached, unlike the host's root, where files the host
// writes after the boot may not show), in `control-planes/`:
//   ID.want   the guest asks for one                ID.json   the host's answer: URL, kubeconfig
//   ID.error  the host could not start one         ID.done   the guest is finished with it
// ID/admin.kubeconfig carries its certificates inline (the host's PKI files are under its root).
// The tier serves them (serveLabControlPlanes) and stops what is left when the guest has ended.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestProject } from "vitest/node";
import { startControlPlane, type ControlPlane } from "./apiserver.js";
import { testEnvDir } from "./tools.js";

/** The host's loopback as qemu's user-mode network shows it to the guest. */
export const hostFromGuest = "10.0.2.2";

const relays: Server[] = [];
/** Each relay's open connections (closing a relay ends them: a client may keep one alive). */
const connections = new WeakMap<Server, Set<Socket>>();

function serverOf(kubeconfig: string): URL {
  const cfg = JSON.parse(readFileSync(kubeconfig, "utf8")) as { clusters: { cluster: { server: string } }[] };
  const server = cfg.clusters[0]?.cluster.server;
  if (server === undefined) throw new Error(`${kubeconfig} names no server`);
  return new URL(server);
}

/** Listens on the guest's 127.0.0.1:port and relays each connection to the host's same port. */
async function relayToHost(port: number): Promise<Server> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
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
  connections.set(server, open);
  return server;
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

/** The job directory's folder of lab control planes (the guest's job directory is /vmjob). */
const planesDir = (jobDir: string): string => path.join(jobDir, "control-planes");

/** The environment variable that tells the lab in the guest to ask the host (set by the vm tier). */
export const labControlPlanesVar = "KVRF_VM_LAB_CONTROL_PLANES";

/** A kubeconfig with its certificate files inlined (`*-data`), readable where those files are not. */
function inlineKubeconfig(file: string): string {
  const cfg = JSON.parse(readFileSync(file, "utf8")) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
  const inline = (o: Record<string, string>, key: string): void => {
    const f = o[key];
    if (f === undefined) return;
    o[`${key}-data`] = readFileSync(path.resolve(path.dirname(file), f)).toString("base64");
    delete o[key];
  };
  for (const c of cfg.clusters) inline(c.cluster, "certificate-authority");
  for (const u of cfg.users) for (const k of ["client-certificate", "client-key"]) inline(u.user, k);
  return JSON.stringify(cfg, null, 2);
}

/**
 * On the host, while the guest runs: answers the lab's requests for control planes in `jobDir`
 * (see the top of this file). `stop` stops every one still running.
 */
export function serveLabControlPlanes(jobDir: string): { stop(): Promise<void> } {
  const dir = planesDir(jobDir);
  const running = new Map<string, Promise<ControlPlane | undefined>>();
  const stopped = new Set<string>();
  const stopOne = async (id: string): Promise<void> => {
    if (stopped.has(id)) return;
    stopped.add(id);
    await (await running.get(id))?.stop();
    if (process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(path.join(testEnvDir, "run", `vm-lab-apiserver-${process.pid}-${id}`), { recursive: true, force: true });
  };
  const start = async (id: string): Promise<ControlPlane | undefined> => {
    const cpDir = path.join(testEnvDir, "run", `vm-lab-apiserver-${process.pid}-${id}`);
    rmSync(cpDir, { recursive: true, force: true });
    try {
      const cp = await startControlPlane({ dir: cpDir });
      mkdirSync(path.join(dir, id), { recursive: true });
      writeFileSync(path.join(dir, id, "admin.kubeconfig"), inlineKubeconfig(cp.kubeconfig));
      writeFileSync(path.join(dir, `${id}.json.tmp`), JSON.stringify({ url: cp.url }));
      renameSync(path.join(dir, `${id}.json.tmp`), path.join(dir, `${id}.json`));
      return cp;
    } catch (err) {
      writeFileSync(path.join(dir, `${id}.error`), (err as Error).message);
      return undefined;
    }
  };
  const poll = (): void => {
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      const [id, what] = f.split(".");
      if (id === undefined || id === "") continue;
      if (what === "want" && !running.has(id)) running.set(id, start(id));
      if (what === "done" && running.has(id)) void stopOne(id);
    }
  };
  const timer = setInterval(poll, 250);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...running.keys()].map(stopOne));
    },
  };
}

/** What the guest keeps of the control plane it was given (in the lab's control-plane directory). */
interface Given {
  id: string;
  port: number;
}
const givenFile = (cpDir: string): string => path.join(cpDir, "host-control-plane.json");
const guestRelays = new Map<string, Server>();

/**
 * In the guest: a fresh control plane from the host for the lab, relayed to the guest's
 * 127.0.0.1 at the host's port; its kubeconfig is written to `cpDir`/admin.kubeconfig. Undone by
 * releaseLabControlPlane(cpDir).
 */
export async function labControlPlaneFromHost(cpDir: string, timeoutMs = 180_000): Promise<{ url: string; kubeconfig: string }> {
  const job = process.env["KVRF_VM_JOB"];
  if (job === undefined) throw new Error(`${labControlPlanesVar} is set, but this is not the vm tier's guest (no KVRF_VM_JOB)`);
  const dir = planesDir(job);
  mkdirSync(dir, { recursive: true });
  mkdirSync(cpDir, { recursive: true });
  const id = `${process.pid}-${Date.now()}`;
  writeFileSync(path.join(dir, `${id}.want`), "");
  const deadline = Date.now() + timeoutMs;
  const answer = path.join(dir, `${id}.json`);
  while (!existsSync(answer)) {
    if (existsSync(path.join(dir, `${id}.error`))) throw new Error(`the host could not start a control plane: ${readFileSync(path.join(dir, `${id}.error`), "utf8")}`);
    if (Date.now() > deadline) throw new Error(`no control plane from the host within ${timeoutMs} ms (${answer})`);
    await sleep(200);
  }
  const { url } = JSON.parse(readFileSync(answer, "utf8")) as { url: string };
  const port = Number(new URL(url).port);
  const kubeconfig = path.join(cpDir, "admin.kubeconfig");
  writeFileSync(kubeconfig, readFileSync(path.join(dir, id, "admin.kubeconfig")));
  writeFileSync(givenFile(cpDir), JSON.stringify({ id, port } satisfies Given));
  guestRelays.set(id, await relayToHost(port));
  return { url, kubeconfig };
}

/** In the guest: hands the lab's control plane (if it came from the host) back; idempotent. */
export async function releaseLabControlPlane(cpDir: string): Promise<void> {
  const job = process.env["KVRF_VM_JOB"];
  if (job === undefined || !existsSync(givenFile(cpDir))) return;
  const { id } = JSON.parse(readFileSync(givenFile(cpDir), "utf8")) as Given;
  const relay = guestRelays.get(id);
  guestRelays.delete(id);
  if (relay !== undefined) {
    const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
    for (const c of connections.get(relay) ?? []) c.destroy();
    await closed;
  }
  writeFileSync(path.join(planesDir(job), `${id}.done`), "");
  rmSync(givenFile(cpDir), { force: true });
}
