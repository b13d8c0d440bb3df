import { describe, expect, it } from "vitest";
import { grpcFrames, loadedCniNetworks, protoFields, protoStringMap } from "./cri.js";

/** Length-delimited field `field` holding `bytes`. */
function ld(field: number, bytes: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Uint8Array.from([(field << 3) | 2, ...len, ...bytes]);
}
const str = (s: string): Uint8Array => new TextEncoder().encode(s);
const entry = (k: string, v: string): Uint8Array => ld(2, Uint8Array.from([...ld(1, str(k)), ...ld(2, str(v))]));

describe("CRI Status decoding", () => {
  it("reads StatusResponse's info map past the status message, with long values", () => {
    const status = ld(1, Uint8Array.from([...ld(1, Uint8Array.from([...ld(1, str("RuntimeReady")), 0x10, 0x01]))]));
    const long = `{"Networks":[{"Config":{"Name":"cni-loopback"}},{"Config":{"Name":"kvrf-lab"}}],"pad":"${"x".repeat(300)}"}`;
    const msg = Uint8Array.from([...status, ...entry("config", "{}"), ...entry("cniconfig", long)]);
    const info = protoStringMap(msg, 2);
    expect([...info.keys()]).toEqual(["config", "cniconfig"]);
    expect(loadedCniNetworks(info)).toEqual(["cni-loopback", "kvrf-lab"]);
  });

  it("skips varint and fixed fields, and refuses truncated input", () => {
    expect(protoFields(Uint8Array.from([0x08, 0x96, 0x01, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1d, 1, 2, 3, 4]))).toEqual([
      [1, 0, 150],
      [2, 1, 0],
      [3, 5, 0],
    ]);
    expect(() => protoFields(Uint8Array.from([0x0a, 5, 1]))).toThrow(/truncated/);
  });

  it("splits a gRPC body into its messages", () => {
    const body = Uint8Array.from([0, 0, 0, 0, 2, 0x08, 0x01, 0, 0, 0, 0, 0]);
    expect(grpcFrames(body).map((m) => [...m])).toEqual([[0x08, 0x01], []]);
    expect(() => grpcFrames(Uint8Array.from([1, 0, 0, 0, 0]))).toThrow(/compressed/);
  });

  it("no cniconfig, or no networks loaded yet: none", () => {
    expect(loadedCniNetworks(new Map())).toEqual([]);
    expect(loadedCniNetworks(new Map([["cniconfig", '{"Networks":null}']]))).toEqual([]);
  });
});
