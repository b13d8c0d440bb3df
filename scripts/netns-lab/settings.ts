// The lab's settings from command-line flags, checked against this machine's kernel.
import { cniNeeds, defaultMode, describeMissing, kvrfdNeeds, missingCapabilities, probeCapabilities, type Capability, type CapabilityReport } from "../../shared/kernel/capabilities.js";
import { describeSettings, type LabReflector, type LabSettings } from "./topology.js";

/** What the lab's data plane needs from the kernel (every node of the lab shares this one). */
function labMissing(report: CapabilityReport, encap: LabSettings["encap"], underlay: 4 | 6): Capability[] {
  const { mode } = defaultMode(report);
  return missingCapabilities(report, [...cniNeeds(mode, encap), ...kvrfdNeeds(encap, underlay)]);
}

/**
 * The lab's settings from the flags (--encap srv6|vxlan|auto, --underlay 4|6, --reflector
 * gobgpd|frr). Auto picks SRv6 where this kernel can run it (VRF mode or policy routing, whichever
 * it has) and VXLAN otherwise, and says why; a forced encapsulation the kernel cannot run is
 * refused, naming what is missing. The reflector is FRR only when asked for (it needs Debian's frr).
 */
export async function chooseSettings(args: readonly string[], log: (s: string) => void): Promise<LabSettings> {
  const flag = (name: string): string | undefined => {
    const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (i < 0) return undefined;
    const a = args[i] ?? "";
    return a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[i + 1];
  };
  const encapFlag = flag("encap") ?? "auto";
  const underlayFlag = flag("underlay");
  const reflectorFlag = flag("reflector") ?? "gobgpd";
  if (!["gobgpd", "frr"].includes(reflectorFlag)) throw new Error(`--reflector: want gobgpd or frr, got ${reflectorFlag}`);
  const reflector = reflectorFlag as LabReflector;
  const fabricFlag = flag("fabric") ?? "ibgp";
  if (!["ibgp", "ebgp"].includes(fabricFlag)) throw new Error(`--fabric: want ibgp or ebgp, got ${fabricFlag}`);
  if (fabricFlag === "ebgp" && reflector !== "frr") {
    throw new Error("--fabric ebgp needs --reflector frr: the spine must pass the workers' next hops on unchanged (their VTEPs and SIDs' owners), which a gobgpd spine does not on eBGP sessions");
  }
  if (!["auto", "srv6", "vxlan"].includes(encapFlag)) throw new Error(`--encap: want srv6, vxlan or auto, got ${encapFlag}`);
  if (underlayFlag !== undefined && !["4", "6"].includes(underlayFlag)) throw new Error(`--underlay: want 4 or 6, got ${underlayFlag}`);
  const kubelet = args.includes("--kubelet");
  const report = await probeCapabilities();
  const { mode } = defaultMode(report);
  const srv6Missing = labMissing(report, "srv6", 6);
  let encap: LabSettings["encap"];
  if (encapFlag === "auto" && kubelet) {
    encap = "vxlan";
  } else if (encapFlag === "auto") {
    encap = srv6Missing.length === 0 ? "srv6" : "vxlan";
    log(
      encap === "srv6"
        ? `kernel ${report.kernel}: SRv6 available (${mode} mode), so the lab runs SRv6 (--encap vxlan for VXLAN)`
        : `kernel ${report.kernel} lacks ${describeMissing(srv6Missing)}: the lab runs VXLAN instead (${mode} mode); SRv6 is tested on Debian's kernel in the vm test tier`,
    );
  } else {
    encap = encapFlag as LabSettings["encap"];
  }
  const underlay = underlayFlag !== undefined ? (Number(underlayFlag) as 4 | 6) : encap === "srv6" ? 6 : 4;
  if (encap === "srv6" && underlay !== 6) throw new Error("--underlay 4: SRv6 needs an IPv6 underlay");
  const missing = labMissing(report, encap, underlay);
  if (missing.length > 0) {
    throw new Error(`the lab's ${encap} data plane needs ${describeMissing(missing)}, which this kernel (${report.kernel}) lacks${encap === "srv6" ? "; try --encap vxlan" : ""}`);
  }
  // Not a kernel limit: the kubelet lab's overlay renders a VXLAN conflist (manifests/overlays/lab-kubelet).
  if (kubelet && reflector === "frr") throw new Error("--kubelet runs with the gobgpd reflector only (the lab reads the sessions from it)");
  if (kubelet && encap === "srv6") throw new Error("--kubelet: the kubelet lab runs VXLAN (--encap vxlan); its overlay renders a VXLAN conflist");
  const settings: LabSettings = {
    encap,
    underlay,
    ...(reflector === "frr" ? { reflector } : {}),
    ...(fabricFlag === "ebgp" ? { fabric: "ebgp" as const } : {}),
    ...(kubelet ? { runtime: "kubelet" as const } : {}),
  };
  log(`kernel ${report.kernel}, ${mode} mode: ${describeSettings(settings)}`);
  return settings;
}

