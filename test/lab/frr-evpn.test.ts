// FRR 8.4 (an independent BGP implementation) joins the lab's EVPN fabric as a route-reflector
// client of the lab's gobgpd route reflector, in the VXLAN lab over the IPv4 underlay:
//  - FRR decodes kvrf's type-5 routes: kvrf's RD, RT, router MAC and VNI;
//  - a type-5 route FRR originates with VPC a1's route target (a gateway PE's external prefix) is
//    imported by kvrfd into VPC a1's table on the nodes that have the VPC, and into no other table;
//  - with a VXLAN device of its own on FRR's side (FRR's EVPN data plane needs VRF devices, which
//    this kernel lacks, so the test builds the PE's forwarding by hand), a pod of VPC a1 reaches a
//    host behind it, and the pod of VPC b1 with the very same address does not.
// FRR encodes the static route's label as an MPLS label (label << 4 | bottom of stack): label 10
// is VNI 161, VPC a1's.
import { afterAll, beforeAll, expect, it } from "vitest";
import * as k8s from "@kubernetes/client-node";
import { attachPod, down, kernelRoutes, kubeClient, labDir, ping, readState, up, type AttachedPod } from "../../scripts/netns-lab/lab.js";
import { bgpInstances, demoPods, fabricNetns, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { routerMac } from "../../shared/router-mac.js";
import { frrPaths, startFrr, type Frr, type FrrEvpnTable } from "../harness/frr.js";
import { ip } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";
import { waitFor } from "../harness/process.js";
import path from "node:path";

const lab: LabSettings = { encap: "vxlan", underlay: 4 };
const frrNs = "kvrf-lab-frr";
const frrAddr = "198.51.100.50";
const frrMac = "02:00:5e:00:99:01";
const log = (s: string): void => void process.stderr.write(`[lab/frr] ${s}\n`);

describeNeeds([...cniNeeds("policy-routing", "vxlan"), ...kvrfdNeeds("vxlan", 4)], "FRR 8.4 in the lab's EVPN fabric (VXLAN, IPv4 underlay)", () => {
  let frr: Frr | undefined;
  const pods = new Map<string, AttachedPod>();
  const pod = (name: string): AttachedPod => {
    const p = pods.get(name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  };
  const inFrr = (...args: string[]): Promise<string> => ip("-n", frrNs, ...args);

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods.filter((d) => ["a1-iad-1", "a1-sjc", "b1-iad"].includes(d.name))) pods.set(p.name, await attachPod(p));

    // FRR's node on the fabric, IPv4 only (FRR would take an IPv6 link-local as its next hop).
    await ip("netns", "add", frrNs);
    await ip("link", "add", "fab0", "netns", frrNs, "type", "veth", "peer", "name", "p-frr", "netns", fabricNetns);
    await ip("-n", fabricNetns, "link", "set", "p-frr", "master", "br0", "up");
    await ip("netns", "exec", frrNs, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.ip_forward=1");
    await inFrr("link", "set", "lo", "up");
    await inFrr("addr", "add", `${frrAddr}/24`, "dev", "fab0");
    await inFrr("link", "set", "fab0", "up");
    // The PE's forwarding for VPC a1 (VNI 161): decapsulation on its VTEP, a host behind it, and
    // the way back to iad's pods (their prefix via iad's VTEP and router MAC).
    await inFrr("link", "add", "vx161", "address", frrMac, "type", "vxlan", "id", "161", "local", frrAddr, "dstport", "4789", "nolearning");
    await inFrr("link", "set", "vx161", "up");
    await inFrr("addr", "add", "10.99.0.1/24", "dev", "vx161");
    await inFrr("route", "add", "10.10.11.0/24", "via", "198.51.100.11", "dev", "vx161", "onlink");
    await inFrr("neigh", "replace", "198.51.100.11", "lladdr", routerMac("iad"), "dev", "vx161", "nud", "permanent");
    await ip("netns", "exec", frrNs, "bridge", "fdb", "append", routerMac("iad"), "dev", "vx161", "dst", "198.51.100.11", "self", "permanent");

    frr = await startFrr({
      name: "kvrf-lab-frr",
      netns: frrNs,
      dir: path.join(labDir, "frr"),
      config: [
        "frr defaults datacenter",
        "hostname pe1",
        "log stdout informational",
        "!",
        "route-map VPC-A1 permit 10",
        " set extcommunity rt 65000:161",
        "!",
        "router bgp 65000",
        " bgp router-id 10.255.0.50",
        " no bgp default ipv4-unicast",
        " neighbor 198.51.100.1 remote-as 65000",
        " neighbor 198.51.100.1 timers 3 9",
        " address-family l2vpn evpn",
        "  neighbor 198.51.100.1 activate",
        "  neighbor 198.51.100.1 route-map VPC-A1 out",
        `  network 10.99.0.0/24 rd 65000:9161 ethtag 0 label 10 esi 00:00:00:00:00:00:00:00:00:00 gwip 0.0.0.0 routermac ${frrMac}`,
        " exit-address-family",
        "!",
      ].join("\n"),
    });
    // The route reflector takes FRR as one more client (its BGPInstance, as an operator would).
    const state = readState();
    if (state === undefined) throw new Error("the lab is not up");
    const objects = k8s.KubernetesObjectApi.makeApiClient(kubeClient(state));
    const rr = bgpInstances(lab).find((i) => (i["metadata"] as { name: string }).name === "route-reflector") as { spec: { peers: Record<string, unknown>[] } };
    const peers = [...rr.spec.peers, { address: frrAddr, asn: 65000, routeReflectorClient: true, timers: { holdTime: 9, keepalive: 3 } }];
    await objects.patch(
      { apiVersion: "kvrf.dev/v1alpha1", kind: "BGPInstance", metadata: { name: "route-reflector" }, spec: { peers } },
      undefined,
      undefined,
      "kvrf-lab-test",
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
    await waitFor(
      "FRR's session with the route reflector",
      async () => (await (frr as Frr).json<Record<string, { bgpState?: string }>>("show bgp neighbors 198.51.100.1 json"))["198.51.100.1"]?.bgpState === "Established",
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 600_000);

  afterAll(async () => {
    await frr?.stop();
    await ip("netns", "del", frrNs).catch(() => undefined);
    await down(log);
  }, 120_000);

  const table = (): Promise<FrrEvpnTable> => (frr as Frr).json<FrrEvpnTable>("show bgp l2vpn evpn route detail type prefix json");

  it("FRR decodes kvrf's type-5 routes: kvrf's RD, route target, router MAC and VNI, to the node's VTEP", async () => {
    const route = `[5]:[0]:[32]:[${pod("a1-iad-1").ipv4}]`;
    await waitFor("a1-iad-1's route in FRR", async () => frrPaths(await table(), "65000:161", route).length > 0, { timeoutMs: 60_000, intervalMs: 500 });
    const [p] = frrPaths(await table(), "65000:161", route);
    expect(p?.vni).toBe("161");
    expect(p?.extendedCommunity?.string.split(" ").sort()).toEqual(["ET:8", "RT:65000:161", `Rmac:${routerMac("iad")}`]);
    expect(p?.nexthops?.map((n) => n.ip)).toEqual(["198.51.100.11"]);
    expect(p?.valid).toBe(true);
    // VPC b1's copy of the same address is its own route: its own RD, RT and VNI.
    const [b] = frrPaths(await table(), "65000:177", `[5]:[0]:[32]:[${pod("b1-iad").ipv4}]`);
    expect(b?.vni).toBe("177");
    expect(b?.extendedCommunity?.string.split(" ").sort()).toEqual(["ET:8", "RT:65000:177", `Rmac:${routerMac("iad")}`]);
  });

  it("kvrfd imports FRR's route for VPC a1's route target into VPC a1's tables only", async () => {
    for (const node of ["iad", "sjc"]) {
      await waitFor(`FRR's prefix in ${node}'s VPC a1 table`, async () => (await kernelRoutes(node, 0xa1)).includes(`10.99.0.0/24 ${frrAddr}`), { timeoutMs: 60_000, intervalMs: 500 });
      expect(await kernelRoutes(node, 0xb1)).not.toContainEqual(expect.stringContaining("10.99.0.0/24"));
    }
  });

  it("a pod of VPC a1 reaches the host behind FRR; VPC b1's pod with the same address does not", async () => {
    expect(pod("b1-iad").ipv4).toBe(pod("a1-iad-1").ipv4);
    await waitFor("a1-iad-1 → 10.99.0.1", () => ping(pod("a1-iad-1"), "10.99.0.1"), { timeoutMs: 30_000, intervalMs: 500 });
    expect(await ping(pod("b1-iad"), "10.99.0.1")).toBe(false);
  });
});
