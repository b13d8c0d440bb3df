// /healthz (the process is alive and not wedged), /readyz (kvrfd can do its job: informers synced,
// gobgpd connected) and /metrics on one small HTTP server.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface Check {
  ok: boolean;
  detail: string;
}

export interface HealthSources {
  healthy(): Check[];
  ready(): Check[];
  registry: Registry;
  /** Read-only debug paths (reconciler/debug/), each doing its own authentication. */
  debug?: Record<string, (req: IncomingMessage) => Promise<{ status: number; body: string }>>;
}

export class HealthServer {
  private server: Server | undefined;

  constructor(private readonly src: HealthSources) {}

  /** Listens and resolves with the bound port (useful with port 0). */
  listen(port: number, address: string): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const verbose = (req.url ?? "").includes("verbose");
      const answer = (checks: Check[]): void => {
        const ok = checks.every((c) => c.ok);
        res.writeHead(ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8" });
        const lines = checks.map((c) => `[${c.ok ? "+" : "-"}] ${c.detail}`);
        res.end(ok && !verbose ? "ok\n" : `${lines.join("\n")}\n${ok ? "ok" : "failed"}\n`);
      };
      if (path === "/healthz" || path === "/livez") return answer(this.src.healthy());
      if (path === "/readyz") return answer(this.src.ready());
      if (path === "/metrics") {
        this.src.registry.metrics().then(
          (body) => {
            res.writeHead(200, { "content-type": this.src.registry.contentType });
            res.end(body);
          },
          (err: unknown) => {
            res.writeHead(500);
            res.end(String(err));
          },
        );
        return;
      }
      const debug = path === undefined ? undefined : this.src.debug?.[path];
      if (debug !== undefined) {
        if (req.method !== "GET") {
          res.writeHead(405, { allow: "GET" });
          res.end("GET only\n");
          return;
        }
        debug(req).then(
          ({ status, body }) => {
            res.writeHead(status, { "content-type": status === 200 ? "application/json" : "text/plain; charset=utf-8", "cache-control": "no-store" });
            res.end(body);
          },
          (err: unknown) => {
            res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
            res.end(`${err instanceof Error ? err.message : String(err)}\n`);
          },
        );
        return;
      }
      res.writeHead(404);
      res.end("not found\n");
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, address, () => resolve((server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    const s = this.server;
    if (s === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
