// `ip monitor route` in a network namespace, reporting kvrfd's encap routes (proto 241) as they
// are added and deleted; the throw routes that go with them are left out.
import { spawn } from "node:child_process";

export interface RouteEvent {
  /** The destination with its length, e.g. 10.1.0.5/32. */
  prefix: string;
  table: number;
  deleted: boolean;
}

export function watchKvrfdRoutes(netns: string, on: (e: RouteEvent) => void): { stop(): void } {
  const child = spawn("ip", ["-n", netns, "monitor", "route"], { stdio: ["ignore", "pipe", "ignore"] });
  let buf = "";
  child.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) {
      if (!/ proto 241/.test(l)) continue;
      const m = /^(Deleted )?(\S+) +encap .* table (\d+) /.exec(l);
      if (m?.[2] === undefined) continue;
      const dst = m[2];
      on({ prefix: dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`, table: Number(m[3]), deleted: m[1] !== undefined });
    }
  });
  return { stop: () => void child.kill("SIGTERM") };
}
