// FRR 8.4 as a VXLAN/EVPN gateway PE of VPC a1 (docs/interop.md "FRR as an EVPN gateway PE"), in
// the VXLAN lab over the IPv4 underlay, with FRR's own EVPN data plane (a VRF device, an L3 VNI on
// a bridge), so it runs in the vm tier:
//
//   pods of a1/b1 on iad, sjc ── fabric (198.51.100.0/24) ── FRR pe1 (VTEP 198.51.100.50)
//                                 vx161 in br161 (router MAC) in VRF vrf-a1 (table 161, vni 161) ── gw0 ── host
//                                                                                        10.99.0.2, fd99::2,
//                                                                                        203.0.113.1, 2001:db8:99::1 on lo
//
// FRR (zebra + bgpd + staticd) is a route-reflector client of the lab's gobgpd reflector. Its VRF
// has static defaults (0.0.0.0/0, ::/0) to the host and the connected 10.99.0.0/24 and fd99::/64,
// advertised as EVPN type-5 routes (`advertise ipv4|ipv6 unicast`) with VPC a1's route target and
// VNI, and it imports VPC a1's type-5 routes into the VRF and installs them itself (zebra: route
// via the VTEP on the bridge, neighbour = the node's router MAC, FDB entry on the VXLAN device).
// The test checks what FRR sends, kvrfd's tables (FRR's routes in VPC a1's only), FRR's tables and
// kernel, traffic (a pod of a1 reaches the host over the prefix and the defaults, both families; the
// pod of b1 with the same address does not), and a withdrawal of the defaults.
import { afterAll, beforeAll, expect, it } from "vitest";
import path from "node:path";
import { attachPod, down, echoRequestsIn, kernelRoutes, labDir, ping, routesProgrammed, up, type AttachedPod } from "../../scripts/netns-lab/lab.js";
import { addHostBehind, addL3Vni, addReflectorClient, addVrf, gatewayFrrConfig, gatewayHost, joinFabric, leaveFabric } from "../../scripts/netns-lab/gateway.js";
import { demoPods, labNodes, nsPrefix, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { routerMac } from "../../shared/router-mac.js";
import { frrPaths, startFrr, type Frr, type FrrEvpnTable } from "../harness/frr.js";
import { ip } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";
import { waitFor } from "../harness/process.js";

const lab: LabSettings = { encap: "vxlan", underlay: 4 };
// IPv4 only on the fabric: FRR 8.4's EVPN data plane takes IPv4 VTEPs only (FACTS §9).
const pe = { netns: `${nsPrefix}frr`, address4: "198.51.100.50" };
const reflector = "198.51.100.1";
const frrVrf = "vrf-a1";
/** VPC a1's table, and its VNI: kvrf's is uint32(vpc) truncated to 24 bits, 0xa1 (docs/fabric.md). */
const table = 0xa1;
const vni = 0xa1;
const frrMac = "02:00:5e:00:99:01";
const frrRd = "65000:9161";
const host = gatewayHost(`${nsPrefix}gwhost`);
/** FRR's routes as type-5 route keys, and as prefixes in kvrfd's tables. */
const gateway = [
  { key: "[5]:[0]:[0]:[0.0.0.0]", prefix: "0.0.0.0/0", isDefault: true },
  { key: "[5]:[0]:[24]:[10.99.0.0]", prefix: "10.99.0.0/24", isDefault: false },
  { key: "[5]:[0]:[0]:[::]", prefix: "::/0", isDefault: true },
  { key: "[5]:[0]:[64]:[fd99::]", prefix: "fd99::/64", isDefault: false },
];
/** waitFor's options; waitFor stretches the deadline by timeScale itself (scripts/lib/process.ts). */
const wait = (ms: number): { timeoutMs: number; intervalMs: number } => ({ timeoutMs: ms, intervalMs: 500 });
const log = (s: string): void => void process.stderr.write(`[lab/frr-evpn-gw] ${s}\n`);

const frrConfig = (): string =>
  gatewayFrrConfig({
    vrf: frrVrf,
    host,
    reflector,
    // The L3 VNI: zebra finds its VXLAN device (vx161) and SVI (br161, in this VRF).
    vrfLines: [` vni ${vni}`],
    sessionLines: [
      " address-family l2vpn evpn",
      `  neighbor ${reflector} activate`,
      // zebra tells bgpd about VNIs (the L3 VNI included) only with this.
      "  advertise-all-vni",
      " exit-address-family",
    ],
    vrfInstanceLines: [
      " address-family l2vpn evpn",
      `  rd ${frrRd}`,
      // VPC a1's route target (docs/fabric.md: <routeTargetASN>:uint32(vpc)), both ways.
      "  route-target import 65000:161",
      "  route-target export 65000:161",
      // The VRF's unicast routes as type-5 routes, per family.
      "  advertise ipv4 unicast",
      "  advertise ipv6 unicast",
      " exit-address-family",
    ],
  });

describeNeeds([...cniNeeds("policy-routing", "vxlan"), ...kvrfdNeeds("vxlan", 4), "vrf"], "FRR 8.4 as an EVPN gateway PE of a VPC (VRF device, L3 VNI, IPv4 underlay)", () => {
  let frr: Frr | undefined;
  const attached: AttachedPod[] = [];
  const byName = (name: string): AttachedPod => {
    const found = attached.find((p) => p.name === name);
    if (found === undefined) throw new Error(`pod ${name} is not attached`);
    return found;
  };
  const inPe = (...args: string[]): Promise<string> => ip("-n", pe.netns, ...args);
  const evpnTable = (): Promise<FrrEvpnTable> => (frr as Frr).json<FrrEvpnTable>("show bgp l2vpn evpn route detail type prefix json");
  /** Prefixes of FRR's routes in a node's table, with kvrfd's next hop. */
  const fromPe = async (node: string, t: number): Promise<string[]> => (await kernelRoutes(node, t)).filter((r) => /^(0\.0\.0\.0\/0|::\/0|10\.99\.|fd99:)/.test(r));
  /** What FRR and the kernels show, for a failure's message. */
  const evidence = async (): Promise<string> => {
    const shows = ["show bgp l2vpn evpn route type prefix", "show evpn vni detail", `show ip route vrf ${frrVrf}`, `show ipv6 route vrf ${frrVrf}`];
    const kernel = [["route", "show", "table", String(table)], ["-6", "route", "show", "table", String(table)], ["neigh", "show", "dev", `br${vni}`], ["-6", "neigh", "show", "dev", `br${vni}`]];
    const parts = await Promise.all([
      ...shows.map((c) => (frr as Frr).vtysh(c).catch(String)),
      ...kernel.map((a) => inPe(...a).catch(String)),
      ip("netns", "exec", pe.netns, "bridge", "fdb", "show", "dev", `vx${vni}`).catch(String),
      echoRequestsIn(host.netns).then((e) => `echo requests at the host behind FRR: ${JSON.stringify(e)}`, String),
      kernelRoutes("iad", table).then((r) => `iad, table ${table}:\n${r.join("\n")}`, String),
      routesProgrammed("iad", "a1").then((m) => `${m.status} ${m.message}`, String),
    ]);
    return parts.join("\n----\n");
  };
  const explain = async (err: unknown): Promise<never> => {
    throw new Error(`${String(err)}\n${await evidence()}`, { cause: err });
  };

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods.filter((d) => ["a1-iad-1", "a1-sjc", "b1-iad"].includes(d.name))) attached.push(await attachPod(p));

    await joinFabric(pe);
    await addVrf(pe, frrVrf, table);
    await addL3Vni(pe, frrVrf, vni, frrMac);
    // The host behind the PE: a veth into VPC a1's VRF, addresses beyond it reached only by the defaults.
    await addHostBehind(pe, frrVrf, host);
    frr = await startFrr({ name: "kvrf-lab-pe1", netns: pe.netns, dir: path.join(labDir, "frr"), daemons: ["zebra", "bgpd", "staticd"], config: frrConfig() });
    await addReflectorClient(lab, pe.address4);
    await waitFor(
      "FRR's session with the route reflector",
      async () => (await (frr as Frr).json<Record<string, { bgpState?: string }>>(`show bgp neighbors ${reflector} json`))[reflector]?.bgpState === "Established",
      wait(60_000),
    );
    log(`FRR's L3 VNI (show vrf vni):\n${await frr.vtysh("show vrf vni")}`);
  });

  afterAll(async () => {
    await frr?.stop();
    await leaveFabric(host.netns);
    await leaveFabric(pe.netns);
    await down(log);
  });

  it("FRR advertises its VRF's defaults and prefix as type-5 routes: its RD, VPC a1's route target and VNI, its router MAC, its VTEP", async () => {
    const own = async (): Promise<boolean> => {
      const t = await evpnTable();
      return gateway.every((g) => frrPaths(t, frrRd, g.key).length > 0);
    };
    await waitFor("FRR's own type-5 routes", own, wait(60_000)).catch(explain);
    log(`FRR's type-5 routes (show bgp l2vpn evpn route rd ${frrRd}):\n${await (frr as Frr).vtysh(`show bgp l2vpn evpn route rd ${frrRd}`)}`);
    const t = await evpnTable();
    for (const g of gateway) {
      const [p] = frrPaths(t, frrRd, g.key);
      expect(p?.vni, g.key).toBe(String(vni));
      expect(p?.extendedCommunity?.string.split(" ").sort(), g.key).toEqual(["ET:8", "RT:65000:161", `Rmac:${frrMac}`]);
      expect(p?.nexthops?.map((n) => n.ip), g.key).toEqual([pe.address4]);
    }
  });

  it("kvrfd imports FRR's defaults and its prefix into VPC a1's table on the nodes of VPC a1, to FRR's VTEP, and into no other", async () => {
    for (const node of ["iad", "sjc"]) {
      const all = async (): Promise<boolean> => {
        const have = (await fromPe(node, table)).map((r) => r.split(" ")[0]);
        return gateway.every((g) => have.includes(g.prefix));
      };
      await waitFor(`FRR's routes in ${node}'s VPC a1 table`, all, wait(60_000)).catch(explain);
      const routes = await fromPe(node, table);
      log(`${node}, VPC a1 (table ${table}), FRR's routes: ${routes.join("; ")}`);
      expect(routes.map((r) => r.split(" ")[0]).sort()).toEqual(gateway.map((g) => g.prefix).sort());
      // Each to FRR's VTEP (an IPv6 prefix to its IPv4-mapped form).
      for (const r of routes) expect(r.split(" ")[1]).toMatch(new RegExp(`^(::ffff:)?${pe.address4.replaceAll(".", "\\.")}$`));
      expect(await routesProgrammed(node, "a1")).toMatchObject({ status: "True" });
    }
    expect(await fromPe("iad", 0xb1)).toEqual([]);
  });

  it("FRR imports kvrf's pod routes of VPC a1 (and only those) into its VRF and installs them in its own EVPN data plane", async () => {
    const f = frr as Frr;
    const vrfPaths = async (afi: "ipv4" | "ipv6", prefix: string): Promise<unknown[]> => (await f.json<{ paths?: unknown[] }>(`show bgp vrf ${frrVrf} ${afi} unicast ${prefix} json`)).paths ?? [];
    const key4 = `[5]:[0]:[32]:[${byName("a1-iad-1").ipv4}]`;
    await waitFor(`kvrf's ${key4} in FRR`, async () => frrPaths(await evpnTable(), "65000:161", key4).length > 0, wait(60_000)).catch(explain);
    // Both of VPC a1's pods, each from its node: exactly one path per address in the VRF (b1-iad's
    // copy of a1-iad-1's address has VPC b1's route target: an import of the wrong route target
    // would show as a1-sjc missing or a second path).
    const [neigh, fdb] = await Promise.all([inPe("neigh", "show", "dev", `br${vni}`), ip("netns", "exec", pe.netns, "bridge", "fdb", "show", "dev", `vx${vni}`)]);
    for (const [name, node] of [["a1-iad-1", "iad"], ["a1-sjc", "sjc"]] as const) {
      const a1 = byName(name);
      const vtep = labNodes.find((n) => n.name === node)?.address4 ?? "";
      for (const [afi, prefix] of [["ipv4", `${a1.ipv4}/32`], ["ipv6", `${a1.ipv6}/128`]] as const) {
        await waitFor(`${prefix} in FRR's VRF`, async () => (await vrfPaths(afi, prefix)).length > 0, wait(30_000)).catch(explain);
        expect(await vrfPaths(afi, prefix), prefix).toHaveLength(1);
      }
      // zebra's data plane: the route via the node's VTEP on the L3 VNI's bridge (IPv6 via its
      // IPv4-mapped form), the node's router MAC as that next hop's neighbour, and the FDB entry
      // that sends the MAC to the VTEP.
      const v = vtep.replaceAll(".", "\\.");
      await waitFor(`FRR's kernel route to ${a1.ipv4}`, async () => (await inPe("route", "show", "table", String(table), a1.ipv4)).includes(vtep), wait(30_000)).catch(explain);
      expect(await inPe("route", "show", "table", String(table), a1.ipv4)).toMatch(new RegExp(`via ${v} dev br${vni} .*onlink`));
      expect(await inPe("-6", "route", "show", "table", String(table), a1.ipv6)).toMatch(new RegExp(`via ::ffff:${v} dev br${vni} .*onlink`));
      expect(await inPe("neigh", "show", "dev", `br${vni}`)).toMatch(new RegExp(`^${v} lladdr ${routerMac(node)}`, "m"));
      expect(await ip("netns", "exec", pe.netns, "bridge", "fdb", "show", "dev", `vx${vni}`)).toMatch(new RegExp(`^${routerMac(node)} dst ${v} `, "m"));
    }
    log(`FRR's VRF:\n${await f.vtysh(`show ip route vrf ${frrVrf}`)}\n${await f.vtysh(`show ipv6 route vrf ${frrVrf}`)}\nneighbours and FDB (before the checks):\n${neigh}${fdb}`);
    log(`FRR's path for ${byName("a1-iad-1").ipv4}:\n${await f.vtysh(`show bgp vrf ${frrVrf} ipv4 unicast ${byName("a1-iad-1").ipv4}/32`)}`);
  });

  it("a pod of VPC a1 reaches the host behind FRR over its prefix and over the defaults, both families; VPC b1's pod with the same address does not", async () => {
    const targets = [host.link4, host.far4, host.link6, host.far6];
    for (const to of targets) {
      await waitFor(`a1-iad-1 → ${to}`, () => ping(byName("a1-iad-1"), to), wait(30_000)).catch(explain);
      expect(await ping(byName("a1-sjc"), to), `a1-sjc → ${to}`).toBe(true);
    }
    const b1 = byName("b1-iad");
    expect(b1.ipv4).toBe(byName("a1-iad-1").ipv4);
    const before = await echoRequestsIn(host.netns);
    for (const to of targets) expect(await ping(b1, to), `b1-iad → ${to}`).toBe(false);
    expect(await echoRequestsIn(host.netns)).toEqual(before);
  });

  it("withdrawn defaults leave every node's table; the prefix stays", async () => {
    await (frr as Frr).vtysh("configure terminal", `vrf ${frrVrf}`, `no ip route 0.0.0.0/0 ${host.link4}`, `no ipv6 route ::/0 ${host.link6}`);
    const left = gateway.filter((g) => !g.isDefault).map((g) => g.prefix).sort();
    for (const node of ["iad", "sjc"]) {
      const gone = async (): Promise<boolean> => JSON.stringify((await fromPe(node, table)).map((r) => r.split(" ")[0]).sort()) === JSON.stringify(left);
      await waitFor(`the defaults to leave ${node}'s VPC a1 table`, gone, wait(60_000)).catch(explain);
      expect(await routesProgrammed(node, "a1")).toMatchObject({ status: "True" });
    }
    expect(await ping(byName("a1-sjc"), host.link4)).toBe(true);
    expect(await ping(byName("a1-sjc"), host.far4)).toBe(false);
  });
});
