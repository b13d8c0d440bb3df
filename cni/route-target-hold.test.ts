// The node's route-target hold against a scripted API: when ADD claims, what the marker records,
// and when a release keeps or gives up the hold. The real API server and kernel are in
// test/integration/cni.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CniError } from "./error.js";
import type { KubeClient, RequestOptions } from "./kube/client.js";
import { KubeError } from "./kube/credentials.js";
import type { VrfIdentity } from "./kube/objects.js";
import type { Logger } from "./log.js";
import { heldRouteTargets, holdRouteTarget, markerPath, releaseRouteTargets } from "./route-target-hold.js";

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const api = "/apis/kvrf.dev/v1alpha1";
const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();

interface Call {
  method: string;
  path: string;
  opts: RequestOptions;
}

/** A KubeClient whose answers come from `answer`; every request is recorded. */
function fakeClient(answer: (c: Call) => unknown): { client: KubeClient; calls: Call[] } {
  const calls: Call[] = [];
  const client = {
    roundTrips: 0,
    request(method: string, p: string, opts: RequestOptions = {}) {
      const c = { method, path: p, opts };
      calls.push(c);
      return new Promise((resolve) => resolve({ status: 200, body: answer(c) }));
    },
  };
  return { client: client as unknown as KubeClient, calls };
}

const id: VrfIdentity = { nodeName: "n1", vpcHex: "aa", asn: 65000, rd: "65000:170", rt: "65000:170", table: 170, encapsulation: "srv6" };

describe("route-target hold", () => {
  let state: string;
  beforeEach(() => {
    state = mkdtempSync(path.join(tmpdir(), "kvrf-hold-"));
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  it("claims once per node and VPC: the marker makes later ADDs send nothing", async () => {
    const { client, calls } = fakeClient(() => ({}));
    expect(await holdRouteTarget(() => Promise.resolve(client), state, id)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      method: "PATCH",
      path: `${api}/routetargetclaims/rt-65000-170`,
      opts: {
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: "kvrf-cni-node/n1", force: "false" },
        body: { metadata: { labels: { "kvrf.dev/vpc": "aa" } }, spec: { routeTarget: "65000:170", vpc: "aa", holders: [{ node: "n1" }] } },
      },
    });
    expect(JSON.parse(readFileSync(markerPath(state, "aa"), "utf8"))).toEqual({ boot, routeTargets: ["65000:170"] });

    let asked = false;
    expect(await holdRouteTarget(() => ((asked = true), Promise.resolve(client)), state, id)).toBe(false);
    expect(asked).toBe(false);
    expect(calls).toHaveLength(1);

    // Another ASN in the config: another route target, claimed as well and recorded beside it.
    expect(await holdRouteTarget(() => Promise.resolve(client), state, { ...id, asn: 65001, rt: "65001:170" })).toBe(true);
    expect(heldRouteTargets(state, "aa")).toEqual(new Set(["65000:170", "65001:170"]));
  });

  it("does not trust a marker from another boot, nor an unreadable one", async () => {
    mkdirSync(path.dirname(markerPath(state, "aa")), { recursive: true });
    writeFileSync(markerPath(state, "aa"), JSON.stringify({ boot: "another", routeTargets: ["65000:170"] }));
    expect(heldRouteTargets(state, "aa").size).toBe(0);
    writeFileSync(markerPath(state, "aa"), "{not json");
    expect(heldRouteTargets(state, "aa").size).toBe(0);
    const { client, calls } = fakeClient(() => ({}));
    expect(await holdRouteTarget(() => Promise.resolve(client), state, id)).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it.each([
    [409, "another node holds it for the other VPC"],
    [422, "this node holds it for the other VPC (the claim's vpc never changes)"],
  ])("refuses a route target claimed by another VPC (%i: %s) with code 103, and records nothing", async (status) => {
    const { client } = fakeClient((c) => {
      if (c.method === "PATCH") throw new KubeError(status, "", `PATCH: ${status}`);
      return { spec: { vpc: "1000000aa", routeTarget: "65000:170" } };
    });
    const err: unknown = await holdRouteTarget(() => Promise.resolve(client), state, id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(103);
    expect((err as CniError).message).toContain("already claimed by VPC 1000000aa");
    expect(heldRouteTargets(state, "aa").size).toBe(0);
  });

  it("releases this node's holds on every claim of the VPC, then forgets the marker", async () => {
    const { client } = fakeClient(() => ({}));
    await holdRouteTarget(() => Promise.resolve(client), state, id);
    const { client: c2, calls } = fakeClient((c) => {
      if (c.method === "GET" && c.path.startsWith(`${api}/bgpvrfinstances/`)) throw new KubeError(404, "NotFound", "gone");
      if (c.method === "GET" && c.path.endsWith("/vniclaims")) return { items: [{ spec: { vni: 170, vpc: "aa", holders: [{ node: "n1" }, { node: "n3" }] } }] };
      if (c.method === "GET") {
        return {
          items: [
            { spec: { routeTarget: "65000:170", vpc: "aa", holders: [{ node: "n1" }, { node: "n2" }] } },
            { spec: { routeTarget: "65001:170", vpc: "aa", holders: [{ node: "n2" }] } },
          ],
        };
      }
      return {};
    });
    expect(await releaseRouteTargets(c2, state, "n1", "aa", silent)).toEqual(["65000:170", "vni:170"]);
    // Both kinds of claim are found by the VPC's label (listed at once), whatever the marker says.
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET ${api}/bgpvrfinstances/n1.vpc-aa`,
      `GET ${api}/routetargetclaims`,
      `GET ${api}/vniclaims`,
      `PATCH ${api}/routetargetclaims/rt-65000-170`,
      `PATCH ${api}/vniclaims/vni-170`,
    ]);
    expect(calls[1]?.opts.query).toEqual({ labelSelector: "kvrf.dev/vpc=aa" });
    expect(calls[2]?.opts.query).toEqual({ labelSelector: "kvrf.dev/vpc=aa" });
    // The relinquishing apply: this node's manager, no fields.
    expect(calls[3]?.opts).toMatchObject({ query: { fieldManager: "kvrf-cni-node/n1" }, body: { metadata: { name: "rt-65000-170" } } });
    expect(calls[3]?.opts.body).not.toHaveProperty("spec");
    expect(heldRouteTargets(state, "aa").size).toBe(0);
  });

  it("deletes a claim it holds alone under the listed resourceVersion, and falls back when it changed since", async () => {
    const listed = { metadata: { resourceVersion: "7", uid: "u1" }, spec: { routeTarget: "65000:170", vpc: "aa", holders: [{ node: "n1" }] } };
    for (const changed of [false, true]) {
      const { client } = fakeClient(() => ({}));
      await holdRouteTarget(() => Promise.resolve(client), state, id);
      const { client: c2, calls } = fakeClient((c) => {
        if (c.method === "GET") return { items: c.path.endsWith("/routetargetclaims") ? [listed] : [] };
        if (c.method === "DELETE" && changed) throw new KubeError(409, "Conflict", "changed");
        return {};
      });
      // objectGone: the caller's withdrawal just deleted the node's object, so it is not read again.
      expect(await releaseRouteTargets(c2, state, "n1", "aa", silent, true)).toEqual(["65000:170"]);
      expect(calls.map((c) => c.method)).toEqual(changed ? ["GET", "GET", "DELETE", "PATCH"] : ["GET", "GET", "DELETE"]);
      expect(calls[2]?.opts.body).toMatchObject({ preconditions: { resourceVersion: "7", uid: "u1" } });
      expect(heldRouteTargets(state, "aa").size).toBe(0);
    }
  });

  it("keeps the hold while the node's object still has entries of the VPC, unless it is being deleted", async () => {
    const { client } = fakeClient(() => ({}));
    await holdRouteTarget(() => Promise.resolve(client), state, id);
    const entry = { containerID: "c", ifName: "eth0", attachment: "1", prefixes: [] };
    const live = fakeClient(() => ({ metadata: {}, spec: { attachments: [entry] } }));
    expect(await releaseRouteTargets(live.client, state, "n1", "aa", silent)).toBeUndefined();
    expect(live.calls).toHaveLength(1);
    expect(heldRouteTargets(state, "aa").size).toBe(1);

    const going = fakeClient((c) => (c.path.includes("bgpvrfinstances") ? { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" }, spec: { attachments: [entry] } } : { items: [] }));
    expect(await releaseRouteTargets(going.client, state, "n1", "aa", silent)).toEqual([]);
    expect(heldRouteTargets(state, "aa").size).toBe(0);
  });

  it("keeps the marker when the API fails, so that a retry releases again (code 11)", async () => {
    const { client } = fakeClient(() => ({}));
    await holdRouteTarget(() => Promise.resolve(client), state, id);
    const down = fakeClient((c) => {
      if (c.path.includes("bgpvrfinstances")) throw new KubeError(404, "NotFound", "gone");
      throw new KubeError(503, "ServiceUnavailable", "down");
    });
    const err: unknown = await releaseRouteTargets(down.client, state, "n1", "aa", silent).catch((e: unknown) => e);
    expect((err as CniError).code).toBe(11);
    expect(heldRouteTargets(state, "aa")).toEqual(new Set(["65000:170"]));
  });

  it("with VXLAN, claims the VNI as well as the route target, concurrently, and records both", async () => {
    const vx: VrfIdentity = { ...id, encapsulation: "vxlan", vxlan: { vni: 170, vtep: "192.0.2.1", routerMac: "02:00:00:00:00:01" } };
    const { client, calls } = fakeClient(() => ({}));
    expect(await holdRouteTarget(() => Promise.resolve(client), state, vx)).toBe(true);
    expect(calls.map((c) => `${c.method} ${c.path}`).sort()).toEqual([`PATCH ${api}/routetargetclaims/rt-65000-170`, `PATCH ${api}/vniclaims/vni-170`]);
    const vniBody = calls.find((c) => c.path.endsWith("vni-170"))?.opts.body;
    expect(vniBody).toMatchObject({ kind: "VNIClaim", metadata: { labels: { "kvrf.dev/vpc": "aa" } }, spec: { vni: 170, vpc: "aa", holders: [{ node: "n1" }] } });
    expect(heldRouteTargets(state, "aa")).toEqual(new Set(["65000:170", "vni:170"]));
  });

  it("refuses a VNI claimed by another VPC with code 105 naming both VPCs, keeping the route target it got for the release", async () => {
    const vx: VrfIdentity = { ...id, encapsulation: "vxlan", vxlan: { vni: 170, vtep: "192.0.2.1", routerMac: "02:00:00:00:00:01" } };
    const { client } = fakeClient((c) => {
      if (c.method === "PATCH" && c.path.endsWith("vni-170")) throw new KubeError(409, "Conflict", "conflict on spec.vpc");
      if (c.method === "GET" && c.path.endsWith("vni-170")) return { spec: { vni: 170, vpc: "10000aa" } };
      return {};
    });
    const err: unknown = await holdRouteTarget(() => Promise.resolve(client), state, vx).catch((e: unknown) => e);
    expect((err as CniError).code).toBe(105);
    expect((err as CniError).message).toMatch(/VNI 170 of VPC aa is already claimed by VPC 10000aa \(VNIClaim vni-170\)/);
    expect(heldRouteTargets(state, "aa")).toEqual(new Set(["65000:170"]));
  });
});
