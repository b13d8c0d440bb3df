// A kubeconfig for unit tests of the kubeconfig reader and its two callers: two contexts, the
// current one ("two") pointing at cluster c2 and user u2, whose bodies a test chooses; the other
// ("one") at c1 (https://one:6443) and u1 (token "one"), which only a wrong resolution would use.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";

type Fields = Record<string, unknown>;

export interface KubeconfigFixture {
  /** The current-context; null leaves it out. Default "two". */
  current?: string | null;
  /** Cluster c2's body. Default: server https://two:6443, CA file ca.pem. */
  cluster?: Fields;
  /** User u2's body. Default: client certificate and key files certs/cert.pem, certs/key.pem. */
  user?: Fields;
  /** Replaces both contexts. */
  contexts?: Fields[];
}

export function kubeconfigFixture(o: KubeconfigFixture = {}): Fields {
  return {
    apiVersion: "v1",
    kind: "Config",
    ...(o.current === null ? {} : { "current-context": o.current ?? "two" }),
    clusters: [
      { name: "c1", cluster: { server: "https://one:6443" } },
      { name: "c2", cluster: o.cluster ?? { server: "https://two:6443", "certificate-authority": "ca.pem" } },
    ],
    users: [
      { name: "u1", user: { token: "one" } },
      { name: "u2", user: o.user ?? { "client-certificate": "certs/cert.pem", "client-key": "certs/key.pem" } },
    ],
    contexts: o.contexts ?? [
      { name: "one", context: { cluster: "c1", user: "u1" } },
      { name: "two", context: { cluster: "c2", user: "u2" } },
    ],
  };
}

/** Writes kubeconfigFixture(o) as JSON to `file`; returns `file`. */
export function writeKubeconfigFixture(file: string, o: KubeconfigFixture = {}): string {
  writeFileSync(file, JSON.stringify(kubeconfigFixture(o)));
  return file;
}

export interface KubeconfigDir {
  /** `name` in the directory. */
  path: (name: string) => string;
  /**
   * Writes the fixture to `name`, its user u2 `user` and its cluster c2 a server
   * (https://api.example:6443/) and the CA file ca.pem, plus `cluster`; returns its path.
   */
  kubeconfig: (name: string, user: Fields, cluster?: Fields) => string;
}

/**
 * A temporary directory for the tests of a describe block (made before them, removed after) with
 * the fixture's files: ca.pem ("CA"), certs/cert.pem ("CERT"), certs/key.pem ("KEY").
 */
export function kubeconfigDir(prefix: string): KubeconfigDir {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), prefix));
    mkdirSync(path.join(dir, "certs"));
    writeFileSync(path.join(dir, "ca.pem"), "CA");
    writeFileSync(path.join(dir, "certs/cert.pem"), "CERT");
    writeFileSync(path.join(dir, "certs/key.pem"), "KEY");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    path: (name) => path.join(dir, name),
    kubeconfig: (name, user, cluster = {}) =>
      writeKubeconfigFixture(path.join(dir, name), { user, cluster: { server: "https://api.example:6443/", "certificate-authority": "ca.pem", ...cluster } }),
  };
}
