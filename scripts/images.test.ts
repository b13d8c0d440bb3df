// The images scripts/images.ts builds without Docker stay in step with the Dockerfiles users build
// with Docker: each Dockerfile's final stage (COPY destinations, USER, ENTRYPOINT, CMD, ENV,
// WORKDIR, Debian packages, base image) against the builder's spec, the shell commands the images'
// scripts and kvrfd's kernel probe run against what the image has, the DaemonSet's commands
// against the images it names. Then real builds: the OCI layout inside the archive, every digest,
// every tar header, and byte-for-byte reproducibility.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeScript } from "../shared/kernel/capabilities.js";
import { binaries } from "../shared/kernel/ip.js";
import { buildImage, findInputs, gobgpdApplets, imageSpecs, kvrfShellTools, mediaTypes, sharedLibraries, type Built, type ImageSpec } from "./images.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// ---- Dockerfile: just what the comparison needs ----

interface Stage {
  from: string;
  name?: string;
  /** ARG defaults, by name. */
  args: Record<string, string>;
  /** Absolute destination of every file the stage's COPY instructions put into the image. */
  copies: string[];
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  workdir?: string;
  /** Packages named in `apt-get install` (without `=version`). */
  aptPackages: string[];
}

/** The instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): [string, string][] {
  const out: [string, string][] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.startsWith("#")) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    const m = /^(\S+)\s+(.*)$/s.exec(full);
    if (m !== null) out.push([(m[1] ?? "").toUpperCase(), m[2] ?? ""]);
  }
  return out;
}

function jsonForm(arg: string, what: string): string[] {
  const v = JSON.parse(arg) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new Error(`${what} must be in JSON (exec) form: ${arg}`);
  return v;
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const [op, arg] of instructions(text)) {
    if (op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(arg.trim());
      if (m === null) throw new Error(`FROM ${arg}`);
      const stage: Stage = { from: m[1] ?? "", args: {}, copies: [], env: {}, aptPackages: [] };
      if (m[2] !== undefined) stage.name = m[2];
      stages.push(stage);
      continue;
    }
    const s = stages[stages.length - 1];
    if (s === undefined) continue; // ARG before FROM
    switch (op) {
      case "ARG": {
        const [k, v] = arg.split("=", 2);
        if (k !== undefined) s.args[k.trim()] = (v ?? "").trim();
        break;
      }
      case "COPY":
      case "ADD": {
        const words = arg.split(/\s+/).filter((w) => !w.startsWith("--"));
        const dest = words.pop() ?? "";
        const abs = dest.startsWith("/") ? dest : path.posix.join(s.workdir ?? "/", dest);
        const intoDir = dest.endsWith("/") || words.length > 1;
        for (const src of words) s.copies.push(intoDir ? path.posix.join(abs, path.posix.basename(src)) : abs);
        break;
      }
      case "USER":
        s.user = arg.trim();
        break;
      case "ENTRYPOINT":
        s.entrypoint = jsonForm(arg, "ENTRYPOINT");
        delete s.cmd; // Docker: ENTRYPOINT resets an inherited CMD
        break;
      case "CMD":
        s.cmd = jsonForm(arg, "CMD");
        break;
      case "ENV":
        for (const m of arg.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) s.env[m[1] ?? ""] = (m[2] ?? "").replace(/^"|"$/g, "");
        break;
      case "WORKDIR":
        s.workdir = arg.trim();
        break;
      case "RUN":
        for (const m of arg.matchAll(/apt-get install ([^&;|]*)/g)) {
          for (const w of (m[1] ?? "").split(/\s+/)) if (w !== "" && !w.startsWith("-")) s.aptPackages.push(w.split("=")[0] ?? w);
        }
        break;
    }
  }
  return stages;
}

function finalStage(spec: ImageSpec): Stage {
  const stages = parseDockerfile(readFileSync(path.join(root, spec.dockerfile ?? ""), "utf8"));
  const last = stages[stages.length - 1];
  if (last === undefined) throw new Error(`${spec.dockerfile}: no FROM`);
  return last;
}

// ---- shell scripts: the commands they run ----

const shellWords = new Set([
  // keywords
  "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "case", "esac", "!", "{", "}",
  // busybox ash builtins
  "[", "[[", "echo", "printf", "test", "exec", "set", "shift", "return", "exit", "continue", "break", "local", "read",
  "cd", "true", "false", ":", "eval", "export", "unset", "trap", "wait", "kill", "command", "type", "getopts", "umask", "pwd",
]);
/** Prefixes after which the next word is the command. */
const prefixes = new Set(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "exec", "command"]);

/**
 * The command names a POSIX shell script runs, from a small tokenizer (quotes, command
 * substitution, redirections, separators); commands given by a variable are left out. `wrappers`:
 * functions that run their arguments as a command after skipping some (`try NAME CMD...`).
 */
function scriptCommands(script: string, wrappers: Record<string, number> = {}): string[] {
  const s = script.replace(/\$\(\([^()]*\)\)/g, "0"); // arithmetic
  const found = new Set<string>();
  const functions = new Set([...s.matchAll(/^\s*([A-Za-z_]\w*)\s*\(\)/gm)].map((m) => m[1] ?? ""));
  let i = 0;
  const emit = (words: string[]) => {
    let k = 0;
    for (;;) {
      const w = words[k];
      if (w === undefined) return;
      if (/^[A-Za-z_]\w*=/.test(w) || prefixes.has(w)) k++;
      else break;
    }
    let cmd = words[k];
    if (cmd === undefined || ["for", "case", "in", "fi", "done", "esac", "}"].includes(cmd)) return;
    const skip = wrappers[cmd];
    if (skip !== undefined) cmd = words[k + 1 + skip];
    if (cmd === undefined || cmd.includes("$") || cmd.includes("\0")) return;
    if (!functions.has(cmd)) found.add(cmd);
  };
  const sequence = (close: boolean): void => {
    let words: string[] = [];
    let word = "";
    const endWord = () => {
      if (word !== "") words.push(word);
      word = "";
    };
    const endCommand = () => {
      endWord();
      if (words.length > 0) emit(words);
      words = [];
    };
    while (i < s.length) {
      const c = s[i] ?? "";
      if (close && c === ")") {
        i++;
        return endCommand();
      }
      if (c === "'") {
        i = s.indexOf("'", i + 1) + 1;
        word += "\0";
      } else if (c === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\") i += 2;
          else if (s[i] === "$" && s[i + 1] === "(") {
            i += 2;
            sequence(true);
          } else i++;
        }
        i++;
        word += "\0";
      } else if (c === "$" && s[i + 1] === "(") {
        i += 2;
        sequence(true);
        word += "$";
      } else if (c === "\\") {
        word += s[i + 1] ?? "";
        i += 2;
      } else if (c === "#" && word === "") {
        while (i < s.length && s[i] !== "\n") i++;
      } else if (c === ">" || c === "<") {
        if (/^\d+$/.test(word)) word = "";
        endWord();
        i++;
        while (s[i] === ">" || s[i] === "&") i++;
        while (s[i] === " ") i++;
        while (i < s.length && !/[\s;|&)]/.test(s[i] ?? "")) i++; // the target
      } else if (/[;&|\n(){}]/.test(c) && !(c === "{" && word !== "") && !(c === "}" && word !== "")) {
        endCommand();
        i++;
      } else if (/\s/.test(c)) {
        endWord();
        i++;
      } else {
        word += c;
        i++;
      }
    }
    endCommand();
  };
  sequence(false);
  return [...found].sort();
}

// ---- the image specs ----

// pause is compiled here (removed after the builds below).
const scratch = path.join(tmpdir(), `kvrf-images-test-${process.pid}`);
const specs = imageSpecs(findInputs(root, scratch));
const byName = (name: string): ImageSpec => {
  const s = specs.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no image ${name}`);
  return s;
};
const dests = (spec: ImageSpec, layer?: string) => spec.layers.filter((l) => layer === undefined || l.name === layer).flatMap((l) => l.items.map((i) => i.dest));
const pathDirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/** Command names found on the image's PATH. */
const onPath = (spec: ImageSpec) => new Set(dests(spec).filter((d) => pathDirs.includes(path.posix.dirname(d))).map((d) => path.posix.basename(d)));
const packageJson = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string> };

describe("images without Docker follow their Dockerfiles' final stage", () => {
  const mirrored = specs.filter((s) => s.dockerfile !== undefined);
  it("covers both Dockerfiles", () => {
    expect(mirrored.map((s) => s.dockerfile).sort()).toEqual(["images/gobgpd/Dockerfile", "images/kvrf/Dockerfile"]);
  });

  for (const spec of mirrored) {
    describe(spec.dockerfile ?? "", () => {
      const stage = finalStage(spec);

      it("puts exactly the COPYed files into the app layer", () => {
        expect(stage.copies.length).toBeGreaterThan(0);
        expect(dests(spec, "app").sort()).toEqual([...stage.copies].sort());
      });

      it("runs as the same user with the same entrypoint, command, environment and working directory", () => {
        expect(spec.config.User).toBe(stage.user);
        expect(spec.config.Entrypoint).toEqual(stage.entrypoint);
        expect(spec.config.Cmd).toEqual(stage.cmd);
        for (const [k, v] of Object.entries(stage.env)) expect(spec.config.Env).toContain(`${k}=${v}`);
        expect(spec.config.WorkingDir).toBe(stage.workdir);
        expect(spec.config.Env.find((e) => e.startsWith("PATH="))).toBeDefined();
      });

      it("stands in for every Debian package the final stage installs", () => {
        expect(Object.keys(spec.debianPackages ?? {}).sort()).toEqual([...stage.aptPackages].sort());
        for (const paths of Object.values(spec.debianPackages ?? {})) for (const p of paths) expect(dests(spec)).toContain(p);
      });

      it("has what the base image provides that the image relies on", () => {
        const base = stage.from.split(":")[0];
        if (base === "node") {
          // The Dockerfile's Node is the project's pinned Node, which the builder copies.
          expect(stage.from).toMatch(new RegExp(`^node:${packageJson.devDependencies["node"]}-`));
          expect(dests(spec)).toContain("/usr/local/bin/node");
          expect(spec.config.Entrypoint?.[0] === "node" && onPath(spec).has("node")).toBe(true);
        } else if (base === "debian") {
          expect(onPath(spec).has("sh")).toBe(true);
        } else throw new Error(`unknown base image ${stage.from}`);
      });
    });
  }

  it("builds gobgpd at the version its image is tagged with", () => {
    const stages = parseDockerfile(readFileSync(path.join(root, "images/gobgpd/Dockerfile"), "utf8"));
    expect(stages[0]?.args["GOBGP_VERSION"]).toBe(`v${byName("gobgpd").ref.split(":").pop()}`);
  });

  it("gives gobgpd's scripts every command they run", () => {
    const spec = byName("gobgpd");
    for (const script of ["gobgpd-entrypoint", "gobgp-drain", "gobgp-alive"]) {
      const text = readFileSync(path.join(root, "images/gobgpd", script), "utf8");
      expect(text.startsWith("#!/bin/sh\n")).toBe(true);
      for (const cmd of scriptCommands(text)) {
        if (cmd.startsWith("/")) expect(dests(spec), `${script}: ${cmd}`).toContain(cmd);
        else expect(shellWords.has(cmd) || onPath(spec).has(cmd), `${script}: ${cmd}`).toBe(true);
      }
      // Defaults of the paths it takes from the environment ("${GOBGP:-/usr/local/bin/gobgp}").
      for (const m of text.matchAll(/:-(\/usr\/local\/bin\/[\w-]+)/g)) expect(dests(spec)).toContain(m[1]);
    }
    expect([...gobgpdApplets].every((a) => onPath(spec).has(a))).toBe(true);
  });

  it("gives kvrfd the commands it runs: iproute2 and its kernel probe's shell", () => {
    const spec = byName("kvrf");
    // nsenter only serves namespaces given by path (the CNI plugin on the host, tests); kvrfd has none.
    expect(onPath(spec).has(binaries.ip) && onPath(spec).has(binaries.bridge)).toBe(true);
    const probe = ["unshare", "sh", ...[true, false].flatMap((inPlace) => scriptCommands(probeScript({ prefix: "kvp", table: 100, inPlace }), { try: 1 }))];
    expect(probe).toContain("tr");
    for (const cmd of probe) expect(shellWords.has(cmd) || onPath(spec).has(cmd), cmd).toBe(true);
    expect(Object.keys(kvrfShellTools).every((a) => onPath(spec).has(a))).toBe(true);
    // Debian's busybox ash prefers its applets to PATH: with it, the probe's `ip` would be busybox's.
    expect(spec.layers.flatMap((l) => l.items).some((i) => i.type === "host" && i.dest.endsWith("/busybox"))).toBe(false);
  });

  it("has every command the DaemonSet runs, under the names the lab overlay gives the images", () => {
    const overlay = load(readFileSync(path.join(root, "manifests/overlays/lab/kustomization.yaml"), "utf8")) as { images: { name: string; newName: string; newTag: string }[] };
    const ds = load(readFileSync(path.join(root, "manifests/base/daemonset.yaml"), "utf8")) as {
      spec: { template: { spec: Record<"initContainers" | "containers", { name: string; image: string; command?: string[]; lifecycle?: { preStop?: { exec?: { command: string[] } } } }[]> } };
    };
    const pod = ds.spec.template.spec;
    const seen = new Set<string>();
    for (const c of [...pod.initContainers, ...pod.containers]) {
      const name = c.image.split(":")[0];
      const o = overlay.images.find((x) => x.name === name);
      expect(o, `${c.name}: ${c.image} not renamed by the lab overlay`).toBeDefined();
      const spec = specs.find((s) => s.ref === `${o?.newName}:${o?.newTag}`);
      expect(spec, `${c.name}: no image ${o?.newName}:${o?.newTag}`).toBeDefined();
      if (spec === undefined) continue;
      seen.add(spec.name);
      for (const argv of [c.command ?? spec.config.Entrypoint ?? [], c.lifecycle?.preStop?.exec?.command ?? []]) {
        const cmd = argv[0];
        if (cmd === undefined) continue;
        if (cmd.startsWith("/")) expect(dests(spec), `${c.name}: ${cmd}`).toContain(cmd);
        else expect(onPath(spec).has(cmd), `${c.name}: ${cmd}`).toBe(true);
        // `node FILE`: the file too.
        if (cmd === "node" && argv[1] !== undefined) expect(dests(spec), `${c.name}: ${argv[1]}`).toContain(argv[1]);
      }
    }
    expect([...seen].sort()).toEqual(["gobgpd", "kvrf"]);
  });
});

describe("the Dockerfile parser and the script reader the comparison relies on", () => {
  it("reads a final stage: COPY into a directory and onto a file, USER, ENTRYPOINT, ENV, apt packages", () => {
    const stages = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "FROM golang:1 AS build",
        "ARG V=v1",
        "FROM debian:12",
        "WORKDIR /w",
        "RUN apt-get update \\",
        " && apt-get install -y --no-install-recommends iproute2=6.1.0-3 curl \\",
        " && rm -rf /var/lib/apt/lists/*",
        "COPY --from=build /a /b /opt/x/",
        "COPY c rel/c2",
        "ENV A=1 B=\"two\"",
        "USER 1:2",
        'CMD ["x"]',
        'ENTRYPOINT ["/e", "-v"]',
      ].join("\n"),
    );
    expect(stages.map((s) => s.from)).toEqual(["golang:1", "debian:12"]);
    expect(stages[0]?.args).toEqual({ V: "v1" });
    const s = stages[1];
    expect(s?.copies).toEqual(["/opt/x/a", "/opt/x/b", "/w/rel/c2"]);
    expect(s?.aptPackages).toEqual(["iproute2", "curl"]);
    expect(s?.env).toEqual({ A: "1", B: "two" });
    expect(s?.user).toBe("1:2");
    expect(s?.entrypoint).toEqual(["/e", "-v"]);
    expect(s?.cmd).toBeUndefined();
  });

  it("finds commands in pipelines, substitutions, conditions and loops, not in strings or redirections", () => {
    const script = [
      "#!/bin/sh",
      'set -u; x="$(awk \'{ print $1 }\' f | sort)"',
      'for p in $(ls /x 2>/dev/null); do if grep -q a "$p" 2>&1; then echo "it\'s; fine $(date)"; fi; done',
      'n=$((n + 1)); "$tool" run >/dev/null 2>&1 && exec /usr/bin/real --flag',
      "f() { head -1; }; f",
    ].join("\n");
    expect(scriptCommands(script)).toEqual(["/usr/bin/real", "awk", "date", "echo", "grep", "head", "ls", "set", "sort"]);
  });
});

// ---- real builds ----

async function sha256(file: string, gunzip = false): Promise<string> {
  const h = createHash("sha256");
  const sink = async (src: AsyncIterable<Buffer>) => {
    for await (const chunk of src) h.update(chunk);
  };
  await (gunzip ? pipeline(createReadStream(file), createGunzip(), sink) : pipeline(createReadStream(file), sink));
  return `sha256:${h.digest("hex")}`;
}

/** GNU tar's view of an archive's headers: [mode, owner, size, date, name]. */
function listing(file: string, gzip = false): { mode: string; owner: string; date: string; name: string }[] {
  const out = execFileSync("tar", [gzip ? "-tvzf" : "-tvf", file, "--numeric-owner", "--full-time"], { encoding: "utf8", env: { ...process.env, TZ: "UTC" }, maxBuffer: 64 << 20 });
  return out
    .trim()
    .split("\n")
    .map((line) => {
      const [mode = "", owner = "", , day = "", time = "", ...rest] = line.split(/\s+/);
      return { mode, owner, date: `${day} ${time}`, name: rest.join(" ").replace(/ -> .*$/, "") };
    });
}

interface Layout {
  dir: string;
  index: { manifests: { mediaType: string; digest: string; size: number; platform: { os: string; architecture: string }; annotations: Record<string, string> }[] };
  manifest: { mediaType: string; config: { digest: string; size: number; mediaType: string }; layers: { mediaType: string; digest: string; size: number }[] };
  config: { os: string; architecture: string; config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env: string[] }; rootfs: { type: string; diff_ids: string[] } };
}

const blob = (dir: string, digest: string) => path.join(dir, "blobs", digest.replace(":", "/"));

function extract(archive: string, into: string): Layout {
  rmSync(into, { recursive: true, force: true });
  execFileSync("mkdir", ["-p", into]);
  execFileSync("tar", ["-xf", archive, "-C", into]);
  const read = <T>(f: string) => JSON.parse(readFileSync(f, "utf8")) as T;
  const index = read<Layout["index"]>(path.join(into, "index.json"));
  const digest = index.manifests[0]?.digest ?? "";
  const manifest = read<Layout["manifest"]>(blob(into, digest));
  const config = read<Layout["config"]>(blob(into, manifest.config.digest));
  return { dir: into, index, manifest, config };
}

async function checkLayout(b: Built, spec: ImageSpec, tmp: string): Promise<{ layout: Layout; files: Set<string>; links: Map<string, string> }> {
  const outer = listing(b.archive);
  expect(outer.map((e) => e.name)).toEqual([...outer.map((e) => e.name)].sort());
  expect(outer.map((e) => e.name).filter((n) => !n.startsWith("blobs/"))).toEqual(["index.json", "oci-layout"]);
  const layout = extract(b.archive, path.join(tmp, `${spec.name}-layout`));
  expect(JSON.parse(readFileSync(path.join(layout.dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
  expect(layout.index.manifests).toHaveLength(1);
  const m = layout.index.manifests[0];
  expect(m?.annotations).toEqual({ "io.containerd.image.name": spec.ref, "org.opencontainers.image.ref.name": spec.ref });
  expect(m?.platform).toEqual({ os: "linux", architecture: "amd64" });
  expect(m?.mediaType).toBe(mediaTypes.manifest);
  // Every descriptor's digest and size are its blob's.
  const descriptors = [m ?? { digest: "", size: 0 }, layout.manifest.config, ...layout.manifest.layers];
  for (const d of descriptors) {
    expect(await sha256(blob(layout.dir, d.digest))).toBe(d.digest);
    expect(readFileSync(blob(layout.dir, d.digest)).length).toBe(d.size);
  }
  expect(m?.digest).toBe(b.digest);
  // Nothing in blobs/ that no descriptor names.
  const blobs = outer.map((e) => e.name).filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n));
  expect(blobs.sort()).toEqual(descriptors.map((d) => `blobs/${d.digest.replace(":", "/")}`).sort());
  expect(layout.manifest.config.mediaType).toBe(mediaTypes.config);
  expect(layout.config.os).toBe("linux");
  expect(layout.config.architecture).toBe("amd64");
  expect(layout.config.config).toEqual(spec.config);
  expect(layout.config.rootfs.type).toBe("layers");
  expect(layout.manifest.layers).toHaveLength(spec.layers.length);
  const files = new Set<string>();
  const links = new Map<string, string>();
  for (const [k, l] of layout.manifest.layers.entries()) {
    expect(l.mediaType).toBe(mediaTypes.layerGzip);
    // diff_ids are the digests of the uncompressed layers.
    expect(await sha256(blob(layout.dir, l.digest), true)).toBe(layout.config.rootfs.diff_ids[k]);
    const entries = listing(blob(layout.dir, l.digest), true);
    expect(entries.map((e) => e.name)).toEqual([...entries.map((e) => e.name)].sort());
    for (const e of [...entries, ...outer]) {
      expect(e.owner, e.name).toBe("0/0");
      expect(e.date, e.name).toBe("1970-01-01 00:00:00");
    }
    for (const e of entries) if (e.mode.startsWith("-")) files.add(`/${e.name}`);
  }
  // Symlinks (GNU tar prints "name -> target"), for resolving paths below.
  for (const l of layout.manifest.layers) {
    const out = execFileSync("tar", ["-tvzf", blob(layout.dir, l.digest)], { encoding: "utf8", maxBuffer: 64 << 20 });
    for (const m of out.matchAll(/^l\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+) -> (\S+)$/gm)) links.set(`/${(m[1] ?? "").replace(/\/$/, "")}`, m[2] ?? "");
  }
  return { layout, files, links };
}

/** A path inside the image with its symlinks resolved, as the kernel would. */
function resolveIn(links: Map<string, string>, p: string, depth = 0): string {
  if (depth > 20) throw new Error(`loop at ${p}`);
  const parts = p.split("/").filter((s) => s !== "");
  let cur = "/";
  for (const part of parts) {
    const next = path.posix.join(cur, part);
    const target = links.get(next);
    cur = target === undefined ? next : resolveIn(links, path.posix.resolve(cur, target), depth + 1);
  }
  return cur;
}

const canBuild = existsSync(path.join(root, "dist/kvrfd")) && existsSync(path.join(root, "dist/kvrf"));

describe("built archives", () => {
  let tmp = "";
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), "kvrf-images-"));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it("pause: an OCI layout with one static binary, the same bytes when built twice", async () => {
    const spec = byName("pause");
    const a = await buildImage(spec, path.join(tmp, "a"));
    const { files, layout } = await checkLayout(a, spec, tmp);
    expect([...files]).toEqual(["/pause"]);
    const bin = path.join(layout.dir, "pause");
    execFileSync("tar", ["-xzf", blob(layout.dir, layout.manifest.layers[0]?.digest ?? ""), "-C", layout.dir]);
    expect(sharedLibraries(bin)).toEqual([]);
    expect(execFileSync(bin, ["-v"], { encoding: "utf8" })).toMatch(/^pause/);
    const b = await buildImage(spec, path.join(tmp, "b"));
    expect(await sha256(b.archive)).toBe(await sha256(a.archive));
    expect(b.digest).toBe(a.digest);
  }, 60_000);

  // Needs `npm run build` (dist/); `scripts/test` builds first.
  it.runIf(canBuild)("kvrf: the Dockerfile's files, Node, iproute2 and every shared library they load", async () => {
    const spec = byName("kvrf");
    // Level 1: the archive's structure is the same, and the unit tier a third faster.
    const b = await buildImage(spec, path.join(tmp, "k"), { gzipLevel: 1 });
    const { layout, files, links } = await checkLayout(b, spec, tmp);
    expect(layout.manifest.layers).toHaveLength(2);
    for (const p of [...finalStage(spec).copies, "/usr/local/bin/node", "/usr/sbin/ip", "/usr/sbin/bridge", "/etc/passwd", "/bin/sh"]) {
      expect(files.has(resolveIn(links, p)), p).toBe(true);
    }
    // The dynamic loader and the libraries of every dynamic binary (Node, iproute2, the probe's shell and
    // tools), reachable at the paths ldd names.
    const inputs = findInputs(root, scratch);
    for (const bin of [inputs.node, inputs.ip, inputs.bridge, ...Object.values(kvrfShellTools)]) {
      const libs = sharedLibraries(bin);
      expect(libs.some((l) => l.includes("ld-linux"))).toBe(true);
      for (const lib of libs) expect(files.has(resolveIn(links, lib)), lib).toBe(true);
    }
    expect(layout.config.config.User).toBe("65532:65532");
    expect(layout.config.config.Entrypoint).toEqual(["node", "/opt/kvrf/kvrfd"]);
    expect(b.size).toBeGreaterThan(50 << 20);
  }, 180_000);
});
