// The FRR route reflector's configuration: golden files pin frr.conf for each lab setting (a change
// shows up as a diff of testdata/frr-reflector-*.golden in review; regenerate with UPDATE_GOLDEN=1
// after checking the difference is intended), and it says what the gobgpd reflector's BGPInstance says.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { DesiredSpeaker } from "../../reconciler/bgp-instance/bgp-instance.js";
import { FrrConfigError, frrReflectorConfig, labReflectorConfig, reflectorInstance } from "./frr-reflector.js";
import { underlayAddress, workers, type LabSettings } from "./topology.js";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata");

const settings: [string, LabSettings][] = [
  ["vxlan4", { encap: "vxlan", underlay: 4, reflector: "frr" }],
  ["vxlan6", { encap: "vxlan", underlay: 6, reflector: "frr" }],
  ["srv6", { encap: "srv6", underlay: 6, reflector: "frr" }],
];

describe("the lab's FRR route reflector configuration (golden files)", () => {
  it.each([...settings, ["ebgp-vxlan4", { encap: "vxlan", underlay: 4, reflector: "frr", fabric: "ebgp" }] as [string, LabSettings]])("%s", async (name, s) => {
    const got = await labReflectorConfig(s);
    const file = path.join(dir, `frr-reflector-${name}.golden`);
    if (process.env["UPDATE_GOLDEN"] === "1" || !existsSync(file)) writeFileSync(file, got);
    expect(got).toBe(readFileSync(file, "utf8"));
  });
});

describe.each(settings)("FRR reflector configuration = the reflector's BGPInstance (%s)", (_name, s) => {
  const { instance } = reflectorInstance(s);
  const spec = instance.spec;

  it("has the instance's ASN, router ID and cluster ID", async () => {
    const conf = await labReflectorConfig(s);
    expect(conf).toContain(`\nrouter bgp ${spec.asn}\n`);
    expect(conf).toContain(`\n bgp router-id ${spec.routerID?.value}\n`);
    expect(conf).toContain(`\n bgp cluster-id ${spec.routeReflector?.clusterID}\n`);
    expect(conf).toContain("\n no bgp default ipv4-unicast\n");
  });

  it("has every worker as an iBGP route-reflector client in each of the instance's families, and nothing else", async () => {
    const conf = await labReflectorConfig(s);
    const frrFamily = { vpnv4: "ipv4 vpn", vpnv6: "ipv6 vpn", "l2vpn-evpn": "l2vpn evpn" } as const;
    const blocks = [...conf.matchAll(/\n address-family (.+)\n((?: {2}.+\n)*) exit-address-family/g)].map((m) => [m[1], (m[2] ?? "").trim().split("\n").map((l) => l.trim())] as const);
    const want = (spec.families ?? []).map((f) => [frrFamily[f], workers.flatMap((w) => [`neighbor ${underlayAddress(w, s)} activate`, `neighbor ${underlayAddress(w, s)} route-reflector-client`])] as const);
    expect(blocks).toEqual(want);
    for (const p of spec.peers ?? []) {
      expect(conf).toContain(`\n neighbor ${p.address} remote-as internal\n`);
      expect(conf).toContain(`\n neighbor ${p.address} timers ${p.timers?.keepalive} ${p.timers?.holdTime}\n`);
    }
  });

  it("negotiates extended next hops with IPv6 peers that carry VPNv4 (SRv6's IPv4 routes have IPv6 next hops)", async () => {
    const conf = await labReflectorConfig(s);
    for (const p of spec.peers ?? []) {
      const want = p.address.includes(":") && (spec.families ?? []).includes("vpnv4");
      expect(conf.includes(`\n neighbor ${p.address} capability extended-nexthop\n`)).toBe(want);
    }
  });

  it("restarts gracefully as the instance asks", async () => {
    const conf = await labReflectorConfig(s);
    expect(conf).toContain(`\n bgp graceful-restart\n bgp graceful-restart restart-time ${spec.gracefulRestart?.restartTime}\n`);
  });
});

describe("frrReflectorConfig refuses what FRR cannot be told", () => {
  const base: DesiredSpeaker = {
    global: { asn: 65000, routerId: "10.255.0.1", listenPort: 179 },
    routerIdFrom: "Manual",
    peers: [
      { address: "198.51.100.11", asn: 65000, families: ["l2vpn-evpn"], routeReflectorClient: true, routeReflectorClusterId: "10.255.0.1" },
      { address: "198.51.100.12", asn: 65000, families: ["l2vpn-evpn"], routeReflectorClient: true, routeReflectorClusterId: "10.255.0.1" },
    ],
    skippedPeers: [],
    policyProblems: [],
  };
  const peer = (i: number, extra: object): DesiredSpeaker => ({ ...base, peers: base.peers.map((p, j) => (i === j ? { ...p, ...extra } : p)) });

  it.each([
    ["a listen port other than 179", { ...base, global: { ...base.global, listenPort: 1179 } }, /listen port 1179/],
    ["listen addresses", { ...base, global: { ...base.global, listenAddresses: ["198.51.100.1"] } }, /listen addresses 198\.51\.100\.1/],
    ["two cluster IDs", peer(1, { routeReflectorClusterId: "10.255.0.2" }), /one cluster ID .* 198\.51\.100\.11 "10\.255\.0\.1", 198\.51\.100\.12 "10\.255\.0\.2"/],
    ["graceful restart with some peers only", peer(0, { gracefulRestart: { restartTimeSeconds: 120 } }), /one graceful restart time/],
    ["a password with white space", peer(0, { password: "two words" }), /198\.51\.100\.11: the password is empty or contains white space/],
    ["no peers", { ...base, peers: [] }, /no peers/],
  ])("%s", (_what, speaker, message) => {
    expect(() => frrReflectorConfig(speaker, { hostname: "rr" })).toThrow(FrrConfigError);
    expect(() => frrReflectorConfig(speaker, { hostname: "rr" })).toThrow(message);
  });

  it("sets a peer's password, port, source address and an eBGP peer's ASN", () => {
    const conf = frrReflectorConfig(peer(0, { password: "s3cret", remotePort: 1179, localAddress: "198.51.100.1", asn: 65001 }), { hostname: "rr" });
    expect(conf).toContain("\n neighbor 198.51.100.11 remote-as 65001\n neighbor 198.51.100.11 port 1179\n neighbor 198.51.100.11 update-source 198.51.100.1\n neighbor 198.51.100.11 password s3cret\n");
    expect(conf).toContain("\n neighbor 198.51.100.12 remote-as internal\n");
  });
});

describe("the eBGP lab's spine (fabric ebgp)", () => {
  const s: LabSettings = { encap: "vxlan", underlay: 4, reflector: "frr", fabric: "ebgp" };
  it("peers with each worker in the worker's own ASN, passes next hops on unchanged, reflects nothing", async () => {
    const conf = await labReflectorConfig(s);
    for (const [i, w] of workers.entries()) {
      expect(conf).toContain(`\n neighbor ${underlayAddress(w, s)} remote-as ${65001 + i}\n`);
      expect(conf).toContain(`\n  neighbor ${underlayAddress(w, s)} attribute-unchanged next-hop\n`);
    }
    expect(conf).toContain("\n no bgp ebgp-requires-policy\n");
    expect(conf).not.toContain("route-reflector-client");
    expect(conf).not.toContain("cluster-id");
  });
});
