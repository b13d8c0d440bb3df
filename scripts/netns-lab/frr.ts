// Runs FRR (Debian's frr 8.4: zebra + bgpd) inside a network namespace, without systemd (FACTS
// §9): each daemon is our own child (`ip netns exec NS /usr/lib/frr/<d> -N NAME`; with netnsVrfs,
// zebra behind `unshare --mount` and the others `nsenter`ing its namespaces) with a pidfile,
// so it is stopped by its pid; -N gives it its own pathspace (/etc/frr/NAME, /var/run/frr/NAME,
// both owned by frr), and `vtysh -N NAME` talks to it. No TCP vty (-P 0). A test's FRR is its
// child (always `await stop()`); the lab's route reflector is detached and outlives the command
// that started it (scripts/netns-lab/lab.ts stops it by pidfile, then removeFrrPathspace).
import { execFile } from "node:child_process";
import { accessSync, chownSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { spawnDaemon, tail, waitFor, type Daemon } from "../lib/process.js";

const run = promisify(execFile);
const frrLib = "/usr/lib/frr";

export type FrrDaemon = "zebra" | "bgpd" | "staticd";

export interface StartFrrOptions {
  /** Pathspace name (-N): [A-Za-z0-9_-], unique per test run (it names /etc/frr/NAME). */
  name: string;
  /** Network namespace to run in (`ip netns exec NAME`). */
  netns: string;
  /** frr.conf text (integrated configuration, read by every daemon). */
  config: string;
  /** Directory for the daemons' logs and pidfiles (kept with the test run). */
  dir: string;
  /** Default zebra and bgpd; zebra is always started first. */
  daemons?: FrrDaemon[];
  /** Configuration profile (-F); default "datacenter" (FACTS §9). */
  profile?: string;
  /** Own session, no hold on our event loop: the daemons outlive this process (the lab). */
  detached?: boolean;
  /**
   * VRFs as network namespaces (zebra --vrfwnetns), for kernels without VRF devices: zebra makes
   * a VRF of every namespace in /run/netns, so the daemons run in a private mount namespace with
   * their own /run/netns holding only these (named [A-Za-z0-9_-]), created empty with lo up and
   * gone with the daemons. Configure them with `vrfIp`.
   */
  netnsVrfs?: string[];
}

export interface Frr {
  readonly name: string;
  /** Runs vtysh commands (each a `-c`) against this instance; rejects with vtysh's output. */
  vtysh(...commands: string[]): Promise<string>;
  /** One `show … json` command, parsed. */
  json<T>(command: string): Promise<T>;
  /** `ip -n VRF …` for one of the netnsVrfs (inside the daemons' mount namespace). */
  vrfIp(vrf: string, ...args: string[]): Promise<string>;
  /** SIGTERM to each daemon (bgpd first), then removes /etc/frr/NAME and /var/run/frr/NAME. Idempotent. */
  stop(): Promise<void>;
}

/** Why FRR cannot run here (undefined when it can): the binaries, the frr user, root. */
export function frrMissing(): string | undefined {
  try {
    for (const d of ["zebra", "bgpd"]) accessSync(path.join(frrLib, d), constants.X_OK);
    accessSync("/usr/bin/vtysh", constants.X_OK);
  } catch {
    return "FRR is not installed (apt-get install frr)";
  }
  try {
    userInfo();
  } catch {
    return "no user information";
  }
  if (process.getuid?.() !== 0) return "FRR tests need root (network namespaces, the frr user)";
  return undefined;
}

/** The pathspace directories of an FRR instance named `name` (-N). */
export function frrPathspace(name: string): { etc: string; run: string } {
  return { etc: path.join("/etc/frr", name), run: path.join("/var/run/frr", name) };
}

/** Removes an instance's pathspace directories (after its daemons are gone). Idempotent. */
export function removeFrrPathspace(name: string): void {
  const { etc, run: runDir } = frrPathspace(name);
  rmSync(etc, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
}

/** Runs vtysh commands (each a `-c`) against the FRR instance `name`; rejects with vtysh's output. */
export async function vtysh(name: string, ...commands: string[]): Promise<string> {
  const args = ["-N", name, ...commands.flatMap((c) => ["-c", c])];
  try {
    return (await run("vtysh", args, { maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`vtysh -N ${name} ${commands.map((c) => JSON.stringify(c)).join(" ")}: ${(e.stderr ?? "").trim() || e.message} ${(e.stdout ?? "").trim()}`, { cause: err });
  }
}

/** One `show … json` command against the FRR instance `name`, parsed. */
export async function vtyshJson<T>(name: string, command: string): Promise<T> {
  return JSON.parse(await vtysh(name, command)) as T;
}

async function frrIds(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run("id", ["-u", "frr"]), run("id", ["-g", "frr"])]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export async function startFrr(opts: StartFrrOptions): Promise<Frr> {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(opts.name)) throw new Error(`FRR pathspace name ${JSON.stringify(opts.name)} must be [A-Za-z0-9_-]{1,40}`);
  const missing = frrMissing();
  if (missing !== undefined) throw new Error(missing);
  const { uid, gid } = await frrIds();
  const { etc, run: runDir } = frrPathspace(opts.name);
  for (const d of [etc, runDir]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, uid, gid);
  }
  const conf = path.join(etc, "frr.conf");
  writeFileSync(conf, opts.config);
  writeFileSync(path.join(etc, "vtysh.conf"), "service integrated-vtysh-config\n");
  chownSync(conf, uid, gid);
  chownSync(path.join(etc, "vtysh.conf"), uid, gid);

  const started: Daemon[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const d of [...started].reverse()) await d.stop(5000);
      removeFrrPathspace(opts.name);
    })();
    return stopping;
  };

  const vrfs = opts.netnsVrfs ?? [];
  for (const v of vrfs) if (!/^[A-Za-z0-9_-]{1,15}$/.test(v)) throw new Error(`netns VRF name ${JSON.stringify(v)} must be [A-Za-z0-9_-]{1,15}`);
  // zebra's pid once started: with netnsVrfs, the other daemons and vrfIp enter its mount namespace.
  let zebraPid: number | undefined;

  try {
    const daemons = opts.daemons ?? ["zebra", "bgpd"];
    for (const name of ["zebra", ...daemons.filter((d) => d !== "zebra")] as FrrDaemon[]) {
      const daemon = [path.join(frrLib, name), "-N", opts.name, "-F", opts.profile ?? "datacenter", "-f", conf, "-P", "0", "--log", "stdout", "-u", "frr", "-g", "frr"];
      // The daemon's own command line: ip netns exec, unshare, sh and nsenter all exec in place.
      const daemonArgs = vrfs.length > 0 && name === "zebra" ? [...daemon, "--vrfwnetns"] : daemon;
      let command = "ip";
      let args = ["netns", "exec", opts.netns, ...daemon];
      if (vrfs.length > 0 && name === "zebra") {
        const setup = vrfs.map((v) => `ip netns add ${v} && ip -n ${v} link set lo up && `).join("");
        args = ["netns", "exec", opts.netns, "unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs frr-vrfs /run/netns && ${setup}exec "$@"`, "sh", ...daemonArgs];
      } else if (vrfs.length > 0) {
        command = "nsenter";
        args = ["--target", String(zebraPid), "--mount", "--net", ...daemonArgs];
      }
      const d = spawnDaemon(`frr-${name}`, command, args, { dir: opts.dir, execs: daemonArgs, ...(opts.detached === true ? { detached: true } : {}) });
      if (name === "zebra") zebraPid = d.pid;
      started.push(d);
      const vty = path.join(runDir, `${name}.vty`);
      await waitFor(
        `${name} of FRR ${opts.name}`,
        async () => {
          try {
            accessSync(vty);
            return true;
          } catch {
            return false;
          }
        },
        { timeoutMs: 15_000, daemon: d },
      );
    }
    await waitFor(`vtysh -N ${opts.name}`, async () => (await vtysh(opts.name, "show version").then(() => true, () => false)), { timeoutMs: 10_000 });
  } catch (err) {
    const logs = started.map((d) => `${d.name}:\n${tail(d.logFile)}`).join("\n");
    await stop();
    throw new Error(`FRR ${opts.name} did not start: ${String(err)}\n${logs}`, { cause: err });
  }

  return {
    name: opts.name,
    vtysh: (...commands: string[]) => vtysh(opts.name, ...commands),
    json: <T>(command: string): Promise<T> => vtyshJson<T>(opts.name, command),
    vrfIp: async (vrf: string, ...args: string[]): Promise<string> => {
      if (!vrfs.includes(vrf)) throw new Error(`${vrf} is not a netns VRF of FRR ${opts.name}`);
      try {
        return (await run("nsenter", ["--target", String(zebraPid), "--mount", "ip", "-n", vrf, ...args])).stdout;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`[FRR ${opts.name} VRF ${vrf}] ip ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`, { cause: err });
      }
    },
    stop,
  };
}

/** The parts of FRR's `show bgp l2vpn evpn route detail type prefix json` the tests read. */
export interface FrrPath {
  vni?: string;
  valid?: boolean;
  bestpath?: { overall?: boolean };
  extendedCommunity?: { string: string };
  nexthops?: { ip: string }[];
  peer?: { peerId: string };
}
export type FrrEvpnTable = Record<string, unknown>;

/** Paths of FRR's EVPN table for one RD and route key, e.g. ("65000:10", "[5]:[0]:[24]:[10.1.0.0]"). */
export function frrPaths(table: FrrEvpnTable, rd: string, route: string): FrrPath[] {
  const byRd = table[rd] as Record<string, { paths?: FrrPath[][] }> | undefined;
  return byRd?.[route]?.paths?.flat() ?? [];
}

/** The SIDs FRR allocated to its VRF, per family, from `show bgp segment-routing srv6` (YAML-like text). */
export function frrVrfSids(text: string, vrf: string): { ipv4?: string; ipv6?: string } {
  const section = text.split(/^- name: /m).find((s) => s.startsWith(`${vrf}\n`)) ?? "";
  const sid = (afi: string) => new RegExp(`vpn_policy\\[${afi}\\]\\.tovpn_sid: (\\S+)`).exec(section)?.[1];
  const out: { ipv4?: string; ipv6?: string } = {};
  const v4 = sid("AFI_IP");
  const v6 = sid("AFI_IP6");
  if (v4 !== undefined && v4 !== "none") out.ipv4 = v4;
  if (v6 !== undefined && v6 !== "none") out.ipv6 = v6;
  return out;
}

/** The parts of FRR's `show bgp ipv4|ipv6 vpn rd RD PREFIX json` path objects the tests read. */
export interface FrrVpnPath {
  remoteSid?: string;
  remoteLabel?: number;
  valid?: boolean;
  nexthops?: { ip: string }[];
  peer?: { peerId: string };
}

export async function frrVpnPaths(frr: Frr, family: "ipv4" | "ipv6", rd: string, prefix: string): Promise<FrrVpnPath[]> {
  // {"<rd>": {"prefix": …, "paths": […]}}, or {} when FRR has no such route.
  const out = await frr.json<Record<string, { paths?: FrrVpnPath[] } | undefined>>(`show bgp ${family} vpn rd ${rd} ${prefix} json`);
  return out[rd]?.paths ?? [];
}
