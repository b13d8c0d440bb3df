import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { CniError, ErrorCode } from "./error.js";
import { findPlugin, invokeIpam, IpamError, parseIpamResult } from "./ipam.js";

const dir = mkdtempSync(path.join(tmpdir(), "kvrf-ipam-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function plugin(name: string, script: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${script}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe("findPlugin", () => {
  mkdirSync(path.join(dir, "a-dir"), { recursive: true });
  writeFileSync(path.join(dir, "not-executable"), "");
  const fine = plugin("fine", "exit 0");

  it("finds an executable file in CNI_PATH", () => {
    expect(findPlugin("fine", ["/nonexistent", dir])).toBe(fine);
  });
  it.each([
    ["missing", "missing", /^ipam\.type: IPAM plugin "missing" not found in CNI_PATH \(\/nonexistent:/],
    ["a directory", "a-dir", /not found in CNI_PATH/],
    ["not executable", "not-executable", /not found in CNI_PATH/],
    ["a path", "../fine", /^ipam\.type: "\.\.\/fine" must be a plugin name, not a path/],
    ["dot-dot", "..", /must be a plugin name/],
  ])("refuses %s with code 7 naming ipam.type", (_what, type, msg) => {
    const err = (() => {
      try {
        findPlugin(type, ["/nonexistent", dir]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(ErrorCode.InvalidConfig);
    expect((err as CniError).message).toMatch(msg);
  });
  it("refuses itself as its own IPAM", () => {
    expect(() => findPlugin(path.basename(process.execPath), [path.dirname(process.execPath)])).toThrow(/is this plugin itself/);
  });
});

describe("invokeIpam", () => {
  const env = { PATH: "/usr/bin:/bin" };
  it("rejects (never throws) when the plugin is missing", async () => {
    let p: Promise<string> | undefined;
    expect(() => (p = invokeIpam("missing", "ADD", [dir], env, Buffer.from("{}")))).not.toThrow();
    await expect(p).rejects.toMatchObject({ code: 7 });
  });
  it("passes a spec-level code of the plugin's error JSON through, and marks it answered", async () => {
    plugin("answers", `echo '{"cniVersion":"1.1.0","code":11,"msg":"busy","details":"d"}'; exit 1`);
    const err = (await invokeIpam("answers", "ADD", [dir], env, Buffer.from("{}")).catch((e: unknown) => e)) as IpamError;
    expect(err).toBeInstanceOf(IpamError);
    expect({ code: err.code, msg: err.message, details: err.details, answered: err.answered }).toEqual({ code: 11, msg: "IPAM plugin answers ADD: busy", details: "d", answered: true });
  });
  it("keeps a crash's stack trace out of the message, for the log only", async () => {
    plugin("panics", `printf 'panic: boom\\n\\ngoroutine 1 [running]:\\nmain.main()\\n\\t/src/main.go:12 +0x1d\\n' >&2; kill -KILL $$`);
    const err = (await invokeIpam("panics", "ADD", [dir], env, Buffer.from("{}")).catch((e: unknown) => e)) as IpamError;
    expect({ code: err.code, msg: err.message, answered: err.answered }).toEqual({ code: 102, msg: "IPAM plugin panics ADD: killed by SIGKILL: panic: boom", answered: false });
    expect(err.stderr).toContain("goroutine 1");
  });
  it("does not fail on a plugin that exits without reading its input", async () => {
    plugin("ignores", `echo '{"ips":[{"address":"10.0.0.2/24"}]}'`);
    await expect(invokeIpam("ignores", "ADD", [dir], env, Buffer.alloc(1 << 20))).resolves.toContain("10.0.0.2");
  });
});

describe("parseIpamResult", () => {
  it("reads addresses, routes and dns of any spec version", () => {
    expect(
      parseIpamResult(
        JSON.stringify({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.1.0.5/24", gateway: "10.1.0.1" }, { address: "fd10::5/64" }], routes: [{ dst: "10.2.0.0/16" }, { dst: "::/0", gw: "fd10::1" }], dns: { nameservers: ["10.0.0.10"] } }),
        "host-local",
      ),
    ).toEqual({
      ips: [
        { address: "10.1.0.5/24", gateway: "10.1.0.1", family: 4 },
        { address: "fd10::5/64", family: 6 },
      ],
      routes: [{ dst: "10.2.0.0/16" }, { dst: "::/0", gw: "fd10::1" }],
      dns: { nameservers: ["10.0.0.10"] },
    });
  });
  it.each([
    ["not JSON", "nope", /not JSON/],
    ["null", "null", /not a JSON object/],
    ["no IPs", "{}", /returned no IP address/],
    ["ips not a list", '{"ips":{}}', /ips is not a list/],
    ["a bad address", '{"ips":[{"address":"300.1.1.1/24"}]}', /ips\.0\.address: "300\.1\.1\.1\/24" is not an address\/prefix/],
    ["a route that would inject a batch line", '{"ips":[{"address":"10.0.0.2/24"}],"routes":[{"dst":"10.0.0.0/8\\nlink del lo"}]}', /routes\.0\.dst/],
    ["dns not an object", '{"ips":[{"address":"10.0.0.2/24"}],"dns":[]}', /dns is not an object/],
  ])("refuses %s with code 102", (_what, out, msg) => {
    expect(() => parseIpamResult(out, "x")).toThrow(msg);
  });
  it("turns any output into a result or a code-102 error, nothing else", () => {
    const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string());
    const cidr = fc.tuple(ip, fc.oneof(fc.integer({ min: -1, max: 130 }), fc.string())).map(([a, l]) => `${a}/${String(l)}`);
    const out = fc.oneof(
      fc.string(),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record({ ips: fc.array(fc.record({ address: fc.oneof(cidr, fc.jsonValue()), gateway: fc.oneof(ip, fc.jsonValue()) }, { requiredKeys: [] })), routes: fc.oneof(fc.array(fc.record({ dst: cidr, gw: ip }, { requiredKeys: [] })), fc.jsonValue()), dns: fc.jsonValue() }, { requiredKeys: [] })
        .map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(out, (text) => {
        try {
          const r = parseIpamResult(text, "x");
          expect(r.ips.length).toBeGreaterThan(0);
          for (const route of r.routes) expect(route.dst).not.toMatch(/\s/);
        } catch (err) {
          expect(err).toBeInstanceOf(CniError);
          expect((err as CniError).code).toBe(ErrorCode.Ipam);
        }
      }),
      { numRuns: 3000, seed: 17 },
    );
  });
});
