import { describe, expect, it } from "vitest";
import { parseNetConf } from "./config.js";
import { dataplaneOf, speakerSettings } from "./context.js";
import { CniError } from "./error.js";
import type { KubeClient } from "./kube/client.js";

const base = { vpc: "ab", kubeconfig: "/etc/kvrf.kubeconfig", nodeName: "iad", ipam: { type: "host-local" } };
const conf = (over: Record<string, unknown>): ReturnType<typeof parseNetConf> => parseNetConf({ ...base, ...over }, new Map(), {});

/** A client answering the node and BGPInstance reads of speakerConfigsFor (the only requests made). */
function apiWith(instances: { name: string; asn: number; encapsulation?: string }[]): { client: () => Promise<KubeClient>; asked: () => number } {
  let asked = 0;
  const c = {
    request: (_m: string, p: string) => {
      asked++;
      if (p.startsWith("/api/v1/nodes/")) return Promise.resolve({ status: 200, body: { metadata: { labels: {} } } });
      return Promise.resolve({
        status: 200,
        body: { items: instances.map((i) => ({ metadata: { name: i.name }, spec: { asn: i.asn, nodeSelector: {}, ...(i.encapsulation ? { encapsulation: i.encapsulation } : {}) } })) },
      });
    },
  };
  return { client: () => Promise.resolve(c as unknown as KubeClient), asked: () => asked };
}

describe("speaker settings", () => {
  it("takes a config with its own asn as it is, srv6 unless it says otherwise, without asking the API", async () => {
    const api = apiWith([]);
    expect(await speakerSettings(conf({ asn: 65000 }), api.client)).toEqual({ asn: 65000, encapsulation: "srv6" });
    expect(await speakerSettings(conf({ asn: 65000, encapsulation: "vxlan" }), api.client)).toEqual({ asn: 65000, encapsulation: "vxlan" });
    expect(api.asked()).toBe(0);
  });

  it("takes both from the node's BGPInstance otherwise, and refuses a config that contradicts it", async () => {
    const api = apiWith([{ name: "workers", asn: 65001, encapsulation: "vxlan" }]);
    expect(await speakerSettings(conf({}), api.client)).toEqual({ asn: 65001, encapsulation: "vxlan" });
    expect(await speakerSettings(conf({}), apiWith([{ name: "old", asn: 65001 }]).client)).toEqual({ asn: 65001, encapsulation: "srv6" });
    const err = await speakerSettings(conf({ encapsulation: "srv6" }), api.client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 7, message: "encapsulation: the config says srv6 but BGPInstance workers, which selects node iad, says vxlan" });
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
