// The CRDs' validation on the real API server, table-driven: each row changes one field of a valid
// object and expects it accepted, or rejected naming the field with the expected message.
// Objects are created with dryRun=All (validated in full, never stored), so rows are independent.
// Also what operators see: kubectl explain, the kvrf category and the printer columns.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { KubeClient, KubeError, loadKubeconfig } from "../../cni/kube/client.js";
import { repoRoot, tool } from "../harness/tools.js";

const run = promisify(execFile);
const api = "/apis/kvrf.dev/v1alpha1";
type Obj = Record<string, unknown> & { spec: Record<string, unknown> };
type Mutate = (o: Obj) => void;
/** "ok", or the field path and a fragment of the message the API server must give for it. */
type Expect = "ok" | [field: string, message: string];

const adminAssigned = "must be ASN:NN with a 2-byte ASN and NN up to 4294967295, ASN:NN with a 4-byte ASN (up to 4294967295) and NN up to 65535, or IPv4:NN with NN up to 65535";
const noMatch = "should match";

function vrf(): Obj {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPVRFInstance",
    metadata: { name: "crdv.vpc-ab", labels: { "kvrf.dev/node": "crdv", "kvrf.dev/vpc": "ab" } },
    spec: {
      nodeName: "crdv",
      vpc: "ab",
      asn: 65000,
      routeDistinguisher: "65000:171",
      importRouteTargets: ["65000:171"],
      exportRouteTargets: ["65000:171"],
      table: 171,
      attachments: [{ containerID: "c1", ifName: "eth0", attachment: "1", sid: "fd00:0:a::ab:1", prefixes: ["10.1.0.5/32", "fd10::5/128"] }],
    },
  };
}

function claim(): Obj {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "RouteTargetClaim",
    metadata: { name: "rt-65000-171", labels: { "kvrf.dev/vpc": "ab" } },
    spec: { routeTarget: "65000:171", vpc: "ab", holders: [{ node: "crdv" }, { node: "crdv-2.example.com" }] },
  };
}

function instance(): Obj {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "BGPInstance",
    metadata: { name: "crdv" },
    spec: { nodeSelector: {}, asn: 4200000001, listenPort: 179, peers: [{ address: "fd00:ff::100", asn: 4200000001, port: 179 }] },
  };
}

const set =
  (field: string, value: unknown): Mutate =>
  (o) => {
    o.spec[field] = value;
  };
const att =
  (field: string, value: unknown): Mutate =>
  (o) => {
    (o.spec["attachments"] as Record<string, unknown>[])[0]![field] = value;
  };
const holder =
  (field: string, value: unknown): Mutate =>
  (o) => {
    (o.spec["holders"] as Record<string, unknown>[])[0]![field] = value;
  };
const peer =
  (field: string, value: unknown): Mutate =>
  (o) => {
    (o.spec["peers"] as Record<string, unknown>[])[0]![field] = value;
  };
const rd = (v: string): Mutate => set("routeDistinguisher", v);
/** A VXLAN object: encapsulation, VNI, VTEP and router MAC, with `over` (undefined removes a field). */
const vxlanSpec =
  (over: Record<string, unknown>): Mutate =>
  (o) => {
    Object.assign(o.spec, { encapsulation: "vxlan", vni: 171, vtep: "192.0.2.11", routerMac: "02:aa:bb:cc:dd:ee" }, over);
    for (const [k, v] of Object.entries(over)) if (v === undefined) delete o.spec[k];
  };
const rdBad = (v: string, msg = adminAssigned): [string, Mutate, Expect] => [`RD ${v}`, rd(v), ["spec.routeDistinguisher", msg]];

const vrfRows: [string, Mutate, Expect][] = [
  ["the valid object", () => undefined, "ok"],
  ["RD 2-byte ASN, NN 4294967295 (type 0)", rd("65000:4294967295"), "ok"],
  ["RD 2-byte ASN 65535, NN 0", rd("65535:0"), "ok"],
  ["RD 4-byte ASN 4294967295, NN 65535 (type 2)", rd("4294967295:65535"), "ok"],
  ["RD 4-byte ASN 4200000001:7", rd("4200000001:7"), "ok"],
  ["RD IPv4:NN 65535 (type 1)", rd("192.0.2.1:65535"), "ok"],
  rdBad("65000:4294967296"),
  rdBad("4200000001:65536"),
  rdBad("4294967296:1"),
  rdBad("9999999999:1"),
  rdBad("192.0.2.1:65536"),
  rdBad("256.0.0.1:1"),
  rdBad("0:5", noMatch),
  rdBad("065000:5", noMatch),
  rdBad("65000:05", noMatch),
  rdBad("65000", noMatch),
  rdBad("abc:1", noMatch),
  rdBad("fd00::1:5", noMatch),
  ["import RT 4-byte ASN:65535", set("importRouteTargets", ["4200000001:65535", "65000:4294967295", "10.0.0.1:1"]), "ok"],
  ["import RT 4-byte ASN:65536", set("importRouteTargets", ["65000:1", "4200000001:65536"]), ["spec.importRouteTargets[1]", adminAssigned]],
  ["export RT IPv4:70000", set("exportRouteTargets", ["192.0.2.1:70000"]), ["spec.exportRouteTargets[0]", adminAssigned]],
  ["65 import RTs", set("importRouteTargets", Array.from({ length: 65 }, (_, i) => `65000:${i}`)), ["spec.importRouteTargets", "must have at most 64 items"]],
  ["VPC of 48 bits", set("vpc", "ffffffffffff"), "ok"],
  ["VPC 0", set("vpc", "0"), "ok"],
  ["VPC of 52 bits", set("vpc", "1000000000000"), ["spec.vpc", noMatch]],
  ["VPC with a leading zero", set("vpc", "0ab"), ["spec.vpc", noMatch]],
  ["VPC in upper case", set("vpc", "AB"), ["spec.vpc", noMatch]],
  ["VPC with 0x", set("vpc", "0xab"), ["spec.vpc", noMatch]],
  ["ASN 4294967295", set("asn", 4294967295), "ok"],
  ["ASN 0", set("asn", 0), ["spec.asn", "should be greater than or equal to 1"]],
  ["ASN above 32 bits", set("asn", 4294967296), ["spec.asn", "should be less than or equal to 4294967295"]],
  ["table 4294967295", set("table", 4294967295), "ok"],
  ["table 252", set("table", 252), "ok"],
  ["table 254 (main)", set("table", 254), ["spec.table", "kernel's default, main and local tables"]],
  ["table 0", set("table", 0), ["spec.table", "should be greater than or equal to 1"]],
  ["node name with a dot", set("nodeName", "node-a.example.com"), "ok"],
  ["node name in upper case", set("nodeName", "Node_A"), ["spec.nodeName", noMatch]],
  ["attachment ffff", att("attachment", "ffff"), "ok"],
  ["attachment of 17 bits", att("attachment", "10000"), ["spec.attachments[0].attachment", "may not be more than 4 bytes"]],
  ["attachment with a leading zero", att("attachment", "01"), ["spec.attachments[0].attachment", noMatch]],
  ["attachment not hex", att("attachment", "g"), ["spec.attachments[0].attachment", noMatch]],
  [
    "two attachments with one ID",
    (o) => {
      const list = o.spec["attachments"] as Record<string, unknown>[];
      list.push({ ...list[0], containerID: "c2" });
    },
    ["spec.attachments", "cannot share an attachment ID"],
  ],
  [
    "1024 attachments, two of them far apart with one ID",
    (o) => {
      const first = (o.spec["attachments"] as Record<string, unknown>[])[0] ?? {};
      o.spec["attachments"] = Array.from({ length: 1024 }, (_, i) => ({ ...first, containerID: `c${i}`, attachment: (i === 1023 ? 5 : i + 1).toString(16) }));
    },
    ["spec.attachments", "cannot share an attachment ID"],
  ],
  [
    "1024 attachments with distinct IDs (the most the schema allows, within the rule's cost budget)",
    (o) => {
      const first = (o.spec["attachments"] as Record<string, unknown>[])[0] ?? {};
      o.spec["attachments"] = Array.from({ length: 1024 }, (_, i) => ({ ...first, containerID: `c${i}`, attachment: (i + 1).toString(16) }));
    },
    "ok",
  ],
  ["SID an IPv4 address", att("sid", "10.0.0.1"), ["spec.attachments[0].sid", "must be an IPv6 address"]],
  ["SID not an address", att("sid", "fd00::zz"), ["spec.attachments[0].sid", "must be an IPv6 address"]],
  ["sid6 IPv6", att("sid6", "fd00:0:a:8000::ab:1"), "ok"],
  ["sid6 an IPv4 address", att("sid6", "192.0.2.1"), ["spec.attachments[0].sid6", "must be an IPv6 address"]],
  ["prefixes: networks and defaults", att("prefixes", ["10.0.0.0/8", "0.0.0.0/0", "::/0", "2001:db8::/32"]), "ok"],
  ["prefix with host bits", att("prefixes", ["10.0.0.1/24"]), ["spec.attachments[0].prefixes[0]", "without host bits set"]],
  ["prefix without a length", att("prefixes", ["10.0.0.1"]), ["spec.attachments[0].prefixes[0]", "must be a CIDR"]],
  ["prefix /129", att("prefixes", ["fd10::1/129"]), ["spec.attachments[0].prefixes[0]", "must be a CIDR"]],
  ["interface name with a slash", att("ifName", "eth/0"), ["spec.attachments[0].ifName", noMatch]],
  ["interface name of 16 bytes", att("ifName", "abcdefghijklmnop"), ["spec.attachments[0].ifName", "may not be more than 15 bytes"]],
  ["encapsulation srv6", set("encapsulation", "srv6"), "ok"],
  ["encapsulation gre", set("encapsulation", "gre"), ["spec.encapsulation", 'supported values: "srv6", "vxlan"']],
  ["VXLAN with VNI, VTEP and router MAC", vxlanSpec({}), "ok"],
  ["VXLAN with an IPv6 VTEP", vxlanSpec({ vtep: "fd00:ff::11" }), "ok"],
  ["VXLAN without a VNI", vxlanSpec({ vni: undefined }), ["spec", "vni, vtep and routerMac are set exactly when encapsulation is vxlan"]],
  ["SRv6 with a VNI", (o) => Object.assign(o.spec, { encapsulation: "srv6", vni: 171 }), ["spec", "vni, vtep and routerMac are set exactly when encapsulation is vxlan"]],
  ["VNI 0", vxlanSpec({ vni: 0 }), ["spec.vni", "should be greater than or equal to 1"]],
  ["VNI of 25 bits", vxlanSpec({ vni: 16777216 }), ["spec.vni", "should be less than or equal to 16777215"]],
  ["VTEP not an address", vxlanSpec({ vtep: "node-a" }), ["spec.vtep", "must be an IPv4 or IPv6 address"]],
  ["router MAC in upper case", vxlanSpec({ routerMac: "02:AA:BB:CC:DD:EE" }), ["spec.routerMac", noMatch]],
];

const rtBad = (v: string, msg = adminAssigned): [string, Mutate, Expect] => [`RT ${v}`, set("routeTarget", v), ["spec.routeTarget", msg]];
/** A claim must be its own VPC's (NN = uint32(vpc)) under its value's name: these change all three. */
const rtOf =
  (rt: string, vpc: string): Mutate =>
  (o) => {
    Object.assign(o.spec, { routeTarget: rt, vpc });
    o["metadata"] = { name: `rt-${rt.replace(":", "-").replaceAll(".", "-")}`, labels: { "kvrf.dev/vpc": vpc } };
  };
const claimRows: [string, Mutate, Expect][] = [
  ["the valid claim", () => undefined, "ok"],
  ["RT 2-byte ASN, NN 4294967295", rtOf("65000:4294967295", "ffffffff"), "ok"],
  ["RT 4-byte ASN, NN 65535", rtOf("4200000001:65535", "ffff"), "ok"],
  ["RT IPv4:NN", rtOf("192.0.2.1:7", "7"), "ok"],
  ["RT of another VPC's number", rtOf("65000:172", "ab"), ["spec.routeTarget", '"65000:172" is not a route target of VPC ab: its number must be NN = uint32(vpc) = 0xab']],
  ["RT under another route target's name", set("routeTarget", "64512:171"), ["<nil>", "a RouteTargetClaim of route target 64512:171 must be named rt-64512-171"]],
  rtBad("4200000001:65536"),
  rtBad("65000:4294967296"),
  rtBad("1.2.3:4", noMatch),
  ["VPC with a leading zero", set("vpc", "00ab"), ["spec.vpc", noMatch]],
  ["holder node in upper case", holder("node", "NODE"), ["spec.holders[0].node", noMatch]],
  ["holder node of 254 bytes", holder("node", "n".repeat(254)), ["spec.holders[0].node", "may not be more than 253 bytes"]],
  ["two holder entries of one node", holder("node", "crdv-2.example.com"), ["spec.holders[1]", "crdv-2.example.com"]],
  [
    "a holder entry without a node",
    (o) => {
      (o.spec["holders"] as unknown[]).push({});
    },
    ["spec.holders[2].node", ""],
  ],
];

function vniClaim(): Obj {
  return {
    apiVersion: "kvrf.dev/v1alpha1",
    kind: "VNIClaim",
    metadata: { name: "vni-171", labels: { "kvrf.dev/vpc": "ab" } },
    spec: { vni: 171, vpc: "ab", holders: [{ node: "crdv" }] },
  };
}

const vniClaimRows: [string, Mutate, Expect][] = [
  ["the valid claim", () => undefined, "ok"],
  [
    "VNI 16777215",
    (o) => {
      Object.assign(o.spec, { vni: 16777215, vpc: "ffffff" });
      o["metadata"] = { name: "vni-16777215", labels: { "kvrf.dev/vpc": "ffffff" } };
    },
    "ok",
  ],
  ["VNI of another VPC", set("vni", 172), ["spec.vni", "not the VNI of VPC ab, which is its low 24 bits: 0xab"]],
  [
    "VNI under another VNI's name",
    (o) => {
      o["metadata"] = { name: "vni-172", labels: { "kvrf.dev/vpc": "ab" } };
    },
    ["<nil>", "a VNIClaim must be named vni-<spec.vni in decimal>"],
  ],
  ["VNI 0", set("vni", 0), ["spec.vni", "should be greater than or equal to 1"]],
  ["VNI of 25 bits", set("vni", 16777216), ["spec.vni", "should be less than or equal to 16777215"]],
  ["VPC in upper case", set("vpc", "AB"), ["spec.vpc", noMatch]],
  ["holder node in upper case", holder("node", "NODE"), ["spec.holders[0].node", noMatch]],
];

// BGPInstance's schema belongs to the speaker configuration; these rows pin the formats issue 6
// names for it (ports, ASNs, addresses) so a change to them is deliberate.
const instanceRows: [string, Mutate, Expect][] = [
  ["the valid instance", () => undefined, "ok"],
  ["listen port -1 (outbound only)", set("listenPort", -1), "ok"],
  ["listen port 0", set("listenPort", 0), ["spec.listenPort", "listenPort must be -1 or 1 to 65535"]],
  ["listen port 65536", set("listenPort", 65536), ["spec.listenPort", "should be less than or equal to 65535"]],
  ["peer port 0", peer("port", 0), ["spec.peers[0].port", "should be greater than or equal to 1"]],
  ["peer ASN above 32 bits", peer("asn", 4294967296), ["spec.peers[0].asn", "should be less than or equal to 4294967295"]],
  ["peer address not an IP", peer("address", "rr.example"), ["spec.peers[0].address", "must be an IPv4 or IPv6 address"]],
  ["encapsulation vxlan with EVPN", (o) => Object.assign(o.spec, { encapsulation: "vxlan", families: ["l2vpn-evpn"] }), "ok"],
  ["encapsulation mpls", set("encapsulation", "mpls"), ["spec.encapsulation", 'supported values: "srv6", "vxlan"']],
  ["family l2vpn-vpls", set("families", ["l2vpn-vpls"]), ["spec.families[0]", 'supported values: "vpnv4", "vpnv6", "l2vpn-evpn"']],
  ["peer limited to VPCs", peer("vpcs", ["a1", "14"]), "ok"],
  ["peer limited to no VPC", peer("vpcs", []), "ok"],
  ["peer VPC not canonical hex", peer("vpcs", ["0xA1"]), ["spec.peers[0].vpcs[0]", "should match '^(0|[1-9a-f][0-9a-f]{0,11})$'"]],
  ["peer VPC listed twice", peer("vpcs", ["a1", "a1"]), ["spec.peers[0].vpcs[1]", "\"a1\""]],
  ["peer sent the cluster's own routes only", peer("exportRoutes", "Pods"), "ok"],
  ["peer sent every route", peer("exportRoutes", "All"), "ok"],
  ["peer exportRoutes unknown", peer("exportRoutes", "pods"), ["spec.peers[0].exportRoutes", 'supported values: "All", "Pods"']],
  ["peer with 257 VPCs", peer("vpcs", Array.from({ length: 257 }, (_, i) => (i + 1).toString(16))), ["spec.peers[0].vpcs", "must have at most 256 items"]],
];

describe("CRD validation on the API server", () => {
  let client: KubeClient;
  const kubectl = async (...args: string[]): Promise<string> => (await run(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), ...args])).stdout;

  beforeAll(async () => {
    await kubectl("apply", "--server-side", "--force-conflicts", "-f", path.join(repoRoot, "manifests/crds"));
    await kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/bgpvrfinstances.kvrf.dev", "crd/routetargetclaims.kvrf.dev", "crd/vniclaims.kvrf.dev", "crd/bgpinstances.kvrf.dev");
    client = new KubeClient(await loadKubeconfig(inject("kubeconfig")));
  });

  afterAll(async () => {
    await client.request("DELETE", `${api}/bgpvrfinstances/crdv.vpc-ab`).catch(() => undefined);
    client.close();
  });

  async function create(plural: string, mutate: Mutate, base: () => Obj): Promise<KubeError | undefined> {
    const o = base();
    mutate(o);
    return client.request("POST", `${api}/${plural}`, { body: o, query: { dryRun: "All" } }).then(
      () => undefined,
      (err: unknown) => {
        if (err instanceof KubeError) return err;
        throw err;
      },
    );
  }

  const check = async (plural: string, base: () => Obj, mutate: Mutate, want: Expect): Promise<void> => {
    const err = await create(plural, mutate, base);
    if (want === "ok") {
      // Rows that vary the RD, route targets or table leave the derivation from (ASN, VPC), which
      // the admission policy kvrf-routing-identity refuses once another file of this tier has
      // applied manifests/ to the shared API server. Validating admission runs after the schema
      // (and its CEL rules) accepted the object, so its refusal still means "the schema says ok".
      if (err?.message.includes("ValidatingAdmissionPolicy 'kvrf-routing-identity'") === true) return;
      expect(err?.message).toBeUndefined();
      return;
    }
    expect(err?.status).toBe(422);
    // The API server words each cause as "<field>: Invalid value|Too many|Too long|Duplicate
    // value|Required value: …<message>";
    // each row breaks one field, so the cause naming it carries the message.
    const quote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(err?.message).toMatch(new RegExp(`${quote(want[0])}: (Invalid value|Unsupported value|Too many|Too long|Duplicate value|Required value).*?${quote(want[1])}`));
  };

  it.each(vrfRows)("BGPVRFInstance: %s", (_what, mutate, want) => check("bgpvrfinstances", vrf, mutate, want));
  it.each(claimRows)("RouteTargetClaim: %s", (_what, mutate, want) => check("routetargetclaims", claim, mutate, want));
  it.each(vniClaimRows)("VNIClaim: %s", (_what, mutate, want) => check("vniclaims", vniClaim, mutate, want));
  it.each(instanceRows)("BGPInstance: %s", (_what, mutate, want) => check("bgpinstances", instance, mutate, want));

  it("a VNI claim's VPC and VNI cannot change", async () => {
    const body = { ...vniClaim(), metadata: { name: "vni-9999", labels: { "kvrf.dev/vpc": "270f" } }, spec: { vni: 9999, vpc: "270f" } };
    await client.request("POST", `${api}/vniclaims`, { body });
    try {
      const err: unknown = await client
        .request("PATCH", `${api}/vniclaims/vni-9999`, { body: { spec: { vpc: "cd" } }, contentType: "application/merge-patch+json" })
        .catch((e: unknown) => e);
      expect((err as KubeError).message).toContain("a claim's vpc and vni cannot change");
    } finally {
      await client.request("DELETE", `${api}/vniclaims/vni-9999`);
    }
  });

  it("a claim's VPC and route target cannot change", async () => {
    const name = "rt-65000-9999";
    const body = { ...claim(), metadata: { name, labels: { "kvrf.dev/vpc": "270f" } }, spec: { routeTarget: "65000:9999", vpc: "270f" } };
    await client.request("POST", `${api}/routetargetclaims`, { body });
    try {
      const err: unknown = await client
        .request("PATCH", `${api}/routetargetclaims/${name}`, { body: { spec: { vpc: "cd" } }, contentType: "application/merge-patch+json" })
        .catch((e: unknown) => e);
      expect((err as KubeError).message).toContain("a claim's vpc and routeTarget cannot change");
    } finally {
      await client.request("DELETE", `${api}/routetargetclaims/${name}`);
    }
  });

  it("teaches kubectl explain the fields", async () => {
    const explain = async (field: string): Promise<string> => (await kubectl("explain", field)).replace(/\s+/g, " ");
    expect(await explain("bgpvrfinstances.spec.routeDistinguisher")).toContain("a 4-byte ASN with NN up to 65535 (type 2)");
    expect(await explain("routetargetclaims.spec.holders")).toContain("adds its own entry with the VPC's first attachment on the node and removes it with the last");
  });

  it("lists every kvrf kind under `kubectl get kvrf`, with the columns an operator wants", async () => {
    await client.request("POST", `${api}/bgpvrfinstances`, { body: vrf() });
    await client.request("PATCH", `${api}/bgpvrfinstances/crdv.vpc-ab/status`, {
      body: { status: { localPrefixes: 2, remotePrefixes: 3, conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "ok" }] } },
      contentType: "application/merge-patch+json",
    });
    const all = await kubectl("get", "kvrf", "-o", "name");
    expect(all).toContain("bgpvrfinstance.kvrf.dev/crdv.vpc-ab");
    const resources = await kubectl("api-resources", "--categories=kvrf", "-o", "name");
    expect(resources.trim().split("\n").sort()).toEqual(["bgpinstances.kvrf.dev", "bgpvrfinstances.kvrf.dev", "routetargetclaims.kvrf.dev", "vniclaims.kvrf.dev"]);
    const wide = (await kubectl("get", "bvi", "crdv.vpc-ab", "-o", "wide")).trim().split("\n");
    expect(wide[0]?.split(/\s{2,}/)).toEqual(["NAME", "NODE", "VPC", "RD", "IMPORT-RT", "ENCAP", "PREFIXES", "REMOTE", "READY", "AGE", "EXPORT-RT", "TABLE", "REASON"]);
    // An object from before VXLAN has no encapsulation (srv6, an empty column).
    expect(wide[1]).toMatch(/^crdv\.vpc-ab\s+crdv\s+ab\s+65000:171\s+\["65000:171"\]\s+2\s+3\s+True\s+\S+\s+\["65000:171"\]\s+171\s+Ready$/);
  });
});
