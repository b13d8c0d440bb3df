// End to end in the network-namespace lab (scripts/lab): route reflector + iad, sjc, dfw, each
// with gobgpd and kvrfd, pods attached by cnitool + dist/kvrf — once per lab setting
// (encapsulation × underlay family), each on a kernel that can run it (the host, or the vm tier).
// Convergence is asserted, never timed: scripts/bench-lab.ts measures the times.
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  attachPod,
  converge,
  crashGobgpd,
  detachPod,
  down,
  echoRequests,
  ipv4Receives,
  kubeClient,
  kernelRoutes,
  kubectlKvrf,
  pidfiles,
  ping,
  replaceKvrfPod,
  readState,
  restartDaemon,
  speakerOf,
  up,
  type AttachedPod,
} from "../../scripts/netns-lab/lab.js";
import { demoPods, describeSettings, labNodes, underlayAddress, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { waitFor } from "../harness/process.js";
import { monitorRoutes } from "../harness/kvrfd.js";
import { describeNeeds, timeScale } from "../harness/needs.js";
import { Flows } from "../../scripts/netns-lab/flows.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { vtepNextHop } from "../../reconciler/kernel/vtep.js";
import { srv6Behavior, type LocalPath, type Vrf } from "../../reconciler/gobgp/speaker.js";
import { routerMac } from "../../shared/router-mac.js";
import { bgpVrfInstanceName, type BGPVRFInstance } from "../../shared/api-types.js";
import * as k8s from "@kubernetes/client-node";

const tableA = 0xa1;
const log = (s: string): void => void process.stderr.write(`[lab] ${s}\n`);

// `full`: every test. Otherwise the ones whose outcome depends on the data plane (connectivity,
// isolation, withdrawal); the restarts exercise the control plane, the same whatever the
// encapsulation, and under the vm tier's emulation each costs minutes. SRv6 runs with both kernel
// modes in one lab ("mixed"): VRF-device nodes and a policy-routing node exchanging traffic.
const settings: { lab: LabSettings; full: boolean }[] = [
  { lab: { encap: "vxlan", underlay: 4 }, full: true },
  { lab: { encap: "vxlan", underlay: 6 }, full: false },
  { lab: { encap: "srv6", underlay: 6, mode: "mixed" }, full: false },
];

/** Declares nothing: a test this setting does not run (not a skipped test). */
const notHere = (() => undefined) as unknown as typeof it;

for (const { lab, full } of settings) {
  // What the nodes' kernel modes need (without one, policy routing, which every kernel here has).
  const modes = lab.mode === "mixed" ? (["vrf", "policy-routing"] as const) : [lab.mode ?? "policy-routing"];
  const needs = [...new Set([...modes.flatMap((m) => cniNeeds(m, lab.encap)), ...kvrfdNeeds(lab.encap, lab.underlay)])];
  describeNeeds(needs, `the lab: pods of a VPC across nodes over ${describeSettings(lab)}`, () => labSuite(lab, full));
}


function labSuite(lab: LabSettings, full: boolean): void {
  const itFull = full ? it : notHere;
  let pods: AttachedPod[] = [];
  const pod = (name: string): AttachedPod => {
    const p = pods.find((x) => x.name === name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  };
  const convergeOk = async (what: string): Promise<void> => {
    const { ms, cells } = await converge(pods, 90_000 * timeScale);
    log(`${what}: converged in ${ms} ms`);
    expect(cells.filter((c) => c.ok !== c.expected)).toEqual([]);
  };

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods) pods.push(await attachPod(p));
  });

  afterAll(async () => {
    await down(log);
  });

  it("connects every pod of a VPC with every other, IPv4 and IPv6, and no pod of another", async () => {
    await convergeOk("initial");
  });

  if (lab.encap === "srv6") {
    it("carries cross-node traffic in SRv6, to the remote attachment's SID inside its node's locator", async () => {
      const routes = await kernelRoutes("iad", tableA);
      expect(routes).toContain(`${pod("a1-sjc").ipv4} ${routes.find((r) => r.startsWith(pod("a1-sjc").ipv4))?.split(" ")[1]}`);
      const sjc = routes.filter((r) => r.startsWith(`${pod("a1-sjc").ipv4} `) || r.startsWith(`${pod("a1-sjc").ipv6} `));
      expect(sjc).toHaveLength(2);
      for (const r of sjc) expect(r.split(" ")[1]).toMatch(/^fd00:0:12:(1:)?:a1:[0-9a-f]+$/);
      // Nothing of VPC b1 in VPC a1's table on any node.
      for (const node of ["iad", "sjc", "dfw"]) {
        for (const r of await kernelRoutes(node, tableA)) expect(r).not.toMatch(/fd10:b1:/);
      }
    });
  } else {
    it(`carries cross-node traffic in VXLAN, via the remote node's VTEP (IPv${lab.underlay}) on the VPC's VXLAN device`, async () => {
      const sjc = labNodes.find((n) => n.name === "sjc");
      if (sjc === undefined) throw new Error("no sjc");
      const vtep = underlayAddress(sjc, lab);
      const routes = await kernelRoutes("iad", tableA);
      expect(routes).toContain(`${pod("a1-sjc").ipv4} ${vtepNextHop(4, vtep).via}`);
      expect(routes.find((r) => r.startsWith(`${pod("a1-sjc").ipv6} `))).toBeDefined();
      // Nothing of VPC b1 in VPC a1's table on any node.
      for (const node of ["iad", "sjc", "dfw"]) {
        for (const r of await kernelRoutes(node, tableA)) expect(r).not.toMatch(/fd10:b1:/);
      }
    });
  }

  it("never delivers across VPCs, even to the same address", async () => {
    // a1-sjc → 10.10.11.2: a1-iad-1's address in VPC a1, and b1-iad's in VPC b1, on the same node
    // (iad originates the prefix in both VRFs). Only a1-iad-1 may see the echo requests.
    expect(pod("b1-iad").ipv4).toBe(pod("a1-iad-1").ipv4);
    const [inA, inB] = [await echoRequests("a1-iad-1"), await echoRequests("b1-iad")];
    expect(await ping(pod("a1-sjc"), pod("a1-iad-1").ipv4)).toBe(true);
    expect((await echoRequests("a1-iad-1")).v4).toBeGreaterThan(inA.v4);
    expect((await echoRequests("b1-iad")).v4).toBe(inB.v4);
    // VPC b1 has no 10.10.13.0/24 pod: a1-dfw's address is unreachable from b1.
    expect(await ping(pod("b1-sjc"), pod("a1-dfw").ipv4)).toBe(false);
    expect(await ping(pod("b1-sjc"), pod("a1-dfw").ipv6)).toBe(false);
  });

  it("ignores a path a compromised node's speaker forges into another VPC: no packet crosses", async () => {
    // sjc's gobgpd announces, with VPC a1's route target and an RD that wins the tie (65000:1 is
    // lower than a1's own), a1-iad-1's address 10.10.11.2 behind VPC b1's attachment on iad: SRv6,
    // b1-iad's SID (iad decapsulates into VPC b1, where 10.10.11.2 is b1-iad); VXLAN, VPC b1's VNI
    // at iad's VTEP. Imported, it would take a1's traffic for a1-iad-1 into b1-iad. kvrfd on each
    // node checks it against the published records (the SID's VPC field, the VNI) and ignores it.
    const iad = labNodes.find((n) => n.name === "iad");
    const sjc = labNodes.find((n) => n.name === "sjc");
    if (iad === undefined || sjc === undefined) throw new Error("no iad or sjc");
    const victim = pod("b1-iad");
    const target = pod("a1-iad-1");
    expect(victim.ipv4).toBe(target.ipv4);
    const forger: Vrf = { name: "forged", rd: { type: 0, asn: 65000, assigned: 1 }, importRts: [], exportRts: [{ type: 0, asn: 65000, assigned: 0xa1 }], id: 1 };
    let forged: LocalPath;
    if (lab.encap === "srv6") {
      // (ip -j shows a host route's dst without its /32.)
      const sid = (await kernelRoutes("sjc", 0xb1)).find((r) => r.startsWith(`${victim.ipv4} `))?.split(" ")[1];
      if (sid === undefined) throw new Error("no route to b1-iad on sjc");
      forged = { vrf: "forged", prefix: `${victim.ipv4}/32`, nextHop: underlayAddress(sjc, lab), encap: "srv6", sid, behavior: srv6Behavior.endDT46 };
    } else {
      forged = { vrf: "forged", prefix: `${victim.ipv4}/32`, nextHop: underlayAddress(iad, lab), encap: "vxlan", vni: 0xb1, routerMac: routerMac("iad") };
    }
    const s = await speakerOf("sjc");
    const custom = kubeClient(readState() ?? (() => { throw new Error("no lab state"); })()).makeApiClient(k8s.CustomObjectsApi);
    const routesMessage = async (node: string): Promise<string> => {
      const o = (await custom.getClusterCustomObject({ group: "kvrf.dev", version: "v1alpha1", plural: "bgpvrfinstances", name: bgpVrfInstanceName(node, "a1") })) as BGPVRFInstance;
      return o.status?.conditions?.find((c) => c.type === "RoutesProgrammed")?.message ?? "";
    };
    // dfw's route to a1-iad-1 before (on sjc itself the forged path is local and so wins: the
    // compromised node hurts only itself).
    const via = async (node: string): Promise<string | undefined> => (await kernelRoutes(node, tableA)).find((r) => r.startsWith(`${target.ipv4} `))?.split(" ")[1];
    const honest = await via("dfw");
    expect(honest).toBeDefined();
    try {
      await s.addLocalPaths(forger, [forged]);
      // dfw imports it into a1 (the route target) and says it ignores it; its kernel route to
      // 10.10.11.2 stays a1-iad-1's.
      await waitFor("dfw reports the forged path ignored", async () => (await routesMessage("dfw")).includes(`remote paths ignored: ${victim.ipv4}/32 from `), { timeoutMs: 30_000, intervalMs: 200 });
      const reason = lab.encap === "srv6" ? /is an attachment of VPC b1 on node iad, not of this VPC/ : /VNI 177 is not this VPC's 161/;
      expect(await routesMessage("dfw")).toMatch(reason);
      expect(await via("dfw")).toBe(honest);
      // Traffic: a1-dfw's pings reach a1-iad-1; b1-iad receives nothing at all.
      const [echoesBefore, victimBefore] = [await echoRequests("a1-iad-1"), await ipv4Receives("b1-iad")];
      for (let i = 0; i < 5; i++) expect(await ping(pod("a1-dfw"), target.ipv4)).toBe(true);
      expect((await echoRequests("a1-iad-1")).v4 - echoesBefore.v4).toBe(5);
      expect(await ipv4Receives("b1-iad")).toBe(victimBefore);
      log(`forged path ignored on dfw; 5/5 echo requests at a1-iad-1, ${(await ipv4Receives("b1-iad")) - victimBefore} packets at b1-iad`);
    } finally {
      await s.deleteLocalPaths(forger, [forged]).catch(() => undefined);
      s.close();
    }
    await waitFor("dfw no longer reports the forged path", async () => !(await routesMessage("dfw")).includes("ignored"), { timeoutMs: 30_000, intervalMs: 200 });
  });

  it("withdraws a deleted pod's prefix from every remote kernel table", async () => {
    const gone = pod("a1-dfw");
    const t0 = Date.now();
    await detachPod(gone);
    pods = pods.filter((p) => p !== gone);
    await waitFor("a1-dfw's prefixes gone from iad and sjc", async () => {
      for (const node of ["iad", "sjc"]) {
        const routes = await kernelRoutes(node, tableA);
        if (routes.some((r) => r.startsWith(`${gone.ipv4} `) || r.startsWith(`${gone.ipv6} `))) return false;
      }
      return true;
    }, { timeoutMs: 60_000, intervalMs: 100 });
    log(`pod delete → remote withdrawal: ${Date.now() - t0} ms`);
    pods.push(await attachPod(gone));
    await convergeOk("re-attached a1-dfw");
  });

  itFull("recovers when gobgpd on a worker is killed and restarted", async () => {
    await crashGobgpd("sjc", 1000);
    await convergeOk("gobgpd kill -9 + restart on sjc");
  });

  // The lab's BGPInstances negotiate graceful restart (docs/kvrfd.md): the route reflector keeps a
  // restarting worker's routes, the worker's kvrfd keeps its kernel routes, so traffic to and from
  // its pods never stops — and no packet reaches another VPC meanwhile.
  /** Steady traffic on every cross-node flow while `fault` runs and the lab settles: what was lost. */
  const underTraffic = async (what: string, fault: () => Promise<unknown>): Promise<Awaited<ReturnType<Flows["stop"]>>> => {
    const flows = await Flows.start(pods);
    let result: Awaited<ReturnType<Flows["stop"]>>;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await fault();
      await waitFor(`no drift after ${what}`, async () => (await kubectlKvrf(["status"])).code === 0, { timeoutMs: 60_000, intervalMs: 500 });
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      result = await flows.stop();
    }
    log(`${what}: ${result.flows.map((f) => `${f.from}→${f.to} ${f.received}/${f.sent}`).join(", ")}`);
    expect(result.flows.length).toBeGreaterThan(0);
    expect(result.flows.every((f) => f.sent > 100)).toBe(true);
    return result;
  };

  itFull("loses no packet, to or from any pod, while a worker's gobgpd is killed and restarted (graceful restart)", async () => {
    const r = await underTraffic("gobgpd kill -9 on sjc", () => crashGobgpd("sjc", 1000));
    expect(r.flows.filter((f) => f.lost.length > 0).map((f) => `${f.from}→${f.to} lost ${f.lost.length}`)).toEqual([]);
    expect(r.crossVpc).toEqual([]);
  });

  // A rolling update of the DaemonSet: kvrfd's preStop stops BGP without a NOTIFICATION (gobgpd's
  // own SIGTERM would send a Hard Reset and the peers would flush sjc's routes), gobgp-drain waits
  // for it, and kvrfd holds sjc's kernel routes against the withdrawals of its stopping gobgpd.
  itFull("loses no packet while a worker's kvrf pod is replaced (preStop hooks, SIGTERM, graceful restart)", async () => {
    let said: { drain: string; prestop: string } | undefined;
    const r = await underTraffic("kvrf pod replaced on sjc", async () => (said = await replaceKvrfPod("sjc")));
    expect(said?.prestop).toMatch(/^BGP stopped without NOTIFICATION/);
    expect(said?.drain).toMatch(/^BGP stopped by kvrfd prestop/);
    expect(r.flows.filter((f) => f.lost.length > 0).map((f) => `${f.from}→${f.to} lost ${f.lost.length}`)).toEqual([]);
    expect(r.crossVpc).toEqual([]);
  });

  itFull("keeps the routes while kvrfd restarts, without churning them", async () => {
    const before = await kernelRoutes("iad", tableA);
    const mon = monitorRoutes("kvrf-lab-iad");
    await restartDaemon(pidfiles.kvrfd("iad"), "SIGTERM", 2000);
    await convergeOk("kvrfd restart on iad");
    await new Promise((r) => setTimeout(r, 2000));
    const events = await mon.stop();
    expect(await kernelRoutes("iad", tableA)).toEqual(before);
    expect(events.filter((l) => l.includes("proto 241"))).toEqual([]);
  });

  itFull("recovers from an API server restart", async () => {
    await restartDaemon(pidfiles.apiserver(), "SIGTERM", 1000);
    await waitFor("API server back", async () => {
      const s = await speakerOf("rr");
      s.close();
      return true;
    }, { timeoutMs: 30_000 });
    // A pod added after the restart reaches the others: the whole control loop works again.
    const late = await attachWhenApiAnswers({ name: "a1-sjc-2", vpc: "a1", node: "sjc" });
    pods.push(late);
    await convergeOk("API server restart");
  });

  itFull("recovers when the route reflector restarts after kvrfd did (both VPCs' copies of a prefix reach every node)", async () => {
    // A kvrfd restart, then a session reset: how gobgpd 4.8 lost one of two VRFs' same prefix
    // while kvrfd originated paths with vrf_id (docs/kvrfd.md).
    await crashGobgpd("rr", 1000);
    await convergeOk("route reflector gobgpd kill -9 + restart");
  });
}

async function attachWhenApiAnswers(p: (typeof demoPods)[number]): Promise<AttachedPod> {
  let result: AttachedPod | undefined;
  await waitFor(`attach ${p.name}`, async () => {
    result = await attachPod(p);
    return true;
  }, { timeoutMs: 60_000, intervalMs: 1000 });
  if (result === undefined) throw new Error("unreachable");
  return result;
}
