// kvrf-install: the DaemonSet's installer for the CNI plugin (dist/kvrf-install, run by the image's
// Node). `install` runs once as an init container; `refresh-token` runs beside kvrfd as a sidecar
// and keeps the plugin's node-bound token fresh. Configured by environment variables, which the
// DaemonSet sets (docs/deploy.md lists them). No top-level await: the bundle is CommonJS.
import { readFileSync } from "node:fs";
import path from "node:path";
import { createLogger } from "../log.js";
import { ConflistError } from "./conflist.js";
import { inClusterClient, install, InstallError, refreshLoop, type InstallConfig } from "./install.js";
import { KubeError } from "../kube/client.js";

const usage = "usage: kvrf-install install|refresh-token   (configuration: environment, see docs/deploy.md)";

function env(name: string, dflt?: string): string {
  const v = process.env[name];
  if (v !== undefined && v !== "") return v;
  if (dflt !== undefined) return dflt;
  throw new InstallError(`${name} is required`);
}

function hostPort(host: string, port: string): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Installer settings from the environment, and the pod's service-account directory. */
function configFromEnv(): { cfg: InstallConfig; saDir: string; inCluster: string } {
  const saDir = env("KVRF_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount");
  const inCluster = `https://${hostPort(env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT", "443"))}`;
  let namespace = process.env["KVRF_NAMESPACE"];
  if (namespace === undefined || namespace === "") {
    try {
      namespace = readFileSync(path.join(saDir, "namespace"), "utf8").trim();
    } catch {
      namespace = "kvrf-system";
    }
  }
  const seconds = Number(env("KVRF_CNI_TOKEN_SECONDS", "86400"));
  if (!Number.isInteger(seconds) || seconds < 600 || seconds > 86400) {
    throw new InstallError(`KVRF_CNI_TOKEN_SECONDS must be an integer from 600 to 86400 (got ${process.env["KVRF_CNI_TOKEN_SECONDS"]})`);
  }
  const template = env("KVRF_CNI_CONFLIST_TEMPLATE", "/etc/kvrf/cni/conflist.template");
  const conflistName = env("KVRF_CNI_CONFLIST_NAME", "90-kvrf.conflist");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*\.conflist$/.test(conflistName)) {
    throw new InstallError(`KVRF_CNI_CONFLIST_NAME must be a file name ending in .conflist (got ${conflistName})`);
  }
  let caCert: Buffer;
  try {
    caCert = readFileSync(path.join(saDir, "ca.crt"));
  } catch (err) {
    throw new InstallError(`reading the cluster CA ${path.join(saDir, "ca.crt")}: ${(err as Error).message}`, { cause: err });
  }
  return {
    saDir,
    inCluster,
    cfg: {
      nodeName: env("NODE_NAME"),
      namespace,
      serviceAccount: env("KVRF_CNI_SERVICE_ACCOUNT", "kvrf-cni"),
      binarySource: env("KVRF_CNI_BINARY", "/opt/kvrf/bin/kvrf"),
      binDir: env("KVRF_CNI_BIN_DIR", "/host/opt/cni/bin"),
      confDir: env("KVRF_CNI_CONF_DIR", "/host/etc/cni/net.d"),
      hostConfDir: env("KVRF_CNI_HOST_CONF_DIR", "/etc/cni/net.d"),
      conflistName,
      conflistTemplate: template === "none" ? undefined : template,
      apiServer: env("KVRF_API_SERVER", inCluster),
      caCert,
      tokenSeconds: seconds,
    },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0];
  if (command !== "install" && command !== "refresh-token") {
    process.stderr.write(`${usage}\n`);
    return 2;
  }
  const log = createLogger({ bindings: { component: "kvrf-install", command } });
  try {
    const { cfg, saDir, inCluster } = configFromEnv();
    if (command === "install") {
      const client = await inClusterClient(saDir, inCluster);
      try {
        await install(client, cfg, log);
      } finally {
        client.close();
      }
      return 0;
    }
    const stop = new AbortController();
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => stop.abort());
    await refreshLoop({ cfg, log, signal: stop.signal, newClient: () => inClusterClient(saDir, inCluster) });
    return 0;
  } catch (err) {
    if (err instanceof InstallError || err instanceof ConflistError || err instanceof KubeError) {
      log.error({ err: err.message }, "kvrf-install failed");
      return 1;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kvrf-install: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
