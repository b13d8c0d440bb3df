// Runs a command on a real, stock distribution kernel under qemu: the vm tier (docs/testing.md)
// runs there what the host kernel cannot (VRF devices, SRv6 on today's machines). No KVM here, so
// qemu emulates (TCG); the guest's root is the host's own root filesystem over 9p, read-only, under
// a tmpfs overlay, so it runs the host's iproute2, Node and this very checkout without copying
// anything (scripts/vm/init).
//
// The job travels through a writable 9p share of a host directory (the job directory, /vmjob in
// the guest), never the kernel command line:
//   env.sh, command.sh, run.sh   written here: the environment, the command, the wrapper init runs
//   output.log, exit-code        the command's output (also on the console) and its exit code
//   qemu.log, qemu.pid           the serial console (kernel, init, the command's output) and the
//                                pidfile (test/harness/process.ts), so a crashed run's qemu is reaped
// and whatever the command writes there (the vm tier's vitest report). qemu is killed by its PID on
// timeout and when this process exits; never by name.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { reapStale, spawnDaemon, tail } from "./process.js";
import { repoRoot, testEnvDir, vmImage, type VmImage } from "./tools.js";

export interface VmOptions {
  /** A shell (sh) script, run as root inside the guest in `cwd`. */
  command: string;
  /** Working directory inside the guest (the host's paths are the guest's): the repository. */
  cwd?: string;
  /** The command's environment, on top of a minimal one (PATH with the pinned Node first, HOME). */
  env?: Record<string, string>;
  /** Kills the VM after this long (boot included). Default 30 minutes. */
  timeoutMs?: number;
  memoryMb?: number;
  /** Virtual CPUs (one host thread each). Default: the host's CPU count. */
  cpus?: number;
  /** User-mode networking: the guest is 10.0.2.15 and reaches the host's loopback at 10.0.2.2. */
  network?: boolean;
  /** The job directory (created; must be empty or absent). Default .testenv/run/vm/<pid>-<n>. */
  jobDir?: string;
  /** Sees the serial console as it arrives: kernel messages, init's lines, the command's output. */
  onConsole?: (text: string) => void;
  image?: VmImage;
}

export interface VmTimings {
  /** qemu start to the command's start (firmware, kernel, modules, mounts). */
  bootMs: number | undefined;
  /** The command alone. */
  commandMs: number | undefined;
  /** qemu start to qemu exit. */
  totalMs: number;
}

export interface VmResult {
  /** The command's exit code; undefined when it never finished (timeout, boot failure, crash). */
  exitCode: number | undefined;
  /** The command's output (stdout and stderr together). */
  output: string;
  timedOut: boolean;
  jobDir: string;
  /** The serial console log. */
  consoleLog: string;
  timings: VmTimings;
  /** Why it failed, with the console's last lines; undefined when the command exited 0. */
  failure: string | undefined;
}

/** Debian's bin directories are merged into /usr; the guest's init knows only busybox's /bin. */
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const jobRoot = path.join(testEnvDir, "run", "vm");
let jobs = 0;

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The qemu command line (exported for the tier's report and for tests). */
export function qemuArgs(image: VmImage, o: { jobDir: string; memoryMb: number; cpus: number; network: boolean }): string[] {
  // mitigations=off: the guest is a throwaway test machine, and under emulation the Spectre
  // mitigations cost measurable boot and run time.
  const append = "console=ttyS0 quiet panic=-1 mitigations=off";
  const virtfs = (p: string, tag: string, readonly: boolean): string[] => [
    "-virtfs",
    `local,path=${p},mount_tag=${tag},security_model=passthrough,multidevs=remap${readonly ? ",readonly=on" : ""}`,
  ];
  return [
    ...["-machine", "q35", "-accel", "tcg,thread=multi", "-smp", String(o.cpus), "-m", String(o.memoryMb)],
    // No default devices (VGA, NIC with its iPXE ROM): only what is asked for below.
    ...["-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"],
    ...["-kernel", image.kernel, "-initrd", image.initrd, "-append", append],
    ...virtfs("/", "hostroot", true),
    ...virtfs(o.jobDir, "vmjob", false),
    // romfile= (empty): no option ROM, so no iPXE and no boot delay for the NIC.
    ...(o.network ? ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="] : []),
  ];
}

function writeJob(jobDir: string, opts: VmOptions): void {
  const env: Record<string, string> = {
    PATH: `${path.join(repoRoot, "node_modules", ".bin")}:${basePath}`,
    HOME: "/root",
    LANG: "C.UTF-8",
    ...opts.env,
    KVRF_VM_JOB: "/vmjob",
  };
  writeFileSync(path.join(jobDir, "env.sh"), Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join(""));
  writeFileSync(path.join(jobDir, "command.sh"), opts.command.endsWith("\n") ? opts.command : `${opts.command}\n`);
  // The guest mounts its own empty /tmp and /run (scripts/vm/init): the project (a clone in /tmp)
  // and the working directory are kept visible through them.
  writeFileSync(path.join(jobDir, "keep"), [...new Set([repoRoot, opts.cwd ?? repoRoot])].map((d) => `${d}\n`).join(""));
  writeFileSync(
    path.join(jobDir, "run.sh"),
    [
      "# Written by test/harness/vm.ts, run by the guest's init (scripts/vm/init) in the new root.",
      ". /vmjob/env.sh",
      `cd ${shellQuote(opts.cwd ?? repoRoot)} || { echo 98 >/vmjob/exit-code; exit 98; }`,
      // The output goes to the console (live, and into qemu.log) and to output.log.
      "{ /bin/sh /vmjob/command.sh </dev/null; echo $? >/vmjob/exit-code; } 2>&1 | tee /vmjob/output.log",
      "",
    ].join("\n"),
  );
}

/** Follows a growing file, handing each new chunk to `fn` (the console arrives through qemu.log). */
class FileFollower {
  private offset = 0;
  constructor(
    private readonly file: string,
    private readonly fn: (text: string) => void,
  ) {}

  poll(): void {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (size <= this.offset) return;
    const fd = openSync(this.file, "r");
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      this.fn(buf.subarray(0, n).toString("utf8"));
    } finally {
      closeSync(fd);
    }
  }
}

/** Kills qemu if this process is interrupted or exits while a VM runs (by PID, synchronously). */
function guard(pid: number): () => void {
  const kill = (): void => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    kill();
    release();
    // Nobody else handles it: die of it as we would have without this guard.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const release = (): void => {
    process.off("exit", kill);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onSignal);
  };
  process.on("exit", kill);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  return release;
}

/**
 * Boots the guest, runs `opts.command` in it and powers it off. Resolves when qemu has exited,
 * also when the command failed or timed out (see `exitCode`, `failure`); rejects only when qemu
 * cannot be started. The job directory stays for the caller to read (and remove).
 */
export async function runInVm(opts: VmOptions): Promise<VmResult> {
  const image = opts.image ?? vmImage();
  for (const what of reapStale(jobRoot)) process.stderr.write(`reaped stale ${what} from a previous vm run\n`);
  const jobDir = opts.jobDir ?? path.join(jobRoot, `${process.pid}-${jobs++}`);
  mkdirSync(jobDir, { recursive: true });
  writeJob(jobDir, opts);
  const args = qemuArgs(image, {
    jobDir,
    memoryMb: opts.memoryMb ?? 4096,
    cpus: opts.cpus ?? availableParallelism(),
    network: opts.network ?? false,
  });
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  const started = Date.now();
  const qemu = spawnDaemon("qemu", image.qemu, args, { dir: jobDir });
  const release = guard(qemu.pid);
  let bootAt: number | undefined;
  let exitAt: number | undefined;
  let pending = "";
  const follower = new FileFollower(qemu.logFile, (text) => {
    opts.onConsole?.(text);
    // Timings from init's marker lines, as they arrive (a line may come in pieces).
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const l of lines) {
      if (bootAt === undefined && l.startsWith("kvrf-vm: start")) bootAt = Date.now();
      if (exitAt === undefined && l.startsWith("kvrf-vm: exit")) exitAt = Date.now();
    }
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void qemu.kill();
  }, timeoutMs);
  try {
    while (!qemu.hasExited()) {
      follower.poll();
      await Promise.race([qemu.exited, sleep(200)]);
    }
  } finally {
    clearTimeout(timer);
    release();
  }
  follower.poll();
  const totalMs = Date.now() - started;
  const read = (f: string): string | undefined => (existsSync(path.join(jobDir, f)) ? readFileSync(path.join(jobDir, f), "utf8") : undefined);
  const code = read("exit-code")?.trim();
  const exitCode = code !== undefined && /^\d+$/.test(code) ? Number(code) : undefined;
  const timings: VmTimings = {
    bootMs: bootAt !== undefined ? bootAt - started : undefined,
    commandMs: bootAt !== undefined && exitAt !== undefined ? exitAt - bootAt : undefined,
    totalMs,
  };
  const consoleTail = (): string => tail(qemu.logFile, 30);
  let failure: string | undefined;
  if (timedOut) failure = `the vm was killed after ${timeoutMs} ms (timeout)`;
  else if (exitCode === undefined) failure = `the vm ended without the command's exit code (qemu exited ${String(await qemu.exited)})`;
  else if (exitCode !== 0) failure = `the command exited ${exitCode}`;
  if (failure !== undefined) failure += `; job directory ${jobDir}; last console lines:\n${consoleTail()}`;
  return { exitCode, output: read("output.log") ?? "", timedOut, jobDir, consoleLog: qemu.logFile, timings, failure };
}
