// What the DaemonSet's installer does on a node: put `kvrf` into the host's CNI bin directory,
// give it credentials (a node-bound kvrf-cni token and a kubeconfig pointing at it), and, when a
// template is configured, write the node's conflist. The conflist comes last: once it exists the
// runtime may call the plugin, which then needs its binary and credentials in place.
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { locatorAnnotation } from "../../shared/api-types.js";
import { KubeClient, KubeError } from "../kube/client.js";
import type { Logger } from "../log.js";
import { ConflistError, mayReplace, renderConflist } from "./conflist.js";
import { copyAtomic, writeAtomic, type WriteResult } from "./files.js";
import { readNode, refreshDelay, requestNodeBoundToken, tokenTimes, type IssuedToken, type NodeInfo } from "./token.js";


export const fileNames = { binary: "kvrf", kubeconfig: "kvrf.kubeconfig", token: "kvrf.token" } as const;

export interface InstallConfig {
  nodeName: string;
  /** Namespace and name of the CNI's service account. */
  namespace: string;
  serviceAccount: string;
  /** The plugin executable shipped in the image. */
  binarySource: string;
  /** The host's CNI directories as mounted in this container. */
  binDir: string;
  confDir: string;
  /** The conf directory as the host sees it: paths written into files the plugin reads. */
  hostConfDir: string;
  conflistName: string;
  /** Template file; undefined or absent: write no conflist (e.g. Multus supplies the config). */
  conflistTemplate: string | undefined;
  /** API server URL the plugin uses, and its CA. */
  apiServer: string;
  caCert: Buffer;
  tokenSeconds: number;
}

export class InstallError extends Error {
  override readonly name = "InstallError";
}

/** The plugin's kubeconfig: the token is a file beside it, re-read on every invocation. */
export function cniKubeconfig(server: string, ca: Buffer, tokenFile: string): string {
  const cfg = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kvrf", cluster: { server, "certificate-authority-data": ca.toString("base64") } }],
    users: [{ name: "kvrf-cni", user: { tokenFile } }],
    contexts: [{ name: "kvrf", context: { cluster: "kvrf", user: "kvrf-cni" } }],
    "current-context": "kvrf",
  };
  return `${JSON.stringify(cfg, null, 2)}\n`;
}

export async function installBinary(cfg: InstallConfig): Promise<WriteResult> {
  try {
    await access(cfg.binarySource, constants.R_OK);
  } catch (err) {
    throw new InstallError(`reading the plugin ${cfg.binarySource}: ${(err as Error).message}`, { cause: err });
  }
  return copyAtomic(cfg.binarySource, path.join(cfg.binDir, fileNames.binary), 0o755);
}

/** Requests a fresh node-bound token and writes it, then the kubeconfig that points at it. */
export async function installCredentials(client: KubeClient, cfg: InstallConfig, node: NodeInfo): Promise<IssuedToken> {
  const issued = await requestNodeBoundToken(client, {
    namespace: cfg.namespace,
    serviceAccount: cfg.serviceAccount,
    nodeName: cfg.nodeName,
    nodeUid: node.uid,
    expirationSeconds: cfg.tokenSeconds,
  });
  await writeAtomic(path.join(cfg.confDir, fileNames.token), `${issued.token}\n`, 0o600);
  const kubeconfig = cniKubeconfig(cfg.apiServer, cfg.caCert, path.join(cfg.hostConfDir, fileNames.token));
  await writeAtomic(path.join(cfg.confDir, fileNames.kubeconfig), kubeconfig, 0o600);
  return issued;
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Writes the conflist from the template; "skipped" without one. Refuses another plugin's file. */
export async function installConflist(cfg: InstallConfig, node: NodeInfo): Promise<WriteResult | "skipped"> {
  const template = cfg.conflistTemplate === undefined ? undefined : await readOptional(cfg.conflistTemplate);
  if (template === undefined) return "skipped";
  const target = path.join(cfg.confDir, cfg.conflistName);
  const rendered = renderConflist(template, {
    vars: {
      NODE_NAME: cfg.nodeName,
      KUBECONFIG: path.join(cfg.hostConfDir, fileNames.kubeconfig),
      SRV6_LOCATOR: node.annotations[locatorAnnotation],
    },
    annotations: node.annotations,
  });
  if (!mayReplace(await readOptional(target))) {
    throw new ConflistError(
      `${path.join(cfg.hostConfDir, cfg.conflistName)} exists and is not a kvrf conflist; refusing to overwrite another plugin's ` +
        `network configuration (remove it, or set KVRF_CNI_CONFLIST_NAME to another file name)`,
    );
  }
  return writeAtomic(target, rendered, 0o644);
}

/** The whole installation, in the order that keeps the node usable at every step. */
export async function install(client: KubeClient, cfg: InstallConfig, log: Logger): Promise<void> {
  const binary = await installBinary(cfg);
  log.info({ file: path.join(cfg.binDir, fileNames.binary), result: binary }, "plugin binary");
  const node = await readNode(client, cfg.nodeName);
  const issued = await installCredentials(client, cfg, node);
  log.info({ serviceAccount: `${cfg.namespace}/${cfg.serviceAccount}`, expires: issued.expiresAt.toISOString() }, "node-bound token and kubeconfig");
  const conflist = await installConflist(cfg, node);
  log.info({ file: path.join(cfg.confDir, cfg.conflistName), result: conflist }, "conflist");
}

export interface RefreshOptions {
  cfg: InstallConfig;
  log: Logger;
  /** A client with the installer's own (kubelet-rotated) credentials, made anew for each refresh. */
  newClient: () => Promise<KubeClient>;
  signal: AbortSignal;
  now?: () => Date;
  /** Upper bound of the wait after failures. */
  maxBackoffMs?: number;
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch((err: unknown) => {
    if ((err as Error).name !== "AbortError") throw err;
  });
}

/** Milliseconds until the token on disk should be replaced (0: now, e.g. missing or unreadable). */
export async function initialRefreshDelay(cfg: InstallConfig, now: Date): Promise<number> {
  const token = await readOptional(path.join(cfg.confDir, fileNames.token));
  const times = token === undefined ? undefined : tokenTimes(token.trim());
  return times === undefined ? 0 : refreshDelay(now, times.issuedAt, times.expiresAt);
}

/**
 * Keeps the plugin's token fresh until `signal` aborts: replaces it at half its lifetime, and
 * after a failure retries with backoff (5 s doubling, at most maxBackoffMs) while the old token
 * is still valid.
 */
export async function refreshLoop(o: RefreshOptions): Promise<void> {
  const now = o.now ?? ((): Date => new Date());
  const maxBackoff = o.maxBackoffMs ?? 300_000;
  let delay = await initialRefreshDelay(o.cfg, now());
  let failures = 0;
  for (;;) {
    await pause(delay, o.signal);
    if (o.signal.aborted) return;
    let client: KubeClient | undefined;
    try {
      client = await o.newClient();
      const started = now();
      const issued = await installCredentials(client, o.cfg, await readNode(client, o.cfg.nodeName));
      delay = refreshDelay(now(), started, issued.expiresAt);
      failures = 0;
      o.log.info({ expires: issued.expiresAt.toISOString(), nextInSeconds: Math.round(delay / 1000) }, "refreshed the plugin's token");
    } catch (err) {
      failures++;
      delay = Math.min(maxBackoff, 5000 * 2 ** Math.min(failures - 1, 16));
      o.log.warn({ err: (err as Error).message, failures, retryInSeconds: Math.round(delay / 1000) }, "refreshing the plugin's token failed");
    } finally {
      client?.close();
    }
  }
}

/** A client with this pod's service-account credentials (re-read: the kubelet rotates them). */
export async function inClusterClient(saDir: string, server: string): Promise<KubeClient> {
  try {
    const [token, ca] = await Promise.all([readFile(path.join(saDir, "token"), "utf8"), readFile(path.join(saDir, "ca.crt"))]);
    return new KubeClient({ server, ca, token: token.trim(), insecure: false });
  } catch (err) {
    throw new KubeError(0, "NoCredentials", `reading this pod's service-account credentials in ${saDir}: ${(err as Error).message}`, { cause: err });
  }
}
