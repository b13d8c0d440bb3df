// What `kubectl get bgpinstances` shows, on the real API server. An instance's router IDs and
// sessions are per node: status.nodes[], one entry per selected node, each written by that node's
// kvrfd with server-side apply. The API server's table shows only the first match of a list path
// (`.status.nodes[*].routerID` is accepted, and prints one node), so kvrfd also writes its node's
// key of two granular maps (status.routerIDs, status.establishedPeers), which print whole. The
// entries here are written by kvrfd's own writer (KubeApi.applyNodeStatus), once per node.
import { execFile } from "node:child_process";
import { request } from "node:https";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeClient, loadKubeconfig, type Credentials } from "../../cni/kube/client.js";
import { repoRoot, tool } from "../harness/tools.js";
import { KubeApi } from "../../reconciler/kube/kube.js";
import { loadKubeAccess } from "../../reconciler/kube/kube-client.js";
import type { BGPInstanceNodeStatus } from "../../reconciler/bgp-instance/bgp-instance.js";

const run = promisify(execFile);
const api = "/apis/kvrf.dev/v1alpha1";
const name = "printer-columns";
const probeCrd = "columnprobes.probe.kvrf.dev";

interface Table {
  columnDefinitions: { name: string; type: string; priority: number }[];
  rows: { cells: unknown[] }[];
}

/** Two kvrfds' entries: node b reports first, as a fresh node would after a rollout. */
const entries = [
  { nodeName: "pc-b", routerID: "10.255.0.12", routerIDSource: "IPv4 InternalIP 10.255.0.12", asn: 4200000001, establishedPeers: 0, peers: [{ address: "fd00:ff::1", state: "active" }] },
  { nodeName: "pc-a", routerID: "10.255.0.11", routerIDSource: "IPv4 InternalIP 10.255.0.11", asn: 4200000001, establishedPeers: 2, peers: [{ address: "fd00:ff::1", state: "established" }, { address: "fd00:ff::2", state: "established" }] },
];

/** The view docs/kvrfd.md gives for an instance's nodes (keep the two alike). */
const perNode = '{range .status.nodes[*]}{.nodeName}{"\\t"}{.routerID}{"\\t"}{.establishedPeers}{"\\t"}{.conditions[?(@.type=="Ready")].status}{"\\n"}{end}';

/** GET as a server-side Table, the way kubectl get asks for it. */
function getTable(creds: Credentials, apiPath: string): Promise<Table> {
  return new Promise((resolve, reject) => {
    const req = request(
      creds.server + apiPath,
      {
        ...(creds.ca ? { ca: creds.ca } : {}),
        ...(creds.cert ? { cert: creds.cert } : {}),
        ...(creds.key ? { key: creds.key } : {}),
        headers: { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io", ...(creds.token !== undefined ? { Authorization: `Bearer ${creds.token}` } : {}) },
        timeout: 10_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body) as Table) : reject(new Error(`GET ${apiPath}: ${res.statusCode} ${body}`))));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer")));
    req.on("error", reject);
    req.end();
  });
}

/** Column name → cell of the table's one row. */
function cells(t: Table): Record<string, unknown> {
  expect(t.rows).toHaveLength(1);
  return Object.fromEntries(t.columnDefinitions.map((c, i) => [c.name, t.rows[0]?.cells[i]]));
}

describe("printer columns of BGPInstances", () => {
  let client: KubeClient;
  let creds: Credentials;
  const kubectl = async (...args: string[]): Promise<string> => (await run(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), ...args])).stdout;

  /** One kvrfd's write of its own entry: server-side apply on the status, its own field manager. */
  const applyEntry = (plural: string, apiVersion: string, kind: string, entry: object, node: string): Promise<unknown> =>
    client.request("PATCH", `/apis/${apiVersion}/${plural}/${name}/status`, {
      body: { apiVersion, kind, metadata: { name }, status: { nodes: [entry] } },
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: `kvrfd-${node}`, force: "true" },
    });

  beforeAll(async () => {
    await kubectl("apply", "--server-side", "--force-conflicts", "-f", path.join(repoRoot, "manifests/crds/bgpinstances.kvrf.dev.yaml"));
    await kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/bgpinstances.kvrf.dev");
    creds = await loadKubeconfig(inject("kubeconfig"));
    client = new KubeClient(creds);
    // A selector no node of this tier matches: the kvrfds other files run must not pick it up.
    const spec = { nodeSelector: { matchLabels: { "kvrf.dev/test": name } }, asn: 4200000001, routeTargetASN: 65000, routerID: { source: "Auto" } };
    await client.request("POST", `${api}/bgpinstances`, { body: { apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name }, spec } });
    const ready = { type: "Ready", status: "True" as const, reason: "Running", message: "BGP running", lastTransitionTime: "2026-01-01T00:00:00Z" };
    const access = await loadKubeAccess(inject("kubeconfig"));
    for (const e of entries) {
      const kvrfd = new KubeApi(access, e.nodeName);
      const entry: BGPInstanceNodeStatus = { ...e, conditions: [{ ...ready, status: e.establishedPeers > 0 ? "True" : "False" }] };
      await kvrfd.applyNodeStatus(name, entry);
      kvrfd.close();
    }
  });

  afterAll(async () => {
    await client.request("DELETE", `${api}/bgpinstances/${name}`).catch(() => undefined);
    await client.request("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${probeCrd}`).catch(() => undefined);
    client.close();
  });

  it("both kvrfds' entries are kept, each owned by its own field manager", async () => {
    const o = (await client.request<{ status: { nodes: { nodeName: string }[] }; metadata: { managedFields: { manager: string; subresource?: string }[] } }>("GET", `${api}/bgpinstances/${name}`)).body;
    expect(o.status.nodes.map((n) => n.nodeName).sort()).toEqual(["pc-a", "pc-b"]);
    expect(o.metadata.managedFields.filter((f) => f.subresource === "status").map((f) => f.manager).sort()).toEqual(["kvrfd-pc-a", "kvrfd-pc-b"]);
  });

  it("the table shows every node's router ID and established sessions; the router ID source and route-target ASN only wide", async () => {
    const t = await getTable(creds, `${api}/bgpinstances/${name}`);
    expect(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(["Name", "ASN", "Encap", "Router-IDs", "Established", "Age"]);
    expect(t.columnDefinitions.filter((c) => c.priority > 0).map((c) => c.name)).toEqual(["Router-ID-Source", "RT-ASN"]);
    const row = cells(t);
    expect(row).toMatchObject({ Name: name, ASN: 4200000001, Encap: "srv6", "Router-ID-Source": "Auto", "RT-ASN": 65000 });
    expect(JSON.parse(String(row["Router-IDs"]))).toEqual({ "pc-a": "10.255.0.11", "pc-b": "10.255.0.12" });
    expect(JSON.parse(String(row["Established"]))).toEqual({ "pc-a": 2, "pc-b": 0 });

    const plain = (await kubectl("get", "bgpinstances", name)).trim().split("\n");
    expect(plain[0]?.split(/\s{2,}/)).toEqual(["NAME", "ASN", "ENCAP", "ROUTER-IDS", "ESTABLISHED", "AGE"]);
    expect(plain[1]).toContain('{"pc-a":"10.255.0.11","pc-b":"10.255.0.12"}');
    expect(plain[1]).toContain('{"pc-a":2,"pc-b":0}');
    expect(plain[1]).not.toContain("Auto");
    const wide = (await kubectl("get", "bgpi", name, "-o", "wide")).trim().split("\n");
    expect(wide[0]?.split(/\s{2,}/)).toEqual(["NAME", "ASN", "ENCAP", "ROUTER-IDS", "ESTABLISHED", "AGE", "ROUTER-ID-SOURCE", "RT-ASN"]);
    expect(wide[1]).toMatch(/\sAuto\s+65000$/);
  });

  it("the per-node view shows every node's router ID, established peers and readiness", async () => {
    const lines = (await kubectl("get", "bgpinstance", name, "-o", `jsonpath=${perNode}`)).trim().split("\n");
    expect(lines.sort()).toEqual(["pc-a\t10.255.0.11\t2\tTrue", "pc-b\t10.255.0.12\t0\tFalse"]);
  });

  it("a node that leaves the instance takes its keys with it; the other node's stay", async () => {
    const access = await loadKubeAccess(inject("kubeconfig"));
    const b = new KubeApi(access, "pc-b");
    try {
      await b.applyNodeStatus(name, undefined);
    } finally {
      b.close();
    }
    const row = cells(await getTable(creds, `${api}/bgpinstances/${name}`));
    expect(JSON.parse(String(row["Router-IDs"]))).toEqual({ "pc-a": "10.255.0.11" });
    expect(JSON.parse(String(row["Established"]))).toEqual({ "pc-a": 2 });
    const o = (await client.request<{ status: { nodes: { nodeName: string }[] } }>("GET", `${api}/bgpinstances/${name}`)).body;
    expect(o.status.nodes.map((n) => n.nodeName)).toEqual(["pc-a"]);
  });

  // Why the columns read maps and not status.nodes[*]: should the API server ever print every match
  // of a list path, this fails, and the maps can go.
  it("the API server accepts a list path as a column but prints its first match only", async () => {
    const group = "probe.kvrf.dev";
    const column = (n: string, type: string, jsonPath: string): object => ({ name: n, type, jsonPath });
    await client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      body: {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: probeCrd },
        spec: {
          group,
          scope: "Cluster",
          names: { kind: "ColumnProbe", listKind: "ColumnProbeList", plural: "columnprobes", singular: "columnprobe" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              subresources: { status: {} },
              additionalPrinterColumns: [
                column("Nodes", "string", ".status.nodes[*].nodeName"),
                column("Router-IDs", "string", ".status.nodes[*].routerID"),
                column("Established", "integer", ".status.nodes[*].establishedPeers"),
              ],
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: {
                    status: {
                      type: "object",
                      properties: {
                        nodes: {
                          type: "array",
                          "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["nodeName"],
                          items: { type: "object", required: ["nodeName"], properties: { nodeName: { type: "string" }, routerID: { type: "string" }, establishedPeers: { type: "integer" } } },
                        },
                      },
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    await kubectl("wait", "--for=condition=Established", "--timeout=30s", `crd/${probeCrd}`);
    await client.request("POST", `/apis/${group}/v1/columnprobes`, { body: { apiVersion: `${group}/v1`, kind: "ColumnProbe", metadata: { name } } });
    for (const e of entries) {
      await applyEntry("columnprobes", `${group}/v1`, "ColumnProbe", { nodeName: e.nodeName, routerID: e.routerID, establishedPeers: e.establishedPeers }, e.nodeName);
    }
    const row = cells(await getTable(creds, `/apis/${group}/v1/columnprobes/${name}`));
    // The list keeps the order the nodes first wrote their entries in: b, then a.
    expect(row).toEqual({ Name: name, Nodes: "pc-b", "Router-IDs": "10.255.0.12", Established: 0 });
  });
});
