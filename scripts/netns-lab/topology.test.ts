// The namespace lab and the containerlab files describe one topology, in both of its settings
// (SRv6 over IPv6, VXLAN over IPv4): keep them in step.
import { readFileSync } from "node:fs";
import path from "node:path";
import { load, loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { bgpInstances, conflist, labNodes, nodeAnnotations, srv6Lab, underlayAddress, workers, type LabSettings } from "./topology.js";
import { repoRoot } from "../../test/harness/tools.js";

type Plugin = { vpc: string; encapsulation: string; srv6Locator?: string; vtep?: string; nodeName: string; asn: number; ipam: { ranges: unknown } };

const vxlan4: LabSettings = { encap: "vxlan", underlay: 4 };
const settings: [string, LabSettings, string, string, string][] = [
  ["SRv6 over IPv6", srv6Lab, "containerlab/cni", "bgpinstances.yaml", "nodes.yaml"],
  ["VXLAN over IPv4", vxlan4, "containerlab/cni-vxlan", "bgpinstances-vxlan.yaml", "nodes-ipv4.yaml"],
];

describe.each(settings)("lab topology = containerlab topology (%s)", (_name, s, cniDir, instancesFile, nodesFile) => {
  it.each(workers.flatMap((w) => ["a1", "b1"].map((v) => [w.name, v] as const)))("%s conflist for VPC %s", (node, vpc) => {
    const file = JSON.parse(readFileSync(path.join(repoRoot, cniDir, node, `vpc-${vpc}.conflist`), "utf8")) as { name: string; plugins: Plugin[] };
    const ours = conflist(labNodes.find((n) => n.name === node) ?? labNodes[0]!, vpc, "/k", "/s", "/l", s) as { name: string; plugins: Plugin[] };
    const pick = (p: Plugin | undefined) => ({
      vpc: p?.vpc,
      encapsulation: p?.encapsulation,
      srv6Locator: p?.srv6Locator,
      vtep: p?.vtep,
      nodeName: p?.nodeName,
      asn: p?.asn,
      ranges: p?.ipam.ranges,
    });
    expect(ours.name).toBe(file.name);
    expect(pick(ours.plugins[0])).toEqual(pick(file.plugins[0]));
  });

  it("has the same nodes, underlay addresses and BGP instances", () => {
    const clab = load(readFileSync(path.join(repoRoot, "containerlab/kvrf.clab.yml"), "utf8")) as { topology: { nodes: Record<string, { exec?: string[] }> } };
    for (const n of labNodes) {
      expect(clab.topology.nodes[n.name]?.exec).toContain(`ip -6 addr add ${n.address}/64 dev fab0 nodad`);
      expect(clab.topology.nodes[n.name]?.exec).toContain(`ip addr add ${n.address4}/24 dev fab0`);
    }
    const nodes = loadAll(readFileSync(path.join(repoRoot, "containerlab/manifests", nodesFile), "utf8")) as {
      metadata: { name: string; annotations?: Record<string, string> };
      status: { addresses: { address: string }[] };
    }[];
    expect(nodes.map((n) => [n.metadata.name, n.status.addresses[0]?.address, n.metadata.annotations ?? {}])).toEqual(
      labNodes.map((n) => [n.name, underlayAddress(n, s), nodeAnnotations(n, s)]),
    );
    const instances = loadAll(readFileSync(path.join(repoRoot, "containerlab/manifests", instancesFile), "utf8"));
    expect(instances).toEqual(bgpInstances(s));
  });
});
