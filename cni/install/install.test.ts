import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadKubeconfig, type KubeClient } from "../kube/client.js";
import type { Logger } from "../log.js";
import { ConflistError, mayReplace, renderConflist } from "./conflist.js";
import { copyAtomic, writeAtomic } from "./files.js";
import { cniKubeconfig, fileNames, initialRefreshDelay, install, installConflist, refreshLoop, type InstallConfig } from "./install.js";
import { refreshDelay, tokenTimes } from "./token.js";

const template = JSON.stringify({
  cniVersion: "1.1.0",
  name: "kvrf",
  plugins: [{ type: "kvrf", vpc: "ab", nodeName: "@NODE_NAME@", kubeconfig: "@KUBECONFIG@", srv6Locator: "@SRV6_LOCATOR@", ipam: { type: "host-local" } }],
});
const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A JWT-shaped token with the given iat/exp (seconds); the signature is never checked here. */
function jwt(iat: number, exp: number): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "RS256" })}.${part({ iat, exp, sub: "system:serviceaccount:kvrf-system:kvrf-cni" })}.sig`;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

/** Answers the installer's two requests (GET node, POST TokenRequest) like the API server. */
function fakeApi(opts: { lifetimeMs?: number; fail?: number; annotations?: Record<string, string> } = {}): { client: KubeClient; calls: Call[] } {
  const calls: Call[] = [];
  let failures = opts.fail ?? 0;
  const client = {
    request: async (method: string, apiPath: string, o: { body?: unknown } = {}) => {
      calls.push({ method, path: apiPath, body: o.body });
      if (failures > 0) {
        failures--;
        throw new Error("connection refused");
      }
      if (method === "GET") return { status: 200, body: { metadata: { uid: "uid-1", annotations: opts.annotations ?? { "kvrf.dev/srv6-locator": "fd00:0:a::/48" } } } };
      const now = Date.now();
      const exp = now + (opts.lifetimeMs ?? 3_600_000);
      return { status: 201, body: { status: { token: jwt(Math.floor(now / 1000), Math.floor(exp / 1000)), expirationTimestamp: new Date(exp).toISOString() } } };
    },
    close: () => undefined,
  };
  return { client: client as unknown as KubeClient, calls };
}

describe("renderConflist", () => {
  it("substitutes the node's values as JSON string content", () => {
    const out = JSON.parse(renderConflist(template, { vars: { NODE_NAME: "iad", KUBECONFIG: '/etc/cni/net.d/"x".kubeconfig', SRV6_LOCATOR: "fd00:0:a::/48" } })) as {
      plugins: Record<string, unknown>[];
    };
    expect(out.plugins[0]).toMatchObject({ nodeName: "iad", kubeconfig: '/etc/cni/net.d/"x".kubeconfig', srv6Locator: "fd00:0:a::/48" });
  });

  it("substitutes node annotations", () => {
    const tpl = template.replace("@SRV6_LOCATOR@", "@annotation:example.com/locator@");
    const out = renderConflist(tpl, { vars: { NODE_NAME: "iad", KUBECONFIG: "/k" }, annotations: { "example.com/locator": "fd00:1::/48" } });
    expect(out).toContain('"srv6Locator": "fd00:1::/48"');
    expect(() => renderConflist(tpl, { vars: { NODE_NAME: "iad", KUBECONFIG: "/k" } })).toThrow(/@annotation:example.com\/locator@/);
  });

  it.each([
    ["a placeholder without a value", template, { NODE_NAME: "iad", KUBECONFIG: "/k" }, /no value for @SRV6_LOCATOR@/],
    ["text that is not JSON", "{ plugins: [", {}, /not JSON/],
    ["a list without kvrf", JSON.stringify({ cniVersion: "1.1.0", name: "x", plugins: [{ type: "bridge" }] }), {}, /type "kvrf"/],
    ["a list without a name", JSON.stringify({ cniVersion: "1.1.0", plugins: [{ type: "kvrf" }] }), {}, /"name"/],
  ])("refuses %s", (_what, tpl, vars, message) => {
    expect(() => renderConflist(tpl, { vars })).toThrow(message);
  });
});

describe("mayReplace", () => {
  it.each([
    ["no file", undefined, true],
    ["a kvrf conflist", template, true],
    ["another plugin's conflist", JSON.stringify({ cniVersion: "1.0.0", name: "cbr0", plugins: [{ type: "bridge" }] }), false],
    ["a single-plugin .conf", JSON.stringify({ cniVersion: "0.4.0", name: "x", type: "kvrf" }), false],
    ["garbage", "#!/bin/sh", false],
  ])("%s: %s", (_what, existing, want) => {
    expect(mayReplace(existing)).toBe(want);
  });
});

describe("installer files", () => {
  let dir: string;
  let cfg: InstallConfig;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "kvrf-install-"));
    for (const d of ["bin", "net.d", "image"]) mkdirSync(path.join(dir, d));
    writeFileSync(path.join(dir, "image/kvrf"), "#!plugin v1\n");
    writeFileSync(path.join(dir, "image/conflist.template"), template);
    cfg = {
      nodeName: "iad",
      namespace: "kvrf-system",
      serviceAccount: "kvrf-cni",
      binarySource: path.join(dir, "image/kvrf"),
      binDir: path.join(dir, "bin"),
      confDir: path.join(dir, "net.d"),
      hostConfDir: "/etc/cni/net.d",
      conflistName: "90-kvrf.conflist",
      conflistTemplate: path.join(dir, "image/conflist.template"),
      apiServer: "https://10.96.0.1:443",
      caCert: Buffer.from("CA"),
      tokenSeconds: 86400,
    };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const mode = (f: string): number => statSync(f).mode & 0o777;
  const netd = (f: string): string => path.join(dir, "net.d", f);

  it("writeAtomic replaces by rename, keeps an identical file, and leaves no temporary file", async () => {
    const f = path.join(dir, "f");
    expect(await writeAtomic(f, "one", 0o640)).toBe("written");
    const inode = statSync(f).ino;
    expect(await writeAtomic(f, "one", 0o640)).toBe("unchanged");
    expect(statSync(f).ino).toBe(inode);
    expect(await writeAtomic(f, "two", 0o640)).toBe("written");
    expect(statSync(f).ino).not.toBe(inode); // a new file renamed over the old: readers see one or the other
    expect(readFileSync(f, "utf8")).toBe("two");
    chmodSync(f, 0o666);
    expect(await writeAtomic(f, "two", 0o640)).toBe("written");
    expect(mode(f)).toBe(0o640);
    expect(readdirSync(dir).filter((n) => n.includes("kvrf-tmp"))).toEqual([]);
  });

  it("copyAtomic installs a copy by rename, keeps an identical one (compared a chunk at a time), replaces a changed one of the same size", async () => {
    const src = path.join(dir, "src");
    const f = path.join(dir, "bin-copy");
    // Larger than one compare chunk (1 MiB), differing only in the last byte of the second.
    const big = Buffer.alloc((1 << 20) + 4096, 7);
    writeFileSync(src, big);
    expect(await copyAtomic(src, f, 0o755)).toBe("written");
    expect(mode(f)).toBe(0o755);
    const inode = statSync(f).ino;
    expect(await copyAtomic(src, f, 0o755)).toBe("unchanged");
    expect(statSync(f).ino).toBe(inode);
    big[big.length - 1] = 8;
    writeFileSync(src, big);
    expect(await copyAtomic(src, f, 0o755)).toBe("written");
    expect(readFileSync(f).equals(big)).toBe(true);
    expect(statSync(f).ino).not.toBe(inode);
    chmodSync(f, 0o700);
    expect(await copyAtomic(src, f, 0o755)).toBe("written");
    expect(mode(f)).toBe(0o755);
    await expect(copyAtomic(path.join(dir, "missing"), f, 0o755)).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir).filter((n) => n.includes("kvrf-tmp"))).toEqual([]);
  });

  it("installs the binary, a node-bound token, the kubeconfig and the conflist", async () => {
    const api = fakeApi();
    await install(api.client, cfg, silent);
    expect(readFileSync(path.join(dir, "bin/kvrf"), "utf8")).toBe("#!plugin v1\n");
    expect(mode(path.join(dir, "bin/kvrf"))).toBe(0o755);
    expect(mode(netd(fileNames.token))).toBe(0o600);
    expect(mode(netd(fileNames.kubeconfig))).toBe(0o600);
    expect(api.calls.map((c) => `${c.method} ${c.path}`)).toEqual(["GET /api/v1/nodes/iad", "POST /api/v1/namespaces/kvrf-system/serviceaccounts/kvrf-cni/token"]);
    expect(api.calls[1]?.body).toMatchObject({ spec: { expirationSeconds: 86400, boundObjectRef: { kind: "Node", name: "iad", uid: "uid-1" } } });
    const conflist = JSON.parse(readFileSync(netd("90-kvrf.conflist"), "utf8")) as { plugins: Record<string, unknown>[] };
    expect(conflist.plugins[0]).toMatchObject({ nodeName: "iad", kubeconfig: "/etc/cni/net.d/kvrf.kubeconfig", srv6Locator: "fd00:0:a::/48" });
    expect(readdirSync(netd(".")).sort()).toEqual(["90-kvrf.conflist", "kvrf.kubeconfig", "kvrf.token"]);
  });

  it("writes a kubeconfig the plugin's own loader reads, with the token from its file", async () => {
    const tokenFile = netd("kvrf.token");
    writeFileSync(tokenFile, "tok-123\n");
    writeFileSync(netd("kvrf.kubeconfig"), cniKubeconfig("https://[fd00::1]:6443", Buffer.from("PEM"), tokenFile));
    const creds = await loadKubeconfig(netd("kvrf.kubeconfig"));
    expect(creds).toMatchObject({ server: "https://[fd00::1]:6443", token: "tok-123", insecure: false });
    expect(creds.ca?.toString()).toBe("PEM");
  });

  it("refuses to overwrite another plugin's conflist and leaves it as it was", async () => {
    const theirs = JSON.stringify({ cniVersion: "1.0.0", name: "cbr0", plugins: [{ type: "bridge" }] });
    writeFileSync(netd("90-kvrf.conflist"), theirs);
    await expect(installConflist(cfg, { uid: "u", annotations: { "kvrf.dev/srv6-locator": "fd00::/48" } })).rejects.toThrow(ConflistError);
    await expect(installConflist(cfg, { uid: "u", annotations: { "kvrf.dev/srv6-locator": "fd00::/48" } })).rejects.toThrow(/refusing to overwrite another plugin/);
    expect(readFileSync(netd("90-kvrf.conflist"), "utf8")).toBe(theirs);
  });

  it("replaces its own older conflist, and skips the conflist without a template", async () => {
    writeFileSync(netd("90-kvrf.conflist"), renderConflist(template, { vars: { NODE_NAME: "old", KUBECONFIG: "/k", SRV6_LOCATOR: "fd00::/48" } }));
    expect(await installConflist(cfg, { uid: "u", annotations: { "kvrf.dev/srv6-locator": "fd00::/48" } })).toBe("written");
    expect(readFileSync(netd("90-kvrf.conflist"), "utf8")).toContain('"nodeName": "iad"');
    expect(await installConflist({ ...cfg, conflistTemplate: path.join(dir, "absent") }, { uid: "u", annotations: {} })).toBe("skipped");
  });

  it("says which node annotation is missing when the template needs the locator", async () => {
    await expect(installConflist(cfg, { uid: "u", annotations: {} })).rejects.toThrow(/@SRV6_LOCATOR@/);
  });

  it("refreshes the token at half its lifetime and retries failures with backoff", async () => {
    const api = fakeApi({ lifetimeMs: 400, fail: 1 });
    const stop = new AbortController();
    const loop = refreshLoop({ cfg, log: silent, newClient: async () => api.client, signal: stop.signal, maxBackoffMs: 20 });
    const posts = (): number => api.calls.filter((c) => c.method === "POST").length;
    const started = Date.now();
    while (posts() < 2 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
    const elapsed = Date.now() - started;
    stop.abort();
    await loop;
    // The first attempt failed at its GET; then a token lives 400 ms and is replaced after ~200.
    expect(api.calls[0]?.method).toBe("GET");
    expect(posts()).toBeGreaterThanOrEqual(2);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(readFileSync(netd(fileNames.token), "utf8")).toMatch(/^[\w-]+\.[\w-]+\.sig\n$/);
  });

  it("waits for half of the lifetime of a token already on disk", async () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const iat = now.getTime() / 1000 - 3600;
    writeFileSync(netd(fileNames.token), `${jwt(iat, iat + 4 * 3600)}\n`);
    expect(await initialRefreshDelay(cfg, now)).toBe(3600_000);
    writeFileSync(netd(fileNames.token), "not a jwt\n");
    expect(await initialRefreshDelay(cfg, now)).toBe(0);
  });
});

describe("token times", () => {
  it("reads iat/exp of a JWT and schedules at half the lifetime, never negative", () => {
    expect(tokenTimes(jwt(100, 200))).toEqual({ issuedAt: new Date(100_000), expiresAt: new Date(200_000) });
    expect(tokenTimes("a.b")).toBeUndefined();
    expect(refreshDelay(new Date(120_000), new Date(100_000), new Date(200_000))).toBe(30_000);
    expect(refreshDelay(new Date(190_000), new Date(100_000), new Date(200_000))).toBe(0);
  });
});
