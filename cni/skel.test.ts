import { describe, expect, it } from "vitest";
import { CniError, ErrorCode } from "./error.js";
import { dispatch, parseCniArgs, type CmdArgs, type Handlers } from "./skel.js";

const baseEnv = {
  CNI_CONTAINERID: "ctr1",
  CNI_NETNS: "/var/run/netns/x",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
};
const conf = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ cniVersion: "1.1.0", name: "vpcs", type: "kvrf", ...extra });

function recorder(overrides: Partial<Handlers> = {}): { handlers: Handlers; calls: CmdArgs[] } {
  const calls: CmdArgs[] = [];
  const record = async (a: CmdArgs): Promise<void> => void calls.push(a);
  return {
    calls,
    handlers: {
      add: async (a) => (calls.push(a), { cniVersion: a.cniVersion, ips: [] }),
      del: record,
      check: record,
      status: record,
      gc: record,
      ...overrides,
    },
  };
}

async function invoke(env: Record<string, string>, stdin: string, handlers = recorder().handlers) {
  let out = "";
  const code = await dispatch(handlers, {
    env,
    readStdin: () => Promise.resolve(Buffer.from(stdin)),
    writeStdout: (t) => void (out += t),
  });
  return { code, out: out === "" ? undefined : (JSON.parse(out) as Record<string, unknown>) };
}

describe("dispatch", () => {
  it("answers VERSION without reading stdin", async () => {
    const r = await dispatch(recorder().handlers, {
      env: { CNI_COMMAND: "VERSION" },
      readStdin: () => Promise.reject(new Error("must not read")),
      writeStdout: () => undefined,
    });
    expect(r).toBe(0);
    const { out } = await invoke({ CNI_COMMAND: "VERSION" }, "");
    expect(out).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
  });

  it.each([
    ["no command", {}, 4, "required env variables [CNI_COMMAND] missing"],
    ["unknown command", { CNI_COMMAND: "FROB" }, 4, "unknown CNI_COMMAND: FROB"],
    ["ADD without netns", { ...baseEnv, CNI_COMMAND: "ADD", CNI_NETNS: "" }, 4, "required env variables [CNI_NETNS] missing"],
    ["ADD without anything", { CNI_COMMAND: "ADD" }, 4, "[CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH]"],
    ["DEL without path", { ...baseEnv, CNI_COMMAND: "DEL", CNI_PATH: "" }, 4, "[CNI_PATH] missing"],
    ["ifname too long", { ...baseEnv, CNI_COMMAND: "ADD", CNI_IFNAME: "a-very-long-ifname" }, 4, "longer than 15 bytes"],
    ["ifname with slash", { ...baseEnv, CNI_COMMAND: "ADD", CNI_IFNAME: "a/b" }, 4, "contains '/'"],
    ["bad container id", { ...baseEnv, CNI_COMMAND: "ADD", CNI_CONTAINERID: "-x" }, 4, "invalid characters in CNI_CONTAINERID"],
    ["bad CNI_ARGS", { ...baseEnv, CNI_COMMAND: "ADD", CNI_ARGS: "K8S_POD_NAME" }, 4, 'invalid pair "K8S_POD_NAME"'],
  ])("rejects %s with code %i", async (_name, env, code, msg) => {
    const r = await invoke(env, conf());
    expect(r.code).toBe(1);
    expect(r.out?.["code"]).toBe(code);
    expect(r.out?.["msg"]).toContain(msg);
  });

  it.each([
    ["not JSON", "{", 6, "decoding network config"],
    ["an array", "[]", 6, "not a JSON object"],
    ["no name", JSON.stringify({ cniVersion: "1.0.0" }), 7, 'field "name" is required'],
    ["bad name", JSON.stringify({ cniVersion: "1.0.0", name: "-x" }), 7, 'invalid network name "-x"'],
    ["no version", JSON.stringify({ name: "n" }), 1, 'config is "0.1.0"'],
    ["unknown version", conf({ cniVersion: "2.0.0" }), 1, 'config is "2.0.0"'],
  ])("rejects a config that is %s", async (_name, stdin, code, msg) => {
    const r = await invoke({ ...baseEnv, CNI_COMMAND: "ADD" }, stdin);
    expect(r.out?.["code"]).toBe(code);
    expect(r.out?.["msg"]).toContain(msg);
  });

  it.each([
    ["CHECK", "0.3.1"],
    ["STATUS", "1.0.0"],
    ["GC", "1.0.0"],
  ])("refuses %s for a %s config (code 1)", async (verb, version) => {
    const r = await invoke({ ...baseEnv, CNI_COMMAND: verb }, conf({ cniVersion: version }));
    expect(r.out?.["code"]).toBe(ErrorCode.IncompatibleVersion);
    expect(r.out?.["cniVersion"]).toBe(version);
  });

  it("hands handlers typed arguments and prints the ADD result", async () => {
    const rec = recorder();
    const r = await invoke({ ...baseEnv, CNI_COMMAND: "ADD", CNI_ARGS: "A=1;;B=x=y" }, conf(), rec.handlers);
    expect(r).toEqual({ code: 0, out: { cniVersion: "1.1.0", ips: [] } });
    const a = rec.calls[0];
    expect(a?.path).toEqual(["/opt/cni/bin", "/usr/lib/cni"]);
    expect([...(a?.args ?? [])]).toEqual([["A", "1"], ["B", "x=y"]]);
    expect(a?.config["type"]).toBe("kvrf");
  });

  it.each(["DEL", "STATUS", "GC"])("runs %s with only the variables it needs and prints nothing", async (verb) => {
    const env = verb === "DEL" ? { ...baseEnv, CNI_NETNS: "" } : { CNI_PATH: "/opt/cni/bin" };
    const r = await invoke({ ...env, CNI_COMMAND: verb }, conf());
    expect(r).toEqual({ code: 0, out: undefined });
  });

  it("turns handler errors into CNI error JSON with the config's version", async () => {
    const h = recorder({
      del: () => Promise.reject(new CniError(ErrorCode.TryAgainLater, "busy", "retry")),
      status: () => Promise.reject(new TypeError("boom")),
    }).handlers;
    expect((await invoke({ ...baseEnv, CNI_COMMAND: "DEL" }, conf({ cniVersion: "0.4.0" }), h)).out).toEqual({
      cniVersion: "0.4.0",
      code: 11,
      msg: "busy",
      details: "retry",
    });
    const s = await invoke({ CNI_COMMAND: "STATUS", CNI_PATH: "/x" }, conf(), h);
    expect(s.out?.["code"]).toBe(999);
    expect(s.out?.["msg"]).toBe("boom");
  });
});

describe("parseCniArgs", () => {
  it("keeps order and values with '='", () => {
    expect([...parseCniArgs("IgnoreUnknown=1;K8S_POD_NAME=a=b")]).toEqual([
      ["IgnoreUnknown", "1"],
      ["K8S_POD_NAME", "a=b"],
    ]);
  });
  it("rejects an empty key", () => {
    expect(() => parseCniArgs("=v")).toThrow(/invalid pair "=v"/);
  });
});
