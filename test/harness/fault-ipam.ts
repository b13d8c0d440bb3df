// A named test double for IPAM behaviour: an IPAM plugin that hands the real work to host-local
// (its lease store is the one tests inspect) and misbehaves on request, the ways an IPAM plugin
// can: answering an error fast or slow, crashing before or after taking a lease, printing
// garbage. Plain TypeScript that Node runs directly (type stripping), no imports but node:.
// Installed into a CNI_PATH directory by installFaultIpam() (cni-faults.ts) as `kvrf-fault-ipam`.
//
// Its network config's `ipam` entry:
//   { "type": "kvrf-fault-ipam", "delegate": { host-local's ipam entry }, "delegatePlugin": PATH,
//     "faults": { "ADD": Fault, "DEL": Fault, … } }
// Fault: { "delayMs"?: n, "then": "pass" | "error" | "crash" | "lease-then-crash" | "lease-then-garbage",
//          "code"?: n (for "error"), "garbage"?: text (for "lease-then-garbage") }
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

interface Fault {
  delayMs?: number;
  then: "pass" | "error" | "crash" | "lease-then-crash" | "lease-then-garbage";
  code?: number;
  garbage?: string;
}

const verb = process.env["CNI_COMMAND"] ?? "";
const stdin = readFileSync(0);
const conf = JSON.parse(stdin.toString("utf8")) as { cniVersion?: string; ipam: { delegate: Record<string, unknown>; delegatePlugin: string; faults?: Record<string, Fault> } };
const fault: Fault = conf.ipam.faults?.[verb] ?? { then: "pass" };

/** host-local with the same verb and environment, its own ipam entry in the config. */
function delegate(): { status: number; stdout: Buffer; stderr: Buffer } {
  const input = JSON.stringify({ ...conf, ipam: conf.ipam.delegate });
  const r = spawnSync(conf.ipam.delegatePlugin, [], { input, env: process.env });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function crash(): never {
  // What a crashing Go plugin leaves on stderr: the plugin must not pass this on as its message.
  process.stderr.write("panic: injected by the test\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/ipam/main.go:12 +0x1d\n");
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

if (fault.delayMs !== undefined) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, fault.delayMs);
switch (fault.then) {
  case "pass": {
    const r = delegate();
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    process.exitCode = r.status;
    break;
  }
  case "error":
    process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion ?? "1.1.0", code: fault.code ?? 999, msg: `injected ${verb} failure`, details: "kvrf-fault-ipam" }));
    process.exitCode = 1;
    break;
  case "crash":
    crash();
    break;
  case "lease-then-crash":
    delegate();
    crash();
    break;
  case "lease-then-garbage":
    delegate();
    process.stdout.write(fault.garbage ?? "not json");
    break;
}
