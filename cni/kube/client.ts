// A small Kubernetes REST client for the CNI plugin. The plugin runs once per pod operation, so
// start-up cost dominates: @kubernetes/client-node takes ~0.7 s to load here, this takes ~1 ms.
// It speaks JSON over one keep-alive HTTPS connection, authenticates like kubectl (client
// certificate, bearer token or token file from a kubeconfig), and counts round trips.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import path from "node:path";

export class KubeError extends Error {
  override readonly name = "KubeError";
  constructor(
    /** HTTP status; 0 when the request never got an answer. */
    readonly status: number,
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  get unreachable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

interface Kubeconfig {
  "current-context"?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: Record<string, unknown> }[];
  users?: { name: string; user: Record<string, unknown> }[];
}

export interface Credentials {
  server: string;
  ca?: Buffer;
  insecure: boolean;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

function readMaybe(field: Record<string, unknown>, dataKey: string, fileKey: string, base: string): Buffer | undefined {
  const data = field[dataKey];
  if (typeof data === "string" && data !== "") return Buffer.from(data, "base64");
  const file = field[fileKey];
  if (typeof file === "string" && file !== "") return readFileSync(path.resolve(base, file));
  return undefined;
}

/** Reads the current context of a kubeconfig file (JSON, or YAML: its parser loads only then). */
export async function loadKubeconfig(file: string): Promise<Credentials> {
  let cfg: Kubeconfig;
  try {
    const text = readFileSync(file, "utf8");
    try {
      cfg = JSON.parse(text) as Kubeconfig;
    } catch {
      cfg = (await import("js-yaml")).load(text) as Kubeconfig;
    }
  } catch (err) {
    throw new KubeError(0, "BadKubeconfig", `reading kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  const base = path.dirname(file);
  const ctxName = cfg["current-context"];
  const ctx = cfg.contexts?.find((c) => c.name === ctxName)?.context ?? cfg.contexts?.[0]?.context;
  const cluster = cfg.clusters?.find((c) => c.name === ctx?.cluster)?.cluster ?? cfg.clusters?.[0]?.cluster;
  const user = cfg.users?.find((u) => u.name === ctx?.user)?.user ?? cfg.users?.[0]?.user ?? {};
  if (cluster === undefined || typeof cluster["server"] !== "string") {
    throw new KubeError(0, "BadKubeconfig", `kubeconfig ${file}: no cluster with a server for context ${String(ctxName)}`);
  }
  try {
    const tokenFile = user["tokenFile"];
    const token =
      typeof user["token"] === "string"
        ? user["token"]
        : typeof tokenFile === "string"
          ? readFileSync(path.resolve(base, tokenFile), "utf8").trim()
          : undefined;
    const ca = readMaybe(cluster, "certificate-authority-data", "certificate-authority", base);
    const cert = readMaybe(user, "client-certificate-data", "client-certificate", base);
    const key = readMaybe(user, "client-key-data", "client-key", base);
    return {
      server: cluster["server"].replace(/\/+$/, ""),
      insecure: cluster["insecure-skip-tls-verify"] === true,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(token !== undefined ? { token } : {}),
    };
  } catch (err) {
    throw new KubeError(0, "BadKubeconfig", `kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | undefined>;
}

export interface KubeResponse<T> {
  status: number;
  body: T;
}

export class KubeClient {
  /** Requests sent, for the benchmark's "API round trips per ADD". */
  roundTrips = 0;
  private readonly agent: Agent;

  constructor(
    private readonly creds: Credentials,
    private readonly timeoutMs = 10_000,
  ) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      ...(creds.ca ? { ca: creds.ca } : {}),
      ...(creds.cert ? { cert: creds.cert } : {}),
      ...(creds.key ? { key: creds.key } : {}),
      rejectUnauthorized: !creds.insecure,
    });
  }

  get server(): string {
    return this.creds.server;
  }

  /**
   * Sends a request; resolves for 2xx, rejects with KubeError otherwise (status 0: no answer).
   * Retried twice when the API server could not take it: no connection, or 429 (it says so
   * right after a CRD is created, "storage is (re)initializing"), after its Retry-After.
   */
  async request<T>(method: string, apiPath: string, opts: RequestOptions = {}): Promise<KubeResponse<T>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, apiPath, opts);
      } catch (err) {
        if (!(err instanceof KubeError) || attempt >= 2 || (err.status !== 0 && err.status !== 429)) throw err;
        await new Promise((r) => setTimeout(r, err.status === 429 ? 1000 : 100 * (attempt + 1)));
      }
    }
  }

  private once<T>(method: string, apiPath: string, opts: RequestOptions): Promise<KubeResponse<T>> {
    const q = Object.entries(opts.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined);
    const url = this.creds.server + apiPath + (q.length > 0 ? `?${new URLSearchParams(q).toString()}` : "");
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": "kvrf-cni" };
    if (this.creds.token !== undefined) headers["Authorization"] = `Bearer ${this.creds.token}`;
    if (payload) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(payload.length);
    }
    this.roundTrips++;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = text === "" ? {} : JSON.parse(text);
          } catch {
            // not JSON: keep the text for the error message
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve({ status, body: body as T });
          const st = body as { reason?: string; message?: string };
          reject(new KubeError(status, st.reason ?? "", `${method} ${apiPath}: ${status} ${st.message ?? text}`));
        });
        res.on("error", (err) => reject(new KubeError(0, "", `${method} ${apiPath}: ${err.message}`, { cause: err })));
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on("error", (err) => reject(new KubeError(0, "", `${method} ${apiPath} to ${this.creds.server}: ${err.message}`, { cause: err })));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
