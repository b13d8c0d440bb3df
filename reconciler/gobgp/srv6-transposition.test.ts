// Decoding transposed SRv6 service SIDs (RFC 9252 §4): the pure rule, then the same through both
// gobgpd API shapes (messages round-tripped through the protobuf wire format), shaped as FRR 8.4
// sends them (docs/interop.md): structure 40/24/16/0, transposition offset 64 length 16, the
// function in the label, behaviour 0xFFFF.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { anyPack, type Any } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { PathSchema as V4PathSchema, DestinationSchema as V4DestinationSchema } from "../../proto/gen/api/gobgp_pb.js";
import {
  ExtendedCommunitiesAttributeSchema,
  LabeledVPNIPAddressPrefixSchema,
  MpReachNLRIAttributeSchema,
  OriginAttributeSchema,
  PrefixSIDSchema,
  RouteDistinguisherTwoOctetASNSchema,
  SRv6InformationSubTLVSchema,
  SRv6L3ServiceTLVSchema,
  SRv6StructureSubSubTLVSchema,
  TwoOctetAsSpecificExtendedSchema,
} from "../../proto/gen/apipb/attribute_pb.js";
import { PathSchema as V3PathSchema } from "../../proto/gen/apipb/gobgp_pb.js";
import { remoteRoutes, vrfImports } from "../vrf/planner.js";
import { sidToBytes } from "./convert.js";
import { ribPathFromV3 } from "./convert-v3.js";
import { ribPathFromV4, vrfPathsFromV4 } from "./convert-v4.js";
import { serviceSid, type Srv6SidStructure } from "./srv6-transposition.js";

const frr: Srv6SidStructure = { locatorBlockLength: 40, locatorNodeLength: 24, functionLength: 16, argumentLength: 0, transpositionLength: 16, transpositionOffset: 64 };
const kvrf: Srv6SidStructure = { locatorBlockLength: 32, locatorNodeLength: 32, functionLength: 64, argumentLength: 0, transpositionLength: 0, transpositionOffset: 0 };
const withT = (offset: number, length: number, over: Partial<Srv6SidStructure> = {}): Srv6SidStructure => ({ ...frr, transpositionOffset: offset, transpositionLength: length, ...over });

describe("serviceSid", () => {
  it.each([
    ["no structure: the TLV's SID as is", "fd00:0:a::abc:1", undefined, [], "fd00:0:a::abc:1"],
    ["transposition length 0 (kvrf's own): as is, label ignored", "fd00:0:a:0:0:abc:1:0", kvrf, [4096], "fd00:0:a::abc:1:0"],
    ["FRR's IPv4 SID: function 0x0100 from label 4096", "2001:db8:1:1::", frr, [4096], "2001:db8:1:1:100::"],
    ["FRR's IPv6 SID: function 0x0200 from label 8192", "2001:db8:1:1::", frr, [8192], "2001:db8:1:1:200::"],
    ["the high 16 of the 20 label bits, the low 4 dropped", "2001:db8:1:1::", frr, [0xabcd7], "2001:db8:1:1:abcd::"],
    ["20 bits at offset 64", "2001:db8:1:1::", withT(64, 20), [0xfffff], "2001:db8:1:1:ffff:f000::"],
    ["20 bits ending at bit 127", "2001:db8::", withT(108, 20), [0x12345], "2001:db8::1:2345"],
    ["an argument transposed (offset 80)", "2001:db8:1:1:100::", withT(80, 8, { argumentLength: 8 }), [0x2a << 12], "2001:db8:1:1:100:2a00::"],
    ["only the first label counts", "2001:db8:1:1::", frr, [4096, 8192], "2001:db8:1:1:100::"],
  ] as const)("%s", (_name, sid, structure, labels, want) => {
    expect(serviceSid({ sid, behavior: 0xffff, ...(structure ? { structure } : {}) }, labels)).toEqual({ sid: want });
  });

  it.each([
    ["lengths beyond 128 bits", "2001:db8::", withT(64, 16, { locatorBlockLength: 64, locatorNodeLength: 64 }), [4096], /add up to 144 bits, more than 128/],
    ["transposed bits beyond the SID", "2001:db8::", withT(120, 16), [4096], /bits 120 to 135 lie beyond the SID's 128 bits/],
    ["more bits than the label value has", "2001:db8::", withT(64, 24), [4096], /24 transposed bits, but the label value carries 20/],
    ["no label in the NLRI", "2001:db8:1:1::", frr, [], /the NLRI carries no label/],
    ["no label in this view (gobgpd's VRF view)", "2001:db8:1:1::", frr, undefined, /this view of the path has no label/],
    ["a label wider than 20 bits", "2001:db8:1:1::", frr, [1 << 20], /label 1048576 is not a 20-bit label value/],
    ["TLV and label disagree on the transposed bits", "2001:db8:1:1:100::", frr, [8192], /bits set where the label's go/],
  ] as const)("%s: a reason, no SID", (_name, sid, structure, labels, why) => {
    const got = serviceSid({ sid, behavior: 0xffff, structure }, labels);
    expect(got).not.toHaveProperty("sid");
    expect("problem" in got ? got.problem : "").toMatch(why);
  });
});

// One received VPN path as each API shape has it: FRR's 10.9.0.0/24 in RD 65000:90, RT 65000:90.
const rd = { type: 0 as const, asn: 65000, assigned: 90 };
const locator = "2001:db8:1:1::";

function wire<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  return fromBinary(schema, toBinary(schema, create(schema, init)));
}

function v4Path(labels: number[], structure: Srv6SidStructure) {
  const nlri = { nlri: { case: "labeledVpnIpPrefix" as const, value: { labels, rd: { rd: { case: "twoOctetAsn" as const, value: { admin: 65000, assigned: 90 } } }, prefix: "10.9.0.0", prefixLen: 24 } } };
  return wire(V4PathSchema, {
    family: { afi: 1, safi: 128 },
    nlri,
    neighborIp: "fd00::2",
    best: true,
    pattrs: [
      { attr: { case: "origin", value: { origin: 2 } } },
      { attr: { case: "mpReach", value: { family: { afi: 1, safi: 128 }, nextHops: ["fd00::2"], nlris: [nlri] } } },
      { attr: { case: "extendedCommunities", value: { communities: [{ extcom: { case: "twoOctetAsSpecific", value: { isTransitive: true, subType: 2, asn: 65000, localAdmin: 90 } } }] } } },
      {
        attr: {
          case: "prefixSid",
          value: {
            tlvs: [
              {
                tlv: {
                  case: "l3Service",
                  value: {
                    subTlvs: {
                      1: {
                        tlvs: [
                          {
                            tlv: {
                              case: "information",
                              value: { sid: sidToBytes(locator), endpointBehavior: 0xffff, subSubTlvs: { 1: { tlvs: [{ tlv: { case: "structure", value: structure } }] } } },
                            },
                          },
                        ],
                      },
                    },
                  },
                },
              },
            ],
          },
        },
      },
    ],
  });
}

function pack<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>): Any {
  return anyPack(schema, create(schema, init));
}

function v3Path(labels: number[], structure: Srv6SidStructure) {
  const nlri = pack(LabeledVPNIPAddressPrefixSchema, { labels, rd: pack(RouteDistinguisherTwoOctetASNSchema, { admin: 65000, assigned: 90 }), prefix: "10.9.0.0", prefixLen: 24 });
  const information = pack(SRv6InformationSubTLVSchema, {
    sid: sidToBytes(locator),
    endpointBehavior: 0xffff,
    subSubTlvs: { 1: { tlv: [pack(SRv6StructureSubSubTLVSchema, structure)] } },
  });
  return wire(V3PathSchema, {
    family: { afi: 1, safi: 128 },
    nlri,
    neighborIp: "fd00::2",
    best: true,
    pattrs: [
      pack(OriginAttributeSchema, { origin: 2 }),
      pack(MpReachNLRIAttributeSchema, { family: { afi: 1, safi: 128 }, nextHops: ["fd00::2"], nlris: [nlri] }),
      pack(ExtendedCommunitiesAttributeSchema, { communities: [pack(TwoOctetAsSpecificExtendedSchema, { isTransitive: true, subType: 2, asn: 65000, localAdmin: 90 })] }),
      pack(PrefixSIDSchema, { tlvs: [pack(SRv6L3ServiceTLVSchema, { subTlvs: { 1: { tlv: [information] } } })] }),
    ],
  });
}

describe.each([
  ["v4", (labels: number[], s: Srv6SidStructure) => ribPathFromV4(v4Path(labels, s), true)],
  ["v3", (labels: number[], s: Srv6SidStructure) => ribPathFromV3(v3Path(labels, s), true)],
] as const)("a transposed path from gobgpd %s", (_api, read) => {
  it("reads as the full SID with FRR's RD, RT, next hop and opaque behaviour", () => {
    expect(read([4096], frr)).toEqual({
      family: "ipv4",
      rd,
      prefix: "10.9.0.0/24",
      rts: [rd],
      nextHop: "fd00::2",
      sid: "2001:db8:1:1:100::",
      behavior: 0xffff,
      best: true,
      local: false,
      neighbor: "fd00::2",
      withdraw: false,
    });
  });

  it("is installed with that SID whatever the behaviour, and an undecodable one is ignored with its reason", () => {
    const good = read([4096], frr);
    const bad = read([4096], withT(120, 16));
    expect(bad?.sid).toBeUndefined();
    expect(bad?.problem).toMatch(/lie beyond the SID's 128 bits/);
    const ok = remoteRoutes(vrfImports("vpc-90", [rd], good ? [good] : []), 90, "eth0");
    expect(ok.routes.map((r) => [r.prefix, r.sid, r.kind])).toEqual([
      ["10.9.0.0/24", "2001:db8:1:1:100::", undefined],
      ["2001:db8:1:1:100::/128", "", "throw"],
    ]);
    const ignored = remoteRoutes(vrfImports("vpc-90", [rd], bad ? [bad] : []), 90, "eth0");
    expect(ignored.routes).toEqual([]);
    expect(ignored.unusable).toEqual([`10.9.0.0/24: best path from fd00::2 cannot be used: ${String(bad?.problem)}`]);
  });
});

it("gobgpd's VRF view (unicast, no label) of a transposed path gives a reason, not the locator as SID", () => {
  const p = v4Path([4096], frr);
  const unicast = wire(V4PathSchema, { family: { afi: 1, safi: 1 }, neighborIp: p.neighborIp, pattrs: p.pattrs, nlri: { nlri: { case: "prefix", value: { prefix: "10.9.0.0", prefixLen: 24 } } } });
  const [got] = vrfPathsFromV4("vpc-90", create(V4DestinationSchema, { prefix: "10.9.0.0/24", paths: [unicast] }));
  expect(got?.sid).toBeUndefined();
  expect(got?.problem).toMatch(/this view of the path has no label/);
});
