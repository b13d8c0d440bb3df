import { describe, expect, it } from "vitest";
import { mergeInto, render } from "./result.js";

const ours = {
  interfaces: [{ name: "kvaaaaaaaakuaab", mac: "aa:bb:cc:dd:ee:01" }, { name: "eth0", mac: "aa:bb:cc:dd:ee:02", mtu: 1436, sandbox: "/var/run/netns/p" }],
  ips: [
    { address: "10.1.0.2/32", gateway: "169.254.1.1", interface: 1 },
    { address: "fd10::2/128", gateway: "fe80::1", interface: 1 },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
};

describe("render", () => {
  it.each(["1.0.0", "1.1.0"])("%s: as is, no per-IP version", (v) => {
    const r = render(ours, v);
    expect(r).toEqual({ cniVersion: v, ...ours, dns: {} });
  });

  it.each(["0.3.0", "0.3.1", "0.4.0"])("%s: ips carry version, interfaces no mtu", (v) => {
    const r = render(ours, v);
    expect(r.cniVersion).toBe(v);
    expect(r.ips).toEqual([
      { version: "4", address: "10.1.0.2/32", gateway: "169.254.1.1", interface: 1 },
      { version: "6", address: "fd10::2/128", gateway: "fe80::1", interface: 1 },
    ]);
    expect(r.interfaces?.[1]).toEqual({ name: "eth0", mac: "aa:bb:cc:dd:ee:02", sandbox: "/var/run/netns/p" });
  });
});

describe("mergeInto", () => {
  it("returns ours when not chained", () => {
    expect(mergeInto(undefined, ours)).toBe(ours);
  });

  it("appends after a previous plugin's result and shifts interface indexes", () => {
    const prev = {
      cniVersion: "1.1.0",
      interfaces: [{ name: "net1", sandbox: "/var/run/netns/p" }],
      ips: [{ address: "192.0.2.5/24", interface: 0 }],
      routes: [{ dst: "198.51.100.0/24" }],
      dns: { nameservers: ["192.0.2.53"] },
    };
    const m = mergeInto(prev, ours);
    expect(m.interfaces?.map((i) => i.name)).toEqual(["net1", "kvaaaaaaaakuaab", "eth0"]);
    expect(m.ips?.map((i) => [i.address, i.interface])).toEqual([
      ["192.0.2.5/24", 0],
      ["10.1.0.2/32", 2],
      ["fd10::2/128", 2],
    ]);
    expect(m.routes).toHaveLength(2);
    expect(m.dns).toEqual({ nameservers: ["192.0.2.53"] });
  });

  it("drops a 0.x prevResult's per-IP version (the result is rendered again)", () => {
    const m = mergeInto({ ips: [{ version: "4", address: "192.0.2.5/24" }] }, { ips: [] });
    expect(m.ips).toEqual([{ address: "192.0.2.5/24" }]);
  });
});
