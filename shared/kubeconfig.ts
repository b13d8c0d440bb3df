// The one reader of the kubeconfig file format, for the CNI plugin (cni/kube/credentials.ts) and
// kvrfd (reconciler/kube/kube-client.ts). It resolves the current context to its cluster and user the
// way kubectl does and reads what a node's client can use: the server, CA, client certificate and
// key (inline `*-data`, or a file relative to the kubeconfig's directory), a token or token file,
// insecure-skip-tls-verify and tls-server-name. It runs nothing: user fields it does not interpret
// (credential plugins `exec` and `auth-provider`, basic auth, impersonation) are reported in
// `unsupported`, for the caller to refuse in its own words.
//
// Only node:fs and node:path: the CNI plugin reads its kubeconfig before it loads node:https (see
// cni/kube/credentials.ts). YAML kubeconfigs load js-yaml, and only they do.
import { readFileSync } from "node:fs";
import path from "node:path";

/** A kubeconfig that cannot be read or used (unless the caller makes its own error of it). */
export class KubeconfigError extends Error {
  override readonly name = "KubeconfigError";
}

/** Makes the error thrown for an unusable kubeconfig; each client passes its own (KubeError). */
export type KubeconfigFailure = (message: string, options?: ErrorOptions) => Error;

const kubeconfigError: KubeconfigFailure = (message, options) => new KubeconfigError(message, options);

/** What the current context of a kubeconfig says about reaching its API server. */
export interface Kubeconfig {
  /** The cluster's server, without trailing slashes (it may carry a path prefix). */
  server: string;
  insecure: boolean;
  /** The cluster's tls-server-name. */
  servername?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** A bearer token given inline. */
  token?: string;
  /** Without `token`: the absolute path of a file holding the token (the caller reads it when it needs to). */
  tokenFile?: string;
  /** The user's fields that are set but not interpreted here, e.g. ["exec"]; empty for a usable user. */
  unsupported: string[];
}

/** The user fields read here; any other that is set lands in `unsupported`. */
const supportedUserFields: ReadonlySet<string> = new Set([
  "client-certificate",
  "client-certificate-data",
  "client-key",
  "client-key-data",
  "token",
  "tokenFile",
]);

type Fields = Record<string, unknown>;

const isFields = (v: unknown): v is Fields => typeof v === "object" && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === "string" && v !== "";

/** The named entries of `contexts`, `clusters` or `users`: [name, body] (body undefined when absent or not a mapping). */
function entries(list: unknown, key: string): [unknown, Fields | undefined][] {
  if (!Array.isArray(list)) return [];
  return list.filter(isFields).map((e): [unknown, Fields | undefined] => [e["name"], isFields(e[key]) ? e[key] : undefined]);
}

/** Inline base64 `dataKey`, else the file `fileKey` relative to `base`, else undefined. */
function readData(fields: Fields, dataKey: string, fileKey: string, base: string): Buffer | undefined {
  const data = fields[dataKey];
  if (nonEmpty(data)) return Buffer.from(data, "base64");
  const file = fields[fileKey];
  if (nonEmpty(file)) return readFileSync(path.resolve(base, file));
  return undefined;
}

async function parse(file: string, fail: KubeconfigFailure): Promise<Fields> {
  let cfg: unknown;
  try {
    const text = readFileSync(file, "utf8");
    try {
      cfg = JSON.parse(text);
    } catch {
      cfg = (await import("js-yaml")).load(text);
    }
  } catch (err) {
    throw fail(`reading kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!isFields(cfg)) throw fail(`reading kubeconfig ${file}: not a kubeconfig (no mapping at the top level)`);
  return cfg;
}

/**
 * Reads the current context of the kubeconfig `file` (JSON or YAML). Without a current-context,
 * the first context; without contexts, the first cluster and user. Throws `fail`'s error
 * (KubeconfigError by default) when the file cannot be read or parsed, the current context or its
 * cluster's server is missing, or a CA, certificate or key file cannot be read. The token file is
 * not read here.
 */
export async function readKubeconfig(file: string, fail: KubeconfigFailure = kubeconfigError): Promise<Kubeconfig> {
  const cfg = await parse(file, fail);
  const ctxName = cfg["current-context"];
  const contexts = entries(cfg["contexts"], "context");
  const ctx = nonEmpty(ctxName) ? contexts.find(([name]) => name === ctxName)?.[1] : contexts[0]?.[1];
  if (ctx === undefined && contexts.length > 0) throw fail(`kubeconfig ${file}: no context ${String(ctxName)}`);
  const pick = (list: [unknown, Fields | undefined][], name: unknown): Fields | undefined =>
    ctx === undefined ? list[0]?.[1] : list.find(([n]) => n === name)?.[1];
  const cluster = pick(entries(cfg["clusters"], "cluster"), ctx?.["cluster"]);
  const user = pick(entries(cfg["users"], "user"), ctx?.["user"]) ?? {};
  const server = cluster?.["server"];
  if (cluster === undefined || !nonEmpty(server)) {
    throw fail(`kubeconfig ${file}: no cluster with a server for context ${String(ctxName)}`);
  }
  const base = path.dirname(file);
  const read = (fields: Fields, dataKey: string, fileKey: string): Buffer | undefined => {
    try {
      return readData(fields, dataKey, fileKey, base);
    } catch (err) {
      throw fail(`kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const ca = read(cluster, "certificate-authority-data", "certificate-authority");
  const cert = read(user, "client-certificate-data", "client-certificate");
  const key = read(user, "client-key-data", "client-key");
  const { token, tokenFile } = user;
  const servername = cluster["tls-server-name"];
  return {
    server: server.replace(/\/+$/, ""),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    ...(nonEmpty(servername) ? { servername } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(nonEmpty(token) ? { token } : nonEmpty(tokenFile) ? { tokenFile: path.resolve(base, tokenFile) } : {}),
    unsupported: Object.keys(user).filter((k) => !supportedUserFields.has(k) && user[k] !== undefined && user[k] !== null && user[k] !== ""),
  };
}
