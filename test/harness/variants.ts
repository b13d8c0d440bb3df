// The CNI plugin's data-plane variants (kernel mode × encapsulation), for suites that run the same
// cases against each one. A variant says what the kernel needs for its ADD to get through
// (describeNeeds places the suite on a kernel that has it), how to configure it, and how to
// recognise its `ip` invocations (fault injection aims at one step by these). Adding a variant is
// one entry in `variants`.
import type { Netns } from "./netns.js";
import { cniNeeds, type Capability, type Encapsulation, type KernelMode } from "../../shared/kernel/capabilities.js";

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
   * hit their own kernel steps: IPAM, API and state-directory faults take the same code path
   * whatever the data plane, and each case costs seconds (minutes under the vm tier's emulation).
   * Best on a variant the host kernel runs natively.
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
