// Writes an object straight into the control plane's etcd, past kube-apiserver and so past
// admission: how a test shows what kvrfd does with an object the admission policies would refuse
// (written while a policy binding was removed, or stored before the policy existed) without
// touching the policies that other test files, sharing the API server, rely on. Uses etcd's JSON
// gateway (/v3/kv/*, keys and values base64); custom resources are stored as JSON under
// /registry/<group>/<plural>/<name> (cluster-scoped). kube-apiserver's watch on etcd sees the
// write like any other, so informers get an ordinary update event.
const b64 = (s: string): string => Buffer.from(s).toString("base64");

async function call(etcdUrl: string, op: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${etcdUrl}/v3/kv/${op}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  if (!res.ok) throw new Error(`etcd ${op}: HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Reads a cluster-scoped custom resource from etcd, lets `mutate` change it, and writes it back
 * only if nobody wrote it meanwhile (a compare on its mod revision). Returns the written object.
 */
export async function rewriteInEtcd<T extends { metadata: { generation?: number } }>(
  etcdUrl: string,
  group: string,
  plural: string,
  name: string,
  mutate: (o: T) => void,
): Promise<T> {
  const key = `/registry/${group}/${plural}/${name}`;
  const got = (await call(etcdUrl, "range", { key: b64(key) })) as { kvs?: { value: string; mod_revision: string }[] };
  const kv = got.kvs?.[0];
  if (kv === undefined) throw new Error(`etcd has no ${key}`);
  const obj = JSON.parse(Buffer.from(kv.value, "base64").toString("utf8")) as T;
  mutate(obj);
  const txn = (await call(etcdUrl, "txn", {
    compare: [{ key: b64(key), target: "MOD", result: "EQUAL", mod_revision: kv.mod_revision }],
    success: [{ request_put: { key: b64(key), value: b64(JSON.stringify(obj)) } }],
  })) as { succeeded?: boolean };
  if (txn.succeeded !== true) throw new Error(`${key} changed while it was being rewritten`);
  return obj;
}
