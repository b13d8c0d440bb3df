import { describe, expect, it } from "vitest";
import { cniNeeds, defaultMode, describeMissing, kvrfdNeeds, missingCapabilities, parseProbe, probeScript } from "./capabilities.js";

// What the probe printed on a 6.18 kernel without VRF devices and SRv6 (this project's CI machines).
const noVrfNoSrv6 = [
  "ok veth",
  "ok policy-routing",
  "no vrf Error: Unknown device type.",
  "no seg6 Error: lwt encapsulation type not supported.",
  "no seg6local-dx4 Error: lwt encapsulation type not supported.",
  "no seg6local-dx6 Error: lwt encapsulation type not supported.",
  'no seg6local-dt46 Cannot find device "kvpv"',
  "ok vxlan",
  "ok ipv4-via-ipv6",
].join("\n");

describe("capability probe", () => {
  it("reads each verdict line and keeps the kernel's words as detail", () => {
    const r = parseProbe(noVrfNoSrv6);
    expect(r.veth).toEqual({ ok: true, detail: "works" });
    expect(r.vrf).toEqual({ ok: false, detail: "Error: Unknown device type." });
    expect(r["seg6local-dx4"].ok).toBe(false);
    expect(r.vxlan.ok).toBe(true);
  });

  it("counts a capability the script never reported as missing", () => {
    const r = parseProbe("ok veth\nsome noise\n");
    expect(r.veth.ok).toBe(true);
    expect(r.seg6).toEqual({ ok: false, detail: "not probed" });
  });

  it("treats an in-place End.DT46 probe it could not try as unverified, not missing", () => {
    expect(parseProbe("unverified seg6local-dt46 net.vrf.strict_mode is not 1 yet")["seg6local-dt46"]).toEqual({
      ok: true,
      detail: "net.vrf.strict_mode is not 1 yet",
    });
  });

  it("in place, removes what it made and writes no sysctl; isolated, it enables VRF strict mode first", () => {
    const inPlace = probeScript({ prefix: "kvp1", table: 123, inPlace: true });
    expect(inPlace).toContain("ip link del $d");
    expect(inPlace).toContain("ip -6 route flush table 123");
    expect(inPlace).not.toMatch(/echo 1 >/);
    const isolated = probeScript({ prefix: "kvp", table: 100, inPlace: false });
    expect(isolated.indexOf("strict_mode")).toBeLessThan(isolated.indexOf("End.DT46"));
  });
});

describe("what the data plane needs", () => {
  const report = { results: parseProbe(noVrfNoSrv6) };

  it("follows the kernel mode and the encapsulation", () => {
    expect(cniNeeds("policy-routing", "srv6")).toEqual(["veth", "policy-routing", "seg6local-dx4", "seg6local-dx6"]);
    expect(cniNeeds("policy-routing", "srv6", { v4: true, v6: false })).toEqual(["veth", "policy-routing", "seg6local-dx4"]);
    expect(cniNeeds("vrf", "srv6")).toEqual(["veth", "policy-routing", "vrf", "seg6local-dt46"]);
    expect(cniNeeds("vrf", "vxlan")).toEqual(["veth", "policy-routing", "vrf", "vxlan"]);
    expect(kvrfdNeeds("srv6")).toEqual(["policy-routing", "seg6"]);
    expect(kvrfdNeeds("vxlan", 4)).toEqual(["policy-routing", "vxlan"]);
    expect(kvrfdNeeds("vxlan", 6)).toEqual(["policy-routing", "vxlan", "ipv4-via-ipv6"]);
  });

  it("picks policy routing on a kernel without VRF devices, and says why", () => {
    expect(defaultMode(report)).toEqual({ mode: "policy-routing", reason: "no VRF devices (CONFIG_NET_VRF)" });
  });

  it("names each missing feature with its kernel option, never iproute2's text", () => {
    const missing = missingCapabilities(report, cniNeeds("policy-routing", "srv6"));
    expect(missing).toEqual(["seg6local-dx4", "seg6local-dx6"]);
    const text = describeMissing(missing);
    expect(text).toContain("CONFIG_IPV6_SEG6_LWTUNNEL");
    expect(text).toContain("End.DX4");
    expect(text).not.toContain("lwt encapsulation");
    expect(missingCapabilities(report, cniNeeds("policy-routing", "vxlan"))).toEqual([]);
  });
});
