// CNI error codes and the one error type the plugin reports with.
// Codes: CNI spec 1.1.0 "Error" section; 100+ are ours.
// https://github.com/containernetworking/cni/blob/spec-v1.1.0/SPEC.md#error

export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IOFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  /** kvrf: a kernel operation failed. */
  Kernel: 100,
  /** kvrf: the Kubernetes API refused or failed a request. */
  KubernetesApi: 101,
  /** kvrf: the delegated IPAM plugin failed. */
  Ipam: 102,
  /** kvrf: the VPC's route target is already claimed by another VPC. */
  RouteTargetCollision: 103,
  /** kvrf: the node's kernel lacks a capability the data plane needs (named with its kernel option). */
  MissingCapability: 104,
  /** kvrf: the VPC's VNI (VXLAN) is already claimed by another VPC. */
  VniCollision: 105,
  Internal: 999,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error the plugin prints as CNI error JSON on stdout and exits non-zero with. */
export class CniError extends Error {
  override readonly name = "CniError";

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details = "",
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /**
   * Turns anything thrown into a CniError, and never throws itself (whatever was thrown may have
   * a throwing getter or toString). A failed system call (ENOSPC, EROFS, EACCES on a file…) is an
   * I/O failure (code 5); anything else unexpected is code 999 with its message. Never the stack:
   * error JSON goes to the runtime and from there to users, stacks go to the log (`stackOf`).
   */
  static from(err: unknown): CniError {
    try {
      if (err instanceof CniError) return err;
      if (err instanceof Error) {
        if (fileErrorCode(err) !== undefined) return new CniError(ErrorCode.IOFailure, systemMessage(err), "", { cause: err });
        return new CniError(ErrorCode.Internal, String(err.message), "", { cause: err });
      }
      return new CniError(ErrorCode.Internal, `non-error thrown: ${describeThrown(err)}`);
    } catch {
      return new CniError(ErrorCode.Internal, "an unprintable value was thrown");
    }
  }

  /**
   * The error JSON. Message and details are bounded: a field's value may be megabytes (the
   * property tests send such configs), and the runtime shows the message to users.
   */
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return {
      cniVersion,
      code: this.code,
      msg: bounded(this.message, maxMessage),
      ...(this.details === "" ? {} : { details: bounded(this.details, maxDetails) }),
    };
  }
}

const maxMessage = 2000;
const maxDetails = 8000;

function bounded(text: string, max: number): string {
  if (text.length <= max) return text;
  const keep = max - 40;
  return `${text.slice(0, keep)}… (${text.length - keep} more characters)`;
}

/** Failed system calls that mean "could not read or write a file" (CNI code 5). */
const ioErrors: ReadonlySet<string> = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EIO", "EISDIR", "ENOTDIR", "ENOENT", "EMFILE", "ENFILE", "EFBIG"]);

/**
 * The errno name of a failed file system call (node:fs), if `err` is one; not a failed spawn or
 * socket. A call on a path counts whatever its code: Node 24's rmSync reports EROFS as code ""
 * (errno UV_UNKNOWN, "Unknown error: Read-only file system").
 */
export function fileErrorCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Partial<NodeJS.ErrnoException>;
  if (typeof e.syscall !== "string" || e.syscall.startsWith("spawn")) return undefined;
  if (typeof e.code === "string" && ioErrors.has(e.code)) return e.code;
  return typeof e.path === "string" ? e.code || "EUNKNOWN" : undefined;
}

/** The message of a failed system call, without the stray ", " Node 24's rmSync puts first. */
function systemMessage(err: Error): string {
  const e = err as Partial<NodeJS.ErrnoException>;
  return err.message.startsWith(", ") ? `${e.syscall ?? "?"} ${e.path ?? ""}: ${err.message.slice(2)}` : err.message;
}

/** A failed read or write of the file or directory that config field `field` names: code 5, naming both. */
export function ioFailure(field: string, where: string, err: unknown): CniError {
  if (err instanceof CniError || fileErrorCode(err) === undefined) return CniError.from(err);
  return new CniError(ErrorCode.IOFailure, `${field} ${where}: ${systemMessage(err as Error)}`, "", { cause: err });
}

/** The stack of anything thrown, for the log (never for stdout), following `cause`. */
export function stackOf(err: unknown): string {
  const parts: string[] = [];
  try {
    for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
      parts.push(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : describeThrown(e));
      e = e instanceof Error ? e.cause : undefined;
    }
  } catch {
    parts.push("(unprintable)");
  }
  return parts.join("\ncaused by: ");
}

/** Text for a thrown value that is not an Error (a string, a number, a plain object…). */
function describeThrown(v: unknown): string {
  if (typeof v === "object" && v !== null) return JSON.stringify(v) ?? Object.prototype.toString.call(v);
  return typeof v === "symbol" ? v.toString() : typeof v === "function" ? `function ${v.name}` : String(v);
}
