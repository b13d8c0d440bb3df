// Proves the control plane of the test environment: the CRD applies to a real kube-apiserver,
// objects are validated, and @kubernetes/client-node watches them through a node-scoped informer.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "../harness/process.js";
import { repoRoot, tool } from "../harness/tools.js";

const group = "kvrf.dev";
const version = "v1alpha1";
const plural = "bgpvrfinstances";
const nodeLabel = "kvrf.dev/node";

interface Bvi extends k8s.KubernetesObject {
  spec: Record<string, unknown>;
}

function bvi(name: string, node: string, vpc: string, overrides: Record<string, unknown> = {}): Bvi {
  return {
    apiVersion: `${group}/${version}`,
    kind: "BGPVRFInstance",
    metadata: { name, labels: { [nodeLabel]: node } },
    spec: {
      nodeName: node,
      vpc,
      asn: 4200000001,
      routeDistinguisher: `4200000001:${parseInt(vpc, 16)}`,
      importRouteTargets: [`4200000001:${parseInt(vpc, 16)}`],
      exportRouteTargets: [`4200000001:${parseInt(vpc, 16)}`],
      // The derivation (table = NN = uint32(vpc)): another file may have applied the admission
      // policy kvrf-routing-identity to this shared API server.
      table: parseInt(vpc, 16),
      ...overrides,
    },
  };
}

describe("kube-apiserver with the BGPVRFInstance CRD", () => {
  const kc = new k8s.KubeConfig();
  let objects: k8s.KubernetesObjectApi;
  let custom: k8s.CustomObjectsApi;
  let informer: k8s.Informer<Bvi> | undefined;

  beforeAll(async () => {
    kc.loadFromFile(inject("kubeconfig"));
    objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const crd = k8s.loadYaml<k8s.V1CustomResourceDefinition>(
      readFileSync(path.join(repoRoot, "manifests/crds/bgpvrfinstances.kvrf.dev.yaml"), "utf8"),
    );
    await objects.patch(crd, undefined, undefined, "kvrf-test", true, k8s.PatchStrategy.ServerSideApply);
    await waitFor(
      "CRD Established",
      async () => {
        const got = await ext.readCustomResourceDefinition({ name: "bgpvrfinstances.kvrf.dev" });
        return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
      },
      { timeoutMs: 30_000 },
    );
  });

  afterAll(async () => {
    await informer?.stop();
  });

  // Node names of this file's own: the integration tier shares one API server, and other files
  // (cni.test.ts) write objects of their nodes into it at the same time.
  it("delivers add, update and delete events for this node's objects only", async () => {
    const events: [string, string | undefined, unknown][] = [];
    const selector = `${nodeLabel}=kubeapi-a`;
    informer = k8s.makeInformer<Bvi>(
      kc,
      `/apis/${group}/${version}/${plural}`,
      () => custom.listClusterCustomObject({ group, version, plural, labelSelector: selector }) as Promise<k8s.KubernetesListObject<Bvi>>,
      selector,
    );
    informer.on("add", (o) => events.push(["add", o.metadata?.name, o.spec["attachments"] ?? []]));
    informer.on("update", (o) => events.push(["update", o.metadata?.name, o.spec["attachments"] ?? []]));
    informer.on("delete", (o) => events.push(["delete", o.metadata?.name, o.spec["attachments"] ?? []]));
    // An informer stops on any error; right after a CRD is created the list can get 429
    // "storage is (re)initializing". Restart it, as the daemon must.
    const errors: unknown[] = [];
    informer.on("error", (e) => {
      errors.push(e);
      setTimeout(() => void informer?.start().catch((err: unknown) => errors.push(err)), 500);
    });
    await informer.start().catch((e: unknown) => errors.push(e));

    await objects.create(bvi("kubeapi-b.abc", "kubeapi-b", "abc"));
    await objects.create(bvi("kubeapi-a.abc", "kubeapi-a", "abc"));
    await waitFor("add event", async () => events.length >= 1, { timeoutMs: 10_000 });

    const attachment = { containerID: "c1", ifName: "eth0", attachment: "1", prefixes: ["10.1.0.5/32"] };
    await custom.patchClusterCustomObject(
      { group, version, plural, name: "kubeapi-a.abc", body: [{ op: "add", path: "/spec/attachments", value: [attachment] }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );
    await waitFor("update event", async () => events.length >= 2, { timeoutMs: 10_000 });
    await objects.delete({ apiVersion: `${group}/${version}`, kind: "BGPVRFInstance", metadata: { name: "kubeapi-a.abc" } });
    await waitFor("delete event", async () => events.length >= 3, { timeoutMs: 10_000 });

    expect(events).toEqual([
      ["add", "kubeapi-a.abc", []],
      ["update", "kubeapi-a.abc", [attachment]],
      ["delete", "kubeapi-a.abc", [attachment]],
    ]);
  });

  it("is listed by kubectl", () => {
    const out = execFileSync(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), "get", plural, "-o", "name"], {
      encoding: "utf8",
    });
    expect(out.trim().split("\n")).toContain("bgpvrfinstance.kvrf.dev/kubeapi-b.abc");
  });

  it.each([
    ["vpc not hex", { vpc: "xyz" }, "spec.vpc"],
    ["asn above 32 bits", { asn: 4294967296 }, "spec.asn"],
    ["table 0", { table: 0 }, "spec.table"],
  ])("rejects %s", async (_case, overrides, field) => {
    const err: unknown = await objects.create(bvi("bad", "kubeapi-a", "abc", overrides)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect((err as k8s.ApiException<unknown>).code).toBe(422);
    expect(String((err as k8s.ApiException<unknown>).body)).toContain(field);
  });
});
