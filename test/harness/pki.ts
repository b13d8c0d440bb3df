// A throwaway PKI for the test API server, made with the openssl CLI: a CA, the server's serving
// certificate, client certificates, and the service-account signing key pair.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args.join(" ")} failed: ${stderr || String(err)} (is openssl installed? apt-get install openssl)`, {
      cause: err,
    });
  }
}

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
}

/** Creates the CA, a serving cert for `sans` (e.g. ["IP:127.0.0.1", "DNS:localhost"]) and the SA keys. */
export function makePki(dir: string, sans: readonly string[]): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string): string => path.join(dir, f);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=kvrf-test-ca", "-keyout", "ca.key", "-out", "ca.crt"], dir);
  writeFileSync(p("server.ext"), `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=kube-apiserver",
    "-keyout", "server.key", "-out", "server.csr"], dir);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
    "-extfile", "server.ext", "-out", "server.crt"], dir);
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"], dir);
  openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    saKey: p("sa.key"),
    saPub: p("sa.pub"),
  };
}

/** Signs a client certificate for user `cn` in `groups`; returns the cert and key paths. */
export function makeClientCert(pki: Pki, name: string, cn: string, groups: readonly string[]): { cert: string; key: string } {
  const subject = `/CN=${cn}` + groups.map((g) => `/O=${g}`).join("");
  const ext = path.join(pki.dir, `${name}.ext`);
  writeFileSync(ext, "extendedKeyUsage=clientAuth\n");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", subject,
    "-keyout", `${name}.key`, "-out", `${name}.csr`], pki.dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
    "-extfile", ext, "-out", `${name}.crt`], pki.dir);
  return { cert: path.join(pki.dir, `${name}.crt`), key: path.join(pki.dir, `${name}.key`) };
}
