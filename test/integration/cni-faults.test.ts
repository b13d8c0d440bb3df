// Fault injection at every step of the CNI plugin's ADD and DEL, per data-plane variant
// (test/harness/variants.ts): IPAM missing, failing fast and slow, crashing; the pod's namespace
// gone mid-ADD; `ip` killed before or after it applied its batch; the API server refusing, timing
// out, answering 409/422/500, answering late; the state directory read-only or full — and two
// concurrent steps failing in either order. The kernel and the API server are real; the IPAM
// plugin is a named double around host-local, `ip` a double around the real one, the API server
// sits behind a proxy that injects answers (test/harness/cni-faults.ts and what it imports).
//
// Every run must keep the property of test/harness/cni-faults.ts: one clean answer with the
// expected code, and nothing left behind in the node's kernel, the pod, the IPAM store, the API
// server or the state directory (after a failed DEL: once the runtime's retry has run).
import path from "node:path";
import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { describeNeeds } from "../harness/needs.js";
import { expectAnswer, FaultNode, mountTmpfs, type IpamFault, type PluginRun } from "../harness/cni-faults.js";
import type { ApiFault } from "../harness/api-faults.js";
import type { IpFault } from "../harness/fault-ip.js";
import type { Netns } from "../harness/netns.js";
import { ownSteps, variants, type IpSteps, type Variant } from "../harness/variants.js";
import { bootMarkerPath } from "../../cni/boot-sweep.js";
import { bootId } from "../../cni/route-target-hold.js";

const claims = /\/routetargetclaims\//;
const bvis = /\/bgpvrfinstances\//;

interface AddCase {
  name: string;
  ipam?: Partial<Record<"ADD" | "DEL", IpamFault>>;
  ip?: (v: Variant, pod: Netns) => IpFault[];
  api?: ApiFault[];
  /** Config fields to change (undefined: remove). */
  conf?: Record<string, unknown>;
  code: number;
  msg?: RegExp;
  /** Indexes of the ip rules that must have fired (default: all). */
  fired?: number[];
}

/** What a case injects, for choosing the variants that run it. */
interface Injects {
  ip?: (v: Variant, pod: Netns) => IpFault[];
  ipam?: unknown;
  api?: unknown;
  conf?: unknown;
  /** Before the verb: the pod's namespace removed. */
  before?: unknown;
}

/** Stands in for the pod when a case's `ip` rules are only read, not run. */
const anyPod = { name: "(pod)", path: "/var/run/netns/(pod)" } as Netns;

/** A rule for one of the variant's steps; none when the variant has no such step. */
const atStep = (v: Variant, step: keyof IpSteps, action: IpFault["action"]): IpFault[] => {
  const match = v.ipSteps[step];
  return match !== undefined ? [{ match, action }] : [];
};

/**
 * Whether variant `v` runs case `c`. The all-cases variant (variants.ts `full`, policy routing
 * with VXLAN: on the host) runs every case. Each other variant runs only the cases that can tell
 * its kernel mode and encapsulation apart from that one: those that inject into one of ITS OWN
 * kernel steps (variants.ts ownSteps: steps whose kernel lines, read off cni/dataplane/lines.ts,
 * the all-cases variant never runs; for VRF mode with SRv6 the prepare batch — the VRF device up,
 * the veth enslaved, End.DT46 into the VRF — and the VPC's VRF device), or that remove the pod's
 * namespace before the verb (the veth goes with it; what stays behind is the mode's own, in VRF
 * mode End.DT46 on the VRF device), and that inject nothing else: an IPAM, API or config fault
 * beside a kernel one only decides which error is reported, the same code in every mode. A case
 * aimed at a step the variant does not have is not its case.
 */
function runsCase(v: Variant, c: Injects): boolean {
  const rules = c.ip?.(v, anyPod);
  if (rules !== undefined && rules.length === 0) return false;
  if (v.full) return true;
  if (c.ipam !== undefined || c.api !== undefined || c.conf !== undefined) return false;
  const own = ownSteps(v);
  const steps = Object.entries(v.ipSteps).filter(([, match]) => (rules ?? []).some((r) => r.match === match)).map(([step]) => step as keyof IpSteps);
  return c.before !== undefined || steps.some((s) => own.has(s));
}

/** Cases that need the data plane: the ADD gets past the kernel check. */
const addCases: AddCase[] = [
  // IPAM, concurrent with the kernel work and the route-target claim.
  { name: "IPAM answers an error at once (its code 11 passes through)", ipam: { ADD: { then: "error", code: 11 } }, code: 11, msg: /IPAM plugin kvrf-fault-ipam ADD: injected ADD failure/ },
  { name: "IPAM answers an error late, after the kernel work", ipam: { ADD: { delayMs: 1500, then: "error", code: 999 } }, code: 102, msg: /injected ADD failure/ },
  { name: "IPAM crashes with a panic on stderr", ipam: { ADD: { then: "crash" } }, code: 102, msg: /IPAM plugin kvrf-fault-ipam ADD: killed by SIGKILL: panic: injected by the test$/ },
  { name: "IPAM takes a lease, then crashes", ipam: { ADD: { then: "lease-then-crash" } }, code: 102, msg: /killed by SIGKILL/ },
  { name: "IPAM takes a lease, then prints an address that is none", ipam: { ADD: { then: "lease-then-garbage", garbage: '{"cniVersion":"1.1.0","ips":[{"address":"300.1.1.1/24"}]}' } }, code: 102, msg: /ips\.0\.address: "300\.1\.1\.1\/24" is not an address/ },
  { name: "IPAM takes a lease, then prints something that is not JSON", ipam: { ADD: { then: "lease-then-garbage", garbage: "ok\n" } }, code: 102, msg: /not JSON/ },
  {
    name: "the kernel work fails at once while IPAM leases late (the lease is released)",
    ipam: { ADD: { delayMs: 1500, then: "pass" } },
    ip: (v) => [{ match: v.ipSteps.prepare, action: { kind: "fail" } }],
    code: 100,
    msg: /injected by the test/,
  },
  {
    name: "IPAM fails at once while the kernel work fails late: the kernel's error, as in the other order",
    ipam: { ADD: { then: "error", code: 7 } },
    ip: (v) => [{ match: v.ipSteps.prepare, sleepSeconds: 1.5, action: { kind: "fail" } }],
    code: 100,
    msg: /injected by the test/,
  },
  {
    name: "the kernel work fails at once while IPAM fails late: the kernel's error, as in the other order",
    ipam: { ADD: { delayMs: 1500, then: "error", code: 7 } },
    ip: (v) => [{ match: v.ipSteps.prepare, action: { kind: "fail" } }],
    code: 100,
    msg: /injected by the test/,
  },
  // The route-target claim (this node's first attachment of the VPC), concurrent with the rest.
  { name: "the claim is answered 500", api: [{ method: "PATCH", path: claims, action: { status: 500, reason: "InternalError" } }], code: 11, msg: /claiming route target .*: .*500/ },
  { name: "the claim is answered 409", api: [{ method: "PATCH", path: claims, action: { status: 409, reason: "Conflict" } }], code: 101, msg: /claiming route target/ },
  { name: "the claim is answered 422", api: [{ method: "PATCH", path: claims, action: { status: 422, reason: "Invalid" } }], code: 101, msg: /claiming route target/ },
  { name: "the API server drops the claim's connection", api: [{ method: "PATCH", path: claims, action: "reset" }], code: 11, msg: /claiming route target/ },
  { name: "the API server never answers the claim (the client's timeout, retried twice)", api: [{ method: "PATCH", path: claims, action: "hang" }], code: 11, msg: /no answer within/ },
  {
    name: "the claim succeeds late while IPAM fails at once (the hold is released)",
    api: [{ method: "PATCH", path: claims, delayMs: 1500, action: "pass" }],
    ipam: { ADD: { then: "error", code: 7 } },
    code: 7,
    msg: /injected ADD failure/,
  },
  {
    name: "the claim fails at once while IPAM leases late (the lease is released)",
    api: [{ method: "PATCH", path: claims, action: { status: 500 } }],
    ipam: { ADD: { delayMs: 1500, then: "pass" } },
    code: 11,
    msg: /claiming route target/,
  },
  {
    name: "the claim fails late while IPAM fails at once: the claim's error, as in the other order",
    api: [{ method: "PATCH", path: claims, delayMs: 1500, action: { status: 500 } }],
    ipam: { ADD: { then: "error", code: 7 } },
    code: 11,
    msg: /claiming route target/,
  },
  {
    name: "the claim fails at once while IPAM fails late: the claim's error, as in the other order",
    api: [{ method: "PATCH", path: claims, action: { status: 500 } }],
    ipam: { ADD: { delayMs: 1500, then: "error", code: 7 } },
    code: 11,
    msg: /claiming route target/,
  },
  // The kernel work before the addresses (prepare).
  { name: "ip is killed before the veth batch", ip: (v) => [{ match: v.ipSteps.prepare, action: { kind: "kill-before" } }], code: 100 },
  { name: "ip is killed after the veth batch went in", ip: (v) => [{ match: v.ipSteps.prepare, action: { kind: "kill-after" } }], code: 100 },
  { name: "the pod's namespace is gone before the veth batch", ip: (v, pod) => [{ match: v.ipSteps.prepare, action: { kind: "netns-del-before", netns: pod.name } }], code: 100 },
  // The VPC's own device (VRF or VXLAN), made by its first attachment on the node, before the veth.
  { name: "ip is killed after the VPC's device went in", ip: (v) => atStep(v, "vpcDevice", { kind: "kill-after" }), code: 100, msg: /^creating (VRF|VXLAN) device kv/ },
  // The publication and the addresses (configure), concurrent.
  { name: "the publication is answered 500", api: [{ method: "PATCH", path: bvis, action: { status: 500 } }], code: 11, msg: /publishing attachment/ },
  { name: "the publication is answered 409", api: [{ method: "PATCH", path: bvis, times: 1, action: { status: 409, reason: "Conflict" } }], code: 101, msg: /disagrees with this attachment/ },
  { name: "the publication is answered 422", api: [{ method: "PATCH", path: bvis, times: 1, action: { status: 422, reason: "Invalid" } }], code: 101, msg: /disagrees with this attachment/ },
  { name: "the API server drops the publication's connection", api: [{ method: "PATCH", path: bvis, action: "reset" }], code: 11, msg: /publishing attachment/ },
  {
    name: "the publication succeeds late while the pod side fails at once (the entry is withdrawn)",
    api: [{ method: "PATCH", path: bvis, times: 1, delayMs: 1500, action: "pass" }],
    ip: (v) => [{ match: v.ipSteps.configurePod, action: { kind: "kill-before" } }],
    code: 100,
  },
  {
    name: "the publication fails at once while the host side fails late: the publication's error, as in the other order",
    api: [{ method: "PATCH", path: bvis, times: 1, action: { status: 500 } }],
    ip: (v) => [{ match: v.ipSteps.configureHost, sleepSeconds: 1.5, action: { kind: "kill-before" } }],
    code: 11,
    msg: /publishing attachment/,
  },
  {
    name: "the host side fails at once while the publication fails late: the publication's error, as in the other order",
    api: [{ method: "PATCH", path: bvis, times: 1, delayMs: 1500, action: { status: 500 } }],
    ip: (v) => [{ match: v.ipSteps.configureHost, action: { kind: "kill-before" } }],
    code: 11,
    msg: /publishing attachment/,
  },
  { name: "ip is killed before the pod side", ip: (v) => [{ match: v.ipSteps.configurePod, action: { kind: "kill-before" } }], code: 100 },
  { name: "ip is killed after the host side went in", ip: (v) => [{ match: v.ipSteps.configureHost, action: { kind: "kill-after" } }], code: 100 },
  { name: "the kernel refuses the host side", ip: (v) => [{ match: v.ipSteps.configureHost, action: { kind: "fail" } }], code: 100, msg: /injected by the test/ },
  { name: "the pod's namespace goes right after the veth batch", ip: (v, pod) => [{ match: v.ipSteps.prepare, action: { kind: "netns-del-after", netns: pod.name } }], code: 100 },
  // The speaker config, when the config has no ASN: read before anything else.
  { name: "the Node read for the ASN is answered 500", conf: { asn: undefined }, api: [{ method: "GET", path: /^\/api\/v1\/nodes\//, action: { status: 500 } }], code: 11, msg: /reading the speaker config/ },
  { name: "the ASN lookup finds no BGPInstance", conf: { asn: undefined }, code: 7, msg: /^asn: not set in the config and no BGPInstance selects node/ },
];

/** Cases that fail before the kernel check and any change: they run on every kernel. */
const earlyCases: (Omit<AddCase, "conf"> & { conf: (n: FaultNode) => Record<string, unknown>; cniPath?: (n: FaultNode) => string })[] = [
  {
    name: "the IPAM plugin is not in CNI_PATH (issue #17)",
    conf: () => ({}),
    cniPath: () => "/nonexistent",
    code: 7,
    msg: /^ipam\.type: IPAM plugin "kvrf-fault-ipam" not found in CNI_PATH \(\/nonexistent\)/,
  },
  { name: "ipam.type names a directory", conf: () => ({ ipam: { type: ".." } }), code: 7, msg: /^ipam\.type: "\.\." must be a plugin name/ },
  { name: "the plugin is named as its own IPAM", conf: () => ({ ipam: { type: "kvrf" } }), code: 7, msg: /^ipam\.type: / },
  { name: "the kubeconfig is missing", conf: (n) => ({ kubeconfig: path.join(n.dir, "absent.kubeconfig") }), code: 7, msg: /^kubeconfig: / },
];

let seq = 0;

/** A node of its own, prepared for the variant, for the suite it is called in. */
function suite(v: Variant, label: string, vpc: string, body: (ctx: { node: () => FaultNode }) => void): void {
  let n: FaultNode | undefined;
  beforeAll(async () => {
    n = await FaultNode.start(`faults-${label}-${vpc}`, `faults-${label}-${vpc}`, inject("kubeconfig"));
    await n.prepareFor(v);
  });
  afterAll(async () => {
    await n?.close();
  });
  body({
    node: () => {
      if (n === undefined) throw new Error("node not started");
      return n;
    },
  });
}

async function runAdd(n: FaultNode, v: Variant, vpc: string, c: AddCase, pod: Netns, extra: Record<string, unknown> = {}, cniPath?: string): Promise<PluginRun> {
  const conf: Record<string, unknown> = { ...v.config(n.base(vpc, n.faultIpam(c.ipam ?? {}))), ...extra };
  for (const [k, val] of Object.entries(c.conf ?? {})) {
    if (val === undefined) delete conf[k];
    else conf[k] = val;
  }
  const rules = c.ip?.(v, pod) ?? [];
  n.ip.set(rules);
  n.api.set(c.api ?? []);
  try {
    return await n.run("ADD", conf, { containerId: `c${seq++}`, netns: pod.path, ifName: "eth0", ...(cniPath !== undefined ? { cniPath } : {}) });
  } finally {
    const fired = n.ip.fired();
    n.ip.set([]);
    n.api.set([]);
    expect(fired, `ip rules that fired in "${c.name}"`).toEqual(c.fired ?? rules.map((_, i) => i));
  }
}

function expectError(r: PluginRun, c: Pick<AddCase, "name" | "code" | "msg">): void {
  const a = expectAnswer(r, c.name);
  expect(a.error, `${c.name}: an error\n${r.stdout}\n${r.stderr.slice(0, 2000)}`).toBeDefined();
  expect({ code: a.error?.code, msg: a.error?.msg }).toMatchObject({ code: c.code, ...(c.msg !== undefined ? { msg: expect.stringMatching(c.msg) as unknown } : {}) });
}

// Faults that stop ADD before any kernel work, for each variant's config: no kernel needs, so they
// run on the host (describeNeeds with none: never again in the vm tier).
describeNeeds([], "CNI ADD refused before any change", () => {
  for (const [i, v] of variants.entries()) {
    describe(v.name, () => {
      suite(v, "early", `fb${i}`, ({ node }) => {
        it.each(earlyCases)("$name", async (c) => {
          const n = node();
          const pod = await n.pod("early");
          await n.checked(c.name, [pod], async () => {
            const r = await runAdd(n, v, `fb${i}`, { ...c, conf: {} }, pod, c.conf(n), c.cniPath?.(n));
            expectError(r, c);
          });
        });
      });
    });
  }
});

// The variants' fault points are the same steps (prepare, pod side, host side, detach), so the
// fault suites run the all-cases variant and the other kernel mode with the other encapsulation
// (VRF with SRv6: in the vm tier where the host lacks them); the other two combinations' kernel
// steps run in the kernel tier.
const faultVariants = variants.filter((v) => v.full || (v.mode === "vrf" && v.encap === "srv6"));

for (const [i, v] of faultVariants.entries()) {
  const vpc = `fa${i}`;

  describeNeeds(v.needs, `CNI ADD faults, ${v.name}`, () => {
    suite(v, "add", vpc, ({ node }) => {
      it("without faults: ADD succeeds, DEL leaves nothing behind", async () => {
        const n = node();
        const pod = await n.pod("ok");
        await n.checked("ADD then DEL", [pod], async () => {
          const conf = v.config(n.base(vpc, n.faultIpam()));
          const env = { containerId: "ok", netns: pod.path, ifName: "eth0" };
          const r = await n.run("ADD", conf, env);
          expect(expectAnswer(r, "ADD").result).toMatchObject({ cniVersion: "1.1.0" });
          expect(n.leases().length).toBeGreaterThan(0);
          const d = await n.run("DEL", conf, env);
          expectAnswer(d, "DEL");
          expect(d.status).toBe(0);
        });
      });

      it.each(addCases.filter((c) => runsCase(v, c)))("$name", async (c) => {
        const n = node();
        const pod = await n.pod("add");
        await n.checked(c.name, [pod], async () => expectError(await runAdd(n, v, vpc, c, pod), c));
      });

      it.each(v.full ? ([["read-only", "EROFS"], ["full", "ENOSPC"]] as const) : [])("the state directory is %s when the hold is recorded", async (how, errno) => {
        const n = node();
        const pod = await n.pod("state");
        const dir = path.join(n.dir, `state-${how}`);
        // The kernel's capabilities as recorded before, and this boot already swept
        // (cni/boot-sweep.ts): only the hold's marker is new.
        const kernelJson = await n.kernelJson(v.config(n.base(vpc)));
        const m = await mountTmpfs(dir, { "kernel.json": kernelJson, [path.relative(dir, bootMarkerPath(dir, "faults"))]: `${bootId()}\n` });
        try {
          await n.checked(`state directory ${how}`, [pod], async () => {
            if (how === "read-only") await m.remount("read-only");
            else await m.fill();
            const r = await runAdd(n, v, vpc, { name: how, code: 5 }, pod, { stateDir: dir });
            // Node reports a read-only file system as ENOENT from a recursive mkdir.
            expectError(r, { name: `state directory ${how}`, code: 5, msg: new RegExp(`^stateDir ${dir}: (${errno}|ENOENT)`) });
          });
          const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => !["kernel.json", "filler", "claims", "booted", path.join("booted", "faults")].includes(f));
          expect(files, "nothing of the hold left in the state directory").toEqual([]);
        } finally {
          await m.unmount();
        }
      });

      // A pod-side and an API fault: the same steps in every variant (runsCase).
      if (v.full) it("the undo itself fails (API down): the answer says what is left, and DEL removes it", async () => {
        const n = node();
        const pod = await n.pod("undo");
        await n.checked("DEL after a failed undo", [pod], async () => {
          const conf = v.config(n.base(vpc, n.faultIpam()));
          const env = { containerId: "undo", netns: pod.path, ifName: "eth0" };
          // The pod side fails; the publication went through, and its withdrawal is refused.
          n.ip.set([{ match: v.ipSteps.configurePod, action: { kind: "kill-before" } }]);
          n.api.set([{ method: "PATCH", path: bvis, skip: 1, action: { status: 500 } }]);
          const r = await n.run("ADD", conf, env);
          n.ip.set([]);
          n.api.set([]);
          const a = expectAnswer(r, "undo fails");
          expect(a.error?.code).toBe(100);
          expect(a.error?.details).toMatch(/cleanup left: undo BGPVRFInstance entry: /);
          // The runtime DELs after a failed ADD.
          const d = await n.run("DEL", conf, env);
          expectAnswer(d, "DEL after a failed undo");
          expect(d.status).toBe(0);
        });
      });
    });
  });

  describeNeeds(v.needs, `CNI DEL faults, ${v.name}`, () => {
    suite(v, "del", `fc${i}`, ({ node }) => {
      const delVpc = `fc${i}`;
      interface DelCase {
        name: string;
        ipam?: IpamFault;
        ip?: (v: Variant, pod: Netns) => IpFault[];
        api?: ApiFault[];
        /** Before the DEL: e.g. remove the pod's namespace. */
        before?: (pod: Netns) => Promise<void>;
        /** The failed DEL's code; undefined: the DEL succeeds; "either": fails with this code or succeeds
         * (what is left decides). */
        code?: number;
        either?: boolean;
        msg?: RegExp;
      }
      const delCases: DelCase[] = [
        { name: "the withdrawal is answered 500", api: [{ method: "PATCH", path: bvis, action: { status: 500 } }], code: 11, msg: /withdrawing attachment/ },
        { name: "the API server drops the withdrawal's connection", api: [{ method: "PATCH", path: bvis, action: "reset" }], code: 11, msg: /withdrawing attachment/ },
        { name: "the withdrawal's delete is answered 409 every time", api: [{ method: "DELETE", path: bvis, action: { status: 409, reason: "Conflict" } }], code: 101 },
        { name: "ip is killed while removing the veth", ip: (v) => [{ match: v.ipSteps.detach, action: { kind: "kill-before" } }], code: 100 },
        // Everything went, yet ip died: failing (and being retried) or not are both right.
        { name: "ip is killed after removing the veth", ip: (v) => [{ match: v.ipSteps.detach, action: { kind: "kill-after" } }], code: 100, either: true },
        { name: "the claim's release is answered 500", api: [{ path: claims, method: "DELETE", action: { status: 500 } }], code: 11, msg: /releasing route target/ },
        { name: "IPAM answers an error (its code 11 passes through)", ipam: { then: "error", code: 11 }, code: 11, msg: /IPAM plugin kvrf-fault-ipam DEL/ },
        { name: "IPAM crashes", ipam: { then: "crash" }, code: 102, msg: /IPAM plugin kvrf-fault-ipam DEL: killed by SIGKILL/ },
        { name: "the pod's namespace is gone", before: (pod) => pod.delete() },
        // The VPC's last attachment on the node goes, and with it the VPC's own device (VRF or VXLAN).
        { name: "ip is killed while removing the VPC's device", ip: (v) => atStep(v, "vpcRelease", { kind: "kill-before" }), code: 100, msg: /^removing (VRF|VXLAN) device kv/ },
      ];

      it.each(delCases.filter((c) => runsCase(v, c)))("$name", async (c) => {
        const n = node();
        const pod = await n.pod("del");
        await n.checked(c.name, [pod], async () => {
          const env = { containerId: `d${seq++}`, netns: pod.path, ifName: "eth0" };
          const conf = (faults: Partial<Record<"DEL", IpamFault>> = {}): Record<string, unknown> => v.config(n.base(delVpc, n.faultIpam(faults)));
          const added = await n.run("ADD", conf(), env);
          expectAnswer(added, "ADD before the DEL");
          expect(added.status, added.stdout).toBe(0);
          await c.before?.(pod);
          const rules = c.ip?.(v, pod) ?? [];
          n.ip.set(rules);
          n.api.set(c.api ?? []);
          const r = await n.run("DEL", conf(c.ipam !== undefined ? { DEL: c.ipam } : {}), env);
          expect(n.ip.fired(), "ip rules that fired").toEqual(rules.map((_, j) => j));
          n.ip.set([]);
          n.api.set([]);
          if (c.code === undefined || (c.either === true && r.status === 0)) {
            expectAnswer(r, c.name);
            expect(r.status).toBe(0);
          } else {
            expectError(r, { name: c.name, code: c.code, ...(c.msg !== undefined ? { msg: c.msg } : {}) });
            // The runtime retries DEL until it succeeds; twice, as DEL must be repeatable.
            for (const attempt of ["retry", "again"]) {
              const again = await n.run("DEL", conf(), env);
              expectAnswer(again, `DEL ${attempt} after "${c.name}"`);
              expect(again.status, again.stdout).toBe(0);
            }
          }
        });
      });

      // Every variant's DEL takes the same path to the state directory: the all-cases variant only.
      if (v.full) it("the state directory is read-only when the last DEL removes the hold's marker", async () => {
        const n = node();
        const pod = await n.pod("del-ro");
        const dir = path.join(n.dir, "state-del-ro");
        const m = await mountTmpfs(dir, { "kernel.json": await n.kernelJson(v.config(n.base(delVpc))) });
        try {
          await n.checked("DEL with a read-only state directory, retried", [pod], async () => {
            const env = { containerId: "del-ro", netns: pod.path, ifName: "eth0" };
            const conf = { ...v.config(n.base(delVpc, n.faultIpam())), stateDir: dir };
            const added = await n.run("ADD", conf, env);
            expectAnswer(added, "ADD");
            expect(added.status, added.stdout).toBe(0);
            await m.remount("read-only");
            expectError(await n.run("DEL", conf, env), { name: "DEL, state read-only", code: 5, msg: /Read-only file system|EROFS/ });
            await m.remount("writable");
            const again = await n.run("DEL", conf, env);
            expectAnswer(again, "DEL retried");
            expect(again.status).toBe(0);
          });
          expect(readdirSync(path.join(dir, "claims")), "hold markers left").toEqual([]);
        } finally {
          await m.unmount();
        }
      });
    });
  });
}
