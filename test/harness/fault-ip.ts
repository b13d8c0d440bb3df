// A named test double around iproute2's `ip`, for fault injection: the kernel stays real, and each
// rule makes one matching invocation die or wait the way a real one can (killed by the OOM killer
// or a timeout, a slow kernel, a pod namespace removed meanwhile). The plugin finds it first on
// PATH (nsenter too, for the pod side); with no rules it just execs the real ip.
//
// A rule matches an invocation when its extended regular expression (grep -E) matches the
// invocation's text: its arguments, a newline, and its batch lines. Each rule fires once.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export type IpFaultAction =
  /** SIGKILL before running: nothing applied. */
  | { kind: "kill-before" }
  /** Run the real ip, then SIGKILL: applied, yet the caller sees a failure. */
  | { kind: "kill-after" }
  /** Fail as the kernel refusing would (exit 2, RTNETLINK message). */
  | { kind: "fail" }
  /** Just run (after `sleepSeconds`: a slow step). */
  | { kind: "run" }
  /** Delete a named network namespace before (or after) running. */
  | { kind: "netns-del-before" | "netns-del-after"; netns: string };

export interface IpFault {
  /** grep -E pattern over "ARGS\nBATCH". */
  match: string;
  /** Wait this long before acting. */
  sleepSeconds?: number;
  action: IpFaultAction;
}

function script(realIp: string): string {
  return `#!/bin/sh
# kvrf test double around ${realIp} (test/harness/fault-ip.ts): rules in $KVRF_IP_FAULTS.
real=${realIp}
rules=\${KVRF_IP_FAULTS:-}
if [ -z "$rules" ] || [ ! -s "$rules" ]; then exec "$real" "$@"; fi
input=""
case " $* " in *" -batch "*) input=$(mktemp); cat > "$input" ;; esac
text="$*"
[ -n "$input" ] && text="$text
$(cat "$input")"
run() { if [ -n "$input" ]; then "$real" "$@" < "$input"; else "$real" "$@"; fi; }
finish() { [ -n "$input" ] && rm -f "$input"; }
tab=$(printf '\\t')
while IFS="$tab" read -r id action arg pause regex; do
  [ -n "$id" ] || continue
  printf '%s\\n' "$text" | grep -Eq -- "$regex" || continue
  mkdir "$rules.fired.$id" 2>/dev/null || continue
  [ "$pause" = 0 ] || sleep "$pause"
  case $action in
    kill-before) finish; kill -KILL $$ ;;
    kill-after) run "$@"; finish; kill -KILL $$ ;;
    fail) finish; echo "RTNETLINK answers: Operation not permitted (injected by the test)" >&2; exit 2 ;;
    run) ;;
    netns-del-before) "$real" netns del "$arg" ;;
    netns-del-after) run "$@"; rc=$?; finish; "$real" netns del "$arg"; exit $rc ;;
  esac
done < "$rules"
run "$@"
rc=$?
finish
exit $rc
`;
}

export class FaultIp {
  /** The real ip. */
  readonly realIp: string;
  /** Put first on the plugin's PATH. */
  readonly binDir: string;
  /** The plugin's KVRF_IP_FAULTS. */
  readonly rulesFile: string;

  constructor(dir: string) {
    this.binDir = path.join(dir, "fault-ip-bin");
    this.rulesFile = path.join(dir, "ip-faults");
    mkdirSync(this.binDir, { recursive: true });
    this.realIp = execFileSync("sh", ["-c", "command -v ip"], { encoding: "utf8" }).trim();
    writeFileSync(path.join(this.binDir, "ip"), script(this.realIp));
    chmodSync(path.join(this.binDir, "ip"), 0o755);
    this.set([]);
  }

  /** Replaces the rules (and forgets which fired). */
  set(faults: readonly IpFault[]): void {
    this.clearFired();
    const lines = faults.map((f, i) => {
      const arg = f.action.kind === "netns-del-before" || f.action.kind === "netns-del-after" ? f.action.netns : "-";
      if (/[\t\n]/.test(f.match)) throw new Error(`ip fault pattern must be one line without tabs: ${f.match}`);
      return `r${i}\t${f.action.kind}\t${arg}\t${f.sleepSeconds ?? 0}\t${f.match}\n`;
    });
    writeFileSync(this.rulesFile, lines.join(""));
  }

  /** The rules that fired, by index in the last set(). */
  fired(): number[] {
    const dir = path.dirname(this.rulesFile);
    const prefix = `${path.basename(this.rulesFile)}.fired.r`;
    return readdirSync(dir)
      .filter((f) => f.startsWith(prefix))
      .map((f) => Number(f.slice(prefix.length)))
      .sort((a, b) => a - b);
  }

  private clearFired(): void {
    const dir = path.dirname(this.rulesFile);
    const prefix = `${path.basename(this.rulesFile)}.fired.`;
    for (const f of readdirSync(dir)) if (f.startsWith(prefix)) rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}
