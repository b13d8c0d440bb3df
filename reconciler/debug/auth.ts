// Who may read the debug snapshot: the API server decides, as the kubelet lets it decide for its own
// endpoints. A request carries a bearer token; kvrfd asks the API server whether the token is valid
// for the audience kvrf.dev/kvrfd (TokenReview), then whether that user may `get` the virtual
// resource kvrf.dev nodes/debug named after this node (SubjectAccessReview). Tokens of any other
// audience — a user's or a pod's API token — are refused, so no API credential needs to be sent
// to a node. Answers are cached briefly by a hash of the token, so a burst of requests costs two
// reviews, and removing a RoleBinding takes effect within the cache time.
import { monotonicMs } from "../../shared/clock.js";
import { createHash } from "node:crypto";
import { debugAudience, debugResourceAttributes } from "../../shared/debug-snapshot.js";

export type Review = <T>(kind: "tokenreviews" | "subjectaccessreviews", body: unknown) => Promise<T>;

export type Decision = { allowed: true; user: string } | { allowed: false; status: 401 | 403 | 503; reason: string };

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

interface SubjectAccessReviewStatus {
  allowed?: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

export interface DebugAuthOptions {
  nodeName: string;
  review: Review;
  /** How long an answer (either way) is reused; default 10 s. */
  cacheMs?: number;
  now?: () => number;
}

const maxCached = 256;

export class DebugAuth {
  private readonly cache = new Map<string, { at: number; decision: Decision }>();

  constructor(private readonly opts: DebugAuthOptions) {}

  /** Decides on a request's Authorization header. API errors give 503 (and are not cached). */
  async check(authorization: string | undefined): Promise<Decision> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (m === null) return { allowed: false, status: 401, reason: `a bearer token of audience ${debugAudience} is required (kubectl kvrf mints one)` };
    const token = m[1] as string;
    const key = createHash("sha256").update(token).digest("hex");
    const now = (this.opts.now ?? monotonicMs)();
    const hit = this.cache.get(key);
    if (hit !== undefined && now - hit.at < (this.opts.cacheMs ?? 10_000)) return hit.decision;
    let decision: Decision;
    try {
      decision = await this.decide(token);
    } catch (err) {
      return { allowed: false, status: 503, reason: `cannot ask the API server: ${err instanceof Error ? err.message : String(err)}` };
    }
    if (this.cache.size >= maxCached) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { at: now, decision });
    return decision;
  }

  private async decide(token: string): Promise<Decision> {
    const tr = await this.opts.review<{ status?: TokenReviewStatus }>("tokenreviews", {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, audiences: [debugAudience] },
    });
    const st = tr.status ?? {};
    if (st.authenticated !== true || st.user?.username === undefined) {
      return { allowed: false, status: 401, reason: `token not valid for audience ${debugAudience}${st.error !== undefined && st.error !== "" ? `: ${st.error}` : ""}` };
    }
    const user = st.user;
    const attributes = debugResourceAttributes(this.opts.nodeName);
    const sar = await this.opts.review<{ status?: SubjectAccessReviewStatus }>("subjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: user.username,
        ...(user.uid !== undefined ? { uid: user.uid } : {}),
        groups: user.groups ?? [],
        ...(user.extra !== undefined ? { extra: user.extra } : {}),
        resourceAttributes: attributes,
      },
    });
    const username = user.username as string;
    if (sar.status?.allowed === true) return { allowed: true, user: username };
    const why = sar.status?.reason ?? sar.status?.evaluationError ?? "";
    return {
      allowed: false,
      status: 403,
      reason: `${username} may not get ${attributes.group} ${attributes.resource}/${attributes.subresource} ${attributes.name}${why !== "" ? ` (${why})` : ""}`,
    };
  }
}
