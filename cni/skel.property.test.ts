// Properties of the entry mechanics over arbitrary environments, stdin and thrown values: whatever
// comes in and whatever a handler throws, one invocation prints exactly one answer and exits with
// the status that goes with it. The real binary gets the same treatment in
// test/integration/cni-inputs.test.ts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CniError, ErrorCode } from "./error.js";
import { dispatch, verbs, type Handlers } from "./skel.js";
import { supportedVersions } from "./version.js";

const knownCodes = new Set<number>(Object.values(ErrorCode));
/** A stack trace line as V8 (and Go) print them. */
const stackLine = /^\s*at .+:\d+:\d+\)?$|\n\s+at |goroutine \d+ \[/m;

const verbArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...verbs) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom("", "add", "FROB", " ADD"), fc.string()) },
);
const oddValue = fc.oneof(fc.constant(""), fc.string(), fc.constantFrom("a/b", "x\nlink del lo", "relative", "-x", "a".repeat(300)));
/** A valid value most of the time, else something odd, else absent. */
const envVar = (valid: string): fc.Arbitrary<string | undefined> =>
  fc.oneof({ weight: 6, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: oddValue }, { weight: 1, arbitrary: fc.constant(undefined) });
const envArb = fc
  .record({
    CNI_COMMAND: verbArb,
    CNI_CONTAINERID: envVar("ctr1"),
    CNI_NETNS: envVar("/var/run/netns/x"),
    CNI_IFNAME: envVar("eth0"),
    CNI_PATH: envVar("/opt/cni/bin"),
    CNI_ARGS: fc.oneof(fc.constant(undefined), envVar("A=1;B=2"), fc.constantFrom("K8S_POD_NAME", "=x", ";;")),
  })
  .map((env) => Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>);
const configArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ cniVersion: fc.constantFrom(...supportedVersions), name: fc.constant("net") }) },
  {
    weight: 2,
    arbitrary: fc.record(
      { cniVersion: fc.oneof(fc.constantFrom(...supportedVersions), fc.string(), fc.jsonValue()), name: fc.oneof(fc.constantFrom("net", "-x", ""), fc.string(), fc.jsonValue()) },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue() },
);
const stdinArb = fc.oneof(
  { weight: 6, arbitrary: configArb.map((c) => JSON.stringify(c)) },
  {
    weight: 1,
    arbitrary: configArb.chain((c) => {
      const text = JSON.stringify(c);
      return fc.nat({ max: text.length }).map((n) => text.slice(0, n));
    }),
  },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.uint8Array().map((b) => Buffer.from(b).toString("latin1")) },
);

/** What a handler may throw or reject with. */
const thrownArb = fc.oneof(
  fc.anything(),
  fc.string().map((m) => new Error(m)),
  fc.string().map((m) => new TypeError(m)),
  fc.tuple(fc.constantFrom(...Object.values(ErrorCode)), fc.string(), fc.string()).map(([c, m, d]) => new CniError(c, m, d)),
  fc.constantFrom("ENOSPC", "EROFS", "EACCES").map((code) => Object.assign(new Error(`${code}: failed, write`), { code, syscall: "write" })),
  fc.constant(
    new Proxy(new Error("p"), {
      get() {
        throw new Error("getter throws");
      },
    }),
  ),
  fc.constant({
    toString() {
      throw new Error("toString throws");
    },
  }),
);

const behaviourArb = fc.oneof(
  fc.constant({ kind: "ok" as const }),
  thrownArb.map((v) => ({ kind: "throw" as const, v })),
  thrownArb.map((v) => ({ kind: "reject" as const, v })),
);

function handlersFor(b: { kind: "ok" } | { kind: "throw" | "reject"; v: unknown }): Handlers {
  const run = async (): Promise<void> => {
    if (b.kind === "throw") throw b.v;
    // Anything, Error or not: that is the point.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    if (b.kind === "reject") await Promise.reject(b.v);
  };
  return {
    add: async (a) => {
      await run();
      return { cniVersion: a.cniVersion, ips: [] };
    },
    del: run,
    check: run,
    status: run,
    gc: run,
  };
}

describe("dispatch over arbitrary input", () => {
  it("prints one answer and exits 0 with a result or 1 with one clean error JSON", async () => {
    await fc.assert(
      fc.asyncProperty(envArb, stdinArb, behaviourArb, async (env, stdin, behaviour) => {
        const writes: string[] = [];
        const logged: unknown[] = [];
        const status = await dispatch(handlersFor(behaviour), {
          env,
          readStdin: () => Promise.resolve(Buffer.from(stdin, "utf8")),
          writeStdout: (t) => void writes.push(t),
          logError: (err) => void logged.push(err),
        });
        expect([0, 1]).toContain(status);
        const verb = env.CNI_COMMAND;
        if (status === 0) {
          // A result for ADD and VERSION, nothing for the others.
          if (verb === "ADD" || verb === "VERSION") {
            expect(writes).toHaveLength(1);
            expect(() => JSON.parse(writes[0] ?? "") as unknown).not.toThrow();
          } else {
            expect(writes).toEqual([]);
          }
          return;
        }
        expect(writes).toHaveLength(1);
        const text = writes[0] ?? "";
        expect(text.endsWith("\n")).toBe(true);
        expect(text.trimEnd().includes("\n")).toBe(false);
        const out = JSON.parse(text) as { cniVersion?: unknown; code?: unknown; msg?: unknown; details?: unknown };
        expect(typeof out.code).toBe("number");
        expect(knownCodes.has(out.code as number)).toBe(true);
        expect(typeof out.msg).toBe("string");
        expect(supportedVersions as readonly unknown[]).toContain(out.cniVersion);
        expect(stackLine.test(`${String(out.msg)}\n${typeof out.details === "string" ? out.details : ""}`)).toBe(false);
        expect(["string", "undefined"]).toContain(typeof out.details);
        expect((out.msg as string).length).toBeLessThanOrEqual(2000);
        // Code 999 comes only from a handler that threw something that is not a CniError, and its
        // stack went to the log.
        if (out.code === ErrorCode.Internal && !(behaviour.kind !== "ok" && behaviour.v instanceof CniError && behaviour.v.code === ErrorCode.Internal)) {
          expect(behaviour.kind).not.toBe("ok");
          expect(logged).toHaveLength(1);
        }
      }),
      { numRuns: 2000, seed: 17 },
    );
  });

  it("names the CNI_* variable it refuses (code 4)", async () => {
    await fc.assert(
      fc.asyncProperty(envArb, async (env) => {
        const writes: string[] = [];
        await dispatch(handlersFor({ kind: "ok" }), {
          env,
          readStdin: () => Promise.resolve(Buffer.from(JSON.stringify({ cniVersion: "1.1.0", name: "n" }))),
          writeStdout: (t) => void writes.push(t),
        });
        const out = writes[0] === undefined ? undefined : (JSON.parse(writes[0]) as { code?: number; msg?: string });
        if (out?.code === ErrorCode.InvalidEnvironment) expect(out.msg).toMatch(/CNI_(COMMAND|CONTAINERID|NETNS|IFNAME|PATH|ARGS)/);
      }),
      { numRuns: 1000, seed: 17 },
    );
  });

  it("refuses a CNI_NETNS that would not be one word of an ip batch line", async () => {
    for (const netns of ["relative/ns", "/var/run/netns/a b", "/var/run/netns/x\nlink del lo", "/x\u0000"]) {
      const writes: string[] = [];
      const status = await dispatch(handlersFor({ kind: "ok" }), {
        env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" },
        readStdin: () => Promise.resolve(Buffer.from(JSON.stringify({ cniVersion: "1.1.0", name: "n" }))),
        writeStdout: (t) => void writes.push(t),
      });
      expect(status).toBe(1);
      expect(JSON.parse(writes[0] ?? "")).toMatchObject({ code: 4, msg: expect.stringContaining("CNI_NETNS") as unknown });
    }
  });

  it("refuses a config nested too deep to print (code 7, naming the field)", async () => {
    const writes: string[] = [];
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const status = await dispatch(handlersFor({ kind: "ok" }), {
      env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/var/run/netns/x", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin" },
      readStdin: () => Promise.resolve(Buffer.from(`{"cniVersion":"1.1.0","name":"n","mtu":${deep}}`)),
      writeStdout: (t) => void writes.push(t),
    });
    expect(status).toBe(1);
    expect(JSON.parse(writes[0] ?? "")).toEqual({ cniVersion: "1.1.0", code: 7, msg: "mtu: nested more than 64 levels deep" });
  });

  it("still answers when stdout throws on the first write", async () => {
    let calls = 0;
    const status = await dispatch(handlersFor({ kind: "ok" }), {
      env: { CNI_COMMAND: "VERSION" },
      readStdin: () => Promise.resolve(Buffer.alloc(0)),
      writeStdout: () => {
        calls++;
        throw new Error("EPIPE");
      },
    });
    expect(status).toBe(1);
    expect(calls).toBe(2);
  });
});
