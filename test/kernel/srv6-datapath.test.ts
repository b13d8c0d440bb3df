// Proves, in throwaway namespaces, the kernel features kvrf's policy-routing mode is built on:
// veth links, a per-VPC table selected by `ip rule`, seg6 encapsulation into a remote SID and
// seg6local End.DX4 decapsulation into a pod. Traffic really flows: a ping crosses the SRv6 path.
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeNeeds } from "../harness/needs.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";

describeNeeds(["veth", "policy-routing", "seg6", "seg6local-dx4"], "SRv6 L3VPN data path in policy-routing mode", () => {
  // podA ── nodeA ══ IPv6 underlay ══ nodeB ── podB ; both pods in VPC table 100.
  let podA: Netns, nodeA: Netns, nodeB: Netns, podB: Netns;

  beforeAll(async () => {
    [podA, nodeA, nodeB, podB] = await Promise.all([
      createNetns("podA"),
      createNetns("nodeA"),
      createNetns("nodeB"),
      createNetns("podB"),
    ]);
    const link = async (a: Netns, aIf: string, b: Netns, bIf: string): Promise<void> => {
      // Created from inside `a`: before Linux 6.x (Debian's 6.1) `ip link add NAME netns X`
      // looks NAME up in the caller's namespace, so "eth0" clashes with the caller's own eth0.
      await a.ip("link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.name);
      await a.ip("link", "set", aIf, "up");
      await b.ip("link", "set", bIf, "up");
    };
    await link(podA, "eth0", nodeA, "vpcA1");
    await link(nodeA, "fab0", nodeB, "fab0");
    await link(podB, "eth0", nodeB, "vpcB1");

    for (const [pod, addr, gw] of [[podA, "10.1.0.2/32", "10.1.0.1"], [podB, "10.1.1.2/32", "10.1.1.1"]] as const) {
      await pod.ip("addr", "add", addr, "dev", "eth0");
      await pod.ip("route", "add", `${gw}/32`, "dev", "eth0", "scope", "link");
      await pod.ip("route", "add", "default", "via", gw, "dev", "eth0");
    }
    // Underlay: fd00:0:a::/48 is nodeA's locator, fd00:0:b::/48 nodeB's.
    await nodeA.ip("-6", "addr", "add", "fd00:ff::a/64", "dev", "fab0", "nodad");
    await nodeB.ip("-6", "addr", "add", "fd00:ff::b/64", "dev", "fab0", "nodad");
    await nodeA.ip("-6", "route", "add", "fd00:0:b::/48", "via", "fd00:ff::b");
    await nodeB.ip("-6", "route", "add", "fd00:0:a::/48", "via", "fd00:ff::a");

    for (const [node, ifName, gw, podIp, localSid, remoteSid, remotePrefix] of [
      [nodeA, "vpcA1", "10.1.0.1", "10.1.0.2", "fd00:0:a:0:0:abc:0:1", "fd00:0:b:0:0:abc:0:1", "10.1.1.2/32"],
      [nodeB, "vpcB1", "10.1.1.1", "10.1.1.2", "fd00:0:b:0:0:abc:0:1", "fd00:0:a:0:0:abc:0:1", "10.1.0.2/32"],
    ] as const) {
      // Packets with a segment routing header are dropped unless seg6 is enabled on the ingress link.
      await node.exec("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
        "net.ipv6.conf.all.seg6_enabled=1", "net.ipv6.conf.fab0.seg6_enabled=1");
      await node.ip("addr", "add", `${gw}/32`, "dev", ifName);
      // The VPC's table: the local pod, and the remote pod behind the remote attachment SID.
      await node.ip("route", "add", `${podIp}/32`, "dev", ifName, "table", "100");
      await node.ip("route", "add", remotePrefix, "encap", "seg6", "mode", "encap", "segs", remoteSid, "dev", "fab0", "table", "100");
      await node.ip("rule", "add", "iif", ifName, "lookup", "100", "pref", "1000");
      // Decapsulate the local attachment SID straight to the pod (End.DX4). End.DX4 resolves nh4
      // with a route lookup from the underlay interface, so the pod's own IP (which may overlap
      // with another VPC's pod) cannot be the next hop: each attachment gets a node-unique next
      // hop routed to its veth, with a permanent neighbour entry for the pod's MAC.
      const podMac = (JSON.parse(await (node === nodeA ? podA : podB).ip("-j", "link", "show", "eth0")) as { address: string }[])[0]?.address ?? "";
      const nh = node === nodeA ? "169.254.0.9" : "169.254.0.7";
      await node.ip("route", "add", `${nh}/32`, "dev", ifName);
      await node.ip("neigh", "replace", nh, "lladdr", podMac, "dev", ifName, "nud", "permanent");
      await node.ip("-6", "route", "add", `${localSid}/128`, "encap", "seg6local", "action", "End.DX4", "nh4", nh, "dev", ifName);
    }
  });

  afterAll(cleanupNetns);

  it("carries pod traffic across nodes inside SRv6", async () => {
    const out = await podA.exec("ping", "-c", "2", "-W", "2", "-i", "0.2", "10.1.1.2");
    expect(out).toMatch(/2 received/);
    const routes = await nodeA.ip("route", "show", "table", "100");
    expect(routes).toMatch(/10\.1\.1\.2 +encap seg6 mode encap segs 1 \[ fd00:0:b::abc:0:1 \]/);
  });

  it("does not route the VPC's traffic from outside its attachments", async () => {
    // The main table of nodeA has no route to the remote pod: only the VPC's rule reaches table 100.
    const main = await nodeA.ip("route", "get", "10.1.1.2").catch((e: unknown) => String(e));
    expect(main).toMatch(/unreachable|Network is unreachable/);
  });
});
