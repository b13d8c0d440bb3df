import { describe, expect, it } from "vitest";
import { attachmentSid, attachmentSid6, parseLocator } from "./srv6-sid.js";

describe("SRv6 SIDs", () => {
  it.each([
    // Canonical (RFC 5952) text: vpc 0xabc sits in groups 5-7, the attachment in group 8.
    ["fd00:0:a::/48", 0xabcn, 1, "fd00:0:a::abc:1", "fd00:0:a:1::abc:1"],
    ["fd00::/16", 0xffff_ffff_ffffn, 0xffff, "fd00::ffff:ffff:ffff:ffff", "fd00::1:ffff:ffff:ffff:ffff"],
    ["2001:db8:0:7f00::/56", 0x1_0000_0002n, 3, "2001:db8:0:7f00:1:0:2:3", "2001:db8:0:7f01:1:0:2:3"],
    ["fd00:0:0:5::/64", 0x1n, 0, "fd00::5:0:0:1:0", undefined],
  ])("%s, vpc %s, attachment %i", (loc, vpc, att, sid, sid6) => {
    const l = parseLocator(loc);
    expect(attachmentSid(l, vpc, att)).toBe(sid);
    expect(attachmentSid6(l, vpc, att)).toBe(sid6);
  });

  it.each([
    ["10.0.0.0/8", /not an IPv6 prefix/],
    ["fd00::/65", /prefix length 65; a locator is 1 to 64 bits/],
    ["fd00::1/48", /bits set past \/48/],
    ["fd00::", /not an IPv6 prefix/],
    ["nope", /not an IPv6 prefix/],
  ])("refuses locator %s", (loc, msg) => {
    expect(() => parseLocator(loc)).toThrow(msg);
  });
});
