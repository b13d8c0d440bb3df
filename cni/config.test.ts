import { describe, expect, it } from "vitest";
import { mtuFor, parseNetConf, parseVpcId } from "./config.js";
import { CniError } from "./error.js";

const base = {
  cniVersion: "1.1.0",
  name: "tenant-a",
  type: "kvrf",
  vpc: "0x0000000000ab",
  ipam: { type: "host-local", ranges: [] },
  srv6Locator: "fd00:0:a::/48",
  kubeconfig: "/etc/cni/net.d/kvrf.kubeconfig",
  nodeName: "iad",
};

function parse(over: Record<string, unknown>, args: Record<string, string> = {}, env: Record<string, string> = {}) {
  return parseNetConf({ ...base, ...over }, new Map(Object.entries(args)), env);
}

function error(over: Record<string, unknown>, args: Record<string, string> = {}, env: Record<string, string> = {}): { code: number; msg: string } {
  try {
    parse(over, args, env);
  } catch (err) {
    if (err instanceof CniError) return { code: err.code, msg: err.message };
    throw err;
  }
  throw new Error("parsed");
}

describe("parseNetConf", () => {
  it("resolves a minimal config with defaults", () => {
    const c = parse({});
    expect(c).toMatchObject({
      defaultVpc: { vpc: 0xabn, vpcHex: "ab", table: 0xab },
      vpcFromNamespace: false,
      attachment: undefined,
      mtu: undefined,
      terminations: [],
      asn: undefined,
      encapsulation: undefined,
      vtep: undefined,
      nodeName: "iad",
      logLevel: "info",
      dataplaneMode: "auto",
      stateDir: "/run/kvrf",
    });
    expect(c.locator).toMatchObject({ length: 48 });
    // The MTU follows the encapsulation unless set: 1500 minus its overhead.
    expect(mtuFor(c, "srv6")).toBe(1436);
    expect(mtuFor(c, "vxlan")).toBe(1430);
    expect(mtuFor({ mtu: 9000 }, "vxlan")).toBe(9000);
  });

  it("reads the encapsulation and the VTEP, canonical; neither the locator nor the VTEP is required before the encapsulation is known", () => {
    const c = parse({ encapsulation: "vxlan", vtep: "2001:DB8:0::1", srv6Locator: undefined });
    expect(c).toMatchObject({ encapsulation: "vxlan", vtep: "2001:db8::1", locator: undefined });
  });

  it.each([
    [{ vpcAttachment: "1f" }, {}, 0x1f],
    [{ args: { cni: { vpcAttachment: "2" } } }, {}, 2],
    [{}, { KVRF_VPC_ATTACHMENT: "ffff" }, 0xffff],
    [{ vpcAttachment: "3" }, { KVRF_VPC_ATTACHMENT: "4" }, 3],
  ])("takes the attachment ID from config, args.cni or CNI_ARGS (%j %j)", (over, args, want) => {
    expect(parse(over, args).attachment).toBe(want);
  });

  it.each([
    [{ nodeName: undefined }, { NODE_NAME: "from-args" }, {}, "from-args"],
    [{ nodeName: undefined }, {}, { NODE_NAME: "from-env" }, "from-env"],
    [{}, { NODE_NAME: "from-args" }, { NODE_NAME: "from-env" }, "iad"],
  ])("resolves the node name (%j)", (over, args, env, want) => {
    expect(parse(over, args, env).nodeName).toBe(want);
  });

  it("canonicalises terminations", () => {
    expect(parse({ terminations: [{ network: "192.168.0.0/16", via: "10.1.0.5" }, { network: "fd99::/48", via: "fd10:0::5" }] }).terminations).toEqual([
      { network: "192.168.0.0/16", via: "10.1.0.5" },
      { network: "fd99::/48", via: "fd10::5" },
    ]);
  });

  it.each<[string, Record<string, unknown>, { vpcFromNamespace: boolean; defaultVpc: unknown }]>([
    ["a fixed VPC", {}, { vpcFromNamespace: false, defaultVpc: { vpc: 0xabn, vpcHex: "ab", table: 0xab } }],
    ["vpcFromNamespace false", { vpcFromNamespace: false }, { vpcFromNamespace: false, defaultVpc: { vpc: 0xabn, vpcHex: "ab", table: 0xab } }],
    ["vpcFromNamespace with a default", { vpcFromNamespace: true, vpc: "0x0000000012ab" }, { vpcFromNamespace: true, defaultVpc: { vpc: 0x12abn, vpcHex: "12ab", table: 0x12ab } }],
    ["vpcFromNamespace without a default", { vpcFromNamespace: true, vpc: undefined }, { vpcFromNamespace: true, defaultVpc: undefined }],
    ["a VPC above 32 bits", { vpcFromNamespace: true, vpc: "ffff000000ab" }, { vpcFromNamespace: true, defaultVpc: { vpc: 0xffff000000abn, vpcHex: "ffff000000ab", table: 0xab } }],
  ])("reads the VPC and vpcFromNamespace (%s)", (_name, over, want) => {
    const c = parse(over);
    expect({ vpcFromNamespace: c.vpcFromNamespace, defaultVpc: c.defaultVpc }).toEqual(want);
  });

  it.each<[string, string, string]>([
    ["not hex", "xyz", 'namespace tenant-a annotation kvrf.dev/vpc: "xyz" is not hex'],
    ["empty", "", 'namespace tenant-a annotation kvrf.dev/vpc: "" is not hex'],
    ["too wide", "1000000000000", 'namespace tenant-a annotation kvrf.dev/vpc: "1000000000000" does not fit in 48 bits'],
    ["the main table", "1000000fe", 'namespace tenant-a annotation kvrf.dev/vpc: "1000000fe": its low 32 bits (254) are a reserved kernel routing table (0, 253, 254, 255), which kvrf uses as the VPC\'s table'],
    ["table 0", "0x100000000", 'namespace tenant-a annotation kvrf.dev/vpc: "0x100000000": its low 32 bits (0) are a reserved kernel routing table (0, 253, 254, 255), which kvrf uses as the VPC\'s table'],
  ])("parses a namespace's VPC like the config's, naming the namespace and annotation (%s)", (_name, text, msg) => {
    let got: unknown;
    try {
      parseVpcId(text, "namespace tenant-a annotation kvrf.dev/vpc");
    } catch (err) {
      got = err;
    }
    expect(got).toBeInstanceOf(CniError);
    expect({ code: (got as CniError).code, msg: (got as CniError).message }).toEqual({ code: 7, msg });
    // The config's field: the same messages under its own name (an empty "vpc" is a missing one).
    if (text !== "") expect(error({ vpc: text }).msg).toBe(msg.replace("namespace tenant-a annotation kvrf.dev/vpc", "vpc"));
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["vpcFromNamespace a string", { vpcFromNamespace: "true" }, 'vpcFromNamespace: must be true or false (got "true")'],
    ["vpcFromNamespace a number", { vpcFromNamespace: 1 }, "vpcFromNamespace: must be true or false (got 1)"],
    ["vpcFromNamespace null", { vpcFromNamespace: null }, "vpcFromNamespace: must be true or false (got null)"],
    ["an empty default", { vpcFromNamespace: true, vpc: "" }, 'vpc: required: the VPC ID, 48-bit hex (got "")'],
    ["a reserved default", { vpcFromNamespace: true, vpc: "ff" }, 'vpc: "ff": its low 32 bits (255) are a reserved kernel routing table'],
    ["no vpc", { vpc: undefined }, "vpc: required: the VPC ID, 48-bit hex (got nothing)"],
    ["vpc not hex", { vpc: "xyz" }, 'vpc: "xyz" is not hex'],
    ["vpc too wide", { vpc: "1000000000000" }, 'vpc: "1000000000000" does not fit in 48 bits'],
    ["vpc on the main table", { vpc: "1000000fe" }, 'vpc: "1000000fe": its low 32 bits (254) are a reserved kernel routing table'],
    ["attachment too wide", { vpcAttachment: "10000" }, 'vpcAttachment: "10000" does not fit in 16 bits'],
    ["attachment a number", { vpcAttachment: 5 }, "vpcAttachment: must be a non-empty string (got 5)"],
    ["no ipam", { ipam: undefined }, 'ipam: required: an object naming the IPAM plugin to delegate to in "type" (got nothing)'],
    ["ipam without type", { ipam: {} }, "ipam.type: required: the IPAM plugin to delegate to (e.g. host-local) (got nothing)"],
    ["locator IPv4", { srv6Locator: "10.0.0.0/8" }, 'srv6Locator: "10.0.0.0/8" is not an IPv6 prefix'],
    ["locator too long", { srv6Locator: "fd00::/96" }, "srv6Locator: \"fd00::/96\" has prefix length 96"],
    ["kubeconfig relative", { kubeconfig: "kvrf.kubeconfig" }, 'kubeconfig: must be an absolute path (got "kvrf.kubeconfig")'],
    ["mtu too small", { mtu: 576 }, "mtu: must be an integer from 1280 to 65535 (got 576)"],
    ["asn zero", { asn: 0 }, "asn: must be an integer from 1 to 4294967295 (got 0)"],
    ["asn 2^32", { asn: 4294967296 }, "asn: must be an integer from 1 to 4294967295 (got 4294967296)"],
    ["asn text", { asn: "65000" }, 'asn: must be an integer from 1 to 4294967295 (got "65000")'],
    ["termination not a list", { terminations: {} }, "terminations: must be a list of {network, via} (got {})"],
    ["termination bad network", { terminations: [{ network: "10.0.0.0", via: "10.1.0.5" }] }, 'terminations.0.network: not a CIDR (got "10.0.0.0")'],
    ["termination bad via", { terminations: [{ network: "10.0.0.0/8", via: "gw" }] }, 'terminations.0.via: not an IP address (got "gw")'],
    ["termination mixed families", { terminations: [{ network: "10.0.0.0/8", via: "fd10::5" }] }, "terminations.0: network 10.0.0.0/8 and via fd10::5 are of different address families"],
    ["termination host bits", { terminations: [{ network: "10.0.0.1/8", via: "10.1.0.5" }] }, 'terminations.0.network: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)'],
    ["no node name", { nodeName: undefined }, 'nodeName: the node name is unknown: set "nodeName" in the config, NODE_NAME in CNI_ARGS or in the environment'],
    ["bad node name", { nodeName: "Node_A" }, 'nodeName: "Node_A" is not a valid Kubernetes node name (DNS subdomain)'],
    ["bad log level", { logLevel: "trace" }, 'logLevel: must be one of debug, info, warn, error (got "trace")'],
    ["bad mode", { dataplaneMode: "vxlan" }, 'dataplaneMode: must be one of auto, vrf, policy-routing (got "vxlan")'],
    ["bad encapsulation", { encapsulation: "gre" }, 'encapsulation: must be one of srv6, vxlan (got "gre")'],
    ["vtep not an address", { vtep: "node-a" }, 'vtep: not an IP address (got "node-a")'],
    ["vtep multicast", { vtep: "239.1.1.1" }, 'vtep: must be a unicast address of the node\'s underlay (got "239.1.1.1")'],
    ["vtep unspecified", { vtep: "::" }, 'vtep: must be a unicast address of the node\'s underlay (got "::")'],
  ])("refuses %s with code 7 naming the field and value", (_name, over, msg) => {
    const e = error(over);
    expect(e.code).toBe(7);
    expect(e.msg).toContain(msg);
  });
});
