// The namespace lab and the containerlab files describe one topology: keep them in step.
import { readFileSync } from "node:fs";
import path from "node:path";
import { load, loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { conflist, labNodes, workers } from "./topology.js";
import { repoRoot } from "../../test/harness/tools.js";

type Plugin = { vpc: string; srv6Locator: string; nodeName: string; asn: number; ipam: { ranges: unknown } };

describe("lab topology = containerlab topology", () => {
  it.each(workers.flatMap((w) => ["a1", "b1"].map((v) => [w.name, v] as const)))("%s conflist for VPC %s", (node, vpc) => {
    const file = JSON.parse(readFileSync(path.join(repoRoot, "containerlab/cni", node, `vpc-${vpc}.conflist`), "utf8")) as { name: string; plugins: Plugin[] };
    const ours = conflist(labNodes.find((n) => n.name === node) ?? labNodes[0]!, vpc, "/k", "/s", "/l") as { name: string; plugins: Plugin[] };
    const pick = (p: Plugin | undefined) => ({ vpc: p?.vpc, srv6Locator: p?.srv6Locator, nodeName: p?.nodeName, asn: p?.asn, ranges: p?.ipam.ranges });
    expect(ours.name).toBe(file.name);
    expect(pick(ours.plugins[0])).toEqual(pick(file.plugins[0]));
  });

  it("has the same nodes, underlay addresses and BGP peers", () => {
    const clab = load(readFileSync(path.join(repoRoot, "containerlab/kvrf.clab.yml"), "utf8")) as { topology: { nodes: Record<string, { exec?: string[] }> } };
    for (const n of labNodes) expect(clab.topology.nodes[n.name]?.exec).toContain(`ip -6 addr add ${n.address}/64 dev fab0 nodad`);
    const nodes = loadAll(readFileSync(path.join(repoRoot, "containerlab/manifests/nodes.yaml"), "utf8")) as { metadata: { name: string }; status: { addresses: { address: string }[] } }[];
    expect(nodes.map((n) => [n.metadata.name, n.status.addresses[0]?.address])).toEqual(labNodes.map((n) => [n.name, n.address]));
    const instances = loadAll(readFileSync(path.join(repoRoot, "containerlab/manifests/bgpinstances.yaml"), "utf8")) as { spec: { peers: { address: string }[] } }[];
    const rrPeers = instances.find((i) => i.spec.peers.length > 1)?.spec.peers.map((p) => p.address);
    expect(rrPeers).toEqual(workers.map((w) => w.address));
  });
});
