// Property-based tests of the real dist/kvrf over arbitrary input: network configs (wrong types,
// sizes, unicode, huge numbers, missing and extra fields, deep nesting, truncated JSON, bytes that
// are no JSON at all), CNI_* environments (missing and odd values) and verbs. For every case:
//   - exactly one answer on stdout (a result, or nothing, or one error JSON), an exit status that
//     goes with it, a known code (never 999), no stack trace;
//   - a refusal of a config field or a CNI_* variable names one of the fields it was given wrong;
//   - after ADD, nothing in the node's kernel, the pod, the IPAM store, the API server or the state
//     directory (a successful ADD is DELeted first, and that DEL must succeed).
// Seeded: KVRF_PROPERTY_SEED and KVRF_PROPERTY_RUNS override; a failure prints the seed, the path
// and the shrunk case, which replay with the same seed.
//
// The generators never hand the plugin a path outside this run's directory, a node or VPC another
// suite uses, or a CNI_PATH and IPAM type that would run some other program: whatever they make,
// the plugin may do it for real.
import { createHash } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { expectAnswer, FaultNode } from "../harness/cni-faults.js";
import type { Netns } from "../harness/netns.js";
import { cniBinDir } from "../harness/tools.js";
import { variants } from "../harness/variants.js";

const seed = Number(process.env["KVRF_PROPERTY_SEED"] ?? 1917);
const numRuns = Number(process.env["KVRF_PROPERTY_RUNS"] ?? 200);
const nodeName = "inputs-node";
const asn = 64601;
const vpc = "e1";

const dnsName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A value of any JSON type, often odd: unicode, long, huge or tiny numbers, nested. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", " ", "\u0000", "\n", "ﬀ", "😀", "\u202e", "-1", "0x", "NaN"),
  fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 1e21, -1e308, Number.MAX_SAFE_INTEGER)),
  fc.boolean(),
  fc.constant(null),
);

/** Numbers JSON can write but a double cannot hold: placed as raw text into stdin. */
const rawNumbers = ["1e400", "-1e400", "9007199254740993", "4294967296", "65536", "-0", "1.0", "1e-400", "123456789012345678901234567890"];

type Mutation =
  | { kind: "delete"; key: string }
  | { kind: "set"; key: string; value: unknown }
  | { kind: "raw-number"; key: string; text: string }
  | { kind: "huge"; key: string; size: number }
  | { kind: "deep"; key: string; depth: number }
  | { kind: "extra"; key: string; value: unknown };

const configKeys = [
  "cniVersion",
  "name",
  "type",
  "vpc",
  "vpcFromNamespace",
  "vpcAttachment",
  "ipam",
  "srv6Locator",
  "encapsulation",
  "kubeconfig",
  "asn",
  "nodeName",
  "mtu",
  "terminations",
  "dataplaneMode",
  "stateDir",
  "logFile",
  "logLevel",
  "args",
  "prevResult",
  "runtimeConfig",
  "cni.dev/valid-attachments",
];

/** Values that are valid for a field, to pair with other mutations (kept inside this suite's ranges). */
const validFor: Record<string, fc.Arbitrary<unknown>> = {
  cniVersion: fc.constantFrom("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
  vpc: fc.constantFrom("e1", "0xe1", "00000000e1", "e2", "1000000e1"),
  vpcAttachment: fc.constantFrom("1", "0x2", "ffff", "0"),
  vpcFromNamespace: fc.constantFrom(true, false),
  mtu: fc.constantFrom(1280, 1400, 9000, 65535),
  asn: fc.constantFrom(64601, 64602, 4200000001),
  logLevel: fc.constantFrom("debug", "info", "warn", "error"),
  dataplaneMode: fc.constantFrom("auto", "vrf", "policy-routing"),
  encapsulation: fc.constantFrom("srv6", "vxlan"),
  srv6Locator: fc.constantFrom("fd00:0:e1::/48", "fd00::/64", "fd00:e1::/63"),
  terminations: fc.constantFrom([], [{ network: "10.99.0.0/16", via: "10.62.0.2" }], [{ network: "fd99::/64", via: "fd62::2" }]),
  // A chained ADD's prevResult, well-formed or not quite.
  prevResult: fc.constantFrom(
    { cniVersion: "1.1.0", interfaces: [{ name: "x", sandbox: "/x" }], ips: [{ address: "10.9.9.9/32", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }], dns: {} },
    { cniVersion: "0.4.0", ips: [{ version: "4", address: "10.9.9.9/32" }] },
    { ips: [null], interfaces: [null], routes: [null] },
    { ips: [{ address: 5 }], interfaces: "x", routes: {}, dns: [] },
    { ips: [{ interface: -1 }] },
  ),
  "cni.dev/valid-attachments": fc.constantFrom([], [{ containerID: "inputs-ctr", ifname: "eth0" }], [null, 1, "x"], {}),
};

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...configKeys).map((key): Mutation => ({ kind: "delete", key })) },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...configKeys), anyValue).map(([key, value]): Mutation => ({ kind: "set", key, value })) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...Object.keys(validFor)).chain((key) => (validFor[key] ?? fc.constant(null)).map((value): Mutation => ({ kind: "set", key, value }))),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...configKeys), fc.constantFrom(...rawNumbers)).map(([key, text]): Mutation => ({ kind: "raw-number", key, text })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...configKeys), fc.integer({ min: 10_000, max: 1_000_000 })).map(([key, size]): Mutation => ({ kind: "huge", key, size })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...configKeys), fc.integer({ min: 100, max: 100_000 })).map(([key, depth]): Mutation => ({ kind: "deep", key, depth })) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), anyValue).map(([key, value]): Mutation => ({ kind: "extra", key, value })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom("type", "ranges", "dataDir", "routes"), anyValue)
      .map(([sub, value]): Mutation => ({ kind: "set", key: `ipam.${sub}`, value })),
  },
);

type EnvChange = { name: string; value: string | undefined };
const envNames = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH", "CNI_ARGS"];
const envChangeArb: fc.Arbitrary<EnvChange> = fc.oneof(
  fc.constantFrom(...envNames).map((name): EnvChange => ({ name, value: undefined })),
  fc.tuple(fc.constantFrom(...envNames), fc.oneof(fc.string({ unit: "grapheme", maxLength: 30 }), fc.constantFrom("", " ", "a/b", "x\nlink del lo", "-x", "a".repeat(300), "lo", "eth0:1", "relative/ns", "/nonexistent/ns"))).map(
    ([name, value]): EnvChange => ({ name, value }),
  ),
  fc.constantFrom("K8S_POD_NAME", "=x", ";;", "IgnoreUnknown=1;K8S_POD_NAME=p", "KVRF_VPC_ATTACHMENT=zz", "KVRF_VPC_ATTACHMENT=3", "NODE_NAME=Not_A_Name", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default", "IgnoreUnknown=1;K8S_POD_NAMESPACE=no-such-ns").map((value): EnvChange => ({ name: "CNI_ARGS", value })),
);

const verbArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant("ADD") },
  { weight: 3, arbitrary: fc.constant("DEL") },
  { weight: 2, arbitrary: fc.constantFrom("CHECK", "STATUS", "GC") },
  { weight: 1, arbitrary: fc.constantFrom("VERSION", "", "add", "FROB") },
);

type StdinForm = { kind: "json" } | { kind: "pretty" } | { kind: "truncated"; at: number } | { kind: "bytes"; bytes: Uint8Array } | { kind: "bom" } | { kind: "not-object"; value: unknown };
const stdinFormArb: fc.Arbitrary<StdinForm> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<StdinForm>({ kind: "json" }) },
  { weight: 1, arbitrary: fc.constant<StdinForm>({ kind: "pretty" }) },
  { weight: 2, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((at): StdinForm => ({ kind: "truncated", at })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): StdinForm => ({ kind: "bytes", bytes })) },
  { weight: 1, arbitrary: fc.constant<StdinForm>({ kind: "bom" }) },
  { weight: 1, arbitrary: fc.oneof(fc.array(anyValue), fc.string(), fc.integer(), fc.constant(null)).map((value): StdinForm => ({ kind: "not-object", value })) },
);

const caseArb = fc.record({
  variant: fc.nat({ max: variants.length - 1 }),
  verb: verbArb,
  mutations: fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 5, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
  env: fc.oneof({ weight: 4, arbitrary: fc.constant<EnvChange[]>([]) }, { weight: 1, arbitrary: fc.array(envChangeArb, { minLength: 1, maxLength: 2 }) }),
  stdin: stdinFormArb,
});
interface Case {
  variant: number;
  verb: string;
  mutations: Mutation[];
  env: EnvChange[];
  stdin: StdinForm;
}

describe("CNI plugin over arbitrary input (property)", () => {
  let n: FaultNode;
  let pod: Netns;
  /** Program names in CNI_PATH that must never be run as IPAM (only host-local may). */
  let forbiddenIpam: Set<string>;
  const stats = { cases: 0, byVerb: new Map<string, number>(), byCode: new Map<string, number>(), addSucceeded: 0 };

  beforeAll(async () => {
    n = await FaultNode.start("inputs", nodeName, inject("kubeconfig"));
    for (const v of variants) await n.prepareFor(v);
    pod = await n.pod("inputs-pod");
    forbiddenIpam = new Set([...readdirSync(cniBinDir()), ...readdirSync(n.binDir)].filter((f) => f !== "host-local"));
  });

  afterAll(async () => {
    process.stdout.write(
      `cni-faults-inputs: ${stats.cases} cases (seed ${seed}); verbs ${JSON.stringify(Object.fromEntries(stats.byVerb))}; ` +
        `answers ${JSON.stringify(Object.fromEntries(stats.byCode))}; successful ADDs ${stats.addSucceeded}\n`,
    );
    await n?.close();
  });

  /** Keeps a generated value from pointing anywhere real outside this run. */
  function tame(key: string, value: unknown): unknown {
    if (typeof value !== "string") return value;
    // Paths: absolute ones (which the plugin takes) and, for the IPAM plugin's dataDir, relative
    // ones too (host-local takes those from its working directory).
    if ((["kubeconfig", "stateDir", "logFile"].includes(key) && value.startsWith("/")) || (key === "ipam.dataDir" && value !== "")) {
      return path.join(n.dir, "fuzz", `f-${createHash("sha256").update(value).digest("hex").slice(0, 12)}`);
    }
    if (key === "nodeName" && dnsName.test(value) && value !== nodeName) return `${value}_`;
    if (key === "ipam.type" && forbiddenIpam.has(value)) return `${value}-absent`;
    return value;
  }

  function config(c: Case): { text: string; touched: string[] } {
    const v = variants[c.variant] ?? variants[0];
    if (v === undefined) throw new Error("no variants");
    const conf: Record<string, unknown> = { cniVersion: "1.1.0", name: "inputs", ...v.config({ ...n.base(vpc, n.hostLocal("inputs"), asn) }) };
    const touched: string[] = [];
    const raws = new Map<string, string>();
    for (const m of c.mutations) {
      const [top, sub] = m.key.split(".", 2) as [string, string | undefined];
      touched.push(top);
      if (m.kind === "delete") {
        delete conf[top];
      } else if (m.kind === "extra") {
        conf[m.key] = m.value;
      } else if (m.kind === "raw-number") {
        const marker = `__raw_${raws.size}__`;
        raws.set(marker, m.text);
        conf[top] = marker;
      } else if (m.kind === "huge") {
        conf[top] = "x".repeat(m.size);
      } else if (m.kind === "deep") {
        const marker = `__raw_${raws.size}__`;
        raws.set(marker, "[".repeat(m.depth) + "1" + "]".repeat(m.depth));
        conf[top] = marker;
      } else if (sub !== undefined) {
        const obj = conf[top];
        conf[top] = { ...(typeof obj === "object" && obj !== null && !Array.isArray(obj) ? obj : {}), [sub]: tame(m.key, m.value) };
      } else {
        conf[top] = tame(top, m.value);
      }
    }
    let text = JSON.stringify(conf);
    for (const [marker, raw] of raws) text = text.replace(`"${marker}"`, raw);
    return { text, touched };
  }

  function stdinOf(c: Case, text: string): Buffer {
    switch (c.stdin.kind) {
      case "json":
        return Buffer.from(text);
      case "pretty":
        try {
          return Buffer.from(JSON.stringify(JSON.parse(text), null, 2));
        } catch {
          return Buffer.from(text); // too deep to print again
        }
      case "truncated":
        return Buffer.from(text).subarray(0, Math.floor(text.length * c.stdin.at));
      case "bytes":
        return Buffer.from(c.stdin.bytes);
      case "bom":
        return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]);
      case "not-object":
        return Buffer.from(JSON.stringify(c.stdin.value) ?? "");
    }
  }

  function environment(c: Case): { env: Record<string, string>; touched: string[]; values: string[] } {
    const env: Record<string, string> = {
      CNI_COMMAND: c.verb,
      CNI_CONTAINERID: "inputs-ctr",
      CNI_NETNS: pod.path,
      CNI_IFNAME: "eth0",
      CNI_PATH: `${n.binDir}:${cniBinDir()}`,
    };
    if (c.verb === "") delete env["CNI_COMMAND"];
    const touched: string[] = [];
    const values: string[] = [];
    for (const e of c.env) {
      touched.push(e.name);
      if (e.value === undefined) {
        delete env[e.name];
        continue;
      }
      let value = e.value;
      // Never a real path the plugin could use as a pod's namespace or a directory of programs.
      if ((e.name === "CNI_NETNS" || e.name === "CNI_PATH") && value.includes("/") && value !== pod.path) value = `/nonexistent/${encodeURIComponent(value)}`;
      env[e.name] = value;
      if (value.trim().length >= 2) values.push(value);
    }
    return { env, touched, values };
  }

  it(`keeps its answer and its node clean for ${numRuns} generated invocations`, { timeout: 30 * 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { text, touched: fields } = config(c);
        const stdin = stdinOf(c, text);
        const { env, touched: vars, values } = environment(c);
        const verb = env["CNI_COMMAND"] ?? "";
        const r = await n.run(verb, stdin, { raw: env }, 60_000);
        stats.cases++;
        stats.byVerb.set(verb, (stats.byVerb.get(verb) ?? 0) + 1);
        const a = expectAnswer(r, `case ${JSON.stringify(c).slice(0, 2000)}`);
        stats.byCode.set(String(a.error?.code ?? 0), (stats.byCode.get(String(a.error?.code ?? 0)) ?? 0) + 1);
        if (a.error !== undefined && (a.error.code === 4 || a.error.code === 7 || a.error.code === 1)) {
          // A refusal names what it refuses: one of the fields or variables given wrong (or the
          // value given), else the field it is about ("<field>: …").
          const msg = a.error.msg;
          const names = [...fields, ...vars, ...values, ...(vars.includes("CNI_ARGS") ? ["vpcAttachment", "nodeName"] : []), ...(fields.includes("args") ? ["vpcAttachment"] : [])];
          const namesGiven = names.some((f) => msg.includes(f));
          const namesAField = /^(cni\.dev\/)?[a-zA-Z][a-zA-Z0-9.]*(\.\d+)*(\.[a-zA-Z]+)?: /.test(msg) || /^CNI_[A-Z]+|\[CNI_/.test(msg) || /network name|CNI_/.test(msg);
          expect(namesGiven || namesAField, `"${msg}" names none of ${names.join(", ")} and no field`).toBe(true);
        }
        if (verb === "ADD" && r.status === 0) {
          stats.addSucceeded++;
          const d = await n.run("DEL", stdin, { raw: { ...env, CNI_COMMAND: "DEL" } }, 60_000);
          expectAnswer(d, "DEL of a successful ADD");
          expect(d.status, d.stdout).toBe(0);
        }
        if (verb === "ADD") {
          // What went where a generated path pointed (or, relative, into the plugin's working
          // directory, the node's): hold markers, leases.
          const strays = readdirSync(n.dir, { recursive: true, encoding: "utf8" })
            .filter((f) => /(^|\/)claims\/./.test(f) || isIP(path.basename(f)) !== 0)
            .map((f) => path.join(n.dir, f));
          const left = [...(await n.leftovers([pod])), ...strays];
          if (left.length > 0) {
            await n.scrub([pod]);
            for (const f of strays) rmSync(f, { force: true });
          }
          expect(left, `left behind by ${JSON.stringify(c).slice(0, 1000)}`).toEqual([]);
        }
      }),
      { numRuns, seed, endOnFailure: true },
    );
  });
});
