// Steady traffic between the lab's pods while something breaks: one ping per flow every 10 ms
// (`ping -D -i 0.01`, timestamped replies), a flow for every ordered pair of pods of the same VPC on
// different nodes. Stopped, each flow says how many echo requests went out, how many were answered,
// which were lost and when the flow was whole again; each pod's ICMP counters say whether it received
// more echo requests than its own VPC's flows sent it (a packet from another VPC).
import { spawn, type ChildProcess } from "node:child_process";
import { echoRequests, type AttachedPod } from "./lab.js";
import { podNetns } from "./topology.js";

export interface FlowResult {
  from: string;
  to: string;
  vpc: string;
  family: 4 | 6;
  /** The nodes of the two pods. */
  nodes: [string, string];
  sent: number;
  received: number;
  /** Sequence numbers without a reply (the last one, still in flight at the stop, excluded). */
  lost: number[];
  /** Seconds since the epoch of the first reply after the last lost request (undefined: none lost). */
  recoveredAt?: number;
}

interface Running {
  from: AttachedPod;
  to: AttachedPod;
  family: 4 | 6;
  proc: ChildProcess;
  out: string;
  closed: Promise<void>;
}

/** Pairs of pods of the same VPC on different nodes, both directions. */
export function crossNodePairs(pods: readonly AttachedPod[]): [AttachedPod, AttachedPod][] {
  const out: [AttachedPod, AttachedPod][] = [];
  for (const a of pods) for (const b of pods) if (a !== b && a.vpc === b.vpc && a.node !== b.node) out.push([a, b]);
  return out;
}

export class Flows {
  private constructor(
    private readonly running: Running[],
    private readonly echoBefore: Map<string, { v4: number; v6: number }>,
    private readonly pods: readonly AttachedPod[],
  ) {}

  static async start(pods: readonly AttachedPod[], families: readonly (4 | 6)[] = [4], intervalMs = 10): Promise<Flows> {
    const echoBefore = new Map<string, { v4: number; v6: number }>();
    for (const p of pods) echoBefore.set(p.name, await echoRequests(p.name));
    const running: Running[] = [];
    for (const [from, to] of crossNodePairs(pods)) {
      for (const family of families) {
        const addr = family === 4 ? to.ipv4 : to.ipv6;
        const proc = spawn("ip", ["netns", "exec", podNetns(from.name), "ping", `-${family}`, "-n", "-D", "-i", String(intervalMs / 1000), "-W", "1", addr], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        const r: Running = { from, to, family, proc, out: "", closed: Promise.resolve() };
        proc.stdout?.setEncoding("utf8");
        proc.stdout?.on("data", (d: string) => (r.out += d));
        r.closed = new Promise((resolve) => proc.once("close", () => resolve()));
        running.push(r);
      }
    }
    return new Flows(running, echoBefore, pods);
  }

  /** Stops every ping (SIGINT: it prints its summary) and reads the results. */
  async stop(): Promise<{ flows: FlowResult[]; crossVpc: { pod: string; extra: number }[] }> {
    for (const r of this.running) if (r.proc.pid !== undefined && r.proc.exitCode === null) r.proc.kill("SIGINT");
    await Promise.all(this.running.map((r) => r.closed));
    const flows = this.running.map((r) => parsePing(r.out, r.from, r.to, r.family));
    const crossVpc: { pod: string; extra: number }[] = [];
    for (const p of this.pods) {
      const before = this.echoBefore.get(p.name) ?? { v4: 0, v6: 0 };
      const now = await echoRequests(p.name);
      for (const family of [4, 6] as const) {
        const got = family === 4 ? now.v4 - before.v4 : now.v6 - before.v6;
        const sentHere = flows.filter((f) => f.to === p.name && f.family === family).reduce((n, f) => n + f.sent, 0);
        if (got > sentHere) crossVpc.push({ pod: p.name, extra: got - sentHere });
      }
    }
    return { flows, crossVpc };
  }

  /** Kills every ping at once (cleanup after a failure). */
  kill(): void {
    for (const r of this.running) if (r.proc.exitCode === null) r.proc.kill("SIGKILL");
  }
}

/** `ping -D` output → what was sent, answered and lost, and when the flow was whole again. */
export function parsePing(out: string, from: AttachedPod, to: AttachedPod, family: 4 | 6): FlowResult {
  const replies = new Map<number, number>();
  for (const m of out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/gm)) replies.set(Number(m[2]), Number(m[1]));
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const sent = Number(summary?.[1] ?? 0);
  const lost: number[] = [];
  // The last request may still be in flight when ping is stopped.
  for (let seq = 1; seq < sent; seq++) if (!replies.has(seq)) lost.push(seq);
  const last = lost.at(-1);
  let recoveredAt: number | undefined;
  if (last !== undefined) {
    for (const [seq, t] of replies) if (seq > last && (recoveredAt === undefined || t < recoveredAt)) recoveredAt = t;
  }
  return {
    from: from.name,
    to: to.name,
    vpc: from.vpc,
    family,
    nodes: [from.node, to.node],
    sent,
    received: Number(summary?.[2] ?? replies.size),
    lost,
    ...(recoveredAt !== undefined ? { recoveredAt } : {}),
  };
}
