// VRF mode cannot run on this kernel (no CONFIG_NET_VRF), so its command sequence is checked
// against a FAKE `ip`/`nsenter` that records what it is asked and answers link queries.
// The policy-routing mode runs for real in test/kernel/attachment.test.ts.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attach, attachmentIds, detach, ensureVpc, releaseVpcIfUnused } from "./attachment.js";
import { UndoStack } from "./undo.js";
import { binaries } from "../../shared/kernel/ip.js";
import { parseLocator } from "../../shared/srv6-sid.js";

describe("VRF mode (fake ip)", () => {
  let dir: string;
  let log: string;
  const saved = { ...binaries };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "kvrf-fake-ip-"));
    log = path.join(dir, "calls.log");
    const fake = path.join(dir, "fake-ip");
    writeFileSync(
      fake,
      `#!/bin/sh
# FAKE iproute2 for tests: records each call (and batch input), answers link queries.
echo "$*" >> ${log}
case " $* " in *" -batch - "*) sed 's/^/  | /' >> ${log} ;; esac
case " $* " in *" -j link show dev "*) echo '[{"address":"02:00:00:00:00:01"}]' ;; *" -j link show master "*) echo '[]' ;; esac
exit 0
`,
    );
    chmodSync(fake, 0o755);
    binaries.ip = fake;
    binaries.nsenter = fake;
  });

  afterAll(() => {
    Object.assign(binaries, saved);
    rmSync(dir, { recursive: true, force: true });
  });

  it("enslaves the veth to the VPC's VRF and decapsulates with End.DT46, without ip rules", async () => {
    writeFileSync(log, "");
    const locator = parseLocator("fd00:0:a::/48");
    await ensureVpc("vrf", 0xabn, 0xab);
    const undo = new UndoStack();
    const got = await attach(
      {
        mode: "vrf",
        vpc: 0xabn,
        attachment: 1,
        seed: "c/eth0",
        table: 0xab,
        locator,
        podIf: "eth0",
        netns: "/var/run/netns/pod",
        mtu: 1436,
        ips: [
          { address: "10.1.0.2/24", family: 4 },
          { address: "fd10::2/64", family: 6 },
        ],
        routes: [],
        terminations: [{ network: "192.168.0.0/16", via: "10.1.0.2" }],
        alias: "kvrf:n:c:eth0",
      },
      undo,
    );
    expect(got).toMatchObject({ attachment: 1, sid: "fd00:0:a::ab:1", podAddresses: ["10.1.0.2/32", "fd10::2/128"] });
    const calls = readFileSync(log, "utf8");
    const vrf = "kvrf-aaaaaaaafl";
    expect(calls).toContain(`link add ${vrf} type vrf table 171`);
    expect(calls).toContain(`| link set ${vrf} up`);
    expect(calls).toContain("| route replace unreachable 0.0.0.0/0 metric 4278198272 table 171 proto 196");
    expect(calls).toContain("| route replace unreachable ::/0 metric 4278198272 table 171 proto 196");
    expect(calls).toContain(
      `| link add ${got.hostIf} address ${got.hostMac} mtu 1436 up type veth peer name eth0 address ${got.podMac} mtu 1436 netns /var/run/netns/pod`,
    );
    expect(calls).toContain(`| link set ${got.hostIf} alias kvrf:n:c:eth0`);
    expect(calls).toContain(`| link set ${got.hostIf} master ${vrf}`);
    expect(calls).toContain(`| route add 10.1.0.2/32 dev ${got.hostIf} table 171 proto 196 scope link`);
    expect(calls).toContain(`| route add 192.168.0.0/16 via 10.1.0.2 dev ${got.hostIf} table 171 proto 196 onlink`);
    expect(calls).toContain(`| route add fd00:0:a::ab:1/128 encap seg6local action End.DT46 vrftable 171 dev ${vrf} proto 196`);
    expect(calls).not.toMatch(/rule add/);
    expect(calls).not.toMatch(/End\.DX/);

    writeFileSync(log, "");
    await detach({ mode: "vrf", table: 0xab, ...attachmentIds(locator, 0xabn, 1) });
    expect(await releaseVpcIfUnused("vrf", 0xabn, 0xab)).toBe(true);
    const teardown = readFileSync(log, "utf8");
    expect(teardown).toContain("| route del fd00:0:a::ab:1/128 proto 196");
    expect(teardown).toContain(`| link del ${got.hostIf}`);
    expect(teardown).toContain(`link del ${vrf}`);
  });
});
