// Connects to gobgpd's API socket and picks the adapter for the API it speaks. The two APIs are
// different gRPC services (api.GoBgpService in 4.x, apipb.GobgpApi in 3.x), so a v4 GetBgp either
// works, or a 3.x daemon answers Unimplemented.
import { Code } from "@connectrpc/connect";
import { SpeakerError, type Speaker } from "./speaker.js";
import { Channel } from "./channel.js";
import { grpcCode, toSpeakerError } from "./errors.js";
import { GoBgpV4Speaker } from "./v4.js";

export interface ConnectSpeakerOptions {
  /** Deadline of each call except watch(), in ms; default 10 s. */
  timeoutMs?: number;
}

/**
 * A Speaker for the gobgpd serving `socketPath` ("/abs/path" or "unix:///abs/path"). Throws a
 * SpeakerError: "unavailable" when nothing answers (no socket, refused, timeout), "invalid" for a
 * relative path, "other" when the daemon speaks neither API.
 */
export async function connectSpeaker(socketPath: string, opts: ConnectSpeakerOptions = {}): Promise<Speaker> {
  let channel: Channel;
  try {
    channel = new Channel(socketPath, opts.timeoutMs ?? 10_000);
  } catch (err) {
    throw new SpeakerError("invalid", err instanceof Error ? err.message : String(err), { cause: err });
  }
  try {
    const v4 = new GoBgpV4Speaker(channel);
    try {
      await v4.getGlobal();
      return v4;
    } catch (err) {
      if (grpcCode(err) !== Code.Unimplemented) throw err;
    }
    // Loaded only for a 3.x gobgpd: its generated API is ~7 MiB of kvrfd's RSS (docs/kvrfd.md).
    const v3 = new (await import("./v3.js")).GoBgpV3Speaker(channel);
    try {
      await v3.getGlobal();
      return v3;
    } catch (err) {
      if (grpcCode(err) !== Code.Unimplemented) throw err;
      throw new SpeakerError("other", `${socketPath}: the daemon implements neither GoBGP API (api.GoBgpService, apipb.GobgpApi)`, {
        cause: err,
      });
    }
  } catch (err) {
    channel.close();
    throw toSpeakerError(err, `connect ${socketPath}`);
  }
}
