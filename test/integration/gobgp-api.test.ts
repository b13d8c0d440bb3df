// Wire-level checks of our hand-written GoBGP API subsets (proto/gobgp/{v4,v3}) against real daemons:
// gobgpd 4.8 (package api, typed oneofs) and gobgpd 3.10 (package apipb, google.protobuf.Any).
// Binaries come from tool("gobgpd4") / tool("gobgpd3") (.testenv/env.json or KVRF_TOOL_GOBGPD4/3).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as a3 from "../../proto/gen/apipb/attribute_pb.js";
import * as g3 from "../../proto/gen/apipb/gobgp_pb.js";
import { Family_Afi, Family_Safi } from "../../proto/gen/api/common_pb.js";
import { SRV6Behavior } from "../../proto/gen/api/attribute_pb.js";
import { TableType, type Vrf } from "../../proto/gen/api/gobgp_pb.js";
import * as v3 from "../../shared/gobgp/v3.js";
import * as v4 from "../../shared/gobgp/v4.js";
import { createUnixGrpcTransport } from "../../shared/gobgp/transport.js";
import { collect, grpcError } from "../harness/grpc.js";
import { startGobgpd, type Gobgpd } from "../harness/gobgpd.js";
import { testEnvDir, tool } from "../harness/tools.js";

const keepDirs = process.env["KVRF_KEEP_TEST_DIRS"] === "1";



/** Starts a daemon for one describe block and tears it down afterwards, even if setup failed. */
function daemon(name: string, binary: () => string): { get: () => Gobgpd } {
  let d: Gobgpd | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    // Under .testenv/run so the integration tier's reapStale() kills what a crashed run left behind.
    const runRoot = path.join(testEnvDir, "run");
    mkdirSync(runRoot, { recursive: true });
    dir = mkdtempSync(path.join(runRoot, `${name}-`));
    d = await startGobgpd({ binary: binary(), dir });
  }, 30_000);
  afterAll(async () => {
    await d?.stop();
    if (dir !== undefined && !keepDirs) rmSync(dir, { recursive: true, force: true });
  }, 30_000);
  return {
    get: () => {
      if (d === undefined) throw new Error(`${name} did not start`);
      return d;
    },
  };
}

// SRv6 L3VPN service SID (RFC 9252) used by the Prefix-SID round-trip tests: End.DT4 (19) with the
// 16-bit function transposed into the MPLS label field (offset 64 = after a 32+32-bit locator).
const srv6Sid = new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
const srv6Structure = {
  locatorBlockLength: 32,
  locatorNodeLength: 32,
  functionLength: 16,
  argumentLength: 0,
  transpositionLength: 16,
  transpositionOffset: 64,
};

describe("GoBGP v4 API (gobgpd 4.8, package api)", () => {
  const gobgpd = daemon("gobgpd4", () => tool("gobgpd4"));
  let client: v4.GoBgpV4Client;

  const ipv4Unicast = { afi: Family_Afi.IP, safi: Family_Safi.UNICAST };
  const rt65000_100 = {
    rt: {
      case: "twoOctetAsSpecific" as const,
      value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 100 },
    },
  };

  beforeAll(async () => {
    client = v4.createClient(v4.GoBgpService, createUnixGrpcTransport(`unix://${gobgpd.get().socket}`));
    await client.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
  });

  it("GetBgp reports what StartBgp set", async () => {
    const { global } = await client.getBgp({});
    expect(global).toMatchObject({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
  });

  it("AddVrf / ListVrf round-trips a 2-octet RD and RTs (typed oneofs)", async () => {
    await client.addVrf({
      vrf: {
        name: "red",
        id: 100,
        rd: { rd: { case: "twoOctetAsn", value: { admin: 65000, assigned: 100 } } },
        importRt: [rt65000_100],
        exportRt: [rt65000_100],
      },
    });
    const vrfs = (await collect(client.listVrf({}))).map((r) => r.vrf);
    expect(vrfs).toHaveLength(1);
    const vrf = vrfs[0] as Vrf;
    expect(vrf.name).toBe("red");
    expect(vrf.id).toBe(100);
    expect(vrf.rd?.rd).toMatchObject({ case: "twoOctetAsn", value: { admin: 65000, assigned: 100 } });
    expect(vrf.importRt.map((r) => r.rt)).toMatchObject([rt65000_100.rt]);
    expect(vrf.exportRt.map((r) => r.rt)).toMatchObject([rt65000_100.rt]);
  });

  it("AddVrf of an existing name fails with Unknown 'vrf red already exists'", async () => {
    const err = await grpcError(
      client.addVrf({
        vrf: { name: "red", id: 100, rd: { rd: { case: "twoOctetAsn", value: { admin: 65000, assigned: 100 } } } },
      }),
    );
    expect({ code: Code[err.code], message: err.rawMessage }).toEqual({
      code: "Unknown",
      message: "vrf red already exists",
    });
  });

  it("AddPath into the VRF shows up in ListPath(VRF) and as a VPN path in the global table", async () => {
    const { uuid } = await client.addPath({
      tableType: TableType.VRF,
      vrfId: "red",
      path: {
        family: ipv4Unicast,
        nlri: { nlri: { case: "prefix", value: { prefix: "10.1.0.0", prefixLen: 24 } } },
        pattrs: [
          { attr: { case: "origin", value: { origin: 0 } } },
          { attr: { case: "nextHop", value: { nextHop: "192.0.2.1" } } },
        ],
      },
    });
    expect(uuid).toHaveLength(16);

    const dests = (await collect(client.listPath({ tableType: TableType.VRF, name: "red", family: ipv4Unicast }))).map(
      (r) => r.destination,
    );
    expect(dests).toHaveLength(1);
    const vrfPath = dests[0]?.paths[0];
    expect(vrfPath?.nlri?.nlri).toMatchObject({ case: "prefix", value: { prefix: "10.1.0.0", prefixLen: 24 } });

    const vpn = (
      await collect(
        client.listPath({
          tableType: TableType.GLOBAL,
          family: { afi: Family_Afi.IP, safi: Family_Safi.MPLS_VPN },
        }),
      )
    ).map((r) => r.destination);
    expect(vpn.map((d) => d?.prefix)).toEqual(["65000:100:10.1.0.0/24"]);
    const gp = vpn[0]?.paths[0];
    expect(gp?.nlri?.nlri).toMatchObject({
      case: "labeledVpnIpPrefix",
      value: { prefix: "10.1.0.0", prefixLen: 24, rd: { rd: { case: "twoOctetAsn", value: { admin: 65000, assigned: 100 } } } },
    });
    const extcoms = gp?.pattrs.flatMap((a) => (a.attr.case === "extendedCommunities" ? a.attr.value.communities : []));
    expect(extcoms?.map((c) => c.extcom)).toMatchObject([rt65000_100.rt]);
  });

  it("DeleteVrf leaves ListVrf empty", async () => {
    await client.deleteVrf({ name: "red" });
    expect(await collect(client.listVrf({}))).toEqual([]);
  });

  it("a 4-octet-ASN RD and RT round-trip without truncation", async () => {
    await client.addVrf({
      vrf: {
        name: "blue",
        id: 7,
        rd: { rd: { case: "fourOctetAsn", value: { admin: 4200000001, assigned: 7 } } },
        importRt: [
          { rt: { case: "fourOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 4200000001, localAdmin: 7 } } },
        ],
      },
    });
    const [got] = (await collect(client.listVrf({ name: "blue" }))).map((r) => r.vrf);
    expect(got?.rd?.rd).toMatchObject({ case: "fourOctetAsn", value: { admin: 4200000001, assigned: 7 } });
    expect(got?.importRt.map((r) => r.rt)).toMatchObject([
      { case: "fourOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 4200000001, localAdmin: 7 } },
    ]);
    await client.deleteVrf({ name: "blue" });
  });

  it("a global L3VPN path with an SRv6 L3 Service Prefix-SID round-trips", async () => {
    const vpnFamily = { afi: Family_Afi.IP, safi: Family_Safi.MPLS_VPN };
    const rd = { rd: { case: "twoOctetAsn" as const, value: { admin: 65000, assigned: 200 } } };
    const nlri = {
      nlri: { case: "labeledVpnIpPrefix" as const, value: { labels: [0x10], rd, prefix: "10.2.0.0", prefixLen: 24 } },
    };
    const prefixSid = {
      tlvs: [
        {
          tlv: {
            case: "l3Service" as const,
            value: {
              subTlvs: {
                1: {
                  tlvs: [
                    {
                      tlv: {
                        case: "information" as const,
                        value: {
                          sid: srv6Sid,
                          endpointBehavior: SRV6Behavior.SRV6_BEHAVIOR_END_DT4,
                          subSubTlvs: { 1: { tlvs: [{ tlv: { case: "structure" as const, value: srv6Structure } }] } },
                        },
                      },
                    },
                  ],
                },
              },
            },
          },
        },
      ],
    };
    await client.addPath({
      tableType: TableType.GLOBAL,
      path: {
        family: vpnFamily,
        nlri,
        pattrs: [
          { attr: { case: "origin", value: { origin: 0 } } },
          { attr: { case: "mpReach", value: { family: vpnFamily, nextHops: ["2001:db8::1"], nlris: [nlri] } } },
          { attr: { case: "prefixSid", value: prefixSid } },
        ],
      },
    });
    const dests = (await collect(client.listPath({ tableType: TableType.GLOBAL, family: vpnFamily }))).map(
      (r) => r.destination,
    );
    const got = dests.find((d) => d?.prefix === "65000:200:10.2.0.0/24")?.paths[0];
    const attr = got?.pattrs.find((a) => a.attr.case === "prefixSid")?.attr;
    expect(attr).toMatchObject({ case: "prefixSid", value: prefixSid });
    const mpReach = got?.pattrs.find((a) => a.attr.case === "mpReach")?.attr;
    expect(mpReach).toMatchObject({ value: { nextHops: ["2001:db8::1"] } });
  });
});

describe("GoBGP v3 API (gobgpd 3.10, package apipb)", () => {
  const gobgpd = daemon("gobgpd3", () => tool("gobgpd3"));
  let client: v3.GoBgpV3Client;

  const ipv4Unicast = { afi: g3.Family_Afi.IP, safi: g3.Family_Safi.UNICAST };
  const rt = (asn: number, localAdmin: number) =>
    anyPack(
      a3.TwoOctetAsSpecificExtendedSchema,
      create(a3.TwoOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn, localAdmin }),
    );
  const rd2 = (admin: number, assigned: number) =>
    anyPack(a3.RouteDistinguisherTwoOctetASNSchema, create(a3.RouteDistinguisherTwoOctetASNSchema, { admin, assigned }));

  beforeAll(async () => {
    client = v3.createClient(v3.GobgpApi, createUnixGrpcTransport(gobgpd.get().socket));
    await client.startBgp({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: -1 } });
  });

  it("GetBgp reports what StartBgp set", async () => {
    const { global } = await client.getBgp({});
    expect(global).toMatchObject({ asn: 65000, routerId: "192.0.2.1", listenPort: -1 });
  });

  it("AddVrf / ListVrf round-trips a 2-octet RD and RTs (google.protobuf.Any)", async () => {
    await client.addVrf({ vrf: { name: "red", id: 100, rd: rd2(65000, 100), importRt: [rt(65000, 100)], exportRt: [rt(65000, 100)] } });
    const vrfs = (await collect(client.listVrf({}))).map((r) => r.vrf);
    expect(vrfs).toHaveLength(1);
    const vrf = vrfs[0] as g3.Vrf;
    expect(vrf.name).toBe("red");
    expect(vrf.id).toBe(100);
    expect(vrf.rd?.typeUrl).toBe("type.googleapis.com/apipb.RouteDistinguisherTwoOctetASN");
    expect(vrf.rd && anyUnpack(vrf.rd, v3.registry)).toMatchObject({
      $typeName: "apipb.RouteDistinguisherTwoOctetASN",
      admin: 65000,
      assigned: 100,
    });
    for (const rts of [vrf.importRt, vrf.exportRt]) {
      expect(rts.map((a) => a.typeUrl)).toEqual(["type.googleapis.com/apipb.TwoOctetAsSpecificExtended"]);
      expect(rts.map((a) => anyUnpack(a, v3.registry))).toMatchObject([
        { isTransitive: true, subType: 2, asn: 65000, localAdmin: 100 },
      ]);
    }
  });

  it("AddVrf of an existing name fails with Unknown 'vrf red already exists'", async () => {
    const err = await grpcError(client.addVrf({ vrf: { name: "red", id: 100, rd: rd2(65000, 100) } }));
    expect({ code: Code[err.code], message: err.rawMessage }).toEqual({
      code: "Unknown",
      message: "vrf red already exists",
    });
  });

  it("AddPath into the VRF shows up in ListPath(VRF) and as a VPN path in the global table", async () => {
    const { uuid } = await client.addPath({
      tableType: g3.TableType.VRF,
      vrfId: "red",
      path: {
        family: ipv4Unicast,
        nlri: anyPack(a3.IPAddressPrefixSchema, create(a3.IPAddressPrefixSchema, { prefix: "10.1.0.0", prefixLen: 24 })),
        pattrs: [
          anyPack(a3.OriginAttributeSchema, create(a3.OriginAttributeSchema, { origin: 0 })),
          anyPack(a3.NextHopAttributeSchema, create(a3.NextHopAttributeSchema, { nextHop: "192.0.2.1" })),
        ],
      },
    });
    expect(uuid).toHaveLength(16);

    const dests = (
      await collect(client.listPath({ tableType: g3.TableType.VRF, name: "red", family: ipv4Unicast }))
    ).map((r) => r.destination);
    expect(dests).toHaveLength(1);
    const nlri = dests[0]?.paths[0]?.nlri;
    expect(nlri && anyUnpack(nlri, v3.registry)).toMatchObject({
      $typeName: "apipb.IPAddressPrefix",
      prefix: "10.1.0.0",
      prefixLen: 24,
    });

    const vpn = (
      await collect(
        client.listPath({
          tableType: g3.TableType.GLOBAL,
          family: { afi: g3.Family_Afi.IP, safi: g3.Family_Safi.MPLS_VPN },
        }),
      )
    ).map((r) => r.destination);
    expect(vpn.map((d) => d?.prefix)).toEqual(["65000:100:10.1.0.0/24"]);
    const gp = vpn[0]?.paths[0];
    const vpnNlri = gp?.nlri && anyUnpack(gp.nlri, a3.LabeledVPNIPAddressPrefixSchema);
    expect(vpnNlri).toMatchObject({ prefix: "10.1.0.0", prefixLen: 24 });
    expect(vpnNlri?.rd && anyUnpack(vpnNlri.rd, v3.registry)).toMatchObject({
      $typeName: "apipb.RouteDistinguisherTwoOctetASN",
      admin: 65000,
      assigned: 100,
    });
    const extcoms = (gp?.pattrs ?? [])
      .map((a) => anyUnpack(a, v3.registry))
      .flatMap((m) => (m?.$typeName === "apipb.ExtendedCommunitiesAttribute" ? (m as a3.ExtendedCommunitiesAttribute).communities : []))
      .map((c) => anyUnpack(c, v3.registry));
    expect(extcoms).toMatchObject([
      { $typeName: "apipb.TwoOctetAsSpecificExtended", isTransitive: true, subType: 2, asn: 65000, localAdmin: 100 },
    ]);
  });

  it("DeleteVrf leaves ListVrf empty", async () => {
    await client.deleteVrf({ name: "red" });
    expect(await collect(client.listVrf({}))).toEqual([]);
  });

  it("a 4-octet-ASN RD and RT round-trip without truncation", async () => {
    await client.addVrf({
      vrf: {
        name: "blue",
        id: 7,
        rd: anyPack(
          a3.RouteDistinguisherFourOctetASNSchema,
          create(a3.RouteDistinguisherFourOctetASNSchema, { admin: 4200000001, assigned: 7 }),
        ),
        importRt: [
          anyPack(
            a3.FourOctetAsSpecificExtendedSchema,
            create(a3.FourOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn: 4200000001, localAdmin: 7 }),
          ),
        ],
      },
    });
    const [got] = (await collect(client.listVrf({ name: "blue" }))).map((r) => r.vrf);
    expect(got?.rd && anyUnpack(got.rd, v3.registry)).toMatchObject({
      $typeName: "apipb.RouteDistinguisherFourOctetASN",
      admin: 4200000001,
      assigned: 7,
    });
    expect(got?.importRt.map((a) => anyUnpack(a, v3.registry))).toMatchObject([
      { $typeName: "apipb.FourOctetAsSpecificExtended", isTransitive: true, subType: 2, asn: 4200000001, localAdmin: 7 },
    ]);
    await client.deleteVrf({ name: "blue" });
  });
  it("a global L3VPN path with an SRv6 L3 Service Prefix-SID round-trips (Any at every level)", async () => {
    const vpnFamily = { afi: g3.Family_Afi.IP, safi: g3.Family_Safi.MPLS_VPN };
    const nlri = anyPack(
      a3.LabeledVPNIPAddressPrefixSchema,
      create(a3.LabeledVPNIPAddressPrefixSchema, { labels: [0x10], rd: rd2(65000, 200), prefix: "10.2.0.0", prefixLen: 24 }),
    );
    const structure = anyPack(a3.SRv6StructureSubSubTLVSchema, create(a3.SRv6StructureSubSubTLVSchema, srv6Structure));
    const information = anyPack(
      a3.SRv6InformationSubTLVSchema,
      create(a3.SRv6InformationSubTLVSchema, {
        sid: srv6Sid,
        endpointBehavior: a3.SRv6Behavior.END_DT4,
        subSubTlvs: { 1: { tlv: [structure] } },
      }),
    );
    const l3Service = anyPack(a3.SRv6L3ServiceTLVSchema, create(a3.SRv6L3ServiceTLVSchema, { subTlvs: { 1: { tlv: [information] } } }));
    await client.addPath({
      tableType: g3.TableType.GLOBAL,
      path: {
        family: vpnFamily,
        nlri,
        pattrs: [
          anyPack(a3.OriginAttributeSchema, create(a3.OriginAttributeSchema, { origin: 0 })),
          anyPack(
            a3.MpReachNLRIAttributeSchema,
            create(a3.MpReachNLRIAttributeSchema, { family: vpnFamily, nextHops: ["2001:db8::1"], nlris: [nlri] }),
          ),
          anyPack(a3.PrefixSIDSchema, create(a3.PrefixSIDSchema, { tlvs: [l3Service] })),
        ],
      },
    });
    const dests = (await collect(client.listPath({ tableType: g3.TableType.GLOBAL, family: vpnFamily }))).map(
      (r) => r.destination,
    );
    const got = dests.find((d) => d?.prefix === "65000:200:10.2.0.0/24")?.paths[0];
    const sidAttr = got?.pattrs.find((a) => a.typeUrl === "type.googleapis.com/apipb.PrefixSID");
    const unpacked = sidAttr && anyUnpack(sidAttr, a3.PrefixSIDSchema);
    const l3 = unpacked?.tlvs[0] && anyUnpack(unpacked.tlvs[0], a3.SRv6L3ServiceTLVSchema);
    const infoAny = l3?.subTlvs[1]?.tlv[0];
    const info = infoAny && anyUnpack(infoAny, a3.SRv6InformationSubTLVSchema);
    expect(info).toMatchObject({ sid: srv6Sid, endpointBehavior: a3.SRv6Behavior.END_DT4 });
    const structAny = info?.subSubTlvs[1]?.tlv[0];
    expect(structAny && anyUnpack(structAny, a3.SRv6StructureSubSubTLVSchema)).toMatchObject(srv6Structure);
  });
});
