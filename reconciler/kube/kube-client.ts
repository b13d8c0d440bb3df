// kvrfd's Kubernetes transport: where the API server is and how to authenticate (kubeconfig or
// in-cluster), JSON requests and watches over one pool of keep-alive HTTPS connections.
//
// Why not @kubernetes/client-node (the project's Kubernetes library: tests, harness, lab, bench):
// in kvrfd's bundle it cost ~35 MiB of RSS, a quarter of the process, for the nine calls kvrfd
// makes. Its KubeConfig alone statically imports undici and the generated models (+34 MiB
// measured), and even bundled but never loaded (behind a lazy import()) its 4 MB of minified code
// cost +28 MiB (docs/kvrfd.md, "Memory"). It also opens a new connection per request (2.0.1: one
// undici Agent each) and has no request timeout. kvrfd needs only the credentials a node daemon
// has: the in-cluster service account (its bound token rotates: re-read every minute), or a
// kubeconfig with a client certificate, token or token file (read by shared/kubeconfig.ts).
// Credential plugins (exec, auth providers) are refused with a clear error.
import { monotonicMs } from "../../shared/clock.js";
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, STATUS_CODES, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { homedir } from "node:os";
import path from "node:path";
import { readKubeconfig } from "../../shared/kubeconfig.js";
import { KubeError } from "../../shared/kube-error.js";

export { KubeError };

/** The HTTP status of a failed call, if the API server answered. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof KubeError && err.status > 0 ? err.status : undefined;
}

/** Credentials and TLS settings for one API server. */
export interface KubeAccess {
  /** "https://host:port" (no trailing slash, may carry a path prefix). */
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure: boolean;
  servername?: string;
  /** Extra headers of every request (Authorization), possibly refreshed. */
  headers(): Promise<Record<string, string>>;
  /** Where it came from, for the start-up log. */
  source: string;
}

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A token read from a file, re-read every minute (bound service-account tokens rotate). */
function tokenFromFile(file: string, refreshMs = 60_000): () => Promise<Record<string, string>> {
  let token = "";
  let readAt = -Infinity;
  return () => {
    const now = monotonicMs();
    if (now - readAt >= refreshMs || token === "") {
      let t = "";
      try {
        t = readFileSync(file, "utf8").trim();
      } catch (err) {
        // A token we have stays valid for a while; without one, nothing can be sent.
        if (token === "") throw new KubeError(0, "Unauthorized", `reading token file ${file}: ${(err as Error).message}`, { cause: err });
      }
      if (t === "" && token === "") throw new KubeError(0, "Unauthorized", `token file ${file} is empty`);
      if (t !== "") token = t;
      readAt = now;
    }
    return Promise.resolve({ Authorization: `Bearer ${token}` });
  };
}

const noHeaders = (): Promise<Record<string, string>> => Promise.resolve({});

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** The in-cluster service-account directory (tests point it elsewhere). */
  serviceAccountDir?: string;
  /** How long a token read from a file is used before it is read again; default 60 s. */
  tokenRefreshMs?: number;
}

/**
 * Where the API server is: the kubeconfig `file`; without one, the in-cluster service account
 * when KUBERNETES_SERVICE_HOST is set; otherwise ~/.kube/config (like kubectl).
 */
export async function loadKubeAccess(file: string | undefined, opts: LoadOptions = {}): Promise<KubeAccess> {
  const env = opts.env ?? process.env;
  if (file !== undefined && file !== "") return loadKubeconfigFile(file, opts);
  const host = env["KUBERNETES_SERVICE_HOST"];
  if (host !== undefined && host !== "") {
    const dir = opts.serviceAccountDir ?? serviceAccountDir;
    const port = env["KUBERNETES_SERVICE_PORT"] ?? "443";
    const token = path.join(dir, "token");
    const headers = tokenFromFile(token, opts.tokenRefreshMs);
    await headers(); // fail now, not at the first request, without a token
    return {
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      ca: readFileSync(path.join(dir, "ca.crt")),
      insecure: false,
      headers,
      source: `in-cluster service account (${dir})`,
    };
  }
  return loadKubeconfigFile(path.join(env["HOME"] ?? homedir(), ".kube", "config"), opts);
}

/** kvrfd's kubeconfig (shared/kubeconfig.ts); its token file is re-read as it rotates. */
async function loadKubeconfigFile(file: string, opts: LoadOptions): Promise<KubeAccess> {
  const bad = (message: string, options?: ErrorOptions): KubeError => new KubeError(0, "BadKubeconfig", message, options);
  const { token, tokenFile, unsupported, ...tls } = await readKubeconfig(file, bad);
  if (unsupported.length > 0) {
    throw bad(`kubeconfig ${file}: user ${unsupported.join(", ")} is not supported by kvrfd; use a client certificate, token or tokenFile (or run in-cluster with the service account)`);
  }
  const headers =
    token !== undefined
      ? ((h) => () => Promise.resolve(h))({ Authorization: `Bearer ${token}` })
      : tokenFile !== undefined
        ? tokenFromFile(tokenFile, opts.tokenRefreshMs)
        : noHeaders;
  await headers(); // fail now, not at the first request, without a token
  return { ...tls, headers, source: `kubeconfig ${file}` };
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Overrides the client's per-request timeout. */
  timeoutMs?: number;
}

export type WatchCallback = (phase: string, obj: unknown) => void;
export type WatchDone = (err: unknown) => void;

/** What the informer needs of a watch (client-node's Watch has the same shape). */
export interface Watcher {
  watch(path: string, query: Record<string, string | number | boolean | undefined>, cb: WatchCallback, done: WatchDone): Promise<AbortController>;
}

function queryString(q: CallOptions["query"]): string {
  const entries = Object.entries(q ?? {}).filter((e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== "");
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
}

function timeoutError(ms: number): DOMException {
  return new DOMException(`no answer within ${ms} ms`, "TimeoutError");
}

/**
 * JSON requests and watches against one API server. All share one keep-alive connection pool:
 * at a few requests per object, a TLS handshake each would cost more CPU than the request.
 */
export class KubeClient implements Watcher {
  private readonly agent: HttpAgent;
  private readonly secure: boolean;

  constructor(
    readonly access: KubeAccess,
    private readonly timeoutMs = 15_000,
    /** A watch that carries nothing (not even a bookmark) for this long is aborted (TimeoutError). */
    private readonly watchIdleMs = 30_000,
    readonly userAgent = "kvrfd",
  ) {
    this.secure = access.server.startsWith("https:");
    // Idle connections are closed after 30 s, before the API server's own idle timeout (90 s)
    // could close one just as a request goes out on it. All of them stay open between bursts:
    // keeping 8 made every burst of finalizer removals pay TLS handshakes again (profiled).
    const common = { keepAlive: true, maxSockets: 32, maxFreeSockets: 32, scheduling: "lifo" as const, timeout: 30_000 };
    this.agent = this.secure
      ? new HttpsAgent({
          ...common,
          ...(access.ca !== undefined ? { ca: access.ca } : {}),
          ...(access.cert !== undefined ? { cert: access.cert } : {}),
          ...(access.key !== undefined ? { key: access.key } : {}),
          ...(access.servername !== undefined ? { servername: access.servername } : {}),
          rejectUnauthorized: !access.insecure,
        })
      : new HttpAgent(common);
  }

  private async send(method: string, apiPath: string, opts: CallOptions, signal: AbortSignal): Promise<IncomingMessage> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": this.userAgent, ...(await this.access.headers()) };
    if (payload !== undefined) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    const url = this.access.server + apiPath + queryString(opts.query);
    const request = this.secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers, signal }, resolve);
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Sends a request and parses the JSON answer; rejects with KubeError unless it is 2xx. */
  async request<T>(method: string, apiPath: string, opts: CallOptions = {}): Promise<T> {
    const ms = opts.timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(ms);
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout]);
    let text: string;
    let status: number;
    try {
      const res = await this.send(method, apiPath, opts, signal);
      status = res.statusCode ?? 0;
      res.setEncoding("utf8");
      text = "";
      for await (const chunk of res) text += chunk as string;
    } catch (err) {
      const why = timeout.aborted ? timeoutError(ms) : err;
      throw new KubeError(0, "", `${method} ${apiPath}: ${why instanceof Error ? why.message : String(why)}`, { cause: why });
    }
    let body: unknown;
    try {
      body = text === "" ? {} : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (status >= 200 && status < 300) return body as T;
    const st = (body ?? {}) as { reason?: string; message?: string };
    throw new KubeError(status, st.reason ?? "", `${method} ${apiPath}: ${status} ${st.message ?? (text.slice(0, 200) || STATUS_CODES[status] || "")}`);
  }

  /**
   * Watches `path` (newline-delimited JSON events) and calls `cb` per event; `done` exactly once:
   * null when the server ended the watch, an error otherwise (statusCode for a non-200 answer,
   * name "TimeoutError" after watchIdleMs without data, "AbortError" when aborted). Like
   * client-node's Watch.watch, so the informer works with either.
   */
  watch(apiPath: string, query: Record<string, string | number | boolean | undefined>, cb: WatchCallback, done: WatchDone): Promise<AbortController> {
    const ac = new AbortController();
    let finished = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(idle);
      done(err);
    };
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => ac.abort(timeoutError(this.watchIdleMs)), this.watchIdleMs).unref();
    };
    ac.signal.addEventListener(
      "abort",
      () => {
        const why: unknown = ac.signal.reason;
        // Aborted by the caller (a relist, stop): AbortError; by the idle timer or a handler: that error.
        finish(why instanceof DOMException && why.name === "AbortError" ? why : why instanceof Error ? why : new DOMException("watch aborted", "AbortError"));
      },
      { once: true },
    );
    arm();
    this.send("GET", apiPath, { query: { ...query, watch: true } }, ac.signal).then(
      (res) => {
        res.setEncoding("utf8");
        if (res.statusCode !== 200) {
          let text = "";
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let msg = text.slice(0, 200);
            try {
              msg = (JSON.parse(text) as { message?: string }).message ?? msg;
            } catch {
              // not JSON
            }
            finish(Object.assign(new Error(`watch ${apiPath}: ${res.statusCode ?? 0} ${msg || STATUS_CODES[res.statusCode ?? 0] || ""}`), { statusCode: res.statusCode }));
          });
          res.on("error", finish);
          return;
        }
        arm();
        let buf = "";
        res.on("data", (chunk: string) => {
          if (finished) return;
          arm();
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() === "") continue;
            let ev: { type?: string; object?: unknown };
            try {
              ev = JSON.parse(line) as typeof ev;
            } catch {
              continue; // a broken line: the watch goes on (as client-node's)
            }
            try {
              cb(ev.type ?? "", ev.object);
            } catch (err) {
              // A handler that throws ends this watch (the informer relists) instead of the process.
              ac.abort(err);
              return;
            }
            if (finished) return;
          }
        });
        res.on("end", () => finish(null));
        res.on("error", finish);
        res.on("close", () => finish(res.complete ? null : new KubeError(0, "", `watch ${apiPath}: connection closed`)));
      },
      (err: unknown) => finish(ac.signal.aborted ? (ac.signal.reason ?? err) : err),
    );
    return Promise.resolve(ac);
  }

  close(): void {
    this.agent.destroy();
  }
}
