// The kubeconfig reader both clients build on, as a table: context resolution, files relative to
// the kubeconfig, inline data, tokens, the user fields it reports instead of running, and the
// files it cannot use. The callers' own tests cover what each adds (token refresh, refusals).
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { KubeconfigError, readKubeconfig, type Kubeconfig } from "./kubeconfig.js";
import { kubeconfigDir, kubeconfigFixture as config, writeKubeconfigFixture } from "./testing/kubeconfig.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

type Fields = Record<string, unknown>;

/** A result with its buffers as text, so a table can say what it wants. */
function view(kc: Kubeconfig): Record<string, unknown> {
  return Object.fromEntries(Object.entries(kc).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : v]));
}

describe("readKubeconfig", () => {
  const dir = kubeconfigDir("kvrf-kubeconfig-");

  // `file`: JSON of an object, a string as it is; `want`: the whole result (buffers as text), or
  // `error`: the KubeconfigError's message; `at` names the kubeconfig's path in both.
  type Case = { file: Fields | string; want?: (at: string) => Record<string, unknown>; error?: (at: string) => RegExp };
  const cases: [string, Case][] = [
    [
      "the current context's cluster and user, files relative to the kubeconfig's directory",
      { file: config(), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", cert: "CERT", key: "KEY", unsupported: [] }) },
    ],
    ["no current-context: the first context", { file: config({ current: null }), want: () => ({ server: "https://one:6443", insecure: false, token: "one", unsupported: [] }) }],
    ["an empty current-context: the first context", { file: config({ current: "" }), want: () => ({ server: "https://one:6443", insecure: false, token: "one", unsupported: [] }) }],
    ["no contexts: the first cluster and user", { file: config({ contexts: [] }), want: () => ({ server: "https://one:6443", insecure: false, token: "one", unsupported: [] }) }],
    ["a current-context that names no context", { file: config({ current: "three" }), error: (at) => new RegExp(`^kubeconfig ${at}: no context three$`) }],
    [
      "a context whose cluster is missing (not another cluster instead)",
      { file: config({ contexts: [{ name: "two", context: { cluster: "c9", user: "u2" } }] }), error: (at) => new RegExp(`^kubeconfig ${at}: no cluster with a server for context two$`) },
    ],
    ["a cluster without a server", { file: config({ cluster: { server: "" } }), error: () => /no cluster with a server for context two/ }],
    ["a context whose user is missing: no credentials", { file: config({ contexts: [{ name: "two", context: { cluster: "c1", user: "u9" } }] }), want: () => ({ server: "https://one:6443", insecure: false, unsupported: [] }) }],
    [
      "inline data rather than the files beside it",
      {
        file: config({
          cluster: { server: "https://two:6443", "certificate-authority-data": b64("CA-DATA"), "certificate-authority": "absent.pem" },
          user: { "client-certificate-data": b64("CERT-DATA"), "client-certificate": "absent.pem", "client-key-data": b64("KEY-DATA") },
        }),
        want: () => ({ server: "https://two:6443", insecure: false, ca: "CA-DATA", cert: "CERT-DATA", key: "KEY-DATA", unsupported: [] }),
      },
    ],
    [
      "empty inline data: the file",
      { file: config({ cluster: { server: "https://two:6443", "certificate-authority-data": "", "certificate-authority": "ca.pem" }, user: {} }), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", unsupported: [] }) },
    ],
    ["a token", { file: config({ user: { token: "abc" } }), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", token: "abc", unsupported: [] }) }],
    [
      "a token file, relative to the kubeconfig and not read (it need not exist yet)",
      { file: config({ user: { tokenFile: "secrets/token" } }), want: (at) => ({ server: "https://two:6443", insecure: false, ca: "CA", tokenFile: path.join(path.dirname(at), "secrets/token"), unsupported: [] }) },
    ],
    ["a token rather than a token file", { file: config({ user: { token: "abc", tokenFile: "tok" } }), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", token: "abc", unsupported: [] }) }],
    [
      "an empty token: the token file",
      { file: config({ user: { token: "", tokenFile: "/abs/tok" } }), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", tokenFile: "/abs/tok", unsupported: [] }) },
    ],
    [
      "insecure-skip-tls-verify, tls-server-name, a path prefix without its trailing slashes",
      {
        file: config({ cluster: { server: "https://two:6443/prefix//", "insecure-skip-tls-verify": true, "tls-server-name": "api.internal" } }),
        want: () => ({ server: "https://two:6443/prefix", insecure: true, servername: "api.internal", cert: "CERT", key: "KEY", unsupported: [] }),
      },
    ],
    ["insecure-skip-tls-verify only when true", { file: config({ cluster: { server: "https://two:6443", "insecure-skip-tls-verify": "true" } }), want: () => ({ server: "https://two:6443", insecure: false, cert: "CERT", key: "KEY", unsupported: [] }) }],
    [
      "an exec user: reported, not run",
      { file: config({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "aws" } } }), want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", unsupported: ["exec"] }) },
    ],
    [
      "an auth provider, basic auth, impersonation: reported; empty fields are not",
      {
        file: config({ user: { token: "t", "auth-provider": { name: "oidc" }, username: "u", password: "p", as: "admin", exec: null, "client-key": "" } }),
        want: () => ({ server: "https://two:6443", insecure: false, ca: "CA", token: "t", unsupported: ["auth-provider", "username", "password", "as"] }),
      },
    ],
    [
      "YAML",
      {
        file: "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:8080\n    certificate-authority: ca.pem\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\nusers:\n- name: u\n  user: {token: yaml}\n",
        want: () => ({ server: "http://127.0.0.1:8080", insecure: false, ca: "CA", token: "yaml", unsupported: [] }),
      },
    ],
    ["bad YAML", { file: "clusters: [\n  - {name: c\n", error: (at) => new RegExp(`^reading kubeconfig ${at}: `) }],
    ["an empty file", { file: "", error: (at) => new RegExp(`^reading kubeconfig ${at}: `) }],
    ["a YAML scalar", { file: "just words\n", error: () => /not a kubeconfig/ }],
    ["a list", { file: "[]", error: () => /not a kubeconfig/ }],
    ["a CA file that is not there", { file: config({ cluster: { server: "https://two:6443", "certificate-authority": "nope.pem" } }), error: (at) => new RegExp(`^kubeconfig ${at}: ENOENT.*nope\\.pem`) }],
    ["a client key file that is not there", { file: config({ user: { "client-certificate": "certs/cert.pem", "client-key": "certs/nope.pem" } }), error: () => /ENOENT.*certs\/nope\.pem/ }],
  ];

  it.each(cases)("%s", async (name, c) => {
    const at = dir.path(`${name.replace(/[^a-z]+/gi, "-")}.kubeconfig`);
    writeFileSync(at, typeof c.file === "string" ? c.file : JSON.stringify(c.file));
    if (c.error !== undefined) {
      const err = await readKubeconfig(at).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubeconfigError);
      expect((err as Error).message).toMatch(c.error(at));
    } else {
      expect(view(await readKubeconfig(at))).toEqual(c.want?.(at));
    }
  });

  it("fails on a kubeconfig that is not there", async () => {
    const at = dir.path("absent.kubeconfig");
    await expect(readKubeconfig(at)).rejects.toThrow(new RegExp(`^reading kubeconfig ${at}: ENOENT`));
  });

  it("reads a kubeconfig named by a relative path, its files still beside it", async () => {
    const at = writeKubeconfigFixture(dir.path("rel.kubeconfig"));
    const cwd = process.cwd();
    const kc = await readKubeconfig(path.relative(cwd, at));
    expect(kc.ca?.toString()).toBe("CA");
    expect(kc.cert?.toString()).toBe("CERT");
  });
});
