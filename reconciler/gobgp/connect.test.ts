// connectSpeaker and the watch() contract against fake gobgpd APIs served in-process on a unix
// socket (the real daemons are exercised in test/integration/speaker.test.ts).
import http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { GoBgpService } from "../../proto/gen/api/gobgp_pb.js";
import { GobgpApi } from "../../proto/gen/apipb/gobgp_pb.js";
import { SpeakerError, type Speaker, type SpeakerEvent } from "../speaker.js";
import { connectSpeaker } from "./connect.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kvrf-speaker-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Impl = { v4: Partial<ServiceImpl<typeof GoBgpService>> } | { v3: Partial<ServiceImpl<typeof GobgpApi>> };

async function serve(impl: Impl): Promise<string> {
  const socket = path.join(tempDir(), "gobgpd.sock");
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        if ("v4" in impl) router.service(GoBgpService, impl.v4);
        else router.service(GobgpApi, impl.v3);
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open watch streams would keep close() waiting.
        setTimeout(resolve, 200).unref();
      }),
  );
  return socket;
}

async function connected(socket: string): Promise<Speaker> {
  const s = await connectSpeaker(socket, { timeoutMs: 2000 });
  cleanups.push(() => s.close());
  return s;
}

async function failure(p: Promise<unknown>): Promise<SpeakerError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SpeakerError) return err;
    throw err;
  }
  throw new Error("expected a failure");
}

describe("connectSpeaker", () => {
  it("reports a missing socket as unavailable", async () => {
    const err = await failure(connectSpeaker(path.join(tempDir(), "none.sock")));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toMatch(/ENOENT/);
  });

  it("refuses a relative socket path", async () => {
    expect((await failure(connectSpeaker("gobgpd.sock"))).kind).toBe("invalid");
  });

  it("picks v4 when GoBgpService answers", async () => {
    const socket = await serve({ v4: { getBgp: () => ({ global: { asn: 65000, routerId: "192.0.2.1", listenPort: 179 } }) } });
    const s = await connected(`unix://${socket}`);
    expect(s.api).toBe("v4");
    expect(await s.getGlobal()).toEqual({ asn: 65000, routerId: "192.0.2.1", listenPort: 179, listenAddresses: [] });
  });

  it("falls back to v3 when GoBgpService is unimplemented", async () => {
    const socket = await serve({ v3: { getBgp: () => ({ global: {} }) } });
    const s = await connected(socket);
    expect(s.api).toBe("v3");
    expect(await s.getGlobal()).toBeUndefined();
  });

  it("says so when neither API answers", async () => {
    const socket = await serve({ v4: {} });
    const err = await failure(connectSpeaker(socket));
    expect(err.kind).toBe("other");
    expect(err.message).toMatch(/neither GoBGP API/);
  });
});

describe("watch", () => {
  async function take(s: Speaker, signal: AbortSignal, n: number): Promise<SpeakerEvent[]> {
    const out: SpeakerEvent[] = [];
    for await (const e of s.watch(signal)) {
      out.push(e);
      if (out.length === n) break;
    }
    return out;
  }

  it("maps events and ends quietly when the caller aborts", async () => {
    const socket = await serve({
      v4: {
        getBgp: () => ({ global: {} }),
        async *watchEvent(_req, ctx) {
          yield { event: { case: "table", value: { paths: [] } } };
          yield { event: { case: "peer", value: { peer: { state: { neighborAddress: "fd00:ff::1", sessionState: 6 } } } } };
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        },
      },
    });
    const s = await connected(socket);
    const ac = new AbortController();
    const events: SpeakerEvent[] = [];
    const done = (async () => {
      for await (const e of s.watch(ac.signal)) {
        events.push(e);
        if (events.length === 2) ac.abort();
      }
    })();
    await expect(done).resolves.toBeUndefined();
    expect(events).toEqual([{ kind: "rib" }, { kind: "peer", address: "fd00:ff::1", state: "established" }]);
  });

  it("ends quietly when the speaker is closed", async () => {
    const socket = await serve({
      v3: {
        getBgp: () => ({ global: {} }),
        async *watchEvent(_req, ctx) {
          yield { event: { case: "table", value: {} } };
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
        },
      },
    });
    const s = await connected(socket);
    const done = (async () => {
      for await (const _ of s.watch(new AbortController().signal)) s.close();
    })();
    await expect(done).resolves.toBeUndefined();
  });

  it("throws unavailable when the server ends the stream", async () => {
    const socket = await serve({
      v3: {
        getBgp: () => ({ global: {} }),
        async *watchEvent() {
          yield { event: { case: "table", value: {} } };
        },
      },
    });
    const s = await connected(socket);
    const events: SpeakerEvent[] = [];
    const err = await failure(
      (async () => {
        for await (const e of s.watch(new AbortController().signal)) events.push(e);
      })(),
    );
    expect(events).toEqual([{ kind: "rib" }]);
    expect(err).toMatchObject({ kind: "unavailable", message: "WatchEvent: gobgpd ended the stream" });
  });

  it("does nothing for an already aborted signal", async () => {
    const socket = await serve({ v4: { getBgp: () => ({ global: {} }) } });
    const s = await connected(socket);
    expect(await take(s, AbortSignal.abort(), 1)).toEqual([]);
  });
});
