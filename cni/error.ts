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

  /** Turns anything thrown into a CniError; unknown errors become code 999 with their message. */
  static from(err: unknown): CniError {
    if (err instanceof CniError) return err;
    if (err instanceof Error) return new CniError(ErrorCode.Internal, err.message, err.stack ?? "", { cause: err });
    return new CniError(ErrorCode.Internal, String(err));
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details === "" ? {} : { details: this.details }),
    };
  }
}
