// Wire-level checks of EVPN type-5 (RFC 9136) routes against real daemons: what kvrf's converters
// send is taken and listed back by gobgpd 4.8 and 3.10 (and its wire NLRI has the right length),
// and the upstream behaviours kvrf works around, pinned so that an upstream change shows up here:
//  - a type-5 NLRI without `esi` crashes gobgpd (pkg/apiutil/attribute.go unmarshalESI reads
//    `a.Type` of a nil message: attribute.go:554 via UnmarshalNLRI :1930 in 4.8, :530 via :1175 in
//    3.10), from any API client, in the gRPC handler goroutine, which nothing recovers;
//  - an empty `gw_address` is refused by 4.8 (netip.ParseAddr("")), taken as zero by 3.10;
//  - a gateway of the other family than the prefix is taken by 4.8 and serialized as is: the NLRI
//    length octet says 34 and 46 bytes follow (a malformed UPDATE for every peer).
// kvrf therefore always sends ESI type 0 with 9 zero octets and the gateway 0.0.0.0 or :: of the
// prefix's family (reconciler/gobgp/convert.ts evpnZeroEsi, evpnNoGateway).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as a3 from "../../proto/gen/apipb/attribute_pb.js";
import * as g3 from "../../proto/gen/apipb/gobgp_pb.js";
import { TableType, type PathSchema } from "../../proto/gen/api/gobgp_pb.js";
import { localEvpnPathToV3 } from "../../reconciler/gobgp/convert-v3.js";
import { localEvpnPathToV4 } from "../../reconciler/gobgp/convert-v4.js";
import type { Vrf, VxlanLocalPath } from "../../reconciler/gobgp/speaker.js";
import { createUnixGrpcTransport } from "../../shared/gobgp/transport.js";
import * as v3 from "../../shared/gobgp/v3.js";
import * as v4 from "../../shared/gobgp/v4.js";
import { collect, grpcError } from "../harness/grpc.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { testEnvDir, tool } from "../harness/tools.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";
const evpn = { afi: 25, safi: 70 };
const rt = (n: number) => ({ type: 0 as const, asn: 65000, assigned: n });
const vrf: Vrf = { name: "vpc-a", id: 100, rd: rt(10), importRts: [rt(10)], exportRts: [rt(10)] };
const lp4: VxlanLocalPath = { vrf: "vpc-a", prefix: "10.1.0.0/24", nextHop: "192.0.2.2", encap: "vxlan", vni: 10010, routerMac: "02:00:5e:10:00:0a" };
const lp6: VxlanLocalPath = { vrf: "vpc-a", prefix: "fd10::/64", nextHop: "2001:db8::2", encap: "vxlan", vni: 16777215, routerMac: "02:00:5e:10:00:0a" };



/** gobgpd daemons started by a describe block, stopped afterwards; each in its own directory. */
function daemons(name: string) {
  const started: { d: Gobgpd; dir: string }[] = [];
  afterAll(async () => {
    for (const { d, dir } of started) {
      await d.stop();
      if (!keepDirs) rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
  return async (binary: string): Promise<Gobgpd> => {
    const root = path.join(testEnvDir, "run");
    mkdirSync(root, { recursive: true });
    const dir = mkdtempSync(path.join(root, `${name}-`));
    const d = await startGobgpd({ binary, dir });
    started.push({ d, dir });
    return d;
  };
}

/** Expects `d` to die of a nil dereference in unmarshalESI (its log names `line`). */
async function expectEsiCrash(d: Gobgpd, call: Promise<unknown>, line: RegExp): Promise<void> {
  const err = await grpcError(call);
  // The stream breaks when the process dies (Canceled or Unavailable, by timing).
  expect(err.message).toMatch(/CANCEL|ECONNRESET|ECONNREFUSED|closed|unavailable|canceled/i);
  expect(await d.exited).toBe(2);
  const log = readFileSync(d.logFile, "utf8");
  expect(log).toMatch(/panic: runtime error: invalid memory address or nil pointer dereference/);
  expect(log).toMatch(/apiutil\.unmarshalESI/);
  expect(log).toMatch(line);
}

describe("EVPN type 5 on gobgpd 4.8 (package api)", () => {
  const start = daemons("evpn-api-v4");
  let client: v4.GoBgpV4Client;
  let d: Gobgpd;

  beforeAll(async () => {
    d = await start(tool("gobgpd4"));
    client = v4.createClient(v4.GoBgpService, createUnixGrpcTransport(d.socket));
    await client.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
  });

  afterEach(() => {
    expect(d.pid > 0 && !readFileSync(d.logFile, "utf8").includes("panic:")).toBe(true);
  });

  const list = async () =>
    (await collect(client.listPath({ tableType: TableType.GLOBAL, family: evpn, enableNlriBinary: true }))).flatMap((r) => (r.destination ? [r.destination] : []));

  it("takes kvrf's type-5 routes (IPv4 and IPv6 prefixes and VTEPs) and lists them back field for field; wire NLRIs of 34 and 58 bytes", async () => {
    await client.addPath({ tableType: TableType.GLOBAL, path: localEvpnPathToV4(vrf, lp4) });
    await client.addPath({ tableType: TableType.GLOBAL, path: localEvpnPathToV4(vrf, lp6) });
    const dests = await list();
    expect(dests.map((x) => x.prefix).sort()).toEqual(["[type:Prefix][rd:65000:10][etag:0][prefix:10.1.0.0/24]", "[type:Prefix][rd:65000:10][etag:0][prefix:fd10::/64]"]);
    const p4 = dests.find((x) => x.prefix.endsWith("10.1.0.0/24]"))?.paths[0];
    expect(p4?.nlri?.nlri).toMatchObject({
      case: "evpnIpPrefix",
      value: { rd: { rd: { case: "twoOctetAsn", value: { admin: 65000, assigned: 10 } } }, esi: { type: 0, value: new Uint8Array(9) }, ethernetTag: 0, ipPrefix: "10.1.0.0", ipPrefixLen: 24, gwAddress: "0.0.0.0", label: 10010 },
    });
    // Route type 5, length 34 (RD 8, ESI 10, tag 4, prefix length 1, prefix 4, gateway 4, label 3).
    expect(Buffer.from(p4?.nlriBinary ?? []).toString("hex")).toBe("0522" + "0000fde80000000a" + "00".repeat(10) + "00000000" + "18" + "0a010000" + "00000000" + "00271a");
    const attrs = p4?.pattrs.map((a) => a.attr) ?? [];
    expect(attrs.find((a) => a.case === "mpReach")?.value).toMatchObject({ family: evpn, nextHops: ["192.0.2.2"] });
    const ec = attrs.find((a) => a.case === "extendedCommunities");
    expect(ec?.case === "extendedCommunities" ? ec.value.communities.map((c) => c.extcom) : []).toMatchObject([
      { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 10 } },
      { case: "encap", value: { tunnelType: 8 } },
      { case: "routerMac", value: { mac: "02:00:5e:10:00:0a" } },
    ]);
    const p6 = dests.find((x) => x.prefix.endsWith("fd10::/64]"))?.paths[0];
    expect(p6?.nlri?.nlri).toMatchObject({ case: "evpnIpPrefix", value: { ipPrefix: "fd10::", ipPrefixLen: 64, gwAddress: "::", label: 16777215 } });
    expect(p6?.nlriBinary.length).toBe(2 + 58);
    expect(p6?.pattrs.map((a) => a.attr).find((a) => a.case === "mpReach")?.value).toMatchObject({ nextHops: ["2001:db8::2"] });
    await client.deletePath({ tableType: TableType.GLOBAL, family: evpn, path: localEvpnPathToV4(vrf, lp4, true) });
    await client.deletePath({ tableType: TableType.GLOBAL, family: evpn, path: localEvpnPathToV4(vrf, lp6, true) });
    expect(await list()).toEqual([]);
  });

  /** kvrf's IPv4 path (RD 65000:11) with its NLRI (in the NLRI and in MP_REACH) changed. */
  const withNlri = (change: (n: { gwAddress?: string; esi?: unknown }) => void): MessageInitShape<typeof PathSchema> => {
    const p = localEvpnPathToV4({ ...vrf, rd: rt(11) }, lp4);
    const n = p.nlri?.nlri;
    if (n?.case !== "evpnIpPrefix" || n.value === undefined) throw new Error("not an EVPN NLRI");
    change(n.value);
    return p;
  };

  it("refuses an empty gw_address (netip.ParseAddr), and stays up", async () => {
    const err = await grpcError(client.addPath({ tableType: TableType.GLOBAL, path: withNlri((n) => (n.gwAddress = "")) }));
    expect(err.rawMessage).toMatch(/invalid path: invalid nlri: ParseAddr\(""\): unable to parse IP/);
    expect((await client.getBgp({})).global?.asn).toBe(65000);
  });

  it("takes an IPv6 gateway in an IPv4 route and serializes it as is: length 34, 46 bytes follow", async () => {
    await client.addPath({ tableType: TableType.GLOBAL, path: withNlri((n) => (n.gwAddress = "::")) });
    const p = (await list()).find((x) => x.prefix.includes("rd:65000:11"))?.paths[0];
    expect(Buffer.from(p?.nlriBinary ?? []).subarray(0, 2).toString("hex")).toBe("0522");
    expect(p?.nlriBinary.length).toBe(2 + 46);
    await client.deletePath({ tableType: TableType.GLOBAL, family: evpn, path: withNlri((n) => (n.gwAddress = "::")) });
  });

  it("crashes on a type-5 NLRI without esi (nil dereference in unmarshalESI, attribute.go:554)", async () => {
    const victim = await start(tool("gobgpd4"));
    const c = v4.createClient(v4.GoBgpService, createUnixGrpcTransport(victim.socket));
    await c.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
    await expectEsiCrash(victim, c.addPath({ tableType: TableType.GLOBAL, path: withNlri((n) => delete n.esi) }), /gobgp\/v4@v4\.8\.0\/pkg\/apiutil\/attribute\.go:554[\s\S]*attribute\.go:1930/);
  });
});

describe("EVPN type 5 on gobgpd 3.10 (package apipb)", () => {
  const start = daemons("evpn-api-v3");
  let client: v3.GoBgpV3Client;
  let d: Gobgpd;
  const rd2 = (admin: number, assigned: number) => anyPack(a3.RouteDistinguisherTwoOctetASNSchema, create(a3.RouteDistinguisherTwoOctetASNSchema, { admin, assigned }));

  beforeAll(async () => {
    d = await start(tool("gobgpd3"));
    client = v3.createClient(v3.GobgpApi, createUnixGrpcTransport(d.socket));
    await client.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
  });

  afterEach(() => {
    expect(readFileSync(d.logFile, "utf8")).not.toMatch(/panic:/);
  });

  const list = async () =>
    (await collect(client.listPath({ tableType: g3.TableType.GLOBAL, family: evpn, enableNlriBinary: true }))).flatMap((r) => (r.destination ? [r.destination] : []));

  /** A type-5 path of RD 65000:`rd` (Any-packed), with the given gateway, without an ESI if so told. */
  const path = (rd: number, over: { gwAddress?: string; noEsi?: boolean }) => {
    const fields = create(a3.EVPNIPPrefixRouteSchema, { rd: rd2(65000, rd), esi: { type: 0, value: new Uint8Array(9) }, ipPrefix: "10.3.0.0", ipPrefixLen: 16, gwAddress: over.gwAddress ?? "0.0.0.0", label: 30030 });
    if (over.noEsi === true) fields.esi = undefined;
    const n = anyPack(a3.EVPNIPPrefixRouteSchema, fields);
    return {
      family: evpn,
      nlri: n,
      pattrs: [
        anyPack(a3.OriginAttributeSchema, create(a3.OriginAttributeSchema, { origin: 0 })),
        anyPack(a3.MpReachNLRIAttributeSchema, create(a3.MpReachNLRIAttributeSchema, { family: evpn, nextHops: ["192.0.2.3"], nlris: [n] })),
      ],
    };
  };

  it("takes kvrf's type-5 routes (IPv4 and IPv6) and lists them back field for field; wire NLRIs of 34 and 58 bytes", async () => {
    await client.addPath({ tableType: g3.TableType.GLOBAL, path: localEvpnPathToV3(vrf, lp4) });
    await client.addPath({ tableType: g3.TableType.GLOBAL, path: localEvpnPathToV3(vrf, lp6) });
    const dests = await list();
    const p4 = dests.find((x) => x.prefix.endsWith("10.1.0.0/24]"))?.paths[0];
    const n4 = p4?.nlri && anyUnpack(p4.nlri, a3.EVPNIPPrefixRouteSchema);
    expect(n4).toMatchObject({ esi: { type: 0, value: new Uint8Array(9) }, ethernetTag: 0, ipPrefix: "10.1.0.0", ipPrefixLen: 24, gwAddress: "0.0.0.0", label: 10010 });
    expect(n4?.rd && anyUnpack(n4.rd, a3.RouteDistinguisherTwoOctetASNSchema)).toMatchObject({ admin: 65000, assigned: 10 });
    expect(Buffer.from(p4?.nlriBinary ?? []).toString("hex")).toBe("0522" + "0000fde80000000a" + "00".repeat(10) + "00000000" + "18" + "0a010000" + "00000000" + "00271a");
    const ec = p4?.pattrs.map((a) => anyUnpack(a, v3.registry)).find((a) => a?.$typeName === "apipb.ExtendedCommunitiesAttribute") as a3.ExtendedCommunitiesAttribute | undefined;
    expect(ec?.communities.map((c) => anyUnpack(c, v3.registry))).toMatchObject([
      { $typeName: "apipb.TwoOctetAsSpecificExtended", subType: 2, asn: 65000, localAdmin: 10 },
      { $typeName: "apipb.EncapExtended", tunnelType: 8 },
      { $typeName: "apipb.RouterMacExtended", mac: "02:00:5e:10:00:0a" },
    ]);
    const p6 = dests.find((x) => x.prefix.endsWith("fd10::/64]"))?.paths[0];
    expect(p6?.nlri && anyUnpack(p6.nlri, a3.EVPNIPPrefixRouteSchema)).toMatchObject({ ipPrefix: "fd10::", gwAddress: "::", label: 16777215 });
    expect(p6?.nlriBinary.length).toBe(2 + 58);
    await client.deletePath({ tableType: g3.TableType.GLOBAL, family: evpn, path: localEvpnPathToV3(vrf, lp4, true) });
    await client.deletePath({ tableType: g3.TableType.GLOBAL, family: evpn, path: localEvpnPathToV3(vrf, lp6, true) });
    expect(await list()).toEqual([]);
  });

  it("takes an empty gw_address as zero", async () => {
    await client.addPath({ tableType: g3.TableType.GLOBAL, path: path(31, { gwAddress: "" }) });
    const p = (await list()).find((x) => x.prefix.includes("rd:65000:31"))?.paths[0];
    expect(Buffer.from(p?.nlriBinary ?? []).subarray(0, 2).toString("hex")).toBe("0522");
    expect(p?.nlriBinary.length).toBe(2 + 34);
    await client.deletePath({ tableType: g3.TableType.GLOBAL, family: evpn, path: path(31, { gwAddress: "" }) });
  });

  it("crashes on a type-5 NLRI without esi (nil dereference in unmarshalESI, attribute.go:530)", async () => {
    const victim = await start(tool("gobgpd3"));
    const c = v3.createClient(v3.GobgpApi, createUnixGrpcTransport(victim.socket));
    await c.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
    await expectEsiCrash(victim, c.addPath({ tableType: g3.TableType.GLOBAL, path: path(32, { noEsi: true }) }), /pkg\/apiutil\/attribute\.go:530[\s\S]*attribute\.go:1175/);
  });
});
