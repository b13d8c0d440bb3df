// kvrfd's configuration: command-line flags, each with an environment-variable default (the
// DaemonSet sets env, a person at a shell passes flags), validated once into a typed Config.
import yargs from "yargs";
import * as z from "zod/mini";
import { en } from "zod/locales";

export interface Config {
  nodeName: string;
  kubeconfig?: string;
  gobgpSocket: string;
  underlayInterface?: string;
  nextHop?: string;
  netns?: string;
  healthAddress: string;
  healthPort: number;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
  workers: number;
  resyncSeconds: number;
  stallSeconds: number;
  probeSeconds: number;
  routeHoldSeconds: number;
  ribDebounceMs: number;
  apiTimeoutSeconds: number;
  speakerTimeoutSeconds: number;
  passwordRefreshSeconds: number;
  /** Serve /debug/v1/snapshot to callers the API server authenticates and authorises (reconciler/debug/). */
  debugEndpoint: boolean;
}

// zod/mini: the same validation as zod's chained API at 21 KiB of bundle instead of 460 KiB
// (measured: +14 MiB of kvrfd's RSS for the full one; every bundled MB costs memory, docs/kvrfd.md).
z.config(en()); // zod/mini has no messages of its own ("Invalid input")
const schema = z.object({
  nodeName: z.string({ error: "--node-name (or NODE_NAME) is required" }).check(z.minLength(1), z.maxLength(253)),
  kubeconfig: z.optional(z.string().check(z.minLength(1))),
  gobgpSocket: z.string().check(z.regex(/^(unix:\/\/)?\//, "--gobgp-socket must be an absolute path or unix:///path")),
  underlayInterface: z.optional(z.string().check(z.minLength(1), z.maxLength(15))),
  nextHop: z.optional(z.ipv6({ error: "--next-hop must be an IPv6 address" })),
  netns: z.optional(z.string().check(z.minLength(1))),
  healthAddress: z.string().check(z.minLength(1)),
  healthPort: z.int().check(z.gte(0), z.lte(65535)),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]),
  workers: z.int().check(z.gte(1), z.lte(256)),
  resyncSeconds: z.number().check(z.gte(1)),
  stallSeconds: z.number().check(z.gte(5)),
  probeSeconds: z.number().check(z.gte(0.1)),
  routeHoldSeconds: z.number().check(z.gte(0)),
  ribDebounceMs: z.number().check(z.gte(0)),
  apiTimeoutSeconds: z.number().check(z.gte(1)),
  speakerTimeoutSeconds: z.number().check(z.gte(0.1)),
  passwordRefreshSeconds: z.number().check(z.gte(0)),
  debugEndpoint: z.boolean(),
});

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : v;
};
const envNumber = (name: string, dflt: number): number => {
  const v = env(name);
  return v === undefined ? dflt : Number(v);
};

/** Parses argv (without node and script) into a Config, or throws ConfigError naming the flag. */
export async function parseConfig(argv: readonly string[], version: string): Promise<Config> {
  const args = await yargs([...argv])
    .scriptName("kvrfd")
    .usage("$0 [flags]\n\nReconciles this node's BGPVRFInstances into gobgpd and kernel routes.")
    .version(version)
    .strict()
    .env(false)
    .option("node-name", { type: "string", default: env("NODE_NAME"), describe: "This node's name (env NODE_NAME)" })
    .option("kubeconfig", { type: "string", default: env("KUBECONFIG"), describe: "Kubeconfig file; in-cluster config when unset (env KUBECONFIG)" })
    .option("gobgp-socket", {
      type: "string",
      default: env("KVRFD_GOBGP_SOCKET") ?? "/run/gobgp/gobgpd.sock",
      describe: "gobgpd gRPC API unix socket (env KVRFD_GOBGP_SOCKET)",
    })
    .option("underlay-interface", { type: "string", default: env("KVRFD_UNDERLAY_INTERFACE"), describe: "Underlay link for seg6 routes (env KVRFD_UNDERLAY_INTERFACE)" })
    .option("next-hop", {
      type: "string",
      default: env("KVRFD_NEXT_HOP"),
      describe: "Underlay IPv6 address advertised as next hop; default: the underlay link's first global IPv6 address (env KVRFD_NEXT_HOP)",
    })
    .option("netns", { type: "string", default: env("KVRFD_NETNS"), describe: "Named network namespace for kernel routes; default: kvrfd's own (env KVRFD_NETNS)" })
    .option("health-address", { type: "string", default: env("KVRFD_HEALTH_ADDRESS") ?? "0.0.0.0", describe: "Address of /healthz, /readyz, /metrics (env KVRFD_HEALTH_ADDRESS)" })
    .option("health-port", { type: "number", default: envNumber("KVRFD_HEALTH_PORT", 9477), describe: "Port of /healthz, /readyz, /metrics; 0 picks one (env KVRFD_HEALTH_PORT)" })
    .option("log-level", { type: "string", default: env("KVRFD_LOG_LEVEL") ?? "info", describe: "trace|debug|info|warn|error|fatal (env KVRFD_LOG_LEVEL)" })
    .option("workers", { type: "number", default: envNumber("KVRFD_WORKERS", 64), describe: "Concurrent reconciles, each on a different key (env KVRFD_WORKERS)" })
    .option("resync-period", { type: "number", default: envNumber("KVRFD_RESYNC_PERIOD", 300), describe: "Seconds between full relists and passes over everything (env KVRFD_RESYNC_PERIOD)" })
    .option("stall-timeout", { type: "number", default: envNumber("KVRFD_STALL_TIMEOUT", 120), describe: "Seconds without API-server activity before an informer relists (env KVRFD_STALL_TIMEOUT)" })
    .option("probe-interval", { type: "number", default: envNumber("KVRFD_PROBE_INTERVAL", 5), describe: "Seconds between gobgpd liveness probes (env KVRFD_PROBE_INTERVAL)" })
    .option("route-hold", {
      type: "number",
      default: envNumber("KVRFD_ROUTE_HOLD", 30),
      describe: "Seconds kernel routes are kept after gobgpd lost its state, while BGP relearns them (env KVRFD_ROUTE_HOLD)",
    })
    .option("rib-debounce", { type: "number", default: envNumber("KVRFD_RIB_DEBOUNCE_MS", 50), describe: "Milliseconds to gather RIB events before a routes pass (env KVRFD_RIB_DEBOUNCE_MS)" })
    .option("api-timeout", { type: "number", default: envNumber("KVRFD_API_TIMEOUT", 15), describe: "Seconds per Kubernetes API request (env KVRFD_API_TIMEOUT)" })
    .option("speaker-timeout", { type: "number", default: envNumber("KVRFD_SPEAKER_TIMEOUT", 10), describe: "Seconds per gobgpd call (env KVRFD_SPEAKER_TIMEOUT)" })
    .option("password-refresh", {
      type: "number",
      default: envNumber("KVRFD_PASSWORD_REFRESH", 60),
      describe: "Seconds between re-reads of BGP password Secrets (a rotated password reaches gobgpd within this); 0: only on changes of the BGPInstance (env KVRFD_PASSWORD_REFRESH)",
    })
    .option("debug-endpoint", {
      type: "boolean",
      default: (env("KVRFD_DEBUG_ENDPOINT") ?? "true") !== "false",
      describe: `Serve ${"/debug/v1/snapshot"} (gobgpd's and the kernel's routes, read-only) on the health port to callers the API server authenticates (TokenReview, audience kvrf.dev/kvrfd) and authorises (get kvrf.dev nodes/debug); --no-debug-endpoint turns it off (env KVRFD_DEBUG_ENDPOINT)`,
    })
    .fail((msg, err) => {
      throw new ConfigError(err?.message ?? msg);
    })
    .parseAsync();

  const raw = {
    nodeName: args["node-name"],
    kubeconfig: args.kubeconfig,
    gobgpSocket: args["gobgp-socket"],
    underlayInterface: args["underlay-interface"],
    nextHop: args["next-hop"],
    netns: args.netns,
    healthAddress: args["health-address"],
    healthPort: args["health-port"],
    logLevel: args["log-level"],
    workers: args.workers,
    resyncSeconds: args["resync-period"],
    stallSeconds: args["stall-timeout"],
    probeSeconds: args["probe-interval"],
    routeHoldSeconds: args["route-hold"],
    ribDebounceMs: args["rib-debounce"],
    apiTimeoutSeconds: args["api-timeout"],
    speakerTimeoutSeconds: args["speaker-timeout"],
    passwordRefreshSeconds: args["password-refresh"],
    debugEndpoint: args["debug-endpoint"],
  };
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  }
  const out: Config = { ...parsed.data } as Config;
  return out;
}
