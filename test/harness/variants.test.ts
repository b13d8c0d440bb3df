// Which fault steps are a variant's own (variants.ts ownSteps, read off cni/dataplane/lines.ts):
// the fault suites' selection for the variants that do not run every case. Pinned here, so a
// change of the kernel lines that moves a step in or out of the vm tier's selection is reviewed.
import { describe, expect, it } from "vitest";
import { fullVariant, ownSteps, variants } from "./variants.js";

describe("the variants' own fault steps", () => {
  it.each([
    // VRF mode: the prepare batch (VRF device up, veth enslaved, End.DT46 with SRv6) and the VPC's
    // VRF device; the pod side, the host side and detach's veth batch are policy routing's lines.
    ["vrf/srv6", ["prepare", "vpcDevice", "vpcRelease"]],
    ["vrf/vxlan", ["prepare", "vpcDevice", "vpcRelease"]],
    // SRv6 policy routing: End.DX4/End.DX6 on the host side; no device of the VPC's own.
    ["policy-routing/srv6", ["configureHost"]],
    ["policy-routing/vxlan", []],
  ])("%s: %j", (name, steps) => {
    const v = variants.find((x) => x.name === name);
    expect(v, name).toBeDefined();
    if (v !== undefined) expect([...ownSteps(v)].sort()).toEqual([...steps].sort());
  });

  it("the all-cases variant is policy routing with VXLAN (the host kernel runs it)", () => {
    expect(fullVariant.name).toBe("policy-routing/vxlan");
  });
});
