// FRR 8.4 as an SRv6 gateway PE of VPC a1 (docs/interop.md "FRR as an SRv6 gateway PE"), in the
// SRv6 lab over the IPv6 underlay, with kernel VRF devices everywhere (so it runs in the vm tier):
//
//   pods of a1/b1 on iad, sjc ── fabric (fd00:ff::/64) ── FRR pe1 (fd00:ff::50, locator fd00:0:50::/64)
//                                                           VRF vrf-a1 (table 161) ── gw0 ── host
//                                                                                     10.99.0.2, fd99::2,
//                                                                                     203.0.113.1, 2001:db8:99::1 on lo
//
// FRR (zebra + bgpd + staticd) is a route-reflector client of the lab's gobgpd reflector. Its VRF
// has static defaults (0.0.0.0/0, ::/0) to the host and the connected 10.99.0.0/24 and fd99::/64,
// exported as VPNv4/VPNv6 with VPC a1's route target and per-family SIDs from its locator (FRR
// 8.4 sends them transposed: the locator in the TLV, the function in the label), and it imports
// VPC a1's routes. The test checks the control plane on both sides (kvrfd's tables hold FRR's
// decoded SIDs in VPC a1 only; FRR holds kvrf's pods with kvrf's SIDs as remoteSid, and installs
// them), traffic both ways (a pod of a1 reaches the host over the specific prefix and over the
// defaults; the pod of b1 with the same address does not), and a withdrawal of the defaults, also
// on a node whose kvrfd restarted after it had installed them.
import { afterAll, beforeAll, expect, it } from "vitest";
import path from "node:path";
import { attachPod, down, echoRequestsIn, kubectlKvrf, labDir, ping, routesProgrammed, startKvrfd, stopKvrfd, up, type AttachedPod } from "../../scripts/netns-lab/lab.js";
import { addHostBehind, addReflectorClient, addVrf, gatewayFrrConfig, gatewayHost, joinFabric, leaveFabric, routeLocators } from "../../scripts/netns-lab/gateway.js";
import { demoPods, labNodes, nodeNetns, nsPrefix, type LabSettings } from "../../scripts/netns-lab/topology.js";
import { cniNeeds, kvrfdNeeds } from "../../shared/kernel/capabilities.js";
import { canonicalIpv6 } from "../../reconciler/vrf/desired.js";
import { frrVpnPaths, frrVrfSids, startFrr, type Frr } from "../harness/frr.js";
import { ip } from "../harness/netns.js";
import { describeNeeds } from "../harness/needs.js";
import { waitFor } from "../harness/process.js";

const lab: LabSettings = { encap: "srv6", underlay: 6, mode: "vrf" };
const pe = { netns: `${nsPrefix}frr`, address: "fd00:ff::50" };
const locator = "fd00:0:50::/64";
const frrVrf = "vrf-a1";
const table = 0xa1;
/** The host behind the PE: addresses on its link (the specific prefix) and only behind the defaults. */
const host = gatewayHost(`${nsPrefix}gwhost`);
const log = (s: string): void => void process.stderr.write(`[lab/frr-srv6-gw] ${s}\n`);

interface IpRoute {
  dst: string;
  type?: string;
  encap?: string;
  segs?: string[];
  protocol?: string;
}

/** Routes of one family in a namespace's table (optionally one protocol), as `ip -j` prints them. */
async function routes(netns: string, family: 4 | 6, t: number, proto?: number): Promise<IpRoute[]> {
  const out = await ip("-n", netns, `-${family}`, "-j", "route", "show", "table", String(t), ...(proto !== undefined ? ["proto", String(proto)] : [])).catch(() => "[]");
  return out.trim() === "" ? [] : (JSON.parse(out) as IpRoute[]);
}

/** kvrfd's SRv6 routes in a node's VPC table: "prefix SID" per line, the family named for defaults. */
async function kvrfdRoutes(node: string, t: number): Promise<string[]> {
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    for (const r of await routes(nodeNetns(node), family, t, 241)) {
      if (r.type === "throw") continue;
      const dst = r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : r.dst;
      out.push(`${dst} ${canonicalIpv6(r.segs?.[0]) ?? "-"}`);
    }
  }
  return out.sort();
}

/** ICMP echo requests the host behind the PE has received, per family. */
const hostEchoes = (): Promise<{ v4: number; v6: number }> => echoRequestsIn(host.netns);

const frrConfig = (): string => {
  const vpnAf = (afi: "ipv4" | "ipv6"): string[] => [` address-family ${afi} vpn`, "  neighbor fd00:ff::1 activate", " exit-address-family"];
  return gatewayFrrConfig({
    vrf: frrVrf,
    host,
    reflector: "fd00:ff::1",
    preamble: ["segment-routing", " srv6", "  locators", "   locator pe1", `    prefix ${locator}`, "!"],
    sessionLines: [
      // VPNv4 routes with the IPv6 session address as next hop (RFC 8950), not the router ID.
      " neighbor fd00:ff::1 capability extended-nexthop",
      ...vpnAf("ipv4"),
      ...vpnAf("ipv6"),
      " segment-routing srv6",
      "  locator pe1",
    ],
    vrfFamilyLines: [
      // One SID per family from the locator (8.4 has End.DT4/End.DT6; End.DT46 per VRF came in 8.5).
      "  sid vpn export auto",
      "  rd vpn export 65000:9161",
      // VPC a1's route target (docs/fabric.md: <routeTargetASN>:uint32(vpc)), both ways.
      "  rt vpn both 65000:161",
      "  export vpn",
      "  import vpn",
    ],
  });
};

describeNeeds([...cniNeeds("vrf", "srv6"), ...kvrfdNeeds("srv6", 6)], "FRR 8.4 as an SRv6 gateway PE of a VPC (VRF devices, IPv6 underlay)", () => {
  let frr: Frr | undefined;
  const pods = new Map<string, AttachedPod>();
  const pod = (name: string): AttachedPod => {
    const p = pods.get(name);
    if (p === undefined) throw new Error(`no pod ${name}`);
    return p;
  };
  const inPe = (...args: string[]): Promise<string> => ip("-n", pe.netns, ...args);
  let sids: { ipv4: string; ipv6: string } = { ipv4: "", ipv6: "" };

  const routesMessage = (node: string): Promise<{ status: string; message: string }> => routesProgrammed(node, "a1");
  /** What FRR and the kernels show, for a failure's message. */
  const evidence = async (): Promise<string> => {
    const f = frr as Frr;
    const parts = await Promise.all([
      f.vtysh("show bgp ipv4 vpn").catch(String),
      f.vtysh("show bgp ipv6 vpn").catch(String),
      f.vtysh(`show ip route vrf ${frrVrf}`).catch(String),
      inPe("route", "show", "table", String(table)).catch(String),
      inPe("-6", "route", "show", "table", "all").catch(String),
      hostEchoes().then((e) => `echo requests at the host behind FRR: ${JSON.stringify(e)}`, String),
      kvrfdRoutes("iad", table).then((r) => r.join("\n")),
      routesMessage("iad").then((m) => `${m.status} ${m.message}`, String),
    ]);
    return parts.join("\n----\n");
  };

  beforeAll(async () => {
    await up(log, lab);
    for (const p of demoPods.filter((d) => ["a1-iad-1", "a1-sjc", "b1-iad"].includes(d.name))) pods.set(p.name, await attachPod(p));

    await joinFabric(pe);
    await routeLocators(pe, locator);
    // zebra installs the IPv4 SID as End.DT4 with vrftable, which needs strict mode (FACTS §7) in this namespace.
    await ip("netns", "exec", pe.netns, "sysctl", "-qw", "net.vrf.strict_mode=1");
    await addVrf(pe, frrVrf, table);
    // The host behind the PE: a veth into VPC a1's VRF, addresses beyond it reached only by the defaults.
    await addHostBehind(pe, frrVrf, host);

    // Linux looks the outer IPv6 header of a packet FRR encapsulates from the VRF up in the VRF's
    // table again (the packet still arrives on gw0), where ::/0 leads back to the host: the fabric's
    // locators must leave that table (kvrf's throw routes for remote SIDs, planner.ts, do the same).
    for (const w of labNodes) if (w.locator !== undefined) await inPe("-6", "route", "add", "throw", w.locator, "table", String(table));
    frr = await startFrr({ name: "kvrf-lab-pe1", netns: pe.netns, dir: path.join(labDir, "frr"), daemons: ["zebra", "bgpd", "staticd"], config: frrConfig() });
    await addReflectorClient(lab, pe.address);
    await waitFor(
      "FRR's session with the route reflector",
      async () => (await (frr as Frr).json<Record<string, { bgpState?: string }>>("show bgp neighbors fd00:ff::1 json"))["fd00:ff::1"]?.bgpState === "Established",
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await waitFor(
      "FRR's VRF SIDs",
      async () => {
        const s = frrVrfSids(await (frr as Frr).vtysh("show bgp segment-routing srv6"), frrVrf);
        if (s.ipv4 === undefined || s.ipv6 === undefined) return false;
        sids = { ipv4: canonicalIpv6(s.ipv4) ?? s.ipv4, ipv6: canonicalIpv6(s.ipv6) ?? s.ipv6 };
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    log(`FRR's SIDs: IPv4 ${sids.ipv4}, IPv6 ${sids.ipv6}`);
  });

  afterAll(async () => {
    await frr?.stop();
    await leaveFabric(host.netns);
    await leaveFabric(pe.netns);
    await down(log);
  });

  const gatewayRoutes = (): string[] => [`0.0.0.0/0 ${sids.ipv4}`, `10.99.0.0/24 ${sids.ipv4}`, `::/0 ${sids.ipv6}`, `fd99::/64 ${sids.ipv6}`].sort();
  const fromPe = (rs: string[]): string[] => rs.filter((r) => [sids.ipv4, sids.ipv6].includes(r.split(" ")[1] ?? "") || /^(0\.0\.0\.0\/0|::\/0|10\.99\.|fd99:)/.test(r));

  it("FRR allocates one SID per family from its locator and sends it transposed", async () => {
    expect(sids.ipv4).toMatch(/^fd00:0:50:0:[0-9a-f]+::$/);
    expect(sids.ipv6).toMatch(/^fd00:0:50:0:[0-9a-f]+::$/);
    expect(sids.ipv4).not.toBe(sids.ipv6);
    // Its own table: the locator as the SID, the function bits in the label.
    const own = await (frr as Frr).vtysh("show bgp ipv4 vpn");
    expect(own).toMatch(/0\.0\.0\.0\/0[\s\S]*?EC\{65000:161\} label=\d+ sid=fd00:0:50:: sid_structure=\[40,24,16,0\]/);
  });

  it("kvrfd imports FRR's defaults and its prefix into VPC a1's table with FRR's decoded SIDs, and into no other", async () => {
    for (const node of ["iad", "sjc"]) {
      const probe = async (): Promise<boolean> => {
        const have = await kvrfdRoutes(node, table);
        return gatewayRoutes().every((r) => have.includes(r));
      };
      await waitFor(`FRR's routes in ${node}'s VPC a1 table`, probe, { timeoutMs: 60_000, intervalMs: 500 }).catch(async (err: unknown) => {
        throw new Error(`${String(err)}\n${await evidence()}`, { cause: err });
      });
      expect(fromPe(await kvrfdRoutes(node, table))).toEqual(gatewayRoutes());
      expect(fromPe(await kvrfdRoutes(node, 0xb1))).toEqual([]);
      expect(await routesMessage(node)).toMatchObject({ status: "True" });
    }
  });

  it("FRR holds kvrf's pod routes with kvrf's SIDs and installs them in its VRF, VPC a1's only", async () => {
    const f = frr as Frr;
    // kvrf's SIDs for a1-iad-1, as sjc's kvrfd installed them (ip -j prints host routes without a length).
    const sidOf = async (address: string): Promise<string | undefined> => (await kvrfdRoutes("sjc", table)).find((r) => r.startsWith(`${address} `))?.split(" ")[1];
    const a1 = pod("a1-iad-1");
    const sid4 = await sidOf(a1.ipv4);
    const sid6 = await sidOf(a1.ipv6);
    expect(sid4).toMatch(/^fd00:0:11:/);
    for (const [family, prefix, sid] of [["ipv4", `${a1.ipv4}/32`, sid4], ["ipv6", `${a1.ipv6}/128`, sid6]] as const) {
      await waitFor(`kvrf's ${prefix} in FRR`, async () => (await frrVpnPaths(f, family, "65000:161", prefix)).length > 0, { timeoutMs: 60_000, intervalMs: 500 });
      const [p] = await frrVpnPaths(f, family, "65000:161", prefix);
      expect(canonicalIpv6(p?.remoteSid)).toBe(sid);
      expect(p?.valid).toBe(true);
    }
    // Installed in VRF vrf-a1's kernel table, encapsulated to kvrf's SID; b1-iad's copy of the
    // address (VPC b1's route target) is not imported.
    await waitFor("FRR's kernel route to a1-iad-1", async () => (await routes(pe.netns, 4, table)).some((r) => r.dst === a1.ipv4 && r.encap === "seg6"), { timeoutMs: 30_000, intervalMs: 500 });
    log(`FRR's VRF:\n${await f.vtysh(`show ip route vrf ${frrVrf}`)}\n${await inPe("route", "show", "table", String(table))}`);
    const r4 = (await routes(pe.netns, 4, table)).filter((r) => r.dst === a1.ipv4);
    expect(r4.map((r) => canonicalIpv6(r.segs?.[0]))).toEqual([sid4]);
    // One path in the VRF: b1-iad's route for the same address is VPC b1's, not imported here.
    const inVrf = await f.json<{ paths?: unknown[] }>(`show bgp vrf ${frrVrf} ipv4 unicast ${a1.ipv4}/32 json`);
    expect(inVrf.paths).toHaveLength(1);
  });

  it("a pod of VPC a1 reaches the host behind FRR, over its prefix and over the defaults, both families; VPC b1's pod with the same address does not", async () => {
    const a1 = pod("a1-iad-1");
    for (const to of [host.link4, host.far4, host.link6, host.far6]) {
      await waitFor(`a1-iad-1 → ${to}`, () => ping(a1, to), { timeoutMs: 30_000, intervalMs: 500 }).catch(async (err: unknown) => {
        throw new Error(`${String(err)}\n${await evidence()}`, { cause: err });
      });
      expect(await ping(pod("a1-sjc"), to)).toBe(true);
    }
    const b1 = pod("b1-iad");
    expect(b1.ipv4).toBe(a1.ipv4);
    const before = await hostEchoes();
    for (const to of [host.link4, host.far4, host.link6, host.far6]) expect(await ping(b1, to)).toBe(false);
    expect(await hostEchoes()).toEqual(before);
  });

  it("kubectl kvrf diff explains the gateway's routes by gobgpd's paths (no drift), and trace follows the default to FRR", async () => {
    const diff = await kubectlKvrf(["diff", "--node", "iad"]);
    log(`kubectl kvrf diff --node iad:\n${diff.stdout}`);
    expect(diff.stdout).toMatch(/^a1\s+gateway\s+0\.0\.0\.0\/0\s+fd00:ff::50\s/m);
    expect(diff.stdout).toMatch(/^a1\s+gateway\s+::\/0\s+fd00:ff::50\s/m);
    expect(diff.stdout).toContain("iad: no drift");
    expect(diff.code).toBe(0);
    // A packet to what only the default leads to: the default (not the plugin's unreachable one)
    // sends it to FRR, where the trace ends.
    const trace = await kubectlKvrf(["trace", pod("a1-iad-1").ipv4, host.far4, "--vpc", "a1"]);
    log(`kubectl kvrf trace:\n${trace.stdout}${trace.stderr}`);
    expect(trace.stdout).toContain(`table 161: 0.0.0.0/0 seg6 ${sids.ipv4} (proto 241)`);
    expect(trace.stdout).toContain(`SRv6 to SID ${sids.ipv4}: gateway ${pe.address} outside the cluster (its route 0.0.0.0/0, RD 65000:9161)`);
    expect(trace.code).toBe(0);
  });

  it("withdrawn defaults leave every node's table, also where kvrfd restarted after installing them", async () => {
    const sjc = labNodes.find((n) => n.name === "sjc");
    if (sjc === undefined) throw new Error("no sjc");
    // A restarted kvrfd reads its routes back from the kernel (the defaults among them) ...
    await stopKvrfd("sjc");
    await startKvrfd(sjc);
    await waitFor("sjc's kvrfd programs VPC a1 again", async () => (await routesMessage("sjc")).status === "True", { timeoutMs: 60_000, intervalMs: 500 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(await routesMessage("sjc"))}`, { cause: err });
    });
    expect(fromPe(await kvrfdRoutes("sjc", table))).toEqual(gatewayRoutes());
    // ... and still owns them: the PE withdraws its defaults, the specific prefixes stay.
    await (frr as Frr).vtysh("configure terminal", `vrf ${frrVrf}`, `no ip route 0.0.0.0/0 ${host.link4}`, `no ipv6 route ::/0 ${host.link6}`);
    const left = gatewayRoutes().filter((r) => !r.startsWith("0.0.0.0/0 ") && !r.startsWith("::/0 "));
    for (const node of ["iad", "sjc"]) {
      await waitFor(`the defaults to leave ${node}'s VPC a1 table`, async () => JSON.stringify(fromPe(await kvrfdRoutes(node, table))) === JSON.stringify(left), { timeoutMs: 60_000, intervalMs: 500 }).catch(
        async (err: unknown) => {
          throw new Error(`${String(err)}; ${node}'s table: ${JSON.stringify(await kvrfdRoutes(node, table))}; ${JSON.stringify(await routesMessage(node))}`, { cause: err });
        },
      );
      expect(await routesMessage(node)).toMatchObject({ status: "True" });
    }
    // Traffic follows: the host's link is still reachable, what only the defaults led to is not.
    expect(await ping(pod("a1-sjc"), host.link4)).toBe(true);
    expect(await ping(pod("a1-sjc"), host.far4)).toBe(false);
  });
});
