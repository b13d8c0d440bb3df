// The one place that turns whatever a gobgpd call throws into a SpeakerError. gobgpd reports
// nearly every failure as gRPC Unknown with a Go error string, so the kind comes from the text;
// the texts below were observed on gobgpd 4.8.0 and 3.10.0 (they are the same where both exist).
// Transport failures come from connect-node as ConnectError codes (see FACTS §3).
import { Code, ConnectError } from "@connectrpc/connect";
import { SpeakerError, type SpeakerErrorKind } from "./speaker.js";

/** gobgpd's Go error texts (anchored), first match wins. */
const textRules: readonly (readonly [RegExp, SpeakerErrorKind])[] = [
  // AddVrf of an existing name.
  [/^vrf \S+ already exists$/, "already-exists"],
  // DeleteVrf / ListPath(VRF) / AddPath / DeletePath with an unknown VRF.
  [/^vrf \S* not found$/, "not-found"],
  [/^VRF not found: /, "not-found"],
  [/^can't overwrite the existing peer: /, "already-exists"],
  // DeletePeer of an unknown address.
  [/^can't delete a peer configuration for /, "not-found"],
  // UpdatePeer (and per-peer queries) of an unknown address.
  [/^neighbor that has \S+ doesn't exist$/, "not-found"],
  [/^can't find a specified path\(s\) with the given UUID\(s\)$/, "not-found"],
  // Every VRF, peer and path call before StartBgp.
  [/^bgp server hasn't started yet$/, "not-started"],
  // v4 only: after StopBgp the server loop is gone for good and every call answers this; only a
  // gobgpd restart helps, which is what "unavailable" asks the caller to wait for.
  [/^server stopped$/, "unavailable"],
  [/^BGP server is not running$/, "unavailable"],
  [/^(nil|null) request$/, "invalid"],
  [/^invalid router-id format: /, "invalid"],
  [/^router-id must be an IPv4 address: /, "invalid"],
  [/^unknown route distinguisher$/, "invalid"],
  [/^failed to unmarshal /, "invalid"],
  [/^invalid (path|nlri|mp reach attribute)\b/, "invalid"],
  [/^nexthop not found$/, "invalid"],
  [/^no neighbor address\/interface specified$/, "invalid"],
  [/^failed to parse (IP )?address: /, "invalid"],
  [/^address family: .* not supported$/, "invalid"],
  [/^duplicated? path attribute/, "invalid"],
];

/** Errors of the socket itself (gobgpd not there, or gone mid-call), whatever code wraps them. */
const socketError = /\b(ENOENT|ECONNREFUSED|ECONNRESET|EPIPE|ECONNABORTED|ETIMEDOUT)\b|stream closed with error code|GOAWAY/;

/** The kind of a gRPC status (code + message as gobgpd or connect-node wrote it). */
export function classify(code: Code, message: string): SpeakerErrorKind {
  switch (code) {
    // A gobgpd killed mid-call surfaces as Canceled (FACTS §3); callers that cancel on purpose
    // check their own signal before asking here.
    case Code.Canceled:
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "unavailable";
    case Code.InvalidArgument:
      return "invalid";
    case Code.AlreadyExists:
      return "already-exists";
    case Code.NotFound:
      return "not-found";
    case Code.Unknown:
      for (const [re, kind] of textRules) if (re.test(message)) return kind;
      return socketError.test(message) ? "unavailable" : "other";
    default:
      // connect-node reports a missing socket as Internal "connect ENOENT" and a reset as Aborted.
      return socketError.test(message) ? "unavailable" : "other";
  }
}

/**
 * Any thrown value as a SpeakerError; `what` names the operation for the message
 * (e.g. `AddVrf vpc-a`). A SpeakerError passes through unchanged.
 */
export function toSpeakerError(err: unknown, what: string): SpeakerError {
  if (err instanceof SpeakerError) return err;
  if (err instanceof ConnectError || !(err instanceof Error)) {
    const ce = ConnectError.from(err);
    const kind = classify(ce.code, ce.rawMessage);
    return new SpeakerError(kind, `${what}: ${ce.rawMessage} (gRPC ${Code[ce.code]})`, { cause: err });
  }
  return new SpeakerError("other", `${what}: ${err.message}`, { cause: err });
}

/**
 * The end of a watch stream. Our own abort is not an error (undefined: end the iterator);
 * anything else, including the stream ending without an error, means gobgpd went away.
 */
export function streamEndError(err: unknown, aborted: boolean, what: string): SpeakerError | undefined {
  if (aborted) return undefined;
  if (err === undefined) return new SpeakerError("unavailable", `${what}: gobgpd ended the stream`);
  const se = toSpeakerError(err, what);
  return se.kind === "other" ? new SpeakerError("unavailable", se.message, { cause: err }) : se;
}

/** The gRPC code behind an error (looking through a SpeakerError's cause), if there is one. */
export function grpcCode(err: unknown): Code | undefined {
  const inner = err instanceof SpeakerError ? err.cause : err;
  return inner instanceof ConnectError ? inner.code : undefined;
}
