// kvrfd entry point: flags → config, JSON logs on stderr, the daemon, and a graceful SIGTERM that
// finishes running reconciles and leaves gobgpd and the kernel as they are (the next kvrfd picks
// up from there without churn). No top-level await: the bundle is CommonJS.
import { pino } from "pino";
import { ConfigError, parseConfig } from "./config.js";
import { Daemon } from "./daemon.js";
import { connectSpeaker } from "./gobgp/connect.js";
import { loadKubeAccess } from "./kube/kube-client.js";
import { prestop } from "./prestop.js";

const version = process.env["KVRF_VERSION"] ?? "0.1.0";

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === "prestop") {
    // The container's preStop hook (prestop.ts): --gobgp-socket or KVRFD_GOBGP_SOCKET.
    const i = argv.indexOf("--gobgp-socket");
    const socket = (i > 0 ? argv[i + 1] : undefined) ?? process.env["KVRFD_GOBGP_SOCKET"] ?? "/run/gobgp/gobgpd.sock";
    await prestop(socket.replace(/^unix:\/\//, ""), (line) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
    return 0;
  }
  let cfg;
  try {
    cfg = await parseConfig(argv, version);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kvrfd: ${err.message}\nRun kvrfd --help for the flags.\n`);
      return 2;
    }
    throw err;
  }
  const log = pino({ level: cfg.logLevel, base: { node: cfg.nodeName }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
  const socket = cfg.gobgpSocket;
  let kubeAccess;
  try {
    kubeAccess = await loadKubeAccess(cfg.kubeconfig);
  } catch (err) {
    log.fatal({ err: err instanceof Error ? err.message : String(err) }, "cannot load Kubernetes credentials");
    log.flush();
    return 1;
  }
  log.info({ server: kubeAccess.server, credentials: kubeAccess.source }, "Kubernetes API");
  const daemon = new Daemon(cfg, log, { kubeAccess, connect: () => connectSpeaker(socket, { timeoutMs: cfg.speakerTimeoutSeconds * 1000 }) });

  const stopped = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve(sig));
  });
  await daemon.start();
  const sig = await stopped;
  log.info({ signal: sig }, "signal received");
  // A second signal, or a shutdown that hangs, must not keep the pod terminating forever.
  const force = setTimeout(() => {
    log.error("shutdown took too long; exiting");
    process.exit(1);
  }, 20_000);
  force.unref();
  await daemon.stop();
  log.flush();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sockets of client libraries (HTTP/2 to gobgpd, keep-alive to the API server) may linger.
    if (code === 0) setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(`kvrfd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
