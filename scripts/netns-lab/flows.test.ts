import { describe, expect, it } from "vitest";
import { crossNodePairs, parsePing } from "./flows.js";

const pod = (name: string, vpc: "a1" | "b1", node: string) => ({ name, vpc, node, ipv4: "10.0.0.1", ipv6: "fd00::1" });

describe("parsePing", () => {
  it("counts what was lost (not the request in flight at the stop) and when the flow was whole again", () => {
    const out = [
      "PING 10.10.12.2 (10.10.12.2) 56(84) bytes of data.",
      "[1000.010] 64 bytes from 10.10.12.2: icmp_seq=1 ttl=64 time=0.1 ms",
      "[1000.020] 64 bytes from 10.10.12.2: icmp_seq=2 ttl=64 time=0.1 ms",
      "[1000.060] 64 bytes from 10.10.12.2: icmp_seq=6 ttl=64 time=0.1 ms",
      "[1000.050] 64 bytes from 10.10.12.2: icmp_seq=5 ttl=64 time=0.1 ms",
      "[1000.070] 64 bytes from 10.10.12.2: icmp_seq=7 ttl=64 time=0.1 ms",
      "",
      "--- 10.10.12.2 ping statistics ---",
      "8 packets transmitted, 5 received, 37.5% packet loss, time 70ms",
    ].join("\n");
    expect(parsePing(out, pod("a", "a1", "iad"), pod("b", "a1", "sjc"), 4)).toEqual({
      from: "a",
      to: "b",
      vpc: "a1",
      family: 4,
      nodes: ["iad", "sjc"],
      sent: 8,
      received: 5,
      lost: [3, 4],
      recoveredAt: 1000.05,
    });
  });

  it("has no recovery time when nothing was lost", () => {
    const out = "[5.000] 64 bytes from x: icmp_seq=1 ttl=64 time=0.1 ms\n1 packets transmitted, 1 received, 0% packet loss\n";
    expect(parsePing(out, pod("a", "a1", "iad"), pod("b", "a1", "sjc"), 4)).toMatchObject({ sent: 1, received: 1, lost: [] });
  });
});

describe("crossNodePairs", () => {
  it("pairs pods of one VPC on different nodes, both ways", () => {
    const pods = [pod("a", "a1", "iad"), pod("b", "a1", "iad"), pod("c", "a1", "sjc"), pod("d", "b1", "sjc")];
    expect(crossNodePairs(pods).map(([x, y]) => `${x.name}${y.name}`)).toEqual(["ac", "bc", "ca", "cb"]);
  });
});
