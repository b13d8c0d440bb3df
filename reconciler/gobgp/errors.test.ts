import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { SpeakerError } from "./speaker.js";
import { classify, grpcCode, streamEndError, toSpeakerError } from "./errors.js";

describe("classify", () => {
  // Texts as gobgpd 4.8.0 and 3.10.0 send them (gRPC Unknown), and connect-node's transport errors.
  it.each([
    [Code.Unknown, "vrf vpc-a already exists", "already-exists"],
    [Code.Unknown, "vrf vpc-a not found", "not-found"],
    [Code.Unknown, "VRF not found: vpc-a", "not-found"],
    [Code.Unknown, "can't overwrite the existing peer: 192.0.2.9", "already-exists"],
    [Code.Unknown, "can't overwrite the existing peer: fd00:ff::9", "already-exists"],
    [Code.Unknown, "can't delete a peer configuration for 192.0.2.9", "not-found"],
    [Code.Unknown, "neighbor that has 192.0.2.9 doesn't exist", "not-found"],
    [Code.Unknown, "can't find a specified path(s) with the given UUID(s)", "not-found"],
    [Code.Unknown, "bgp server hasn't started yet", "not-started"],
    [Code.Unknown, "server stopped", "unavailable"],
    [Code.Unknown, "BGP server is not running", "unavailable"],
    [Code.Unknown, "nil request", "invalid"],
    [Code.Unknown, "router-id must be an IPv4 address: fd00::1", "invalid"],
    [Code.Unknown, "invalid router-id format: x", "invalid"],
    [Code.Unknown, "unknown route distinguisher", "invalid"],
    [Code.Unknown, "failed to unmarshal route distinguisher: proto: invalid empty type URL", "invalid"],
    [Code.Unknown, "invalid path: invalid nlri: invalid nlri for ipv4-unicast family: %!s(<nil>)", "invalid"],
    [Code.Unknown, "no neighbor address/interface specified", "invalid"],
    [Code.Unknown, "failed to delete VRF vpc-a: neighbor 192.0.2.9 is in use", "other"],
    [Code.Unknown, "something new", "other"],
    [Code.InvalidArgument, "no events to watch", "invalid"],
    [Code.Unimplemented, "unknown service api.GoBgpService", "other"],
    [Code.Internal, "connect ENOENT /run/gobgpd.sock", "unavailable"],
    [Code.Internal, "protocol error", "other"],
    [Code.Unavailable, "connect ECONNREFUSED /run/gobgpd.sock", "unavailable"],
    [Code.Aborted, "read ECONNRESET", "unavailable"],
    [Code.Aborted, "failed to watch event: x", "other"],
    [Code.Canceled, "http/2 stream closed with error code CANCEL (0x8)", "unavailable"],
    [Code.DeadlineExceeded, "the operation timed out", "unavailable"],
  ] as const)("%s %j → %s", (code, message, kind) => {
    expect(classify(code, message)).toBe(kind);
  });

  it("anchors gobgpd texts: a VRF named like a message does not change the kind", () => {
    expect(classify(Code.Unknown, "failed to delete VRF vrf x not found: neighbor y is in use")).toBe("other");
  });
});

describe("toSpeakerError", () => {
  it("keeps the gRPC error as the cause and names the operation", () => {
    const ce = new ConnectError("vrf vpc-a already exists", Code.Unknown);
    const se = toSpeakerError(ce, "AddVrf vpc-a");
    expect(se).toBeInstanceOf(SpeakerError);
    expect(se.kind).toBe("already-exists");
    expect(se.message).toBe("AddVrf vpc-a: vrf vpc-a already exists (gRPC Unknown)");
    expect(se.cause).toBe(ce);
    expect(grpcCode(se)).toBe(Code.Unknown);
  });

  it("passes a SpeakerError through and calls other errors 'other'", () => {
    const se = new SpeakerError("invalid", "bad");
    expect(toSpeakerError(se, "x")).toBe(se);
    expect(toSpeakerError(new TypeError("boom"), "x")).toMatchObject({ kind: "other", message: "x: boom" });
    expect(grpcCode(new TypeError("boom"))).toBeUndefined();
  });
});

describe("streamEndError", () => {
  const killed = new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);

  it("is nothing when our own signal ended the stream", () => {
    expect(streamEndError(new ConnectError("This operation was aborted", Code.Canceled), true, "WatchEvent")).toBeUndefined();
    expect(streamEndError(undefined, true, "WatchEvent")).toBeUndefined();
  });

  it("is unavailable when gobgpd dies (Canceled without our abort) or ends the stream", () => {
    expect(streamEndError(killed, false, "WatchEvent")).toMatchObject({ kind: "unavailable" });
    expect(streamEndError(undefined, false, "WatchEvent")).toMatchObject({ kind: "unavailable", message: "WatchEvent: gobgpd ended the stream" });
    expect(streamEndError(new ConnectError("failed to watch event: x", Code.Aborted), false, "WatchEvent")).toMatchObject({
      kind: "unavailable",
    });
  });

  it("keeps a classified refusal (our request was wrong)", () => {
    expect(streamEndError(new ConnectError("no events to watch", Code.InvalidArgument), false, "WatchEvent")).toMatchObject({
      kind: "invalid",
    });
  });
});
