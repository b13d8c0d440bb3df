// Builds kvrf's container images without a Docker engine, as OCI image archives that
// `ctr -n k8s.io images import FILE` (containerd) and `skopeo copy oci-archive:FILE …` accept:
//   kvrf      localhost:5000/kvrf/kvrf:dev       images/kvrf/Dockerfile's final stage
//   gobgpd    localhost:5000/kvrf/gobgpd:4.8.0   images/gobgpd/Dockerfile's final stage
//   pause     registry.k8s.io/pause:3.10.1       the pod sandbox (images/pause/pause.c)
//   netshoot  localhost:5000/kvrf/netshoot:dev   a test workload: busybox with network applets
// The images are assembled from what this machine already has: dist/ (`npm run build`), the
// project's pinned Node, the host's iproute2 with the shared libraries `ldd` names, the test
// environment's GoBGP 4.8 (`scripts/test-env ensure`), Debian's busybox-static, and a pause
// compiled with `gcc -static`. The Dockerfiles stay the source of truth for users with Docker;
// scripts/images.test.ts fails when an image here and its Dockerfile disagree (files, user,
// entrypoint, environment, Debian packages, base image version).
//
// Reproducible: every tar entry has mtime 0, uid/gid 0, no user names, and entries are sorted; the
// same inputs give the same digests.
//
// Usage: tsx scripts/images.ts build --out DIR [IMAGE ...]   (IMAGE: a name above or a full ref; default all)
//        tsx scripts/images.ts list
import { execFileSync } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createGzip } from "node:zlib";
import { pack as tarPack, type Pack } from "tar-stream";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** What goes into an image, by destination path (absolute, inside the image). */
export type Item =
  /** A file's content (symlinks followed) at `dest`; `libs`: also the shared libraries `ldd` lists, at their host paths. */
  | { type: "file"; dest: string; from: string; libs?: boolean }
  /** A host path at the same path in the image, with the symlinks on the way (`/lib -> usr/lib`); a directory with its contents. */
  | { type: "host"; dest: string; libs?: boolean }
  | { type: "symlink"; dest: string; target: string }
  | { type: "dir"; dest: string; mode: number }
  | { type: "text"; dest: string; text: string; mode?: number };

export interface Layer {
  /** `app` holds exactly what the Dockerfile's final stage COPYs (scripts/images.test.ts checks it). */
  name: string;
  items: Item[];
}

/** The OCI image config's `config` object (the Dockerfile's USER, ENTRYPOINT, CMD, ENV, WORKDIR). */
export interface RunConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env: string[];
  WorkingDir?: string;
}

export interface ImageSpec {
  /** Short name: the CLI argument and the archive's file name (`<name>.tar`). */
  name: string;
  ref: string;
  /** The Dockerfile this image mirrors, relative to the repository. */
  dockerfile?: string;
  /** Debian packages the Dockerfile's final stage installs, and the paths here that stand for them. */
  debianPackages?: Record<string, string[]>;
  layers: Layer[];
  config: RunConfig;
  /** Runs before the layers are assembled (e.g. compiling pause). */
  prepare?: () => void;
}

/** Where the inputs on this machine are. */
export interface Inputs {
  root: string;
  /** The project's pinned Node binary (node_modules/.bin/node, resolved). */
  node: string;
  ip: string;
  bridge: string;
  busybox: string;
  gobgpd: string;
  gobgp: string;
  /** Where pause is compiled to (by the pause image's `prepare`). */
  pause: string;
}

export const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const nonRoot = "65532:65532";
const passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const group = "root:x:0:\nnonroot:x:65532:\n";

function busyboxItems(busybox: string, applets: readonly string[]): Item[] {
  // Debian's /bin/busybox: /bin is a symlink to usr/bin on bookworm, and so it is in the image.
  return [{ type: "host", dest: busybox }, ...applets.map((a): Item => ({ type: "symlink", dest: `/bin/${a}`, target: "busybox" }))];
}

/** Users the images run as, and a world-writable /tmp. */
function baseFiles(): Item[] {
  return [
    { type: "text", dest: "/etc/passwd", text: passwd },
    { type: "text", dest: "/etc/group", text: group },
    { type: "dir", dest: "/tmp", mode: 0o1777 },
    { type: "dir", dest: "/run", mode: 0o755 },
  ];
}

/**
 * The shell and tools of the kvrf image: kvrfd probes the kernel with a shell script
 * (shared/kernel/capabilities.ts: `unshare --net -- sh -s`, else `sh -s`; the script runs ip, tr,
 * cat). Debian's, as in the Dockerfile's base (node:…-bookworm-slim: dash, coreutils, util-linux),
 * not busybox: Debian's busybox ash runs its own applets before PATH, so the probe's `ip` would be
 * busybox's, which knows neither VRF devices nor SRv6.
 */
export const kvrfShellTools = { sh: "/bin/dash", cat: "/usr/bin/cat", tr: "/usr/bin/tr", unshare: "/usr/bin/unshare" } as const;
/** The commands images/gobgpd's two scripts run (checked against the scripts by the test). */
export const gobgpdApplets = ["sh", "rm", "awk", "grep", "sleep", "cat", "ls"] as const;
export const netshootApplets = ["sh", "ping", "ping6", "ip", "nc", "httpd", "sleep", "cat", "hostname", "wget", "ls", "ps", "kill", "echo", "nslookup", "traceroute", "traceroute6", "arping"] as const;

export function imageSpecs(i: Inputs): ImageSpec[] {
  const dist = (f: string) => path.join(i.root, "dist", f);
  return [
    {
      name: "kvrf",
      ref: "localhost:5000/kvrf/kvrf:dev",
      dockerfile: "images/kvrf/Dockerfile",
      debianPackages: { iproute2: ["/usr/sbin/ip", "/usr/sbin/bridge", "/etc/iproute2"] },
      layers: [
        {
          name: "runtime",
          items: [
            ...baseFiles(),
            ...Object.values(kvrfShellTools).map((p): Item => ({ type: "host", dest: p, libs: true })),
            { type: "symlink", dest: "/bin/sh", target: "dash" },
            // node:…-bookworm-slim keeps node at /usr/local/bin/node.
            { type: "file", dest: "/usr/local/bin/node", from: i.node, libs: true },
            { type: "file", dest: "/usr/sbin/ip", from: i.ip, libs: true },
            { type: "file", dest: "/usr/sbin/bridge", from: i.bridge, libs: true },
            ...(existsSync("/etc/iproute2") ? [{ type: "host", dest: "/etc/iproute2" } as const] : []),
            ...(existsSync("/usr/share/iproute2") ? [{ type: "host", dest: "/usr/share/iproute2" } as const] : []),
          ],
        },
        {
          name: "app",
          items: [
            { type: "file", dest: "/opt/kvrf/kvrfd", from: dist("kvrfd") },
            { type: "file", dest: "/opt/kvrf/kvrf-install", from: dist("kvrf-install") },
            { type: "file", dest: "/opt/kvrf/bin/kvrf", from: dist("kvrf") },
          ],
        },
      ],
      config: { User: nonRoot, Entrypoint: ["node", "/opt/kvrf/kvrfd"], Env: [PATH_ENV] },
    },
    {
      name: "gobgpd",
      ref: "localhost:5000/kvrf/gobgpd:4.8.0",
      dockerfile: "images/gobgpd/Dockerfile",
      layers: [
        { name: "runtime", items: [...baseFiles(), ...busyboxItems(i.busybox, gobgpdApplets)] },
        {
          name: "app",
          items: [
            { type: "file", dest: "/usr/local/bin/gobgpd", from: i.gobgpd, libs: true },
            { type: "file", dest: "/usr/local/bin/gobgp", from: i.gobgp, libs: true },
            { type: "file", dest: "/usr/local/bin/gobgpd-entrypoint", from: path.join(i.root, "images/gobgpd/gobgpd-entrypoint") },
            { type: "file", dest: "/usr/local/bin/gobgp-drain", from: path.join(i.root, "images/gobgpd/gobgp-drain") },
            { type: "file", dest: "/usr/local/bin/gobgp-alive", from: path.join(i.root, "images/gobgpd/gobgp-alive") },
          ],
        },
      ],
      config: { User: nonRoot, Entrypoint: ["/usr/local/bin/gobgpd-entrypoint"], Env: [PATH_ENV] },
    },
    {
      name: "pause",
      ref: "registry.k8s.io/pause:3.10.1",
      layers: [{ name: "pause", items: [{ type: "file", dest: "/pause", from: i.pause }] }],
      config: { User: "65535:65535", Entrypoint: ["/pause"], Env: [] },
      prepare: () => compilePause(i.root, i.pause),
    },
    {
      name: "netshoot",
      ref: "localhost:5000/kvrf/netshoot:dev",
      layers: [
        {
          name: "busybox",
          items: [
            { type: "text", dest: "/etc/passwd", text: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" },
            { type: "text", dest: "/etc/group", text: "root:x:0:\nnogroup:x:65534:\n" },
            { type: "dir", dest: "/tmp", mode: 0o1777 },
            { type: "dir", dest: "/root", mode: 0o700 },
            ...busyboxItems(i.busybox, netshootApplets),
          ],
        },
      ],
      // busybox sleep takes "infinity".
      config: { Cmd: ["sleep", "infinity"], Env: [PATH_ENV] },
    },
  ];
}

function which(cmd: string, dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]): string {
  for (const d of dirs) {
    const p = path.join(d, cmd);
    if (existsSync(p)) return p;
  }
  throw new Error(`${cmd} not found in ${dirs.join(", ")}`);
}

function testEnvTool(repo: string, name: "gobgpd4" | "gobgp4"): string {
  const override = process.env[`KVRF_TOOL_${name.toUpperCase()}`];
  if (override !== undefined && override !== "") return override;
  const file = path.join(process.env["KVRF_TESTENV_DIR"] ?? path.join(repo, ".testenv"), "env.json");
  try {
    const env = JSON.parse(readFileSync(file, "utf8")) as { tools?: Record<string, { path: string } | undefined> };
    const p = env.tools?.[name]?.path;
    if (p !== undefined) return p;
  } catch {
    // reported below
  }
  return `/missing/${name} (run scripts/test-env ensure: ${file})`;
}

/**
 * This machine's inputs. Paths that are missing fail when an image needs them, with the reason.
 * `work`: a scratch directory (pause is compiled there).
 */
export function findInputs(repo: string, work: string): Inputs {
  const orMissing = (f: () => string, what: string) => {
    try {
      return f();
    } catch (err) {
      return `/missing/${what} (${(err as Error).message})`;
    }
  };
  return {
    root: repo,
    node: orMissing(() => realpathSync(path.join(repo, "node_modules/.bin/node")), "node (npm ci)"),
    ip: orMissing(() => which("ip"), "ip (apt-get install iproute2)"),
    bridge: orMissing(() => which("bridge"), "bridge (apt-get install iproute2)"),
    busybox: existsSync("/bin/busybox") ? "/bin/busybox" : "/missing/busybox (apt-get install busybox-static)",
    gobgpd: testEnvTool(repo, "gobgpd4"),
    gobgp: testEnvTool(repo, "gobgp4"),
    pause: path.join(work, "pause"),
  };
}

export function compilePause(repo: string, out: string): void {
  mkdirSync(path.dirname(out), { recursive: true });
  const src = path.join(repo, "images/pause/pause.c");
  try {
    execFileSync("gcc", ["-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", out, src], { stdio: ["ignore", "inherit", "inherit"] });
    execFileSync("strip", ["--strip-all", out], { stdio: ["ignore", "inherit", "inherit"] });
  } catch (err) {
    throw new Error(`cannot compile ${src} (gcc with static glibc, Debian's gcc and libc6-dev): ${(err as Error).message}`, { cause: err });
  }
}

/** Shared libraries (and the dynamic loader) `ldd` names for a binary; none for a static one. */
export function sharedLibraries(binary: string): string[] {
  let out: string;
  try {
    out = execFileSync("ldd", [binary], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    // glibc's ldd exits 1 on a static binary: "not a dynamic executable".
    if (/not a dynamic executable|statically linked/.test(`${e.stdout ?? ""}${e.stderr ?? ""}`)) return [];
    throw err;
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    if (/statically linked/.test(line)) return [];
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1] !== undefined) libs.push(m[1]);
    else if (/=>\s*not found/.test(line)) throw new Error(`${binary}: ${line.trim()}`);
  }
  return libs;
}

type NodeInput = { type: "dir"; mode: number } | { type: "file"; mode: number; source: string | Buffer } | { type: "symlink"; target: string };
type Node = NodeInput & { layer: number };

/** An image's file tree, across layers. Paths are absolute and canonical (no symlink on the way). */
export class Tree {
  readonly nodes = new Map<string, Node>();
  layer = 0;

  /** The canonical path of `p`, following the tree's symlinks in every component but the last. */
  canonicalParent(p: string, depth = 0): string {
    if (depth > 32) throw new Error(`${p}: too many levels of symbolic links`);
    const parts = path.posix.normalize(p).split("/").filter((s) => s !== "");
    let cur = "/";
    for (const part of parts.slice(0, -1)) {
      const next = path.posix.join(cur, part);
      const n = this.nodes.get(next);
      cur = n?.type === "symlink" ? this.canonical(path.posix.resolve(cur, n.target), depth + 1) : next;
    }
    return path.posix.join(cur, parts[parts.length - 1] ?? "");
  }

  /** The canonical path of `p`, following the tree's symlinks in every component. */
  canonical(p: string, depth = 0): string {
    const at = this.canonicalParent(p, depth);
    const n = this.nodes.get(at);
    return n?.type === "symlink" ? this.canonical(path.posix.resolve(path.posix.dirname(at), n.target), depth + 1) : at;
  }

  private mkdirp(dir: string): void {
    if (dir === "/") return;
    const n = this.nodes.get(dir);
    if (n === undefined) {
      this.mkdirp(path.posix.dirname(dir));
      this.nodes.set(dir, { type: "dir", mode: 0o755, layer: this.layer });
    } else if (n.type !== "dir") throw new Error(`${dir}: not a directory in the image`);
  }

  /** Puts a node at `p` (its parents followed through the tree's symlinks). An identical node may be put twice. */
  put(p: string, node: NodeInput): string {
    const at = this.canonicalParent(p);
    this.mkdirp(path.posix.dirname(at));
    const old = this.nodes.get(at);
    const full = { ...node, layer: this.layer };
    if (old !== undefined) {
      const same =
        (old.type === "dir" && full.type === "dir") ||
        (old.type === "symlink" && full.type === "symlink" && old.target === full.target) ||
        (old.type === "file" && full.type === "file" && old.source === full.source && old.mode === full.mode);
      if (!same) throw new Error(`${p}: put twice, differently`);
      if (old.type === "dir" && full.type === "dir" && full.mode !== 0o755) old.mode = full.mode;
      return at;
    }
    this.nodes.set(at, full);
    return at;
  }

  /** Mirrors the host's symlinks on the way to `hostPath` into the tree; returns the host's canonical path. */
  private followHost(hostPath: string, depth = 0): string {
    if (depth > 32) throw new Error(`${hostPath}: too many levels of symbolic links`);
    const parts = hostPath.split("/").filter((s) => s !== "");
    let cur = "/";
    for (const part of parts) {
      const next = path.posix.join(cur, part);
      const st = lstatSync(next);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(next);
        this.put(next, { type: "symlink", target });
        cur = this.followHost(path.posix.resolve(cur, target), depth + 1);
      } else cur = next;
    }
    return cur;
  }

  /** A host path at the same path here: symlinks on the way, then the file or the directory tree. */
  copyHost(hostPath: string): void {
    const real = this.followHost(hostPath);
    const st = statSync(real);
    if (st.isDirectory()) {
      this.put(real, { type: "dir", mode: st.mode & 0o7777 });
      for (const child of readdirSync(real).sort()) this.copyHost(path.posix.join(real, child));
    } else if (st.isFile()) this.put(real, { type: "file", mode: fileMode(st.mode), source: real });
    else throw new Error(`${hostPath}: neither a file nor a directory`);
  }

  add(item: Item): void {
    switch (item.type) {
      case "host":
        this.copyHost(item.dest);
        if (item.libs === true) for (const lib of sharedLibraries(item.dest)) this.copyHost(lib);
        return;
      case "file": {
        if (!existsSync(item.from)) throw new Error(`${item.dest}: ${item.from} does not exist`);
        const real = realpathSync(item.from);
        this.put(item.dest, { type: "file", mode: fileMode(statSync(real).mode), source: real });
        if (item.libs === true) for (const lib of sharedLibraries(real)) this.copyHost(lib);
        return;
      }
      case "symlink":
        this.put(item.dest, { type: "symlink", target: item.target });
        return;
      case "dir":
        this.put(item.dest, { type: "dir", mode: item.mode });
        return;
      case "text":
        this.put(item.dest, { type: "file", mode: item.mode ?? 0o644, source: Buffer.from(item.text) });
        return;
    }
  }

  /** A layer's entries, parents first (sorted by path), with every parent directory of its entries. */
  entries(layer: number): [string, Node][] {
    const want = new Map<string, Node>();
    for (const [p, n] of this.nodes) {
      if (n.layer !== layer) continue;
      want.set(p, n);
      for (let d = path.posix.dirname(p); d !== "/"; d = path.posix.dirname(d)) {
        if (!want.has(d)) want.set(d, this.nodes.get(d) ?? { type: "dir", mode: 0o755, layer });
      }
    }
    return [...want].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

function fileMode(mode: number): number {
  return (mode & 0o111) !== 0 ? 0o755 : 0o644;
}

const epoch = new Date(0);

async function writeEntry(pack: Pack, name: string, node: Node): Promise<void> {
  const base = { name, mtime: epoch, uid: 0, gid: 0, uname: "", gname: "" };
  if (node.type === "dir") {
    await new Promise<void>((resolve, reject) => pack.entry({ ...base, name: `${name}/`, type: "directory", mode: node.mode }, (e) => (e ? reject(e) : resolve())));
  } else if (node.type === "symlink") {
    await new Promise<void>((resolve, reject) => pack.entry({ ...base, type: "symlink", linkname: node.target, mode: 0o777 }, (e) => (e ? reject(e) : resolve())));
  } else if (typeof node.source !== "string") {
    const content = node.source;
    await new Promise<void>((resolve, reject) => pack.entry({ ...base, type: "file", mode: node.mode, size: content.length }, content, (e) => (e ? reject(e) : resolve())));
  } else {
    await streamFile(pack, { ...base, type: "file", mode: node.mode }, node.source);
  }
}

/** A file's bytes into a tar entry, with back-pressure. */
async function streamFile(pack: Pack, header: Parameters<Pack["entry"]>[0], file: string): Promise<void> {
  const size = statSync(file).size;
  let settle!: (e?: Error | null) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (e) => (e ? reject(e) : resolve());
  });
  const sink = pack.entry({ ...header, size }, (e) => settle(e));
  let written = 0;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    written += buf.length;
    if (!sink.write(buf)) await new Promise<void>((r) => sink.once("drain", () => r()));
  }
  if (written !== size) throw new Error(`${file} changed while it was being archived`);
  sink.end(undefined);
  await finished;
}

interface Blob {
  digest: string;
  size: number;
  file: string;
}

/** Writes a tar made of `entries` to `file`, gzipped at that level or not; the digests of both sides. */
async function writeTar(file: string, entries: [string, Node][], gzip: number | false): Promise<{ blob: Blob; diffId: string }> {
  const pack = tarPack();
  const tarHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let size = 0;
  const tap = (h: Hash, count: boolean) =>
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        h.update(chunk);
        if (count) size += chunk.length;
        yield chunk;
      }
    };
  const source = Readable.from(pack);
  const done = gzip
    ? pipeline(source, tap(tarHash, false), createGzip({ level: gzip }), tap(blobHash, true), createWriteStream(file))
    : pipeline(source, tap(tarHash, false), tap(blobHash, true), createWriteStream(file));
  // Consume while writing, so back-pressure works; a failure on either side ends both.
  const writing = (async () => {
    for (const [p, node] of entries) await writeEntry(pack, p.replace(/^\//, ""), node);
    pack.finalize();
  })();
  await Promise.all([done, writing.catch((err: unknown) => {
    pack.destroy(err as Error);
    throw err;
  })]);
  const diffId = `sha256:${tarHash.digest("hex")}`;
  return { blob: { digest: `sha256:${blobHash.digest("hex")}`, size, file }, diffId };
}

const created = "1970-01-01T00:00:00Z";
export const mediaTypes = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export interface Built {
  name: string;
  ref: string;
  archive: string;
  /** The manifest's digest: what `ctr images ls` shows and a pod's imageID names. */
  digest: string;
  config: string;
  layers: { name: string; digest: string; size: number; diffId: string }[];
  size: number;
}

function jsonBlob(work: string, value: unknown): Blob & { bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  const file = path.join(work, digest.slice("sha256:".length));
  writeFileSync(file, bytes);
  return { digest, size: bytes.length, file, bytes };
}

/**
 * Builds one image into `<out>/<name>.tar` (an OCI image layout in a tar). Layers are gzipped
 * (level 6 unless `gzipLevel`; `false`: plain tar layers, which containerd also takes).
 */
export async function buildImage(spec: ImageSpec, out: string, opts: { gzipLevel?: number | false } = {}): Promise<Built> {
  const gzip = opts.gzipLevel ?? 6;
  const work = path.join(out, `.${spec.name}.work`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    spec.prepare?.();
    const tree = new Tree();
    spec.layers.forEach((layer, k) => {
      tree.layer = k;
      for (const item of layer.items) tree.add(item);
    });
    const layers: (Blob & { name: string; diffId: string })[] = [];
    for (const [k, layer] of spec.layers.entries()) {
      const tmp = path.join(work, `layer-${k}`);
      const { blob, diffId } = await writeTar(tmp, tree.entries(k), gzip);
      const file = path.join(work, blob.digest.slice("sha256:".length));
      renameSync(tmp, file);
      layers.push({ ...blob, file, name: layer.name, diffId });
    }
    const config = jsonBlob(work, {
      created,
      architecture: "amd64",
      os: "linux",
      config: spec.config,
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((l) => ({ created, created_by: `scripts/images.ts: ${spec.name} layer ${l.name}` })),
    });
    const manifest = jsonBlob(work, {
      schemaVersion: 2,
      mediaType: mediaTypes.manifest,
      config: { mediaType: mediaTypes.config, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: gzip !== false ? mediaTypes.layerGzip : mediaTypes.layer, digest: l.digest, size: l.size })),
    });
    const index = {
      schemaVersion: 2,
      mediaType: mediaTypes.index,
      manifests: [
        {
          mediaType: mediaTypes.manifest,
          digest: manifest.digest,
          size: manifest.size,
          platform: { architecture: "amd64", os: "linux" },
          // containerd's importer names the image from the first; the OCI layout's own name is the second.
          annotations: { "io.containerd.image.name": spec.ref, "org.opencontainers.image.ref.name": spec.ref },
        },
      ],
    };
    const blobs = [...layers, config, manifest].map((b): [string, Node] => [`/blobs/sha256/${b.digest.slice("sha256:".length)}`, { type: "file", mode: 0o644, layer: 0, source: b.file }]);
    const outer: [string, Node][] = [
      ["/blobs", { type: "dir", mode: 0o755, layer: 0 }],
      ["/blobs/sha256", { type: "dir", mode: 0o755, layer: 0 }],
      ...new Map(blobs),
      ["/index.json", { type: "file", mode: 0o644, layer: 0, source: Buffer.from(JSON.stringify(index)) }],
      ["/oci-layout", { type: "file", mode: 0o644, layer: 0, source: Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })) }],
    ];
    outer.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const archive = path.join(out, `${spec.name}.tar`);
    await writeTar(`${archive}.tmp`, outer, false);
    renameSync(`${archive}.tmp`, archive);
    return {
      name: spec.name,
      ref: spec.ref,
      archive,
      digest: manifest.digest,
      config: config.digest,
      layers: layers.map((l) => ({ name: l.name, digest: l.digest, size: l.size, diffId: l.diffId })),
      size: statSync(archive).size,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The specs named on the command line (short names or refs), all when none. */
export function select(specs: ImageSpec[], names: readonly string[]): ImageSpec[] {
  if (names.length === 0) return specs;
  return names.map((n) => {
    const s = specs.find((x) => x.name === n || x.ref === n);
    if (s === undefined) throw new Error(`unknown image ${n}; known: ${specs.map((x) => x.name).join(", ")}`);
    return s;
  });
}

function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}

function human(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === "list") {
    const specs = imageSpecs(findInputs(root, "/nonexistent"));
    for (const s of specs) process.stdout.write(`${s.name.padEnd(9)} ${s.ref}${s.dockerfile !== undefined ? `  (${s.dockerfile})` : ""}\n`);
    return;
  }
  const outAt = rest.indexOf("--out");
  const outArg = outAt >= 0 ? rest[outAt + 1] : undefined;
  if (cmd !== "build" || outArg === undefined) {
    process.stderr.write("usage: tsx scripts/images.ts build --out DIR [--no-gzip] [IMAGE ...]\n       tsx scripts/images.ts list\n");
    process.exit(2);
  }
  const names = rest.filter((a, k) => k !== outAt && k !== outAt + 1 && !a.startsWith("--"));
  const out = path.resolve(outArg);
  mkdirSync(out, { recursive: true });
  const scratch = path.join(out, ".scratch");
  const specs = imageSpecs(findInputs(root, scratch));
  const wanted = select(specs, names);
  if (wanted.some((s) => s.name === "kvrf") && !existsSync(path.join(root, "dist", "kvrfd"))) {
    throw new Error("dist/kvrfd is missing: run `npm run build` first");
  }
  const listFile = path.join(out, "images.json");
  const previous = existsSync(listFile) ? (JSON.parse(readFileSync(listFile, "utf8")) as { images: Built[] }).images : [];
  const built: Built[] = [];
  for (const spec of wanted) {
    const b = await buildImage(spec, out, { gzipLevel: rest.includes("--no-gzip") ? false : 6 });
    built.push(b);
    process.stdout.write(`${b.ref.padEnd(36)} ${shown(b.archive).padEnd(24)} ${human(b.size).padStart(10)}  ${b.digest}\n`);
  }
  const images = [...previous.filter((p) => !built.some((b) => b.ref === p.ref)), ...built]
    .map((b) => ({ ...b, archive: path.basename(b.archive) }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  writeFileSync(listFile, JSON.stringify({ images }, null, 2) + "\n");
  rmSync(scratch, { recursive: true, force: true });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
