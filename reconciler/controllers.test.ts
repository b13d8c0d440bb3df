// The VRF and speaker controllers end to end against in-memory fakes: FakeSpeaker (gobgpd),
// FakeKernel (proto-tagged routes), FakeStore/FakeVrfApi (informer caches and API writes).
import type { V1Node } from "@kubernetes/client-node";
import { pino } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { routeTargetClaimName, vniClaimName, vrfFinalizer, type BGPVRFInstance } from "../shared/api-types.js";
import { vpcNumber, vpcVni } from "../shared/ids.js";
import { indexNodes, nodeRecord } from "./vrf/trust.js";
import type { BGPInstance } from "./bgp-instance/bgp-instance.js";
import { KernelRouteCache } from "./kernel/kernel-routes.js";
import { Metrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { SpeakerController, speakerKey } from "./bgp-instance/speaker-controller.js";
import { SpeakerLink } from "./gobgp/speaker-link.js";
import { FakeStore, FakeVrfApi } from "./testing/fake-api.js";
import { FakeKernel } from "./testing/fake-kernel.js";
import { FakeSpeaker } from "./testing/fake-speaker.js";
import { orphanKey, VrfController } from "./vrf/vrf-controller.js";

const log = pino({ level: process.env["KVRF_TEST_LOG"] ?? "silent" });
const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });

function bvi(name: string, vpc: string, table: number, prefixes: string[], extra: Partial<BGPVRFInstance["spec"]> = {}): BGPVRFInstance {
  const nn = parseInt(vpc, 16);
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPVRFInstance",
    metadata: { name, generation: 1, resourceVersion: "1", finalizers: [vrfFinalizer], creationTimestamp: new Date("2026-01-01T00:00:00Z") },
    spec: {
      nodeName: "n1",
      vpc,
      asn: 65000,
      routeDistinguisher: `65000:${nn}`,
      importRouteTargets: [`65000:${nn}`],
      exportRouteTargets: [`65000:${nn}`],
      table,
      attachments: prefixes.map((p, i) => ({ containerID: `c${i}`, ifName: "eth0", attachment: String(i + 1), sid: `fd00:0:a::${vpc}:${i + 1}`, prefixes: [p] })),
      ...extra,
    },
  };
}

/** The claim names an object's VPC needs: its route target's and its VNI's. */
function claimNamesOf(o: BGPVRFInstance): string[] {
  const vpc = BigInt(`0x${o.spec.vpc}`);
  return [routeTargetClaimName(`${o.spec.asn}:${vpcNumber(vpc)}`), vniClaimName(vpcVni(vpc))];
}

class Rig {
  now = Date.now();
  readonly fake = new FakeSpeaker();
  readonly kernelFake = new FakeKernel();
  readonly kernel = new KernelRouteCache(this.kernelFake, () => this.now);
  readonly objects = new FakeStore<BGPVRFInstance>();
  readonly nodes = new FakeStore<V1Node & { metadata: { name: string } }>();
  readonly instances = new FakeStore<BGPInstance>();
  readonly api = new FakeVrfApi(this.objects);
  readonly metrics = new Metrics({ defaultMetrics: false });
  connectable = true;
  /** Claims by name whose VPC is not the one deriving it (undefined: no such claim); all others are held by their object's VPC. */
  readonly claimOverride = new Map<string, string | undefined>();
  /** The cluster's Nodes, as their published records (trust.ts). */
  fabric: V1Node[] = [];
  /** Whether the Nodes' informer has listed (the speaker waits for it). */
  fabricSynced = true;
  /** Keys reconciled because of RIB changes, in order. */
  readonly ribKeys: string[] = [];
  readonly link: SpeakerLink;
  readonly vrf: VrfController;
  readonly speaker: SpeakerController;
  readonly queue: WorkQueue;

  claim(name: string): { vpc: string } | undefined {
    if (this.claimOverride.has(name)) {
      const vpc = this.claimOverride.get(name);
      return vpc === undefined ? undefined : { vpc };
    }
    const o = this.objects.list().find((x) => claimNamesOf(x).includes(name));
    return o === undefined ? undefined : { vpc: o.spec.vpc };
  }

  constructor(opts: { routeHoldMs?: number } = {}) {
    const fabricSynced = (): boolean => this.fabricSynced;
    this.link = new SpeakerLink({
      connect: async () => {
        if (!this.connectable) throw new Error("connect ENOENT");
        this.fake.closed = false;
        return this.fake;
      },
      probeIntervalMs: 20,
      backoff: { baseMs: 5, maxMs: 20 },
      log,
    });
    this.vrf = new VrfController({
      nodeName: "n1",
      objects: this.objects,
      link: this.link,
      kernel: this.kernel,
      api: this.api,
      status: { set: (name, status) => void this.api.patchStatus(name, status) },
      underlay: async () => ({ dev: "fab0", nextHop: "fd00:ff::a" }),
      metrics: this.metrics,
      log,
      routeHoldMs: opts.routeHoldMs ?? 0,
      speakerGraceMs: 0,
      now: () => this.now,
      trust: {
        claims: { routeTargetClaim: (n) => this.claim(n), vniClaim: (n) => this.claim(n) },
        nodes: () => indexNodes(this.fabric.map(nodeRecord)),
        external: () => this.speaker.external,
        hasSynced: true,
      },
    });
    this.speaker = new SpeakerController({
      nodeName: "n1",
      nodes: this.nodes,
      instances: this.instances,
      cluster: {
        nextHops: () => [...indexNodes(this.fabric.map(nodeRecord)).byAddress.keys()],
        get hasSynced(): boolean {
          return fabricSynced();
        },
      },
      link: this.link,
      api: this.api,
      metrics: this.metrics,
      log,
      onSpeakerReset: () => this.passAll(),
      onExternalRoutesChange: () => this.passAll(),
      now: () => this.now,
    });
    this.queue = new WorkQueue({
      workers: 4,
      backoff: { baseMs: 5, maxMs: 20 },
      reconcile: (key) => (key === speakerKey ? this.speaker.reconcile() : this.vrf.reconcile(key)),
      onResult: (key, result, _ms, err) => log.debug({ key, result, err: err instanceof Error ? err.message : undefined }, "reconciled"),
    });
    this.nodes.put({ metadata: { name: "n1", labels: { role: "worker" } }, status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] } });
    this.instances.put({
      apiVersion: "kvrf.dev/v1alpha1",
      kind: "BGPInstance",
      metadata: { name: "workers", generation: 1 },
      spec: { asn: 65000, nodeSelector: { matchLabels: { role: "worker" } }, listenPort: -1, peers: [{ address: "fd00:ff::1", asn: 65000 }] },
    });
  }

  passAll(): void {
    this.queue.addAll(this.objects.keys(), "low");
    this.queue.add(orphanKey, "low");
  }

  async start(): Promise<void> {
    await this.kernel.load();
    this.link.start({
      up: () => this.queue.add(speakerKey),
      down: () => undefined,
      lost: () => this.queue.add(speakerKey),
      event: () => undefined,
      // As the daemon: a RIB change reconciles the VRFs that import its route targets, a (re)read
      // RIB view every VRF.
      rib: (_s, changes) => {
        const keys = this.vrf.keysAffected(changes);
        this.ribKeys.push(...keys);
        this.queue.addAll(keys, "low");
      },
      ribSynced: () => this.passAll(),
    });
    await this.settle();
  }

  /** Waits until the queue has been idle for a moment (events may enqueue more work). */
  async settle(): Promise<void> {
    for (let quiet = 0; quiet < 3; ) {
      await sleep(15);
      if (this.queue.depth === 0 && this.queue.inFlight === 0) quiet++;
      else {
        quiet = 0;
        await this.queue.idle();
      }
    }
  }

  put(o: BGPVRFInstance): void {
    const old = this.objects.get(o.metadata.name ?? "");
    const rv = Number(old?.metadata.resourceVersion ?? 0) + 1;
    this.objects.put({ ...o, metadata: { ...o.metadata, resourceVersion: String(rv), generation: (old?.metadata.generation ?? 0) + 1 }, ...(old?.status ? { status: old.status } : {}) });
    this.queue.add(o.metadata.name ?? "");
  }

  markDeleted(name: string): void {
    const o = this.objects.get(name);
    if (o === undefined) throw new Error(name);
    this.objects.put({ ...o, metadata: { ...o.metadata, deletionTimestamp: new Date("2026-01-02T00:00:00Z") } });
    this.queue.add(name);
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.link.stop();
  }
}

describe("controllers", () => {
  let rig: Rig | undefined;
  afterEach(async () => rig?.stop());

  async function started(opts: { routeHoldMs?: number } = {}): Promise<Rig> {
    rig = new Rig(opts);
    await rig.start();
    return rig;
  }

  it("starts BGP from the node's BGPInstance with an Auto router ID, adds peers and publishes node status", async () => {
    const r = await started();
    expect(r.fake.global).toEqual({ asn: 65000, routerId: "10.0.0.1", listenPort: -1 });
    expect([...r.fake.peers.keys()]).toEqual(["fd00:ff::1"]);
    expect(r.api.nodeStatus.get("workers")).toMatchObject({ nodeName: "n1", routerID: "10.0.0.1", asn: 65000, peers: [{ address: "fd00:ff::1", state: "active" }] });
  });

  it("creates the VRF and originates each prefix with the node's next hop and SID; Ready", async () => {
    const r = await started();
    r.put(bvi("n1.vpc-abc", "abc", 2748, ["10.1.0.5/32", "2001:db8::5/128"]));
    await r.settle();
    expect(r.fake.vrfs.get("vpc-abc")).toEqual({ name: "vpc-abc", rd: rt(2748), importRts: [rt(2748)], exportRts: [rt(2748)], id: 2748 });
    expect([...(r.fake.localPaths.get("vpc-abc")?.values() ?? [])].map((p) => [p.prefix, p.nextHop, ...(p.encap === "srv6" ? [p.sid, p.behavior] : [])])).toEqual([
      ["10.1.0.5/32", "fd00:ff::a", "fd00:0:a::abc:1", 20],
      ["2001:db8::5/128", "fd00:ff::a", "fd00:0:a::abc:2", 20],
    ]);
    const st = r.api.statuses.get("n1.vpc-abc");
    expect(st?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "True", "Ready"],
      ["VRFConfigured", "True", "Configured"],
      ["RoutesProgrammed", "True", "Programmed"],
    ]);
    expect(st).toMatchObject({ observedGeneration: 1, localPrefixes: 2, remotePrefixes: 0 });
  });

  it("programs remote best paths into the VPC's table only, next to foreign routes it never touches", async () => {
    const r = await started();
    r.kernelFake.put({ table: 2748, prefix: "10.1.0.9/32", sid: "", dev: "vpc9", proto: 240 });
    r.kernelFake.put({ table: 2748, prefix: "10.99.0.0/16", sid: "", dev: "x", proto: 4 });
    r.put(bvi("n1.vpc-abc", "abc", 2748, ["10.1.0.5/32"]));
    r.put(bvi("n1.vpc-def", "def", 3567, ["10.1.0.5/32"]));
    await r.settle();
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    r.fake.learn({ prefix: "10.1.1.8/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::def:1", rts: [rt(3567)], neighbor: "fd00:ff::1" });
    // A prefix the CNI already routes locally (a pod not yet in the object): reported, never overwritten.
    r.fake.learn({ prefix: "10.1.0.9/32", nextHop: "fd00:ff::c", sid: "fd00:0:c::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // A remote path for a prefix that is local here: the local path is best, no kernel route.
    r.fake.learn({ prefix: "10.1.0.5/32", nextHop: "fd00:ff::c", sid: "fd00:0:c::abc:2", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    expect(r.kernelFake.encap(2748)).toEqual([{ table: 2748, prefix: "10.1.1.7/32", sid: "fd00:0:b::abc:1", dev: "fab0" }]);
    expect(r.kernelFake.encap(3567)).toEqual([{ table: 3567, prefix: "10.1.1.8/32", sid: "fd00:0:b::def:1", dev: "fab0" }]);
    expect(r.kernelFake.routes.get("2748 10.1.0.9/32")).toMatchObject({ proto: 240, dev: "vpc9" });
    expect(r.kernelFake.routes.get("2748 10.99.0.0/16")?.proto).toBe(4);
    expect(r.api.statuses.get("n1.vpc-abc")?.conditions?.find((c) => c.type === "RoutesProgrammed")).toMatchObject({ status: "False", reason: "ForeignRoute" });
    expect(r.api.events.map((e) => [e.name, e.reason])).toContainEqual(["n1.vpc-abc", "ForeignRoute"]);

    r.fake.withdraw("10.1.1.7/32", "fd00:ff::1");
    await r.settle();
    expect(r.kernelFake.encap(2748)).toEqual([]);
    expect(r.kernelFake.routes.get("2748 10.99.0.0/16")?.proto).toBe(4);
  });

  it("withdraws a prefix that leaves the object and replaces the VRF when its route target changes", async () => {
    const r = await started();
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32", "10.1.0.6/32"]));
    await r.settle();
    r.fake.log.length = 0;
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.fake.log).toEqual(["deleteLocalPath vpc-abc 10.1.0.6/32"]);
    r.fake.log.length = 0;
    // Another VPC's route target (admission bypassed): neither imported nor exported, and what the
    // valid spec made is withdrawn.
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"], { importRouteTargets: ["65000:7"], exportRouteTargets: ["65000:7"] }));
    await r.settle();
    expect(r.fake.log).toEqual(["deleteVrf vpc-abc"]);
    expect(r.fake.vrfs.has("vpc-abc")).toBe(false);
    expect(r.api.statuses.get("o")?.conditions?.find((c) => c.type === "VRFConfigured")).toMatchObject({
      status: "False",
      reason: "RoutingIdentityMismatch",
      message: 'spec.importRouteTargets: ["65000:7"] is not VPC abc\'s ["65000:2748"] (ASN 65000, VPC abc)',
    });
    expect(r.api.statuses.get("o")?.observedGeneration).toBe(3);
    r.fake.log.length = 0;
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.fake.log).toEqual(["addVrf vpc-abc", "addLocalPath vpc-abc 10.1.0.5/32"]);
  });

  it("refuses an object whose route target is claimed by another VPC or not at all, and programs it once the claim is its own", async () => {
    const r = await started();
    // VPC 10000000abc shares abc's low 32 bits: the claim of 65000:2748 is its.
    r.claimOverride.set("rt-65000-2748", "10000000abc");
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.fake.vrfs.size).toBe(0);
    const refused = r.api.statuses.get("o")?.conditions?.find((c) => c.type === "VRFConfigured");
    expect(refused).toMatchObject({ status: "False", reason: "ClaimMismatch" });
    expect(refused?.message).toMatch(/^route target 65000:2748 of VPC abc is claimed by VPC 10000000abc \(RouteTargetClaim rt-65000-2748\), not by this VPC/);
    r.claimOverride.set("rt-65000-2748", undefined);
    r.put(bvi("o", "abc", 2748, ["10.1.0.6/32"]));
    await r.settle();
    expect(r.fake.vrfs.size).toBe(0);
    expect(r.api.statuses.get("o")?.conditions?.find((c) => c.type === "VRFConfigured")?.message).toMatch(/route target 65000:2748 of VPC abc is not claimed \(no RouteTargetClaim rt-65000-2748\)/);
    r.claimOverride.delete("rt-65000-2748");
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(true);
    expect(r.api.statuses.get("o")?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  });

  it("withdraws a programmed VXLAN object whose VNI claim goes to another VPC", async () => {
    const r = await started();
    const vx = { encapsulation: "vxlan" as const, vni: 0xabc, vtep: "192.0.2.1", routerMac: "02:00:00:00:00:01" };
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"], vx));
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(true);
    r.claimOverride.set("vni-2748", "fff000abc");
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32", "10.1.0.6/32"], vx));
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(false);
    const refused = r.api.statuses.get("o")?.conditions?.find((c) => c.type === "VRFConfigured");
    expect(refused?.reason).toBe("ClaimMismatch");
    expect(refused?.message).toContain("VNI 2748 of VPC abc is claimed by VPC fff000abc (VNIClaim vni-2748)");
  });

  it("ignores remote paths the nodes' records contradict, counts them, and still imports the honest ones", async () => {
    const r = await started();
    const node = (name: string, address: string, locator: string): V1Node => ({
      metadata: { name, annotations: { "kvrf.dev/srv6-locator": locator } },
      status: { addresses: [{ type: "InternalIP", address }] },
    });
    r.fabric = [node("b", "fd00:ff::b", "fd00:0:b::/48"), node("c", "fd00:ff::c", "fd00:0:c::/48")];
    r.put(bvi("n1.vpc-abc", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    // Honest: b's SID of an attachment of VPC abc, advertised by b.
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // Forged by c: abc's route target on a SID of VPC def's attachment on b (into another tenant).
    r.fake.learn({ prefix: "10.1.1.8/32", nextHop: "fd00:ff::c", sid: "fd00:0:b::def:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // Forged by c: a SID of VPC abc on b, with c as next hop.
    r.fake.learn({ prefix: "10.1.1.9/32", nextHop: "fd00:ff::c", sid: "fd00:0:b::abc:2", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // Forged by c: a SID outside its own locator.
    r.fake.learn({ prefix: "10.1.1.10/32", nextHop: "fd00:ff::c", sid: "fd00:0:99::abc:2", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // A gateway that is no node, with its own SID: not judged.
    r.fake.learn({ prefix: "0.0.0.0/0", nextHop: "fd00:ff::99", sid: "fd00:99::1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    expect(Object.fromEntries(r.kernelFake.encap(2748).map((x) => [x.prefix, x.sid]))).toEqual({ "0.0.0.0/0": "fd00:99::1", "10.1.1.7/32": "fd00:0:b::abc:1" });
    const routes = r.api.statuses.get("n1.vpc-abc")?.conditions?.find((c) => c.type === "RoutesProgrammed");
    expect(routes).toMatchObject({ status: "True", reason: "Programmed" });
    expect(routes?.message).toMatch(/^2 remote prefixes in table 2748; 3 remote paths ignored: /);
    expect(routes?.message).toContain("10.1.1.10/32 from fd00:ff::1: SID fd00:0:99::abc:2 is outside node c's locator fd00:0:c::/48");
    expect(routes?.message).toContain("SID fd00:0:b::def:1 is an attachment of VPC def on node b, not of this VPC");
    expect(routes?.message).toContain("SID fd00:0:b::abc:2 is in node b's locator fd00:0:b::/48, but the next hop fd00:ff::c is node c's");
    const metric = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await r.metrics.remotePathsIgnored.get()).values.map((v) => [String(v.labels.reason), v.value]));
    expect(await metric()).toEqual({ "sid-of-another-vpc": 1, "sid-outside-advertiser-locator": 2 });
    // A forged path that goes away is no longer counted.
    r.fake.withdraw("10.1.1.8/32", "fd00:ff::1");
    await r.settle();
    expect(await metric()).toMatchObject({ "sid-of-another-vpc": 0, "sid-outside-advertiser-locator": 2 });
  });

  it("routes from outside the cluster: only listed gateways, each into its VPCs, at most maxPrefixesPerVPC", async () => {
    const r = await started();
    r.fabric = [{ metadata: { name: "b", annotations: { "kvrf.dev/srv6-locator": "fd00:0:b::/48" } }, status: { addresses: [{ type: "InternalIP", address: "fd00:ff::b" }] } }];
    r.put(bvi("n1.vpc-abc", "abc", 2748, ["10.1.0.5/32"]));
    r.put(bvi("n1.vpc-def", "def", 3567, ["10.1.0.5/32"]));
    await r.settle();
    const gw = (prefix: string, nextHop: string, vpcRt: number): void =>
      r.fake.learn({ prefix, nextHop, sid: `fd00:99::${vpcRt.toString(16)}`, rts: [rt(vpcRt)], neighbor: "fd00:ff::1" });
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    // Gateway 99 serves VPC abc; it also (misconfigured) tags routes with def's route target.
    for (const p of ["0.0.0.0/0", "192.0.2.0/24", "198.51.100.0/24"]) gw(p, "fd00:ff::99", 2748);
    gw("203.0.113.0/24", "fd00:ff::99", 3567);
    // A router nobody listed.
    gw("10.200.0.0/16", "fd00:ff::98", 2748);
    await r.settle();
    // No rules yet: everything of the route target is imported.
    expect(r.kernelFake.encap(2748).map((x) => x.prefix).sort()).toEqual(["0.0.0.0/0", "10.1.1.7/32", "10.200.0.0/16", "192.0.2.0/24", "198.51.100.0/24"]);
    expect(r.kernelFake.encap(3567).map((x) => x.prefix)).toEqual(["203.0.113.0/24"]);
    const i = r.instances.get("workers");
    if (i === undefined) throw new Error("no instance");
    r.instances.put({ ...i, spec: { ...i.spec, externalRoutes: { gateways: [{ address: "fd00:ff:0::99", vpcs: ["abc"] }], maxPrefixesPerVPC: 2 } } });
    r.queue.add(speakerKey);
    await r.settle();
    // The node's own (10.1.1.7) is no outside route; of the gateway's three, the first two in
    // prefix order; the unlisted router's none; def gets nothing from a gateway not listed for it.
    expect(r.kernelFake.encap(2748).map((x) => x.prefix).sort()).toEqual(["0.0.0.0/0", "10.1.1.7/32", "192.0.2.0/24"]);
    expect(r.kernelFake.encap(3567)).toEqual([]);
    const message = (name: string): string | undefined => r.api.statuses.get(name)?.conditions?.find((c) => c.type === "RoutesProgrammed")?.message;
    expect(message("n1.vpc-abc")).toContain("10.200.0.0/16 from fd00:ff::1: next hop fd00:ff::98 is neither a node's nor a gateway's (spec.externalRoutes.gateways)");
    expect(message("n1.vpc-abc")).toContain("198.51.100.0/24 from fd00:ff::1: 3 prefixes from outside the cluster exceed spec.externalRoutes.maxPrefixesPerVPC 2");
    expect(message("n1.vpc-def")).toContain("203.0.113.0/24 from fd00:ff::1: gateway fd00:ff::99 may route into VPC abc, not def");
    const metric = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await r.metrics.remotePathsIgnored.get()).values.map((v) => [String(v.labels.reason), v.value]));
    expect(await metric()).toEqual({ "not-a-gateway": 1, "gateway-not-for-vpc": 1, "over-external-limit": 1 });
    // Rules removed: back to importing everything.
    r.instances.put(i);
    r.queue.add(speakerKey);
    await r.settle();
    expect(r.kernelFake.encap(2748)).toHaveLength(5);
    expect(r.kernelFake.encap(3567)).toHaveLength(1);
  });

  it.each([
    ["a route distinguisher", { routeDistinguisher: "65000:3567" }, /spec.routeDistinguisher: 65000:3567 is not VPC abc's 65000:2748/],
    ["an extra import route target", { importRouteTargets: ["65000:2748", "65000:3567"] }, /spec.importRouteTargets/],
    ["a table", { table: 3567 }, /spec.table: 3567 is not VPC abc's 2748/],
  ])("refuses an object with %s not its VPC's, before anything is programmed", async (_what, extra, msg) => {
    const r = await started();
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"], extra));
    await r.settle();
    expect(r.fake.vrfs.size).toBe(0);
    expect(r.fake.log.filter((l) => !l.startsWith("addPeer") && !l.startsWith("startBgp"))).toEqual([]);
    const c = r.api.statuses.get("o")?.conditions?.find((x) => x.type === "VRFConfigured");
    expect(c).toMatchObject({ status: "False", reason: "RoutingIdentityMismatch" });
    expect(c?.message).toMatch(msg);
  });

  it("changes nothing when everything is already right (no churn on a pass over everything)", async () => {
    const r = await started();
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    const writes = [r.fake.log.length, r.kernelFake.log.length, r.api.statusWrites];
    r.passAll();
    r.queue.add(speakerKey);
    await r.settle();
    expect([r.fake.log.length, r.kernelFake.log.length, r.api.statusWrites]).toEqual(writes);
  });

  it("on delete removes VRF, paths and routes, then releases the finalizer", async () => {
    const r = await started();
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    expect(r.kernelFake.encap(2748)).toHaveLength(1);
    r.markDeleted("o");
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(false);
    expect(r.kernelFake.encap(2748)).toEqual([]);
    expect(r.objects.get("o")).toBeUndefined();
  });

  it("holds the finalizer while gobgpd is unreachable and releases it when gobgpd returns", async () => {
    const r = await started();
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    r.connectable = false;
    r.fake.close();
    await until(() => r.link.current() === undefined);
    r.markDeleted("o");
    await r.settle();
    expect(r.objects.get("o")?.metadata.finalizers).toEqual([vrfFinalizer]);
    r.connectable = true;
    await until(() => r.link.current() !== undefined);
    r.passAll();
    await r.settle();
    expect(r.objects.get("o")).toBeUndefined();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(false);
  });

  it("replays everything after gobgpd restarts, keeping kernel routes during the hold", async () => {
    const r = await started({ routeHoldMs: 60_000 });
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    expect(r.kernelFake.encap(2748)).toHaveLength(1);
    r.now += 1000;
    r.fake.restart();
    await until(() => r.fake.global !== undefined && r.fake.vrfs.has("vpc-abc"));
    await r.settle();
    expect([...(r.fake.localPaths.get("vpc-abc")?.keys() ?? [])]).toEqual(["10.1.0.5/32"]);
    expect([...r.fake.peers.keys()]).toEqual(["fd00:ff::1"]);
    // The remote path is not relearned yet: the route stays while the hold lasts…
    expect(r.kernelFake.encap(2748)).toHaveLength(1);
    expect((await r.metrics.replays.get()).values.find((v) => v.labels["reason"] === "gobgpd-restart")?.value).toBe(1);
    // …and goes once it is over.
    r.now += 61_000;
    r.passAll();
    await r.settle();
    expect(r.kernelFake.encap(2748)).toEqual([]);
  });

  it.each([
    ["keeps", "active", 1],
    ["removes", "established", 0],
  ] as const)("after a kvrfd restart %s routes not relearned yet when a session is %s", async (_what, state, left) => {
    rig = new Rig({ routeHoldMs: 60_000 });
    const r = rig;
    // gobgpd already runs the node's config and VRF (kvrfd restarted); the kernel holds a route
    // whose path the RIB does not have (yet).
    r.fake.global = { asn: 65000, routerId: "10.0.0.1", listenPort: -1 };
    r.fake.peers.set("fd00:ff::1", { address: "fd00:ff::1", asn: 65000, families: ["vpnv4", "vpnv6"], state });
    const vrf = { name: "vpc-abc", rd: rt(2748), importRts: [rt(2748)], exportRts: [rt(2748)], id: 2748 };
    await r.fake.addVrf(vrf);
    await r.fake.addLocalPaths(vrf, [{ vrf: "vpc-abc", prefix: "10.1.0.5/32", nextHop: "fd00:ff::a", encap: "srv6", sid: "fd00:0:a::abc:1", behavior: 20 }]);
    r.kernelFake.put({ table: 2748, prefix: "10.1.1.7/32", sid: "fd00:0:b::abc:1", dev: "fab0", proto: 241 });
    r.objects.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.start();
    r.passAll();
    await r.settle();
    expect(r.kernelFake.owned(2748)).toHaveLength(left);
    expect(r.fake.log.filter((l) => !l.startsWith("addPeer"))).toEqual(["addVrf vpc-abc", "addLocalPath vpc-abc 10.1.0.5/32"]);
  });

  it("notices a gobgpd that lost BGP between probes (a call says not started) and replays", async () => {
    const r = await started();
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    // Same connection, state gone: what a fast restart behind a proxy or a StopBgp looks like.
    r.fake.global = undefined;
    r.fake.vrfs.clear();
    r.fake.localPaths.clear();
    await until(() => r.fake.vrfs.has("vpc-abc"));
    await r.settle();
    expect(r.fake.global).toMatchObject({ asn: 65000 });
    expect([...(r.fake.localPaths.get("vpc-abc")?.keys() ?? [])]).toEqual(["10.1.0.5/32"]);
  });

  it("reports speaker errors in status and as an Event, and retries until they pass", async () => {
    const r = await started();
    r.fake.failNext("addVrf", "other", 2);
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(true);
    expect(r.api.events.map((e) => e.reason)).toContain("SpeakerError");
    expect(r.api.statuses.get("o")?.conditions?.[0]?.status).toBe("True");
  });

  it("refuses a second VPC in the same table with a TableConflict", async () => {
    const r = await started();
    r.put(bvi("a", "abc", 2748, ["10.1.0.5/32"]));
    r.put({ ...bvi("b", "def", 2748, ["10.1.0.6/32"]), metadata: { ...bvi("b", "def", 2748, []).metadata, creationTimestamp: new Date("2026-01-05T00:00:00Z") } });
    await r.settle();
    expect(r.fake.vrfs.has("vpc-def")).toBe(false);
    expect(r.api.statuses.get("b")?.conditions?.[1]).toMatchObject({ type: "VRFConfigured", status: "False", reason: "TableConflict" });
  });

  it("removes kvrfd routes and VRFs no object owns (left by a crash), never other routes", async () => {
    rig = new Rig();
    const r = rig;
    r.kernelFake.put({ table: 3000, prefix: "10.7.0.1/32", sid: "fd00::1", dev: "fab0", proto: 241 });
    r.kernelFake.put({ table: 3000, prefix: "10.7.0.2/32", sid: "", dev: "x", proto: 240 });
    await r.start();
    await r.fake.addVrf({ name: "vpc-777", rd: rt(1911), importRts: [rt(1911)], exportRts: [rt(1911)], id: 3000 });
    await r.fake.addVrf({ name: "not-ours", rd: rt(1), importRts: [rt(1)], exportRts: [rt(1)], id: 1 });
    await r.link.loadVrfs(r.link.current() ?? (undefined as never));
    r.queue.add(orphanKey);
    await r.settle();
    expect(r.kernelFake.encap(3000)).toEqual([]);
    expect(r.kernelFake.routes.get("3000 10.7.0.2/32")?.proto).toBe(240);
    expect([...r.fake.vrfs.keys()]).toEqual(["not-ours"]);
  });

  it("an orphan sweep never removes what an object created while the sweep was running", async () => {
    const r = await started();
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    let release!: () => void;
    r.kernelFake.dumpGate = new Promise<void>((res) => (release = res));
    r.queue.add(orphanKey);
    await sleep(20);
    // The sweep is reading the kernel; meanwhile an object arrives and is reconciled (its kernel
    // writes wait for the read: a read that overlapped them would leave a stale view).
    r.put(bvi("o", "abc", 2748, ["10.1.0.5/32"]));
    await until(() => r.fake.vrfs.has("vpc-abc"));
    expect(r.kernelFake.encap(2748)).toHaveLength(0);
    r.kernelFake.dumpGate = undefined;
    release();
    await r.settle();
    expect(r.fake.vrfs.has("vpc-abc")).toBe(true);
    expect(r.kernelFake.encap(2748)).toHaveLength(1);
  });

  it("originates a prefix that several VPCs share once per VPC, each under its VPC's RD (VPN form)", async () => {
    const r = await started();
    r.put(bvi("a", "abc", 2748, ["10.1.0.5/32", "10.1.0.6/32"]));
    r.put(bvi("d", "def", 3567, ["10.1.0.5/32"]));
    await r.settle();
    const rib = (await r.fake.listRib("ipv4")).filter((p) => p.local).map((p) => `${p.rd.type === 1 ? "" : p.rd.assigned} ${p.prefix} ${p.rts.map((x) => (x.type === 1 ? "" : x.assigned)).join(",")}`);
    expect(rib.sort()).toEqual(["2748 10.1.0.5/32 2748", "2748 10.1.0.6/32 2748", "3567 10.1.0.5/32 3567"]);
    // One path call per VRF, however many prefixes it has.
    expect(r.fake.pathCalls).toBe(2);
    // A pass over everything afterwards changes nothing.
    r.fake.log.length = 0;
    r.passAll();
    await r.settle();
    expect(r.fake.log).toEqual([]);
  });

  it("reconciles only the VRFs that import a changed path's route targets, never VPC b's routes in VPC a's table", async () => {
    const r = await started();
    r.put(bvi("a", "abc", 2748, ["10.1.0.5/32"]));
    r.put(bvi("d", "def", 3567, ["10.1.0.5/32"]));
    r.put(bvi("x", "123", 291, ["10.9.0.1/32"]));
    await r.settle();
    r.ribKeys.length = 0;
    // Overlapping addresses across VPCs: each only in its own VPC's table.
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::def:1", rts: [rt(3567)], neighbor: "fd00:ff::1" });
    await r.settle();
    expect([...new Set(r.ribKeys)].sort()).toEqual(["a", "d"]);
    expect(r.kernelFake.encap(2748)).toEqual([{ table: 2748, prefix: "10.1.1.7/32", sid: "fd00:0:b::abc:1", dev: "fab0" }]);
    expect(r.kernelFake.encap(3567)).toEqual([{ table: 3567, prefix: "10.1.1.7/32", sid: "fd00:0:b::def:1", dev: "fab0" }]);
    expect(r.kernelFake.encap(291)).toEqual([]);
    r.ribKeys.length = 0;
    r.fake.withdraw("10.1.1.7/32", "fd00:ff::1");
    await r.settle();
    expect([...new Set(r.ribKeys)].sort()).toEqual(["a", "d"]);
    expect([r.kernelFake.encap(2748), r.kernelFake.encap(3567)]).toEqual([[], []]);
  });

  it("a VRF created after the remote paths arrived imports them at once, without listing its RIB", async () => {
    const r = await started();
    r.fake.learn({ prefix: "10.1.1.7/32", nextHop: "fd00:ff::b", sid: "fd00:0:b::abc:1", rts: [rt(2748)], neighbor: "fd00:ff::1" });
    await r.settle();
    r.put(bvi("a", "abc", 2748, ["10.1.0.5/32"]));
    await r.settle();
    expect(r.kernelFake.encap(2748)).toEqual([{ table: 2748, prefix: "10.1.1.7/32", sid: "fd00:0:b::abc:1", dev: "fab0" }]);
    expect(r.fake.calls.filter((c) => c === "listVrfPaths")).toEqual([]);
  });

  it("stops BGP when no instance selects the node any more", async () => {
    const r = await started();
    r.nodes.put({ metadata: { name: "n1", labels: { role: "other" } }, status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }] } });
    r.queue.add(speakerKey);
    await r.settle();
    expect(r.fake.global).toBeUndefined();
    expect(r.api.nodeStatus.get("workers")).toBeUndefined();
  });

  it("applies the peers' vpcs as gobgpd policy before it adds the peer, and reports a failure in the node's status", async () => {
    const r = await started();
    const i = r.instances.get("workers");
    if (i === undefined) throw new Error("no instance");
    const withVpcs = (vpcs: string[]): BGPInstance => ({ ...i, spec: { ...i.spec, peers: [{ address: "fd00:ff::1", asn: 65000 }, { address: "fd00:ff::2", asn: 65100, vpcs }] } });
    r.instances.put(withVpcs(["abc"]));
    r.queue.add(speakerKey);
    await r.settle();
    const imp = r.fake.assignments.import.policies[0] ?? "";
    expect(imp).toMatch(/^kvrf-[0-9a-f]{8}-import$/);
    expect(r.fake.log.indexOf(`setGlobalPolicyAssignment export ${imp.replace("import", "export")}`)).toBeLessThan(r.fake.log.indexOf("addPeer fd00:ff::2"));
    expect(r.fake.definedSets.get(`ext-community ${imp.replace("import", "rt-0")}`)?.list).toEqual(["rt:^65000:2748$"]);
    expect(r.fake.policies.get(imp)?.statements.map((st) => st.action)).toEqual(["reject", "accept", "reject"]);

    // gobgpd refuses: the Ready condition says so, the old policy stays in force, a retry completes it.
    r.fake.failNext("addPolicy", "other", 2);
    r.instances.put(withVpcs(["abc", "def"]));
    r.queue.add(speakerKey);
    await until(() => r.api.events.some((e) => e.reason === "InvalidConfig" && e.message.includes("session policies (peers' vpcs, exportRoutes): addPolicy")) || r.api.events.length > 10);
    expect(r.api.events.map((e) => e.message)).toContainEqual(expect.stringMatching(/node n1: gobgpd: session policies \(peers' vpcs, exportRoutes\): addPolicy: injected other/));
    await r.settle();
    expect(r.fake.assignments.import.policies[0]).not.toBe(imp);
    expect(r.fake.definedSets.get(`ext-community ${(r.fake.assignments.import.policies[0] ?? "").replace("import", "rt-0")}`)?.list).toEqual(["rt:^65000:2748$", "rt:^65000:3567$"]);
    expect(r.api.nodeStatus.get("workers")?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True" });

    // No vpcs any more: kvrf's policies are gone.
    r.instances.put(i);
    r.queue.add(speakerKey);
    await r.settle();
    expect(r.fake.policies.size).toBe(0);
    expect(r.fake.assignments.import.policies).toEqual([]);
  });

  it("exportRoutes Pods: the cluster's next hops (Node addresses, published VTEPs) in the export policy, again when they change; waits for the Nodes' list", async () => {
    const r = await started();
    const i = r.instances.get("workers");
    if (i === undefined) throw new Error("no instance");
    const node = (name: string, address: string, vtep?: string): V1Node => ({
      metadata: { name, ...(vtep !== undefined ? { annotations: { "kvrf.dev/vtep": vtep } } : {}) },
      status: { addresses: [{ type: "InternalIP", address }] },
    });
    r.fabric = [node("n1", "10.0.0.1", "192.0.2.1")];
    r.instances.put({ ...i, spec: { ...i.spec, peers: [{ address: "fd00:ff::1", asn: 65000 }, { address: "fd00:ff::2", asn: 65100, exportRoutes: "Pods" }] } });
    r.queue.add(speakerKey);
    await r.settle();
    const pods = (): string[] | undefined => {
      const exp = r.fake.assignments.export.policies[0] ?? "";
      return r.fake.policies.get(exp)?.statements.find((st) => st.action === "accept")?.nextHops;
    };
    expect(pods()).toEqual(["10.0.0.1", "192.0.2.1"]);
    // Nothing limits what the peer sends: no import policy.
    expect(r.fake.assignments.import.policies).toEqual([]);

    // A node joins (the daemon reconciles the speaker on a Nodes' change).
    r.fabric = [...r.fabric, node("n2", "10.0.0.2", "192.0.2.2")];
    r.queue.add(speakerKey);
    await r.settle();
    expect(pods()).toEqual(["10.0.0.1", "10.0.0.2", "192.0.2.1", "192.0.2.2"]);
    expect(r.fake.policies.size).toBe(1);

    // Before the Nodes are listed the speaker does nothing (it would send such a peer nothing).
    r.fabricSynced = false;
    r.fake.log.length = 0;
    r.fabric = [];
    r.queue.add(speakerKey);
    await r.settle();
    expect(r.fake.log.filter((l) => !l.startsWith("list") && !l.startsWith("get"))).toEqual([]);
    expect(pods()).toEqual(["10.0.0.1", "10.0.0.2", "192.0.2.1", "192.0.2.2"]);
  });

  it("reports a router ID published by another node", async () => {
    const r = await started();
    const i = r.instances.get("workers");
    if (i === undefined) throw new Error("no instance");
    r.instances.put({ ...i, status: { nodes: [{ nodeName: "n2", routerID: "10.0.0.1" }] } });
    r.queue.add(speakerKey);
    await r.settle();
    expect(r.api.nodeStatus.get("workers")?.conditions?.find((c) => c.type === "RouterIDUnique")).toMatchObject({ status: "False", reason: "Collision" });
    expect((await r.metrics.routerIdConflicts.get()).values[0]?.value).toBe(1);
  });
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(5);
  }
}
