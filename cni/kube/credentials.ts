// Credentials for the CNI plugin's small Kubernetes client (client.ts): the current context of a
// kubeconfig (parsed by shared/kubeconfig.ts: client certificate, bearer token or token file), and
// the client's error type. Apart from client.ts so that reading them does not load node:https and
// node:tls (~10 ms): the plugin reads its kubeconfig first and loads TLS while its IPAM plugin and
// kernel work run.
import { readFileSync } from "node:fs";
import { readKubeconfig } from "../../shared/kubeconfig.js";
import { KubeError } from "../../shared/kube-error.js";

export { KubeError };

export interface Credentials {
  server: string;
  ca?: Buffer;
  insecure: boolean;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

/**
 * Reads the current context of a kubeconfig file (shared/kubeconfig.ts); a token file is read now,
 * once per invocation. Users it cannot honour (a credential plugin: exec, auth-provider; basic
 * auth; impersonation) are refused: the plugin runs no plugins, and requests sent without those
 * credentials would only come back 401 (or, impersonation dropped, run as someone else).
 */
export async function loadKubeconfig(file: string): Promise<Credentials> {
  const bad = (message: string, options?: ErrorOptions): KubeError => new KubeError(0, "BadKubeconfig", message, options);
  // The plugin's client sets no TLS server name (the installer's kubeconfig names none).
  const { token: inline, tokenFile, unsupported, servername: _servername, ...tls } = await readKubeconfig(file, bad);
  if (unsupported.length > 0) {
    throw bad(`kubeconfig ${file}: user ${unsupported.join(", ")} is not supported by the kvrf CNI plugin; use a client certificate, token or tokenFile`);
  }
  let token = inline;
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (err) {
      throw bad(`kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  return token === undefined ? tls : { ...tls, token };
}
