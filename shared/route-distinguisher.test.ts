import { describe, expect, it } from "vitest";
import {
  decodeRouteDistinguisher,
  encodeRouteDistinguisher,
  formatAdminAssigned,
  fromAsn,
  parseAdminAssigned,
  type AdminAssigned,
} from "./route-distinguisher.js";

describe("fromAsn", () => {
  it.each<[number, number, AdminAssigned]>([
    [65000, 0, { type: 0, asn: 65000, assigned: 0 }],
    [65000, 4294967295, { type: 0, asn: 65000, assigned: 4294967295 }],
    [1, 1, { type: 0, asn: 1, assigned: 1 }],
    [65535, 4294967295, { type: 0, asn: 65535, assigned: 4294967295 }],
    [65536, 65535, { type: 2, asn: 65536, assigned: 65535 }],
    [4200000001, 7, { type: 2, asn: 4200000001, assigned: 7 }],
    [4294967295, 0, { type: 2, asn: 4294967295, assigned: 0 }],
  ])("(%i, %i) encodes exactly", (asn, nn, want) => {
    expect(fromAsn(asn, nn)).toEqual(want);
  });

  it.each([
    [4200000001, 65536, /4200000001:65536 cannot be encoded.*65536 > 65535/],
    [4200000001, 4294967295, /cannot be encoded/],
    [0, 1, /0 is not an AS number/],
    [4294967296, 1, /not an AS number/],
    [65000, 4294967296, /not a 32-bit unsigned integer/],
    [65000, -1, /not a 32-bit unsigned integer/],
    [65000, 1.5, /not a 32-bit unsigned integer/],
  ])("refuses (%i, %i)", (asn, nn, msg) => {
    expect(() => fromAsn(asn, nn)).toThrow(msg);
  });
});

describe("parseAdminAssigned / formatAdminAssigned", () => {
  it.each([
    ["65000:100", { type: 0, asn: 65000, assigned: 100 }],
    ["65000:4294967295", { type: 0, asn: 65000, assigned: 4294967295 }],
    ["4200000001:7", { type: 2, asn: 4200000001, assigned: 7 }],
    ["192.0.2.1:65535", { type: 1, address: "192.0.2.1", assigned: 65535 }],
  ])("round-trips %s", (text, want) => {
    const v = parseAdminAssigned(text);
    expect(v).toEqual(want);
    expect(formatAdminAssigned(v)).toBe(text);
  });

  it.each([
    ["65000", /want ASN:NN/],
    [":5", /want ASN:NN/],
    ["65000:", /want ASN:NN/],
    ["65000:-1", /is not a number/],
    ["65000:4294967296", /larger than 4294967295/],
    ["4294967296:1", /larger than 4294967295/],
    ["4200000001:65536", /16 bits for the number/],
    ["192.0.2.1:65536", /≤ 65535/],
    ["example:1", /neither an ASN nor an IPv4/],
  ])("refuses %s", (text, msg) => {
    expect(() => parseAdminAssigned(text)).toThrow(msg);
  });
});

describe("RD wire encoding", () => {
  it.each(["65000:4294967295", "4200000001:7", "192.0.2.1:9", "1:0"])("%s survives encode/decode", (text) => {
    const v = parseAdminAssigned(text);
    expect(decodeRouteDistinguisher(encodeRouteDistinguisher(v))).toEqual(v);
  });

  it("lays out type 2 as 4-byte ASN then 2-byte number", () => {
    expect(encodeRouteDistinguisher(parseAdminAssigned("4200000001:7")).toString("hex")).toBe("0002fa56ea010007");
  });
});
