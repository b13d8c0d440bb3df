// The plugin's entry mechanics: which CNI_* variables each verb needs, config decoding,
// version negotiation, and turning results and errors into stdout JSON. Handlers get a typed
// CmdArgs and never touch process.env or stdout. Modelled on the reference skel
// (containernetworking/cni pkg/skel) so callers see the same errors for the same mistakes.
import { CniError, ErrorCode } from "./error.js";
import { compareVersions, currentVersion, isSupported, supportedVersions, type SpecVersion } from "./version.js";

export const verbs = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type Verb = (typeof verbs)[number];

/** Which CNI_* variables each verb requires (CNI_ARGS is always optional). */
const requiredEnv: Record<string, readonly Verb[]> = {
  CNI_COMMAND: verbs,
  CNI_CONTAINERID: ["ADD", "DEL", "CHECK"],
  CNI_NETNS: ["ADD", "CHECK"],
  CNI_IFNAME: ["ADD", "DEL", "CHECK"],
  CNI_PATH: ["ADD", "DEL", "CHECK", "STATUS", "GC"],
};

/** Lowest config version that may carry each verb (older configs get code 1, as in libcni). */
const minVersion: Partial<Record<Verb, SpecVersion>> = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" };

export interface CmdArgs {
  verb: Verb;
  containerId: string;
  /** Empty when not given (allowed for DEL, GC, STATUS). */
  netns: string;
  ifName: string;
  /** CNI_ARGS as key/value pairs, in order. */
  args: ReadonlyMap<string, string>;
  /** CNI_PATH split on ':' with empty entries dropped. */
  path: readonly string[];
  /** The network config as received, for delegating to IPAM unchanged. */
  stdin: Buffer;
  /** The decoded network config; handlers validate the fields they own. */
  config: Record<string, unknown>;
  cniVersion: SpecVersion;
}

export interface Handlers {
  add(args: CmdArgs): Promise<object>;
  del(args: CmdArgs): Promise<void>;
  check(args: CmdArgs): Promise<void>;
  status(args: CmdArgs): Promise<void>;
  gc(args: CmdArgs): Promise<void>;
}

export interface Io {
  env: Readonly<Record<string, string | undefined>>;
  readStdin(): Promise<Buffer>;
  writeStdout(text: string): void;
  /** Where the stack of an unexpected error (code 999) goes: the log, never stdout. */
  logError?(err: unknown, reported: CniError): void;
}

const containerIdPattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const networkNamePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Runs one plugin invocation and returns the process exit code: 0 with the verb's output (a
 * result for ADD, the versions for VERSION, nothing for the others), or 1 with exactly one CNI
 * error JSON, whatever was thrown. Never throws.
 */
export async function dispatch(handlers: Handlers, io: Io): Promise<number> {
  let errVersion: string = currentVersion;
  try {
    const verb = parseVerb(io.env["CNI_COMMAND"]);
    checkEnv(verb, io.env);
    if (verb === "VERSION") {
      // The reply does not depend on stdin, so it is not read (a terminal would block).
      io.writeStdout(JSON.stringify({ cniVersion: currentVersion, supportedVersions }) + "\n");
      return 0;
    }
    const stdin = await io.readStdin();
    const config = decodeConfig(stdin);
    const declared = config["cniVersion"];
    // Errors speak the config's version when we speak it too (libcni reads either).
    if (typeof declared === "string" && isSupported(declared)) errVersion = declared;
    const cniVersion = checkVersion(verb, declared);
    const args: CmdArgs = {
      verb,
      containerId: io.env["CNI_CONTAINERID"] ?? "",
      netns: io.env["CNI_NETNS"] ?? "",
      ifName: io.env["CNI_IFNAME"] ?? "",
      args: parseCniArgs(io.env["CNI_ARGS"] ?? ""),
      path: (io.env["CNI_PATH"] ?? "").split(":").filter((p) => p !== ""),
      stdin,
      config,
      cniVersion,
    };
    if (verb === "ADD" || verb === "DEL" || verb === "CHECK") {
      validateContainerId(args.containerId);
      validateIfName(args.ifName);
    }
    if (verb === "ADD" || verb === "CHECK") validateNetns(args.netns);
    switch (verb) {
      case "ADD": {
        const result = JSON.stringify(await handlers.add(args));
        io.writeStdout(result + "\n");
        return 0;
      }
      case "DEL":
        await handlers.del(args);
        return 0;
      case "CHECK":
        await handlers.check(args);
        return 0;
      case "STATUS":
        await handlers.status(args);
        return 0;
      case "GC":
        await handlers.gc(args);
        return 0;
    }
  } catch (err) {
    const e = CniError.from(err);
    try {
      if (e.code === ErrorCode.Internal) io.logError?.(err, e);
    } catch {
      // the log is best effort; the answer below is not
    }
    try {
      io.writeStdout(JSON.stringify(e.toJSON(errVersion)) + "\n");
    } catch {
      // stdout is gone (the runtime closed it): the exit status is all that is left to say
    }
    return 1;
  }
}

function parseVerb(value: string | undefined): Verb {
  if (value === undefined || value === "") {
    throw new CniError(ErrorCode.InvalidEnvironment, "required env variables [CNI_COMMAND] missing");
  }
  if (!(verbs as readonly string[]).includes(value)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${value}`);
  }
  return value as Verb;
}

function checkEnv(verb: Verb, env: Io["env"]): void {
  const missing = Object.entries(requiredEnv)
    .filter(([name, needers]) => needers.includes(verb) && (env[name] ?? "") === "")
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required env variables [${missing.join(", ")}] missing`);
  }
}

export function decodeConfig(stdin: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin.toString("utf8"));
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, `decoding network config from stdin: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new CniError(ErrorCode.DecodingFailure, "decoding network config from stdin: not a JSON object");
  }
  const config = parsed as Record<string, unknown>;
  const deep = tooDeep(config);
  if (deep !== undefined) {
    throw new CniError(ErrorCode.InvalidConfig, `${deep}: nested more than ${maxNesting} levels deep`);
  }
  const name = config["name"];
  if (typeof name !== "string" || name === "") {
    throw new CniError(ErrorCode.InvalidConfig, "missing network name: field \"name\" is required");
  }
  if (!networkNamePattern.test(name)) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid network name "${name}": must match ${networkNamePattern.source}`);
  }
  return config;
}

/**
 * How deep a config may nest. Real ones nest a few levels (ipam.ranges, prevResult); anything
 * much deeper would only overflow the stack of whatever walks it recursively (JSON.stringify in
 * an error message, for one) and turn a bad config into an internal error.
 */
const maxNesting = 64;

/** The top-level key of the first value nested deeper than maxNesting, walked without recursion. */
function tooDeep(config: Record<string, unknown>): string | undefined {
  for (const [key, value] of Object.entries(config)) {
    const stack: [unknown, number][] = [[value, 1]];
    for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
      const [v, depth] = item;
      if (typeof v !== "object" || v === null) continue;
      if (depth > maxNesting) return key;
      for (const child of Object.values(v)) stack.push([child, depth + 1]);
    }
  }
  return undefined;
}

function checkVersion(verb: Verb, declared: unknown): SpecVersion {
  // A config without cniVersion is 0.1.0 by the spec's history, which we do not speak.
  const version = typeof declared === "string" && declared !== "" ? declared : "0.1.0";
  if (!isSupported(version)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `cniVersion: incompatible CNI versions: config is ${JSON.stringify(version)}, plugin supports [${supportedVersions.join(" ")}]`,
    );
  }
  const min = minVersion[verb];
  if (min !== undefined && compareVersions(version, min) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `cniVersion: config version "${version}" does not allow ${verb} (needs ${min} or newer)`,
    );
  }
  return version;
}

/** Parses CNI_ARGS ("K=V;K2=V2"); empty segments are ignored, a segment without "=" is an error. */
export function parseCniArgs(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of raw.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: invalid pair "${pair}" (want KEY=VALUE)`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

function validateContainerId(id: string): void {
  if (!containerIdPattern.test(id)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `invalid characters in CNI_CONTAINERID "${id}"`);
  }
}

/**
 * CNI_NETNS: an absolute path (the runtime's /var/run/netns/…, /proc/PID/ns/net). Without
 * whitespace or control characters: it is a word of an `ip -batch` line, where a newline would
 * start another command.
 */
export function validateNetns(netns: string): void {
  if (!netns.startsWith("/") || netns.length > 4096 || /[\s\p{Cc}]/u.test(netns)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_NETNS ${JSON.stringify(netns.slice(0, 200))} is not an absolute path without whitespace`);
  }
}

/** Linux interface names: 1–15 bytes, not "." or "..", no '/', ':' or whitespace. */
export function validateIfName(name: string): void {
  if (name === "." || name === "..") {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME "${name}" cannot be "." or ".."`);
  }
  if (Buffer.byteLength(name) > 15) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME "${name}" is longer than 15 bytes`);
  }
  if (/[/:\s]/.test(name)) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME "${name}" contains '/', ':' or whitespace`);
  }
}
