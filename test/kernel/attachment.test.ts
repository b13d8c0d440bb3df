// The CNI plugin's data plane in throwaway namespaces, in both kernel modes: two "nodes" on an
// IPv6 underlay, pods of two VPCs with overlapping addresses. kvrfd's part (remote prefixes → seg6
// encap routes, and the throw route for each remote SID) is played by the test so the
// decapsulation the plugin set up is exercised by real traffic. Each mode runs where a kernel has
// what it needs (test/harness/needs.ts): on the host, or in the vm tier.
import { afterAll, beforeAll, expect, it } from "vitest";
import { attach, attachmentIds, configure, detach, ensureVpc, prepare, releaseVpcIfUnused, type AttachmentIds, type AttachmentSpec } from "../../cni/dataplane/attachment.js";
import type { DataplaneMode } from "../../cni/dataplane/mode.js";
import { UndoStack } from "../../cni/dataplane/undo.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { vrfDeviceName } from "../../shared/ifnames.js";
import { parseLocator } from "../../shared/srv6-sid.js";
import { describeNeeds } from "../harness/needs.js";
import { createNetns, type Netns } from "../harness/netns.js";

const vpcA = 0xaan;
const vpcB = 0xbbn;

function spec(mode: DataplaneMode, node: Netns, pod: Netns, vpc: bigint, att: number, v4: string, v6: string, locator: string): AttachmentSpec {
  return {
    hostNs: node.name,
    mode,
    vpc,
    attachment: att,
    seed: `c${att}/eth0`,
    table: Number(vpc),
    locator: parseLocator(locator),
    podIf: "eth0",
    netns: pod.path,
    mtu: 1436,
    ips: [
      { address: `${v4}/24`, family: 4 },
      { address: `${v6}/64`, family: 6 },
    ],
    routes: [],
    terminations: [],
    alias: `kvrf:test:c${att}:eth0`,
  };
}

function ids(s: AttachmentSpec): AttachmentIds {
  return attachmentIds(s.locator, s.vpc, s.attachment ?? -1);
}

async function attachOk(s: AttachmentSpec): Promise<void> {
  await ensureVpc(s.mode, s.vpc, s.table, s.hostNs);
  const undo = new UndoStack();
  await attach(s, undo);
  undo.commit();
}

/** What the plugin may leave on a node after everything is detached and released: nothing. */
async function kvrfState(node: Netns): Promise<string> {
  const links = [await node.ip("-o", "link", "show"), await node.ip("-4", "rule", "show"), await node.ip("-6", "rule", "show")]
    .join("\n")
    .split("\n")
    .filter((l) => /kv[a-z2-7]{13}|kvrf-[a-z2-7]+|lookup (170|187)\b/.test(l));
  // Every route of kvrf's protocol counts, whatever /etc/iproute2/rt_protos calls 240.
  const routes = [await node.ip("-4", "route", "show", "table", "all", "proto", "240"), await node.ip("-6", "route", "show", "table", "all", "proto", "240")]
    .join("\n")
    .split("\n")
    .filter((l) => l.trim() !== "");
  return [...links, ...routes].join("\n");
}

/** The SID that carries a family to the attachment: End.DT46 takes both, End.DX6 has its own. */
function sidFor(mode: DataplaneMode, i: AttachmentIds, family: 4 | 6): string {
  return (mode === "policy-routing" && family === 6 ? i.sid6 : i.sid) ?? "";
}

const modes: { mode: DataplaneMode; decap: string }[] = [
  { mode: "policy-routing", decap: "End.DX4 and End.DX6" },
  { mode: "vrf", decap: "End.DT46" },
];

for (const { mode, decap } of modes) {
  // The plugin's data plane, plus kvrfd's seg6 encapsulation played by the test.
  const needs = [...new Set([...cniNeeds(mode, "srv6"), ...kvrfdNeeds("srv6")])];
  describeNeeds(needs, `attachment data plane (${mode} mode)`, () => {
    let nodeA: Netns, nodeB: Netns, a1: Netns, a2: Netns, a3: Netns, b1: Netns;
    const made: Netns[] = [];
    const netns = async (label: string): Promise<Netns> => {
      const n = await createNetns(label);
      made.push(n);
      return n;
    };
    const sA1 = (): AttachmentSpec => spec(mode, nodeA, a1, vpcA, 1, "10.1.0.1", "fd10::1", "fd00:0:a::/48");
    const sA2 = (): AttachmentSpec => spec(mode, nodeA, a2, vpcA, 2, "10.1.0.2", "fd10::2", "fd00:0:a::/48");
    const sB1 = (): AttachmentSpec => spec(mode, nodeA, b1, vpcB, 1, "10.1.0.2", "fd10::2", "fd00:0:a::/48"); // overlaps a2
    const sA3 = (): AttachmentSpec => spec(mode, nodeB, a3, vpcA, 3, "10.1.0.3", "fd10::3", "fd00:0:b::/48");

    beforeAll(async () => {
      [nodeA, nodeB, a1, a2, a3, b1] = (await Promise.all(["nodeA", "nodeB", "a1", "a2", "a3", "b1"].map((n) => netns(n)))) as [Netns, Netns, Netns, Netns, Netns, Netns];
      // From inside nodeA: Linux 6.1 looks a new link's name up in the caller's namespace.
      await nodeA.ip("link", "add", "fab0", "type", "veth", "peer", "name", "fab0", "netns", nodeB.name);
      for (const [n, addr, peerLoc, peer] of [
        [nodeA, "fd00:ff::a/64", "fd00:0:b::/48", "fd00:ff::b"],
        [nodeB, "fd00:ff::b/64", "fd00:0:a::/48", "fd00:ff::a"],
      ] as const) {
        // What the node's operator sets (docs/deploy.md); net.vrf.strict_mode is kvrf's own and
        // stays at the kernel's default here (see vrf-mode.test.ts).
        await n.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.seg6_enabled=1", "net.ipv6.conf.fab0.seg6_enabled=1");
        await n.ip("link", "set", "fab0", "up");
        await n.ip("-6", "addr", "add", addr, "dev", "fab0", "nodad");
        await n.ip("-6", "route", "add", peerLoc, "via", peer);
      }
      await attachOk(sA1());
      await attachOk(sA2());
      await attachOk(sB1());
      await attachOk(sA3());
    });

    afterAll(async () => {
      for (const n of made) await n.delete().catch(() => undefined);
    });

    it("connects pods of one VPC on one node, IPv4 and IPv6", async () => {
      expect(await a1.exec("ping", "-c", "1", "-W", "2", "10.1.0.2")).toMatch(/1 received/);
      expect(await a1.exec("ping", "-6", "-c", "1", "-W", "2", "fd10::2")).toMatch(/1 received/);
    });

    it("keeps VPCs apart even with overlapping addresses", async () => {
      // b1 (VPC bb) has a2's address; from b1 nothing of VPC aa is reachable.
      await expect(b1.exec("ping", "-c", "1", "-W", "1", "10.1.0.1")).rejects.toThrow(/Unreachable|0 received|100% packet loss/);
      await expect(b1.exec("ping", "-6", "-c", "1", "-W", "1", "fd10::1")).rejects.toThrow(/Unreachable|0 received|100% packet loss/);
      // a1 reaches 10.1.0.2 in its own VPC (a2), never b1: b1 sees no echo requests.
      const before = await b1.exec("nstat", "-az", "IcmpInEchos");
      expect(await a1.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.1.0.2")).toMatch(/2 received/);
      expect(await b1.exec("nstat", "-az", "IcmpInEchos")).toBe(before);
    });

    it(`decapsulates the attachment SIDs to the pod (${decap}) across nodes`, async () => {
      const routesA = await nodeA.ip("-6", "route", "show", "proto", "240");
      const a1ids = ids(sA1());
      if (mode === "vrf") {
        expect(routesA).toMatch(new RegExp(`^${a1ids.sid} +encap seg6local action End.DT46 vrftable 170 dev ${vrfDeviceName(vpcA)} `, "m"));
        expect(routesA).not.toMatch(/End\.DX/);
      } else {
        expect(routesA).toMatch(new RegExp(`^${a1ids.sid} +encap seg6local action End.DX4 nh4 169\\.254\\.\\d+\\.\\d+ dev ${a1ids.hostIf} `, "m"));
        expect(routesA).toMatch(new RegExp(`^${a1ids.sid6} +encap seg6local action End.DX6 nh6 fd6b:7672:6600::aa:1 dev ${a1ids.hostIf} `, "m"));
      }
      // Play kvrfd: remote prefixes of VPC aa into each node's table 170 with seg6 encap.
      // The outer packet is routed with the pod's interface (or its VRF) as iif, so the VPC's
      // table sees that lookup too: a `throw` route for each remote SID of the VPC sends it on
      // to the main table, while everything else a pod sends outside the VPC still hits the
      // unreachable default.
      const remote = async (node: Netns, prefix: string, sid: string): Promise<void> => {
        await node.ip("route", "add", prefix, "encap", "seg6", "mode", "encap", "segs", sid, "dev", "fab0", "table", "170", "proto", "241");
        await node.ip("-6", "route", "replace", "throw", `${sid}/128`, "table", "170", "proto", "241");
      };
      await remote(nodeA, "10.1.0.3/32", sidFor(mode, ids(sA3()), 4));
      await remote(nodeA, "fd10::3/128", sidFor(mode, ids(sA3()), 6));
      await remote(nodeB, "10.1.0.1/32", sidFor(mode, a1ids, 4));
      await remote(nodeB, "fd10::1/128", sidFor(mode, a1ids, 6));
      expect(await a1.exec("ping", "-c", "1", "-W", "2", "10.1.0.3")).toMatch(/1 received/);
      expect(await a1.exec("ping", "-6", "-c", "1", "-W", "2", "fd10::3")).toMatch(/1 received/);
      // A pod cannot use that exemption to reach SIDs outside its VPC (here VPC bb's on node B).
      await expect(a1.exec("ping", "-6", "-c", "1", "-W", "1", "fd00:0:b::bb:1")).rejects.toThrow(/Unreachable|100% packet loss/);
      await expect(a1.exec("ping", "-6", "-c", "1", "-W", "1", "fd00:ff::b")).rejects.toThrow(/Unreachable|100% packet loss/);
      await nodeA.ip("route", "flush", "table", "170", "proto", "241");
      await nodeA.ip("-6", "route", "flush", "table", "170", "proto", "241");
    });

    it("refuses a second attachment with the same IDs and an existing pod interface, leaving nothing", async () => {
      const spare = await netns("spare");
      const dup = { ...sA1(), netns: spare.path };
      await expect(attach(dup, new UndoStack())).rejects.toThrow(/already in use on this node \(interface kv/);
      const clash = spec(mode, nodeA, a1, vpcA, 9, "10.1.0.9", "fd10::9", "fd00:0:a::/48");
      const undo = new UndoStack();
      await expect(attach(clash, undo)).rejects.toThrow(/interface eth0 already exists/);
      expect(await undo.unwind()).toEqual([]);
      expect(await nodeA.ip("-o", "link", "show")).not.toContain(ids(clash).hostIf);
    });

    it("rolls back every step when a late step fails", async () => {
      const pod = await netns("late");
      const s = spec(mode, nodeA, pod, vpcA, 7, "10.1.0.7", "fd10::7", "fd00:0:a::/48");
      // Occupy the attachment's SID so its decapsulation step fails (the last of prepare in VRF
      // mode, of configure in policy-routing mode).
      await nodeA.ip("-6", "route", "add", `${ids(s).sid}/128`, "dev", "lo");
      const undo = new UndoStack();
      await expect(attach(s, undo)).rejects.toThrow(/File exists/);
      const failures = await undo.unwind();
      expect(failures).toEqual([]);
      await nodeA.ip("-6", "route", "del", `${ids(s).sid}/128`, "dev", "lo");
      const left = await kvrfState(nodeA);
      expect(left).not.toContain(ids(s).hostIf);
      expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
    });

    it("counts an attachment as the VPC's from prepare on, before its addresses, and undoes both stages", async () => {
      const pod = await netns("staged");
      const s = spec(mode, nodeA, pod, 0xccn, 1, "10.3.0.1", "fd30::1", "fd00:0:a::/48");
      s.table = 204;
      const undo = new UndoStack();
      const ready = await prepare(s, undo);
      // What ADD does while IPAM runs: the veth exists in both namespaces, up on the host with its
      // alias, and the VPC's IPv6 rule or VRF names it, so a DEL of the VPC's last other
      // attachment keeps the VPC (and the node's route-target hold).
      expect(await nodeA.ip("-o", "link", "show", "dev", ready.hostIf)).toContain(`alias kvrf:test:c1:eth0`);
      expect(await pod.ip("-o", "link", "show", "dev", "eth0")).toContain(ready.podMac);
      if (mode === "vrf") expect(await nodeA.ip("-o", "link", "show", "master", vrfDeviceName(0xccn))).toContain(ready.hostIf);
      else expect(await nodeA.ip("-6", "rule", "show", "table", "204")).toContain(`iif ${ready.hostIf}`);
      expect(await releaseVpcIfUnused(mode, 0xccn, 204, nodeA.name)).toBe(false);
      // Addresses arrive: pod and host side go in together.
      const got = await configure(ready, s.ips, s.routes);
      expect(got.podAddresses).toEqual(["10.3.0.1/32", "fd30::1/128"]);
      if (mode === "policy-routing") expect(await nodeA.ip("-4", "rule", "show", "table", "204")).toContain(`iif ${ready.hostIf}`);
      expect(await pod.ip("-4", "route", "show")).toContain("default via 169.254.1.1 dev eth0");
      expect(await nodeA.ip("route", "show", "table", "204")).toContain(`10.3.0.1 dev ${ready.hostIf}`);
      expect(await undo.unwind()).toEqual([]);
      expect(await releaseVpcIfUnused(mode, 0xccn, 204, nodeA.name)).toBe(true);
      expect(await nodeA.ip("-o", "link", "show")).not.toContain(ready.hostIf);
      expect(await nodeA.ip("-o", "link", "show")).not.toContain(vrfDeviceName(0xccn));
      expect(await nodeA.ip("-6", "rule", "show", "table", "204")).toBe("");
      expect(await nodeA.ip("-4", "rule", "show", "table", "204")).toBe("");
      expect(await nodeA.ip("-6", "route", "show", "table", "all", "proto", "240")).not.toContain(ready.sid);
    });

    it("detaches idempotently and releases the VPC with its last attachment", async () => {
      for (const s of [sA1(), sA2(), sB1()]) {
        const d = { hostNs: s.hostNs, mode: s.mode, table: s.table, ...ids(s) };
        await detach(d);
        await detach(d); // DEL twice
      }
      expect(await releaseVpcIfUnused(mode, vpcA, 170, nodeA.name)).toBe(true);
      expect(await releaseVpcIfUnused(mode, vpcB, 187, nodeA.name)).toBe(true);
      expect(await kvrfState(nodeA)).toBe("");
      // nodeB still has a3: its VPC stays.
      expect(await releaseVpcIfUnused(mode, vpcA, 170, nodeB.name)).toBe(false);
    });
  });
}
