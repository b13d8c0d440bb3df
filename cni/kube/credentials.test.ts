// What the CNI plugin makes of its kubeconfig; the format itself (contexts, relative files, inline
// data, YAML, bad files) is shared/kubeconfig.test.ts's.
import { rmSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { kubeconfigDir } from "../../shared/testing/kubeconfig.js";
import { KubeError, loadKubeconfig } from "./credentials.js";

describe("loadKubeconfig", () => {
  const { path: at, kubeconfig } = kubeconfigDir("kvrf-cni-kubeconfig-");

  /** The error `p` rejects with. */
  const failure = (p: Promise<unknown>): Promise<KubeError> => p.then(() => expect.fail("resolved"), (e: unknown) => e as KubeError);

  it("gives the client the server, CA, client certificate and key", async () => {
    const creds = await loadKubeconfig(kubeconfig("cert.json", { "client-certificate-data": Buffer.from("CERT").toString("base64"), "client-key-data": Buffer.from("KEY").toString("base64") }, { "insecure-skip-tls-verify": true }));
    expect(creds).toEqual({ server: "https://api.example:6443", insecure: true, ca: Buffer.from("CA"), cert: Buffer.from("CERT"), key: Buffer.from("KEY") });
  });

  it("sends a token as it is, and reads a token file once, now", async () => {
    expect((await loadKubeconfig(kubeconfig("token.json", { token: "abc" }))).token).toBe("abc");
    writeFileSync(at("tok"), "from-file\n");
    const creds = await loadKubeconfig(kubeconfig("tokenfile.json", { tokenFile: "tok" }));
    rmSync(at("tok"));
    expect(creds.token).toBe("from-file");
  });

  it("fails with KubeError BadKubeconfig on an unusable kubeconfig or token file", async () => {
    const missing = await failure(loadKubeconfig(at("nope.json")));
    expect(missing).toBeInstanceOf(KubeError);
    expect([missing.status, missing.reason]).toEqual([0, "BadKubeconfig"]);
    expect(missing.message).toMatch(/^reading kubeconfig .*nope\.json: ENOENT/);
    const noToken = await failure(loadKubeconfig(kubeconfig("notoken.json", { tokenFile: "absent-token" })));
    expect([noToken.reason, noToken.message]).toEqual(["BadKubeconfig", expect.stringMatching(/^kubeconfig .*notoken\.json: ENOENT.*absent-token/)]);
  });

  it("refuses a user that needs a credential plugin, naming what it has", async () => {
    const err = await failure(loadKubeconfig(kubeconfig("exec.json", { exec: { command: "aws" }, "auth-provider": { name: "gcp" } })));
    expect(err).toBeInstanceOf(KubeError);
    expect(err.reason).toBe("BadKubeconfig");
    expect(err.message).toMatch(/user exec, auth-provider is not supported by the kvrf CNI plugin; use a client certificate, token or tokenFile$/);
  });
});
