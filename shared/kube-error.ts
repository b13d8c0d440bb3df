// The error of a Kubernetes API call, for the CNI plugin and kvrfd alike: an answer that was not
// 2xx (`status` > 0) or no answer at all (`status` 0), with the API's reason.
export class KubeError extends Error {
  override readonly name = "KubeError";
  constructor(
    /** HTTP status; 0 when the request never got an answer. */
    readonly status: number,
    readonly reason: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  /** The HTTP status, under the name client-node's errors use (kvrfd's informer reads either). */
  get code(): number {
    return this.status;
  }
  get notFound(): boolean {
    return this.status === 404;
  }
  get conflict(): boolean {
    return this.status === 409;
  }
  /** Worth retrying: no answer, throttled, or a server error. */
  get unreachable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}
