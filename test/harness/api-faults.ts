// A proxy in front of the real API server that misbehaves on request: answers a status of its
// choosing (409, 422, 500, 429…), drops the connection, never answers, or answers late. Everything
// it does not fault goes to the real API server, so what the plugin leaves behind there is real.
//
// It serves HTTPS on a unix socket with a certificate of its own (throwaway CA, IP:127.0.0.1);
// a forwarder in the node's namespace puts it on that namespace's 127.0.0.1:6443 (api-bridge.ts),
// and kubeconfig() writes the plugin's kubeconfig for it. Upstream it authenticates as the admin.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import path from "node:path";
import { nsApiPort } from "./api-bridge.js";
import { makePki } from "./pki.js";

export type ApiFaultAction =
  /** Answer this status with a Kubernetes Status body. */
  | { status: number; reason?: string; message?: string }
  /** Drop the connection without an answer. */
  | "reset"
  /** Never answer (the client's timeout ends it). */
  | "hang"
  /** Pass the request on (with delayMs: late). */
  | "pass";

export interface ApiFault {
  method?: string;
  /** Tested against the request path (without the query). */
  path: RegExp;
  /** Leave this many matching requests alone first. */
  skip?: number;
  /** Fault at most this many matching requests (default: every one). */
  times?: number;
  /** Wait this long before acting. */
  delayMs?: number;
  action: ApiFaultAction;
}

export interface ApiRequestLog {
  method: string;
  path: string;
  /** The status answered, or the action taken. */
  outcome: number | "reset" | "hang" | "error";
}

interface Upstream {
  url: URL;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function upstreamFrom(adminKubeconfig: string): Upstream {
  const kc = JSON.parse(readFileSync(adminKubeconfig, "utf8")) as {
    clusters: { cluster: { server: string; "certificate-authority": string } }[];
    users: { user: { "client-certificate": string; "client-key": string } }[];
  };
  const cluster = kc.clusters[0]?.cluster;
  const user = kc.users[0]?.user;
  if (cluster === undefined || user === undefined) throw new Error(`${adminKubeconfig}: no cluster or user`);
  return {
    url: new URL(cluster.server),
    ca: readFileSync(cluster["certificate-authority"]),
    cert: readFileSync(user["client-certificate"]),
    key: readFileSync(user["client-key"]),
  };
}

export class ApiFaultProxy {
  readonly socket: string;
  readonly log: ApiRequestLog[] = [];
  private faults: { fault: ApiFault; seen: number; done: number }[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly upstream: Upstream,
    private readonly caPem: string,
    dir: string,
  ) {
    this.socket = path.join(dir, "api-faults.sock");
  }

  static async start(adminKubeconfig: string, dir: string): Promise<ApiFaultProxy> {
    const pki = makePki(path.join(dir, "api-faults-pki"), ["IP:127.0.0.1"]);
    const server = createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) });
    const proxy = new ApiFaultProxy(server, upstreamFrom(adminKubeconfig), readFileSync(pki.caCert, "utf8"), dir);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res));
    server.on("secureConnection", (s: Socket) => {
      proxy.sockets.add(s);
      s.on("close", () => proxy.sockets.delete(s));
    });
    rmSync(proxy.socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(proxy.socket, resolve);
    });
    return proxy;
  }

  /** Replaces the faults (counts start again) and clears the log. */
  set(faults: readonly ApiFault[]): void {
    this.faults = faults.map((fault) => ({ fault, seen: 0, done: 0 }));
    this.log.length = 0;
  }

  /** A kubeconfig for a client in a namespace whose 127.0.0.1:6443 forwards to this proxy. */
  kubeconfig(out: string): string {
    const cfg = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "faults", cluster: { server: `https://127.0.0.1:${nsApiPort}`, "certificate-authority-data": Buffer.from(this.caPem).toString("base64") } }],
      users: [{ name: "faults", user: { token: "kvrf-api-faults" } }],
      contexts: [{ name: "faults", context: { cluster: "faults", user: "faults" } }],
      "current-context": "faults",
    };
    writeFileSync(out, JSON.stringify(cfg, null, 2));
    return out;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.socket, { force: true });
  }

  private pick(method: string, p: string): ApiFault | undefined {
    for (const f of this.faults) {
      if (f.fault.method !== undefined && f.fault.method !== method) continue;
      if (!f.fault.path.test(p)) continue;
      f.seen++;
      if (f.seen <= (f.fault.skip ?? 0)) continue;
      if (f.fault.times !== undefined && f.done >= f.fault.times) continue;
      f.done++;
      return f.fault;
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? "GET";
    const p = (req.url ?? "/").split("?")[0] ?? "/";
    const fault = this.pick(method, p);
    const entry: ApiRequestLog = { method, path: p, outcome: "error" };
    this.log.push(entry);
    const act = (): void => {
      const action = fault?.action ?? "pass";
      if (action === "reset") {
        entry.outcome = "reset";
        req.socket.destroy();
      } else if (action === "hang") {
        entry.outcome = "hang";
        req.resume();
      } else if (action === "pass") {
        this.forward(req, res, entry);
      } else {
        entry.outcome = action.status;
        req.resume();
        const body = JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          reason: action.reason ?? "",
          message: action.message ?? `injected ${action.status} by the test's API proxy`,
          code: action.status,
        });
        res.writeHead(action.status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
        res.end(body);
      }
    };
    if (fault?.delayMs !== undefined) setTimeout(act, fault.delayMs);
    else act();
  }

  private forward(req: IncomingMessage, res: ServerResponse, entry: ApiRequestLog): void {
    const { url, ca, cert, key } = this.upstream;
    const headers = { ...req.headers };
    delete headers["authorization"];
    delete headers["host"];
    const up = request(
      { host: url.hostname, port: url.port, path: req.url, method: req.method, headers, ca, cert, key },
      (upRes) => {
        entry.outcome = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => {
      entry.outcome = "error";
      req.socket.destroy();
    });
    req.pipe(up);
  }
}
