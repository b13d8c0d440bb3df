// Drives the real plugin as kubelet's runtime would: cnitool (libcni) inside a namespace that
// plays the node, with dist/kvrf and the reference IPAM plugins in CNI_PATH and conflists in
// NETCONFPATH. The API server is reached through the namespace's forwarder (api-bridge.ts).
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cniBinDir, repoRoot, tool } from "./tools.js";

export interface CniRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout when it is JSON. */
  json: Record<string, unknown> | undefined;
}

export interface CniNodeOptions {
  /** Namespace acting as the node. */
  netns: string;
  dir: string;
}

export class CniNode {
  readonly binDir: string;
  readonly confDir: string;
  readonly ipamDir: string;

  constructor(private readonly opts: CniNodeOptions) {
    const kvrf = path.join(repoRoot, "dist/kvrf");
    if (!existsSync(kvrf)) throw new Error(`${kvrf} not found: run \`npm run build\` first`);
    this.binDir = path.join(opts.dir, "bin");
    this.confDir = path.join(opts.dir, "net.d");
    this.ipamDir = path.join(opts.dir, "ipam");
    mkdirSync(this.binDir, { recursive: true });
    mkdirSync(this.confDir, { recursive: true });
    mkdirSync(this.ipamDir, { recursive: true });
    if (!existsSync(path.join(this.binDir, "kvrf"))) symlinkSync(kvrf, path.join(this.binDir, "kvrf"));
  }

  /** Writes a conflist named `name` holding the given plugin configs. */
  writeConflist(name: string, plugins: Record<string, unknown>[], cniVersion = "1.1.0"): void {
    writeFileSync(path.join(this.confDir, `${name}.conflist`), JSON.stringify({ cniVersion, name, plugins }, null, 2));
  }

  /** host-local IPAM config with its lease files under this node's directory. */
  hostLocal(ranges: { subnet: string; rangeStart?: string; rangeEnd?: string }[][], dataDirName = "default"): Record<string, unknown> {
    return { type: "host-local", dataDir: path.join(this.ipamDir, dataDirName), ranges };
  }

  /** Lease files host-local holds under a dataDir (everything but its bookkeeping). */
  leaseDir(dataDirName = "default"): string {
    return path.join(this.ipamDir, dataDirName);
  }

  /** `cnitool VERB NETWORK PODNS` inside the node namespace. */
  cnitool(verb: "add" | "del" | "check" | "status" | "gc", network: string, podNetns: string, opts: { ifName?: string; args?: string } = {}): Promise<CniRun> {
    const env = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      NETCONFPATH: this.confDir,
      CNI_PATH: `${this.binDir}:${cniBinDir()}`,
      CNI_IFNAME: opts.ifName ?? "eth0",
      ...(opts.args !== undefined ? { CNI_ARGS: opts.args } : {}),
    };
    return new Promise((resolve) => {
      execFile("ip", ["netns", "exec", this.opts.netns, tool("cnitool"), verb, network, podNetns], { env, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
        resolve({ code, stdout, stderr, json });
      });
    });
  }
}

/**
 * Runs the plugin named by `config.type` (dist/kvrf for "kvrf", else a reference plugin)
 * directly in the node namespace, the way libcni execs a plugin (env + stdin), to see its
 * exact exit status and CNI error JSON.
 */
export function runPlugin(
  node: CniNode,
  netns: string,
  verb: string,
  config: Record<string, unknown>,
  vars: { containerId?: string; podNetns?: string; ifName?: string; args?: string } = {},
): Promise<CniRun> {
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    CNI_COMMAND: verb,
    CNI_PATH: `${node.binDir}:${cniBinDir()}`,
    ...(vars.containerId !== undefined ? { CNI_CONTAINERID: vars.containerId } : {}),
    ...(vars.podNetns !== undefined ? { CNI_NETNS: vars.podNetns } : {}),
    ...(vars.ifName !== undefined ? { CNI_IFNAME: vars.ifName } : {}),
    ...(vars.args !== undefined ? { CNI_ARGS: vars.args } : {}),
  };
  return new Promise((resolve) => {
    const type = typeof config["type"] === "string" ? config["type"] : "kvrf";
    const binary = type === "kvrf" ? path.join(node.binDir, "kvrf") : path.join(cniBinDir(), type);
    const child = execFile("ip", ["netns", "exec", netns, binary], { env, encoding: "utf8", timeout: 120_000 }, (err, stdout, stderr) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout, stderr, json });
    });
    child.stdin?.end(JSON.stringify(config));
  });
}

/** libcni's container ID for a cnitool invocation: derived from the netns path. */
export async function cnitoolContainerId(netnsPath: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  return `cnitool-${createHash("sha512").update(netnsPath).digest("hex").slice(0, 20)}`;
}
