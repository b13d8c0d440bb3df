// The CNI plugin's credentials: a kvrf-cni service-account token bound to this node's Node object,
// requested with the TokenRequest API by the installer (running as kvrfd). Binding it to the Node
// makes the API server put the node's name into every request's user info, which is what the
// admission policy restricts by; the token dies with the Node and expires after a day at most, so
// the installer's sidecar keeps replacing it.
import { KubeError, type KubeClient } from "../kube/client.js";

export interface NodeInfo {
  uid: string;
  annotations: Record<string, string>;
}

export async function readNode(client: KubeClient, nodeName: string): Promise<NodeInfo> {
  const res = await client.request<{ metadata?: { uid?: string; annotations?: Record<string, string> } }>(
    "GET",
    `/api/v1/nodes/${encodeURIComponent(nodeName)}`,
  );
  const uid = res.body.metadata?.uid;
  if (uid === undefined) throw new KubeError(0, "BadResponse", `node ${nodeName}: no metadata.uid in the API server's answer`);
  return { uid, annotations: res.body.metadata?.annotations ?? {} };
}

export interface TokenRequestOptions {
  namespace: string;
  serviceAccount: string;
  nodeName: string;
  nodeUid: string;
  expirationSeconds: number;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export async function requestNodeBoundToken(client: KubeClient, o: TokenRequestOptions): Promise<IssuedToken> {
  const res = await client.request<{ status?: { token?: string; expirationTimestamp?: string } }>(
    "POST",
    `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/serviceaccounts/${encodeURIComponent(o.serviceAccount)}/token`,
    {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          expirationSeconds: o.expirationSeconds,
          boundObjectRef: { apiVersion: "v1", kind: "Node", name: o.nodeName, uid: o.nodeUid },
        },
      },
    },
  );
  const token = res.body.status?.token;
  const exp = res.body.status?.expirationTimestamp;
  if (token === undefined || token === "" || exp === undefined) {
    throw new KubeError(0, "BadResponse", `TokenRequest for ${o.namespace}/${o.serviceAccount}: no token in the answer`);
  }
  return { token, expiresAt: new Date(exp) };
}

/**
 * The `iat` and `exp` claims of a JWT, unverified: only used to schedule the next refresh of a
 * token found on disk. Undefined when the token is not a readable JWT.
 */
export function tokenTimes(token: string): { issuedAt: Date; expiresAt: Date } | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const { iat, exp } = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { iat?: unknown; exp?: unknown };
    if (typeof iat !== "number" || typeof exp !== "number" || !Number.isFinite(iat) || !Number.isFinite(exp)) return undefined;
    return { issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds until a token issued at `issuedAt` and expiring at `expiresAt` should be replaced:
 * at half its lifetime, so a refresh that fails has the other half to succeed in; never negative.
 */
export function refreshDelay(now: Date, issuedAt: Date, expiresAt: Date): number {
  const half = issuedAt.getTime() + (expiresAt.getTime() - issuedAt.getTime()) / 2;
  return Math.max(0, half - now.getTime());
}
