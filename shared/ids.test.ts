import { describe, expect, it } from "vitest";
import { hex, parseAttachment, parseVpc, vpcNumber } from "./ids.js";
import { vpcRoutingText } from "./vpc-routing.js";

describe("ids", () => {
  it.each([
    ["abc", 0xabcn],
    ["0x0000000000AB", 0xabn],
    ["ffffffffffff", (1n << 48n) - 1n],
  ])("parses VPC %s", (text, want) => {
    expect(parseVpc(text)).toBe(want);
  });

  it.each([
    ["1000000000000", /does not fit in 48 bits/],
    ["xyz", /"xyz" is not hex/],
    ["", /"" is not hex/],
    [12, /want a hex string, got 12/],
    [undefined, /want a hex string, got nothing/],
  ])("refuses VPC %s", (value, msg) => {
    expect(() => parseVpc(value)).toThrow(msg);
  });

  it("parses 16-bit attachments and refuses 17-bit ones", () => {
    expect(parseAttachment("ffff")).toBe(0xffff);
    expect(() => parseAttachment("10000")).toThrow(/vpcAttachment: "10000" does not fit in 16 bits/);
  });

  it("takes the low 32 bits of a VPC, so distinct VPCs can share an NN", () => {
    expect(vpcNumber(0x1_0000_0005n)).toBe(5);
    expect(vpcNumber(0x2_0000_0005n)).toBe(5);
    expect(vpcNumber((1n << 48n) - 1n)).toBe(4294967295);
    expect(hex(0x00abn)).toBe("ab");
  });
});

describe("vpcRoutingText", () => {
  it("is ASN:uint32(vpc) for RD and RT", () => {
    expect(vpcRoutingText(65000, 0xffff_ffff_ffffn)).toEqual({ rd: "65000:4294967295", rt: "65000:4294967295" });
    expect(vpcRoutingText(4200000001, 0x1234_0000_0007n)).toEqual({ rd: "4200000001:7", rt: "4200000001:7" });
  });

  it("refuses a 4-byte ASN with a VPC number above 16 bits", () => {
    expect(() => vpcRoutingText(4200000001, 0x10000n)).toThrow(/route distinguisher 4200000001:65536 cannot be encoded/);
  });
});
