// Golden files pin the kernel lines of every (kernel mode × encapsulation × address family): a
// change to what the plugin tells the kernel shows up as a diff of testdata/*.golden in review.
// Regenerate with UPDATE_GOLDEN=1 after checking the difference is intended.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Encapsulation } from "../../shared/api-types.js";
import { attachmentSid, attachmentSid6, parseLocator } from "../../shared/srv6-sid.js";
import { detachBatches, hostBatch, needsDx4, podBatch, prepareBatch, releaseTableLines, vxlanDeviceBatches, vxlanReleaseBatches, withDx4, type Batch } from "./lines.js";
import type { DataplaneMode } from "./mode.js";

const dir = path.join(import.meta.dirname, "testdata");
const locator = parseLocator("fd00:0:a::/48");
const vpc = 0xabn;

function transcript(mode: DataplaneMode, encap: Encapsulation, family: "ipv4" | "ipv6" | "dual"): string {
  const a = {
    mode,
    encap,
    vpc,
    table: 0xab,
    hostIf: "kvaaaaaaaavlaab",
    hostMac: "02:00:00:00:00:01",
    podIf: "eth0",
    podMac: "02:00:00:00:00:02",
    netns: "/var/run/netns/pod",
    mtu: encap === "srv6" ? 1436 : 1430,
    alias: "kvrf:net:c1:eth0",
    sid: encap === "srv6" ? attachmentSid(locator, vpc, 1) : undefined,
    sid6: encap === "srv6" ? attachmentSid6(locator, vpc, 1) : undefined,
  };
  const x = {
    podAddresses: [...(family !== "ipv6" ? ["10.1.0.2/32"] : []), ...(family !== "ipv4" ? ["fd10::2/128"] : [])],
    routes: [{ dst: "10.2.0.0/16" }, { dst: "fd20::/48" }],
    terminations: family !== "ipv6" ? [{ network: "192.168.0.0/24", via: "10.1.0.2" }] : [],
  };
  const show = (title: string, batches: Batch[]): string =>
    [`# ${title}`, ...batches.flatMap((b) => [`ip ${[...b.args, "-batch", "-"].join(" ")}`, ...b.lines.map((l) => `  ${l}`)])].join("\n");
  const vxlan = encap === "vxlan" ? { vni: 0xab, vtep: "192.0.2.11", routerMac: "02:aa:bb:cc:dd:ee" } : undefined;
  const vpcShape = { mode, encap, vpc, table: 0xab, mtu: a.mtu, vxlan };
  let host = hostBatch(a, x, "fd6b:7672:6600:0:0:ab:0:1");
  if (needsDx4(a, x)) host = withDx4(host, a, "169.254.64.7");
  return [
    `# ${mode} × ${encap} × ${family}`,
    show("per VPC: VXLAN device", vxlanDeviceBatches(vpcShape)),
    show("prepare", [prepareBatch(a)]),
    show("configure: pod", [podBatch(a, x)]),
    show("configure: host", [host]),
    show("detach", detachBatches(a)),
    show("release VPC", [...vxlanReleaseBatches(vpcShape), { args: [], lines: releaseTableLines(0xab) }]),
    "",
  ].join("\n");
}

describe("kernel lines per mode, encapsulation and family (golden files)", () => {
  for (const mode of ["vrf", "policy-routing"] as const) {
    for (const encap of ["srv6", "vxlan"] as const) {
      for (const family of ["ipv4", "ipv6", "dual"] as const) {
        const name = `${mode}-${encap}-${family}`;
        it(name, () => {
          const got = transcript(mode, encap, family);
          const file = path.join(dir, `${name}.golden`);
          if (process.env["UPDATE_GOLDEN"] === "1" || !existsSync(file)) writeFileSync(file, got);
          expect(got).toBe(readFileSync(file, "utf8"));
        });
      }
    }
  }

  it("never decapsulates with SRv6 in VXLAN mode, and never makes a VXLAN device with SRv6", () => {
    for (const mode of ["vrf", "policy-routing"] as const) {
      expect(transcript(mode, "vxlan", "dual")).not.toMatch(/seg6/);
      expect(transcript(mode, "srv6", "dual")).not.toMatch(/type vxlan/);
    }
  });

  it("binds the VXLAN device to the VPC's table before it comes up", () => {
    for (const mode of ["vrf", "policy-routing"] as const) {
      const lines = vxlanDeviceBatches({ mode, encap: "vxlan", vpc, table: 0xab, mtu: 1430, vxlan: { vni: 0xab, vtep: "192.0.2.11", routerMac: "02:aa:bb:cc:dd:ee" } }).flatMap(
        (b) => b.lines,
      );
      const up = lines.findIndex((l) => / up$/.test(l));
      expect(up).toBe(lines.length - 1);
      expect(lines.slice(0, up).some((l) => (mode === "vrf" ? / master kvrf-/.test(l) : /^rule add iif kvx-/.test(l)))).toBe(true);
    }
  });
});
