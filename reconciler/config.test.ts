// kvrfd's flags and their environment defaults, and the messages of refused values.
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "./config.js";

const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) Reflect.deleteProperty(process.env, k);
  Object.assign(process.env, saved);
});

const refusal = async (argv: string[]): Promise<string> => {
  const err = await parseConfig(argv, "t").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as Error).message;
};

describe("parseConfig", () => {
  it("takes flags, with defaults and environment defaults", async () => {
    Reflect.deleteProperty(process.env, "NODE_NAME");
    process.env["KVRFD_WORKERS"] = "8";
    const c = await parseConfig(["--node-name", "n1", "--next-hop", "fd00::1", "--api-timeout", "5"], "t");
    expect(c).toMatchObject({ nodeName: "n1", nextHop: "fd00::1", workers: 8, apiTimeoutSeconds: 5, gobgpSocket: "/run/gobgp/gobgpd.sock", healthPort: 9477, logLevel: "info", resyncSeconds: 300 });
    expect(c.kubeconfig === undefined || c.kubeconfig === process.env["KUBECONFIG"]).toBe(true);
    process.env["NODE_NAME"] = "from-env";
    expect((await parseConfig([], "t")).nodeName).toBe("from-env");
  });

  it("re-reads BGP password Secrets every 60 s unless told otherwise", async () => {
    expect((await parseConfig(["--node-name", "n"], "t")).passwordRefreshSeconds).toBe(60);
    process.env["KVRFD_PASSWORD_REFRESH"] = "0";
    expect((await parseConfig(["--node-name", "n"], "t")).passwordRefreshSeconds).toBe(0);
    expect((await parseConfig(["--node-name", "n", "--password-refresh", "15"], "t")).passwordRefreshSeconds).toBe(15);
    expect(await refusal(["--node-name", "n", "--password-refresh", "-1"])).toMatch(/passwordRefreshSeconds: .*>=\s*0/);
  });

  it("refuses bad values naming the flag and what is wrong", async () => {
    Reflect.deleteProperty(process.env, "NODE_NAME");
    expect(await refusal([])).toMatch(/--node-name \(or NODE_NAME\) is required/);
    expect(await refusal(["--node-name", "n", "--gobgp-socket", "rel/sock"])).toMatch(/gobgpSocket: --gobgp-socket must be an absolute path/);
    expect(await refusal(["--node-name", "n", "--next-hop", "10.0.0.1"])).toMatch(/nextHop: --next-hop must be an IPv6 address/);
    expect(await refusal(["--node-name", "n", "--workers", "0"])).toMatch(/workers: .*>=\s*1/);
    expect(await refusal(["--node-name", "n", "--health-port", "1.5"])).toMatch(/healthPort: .*(integer|int)/i);
    expect(await refusal(["--node-name", "n", "--log-level", "loud"])).toMatch(/logLevel: .*"trace"/);
    expect(await refusal(["--node-name", "n", "--underlay-interface", "a-very-long-interface"])).toMatch(/underlayInterface: .*<=\s*15/);
    expect(await refusal(["--node-name", "n", "--bogus"])).toMatch(/Unknown argument: bogus/);
  });
});
