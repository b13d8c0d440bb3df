// kvrfd's Kubernetes transport against a scripted HTTP API server: credentials from kubeconfigs
// and the in-cluster service account, requests (errors, timeouts, one kept-alive connection),
// watches (events, ends, errors, idle timeout, abort), the KubeApi calls' wire format, and the
// informer running on it through 410 Gone and silent watches.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Informer } from "./informer.js";
import { KubeApi, type ApiCall } from "./kube.js";
import { apiStatus, KubeClient, KubeError, loadKubeAccess, type KubeAccess } from "./kube-client.js";
import { kubeconfigDir } from "../../shared/testing/kubeconfig.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** An HTTP server whose answers the test scripts; records requests and connections. */
class FakeApiServer {
  readonly seen: Seen[] = [];
  connections = 0;
  handler: (req: Seen, res: ServerResponse) => void = (_q, res) => json(res, 200, {});
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        const s = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
        this.seen.push(s);
        this.handler(s, res);
      });
    });
    server.on("connection", () => this.connections++);
    this.server = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

const access = (server: string, token?: string): KubeAccess => ({
  server,
  insecure: false,
  headers: () => Promise.resolve(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
  source: "test",
});

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

// The kubeconfig format itself (contexts, relative files, inline data, YAML, bad files) is
// shared/kubeconfig.test.ts's; here what kvrfd makes of it.
describe("loadKubeAccess", () => {
  const { path: at, kubeconfig } = kubeconfigDir("kvrfd-kubeconfig-");

  it("takes the current context's server, CA, client certificate and TLS server name, without headers", async () => {
    const a = await loadKubeAccess(
      kubeconfig("cert.json", { "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key-data": Buffer.from("KEY").toString("base64") }, { "tls-server-name": "api.internal" }),
    );
    expect(a.server).toBe("https://api.example:6443");
    expect(a.ca?.toString()).toBe("CA");
    expect(a.cert?.toString()).toBe("CERT");
    expect(a.key?.toString()).toBe("KEY");
    expect(a.servername).toBe("api.internal");
    expect(a.insecure).toBe(false);
    expect(a.source).toMatch(/^kubeconfig .*cert\.json$/);
    expect(await a.headers()).toEqual({});
  });

  it("sends a token, or a token file's content (re-read as it rotates)", async () => {
    const t = await loadKubeAccess(kubeconfig("token.json", { token: "abc" }, { "insecure-skip-tls-verify": true }));
    expect(await t.headers()).toEqual({ Authorization: "Bearer abc" });
    expect(t.insecure).toBe(true);
    writeFileSync(at("tok"), "first\n");
    const file = kubeconfig("tokenfile.json", { tokenFile: "tok" });
    const cached = await loadKubeAccess(file);
    const fresh = await loadKubeAccess(file, { tokenRefreshMs: 0 });
    expect(await cached.headers()).toEqual({ Authorization: "Bearer first" });
    writeFileSync(at("tok"), "second\n");
    expect(await cached.headers()).toEqual({ Authorization: "Bearer first" });
    expect(await fresh.headers()).toEqual({ Authorization: "Bearer second" });
    // Gone for a moment (the kubelet swaps it): the last token is kept.
    rmSync(at("tok"));
    expect(await fresh.headers()).toEqual({ Authorization: "Bearer second" });
  });

  it("fails at load, not at the first request, when the token file cannot be read", async () => {
    const err = await loadKubeAccess(kubeconfig("notoken.json", { tokenFile: "absent-token" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).reason).toBe("Unauthorized");
    expect((err as Error).message).toMatch(/reading token file .*absent-token/);
  });

  it("uses the in-cluster service account without a kubeconfig, with a bracketed IPv6 host", async () => {
    const sa = at("sa");
    rmSync(sa, { recursive: true, force: true });
    mkdirSync(sa);
    writeFileSync(path.join(sa, "token"), "sa-token");
    writeFileSync(path.join(sa, "ca.crt"), "CLUSTER-CA");
    const a = await loadKubeAccess(undefined, { env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir: sa });
    expect(a.server).toBe("https://[fd00::1]:443");
    expect(a.ca?.toString()).toBe("CLUSTER-CA");
    expect(await a.headers()).toEqual({ Authorization: "Bearer sa-token" });
  });

  it("turns an unusable kubeconfig into KubeError BadKubeconfig with the reader's message", async () => {
    const missing = await loadKubeAccess(at("nope.json")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(KubeError);
    expect((missing as KubeError).reason).toBe("BadKubeconfig");
    expect((missing as Error).message).toMatch(/reading kubeconfig .*nope\.json/);
    const file = at("bad.json");
    writeFileSync(file, JSON.stringify({ "current-context": "x", contexts: [{ name: "x", context: { cluster: "none", user: "u" } }], clusters: [], users: [] }));
    await expect(loadKubeAccess(file)).rejects.toThrow(/no cluster with a server/);
  });

  it("refuses a user that needs a credential plugin, naming what it has", async () => {
    const err = await loadKubeAccess(kubeconfig("exec.json", { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "aws" } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).reason).toBe("BadKubeconfig");
    expect((err as Error).message).toMatch(/user exec is not supported by kvrfd; use a client certificate, token or tokenFile/);
  });
});

describe("KubeClient", () => {
  const api = new FakeApiServer();
  beforeAll(() => api.start());
  afterAll(() => api.stop());
  let client: KubeClient | undefined;
  afterEach(() => {
    client?.close();
    api.seen.length = 0;
    api.handler = (_q, res) => json(res, 200, {});
  });

  it("sends JSON with credentials and reuses one connection", async () => {
    client = new KubeClient(access(api.url, "t0k"), 2000);
    api.handler = (q, res) => json(res, 200, { echo: q.body === "" ? null : (JSON.parse(q.body) as unknown) });
    const before = api.connections;
    for (let i = 0; i < 5; i++) {
      expect(await client.request("POST", "/api/v1/x", { body: { i }, query: { a: "b c", skip: undefined } })).toEqual({ echo: { i } });
    }
    expect(api.connections - before).toBe(1);
    const q = api.seen[0];
    expect(q?.url).toBe("/api/v1/x?a=b+c");
    expect(q?.headers["authorization"]).toBe("Bearer t0k");
    expect(q?.headers["content-type"]).toBe("application/json");
  });

  it("turns API errors into KubeError with the status and the server's message", async () => {
    client = new KubeClient(access(api.url), 2000);
    api.handler = (_q, res) => json(res, 404, { kind: "Status", reason: "NotFound", message: 'bgpvrfinstances "x" not found' });
    const err = await client.request("GET", "/apis/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeError);
    expect(apiStatus(err)).toBe(404);
    expect((err as KubeError).reason).toBe("NotFound");
    expect((err as Error).message).toMatch(/not found/);
  });

  it("gives up on a request after its timeout (status 0)", async () => {
    client = new KubeClient(access(api.url), 100);
    api.handler = () => undefined; // never answers
    const t = Date.now();
    const err = await client.request("GET", "/slow").catch((e: unknown) => e);
    expect(Date.now() - t).toBeLessThan(1500);
    expect(err).toBeInstanceOf(KubeError);
    expect((err as KubeError).status).toBe(0);
    expect(apiStatus(err)).toBeUndefined();
    expect((err as Error).message).toMatch(/no answer within 100 ms/);
  });

  it("reports an unreachable server as status 0", async () => {
    client = new KubeClient(access("http://127.0.0.1:1"), 1000);
    const err = await client.request("GET", "/x").catch((e: unknown) => e);
    expect((err as KubeError).status).toBe(0);
  });

  describe("watch", () => {
    function stream(lines: unknown[], end: boolean): (q: Seen, res: ServerResponse) => void {
      return (_q, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        // One event split across writes, as a chunked stream may deliver it.
        const text = lines.map((l) => JSON.stringify(l) + "\n").join("");
        res.write(text.slice(0, 7));
        res.write(text.slice(7));
        if (end) res.end();
      };
    }

    function collect(c: KubeClient, query: Record<string, string | number | boolean | undefined> = {}) {
      const events: string[] = [];
      const done: unknown[] = [];
      const ac = c.watch("/apis/x/things", query, (phase, obj) => events.push(`${phase} ${(obj as { metadata?: { name?: string } }).metadata?.name ?? ""}`), (err) => done.push(err));
      return { events, done, ac };
    }

    it("delivers events in order and ends with null when the server closes it", async () => {
      client = new KubeClient(access(api.url), 1000);
      api.handler = stream([{ type: "ADDED", object: { metadata: { name: "a" } } }, { type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } }, { type: "DELETED", object: { metadata: { name: "a" } } }], true);
      const w = collect(client, { resourceVersion: "5", labelSelector: "kvrf.dev/node=n1" });
      await until("done", () => w.done.length > 0);
      expect(w.events).toEqual(["ADDED a", "BOOKMARK ", "DELETED a"]);
      expect(w.done).toEqual([null]);
      expect(api.seen[0]?.url).toBe("/apis/x/things?resourceVersion=5&labelSelector=kvrf.dev%2Fnode%3Dn1&watch=true");
    });

    it("reports a refused watch with its statusCode (410 relists)", async () => {
      client = new KubeClient(access(api.url), 1000);
      api.handler = (_q, res) => json(res, 410, { kind: "Status", code: 410, message: "too old resource version" });
      const w = collect(client);
      await until("done", () => w.done.length > 0);
      expect((w.done[0] as { statusCode?: number }).statusCode).toBe(410);
      expect(w.done).toHaveLength(1);
    });

    it("aborts a watch that carries nothing for watchIdleMs (TimeoutError), and reports a caller's abort as AbortError", async () => {
      client = new KubeClient(access(api.url), 1000, 150);
      api.handler = stream([{ type: "ADDED", object: { metadata: { name: "a" } } }], false);
      const idle = collect(client);
      await until("idle timeout", () => idle.done.length > 0);
      expect(idle.events).toEqual(["ADDED a"]);
      expect((idle.done[0] as Error).name).toBe("TimeoutError");

      client.close();
      client = new KubeClient(access(api.url), 1000, 10_000);
      const aborted = collect(client);
      await until("watch started", () => aborted.events.length === 1);
      (await aborted.ac).abort();
      await until("aborted", () => aborted.done.length > 0);
      await sleep(50);
      expect(aborted.done).toHaveLength(1);
      expect((aborted.done[0] as Error).name).toBe("AbortError");
    });

    it("ends the watch with the error of a handler that throws, once", async () => {
      client = new KubeClient(access(api.url), 1000);
      api.handler = stream([{ type: "ADDED", object: { metadata: { name: "a" } } }, { type: "ADDED", object: { metadata: { name: "b" } } }], false);
      const done: unknown[] = [];
      await client.watch(
        "/x",
        {},
        () => {
          throw new Error("handler broke");
        },
        (e) => done.push(e),
      );
      await until("done", () => done.length > 0);
      await sleep(50);
      expect(done).toHaveLength(1);
      expect((done[0] as Error).message).toBe("handler broke");
    });
  });
});

describe("KubeApi", () => {
  const api = new FakeApiServer();
  beforeAll(() => api.start());
  afterAll(() => api.stop());
  afterEach(() => {
    api.seen.length = 0;
    api.handler = (_q, res) => json(res, 200, {});
  });

  it("writes status, finalizers, events and node status as the API expects, and counts its calls", async () => {
    const calls: ApiCall[] = [];
    const k = new KubeApi(access(api.url), "node-1", 2000, (c) => calls.push(c));
    try {
      const obj = { apiVersion: "kvrf.dev/v1alpha1" as const, kind: "BGPVRFInstance" as const, metadata: { name: "node-1.vpc-a", resourceVersion: "7", finalizers: ["other", "kvrf.dev/vrf-cleanup"] }, spec: {} as never };
      await k.patchStatus("node-1.vpc-a", { observedGeneration: 2 });
      await k.removeFinalizer(obj);
      await k.addFinalizer({ ...obj, metadata: { name: "node-1.vpc-a", resourceVersion: "7" } });
      await k.event({ kind: "BGPVRFInstance", apiVersion: "kvrf.dev/v1alpha1", name: "node-1.vpc-a", uid: "u1" }, "Warning", "KernelError", "boom");
      await k.applyNodeStatus("inst", undefined);
      const [status, rmFin, addFin, event, nodeStatus] = api.seen;
      expect([status?.method, status?.url, status?.headers["content-type"], JSON.parse(status?.body ?? "")]).toEqual([
        "PATCH",
        "/apis/kvrf.dev/v1alpha1/bgpvrfinstances/node-1.vpc-a/status",
        "application/merge-patch+json",
        { status: { observedGeneration: 2 } },
      ]);
      expect([rmFin?.headers["content-type"], JSON.parse(rmFin?.body ?? "")]).toEqual([
        "application/json-patch+json",
        [
          { op: "test", path: "/metadata/finalizers/1", value: "kvrf.dev/vrf-cleanup" },
          { op: "remove", path: "/metadata/finalizers/1" },
        ],
      ]);
      expect(JSON.parse(addFin?.body ?? "")).toEqual([
        { op: "test", path: "/metadata/resourceVersion", value: "7" },
        { op: "add", path: "/metadata/finalizers", value: ["kvrf.dev/vrf-cleanup"] },
      ]);
      const ev = JSON.parse(event?.body ?? "") as Record<string, unknown>;
      expect([event?.method, event?.url]).toEqual(["POST", "/api/v1/namespaces/default/events"]);
      expect(ev).toMatchObject({ kind: "Event", type: "Warning", reason: "KernelError", message: "boom", involvedObject: { name: "node-1.vpc-a", uid: "u1" }, count: 1 });
      expect(ev["firstTimestamp"]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect([nodeStatus?.url, nodeStatus?.headers["content-type"], JSON.parse(nodeStatus?.body ?? "")]).toEqual([
        "/apis/kvrf.dev/v1alpha1/bgpinstances/inst/status?fieldManager=kvrfd-node-1&force=true",
        "application/apply-patch+yaml",
        { apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name: "inst" }, status: { nodes: [] } },
      ]);
      expect(calls).toEqual(["status", "finalizer", "finalizer", "event", "node-status"]);
    } finally {
      k.close();
    }
  });

  it("treats 404 as done for status and finalizer writes, and as no value for a Secret", async () => {
    const k = new KubeApi(access(api.url), "n", 2000);
    try {
      api.handler = (_q, res) => json(res, 404, { reason: "NotFound" });
      await k.patchStatus("gone", {});
      await k.removeFinalizer({ apiVersion: "kvrf.dev/v1alpha1", kind: "BGPVRFInstance", metadata: { name: "gone", finalizers: ["kvrf.dev/vrf-cleanup"] }, spec: {} as never });
      expect(await k.secretValue({ namespace: "ns", name: "s", key: "k" })).toBeUndefined();
      api.handler = (_q, res) => json(res, 200, { data: { k: Buffer.from("pw").toString("base64") } });
      expect(await k.secretValue({ namespace: "ns", name: "s", key: "k" })).toBe("pw");
      api.handler = (_q, res) => json(res, 500, { message: "etcd down" });
      await expect(k.patchStatus("x", {})).rejects.toThrow(/500 etcd down/);
    } finally {
      k.close();
    }
  });

  it("feeds an informer that relists after a 410 Gone event and after a silent watch", async () => {
    let rv = 10;
    let lists = 0;
    let watches = 0;
    const items = new Map([["a", { metadata: { name: "a", resourceVersion: "3" } }]]);
    api.handler = (q, res) => {
      if (!q.url.includes("watch=true")) {
        lists++;
        return json(res, 200, { items: [...items.values()], metadata: { resourceVersion: String(rv) } });
      }
      watches++;
      res.writeHead(200, { "content-type": "application/json" });
      if (watches === 1) {
        res.write(JSON.stringify({ type: "ADDED", object: { metadata: { name: "b", resourceVersion: "11" } } }) + "\n");
        // b vanishes while the watch is gone; the relist must report it deleted.
        setTimeout(() => res.end(JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old" } }) + "\n"), 30);
      }
      // Later watches stay silent: the client's idle timeout ends them, and the informer rewatches.
    };
    const k = new KubeApi(access(api.url), "n", 2000);
    const client = new KubeClient(access(api.url), 2000, 200);
    const events: string[] = [];
    const inf = new Informer<{ metadata: { name: string; resourceVersion: string } }>({
      name: "things",
      path: "/apis/x/things",
      list: (signal) => client.request("GET", "/apis/x/things", { signal }),
      watch: client,
      resyncMs: 60_000,
      stallMs: 60_000,
      backoff: { baseMs: 10, maxMs: 20 },
      log: pino({ level: "silent" }),
    });
    inf.on({ add: (o) => events.push(`add ${o.metadata.name}`), delete: (o) => events.push(`delete ${o.metadata.name}`) });
    try {
      inf.start();
      await until("relisted after 410", () => lists === 2 && events.includes("delete b"), 5000);
      expect(events).toEqual(["add a", "add b", "delete b"]);
      rv = 20;
      await until("rewatched after the idle timeout", () => watches >= 3, 5000);
      expect(lists).toBe(2);
      expect(inf.hasSynced).toBe(true);
    } finally {
      await inf.stop();
      client.close();
      k.close();
    }
  });
});
