// The CNI plugin's data-plane variants (kernel mode × encapsulation), for suites that run the same
// cases against each one. A variant says what the kernel needs for its ADD to get through
// (describeNeeds places the suite on a kernel that has it), how to configure it, and how to
// recognise its `ip` invocations (fault injection aims at one step by these), and which of those
// steps are its own (ownSteps: they run kernel lines the all-cases variant never runs). Adding a
// variant is one entry in `variants`.
import type { Netns } from "./netns.js";
import { cniNeeds, type Capability, type Encapsulation, type KernelMode } from "../../shared/kernel/capabilities.js";
import { detachBatches, hostBatch, needsDx4, podBatch, prepareBatch, withDx4, type Addressing, type AttachmentShape, type Batch } from "../../cni/dataplane/lines.js";

/** What every test sets, whatever the variant. */
export interface BaseConfig {
  vpc: string;
  kubeconfig: string;
  nodeName: string;
  asn: number;
  stateDir: string;
  logFile: string;
  ipam: Record<string, unknown>;
}

/** The `ip` invocations of an attachment's steps, as extended regular expressions (grep -E) over
 * "ARGS\nBATCH LINES" of one invocation (see test/harness/fault-ip.ts). */
export interface IpSteps {
  /** ADD: the veth pair and the VPC's entry (prepare). */
  prepare: string;
  /** ADD: the pod side, run in the pod's namespace (configure). */
  configurePod: string;
  /** ADD: the host side: routes to the pod, decapsulation (configure). */
  configureHost: string;
  /** DEL: removing the host veth (detach). */
  detach: string;
  /** ADD: the VPC's own device on the node, made by its first attachment (VRF mode: the VRF
   * device; policy routing with VXLAN: the VXLAN device; none with SRv6 policy routing). */
  vpcDevice?: string;
  /** DEL: removing that device with the VPC's last attachment on the node. */
  vpcRelease?: string;
}

export interface Variant {
  /** "<mode>/<encap>", the suite's title. */
  name: string;
  mode: KernelMode;
  encap: Encapsulation;
  /** What the kernel must have for this variant's ADD to reach its kernel work (and succeed). */
  needs: Capability[];
  /**
   * Whether fault suites run every case against this variant. The others run only the cases that
   * hit their own kernel steps (ownSteps below): IPAM, API and state-directory faults take the same
   * code path whatever the data plane, and each case costs seconds (15–25 s under the vm tier's
   * emulation). Best on a variant the host kernel runs natively.
   */
  full: boolean;
  /** The plugin's config entry (without cniVersion/name) for this variant. */
  config(base: BaseConfig): Record<string, unknown>;
  ipSteps: IpSteps;
  /**
   * What the node (a namespace) needs before this variant's ADD can work, e.g. the VTEP's address
   * on an interface; returns the interfaces that leaves there, which are the node's own and not
   * anything an attachment left behind.
   */
  prepareNode?(node: Netns): Promise<string[]>;
}

/** The VPC's VRF device (cni/dataplane/vpc.ts ensureVrfDevice, releaseVpcIfUnused). */
const vrfDevice = { vpcDevice: "link add kvrf-[a-z2-7]{10} type vrf ", vpcRelease: "link del kvrf-[a-z2-7]{10}$" };

const srv6 = (mode: KernelMode, full: boolean): Variant => ({
  name: `${mode}/srv6`,
  mode,
  encap: "srv6",
  needs: cniNeeds(mode, "srv6"),
  full,
  config: (b) => ({ type: "kvrf", ...b, dataplaneMode: mode, encapsulation: "srv6", srv6Locator: "fd00:0:fa::/48" }),
  ipSteps: {
    prepare: "link add kv[a-z2-7]{13} .*type veth peer name",
    configurePod: "addr add [^ ]+ dev ",
    configureHost: "unreachable 0\\.0\\.0\\.0/0 metric",
    detach: "link del kv[a-z2-7]{13}",
    ...(mode === "vrf" ? vrfDevice : {}),
  },
});

/** The VTEP the vxlan variants' node has (on lo: the plugin refuses one the node lacks). */
const vtep = "192.0.2.77";

const vxlan = (mode: KernelMode, full: boolean): Variant => ({
  name: `${mode}/vxlan`,
  mode,
  encap: "vxlan",
  needs: cniNeeds(mode, "vxlan"),
  full,
  config: (b) => ({ type: "kvrf", ...b, dataplaneMode: mode, encapsulation: "vxlan", vtep }),
  ipSteps: {
    prepare: "link add kv[a-z2-7]{13} .*type veth peer name",
    configurePod: "addr add [^ ]+ dev ",
    configureHost: "unreachable 0\\.0\\.0\\.0/0 metric",
    detach: "link del kv[a-z2-7]{13}",
    // In VRF mode the VRF device comes first (the VXLAN device is made a member of it).
    ...(mode === "vrf" ? vrfDevice : { vpcDevice: "link add kvx-[a-z2-7]{10} .*type vxlan ", vpcRelease: "link del kvx-[a-z2-7]{10}$" }),
  },
  prepareNode: async (node) => {
    // Both vxlan variants want it; "replace" makes the second a no-op.
    await node.ip("addr", "replace", `${vtep}/32`, "dev", "lo");
    return [];
  },
});

// Every case runs against policy-routing/vxlan, which every mainstream kernel runs natively (this
// project's CI machines among them); the others, in the vm tier under emulation on such machines,
// run the cases that hit their own kernel steps.
export const variants: readonly Variant[] = [vxlan("policy-routing", true), vxlan("vrf", false), srv6("policy-routing", false), srv6("vrf", false)];

/** The variant that runs every case (the others run their own steps' cases: ownSteps). */
export const fullVariant: Variant = (() => {
  const f = variants.find((v) => v.full);
  if (f === undefined) throw new Error("no variant runs every case");
  return f;
})();

/** The kernel lines of each batch step of an attachment, as cni/dataplane/lines.ts makes them for
 * `v` (the same attachment in every variant: only mode and encapsulation differ). */
function stepLines(v: Variant): Record<"prepare" | "configurePod" | "configureHost" | "detach", string[]> {
  const srv6 = v.encap === "srv6";
  const a: AttachmentShape = {
    mode: v.mode,
    encap: v.encap,
    vpc: 0xfan,
    table: 250,
    hostIf: "kvaaaaaaaaaaaab",
    hostMac: "02:00:00:00:00:01",
    podIf: "eth0",
    podMac: "02:00:00:00:00:02",
    netns: "/var/run/netns/pod",
    mtu: 1430,
    alias: "kvrf:net:c1:eth0",
    sid: srv6 ? "fd00:0:fa::fa:1" : undefined,
    sid6: srv6 ? "fd00:0:fa:1::fa:1" : undefined,
  };
  const x: Addressing = { podAddresses: ["10.61.0.2/32", "fd61::2/128"], routes: [], terminations: [] };
  const host = hostBatch(a, x, "fd6b:7672:6600::fa:0:1");
  const text = (b: Batch): string => `${[...b.args, "-batch", "-"].join(" ")}\n${b.lines.join("\n")}`;
  // The batch the step's fault rule matches (test/harness/fault-ip.ts matches the same text).
  const detach = detachBatches(a).find((b) => new RegExp(v.ipSteps.detach).test(text(b)));
  return {
    prepare: prepareBatch(a).lines,
    configurePod: podBatch(a, x).lines,
    configureHost: (needsDx4(a, x) ? withDx4(host, a, "169.254.64.7") : host).lines,
    detach: detach?.lines ?? [],
  };
}

/**
 * The steps of `v` that run kernel lines the all-cases variant's same step does not, read off
 * cni/dataplane/lines.ts (for the VPC's device: a device of another kind). Fault cases aimed at
 * any other step exercise code and kernel lines the all-cases variant already runs through them.
 * VRF mode with SRv6: prepare (the VRF device up, the veth enslaved, End.DT46 into the VRF) and
 * the VPC's VRF device; not the pod side (the same lines), the host side (policy routing's lines
 * less its `iif` rule) nor detach's veth removal (the same batch).
 */
export function ownSteps(v: Variant): Set<keyof IpSteps> {
  const own = new Set<keyof IpSteps>();
  if (v === fullVariant) return own;
  const mine = stepLines(v);
  const full = stepLines(fullVariant);
  for (const step of ["prepare", "configurePod", "configureHost", "detach"] as const) {
    if (mine[step].some((l) => !full[step].includes(l))) own.add(step);
  }
  for (const step of ["vpcDevice", "vpcRelease"] as const) {
    if (v.ipSteps[step] !== undefined && v.ipSteps[step] !== fullVariant.ipSteps[step]) own.add(step);
  }
  return own;
}
