// The CNI plugin's VXLAN data plane in throwaway namespaces, in both kernel modes and over IPv4 and
// IPv6 underlays: two "nodes", pods of two VPCs with overlapping addresses. kvrfd's part (remote
// prefixes via the remote VTEP, with the remote router MAC in a permanent neighbour and an FDB
// entry) is played by the test, so the VPC's VXLAN device built by the plugin carries real traffic.
import { afterAll, beforeAll, expect, it } from "vitest";
import { attach, attachmentIds, detach, releaseVpcIfUnused, type AttachmentSpec } from "../../cni/dataplane/attachment.js";
import { UndoStack } from "../../cni/dataplane/undo.js";
import type { DataplaneMode } from "../../cni/dataplane/mode.js";
import { cniNeeds } from "../../shared/kernel/capabilities.js";
import { vxlanDeviceName } from "../../shared/ifnames.js";
import { cleanupNetns, createNetns, ip, type Netns } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";

const vpcA = 0xa1n;
const vpcB = 0xb1n;
const macOf = { nodeA: "02:0a:00:00:00:0a", nodeB: "02:0b:00:00:00:0b" } as const;

for (const mode of ["policy-routing", "vrf"] as DataplaneMode[]) {
  for (const underlay of [4, 6] as const) {
    const needs = [...cniNeeds(mode, "vxlan"), "vxlan" as const, ...(underlay === 6 ? (["ipv4-via-ipv6"] as const) : [])];
    describeNeeds(needs, `VXLAN data plane (${mode} mode, IPv${underlay} underlay)`, () => {
      let nodeA: Netns, nodeB: Netns, a1: Netns, a2: Netns, b1: Netns;
      const vtep = (n: "A" | "B"): string => (underlay === 4 ? (n === "A" ? "192.0.2.1" : "192.0.2.2") : n === "A" ? "2001:db8::a" : "2001:db8::b");

      const spec = (node: Netns, pod: Netns, vpc: bigint, att: number, v4: string, v6: string, n: "A" | "B"): AttachmentSpec => ({
        hostNs: node.name,
        mode,
        encap: "vxlan",
        vpc,
        attachment: att,
        seed: `c${att}/eth0`,
        table: Number(vpc),
        vxlan: { vni: Number(vpc), vtep: vtep(n), routerMac: n === "A" ? macOf.nodeA : macOf.nodeB },
        podIf: "eth0",
        netns: pod.path,
        mtu: 1430,
        ips: [
          { address: `${v4}/24`, family: 4 },
          { address: `${v6}/64`, family: 6 },
        ],
        routes: [],
        terminations: [],
        alias: `kvrf:test:c${att}:eth0`,
      });
      const sA1 = (): AttachmentSpec => spec(nodeA, a1, vpcA, 1, "10.1.0.1", "fd10::1", "A");
      const sA2 = (): AttachmentSpec => spec(nodeB, a2, vpcA, 2, "10.1.0.2", "fd10::2", "B");
      // VPC b1 on node B with a1's address: overlapping, must never see VPC a1's traffic.
      const sB1 = (): AttachmentSpec => spec(nodeB, b1, vpcB, 1, "10.1.0.1", "fd10::1", "B");

      /** Plays kvrfd on `node`: the remote pod's prefixes of `vpc` via the remote node's VTEP. */
      const remote = async (node: Netns, vpc: bigint, prefixes: string[], remoteNode: "A" | "B"): Promise<void> => {
        const dev = vxlanDeviceName(vpc);
        const rv = vtep(remoteNode);
        const rmac = remoteNode === "A" ? macOf.nodeA : macOf.nodeB;
        // An IPv6 VTEP cannot be the next hop itself in policy-routing mode: the main table routes
        // it through the underlay link, and the kernel refuses an onlink gateway reachable
        // elsewhere. A link-local key per VTEP is what kvrfd uses (docs/dataplane.md).
        const key6 = underlay === 4 ? `::ffff:${rv}` : "fe80::ff:b";
        const key4 = underlay === 4 ? rv : key6;
        await node.ip("neigh", "replace", key4, "lladdr", rmac, "dev", dev, "nud", "permanent");
        if (key6 !== key4) await node.ip("neigh", "replace", key6, "lladdr", rmac, "dev", dev, "nud", "permanent");
        await node.exec("bridge", "fdb", "append", rmac, "dev", dev, "dst", rv, "self", "permanent");
        for (const p of prefixes) {
          const v6 = p.includes(":");
          const via = v6 ? ["via", key6] : underlay === 4 ? ["via", key4] : ["via", "inet6", key4];
          await node.ip("route", "add", p, ...via, "dev", dev, "onlink", "table", String(Number(vpc)), "proto", "241");
        }
      };

      beforeAll(async () => {
        [nodeA, nodeB, a1, a2, b1] = (await Promise.all(["nodeA", "nodeB", "a1", "a2", "b1"].map((n) => createNetns(n)))) as [Netns, Netns, Netns, Netns, Netns];
        await ip("link", "add", "fab0", "netns", nodeA.name, "type", "veth", "peer", "name", "fab0", "netns", nodeB.name);
        for (const [n, who] of [
          [nodeA, "A"],
          [nodeB, "B"],
        ] as const) {
          await n.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
          await n.ip("link", "set", "fab0", "up");
          await n.ip("addr", "add", `${vtep(who)}/${underlay === 4 ? 24 : 64}`, "dev", "fab0", ...(underlay === 6 ? ["nodad"] : []));
        }
        for (const s of [sA1(), sA2(), sB1()]) {
          const undo = new UndoStack();
          await attach(s, undo);
          undo.commit();
        }
        await remote(nodeA, vpcA, ["10.1.0.2/32", "fd10::2/128"], "B");
        await remote(nodeB, vpcA, ["10.1.0.1/32", "fd10::1/128"], "A");
      }, 120_000);

      afterAll(cleanupNetns);

      it("makes one VXLAN device per VPC: the VNI, the node's VTEP and router MAC, bound to the VPC's table", async () => {
        const dev = vxlanDeviceName(vpcA);
        const link = (await nodeA.ip("-d", "-o", "link", "show", "dev", dev)).trim();
        expect(link).toContain(`link/ether ${macOf.nodeA}`);
        expect(link).toMatch(new RegExp(`vxlan id ${Number(vpcA)} local ${vtep("A")} .*dstport 4789`));
        expect(link).toContain("nolearning");
        expect(link).toMatch(/state UNKNOWN|,UP/);
        if (mode === "vrf") expect(link).toContain(`master kvrf-`);
        else for (const fam of ["-4", "-6"]) expect(await nodeA.ip(fam, "rule", "show", "iif", dev)).toContain(`lookup ${Number(vpcA)}`);
      });

      it("carries a VPC's traffic between nodes, IPv4 and IPv6", async () => {
        expect(await a1.exec("ping", "-c", "1", "-W", "3", "10.1.0.2")).toMatch(/1 received/);
        expect(await a1.exec("ping", "-6", "-c", "1", "-W", "3", "fd10::2")).toMatch(/1 received/);
      });

      it("never delivers into another VPC with the same addresses", async () => {
        const before = await b1.exec("nstat", "-az", "IcmpInEchos");
        expect(await a2.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.1.0.1")).toMatch(/2 received/);
        expect(await b1.exec("nstat", "-az", "IcmpInEchos")).toBe(before);
        // VPC b1 has no route to node A at all: unreachable, not leaked to the main table.
        await expect(b1.exec("ping", "-c", "1", "-W", "1", "10.1.0.2")).rejects.toThrow(/Unreachable|100% packet loss/);
        await expect(b1.exec("ping", "-c", "1", "-W", "1", vtep("A"))).rejects.toThrow(/Unreachable|100% packet loss/);
      });

      it("refuses a VTEP that is not an address of the node, before making anything", async () => {
        const pod = await createNetns("badvtep");
        const s = { ...spec(nodeA, pod, 0xc1n, 1, "10.3.0.1", "fd30::1", "A"), vxlan: { vni: 0xc1, vtep: "198.51.100.77", routerMac: macOf.nodeA } };
        const undo = new UndoStack();
        await expect(attach(s, undo)).rejects.toThrow(/vtep: 198\.51\.100\.77 is not an address of this node/);
        expect(await undo.unwind()).toEqual([]);
        expect(await nodeA.ip("-o", "link", "show")).not.toContain(vxlanDeviceName(0xc1n));
      });

      it("removes the VXLAN device and its rules with the VPC's last attachment, and nothing else", async () => {
        for (const s of [sA1(), sA2(), sB1()]) {
          const ids = attachmentIds(undefined, s.vpc, s.attachment ?? 0);
          await detach({ hostNs: s.hostNs, mode, table: s.table, ...ids });
          await detach({ hostNs: s.hostNs, mode, table: s.table, ...ids });
        }
        for (const [n, vpc] of [
          [nodeA, vpcA],
          [nodeB, vpcA],
          [nodeB, vpcB],
        ] as const) {
          expect(await releaseVpcIfUnused(mode, vpc, Number(vpc), n.name)).toBe(true);
          expect(await n.ip("-o", "link", "show")).not.toContain(vxlanDeviceName(vpc));
          for (const fam of ["-4", "-6"]) expect(await n.ip(fam, "rule", "show", "table", String(Number(vpc)))).toBe("");
        }
        for (const n of [nodeA, nodeB]) {
          expect(await n.ip("-o", "link", "show")).not.toMatch(/kvx-|kvrf-|kv[a-z2-7]{13}/);
          expect(await n.ip("-6", "route", "show", "table", "all", "proto", "240")).toBe("");
          expect(await n.ip("-4", "route", "show", "table", "all", "proto", "240")).toBe("");
        }
      });
    });
  }
}
