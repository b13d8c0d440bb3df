// A small Kubernetes REST client for the CNI plugin. The plugin runs once per pod operation, so
// start-up cost dominates: @kubernetes/client-node takes ~0.7 s to load here, this takes ~1 ms.
// It speaks JSON over one keep-alive HTTPS connection, authenticates like kubectl (client
// certificate, bearer token or token file from a kubeconfig), and counts round trips.
import { Agent, request, type AgentOptions } from "node:https";
import { isIP } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { KubeError, type Credentials } from "./credentials.js";

export { KubeError, loadKubeconfig, type Credentials } from "./credentials.js";

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | undefined>;
}

export interface KubeResponse<T> {
  status: number;
  body: T;
}

/** An https.Agent that hands out one connection opened ahead of the first request. */
class EarlyAgent extends Agent {
  early: TLSSocket | undefined;

  override createConnection(...args: Parameters<Agent["createConnection"]>): ReturnType<Agent["createConnection"]> {
    const s = this.early;
    this.early = undefined;
    if (s !== undefined && !s.destroyed) return s;
    return super.createConnection(...args);
  }
}

export class KubeClient {
  /** Requests sent, for the benchmark's "API round trips per ADD". */
  roundTrips = 0;
  /** How long each request took until its answer, in ms (sending order), for the logs. */
  readonly requestMs: number[] = [];
  private readonly agent: EarlyAgent;
  private readonly tls: AgentOptions;

  constructor(
    private readonly creds: Credentials,
    private readonly timeoutMs = 10_000,
  ) {
    this.tls = {
      ...(creds.ca ? { ca: creds.ca } : {}),
      ...(creds.cert ? { cert: creds.cert } : {}),
      ...(creds.key ? { key: creds.key } : {}),
      rejectUnauthorized: !creds.insecure,
    };
    this.agent = new EarlyAgent({ keepAlive: true, maxSockets: 4, ...this.tls });
  }

  get server(): string {
    return this.creds.server;
  }

  /**
   * Opens the TLS connection to the API server now, without sending anything (no round trip is
   * counted), so that the handshake overlaps the caller's local work and the first request finds
   * the connection ready. If it fails, the first request simply connects again.
   */
  preconnect(): void {
    if (this.agent.early !== undefined) return;
    let url: URL;
    try {
      url = new URL(this.creds.server);
    } catch {
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, "");
    let socket: TLSSocket;
    try {
      socket = connect({ ...this.tls, host, port: Number(url.port || 443), ...(isIP(host) === 0 ? { servername: host } : {}), ALPNProtocols: ["http/1.1"] });
    } catch {
      return; // e.g. an unusable key: the first request reports it
    }
    // As http.Agent's own connections: no Nagle delay for the request after the handshake.
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    this.agent.early = socket;
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
    const slot = this.roundTrips++;
    const t0 = performance.now();
    const took = (): void => {
      this.requestMs[slot] = Math.round((performance.now() - t0) * 10) / 10;
    };
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          took();
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
    this.agent.early?.destroy();
    this.agent.early = undefined;
    this.agent.destroy();
  }
}
