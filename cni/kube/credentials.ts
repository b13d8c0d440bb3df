// Credentials for the CNI plugin's small Kubernetes client (client.ts): the current context of a
// kubeconfig, read like kubectl does (client certificate, bearer token or token file), and the
// client's error type. Apart from client.ts so that reading them does not load node:https and
// node:tls (~10 ms): the plugin reads its kubeconfig first and loads TLS while its IPAM plugin and
// kernel work run.
import { readFileSync } from "node:fs";
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
