// Which VPC an attachment is in, against a scripted API: ADD's choice (config, namespace
// annotation, default, the error) and what DEL and CHECK find first (the node's record). The real
// API server and kernel are in test/integration/cni-namespace-vpc.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listRecords, readRecord, recordPath, removeRecord, writeRecord } from "./attachment-record.js";
import { makeContext, type BaseContext } from "./context.js";
import { CniError } from "./error.js";
import type { KubeClient } from "./kube/client.js";
import { KubeError } from "./kube/credentials.js";
import { attachmentVpc, chooseVpc } from "./pod-vpc.js";
import type { CmdArgs } from "./skel.js";

let state: string;
beforeEach(() => {
  state = mkdtempSync(path.join(tmpdir(), "kvrf-podvpc-"));
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

function ctxOf(over: Record<string, unknown>, cniArgs: Record<string, string> = {}): BaseContext {
  const config = { cniVersion: "1.1.0", name: "tenants", type: "kvrf", vpc: "ab", kubeconfig: "/k", nodeName: "iad", ipam: { type: "host-local" }, stateDir: state, ...over };
  const args: CmdArgs = {
    verb: "ADD",
    containerId: "c1",
    netns: "/var/run/netns/p",
    ifName: "eth0",
    args: new Map(Object.entries(cniArgs)),
    path: [],
    stdin: Buffer.from(JSON.stringify(config)),
    config,
    cniVersion: "1.1.0",
  };
  return makeContext(args, { NODE_NAME: undefined });
}

/** A client whose namespaces are `namespaces` (name → annotations); every request path is recorded. */
function api(namespaces: Record<string, Record<string, string>>): { client: () => Promise<KubeClient>; asked: string[] } {
  const asked: string[] = [];
  const c = {
    request: (_m: string, p: string) => {
      asked.push(p);
      const name = decodeURIComponent(p.replace("/api/v1/namespaces/", ""));
      const ns = namespaces[name];
      if (!p.startsWith("/api/v1/namespaces/") || ns === undefined) return Promise.reject(new KubeError(404, "NotFound", `GET ${p}: 404`));
      return Promise.resolve({ status: 200, body: { metadata: { name, annotations: ns } } });
    },
  };
  return { client: () => Promise.resolve(c as unknown as KubeClient), asked };
}

async function failure(p: Promise<unknown>): Promise<{ code: number; msg: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof CniError)) throw new Error(`expected a CniError, got ${String(err)}`);
  return { code: err.code, msg: err.message };
}

const annotated = { red: { "kvrf.dev/vpc": "0x0000000000a1" }, blue: { "kvrf.dev/vpc": "b1", other: "x" }, plain: {}, bad: { "kvrf.dev/vpc": "1000000fe" } };

describe("ADD's choice of VPC", () => {
  it("takes the config's VPC without vpcFromNamespace and never reads the namespace", async () => {
    const a = api(annotated);
    const got = await chooseVpc(ctxOf({}, { K8S_POD_NAMESPACE: "red" }), a.client);
    expect(got).toEqual({ vpc: { vpc: 0xabn, vpcHex: "ab", table: 0xab }, field: "vpc" });
    expect(a.asked).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, Record<string, string>, { vpcHex: string; namespace?: string; field: string }]>([
    ["the annotation", { vpcFromNamespace: true }, { K8S_POD_NAMESPACE: "red" }, { vpcHex: "a1", namespace: "red", field: "namespace red annotation kvrf.dev/vpc" }],
    ["another namespace's annotation", { vpcFromNamespace: true }, { K8S_POD_NAMESPACE: "blue" }, { vpcHex: "b1", namespace: "blue", field: "namespace blue annotation kvrf.dev/vpc" }],
    ["the annotation over the default", { vpcFromNamespace: true, vpc: "cc" }, { K8S_POD_NAMESPACE: "red" }, { vpcHex: "a1", namespace: "red", field: "namespace red annotation kvrf.dev/vpc" }],
    ["the default for a namespace without the annotation", { vpcFromNamespace: true, vpc: "cc" }, { K8S_POD_NAMESPACE: "plain" }, { vpcHex: "cc", namespace: "plain", field: "vpc" }],
    ["the default without K8S_POD_NAMESPACE", { vpcFromNamespace: true, vpc: "cc" }, {}, { vpcHex: "cc", field: "vpc" }],
  ])("with vpcFromNamespace takes %s", async (_name, over, args, want) => {
    const got = await chooseVpc(ctxOf(over, args), api(annotated).client);
    expect({ vpcHex: got.vpc.vpcHex, namespace: got.namespace, field: got.field }).toEqual({ namespace: undefined, ...want });
  });

  it.each<[string, Record<string, unknown>, Record<string, string>, string]>([
    [
      "no annotation and no default",
      { vpcFromNamespace: true, vpc: undefined },
      { K8S_POD_NAMESPACE: "plain" },
      'namespace plain has no kvrf.dev/vpc annotation and the network config "tenants" has no default "vpc": annotate the namespace with its VPC (kubectl annotate namespace plain kvrf.dev/vpc=<48-bit hex VPC ID>) or set "vpc" in the config',
    ],
    [
      "a reserved table in the annotation, even with a default",
      { vpcFromNamespace: true },
      { K8S_POD_NAMESPACE: "bad" },
      'namespace bad annotation kvrf.dev/vpc: "1000000fe": its low 32 bits (254) are a reserved kernel routing table (0, 253, 254, 255), which kvrf uses as the VPC\'s table',
    ],
    ["a namespace that does not exist", { vpcFromNamespace: true }, { K8S_POD_NAMESPACE: "gone" }, "K8S_POD_NAMESPACE: namespace gone does not exist in the cluster, so it cannot give the pod a VPC"],
    [
      "no K8S_POD_NAMESPACE and no default",
      { vpcFromNamespace: true, vpc: undefined },
      {},
      'vpcFromNamespace: CNI_ARGS has no K8S_POD_NAMESPACE (not a Kubernetes pod?) and the network config "tenants" has no default "vpc"',
    ],
  ])("refuses %s with code 7", async (_name, over, args, msg) => {
    expect(await failure(chooseVpc(ctxOf(over, args), api(annotated).client))).toEqual({ code: 7, msg });
  });

  it("reports an API server that cannot answer as try again later (11), naming the namespace", async () => {
    const down = { request: () => Promise.reject(new KubeError(0, "", "GET /api/v1/namespaces/red to https://x: connect ECONNREFUSED")) };
    const got = await failure(chooseVpc(ctxOf({ vpcFromNamespace: true }, { K8S_POD_NAMESPACE: "red" }), () => Promise.resolve(down as unknown as KubeClient)));
    expect(got).toEqual({ code: 11, msg: "reading namespace red for its VPC: GET /api/v1/namespaces/red to https://x: connect ECONNREFUSED" });
  });
});

describe("the attachment's recorded VPC", () => {
  it("is what DEL and CHECK act on, whatever the namespace says now, and without asking the API", async () => {
    const ctx = ctxOf({ vpcFromNamespace: true }, { K8S_POD_NAMESPACE: "red" });
    writeRecord(state, { network: "tenants", containerID: "c1", ifName: "eth0", vpc: "b1", namespace: "red" });
    const a = api(annotated);
    const found = await attachmentVpc(ctx, await a.client(), true);
    expect(found).toEqual({ vpc: { vpc: 0xb1n, vpcHex: "b1", table: 0xb1 }, from: "record", namespace: "red" });
    expect(a.asked).toEqual([]);
    // Also with a config that has a fixed VPC (switched back from vpcFromNamespace): the record wins.
    expect((await attachmentVpc(ctxOf({}), await a.client(), true))?.vpc.vpcHex).toBe("b1");
    removeRecord(state, "tenants", "c1", "eth0");
    expect(await attachmentVpc(ctxOf({}), await a.client(), true)).toEqual({ vpc: { vpc: 0xabn, vpcHex: "ab", table: 0xab }, from: "config" });
  });

  it("reads, lists and removes records by network, container and interface; a hashed name for long IDs", () => {
    const long = "c".repeat(250);
    writeRecord(state, { network: "tenants", containerID: "c1", ifName: "eth0", vpc: "a1", namespace: "red" });
    writeRecord(state, { network: "tenants", containerID: long, ifName: "net1", vpc: "b1" });
    writeRecord(state, { network: "other", containerID: "c1", ifName: "eth0", vpc: "cc" });
    expect(path.basename(recordPath(state, "tenants", "c1", "eth0"))).toBe("tenants:c1:eth0");
    expect(path.basename(recordPath(state, "tenants", long, "net1"))).toMatch(/^h-[0-9a-f]{40}$/);
    expect(readRecord(state, "tenants", long, "net1")).toEqual({ network: "tenants", containerID: long, ifName: "net1", vpc: "b1" });
    expect(readRecord(state, "other", "c1", "eth0")?.vpc).toBe("cc");
    expect(listRecords(state, "tenants").map((r) => r.vpc).sort()).toEqual(["a1", "b1"]);
    // A damaged record is no record.
    writeFileSync(recordPath(state, "tenants", "c1", "eth0"), "{");
    expect(readRecord(state, "tenants", "c1", "eth0")).toBeUndefined();
    writeFileSync(recordPath(state, "tenants", "c1", "eth0"), JSON.stringify({ network: "tenants", containerID: "c1", ifName: "eth0", vpc: "zz" }));
    expect(readRecord(state, "tenants", "c1", "eth0")).toBeUndefined();
    removeRecord(state, "tenants", long, "net1");
    removeRecord(state, "tenants", long, "net1"); // twice
    expect(listRecords(state, "tenants")).toEqual([]);
  });
});
