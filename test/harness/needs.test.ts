// Placement of suites by kernel capabilities (needs.ts): pure, so every case is a table row.
import { describe, expect, it } from "vitest";
import type { Capability } from "../../shared/kernel/capabilities.js";
import { place, parseCaps, type Where } from "./needs.js";

const today = new Set<Capability>(["veth", "policy-routing", "vxlan", "ipv4-via-ipv6"]); // FACTS §7
const debian = new Set<Capability>([...today, "vrf", "seg6", "seg6local-dx4", "seg6local-dx6", "seg6local-dt46"]);

describe("where a suite runs", () => {
  // [case, needs, where this is, host kernel, this kernel (in the vm), placement]
  it.each<[string, Capability[], Where, Set<Capability>, Set<Capability>, string]>([
    ["host runs what its kernel has", ["veth", "vxlan"], "host", today, today, "here"],
    ["host defers what its kernel lacks", ["veth", "vrf"], "host", today, today, "vm"],
    ["the vm leaves out what the host runs", ["veth", "vxlan"], "vm", today, debian, "host"],
    ["the vm runs what only it has", ["vrf", "seg6local-dt46"], "vm", today, debian, "here"],
    ["nowhere when neither has it", ["vrf"], "vm", today, today, "nowhere"],
    ["a host with everything runs everything", ["vrf", "seg6"], "host", debian, debian, "here"],
  ])("%s", (_, needs, at, host, local, kind) => {
    expect(place(needs, at, host, () => local).kind).toBe(kind);
  });

  it("says which capability is missing, with its kernel option", () => {
    expect(place(["veth", "vrf"], "host", today, () => debian).why).toBe("the host kernel lacks VRF devices (CONFIG_NET_VRF)");
  });

  it("does not probe the local kernel on the host", () => {
    const probe = (): Set<Capability> => {
      throw new Error("probed");
    };
    expect(place(["vrf"], "host", today, probe).kind).toBe("vm");
  });

  it("reads a capability list, ignoring unknown names", () => {
    expect([...parseCaps("veth, vrf,,frobnicate")]).toEqual(["veth", "vrf"]);
  });
});
