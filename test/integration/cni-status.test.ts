// CNI STATUS tells the truth about the kernel it runs on: for each data plane (kernel mode ×
// encapsulation) it names exactly the capabilities this kernel lacks, each with its kernel option,
// also when the API server cannot be reached — and ADD refuses the same way (code 104) before it
// changes anything. The expectations come from probing this kernel, so the suite runs on every
// kernel and means something on each: here (no VRF, no SRv6) it sees the SRv6 reasons, on a
// distribution kernel (the vm tier) it sees none.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CniNode, runPlugin } from "../harness/cni.js";
import { cleanupNetns, createNetns, type Netns } from "../harness/netns.js";
import { localCapabilities } from "../harness/needs.js";
import { testEnvDir } from "../harness/tools.js";
import { capabilityInfo, cniNeeds, type Encapsulation, type KernelMode } from "../../shared/kernel/capabilities.js";

describe("CNI STATUS and ADD on this kernel", () => {
  const dir = path.join(testEnvDir, "run", `cni-status-${process.pid}`);
  let node: Netns;
  let cni: CniNode;
  let deadKubeconfig: string;

  beforeAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    node = await createNetns("status");
    await node.ip("addr", "add", "192.0.2.200/32", "dev", "lo");
    cni = new CniNode({ netns: node.name, dir });
    // An API server that is not there: every reason besides the kernel's must still be reported.
    deadKubeconfig = path.join(dir, "dead.kubeconfig");
    writeFileSync(
      deadKubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
  });

  afterAll(async () => {
    await cleanupNetns();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (mode: KernelMode | "auto", encap: Encapsulation | undefined): Record<string, unknown> => ({
    cniVersion: "1.1.0",
    name: "status",
    type: "kvrf",
    vpc: "5a",
    kubeconfig: deadKubeconfig,
    nodeName: "status-node",
    asn: 65000,
    dataplaneMode: mode,
    stateDir: path.join(dir, `state-${mode}`),
    ...(encap === "vxlan" ? { encapsulation: "vxlan", vtep: "192.0.2.200" } : { srv6Locator: "fd00:0:5a::/48" }),
    ...(encap === "srv6" ? { encapsulation: "srv6" } : {}),
    ipam: cni.hostLocal([[{ subnet: "10.90.0.0/24" }]], "status"),
  });

  const cases: [KernelMode | "auto", Encapsulation | undefined][] = [
    ["auto", undefined], // the default config: SRv6, the mode the kernel picks
    ["policy-routing", "srv6"],
    ["vrf", "srv6"],
    ["policy-routing", "vxlan"],
    ["vrf", "vxlan"],
  ];

  it.each(cases)("STATUS (%s mode, %s) names every capability this kernel lacks, and the unreachable API server", async (mode, encap) => {
    const have = localCapabilities();
    const effective: KernelMode = mode === "auto" ? (have.has("vrf") ? "vrf" : "policy-routing") : mode;
    const missing = cniNeeds(effective, encap ?? "srv6").filter((c) => !have.has(c));
    const r = await runPlugin(cni, node.name, "STATUS", config(mode, encap));
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 50 });
    const msg = String(r.json?.["msg"]);
    expect(msg).toMatch(/^not ready: /);
    // The API server is down: said, whatever the kernel.
    expect(msg).toMatch(/ECONNREFUSED|reading the speaker config/);
    for (const c of missing) expect(msg).toContain(`${capabilityInfo[c].feature} (${capabilityInfo[c].option})`);
    if (missing.length === 0) expect(msg).not.toContain("kernel:");
    // Never iproute2's own words.
    expect(msg).not.toMatch(/lwt encapsulation type not supported|Unknown device type/);
  });

  it.each(cases.filter(([m]) => m !== "auto"))("ADD (%s mode, %s) stops at the kernel check exactly when this kernel lacks a capability, and leaves nothing", async (mode, encap) => {
    const have = localCapabilities();
    const missing = cniNeeds(mode as KernelMode, encap ?? "srv6").filter((c) => !have.has(c));
    const pod = await createNetns("status-pod");
    const r = await runPlugin(cni, node.name, "ADD", config(mode, encap), { containerId: "c1", podNetns: pod.path, ifName: "eth0" });
    if (missing.length > 0) {
      // Code 104 naming each missing capability's option, before anything changed.
      expect(r.json).toMatchObject({ code: 104 });
      for (const c of missing) expect(String(r.json?.["msg"])).toContain(capabilityInfo[c].option);
    } else {
      // Past the kernel check, the claim finds no API server: try again later (11), all undone.
      expect(r.json).toMatchObject({ code: 11 });
    }
    expect(await node.ip("-o", "link", "show")).not.toMatch(/kv[a-z2-7]{13}|kvrf-|kvx-/);
    expect(await node.ip("-6", "rule", "show")).not.toMatch(/lookup 90\b/);
    expect(await node.ip("-4", "rule", "show")).not.toMatch(/lookup 90\b/);
    expect(await pod.ip("-o", "link", "show")).not.toContain("eth0");
  });
});
