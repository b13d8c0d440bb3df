// DebugAuth's own logic; the API server's answers to real tokens are exercised in the lab
// (test/lab/kubectl-kvrf.test.ts: no token, wrong audience, RBAC refusal, allowed).
import { describe, expect, it } from "vitest";
import { DebugAuth, type Review } from "./auth.js";

interface Seen {
  kind: string;
  body: { spec: Record<string, unknown> };
}

function fakeApi(users: Record<string, string>, allowed: Set<string>, seen: Seen[] = [], fail?: Error): Review {
  return <T>(kind: "tokenreviews" | "subjectaccessreviews", body: unknown): Promise<T> => {
    const b = body as Seen["body"];
    seen.push({ kind, body: b });
    if (fail !== undefined) return Promise.reject(fail);
    if (kind === "tokenreviews") {
      const user = users[b.spec["token"] as string];
      return Promise.resolve((user === undefined ? { status: { authenticated: false, error: "invalid bearer token" } } : { status: { authenticated: true, user: { username: user, groups: ["g"] } } }) as T);
    }
    return Promise.resolve({ status: { allowed: allowed.has(b.spec["user"] as string), reason: "RBAC: no rule" } } as T);
  };
}

describe("DebugAuth", () => {
  it("asks for the kvrf.dev/kvrfd audience, then RBAC on kvrf.dev nodes/debug named after the node", async () => {
    const seen: Seen[] = [];
    const auth = new DebugAuth({ nodeName: "iad", review: fakeApi({ t1: "alice" }, new Set(["alice"]), seen) });
    expect(await auth.check("Bearer t1")).toEqual({ allowed: true, user: "alice" });
    expect(seen).toEqual([
      { kind: "tokenreviews", body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: "t1", audiences: ["kvrf.dev/kvrfd"] } } },
      {
        kind: "subjectaccessreviews",
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: { user: "alice", groups: ["g"], resourceAttributes: { group: "kvrf.dev", resource: "nodes", subresource: "debug", verb: "get", name: "iad" } },
        },
      },
    ]);
  });

  it("refuses a missing or malformed header without asking the API server", async () => {
    const seen: Seen[] = [];
    const auth = new DebugAuth({ nodeName: "iad", review: fakeApi({}, new Set(), seen) });
    for (const h of [undefined, "", "Basic dTpw", "Bearer", "Bearer a b"]) expect(await auth.check(h)).toMatchObject({ allowed: false, status: 401 });
    expect(seen).toEqual([]);
  });

  it("says 401 for a token the API server rejects, 403 for a user RBAC does not allow", async () => {
    const auth = new DebugAuth({ nodeName: "iad", review: fakeApi({ t2: "bob" }, new Set()) });
    expect(await auth.check("Bearer nope")).toEqual({ allowed: false, status: 401, reason: "token not valid for audience kvrf.dev/kvrfd: invalid bearer token" });
    expect(await auth.check("bearer t2")).toEqual({ allowed: false, status: 403, reason: "bob may not get kvrf.dev nodes/debug iad (RBAC: no rule)" });
  });

  it("reuses an answer for the cache time, then asks again; API failures are 503 and not cached", async () => {
    let now = 1000;
    const seen: Seen[] = [];
    const allowed = new Set(["alice"]);
    const auth = new DebugAuth({ nodeName: "iad", review: fakeApi({ t1: "alice" }, allowed, seen), cacheMs: 10_000, now: () => now });
    await auth.check("Bearer t1");
    allowed.delete("alice"); // the RoleBinding is removed
    expect(await auth.check("Bearer t1")).toMatchObject({ allowed: true });
    expect(seen).toHaveLength(2);
    now += 10_000;
    expect(await auth.check("Bearer t1")).toMatchObject({ allowed: false, status: 403 });
    expect(seen).toHaveLength(4);

    const down = new DebugAuth({ nodeName: "iad", review: fakeApi({}, new Set(), [], new Error("connect ECONNREFUSED")) });
    expect(await down.check("Bearer t1")).toEqual({ allowed: false, status: 503, reason: "cannot ask the API server: connect ECONNREFUSED" });
  });
});
