// VRF mode on a kernel with VRF devices (the vm tier on today's machines): exactly the kernel state
// one attachment makes and removes, read back from the kernel, and VRF strict mode, which kvrf must
// set itself on a fresh node before its first End.DT46 route (the kernel's default is 0, and then
// refuses End.DT46: "Strict mode for VRF is disabled").
import { afterEach, beforeEach, expect, it } from "vitest";
import { attach, attachmentIds, detach, ensureVpc, releaseVpcIfUnused, type AttachmentSpec } from "../../cni/dataplane/attachment.js";
import { UndoStack } from "../../cni/dataplane/undo.js";
import { cniNeeds } from "../../shared/kernel/capabilities.js";
import { vrfDeviceName } from "../../shared/ifnames.js";
import { parseLocator } from "../../shared/srv6-sid.js";
import { describeNeeds } from "../harness/needs.js";
import { createNetns, type Netns } from "../harness/netns.js";

const locator = parseLocator("fd00:0:a::/48");

function vrfSpec(node: Netns, pod: Netns): AttachmentSpec {
  return {
    hostNs: node.name,
    mode: "vrf",
    vpc: 0xabn,
    attachment: 1,
    seed: "c/eth0",
    table: 0xab,
    locator,
    podIf: "eth0",
    netns: pod.path,
    mtu: 1436,
    ips: [
      { address: "10.1.0.2/24", family: 4 },
      { address: "fd10::2/64", family: 6 },
    ],
    routes: [],
    terminations: [{ network: "192.168.0.0/16", via: "10.1.0.2" }],
    alias: "kvrf:n:c:eth0",
  };
}

describeNeeds(cniNeeds("vrf", "srv6"), "VRF mode on a real kernel", () => {
  let node: Netns, pod: Netns;
  const vrf = vrfDeviceName(0xabn);

  // A fresh node per test: net.vrf.strict_mode is per network namespace and starts at 0.
  beforeEach(async () => {
    node = await createNetns("vrfnode");
    pod = await createNetns("vrfpod");
  });

  afterEach(async () => {
    await pod.delete();
    await node.delete();
  });

  it("sets net.vrf.strict_mode=1 in the node's namespace itself, so End.DT46 works on a fresh node", async () => {
    expect((await node.exec("sysctl", "-n", "net.vrf.strict_mode")).trim()).toBe("0");
    const s = vrfSpec(node, pod);
    await ensureVpc("vrf", s.vpc, s.table, node.name);
    const undo = new UndoStack();
    const got = await attach(s, undo);
    undo.commit();
    expect((await node.exec("sysctl", "-n", "net.vrf.strict_mode")).trim()).toBe("1");
    expect(await node.ip("-6", "route", "show", "proto", "240")).toMatch(new RegExp(`^${got.sid} +encap seg6local action End.DT46 vrftable 171 dev ${vrf} `, "m"));
  });

  it("enslaves the veth to the VPC's VRF and decapsulates with End.DT46, without ip rules; DEL removes all of it", async () => {
    const s = vrfSpec(node, pod);
    await ensureVpc("vrf", s.vpc, s.table, node.name);
    const undo = new UndoStack();
    const got = await attach(s, undo);
    undo.commit();
    expect(got).toMatchObject({ attachment: 1, sid: "fd00:0:a::ab:1", podAddresses: ["10.1.0.2/32", "fd10::2/128"] });

    // The VRF device, bound to table 171 and up.
    const dev = (JSON.parse(await node.ip("-d", "-j", "link", "show", "dev", vrf)) as { flags: string[]; linkinfo?: { info_kind?: string; info_data?: { table?: number } } }[])[0];
    expect(dev?.linkinfo).toMatchObject({ info_kind: "vrf", info_data: { table: 171 } });
    expect(dev?.flags).toContain("UP");
    // Routes are read filtered by kvrf's protocol (240), which iproute2 then leaves out of each
    // line: a name for 240 in /etc/iproute2/rt_protos.d (FRR's says "static") cannot hide them.
    const own = (fam: string): Promise<string> => node.ip(fam, "route", "show", "table", "171", "proto", "240");
    // The table's unreachable defaults, so nothing falls through to main.
    expect(await own("-4")).toMatch(/^unreachable default metric 4278198272/m);
    expect(await own("-6")).toMatch(/^unreachable default dev lo metric 4278198272/m);
    // The host end: its MAC, MTU, alias and VRF membership; the pod end in the pod with its MAC.
    const host = (JSON.parse(await node.ip("-d", "-j", "link", "show", "dev", got.hostIf)) as { address: string; mtu: number; ifalias?: string; master?: string }[])[0];
    expect(host).toMatchObject({ address: got.hostMac, mtu: 1436, ifalias: "kvrf:n:c:eth0", master: vrf });
    expect(await pod.ip("-o", "link", "show", "dev", "eth0")).toContain(got.podMac);
    // Routes in the VRF's table: the pod and its termination.
    const t4 = await own("-4");
    expect(t4).toMatch(new RegExp(`^10\\.1\\.0\\.2 dev ${got.hostIf} scope link`, "m"));
    expect(t4).toMatch(new RegExp(`^192\\.168\\.0\\.0/16 via 10\\.1\\.0\\.2 dev ${got.hostIf} onlink`, "m"));
    expect(await own("-6")).toMatch(new RegExp(`^fd10::2 dev ${got.hostIf} `, "m"));
    // One SID, End.DT46 into the VRF; no End.DX, no ip rules.
    const sids = await node.ip("-6", "route", "show", "proto", "240");
    expect(sids).toMatch(new RegExp(`^fd00:0:a::ab:1 +encap seg6local action End.DT46 vrftable 171 dev ${vrf} `, "m"));
    expect(sids).not.toMatch(/End\.DX/);
    expect(await node.ip("-4", "rule", "show", "table", "171")).toBe("");
    expect(await node.ip("-6", "rule", "show", "table", "171")).toBe("");

    await detach({ hostNs: node.name, mode: "vrf", table: 0xab, ...attachmentIds(locator, 0xabn, 1) });
    expect(await releaseVpcIfUnused("vrf", 0xabn, 0xab, node.name)).toBe(true);
    expect(await node.ip("-6", "route", "show", "table", "all", "proto", "240")).toBe("");
    expect(await node.ip("-4", "route", "show", "table", "all", "proto", "240")).toBe("");
    expect(await node.ip("-o", "link", "show")).not.toMatch(new RegExp(`${got.hostIf}|${vrf}`));
    expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
  });
});
