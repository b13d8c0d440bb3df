// Who may do what, against the real API server with manifests/ applied for real: RBAC and the
// node-restriction admission policies. First the identities as they exist on a node — kvrfd's
// pod-bound token, the installer turning it into a node-bound kvrf-cni token and kubeconfig, and
// the CNI plugin's own API code using that kubeconfig. Then a table per identity, impersonated
// by the admin with the node-name user extra the real tokens carry: every allowed operation
// succeeds, everything else (other nodes' objects, other kinds, other Secrets) is refused.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CniError } from "../../cni/error.js";
import { inClusterClient, install, type InstallConfig } from "../../cni/install/install.js";
import { readNode, requestNodeBoundToken } from "../../cni/install/token.js";
import { KubeClient, KubeError, loadKubeconfig, type Credentials } from "../../cni/kube/client.js";
import { claimRouteTarget, publishAttachment, releaseRouteTarget, withdrawAttachment, type VrfIdentity } from "../../cni/kube/objects.js";
import type { Logger } from "../../cni/log.js";
import { waitFor } from "../harness/process.js";
import { repoRoot, tool } from "../harness/tools.js";

const run = promisify(execFile);
const api = "/apis/kvrf.dev/v1alpha1";
const ns = "kvrf-system";
const cniUser = `system:serviceaccount:${ns}:kvrf-cni`;
const kvrfdUser = `system:serviceaccount:${ns}:kvrfd`;
const nodeA = "rbac-a";
const nodeB = "rbac-b";
const apply = "application/apply-patch+yaml";
const jsonPatch = "application/json-patch+json";
const mergePatch = "application/merge-patch+json";
const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

interface Who {
  user: string;
  /** The authentication.kubernetes.io/node-name extra; undefined: none. */
  node?: string;
}

interface Answer {
  status: number;
  body: { message?: string; status?: { token?: string; userInfo?: unknown }; metadata?: { uid?: string; resourceVersion?: string; finalizers?: string[] } };
}

let admin: Credentials;

/** One request as the admin, as an impersonated identity, or with a bearer token. */
function call(as: Who | { token: string } | undefined, method: string, apiPath: string, body?: unknown, contentType = "application/json"): Promise<Answer> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  if (payload) headers["Content-Type"] = contentType;
  const useToken = as !== undefined && "token" in as;
  if (useToken) headers["Authorization"] = `Bearer ${as.token}`;
  else if (as !== undefined) {
    headers["Impersonate-User"] = as.user;
    // Header names cannot hold "/": extra keys are percent-encoded (Kubernetes impersonation docs).
    if (as.node !== undefined) headers["Impersonate-Extra-authentication.kubernetes.io%2fnode-name"] = as.node;
  }
  return new Promise((resolve, reject) => {
    const req = request(
      admin.server + apiPath,
      { method, headers, ca: admin.ca, ...(useToken ? {} : { cert: admin.cert, key: admin.key }), timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: Answer["body"];
          try {
            parsed = text === "" ? {} : (JSON.parse(text) as Answer["body"]);
          } catch {
            parsed = { message: text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${apiPath}: timeout`)));
    req.on("error", reject);
    req.end(payload);
  });
}

const bviBody = (node: string, vpc: string, over: { name?: string; label?: string; nodeName?: string } = {}): object => ({
  apiVersion: "kvrf.dev/v1alpha1",
  kind: "BGPVRFInstance",
  metadata: { name: over.name ?? `${node}.vpc-${vpc}`, labels: { "kvrf.dev/node": over.label ?? node, "kvrf.dev/vpc": vpc } },
  spec: {
    nodeName: over.nodeName ?? node,
    vpc,
    asn: 65000,
    routeDistinguisher: `65000:${parseInt(vpc, 16)}`,
    importRouteTargets: [`65000:${parseInt(vpc, 16)}`],
    exportRouteTargets: [`65000:${parseInt(vpc, 16)}`],
    table: parseInt(vpc, 16),
    attachments: [{ containerID: `c-${node}`, ifName: "eth0", attachment: "1", prefixes: ["10.9.0.1/32"] }],
  },
});

const claimBody = (rt: string, vpc: string, holders: { node: string }[], labels = { "kvrf.dev/vpc": vpc }): object => ({
  apiVersion: "kvrf.dev/v1alpha1",
  kind: "RouteTargetClaim",
  metadata: { name: `rt-${rt.replace(":", "-")}`, labels },
  spec: { routeTarget: rt, vpc, holders },
});

const ssa = (manager: string): string => `?fieldManager=${encodeURIComponent(manager)}&force=false`;

/** The expected status, and a message containing `message`; a mismatch shows the whole answer. */
function expectAnswer(r: Answer, status: number, message?: string): void {
  if (r.status === status && (message === undefined || r.body.message?.includes(message) === true)) return;
  expect({ status: r.status, message: r.body.message }).toEqual({ status, message: message === undefined ? r.body.message : `… ${message} …` });
}

async function adminOk(method: string, apiPath: string, body?: unknown, contentType?: string): Promise<Answer> {
  const r = await call(undefined, method, apiPath, body, contentType);
  if (r.status >= 300 && r.status !== 409) throw new Error(`${method} ${apiPath} as admin: ${r.status} ${r.body.message ?? ""}`);
  return r;
}

describe("identities, RBAC and node restriction", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvrf-rbac-"));

  beforeAll(async () => {
    admin = await loadKubeconfig(inject("kubeconfig"));
    const kubectl = (...args: string[]): Promise<unknown> => run(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), ...args]);
    // The real install: exactly what an operator applies.
    await kubectl("apply", "--server-side", "--force-conflicts", "-k", path.join(repoRoot, "manifests"));
    await kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/bgpvrfinstances.kvrf.dev", "crd/routetargetclaims.kvrf.dev", "crd/vniclaims.kvrf.dev", "crd/bgpinstances.kvrf.dev");
    // Established is not served yet: a new CRD's watch cache answers 429 "storage is (re)initializing" for a moment.
    await waitFor(
      "the kvrf resources served",
      async () => {
        for (const plural of ["bgpvrfinstances", "routetargetclaims", "vniclaims", "bgpinstances"]) {
          if ((await call(undefined, "GET", `${api}/${plural}?watch=1&timeoutSeconds=1`)).status !== 200) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    for (const [name, annotations] of [[nodeA, { "kvrf.dev/srv6-locator": "fd00:0:a::/48" }], [nodeB, {}]] as const) {
      await adminOk("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", metadata: { name, annotations } });
    }
    for (const [namespace, name] of [[ns, "kvrf-bgp-passwords"], [ns, "not-bgp"], ["default", "kvrf-bgp-passwords"]]) {
      await adminOk("POST", `/api/v1/namespaces/${namespace}/secrets`, { apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: { peer: "s3cret" } });
    }
    // Another node's objects, and a claim node B holds.
    await adminOk("PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-b1${ssa("fixture")}`, bviBody(nodeB, "b1"), apply);
    await adminOk("PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1${ssa("fixture")}`, bviBody(nodeA, "c1"), apply);
    await adminOk("PATCH", `${api}/routetargetclaims/rt-65000-177${ssa("fixture")}`, claimBody("65000:177", "b1", [{ node: nodeB }]), apply);
    await adminOk("PATCH", `${api}/bgpinstances/rbac-test${ssa("fixture")}`, {
      apiVersion: "kvrf.dev/v1alpha1",
      kind: "BGPInstance",
      metadata: { name: "rbac-test" },
      spec: { nodeSelector: { matchLabels: { "kvrf.dev/rbac-test": "no-such-node" } }, asn: 65000 },
    }, apply);
    await adminOk("PATCH", `${api}/bgpinstances/rbac-test/status?fieldManager=kvrfd-${nodeB}&force=true`, {
      apiVersion: "kvrf.dev/v1alpha1",
      kind: "BGPInstance",
      metadata: { name: "rbac-test" },
      status: { nodes: [{ nodeName: nodeB, asn: 65000, establishedPeers: 1 }], routerIDs: { [nodeB]: "10.255.0.2" }, establishedPeers: { [nodeB]: 1 } },
    }, apply);
    // Policies take effect once the API server has loaded them.
    await waitFor(
      "the node-restriction policies",
      async () => (await call({ user: cniUser }, "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a9${ssa("probe")}`, bviBody(nodeA, "a9"), apply)).status === 403 &&
        (await call({ user: kvrfdUser }, "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1/status`, { status: {} }, mergePatch)).status === 403,
      { timeoutMs: 15_000, intervalMs: 200 },
    );
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const name of [`${nodeA}.vpc-a1`, `${nodeA}.vpc-c1`, `${nodeB}.vpc-b1`]) {
      await call(undefined, "PATCH", `${api}/bgpvrfinstances/${name}`, { metadata: { finalizers: null } }, mergePatch);
      await call(undefined, "DELETE", `${api}/bgpvrfinstances/${name}`);
    }
    for (const name of ["rt-65000-161", "rt-65000-177"]) await call(undefined, "DELETE", `${api}/routetargetclaims/${name}`);
    await call(undefined, "DELETE", `${api}/bgpinstances/rbac-test`);
  });

  describe("real tokens: kvrfd's pod-bound token, the installer, the CNI plugin's kubeconfig", () => {
    const saDir = path.join(dir, "sa");
    const conf = path.join(dir, "net.d");
    let cfg: InstallConfig;
    let cni: KubeClient | undefined;

    beforeAll(async () => {
      for (const d of [saDir, conf, path.join(dir, "bin")]) mkdirSync(d, { recursive: true });
      // kvrfd's pod on node A and the token the kubelet would project into it.
      const pod = await adminOk("POST", `/api/v1/namespaces/${ns}/pods`, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `kvrf-node-${nodeA}` },
        spec: { serviceAccountName: "kvrfd", nodeName: nodeA, automountServiceAccountToken: false, containers: [{ name: "kvrfd", image: "kvrf/kvrf:0.1.0" }] },
      });
      const uid = pod.body.metadata?.uid ?? (await adminOk("GET", `/api/v1/namespaces/${ns}/pods/kvrf-node-${nodeA}`)).body.metadata?.uid;
      const tr = await adminOk("POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrfd/token`, {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { boundObjectRef: { apiVersion: "v1", kind: "Pod", name: `kvrf-node-${nodeA}`, uid } },
      });
      writeFileSync(path.join(saDir, "token"), tr.body.status?.token ?? "");
      writeFileSync(path.join(saDir, "ca.crt"), admin.ca ?? "");
      writeFileSync(path.join(saDir, "namespace"), ns);
      writeFileSync(path.join(dir, "kvrf"), "#!plugin\n");
      writeFileSync(
        path.join(dir, "conflist.template"),
        JSON.stringify({ cniVersion: "1.1.0", name: "kvrf", plugins: [{ type: "kvrf", vpc: "a1", nodeName: "@NODE_NAME@", kubeconfig: "@KUBECONFIG@", srv6Locator: "@SRV6_LOCATOR@", ipam: { type: "host-local" } }] }),
      );
      cfg = {
        nodeName: nodeA,
        namespace: ns,
        serviceAccount: "kvrf-cni",
        binarySource: path.join(dir, "kvrf"),
        binDir: path.join(dir, "bin"),
        confDir: conf,
        hostConfDir: conf,
        conflistName: "90-kvrf.conflist",
        conflistTemplate: path.join(dir, "conflist.template"),
        apiServer: inject("apiserverUrl"),
        caCert: admin.ca ?? Buffer.alloc(0),
        tokenSeconds: 3600,
      };
    });

    afterAll(() => cni?.close());

    it("kvrfd's pod-bound token names its node", async () => {
      const r = await call({ token: readFileSync(path.join(saDir, "token"), "utf8") }, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      });
      expect(r.body.status?.userInfo).toMatchObject({ username: kvrfdUser, extra: { "authentication.kubernetes.io/node-name": [nodeA] } });
    });

    it("the installer, as kvrfd, writes a kubeconfig whose token is kvrf-cni bound to node A", async () => {
      const client = await inClusterClient(saDir, inject("apiserverUrl"));
      try {
        await install(client, cfg, silent);
      } finally {
        client.close();
      }
      const conflist = JSON.parse(readFileSync(path.join(conf, "90-kvrf.conflist"), "utf8")) as { plugins: { kubeconfig: string; srv6Locator: string }[] };
      expect(conflist.plugins[0]).toMatchObject({ kubeconfig: path.join(conf, "kvrf.kubeconfig"), srv6Locator: "fd00:0:a::/48" });
      cni = new KubeClient(await loadKubeconfig(path.join(conf, "kvrf.kubeconfig")));
      const who = await cni.request<Answer["body"]>("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      });
      expect(who.body.status?.userInfo).toMatchObject({ username: cniUser, extra: { "authentication.kubernetes.io/node-name": [nodeA] } });
    });

    it("the installer cannot mint a kvrf-cni token for another node", async () => {
      const client = await inClusterClient(saDir, inject("apiserverUrl"));
      try {
        const node = await readNode(client, nodeB);
        const err: unknown = await requestNodeBoundToken(client, { namespace: ns, serviceAccount: "kvrf-cni", nodeName: nodeB, nodeUid: node.uid, expirationSeconds: 3600 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KubeError);
        expect((err as KubeError).status).toBe(403);
        expect((err as KubeError).message).toContain(`may only request kvrf-cni tokens bound to Node ${nodeA}`);
      } finally {
        client.close();
      }
    });

    it("the CNI plugin's API code works for its node with that kubeconfig, and only for its node", async () => {
      if (cni === undefined) throw new Error("no CNI client");
      const own: VrfIdentity = { nodeName: nodeA, vpcHex: "a1", asn: 65000, rd: "65000:161", rt: "65000:161", table: 161, encapsulation: "srv6" };
      const att = { containerID: "c1", ifName: "eth0", attachment: "1", prefixes: ["10.1.0.5/32"] };
      await claimRouteTarget(cni, own);
      await publishAttachment(cni, own, att);
      // A claim node B holds too: node A adds and removes its own holder entry, B's stays.
      const shared: VrfIdentity = { nodeName: nodeA, vpcHex: "b1", asn: 65000, rd: "65000:177", rt: "65000:177", table: 177, encapsulation: "srv6" };
      await claimRouteTarget(cni, shared);
      const both = (await call(undefined, "GET", `${api}/routetargetclaims/rt-65000-177`)).body as { spec?: { holders?: { node: string }[] } };
      expect(both.spec?.holders?.map((h) => h.node).sort()).toEqual([nodeA, nodeB]);
      expect(await releaseRouteTarget(cni, "65000:177", nodeA)).toBe("kept");
      const claim = (await call(undefined, "GET", `${api}/routetargetclaims/rt-65000-177`)).body as { spec?: { holders?: unknown[] } };
      expect(claim.spec?.holders).toEqual([{ node: nodeB }]);

      const foreign: VrfIdentity = { ...own, nodeName: nodeB };
      const err: unknown = await publishAttachment(cni, foreign, att).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CniError);
      expect((err as CniError).code).toBe(101);
      expect((err as CniError).message).toContain(`kvrf-cni of node ${nodeA} may only write BGPVRFInstances of its own node`);

      expect(await withdrawAttachment(cni, nodeA, "a1", "c1", "eth0")).toBe("gone");
      // Its last holder: the claim goes.
      expect(await releaseRouteTarget(cni, "65000:161", nodeA)).toBe("gone");
      expect((await call(undefined, "GET", `${api}/routetargetclaims/rt-65000-161`)).status).toBe(404);
    });

    it("a kvrf-cni token bound to no node is refused", async () => {
      const tr = await adminOk("POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrf-cni/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {} });
      const r = await call({ token: tr.body.status?.token ?? "" }, "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a2${ssa("x")}`, bviBody(nodeA, "a2"), apply);
      expect(r.status).toBe(403);
      expect(r.body.message).toContain("kvrf-cni must authenticate with a service-account token bound to its Node");
    });
  });

  // [what, method, path, body, content type, expected status, expected message fragment]
  type Row = [string, string, string, unknown, string | undefined, number, string?];
  const own = `may only write BGPVRFInstances of its own node`;
  const holderOwn = "may only add or remove the claim holder entry of its own node";
  const rbac = "is forbidden: User";
  const cniA: Who = { user: cniUser, node: nodeA };
  const kvrfdA: Who = { user: kvrfdUser, node: nodeA };

  const cniRows: Row[] = [
    ["create its node's BGPVRFInstance (server-side apply)", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a3${ssa("kvrf-cni/c3/eth0")}`, bviBody(nodeA, "a3"), apply, 201],
    ["read it", "GET", `${api}/bgpvrfinstances/${nodeA}.vpc-a3`, undefined, undefined, 200],
    ["claim a route target", "PATCH", `${api}/routetargetclaims/rt-65000-163${ssa(`kvrf-cni-node/${nodeA}`)}`, claimBody("65000:163", "a3", [{ node: nodeA }]), apply, 201],
    ["add its own holder entry to a claim another node holds", "PATCH", `${api}/routetargetclaims/rt-65000-177${ssa(`kvrf-cni-node/${nodeA}`)}`, claimBody("65000:177", "b1", [{ node: nodeA }]), apply, 200],
    ["remove its own holder entry again", "PATCH", `${api}/routetargetclaims/rt-65000-177${ssa(`kvrf-cni-node/${nodeA}`)}`, { apiVersion: "kvrf.dev/v1alpha1", kind: "RouteTargetClaim", metadata: { name: "rt-65000-177" } }, apply, 200],
    ["list claims by VPC", "GET", `${api}/routetargetclaims?labelSelector=kvrf.dev%2Fvpc%3Da3`, undefined, undefined, 200],
    ["read its Node", "GET", `/api/v1/nodes/${nodeA}`, undefined, undefined, 200],
    ["read a pod's namespace (vpcFromNamespace: its kvrf.dev/vpc annotation)", "GET", "/api/v1/namespaces/default", undefined, undefined, 200],
    ["list BGPInstances", "GET", `${api}/bgpinstances`, undefined, undefined, 200],
    ["delete its claim", "DELETE", `${api}/routetargetclaims/rt-65000-163`, undefined, undefined, 200],
    ["delete its BGPVRFInstance", "DELETE", `${api}/bgpvrfinstances/${nodeA}.vpc-a3`, undefined, undefined, 200],
    ["create another node's object", "PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-a4${ssa("m")}`, bviBody(nodeB, "a4"), apply, 403, own],
    ["create its name for another node", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a4${ssa("m")}`, bviBody(nodeA, "a4", { nodeName: nodeB }), apply, 403, own],
    ["label an object with another node", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a4${ssa("m")}`, bviBody(nodeA, "a4", { label: nodeB }), apply, 403, own],
    ["create under a name not its node's", "PATCH", `${api}/bgpvrfinstances/x.vpc-a4${ssa("m")}`, bviBody(nodeA, "a4", { name: "x.vpc-a4" }), apply, 403, own],
    ["change another node's object", "PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-b1${ssa("m")}`, bviBody(nodeB, "b1"), apply, 403, own],
    ["take over another node's object", "PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-b1`, { spec: { nodeName: nodeA }, metadata: { labels: { "kvrf.dev/node": nodeA } } }, mergePatch, 403, own],
    ["delete another node's object", "DELETE", `${api}/bgpvrfinstances/${nodeB}.vpc-b1`, undefined, undefined, 403, own],
    ["write status (kvrfd's)", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1/status`, { status: { localPrefixes: 9 } }, mergePatch, 403, rbac],
    ["list every BGPVRFInstance", "GET", `${api}/bgpvrfinstances`, undefined, undefined, 403, rbac],
    ["add a holder entry of another node to a claim", "PATCH", `${api}/routetargetclaims/rt-65000-177${ssa("m")}`, claimBody("65000:177", "b1", [{ node: "rbac-c" }]), apply, 403, holderOwn],
    ["claim for another node", "PATCH", `${api}/routetargetclaims/rt-65000-165${ssa("m")}`, claimBody("65000:165", "a5", [{ node: nodeB }]), apply, 403, holderOwn],
    ["remove another node's holder entry", "PATCH", `${api}/routetargetclaims/rt-65000-177`, [{ op: "remove", path: "/spec/holders/0" }], jsonPatch, 403, holderOwn],
    ["replace another node's holder entry by its own", "PATCH", `${api}/routetargetclaims/rt-65000-177`, [{ op: "replace", path: "/spec/holders/0", value: { node: nodeA } }], jsonPatch, 403, holderOwn],
    ["delete a claim another node holds", "DELETE", `${api}/routetargetclaims/rt-65000-177`, undefined, undefined, 403, "may only delete a claim that no other node holds"],
    ["claim without the VPC label", "PATCH", `${api}/routetargetclaims/rt-65000-164${ssa("m")}`, claimBody("65000:164", "a4", [{ node: nodeA }], { "kvrf.dev/vpc": "ff" }), apply, 403, "kvrf.dev/vpc=<spec.vpc>"],
    ["change a BGPInstance", "PATCH", `${api}/bgpinstances/rbac-test`, { spec: { asn: 65001 } }, mergePatch, 403, rbac],
    ["read a Secret", "GET", `/api/v1/namespaces/${ns}/secrets/kvrf-bgp-passwords`, undefined, undefined, 403, rbac],
    ["create a ConfigMap", "POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "x" } }, undefined, 403, rbac],
    ["list pods", "GET", "/api/v1/pods", undefined, undefined, 403, rbac],
    ["list namespaces", "GET", "/api/v1/namespaces", undefined, undefined, 403, rbac],
    ["annotate a namespace (choose a pod's VPC)", "PATCH", "/api/v1/namespaces/default", { metadata: { annotations: { "kvrf.dev/vpc": "a3" } } }, mergePatch, 403, rbac],
  ];

  it.each(cniRows)("kvrf-cni of node A: %s", async (_what, method, apiPath, body, ct, status, message) => {
    expectAnswer(await call(cniA, method, apiPath, body, ct), status, message);
  });

  it("kvrf-cni without a node in its credentials is refused even for its own objects", async () => {
    const r = await call({ user: cniUser }, "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-a5${ssa("m")}`, bviBody(nodeA, "a5"), apply);
    expect(r.status).toBe(403);
    expect(r.body.message).toContain("must authenticate with a service-account token bound to its Node");
  });

  const kvrfdOwn = "may only change BGPVRFInstances of its own node";
  const tokenRequest = (spec: object): object => ({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec });
  const nodeStatus = (nodeName: string, keyedBy = nodeName): object => ({
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPInstance",
    metadata: { name: "rbac-test" },
    status: { nodes: [{ nodeName, asn: 65000, establishedPeers: 0 }], routerIDs: { [keyedBy]: "10.255.0.1" }, establishedPeers: { [keyedBy]: 0 } },
  });
  const event = (instance: string): object => ({
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `rbac-test.${instance}`, namespace: "default" },
    involvedObject: { apiVersion: "kvrf.dev/v1alpha1", kind: "BGPVRFInstance", name: `${nodeA}.vpc-c1` },
    type: "Normal",
    reason: "Test",
    message: "test",
    source: { component: "kvrfd", host: instance },
    reportingComponent: "kvrf.dev/kvrfd",
    reportingInstance: instance,
  });

  const kvrfdRows: Row[] = [
    ["list its node's BGPVRFInstances", "GET", `${api}/bgpvrfinstances?labelSelector=kvrf.dev%2Fnode%3D${nodeA}`, undefined, undefined, 200],
    ["watch them", "GET", `${api}/bgpvrfinstances?watch=1&timeoutSeconds=1&labelSelector=kvrf.dev%2Fnode%3D${nodeA}`, undefined, undefined, 200],
    ["add its finalizer", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1`, [{ op: "add", path: "/metadata/finalizers", value: ["kvrf.dev/vrf-cleanup"] }], jsonPatch, 200],
    ["remove its finalizer", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1`, [{ op: "remove", path: "/metadata/finalizers/0" }], jsonPatch, 200],
    ["write status", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1/status`, { status: { localPrefixes: 1, remotePrefixes: 2 } }, mergePatch, 200],
    ["list BGPInstances", "GET", `${api}/bgpinstances`, undefined, undefined, 200],
    ["write its entry of status.nodes", "PATCH", `${api}/bgpinstances/rbac-test/status?fieldManager=kvrfd-${nodeA}&force=true`, nodeStatus(nodeA), apply, 200],
    ["watch its Node", "GET", `/api/v1/nodes?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3D${nodeA}`, undefined, undefined, 200],
    // What remote paths and objects are checked against (reconciler/vrf/trust.ts).
    ["watch every Node's published record", "GET", "/api/v1/nodes?watch=1&timeoutSeconds=1", undefined, undefined, 200],
    ["list route-target claims", "GET", `${api}/routetargetclaims`, undefined, undefined, 200],
    ["watch VNI claims", "GET", `${api}/vniclaims?watch=1&timeoutSeconds=1`, undefined, undefined, 200],
    ["read the BGP password Secret", "GET", `/api/v1/namespaces/${ns}/secrets/kvrf-bgp-passwords`, undefined, undefined, 200],
    ["create an Event as itself", "POST", "/api/v1/namespaces/default/events", event(nodeA), undefined, 201],
    ["mint a kvrf-cni token for its node", "POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrf-cni/token`, tokenRequest({ expirationSeconds: 3600, boundObjectRef: { apiVersion: "v1", kind: "Node", name: nodeA } }), undefined, 201],
    ["finalize another node's object", "PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-b1`, [{ op: "add", path: "/metadata/finalizers", value: ["x/y"] }], jsonPatch, 403, kvrfdOwn],
    ["write another node's status", "PATCH", `${api}/bgpvrfinstances/${nodeB}.vpc-b1/status`, { status: { localPrefixes: 9 } }, mergePatch, 403, kvrfdOwn],
    // Not the routing identity (RD, RTs, table), which kvrf-routing-identity refuses for everyone.
    ["change its object's spec", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1`, { spec: { attachments: [] } }, mergePatch, 403, "not its spec or labels"],
    ["change its object's labels", "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1`, { metadata: { labels: { extra: "x" } } }, mergePatch, 403, "not its spec or labels"],
    ["create a BGPVRFInstance", "POST", `${api}/bgpvrfinstances`, bviBody(nodeA, "a6"), undefined, 403, rbac],
    ["delete a BGPVRFInstance", "DELETE", `${api}/bgpvrfinstances/${nodeA}.vpc-c1`, undefined, undefined, 403, rbac],
    ["write another node's entry of status.nodes", "PATCH", `${api}/bgpinstances/rbac-test/status?fieldManager=kvrfd-${nodeA}&force=true`, nodeStatus(nodeB), apply, 403, "may only write its own entry"],
    ["write another node's router ID column", "PATCH", `${api}/bgpinstances/rbac-test/status?fieldManager=kvrfd-${nodeA}&force=true`, nodeStatus(nodeA, nodeB), apply, 403, "may only write its own key"],
    ["change a BGPInstance's spec", "PATCH", `${api}/bgpinstances/rbac-test`, { spec: { asn: 65001 } }, mergePatch, 403, rbac],
    ["touch a route-target claim", "PATCH", `${api}/routetargetclaims/rt-65000-177`, { metadata: { labels: { x: "y" } } }, mergePatch, 403, rbac],
    ["read another Secret of its namespace", "GET", `/api/v1/namespaces/${ns}/secrets/not-bgp`, undefined, undefined, 403, rbac],
    ["read a same-named Secret elsewhere", "GET", "/api/v1/namespaces/default/secrets/kvrf-bgp-passwords", undefined, undefined, 403, rbac],
    ["list Secrets", "GET", `/api/v1/namespaces/${ns}/secrets`, undefined, undefined, 403, rbac],
    ["create an Event as another node", "POST", "/api/v1/namespaces/default/events", event(nodeB), undefined, 403, `with reportingInstance ${nodeA}`],
    ["mint a kvrf-cni token for another node", "POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrf-cni/token`, tokenRequest({ boundObjectRef: { apiVersion: "v1", kind: "Node", name: nodeB } }), undefined, 403, "may only request kvrf-cni tokens"],
    ["mint a kvrf-cni token bound to nothing", "POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrf-cni/token`, tokenRequest({}), undefined, 403, "may only request kvrf-cni tokens"],
    ["mint a long-lived kvrf-cni token", "POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrf-cni/token`, tokenRequest({ expirationSeconds: 172800, boundObjectRef: { apiVersion: "v1", kind: "Node", name: nodeA } }), undefined, 403, "at most 86400"],
    ["mint a token for itself", "POST", `/api/v1/namespaces/${ns}/serviceaccounts/kvrfd/token`, tokenRequest({ boundObjectRef: { apiVersion: "v1", kind: "Node", name: nodeA } }), undefined, 403, rbac],
    ["create a ConfigMap", "POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "x" } }, undefined, 403, rbac],
    ["patch its Node", "PATCH", `/api/v1/nodes/${nodeA}`, { metadata: { labels: { x: "y" } } }, mergePatch, 403, rbac],
  ];

  it.each(kvrfdRows)("kvrfd of node A: %s", async (_what, method, apiPath, body, ct, status, message) => {
    expectAnswer(await call(kvrfdA, method, apiPath, body, ct), status, message);
  });

  it("kvrfd's write left node B's status entry as it was", async () => {
    const r = (await call(undefined, "GET", `${api}/bgpinstances/rbac-test`)).body as {
      status?: { nodes?: { nodeName: string; establishedPeers?: number }[]; routerIDs?: Record<string, string>; establishedPeers?: Record<string, number> };
    };
    expect(r.status?.nodes?.map((n) => [n.nodeName, n.establishedPeers]).sort()).toEqual([
      [nodeA, 0],
      [nodeB, 1],
    ]);
    expect(r.status?.routerIDs).toEqual({ [nodeA]: "10.255.0.1", [nodeB]: "10.255.0.2" });
    expect(r.status?.establishedPeers).toEqual({ [nodeA]: 0, [nodeB]: 1 });
  });

  it("kvrfd without a node in its credentials may read but not write", async () => {
    const who = { user: kvrfdUser };
    expect((await call(who, "GET", `${api}/bgpvrfinstances`)).status).toBe(200);
    const r = await call(who, "PATCH", `${api}/bgpvrfinstances/${nodeA}.vpc-c1/status`, { status: { localPrefixes: 3 } }, mergePatch);
    expect(r.status).toBe(403);
    expect(r.body.message).toContain("kvrfd must authenticate with its pod's service-account token");
  });
});
