// Runs one shell command in the vm tier's guest (Debian's stock kernel under qemu, with this host's
// root filesystem), streaming the serial console; exits with the command's exit code. For looking
// around on a real kernel by hand:
//   tsx scripts/vm/run.ts 'ip link add v0 type vrf table 10 && ip -d link show v0'
//   tsx scripts/vm/run.ts --net --keep 'curl -s http://10.0.2.2:8080/'
// --net: user-mode networking (the host's loopback is 10.0.2.2); --keep: keep the job directory.
import { rmSync } from "node:fs";
import { runInVm } from "../../test/harness/vm.js";

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith("--")));
const command = args.filter((a) => !a.startsWith("--")).join(" ");
if (command === "") {
  process.stderr.write("usage: tsx scripts/vm/run.ts [--net] [--keep] 'COMMAND'\n");
  process.exit(2);
}
const r = await runInVm({ command, network: flags.has("--net"), onConsole: (t) => process.stdout.write(t) });
const s = (ms: number | undefined): string => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
process.stderr.write(`vm: boot ${s(r.timings.bootMs)}, command ${s(r.timings.commandMs)}, total ${s(r.timings.totalMs)}; exit ${r.exitCode ?? "none"}\n`);
if (r.failure !== undefined && r.exitCode === undefined) process.stderr.write(`vm: ${r.failure}\n`);
if (flags.has("--keep") || r.exitCode === undefined) process.stderr.write(`vm: job directory ${r.jobDir}\n`);
else rmSync(r.jobDir, { recursive: true, force: true });
process.exit(r.exitCode ?? 1);
