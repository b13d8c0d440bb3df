import { describe, expect, it } from "vitest";
import { attachmentSid, parseLocator } from "../../shared/srv6-sid.js";
import type { AdminAssigned } from "../../shared/route-distinguisher.js";
import { SpeakerError } from "./speaker.js";
import { canonicalMac } from "../../shared/router-mac.js";
import {
  checkAdminAssigned,
  checkGlobal,
  checkLocalPath,
  checkPeer,
  evpnInfoOf,
  parsePrefix,
  readRouterMac,
  sessionState,
  sidFromBytes,
  sidStructure,
  sidToBytes,
  sortRouteTargets,
} from "./convert.js";

function invalidMessage(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(SpeakerError);
    expect((err as SpeakerError).kind).toBe("invalid");
    return (err as SpeakerError).message;
  }
  throw new Error("expected an invalid-input error");
}

describe("parsePrefix", () => {
  it.each([
    ["10.1.0.5/32", { family: "ipv4", address: "10.1.0.5", length: 32 }],
    ["0.0.0.0/0", { family: "ipv4", address: "0.0.0.0", length: 0 }],
    ["fd10::5/128", { family: "ipv6", address: "fd10::5", length: 128 }],
    ["fd10:0:0:1::/64", { family: "ipv6", address: "fd10:0:0:1::", length: 64 }],
  ] as const)("%s", (cidr, want) => {
    expect(parsePrefix(cidr)).toEqual(want);
  });

  it.each([
    ["10.1.0.5/24", /not canonical \(want "10\.1\.0\.0\/24"\)/],
    ["FD10::5/128", /not canonical \(want "fd10::5\/128"\)/],
    ["fd10:0:0:0::5/128", /not canonical/],
    ["10.1.0.5", /not a CIDR/],
    ["10.1.0.0/33", /not a CIDR/],
  ])("refuses %s", (cidr, msg) => {
    expect(invalidMessage(() => parsePrefix(cidr))).toMatch(msg);
  });
});

describe("SIDs", () => {
  it("encode as the 16 bytes of the SID and decode to canonical text", () => {
    const bytes = sidToBytes("fc00:0:2::a:0:1");
    expect(Buffer.from(bytes).toString("hex")).toBe("fc000000000200000000000a00000001");
    expect(sidFromBytes(bytes)).toBe("fc00:0:2::a:0:1");
    expect(sidFromBytes(sidToBytes("FC00:0:2:0:0:A:0:1"))).toBe("fc00:0:2::a:0:1");
    expect(sidFromBytes(new Uint8Array(4))).toBeUndefined();
    expect(invalidMessage(() => sidToBytes("10.0.0.1"))).toMatch(/not an IPv6 address/);
  });

  it("structure matches kvrf's layout: locator part 64 bits, function = vpc | attachment", () => {
    // The attachment's function bits (vpc 48 | attachment 16) sit in the low 64 bits whatever the
    // locator length, which is what the advertised structure says.
    const locator = parseLocator("fd00:0:a::/48");
    const sid = sidToBytes(attachmentSid(locator, 0xabcn, 1));
    expect(Buffer.from(sid.subarray(8)).toString("hex")).toBe("000000000abc" + "0001");
    expect(sidStructure.locatorBlockLength + sidStructure.locatorNodeLength).toBe(64);
    expect(sidStructure.functionLength).toBe(48 + 16);
    expect(sidStructure.locatorBlockLength + sidStructure.locatorNodeLength + sidStructure.functionLength + sidStructure.argumentLength).toBe(128);
    expect(sidStructure.transpositionLength).toBe(0);
  });
});

describe("checkAdminAssigned", () => {
  it.each<AdminAssigned>([
    { type: 0, asn: 65535, assigned: 4294967295 },
    { type: 0, asn: 0, assigned: 0 },
    { type: 1, address: "192.0.2.1", assigned: 65535 },
    { type: 2, asn: 4294967295, assigned: 65535 },
    { type: 2, asn: 65000, assigned: 1 },
  ])("accepts %j", (v) => {
    expect(() => checkAdminAssigned(v, "rd")).not.toThrow();
  });

  it.each<[AdminAssigned, RegExp]>([
    [{ type: 0, asn: 4200000001, assigned: 1 }, /type 0 needs a 2-byte ASN, got 4200000001/],
    [{ type: 0, asn: 65000, assigned: 4294967296 }, /type 0 needs a 32-bit number/],
    [{ type: 0, asn: 65000, assigned: 1.5 }, /type 0 needs a 32-bit number/],
    [{ type: 1, address: "192.0.2", assigned: 1 }, /not a dotted-quad IPv4 address/],
    [{ type: 1, address: "192.0.2.1", assigned: 65536 }, /type 1 needs a 16-bit number/],
    [{ type: 2, asn: 4294967296, assigned: 1 }, /type 2 needs a 4-byte ASN/],
    [{ type: 2, asn: 4200000001, assigned: 65536 }, /type 2 needs a 16-bit number/],
  ])("refuses %j", (v, msg) => {
    expect(invalidMessage(() => checkAdminAssigned(v, "rd"))).toMatch(msg);
  });
});

describe("sortRouteTargets", () => {
  it("orders by layout, administrator and number, numerically, and drops duplicates", () => {
    const rts: AdminAssigned[] = [
      { type: 2, asn: 4200000001, assigned: 7 },
      { type: 0, asn: 65000, assigned: 10 },
      { type: 1, address: "10.0.0.1", assigned: 1 },
      { type: 0, asn: 9, assigned: 100 },
      { type: 0, asn: 65000, assigned: 9 },
      { type: 0, asn: 65000, assigned: 10 },
    ];
    expect(sortRouteTargets(rts)).toEqual([
      { type: 0, asn: 9, assigned: 100 },
      { type: 0, asn: 65000, assigned: 9 },
      { type: 0, asn: 65000, assigned: 10 },
      { type: 1, address: "10.0.0.1", assigned: 1 },
      { type: 2, asn: 4200000001, assigned: 7 },
    ]);
  });
});

describe("input checks", () => {
  it.each([
    [() => checkGlobal({ asn: 0, routerId: "192.0.2.1", listenPort: -1 }), /asn: 0/],
    [() => checkGlobal({ asn: 65000, routerId: "fd00::1", listenPort: -1 }), /routerId: "fd00::1"/],
    [() => checkGlobal({ asn: 65000, routerId: "192.0.2.1", listenPort: 70000 }), /listenPort/],
    [() => checkPeer({ address: "nonsense", asn: 65000, families: [] }), /peer address/],
    [() => checkPeer({ address: "192.0.2.1", asn: 65000, routeReflectorClusterId: "::1", families: [] }), /routeReflectorClusterId/],
    [() => checkPeer({ address: "192.0.2.1", asn: 65000, remotePort: 0, families: [] }), /remotePort/],
    [() => checkPeer({ address: "192.0.2.1", asn: 65000, holdTimeSeconds: -1, families: [] }), /holdTimeSeconds/],
    [() => checkLocalPath({ vrf: "v", prefix: "10.0.0.0/8", nextHop: "x", encap: "srv6", sid: "fc00::1", behavior: 19 }), /nextHop/],
    [() => checkLocalPath({ vrf: "v", prefix: "10.0.0.0/8", nextHop: "fd00::1", encap: "srv6", sid: "fc00::1", behavior: 1 as 19 }), /behavior 1/],
    [() => checkLocalPath({ vrf: "", prefix: "10.0.0.0/8", nextHop: "fd00::1", encap: "srv6", sid: "fc00::1", behavior: 19 }), /vrf name is empty/],
  ])("refuses case %#", (f, msg) => {
    expect(invalidMessage(f)).toMatch(msg);
  });

  it("accepts a full peer and a local path with an IPv6 next hop for an IPv4 prefix", () => {
    expect(() =>
      checkPeer({
        address: "fd00:ff::9",
        asn: 4200000001,
        password: "x",
        routeReflectorClient: true,
        routeReflectorClusterId: "10.255.0.1",
        holdTimeSeconds: 9,
        keepaliveSeconds: 3,
        localAddress: "fd00:ff::1",
        remotePort: 1790,
        families: ["vpnv4", "vpnv6"],
      }),
    ).not.toThrow();
    expect(checkLocalPath({ vrf: "v", prefix: "10.1.0.5/32", nextHop: "fd00:ff::2", encap: "srv6", sid: "fc00::1", behavior: 17 })).toEqual({
      family: "ipv4",
      address: "10.1.0.5",
      length: 32,
    });
  });
});

describe("EVPN (VXLAN) pieces", () => {
  it("MACs: 48 bits with colons only, canonical lower case", () => {
    expect(canonicalMac("02:00:5E:10:00:0A")).toBe("02:00:5e:10:00:0a");
    for (const bad of ["02:00:5e:10:00", "02-00-5e-10-00-0a", "0200.5e10.000a", "02:00:5e:10:00:0a:00:01", "", "02:00:5e:10:00:0g"]) expect(canonicalMac(bad)).toBeUndefined();
    expect(readRouterMac(undefined)).toEqual({ mac: "", problem: "no router MAC extended community" });
    expect(readRouterMac("03:00:00:00:00:01")).toEqual({ mac: "03:00:00:00:00:01", problem: "router MAC 03:00:00:00:00:01 is a multicast address" });
  });

  it("a vxlan local path: VNI 1 to 16777215, a unicast router MAC, any IP next hop", () => {
    const lp = { vrf: "v", prefix: "fd10::/64", nextHop: "192.0.2.2", encap: "vxlan", vni: 16777215, routerMac: "02:00:5e:10:00:0a" } as const;
    expect(checkLocalPath(lp)).toEqual({ family: "ipv6", address: "fd10::", length: 64 });
    expect(invalidMessage(() => checkLocalPath({ ...lp, vni: -1 }))).toMatch(/vni -1 is not a VNI/);
    expect(invalidMessage(() => checkLocalPath({ ...lp, routerMac: "ff:ff:ff:ff:ff:ff" }))).toMatch(/routerMac: ff:ff:ff:ff:ff:ff is a multicast address/);
  });

  it("what a type-5 route says: several problems at once are all named", () => {
    expect(evpnInfoOf({ label: 0, gwAddress: "10.0.0.1" }, { routerMac: undefined, tunnelTypes: [10] }, false)).toEqual({
      vni: 0,
      routerMac: "",
      problem: "label 0 is not a VNI (1 to 16777215); no router MAC extended community; encapsulation 10 is not VXLAN (8); gateway address 10.0.0.1 (an overlay index) is not supported",
    });
    // gobgpd 3.10 spells a missing gateway "<nil>".
    expect(evpnInfoOf({ label: 7, gwAddress: "<nil>", esi: { type: 0, value: new Uint8Array() } }, { routerMac: "02:00:5e:10:00:0a", tunnelTypes: [8] }, false)).toEqual({ vni: 7, routerMac: "02:00:5e:10:00:0a" });
  });
});

describe("sessionState", () => {
  it("maps the numbers shared by both APIs", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(sessionState)).toEqual([
      "unknown",
      "idle",
      "connect",
      "active",
      "opensent",
      "openconfirm",
      "established",
      "unknown",
    ]);
  });
});
