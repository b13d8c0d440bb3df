// connectSpeaker and the watch() contract against fake gobgpd APIs served in-process on a unix
// socket (the real daemons are exercised in test/integration/speaker.test.ts).
import http2 from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { GoBgpService } from "../../proto/gen/api/gobgp_pb.js";
import { GobgpApi } from "../../proto/gen/apipb/gobgp_pb.js";
import { SpeakerError, type Speaker, type SpeakerEvent } from "./speaker.js";
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

describe("calls (the lean HTTP/2 transport of h2-transport.ts)", () => {
  const vrf = { name: "vpc-a", id: 1, rd: { type: 0 as const, asn: 65000, assigned: 1 }, importRts: [], exportRts: [{ type: 0 as const, asn: 65000, assigned: 1 }] };
  const lp = { vrf: "vpc-a", prefix: "10.0.0.1/32", nextHop: "fd00::1", encap: "srv6" as const, sid: "fd00::2", behavior: 20 as const };

  it("classifies gobgpd's errors from grpc-status and grpc-message, percent-encoding undone", async () => {
    const socket = await serve({
      v4: {
        getBgp: () => ({ global: { asn: 65000, routerId: "192.0.2.1" } }),
        addVrf: () => {
          throw new ConnectError("vrf vpc-a already exists", Code.Unknown);
        },
        deleteVrf: () => {
          throw new ConnectError("vrf 100% nope not found", Code.Unknown);
        },
      },
    });
    const s = await connected(socket);
    expect(await failure(s.addVrf(vrf))).toMatchObject({ kind: "already-exists", message: "AddVrf vpc-a: vrf vpc-a already exists (gRPC Unknown)" });
    expect((await failure(s.deleteVrf("x"))).message).toMatch(/vrf 100% nope not found/);
  });

  it("sends a batch of paths as one AddPathStream request, and one path as AddPath", async () => {
    const batches: number[] = [];
    const socket = await serve({
      v4: {
        getBgp: () => ({ global: { asn: 65000, routerId: "192.0.2.1" } }),
        addPath: (req) => {
          batches.push(req.path === undefined ? 0 : 1);
          return {};
        },
        async addPathStream(reqs) {
          for await (const r of reqs) batches.push(r.paths.length);
          return {};
        },
      },
    });
    const s = await connected(socket);
    await Promise.all([s.addLocalPaths(vrf, [lp, { ...lp, prefix: "10.0.0.2/32" }]), s.addLocalPaths(vrf, [{ ...lp, prefix: "10.0.0.3/32" }])]);
    await s.addLocalPaths(vrf, [lp]);
    expect(batches).toEqual([3, 1]);
  });

  it("times out as unavailable, and a closed speaker refuses calls", async () => {
    const socket = await serve({
      v4: {
        getBgp: () => ({ global: { asn: 65000, routerId: "192.0.2.1" } }),
        addVrf: () => new Promise(() => undefined),
      },
    });
    const s = await connectSpeaker(socket, { timeoutMs: 300 });
    cleanups.push(() => s.close());
    expect(await failure(s.addVrf(vrf))).toMatchObject({ kind: "unavailable" });
    s.close();
    expect(await failure(s.getGlobal())).toMatchObject({ kind: "unavailable" });
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
          yield { event: { case: "peer", value: { type: 2 } } };
          // An empty table event says nothing.
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
    expect(events).toEqual([{ kind: "watching" }, { kind: "peer", address: "fd00:ff::1", state: "established" }]);
  });

  it("ends quietly when the speaker is closed", async () => {
    const socket = await serve({
      v3: {
        getBgp: () => ({ global: {} }),
        async *watchEvent(_req, ctx) {
          yield { event: { case: "peer", value: { type: 2 } } };
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
          yield { event: { case: "peer", value: { type: 2 } } };
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
    expect(events).toEqual([{ kind: "watching" }]);
    expect(err).toMatchObject({ kind: "unavailable", message: "WatchEvent: gobgpd ended the stream" });
  });

  it("does nothing for an already aborted signal", async () => {
    const socket = await serve({ v4: { getBgp: () => ({ global: {} }) } });
    const s = await connected(socket);
    expect(await take(s, AbortSignal.abort(), 1)).toEqual([]);
  });
});
