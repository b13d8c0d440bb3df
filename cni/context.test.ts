import { describe, expect, it } from "vitest";
import { parseNetConf, withVpc, type VpcConf } from "./config.js";
import { dataplaneOf, routing, speakerSettings } from "./context.js";
import { CniError } from "./error.js";
import type { KubeClient } from "./kube/client.js";

const base = { vpc: "ab", kubeconfig: "/etc/kvrf.kubeconfig", nodeName: "iad", ipam: { type: "host-local" } };
/** The config acting on its own (fixed) VPC. */
const conf = (over: Record<string, unknown>): VpcConf => {
  const c = parseNetConf({ ...base, ...over }, new Map(), {});
  if (c.defaultVpc === undefined) throw new Error("no vpc");
  return withVpc(c, c.defaultVpc);
};

/** A client answering the node and BGPInstance reads of speakerConfigsFor (the only requests made). */
function apiWith(instances: { name: string; asn: number; encapsulation?: string; routeTargetASN?: number }[]): { client: () => Promise<KubeClient>; asked: () => number } {
  let asked = 0;
  const c = {
    request: (_m: string, p: string) => {
      asked++;
      if (p.startsWith("/api/v1/nodes/")) return Promise.resolve({ status: 200, body: { metadata: { labels: {} } } });
      return Promise.resolve({
        status: 200,
        body: { items: instances.map((i) => ({ metadata: { name: i.name }, spec: { asn: i.asn, nodeSelector: {}, ...(i.encapsulation ? { encapsulation: i.encapsulation } : {}), ...(i.routeTargetASN ? { routeTargetASN: i.routeTargetASN } : {}) } })) },
      });
    },
  };
  return { client: () => Promise.resolve(c as unknown as KubeClient), asked: () => asked };
}

describe("speaker settings", () => {
  it("takes a config with its own asn as it is, srv6 unless it says otherwise, without asking the API", async () => {
    const api = apiWith([]);
    expect(await speakerSettings(conf({ asn: 65000 }), api.client)).toEqual({ asn: 65000, routeTargetAsn: 65000, encapsulation: "srv6" });
    expect(await speakerSettings(conf({ asn: 65000, encapsulation: "vxlan" }), api.client)).toEqual({ asn: 65000, routeTargetAsn: 65000, encapsulation: "vxlan" });
    expect(await speakerSettings(conf({ asn: 65001, routeTargetASN: 65000 }), api.client)).toEqual({ asn: 65001, routeTargetAsn: 65000, encapsulation: "srv6" });
    expect(api.asked()).toBe(0);
  });

  it("takes both from the node's BGPInstance otherwise, and refuses a config that contradicts it", async () => {
    const api = apiWith([{ name: "workers", asn: 65001, encapsulation: "vxlan" }]);
    expect(await speakerSettings(conf({}), api.client)).toEqual({ asn: 65001, routeTargetAsn: 65001, encapsulation: "vxlan" });
    expect(await speakerSettings(conf({}), apiWith([{ name: "old", asn: 65001 }]).client)).toEqual({ asn: 65001, routeTargetAsn: 65001, encapsulation: "srv6" });
    // An eBGP fabric: the node's ASN for the RD, the cluster-wide one for the route target.
    const rack = apiWith([{ name: "rack-2", asn: 65002, routeTargetASN: 65000 }]).client;
    const sp = await speakerSettings(conf({}), rack);
    expect(sp).toEqual({ asn: 65002, routeTargetAsn: 65000, encapsulation: "srv6" });
    expect(routing(sp, conf({}))).toEqual({ rd: "65002:171", rt: "65000:171" });
    const err = await speakerSettings(conf({ encapsulation: "srv6" }), api.client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 7, message: "encapsulation: the config says srv6 but BGPInstance workers, which selects node iad, says vxlan" });
  });
});

describe("routing identity", () => {
  it("refuses routeTargetASN without asn, and names the ASN that cannot encode the VPC", () => {
    expect(() => conf({ routeTargetASN: 65000 })).toThrow("routeTargetASN: is set only together with asn (without asn, both come from the BGPInstance selecting the node) (got 65000)");
    // VPC 1fffe: NN 131070 needs a 2-byte ASN on whichever side carries it.
    expect(() => routing({ asn: 65001, routeTargetAsn: 4200000001 }, conf({ vpc: "1fffe" }))).toThrow(/^routeTargetASN: route target 4200000001:131070 cannot be encoded/);
    expect(() => routing({ asn: 4200000001, routeTargetAsn: 65000 }, conf({ vpc: "1fffe" }))).toThrow(/^asn: route distinguisher 4200000001:131070 cannot be encoded/);
    expect(routing({ asn: 4200000001, routeTargetAsn: 65000 }, conf({ vpc: "fffe" }))).toEqual({ rd: "4200000001:65534", rt: "65000:65534" });
  });
});

describe("the data plane a config asks for", () => {
  it("needs a locator for SRv6 and a VTEP for VXLAN, naming the field", () => {
    expect(() => dataplaneOf(conf({}), "srv6")).toThrow(/^srv6Locator: required with the srv6 encapsulation/);
    expect(() => dataplaneOf(conf({}), "vxlan")).toThrow(/^vtep: required with the vxlan encapsulation/);
  });

  it("derives the VNI from the VPC and the router MAC from the node, and the MTU from the encapsulation", () => {
    const d = dataplaneOf(conf({ vtep: "192.0.2.11" }), "vxlan");
    expect(d).toMatchObject({ encap: "vxlan", mtu: 1430, locator: undefined, vxlan: { vni: 0xab, vtep: "192.0.2.11" } });
    expect(d.vxlan?.routerMac).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(dataplaneOf(conf({ vtep: "192.0.2.11", nodeName: "sjc" }), "vxlan").vxlan?.routerMac).not.toBe(d.vxlan?.routerMac);
    expect(dataplaneOf(conf({ srv6Locator: "fd00:0:a::/48" }), "srv6")).toMatchObject({ encap: "srv6", mtu: 1436, vxlan: undefined });
  });

  it("refuses a VPC whose low 24 bits are 0 with VXLAN (no usable VNI), not with SRv6", () => {
    expect(() => dataplaneOf(conf({ vpc: "1000000", vtep: "192.0.2.11" }), "vxlan")).toThrow('vpc: "1000000": its low 24 bits are 0, which is not a usable VNI');
    expect(dataplaneOf(conf({ vpc: "1000000", srv6Locator: "fd00:0:a::/48" }), "srv6").encap).toBe("srv6");
  });
});
