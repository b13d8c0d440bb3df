import { describe, expect, it } from "vitest";
import { underlayTowardPeers, UnderlayError, type RouteGet } from "./underlay.js";

const table: Record<string, RouteGet[] | Error> = {
  "fd00:ff::1": [{ dst: "fd00:ff::1", dev: "eth1", prefsrc: "fd00:ff::11", type: "unicast" }],
  "fd00:ff::2": [{ dst: "fd00:ff::2", dev: "eth2", prefsrc: "fd00:ff::21" }],
  "fd00:ee::1": new Error("RTNETLINK answers: Network is unreachable"),
  "fd00:ee::2": [{ dst: "fd00:ee::2", dev: "lo", prefsrc: "fd00:ee::2", type: "local" }],
  "fd00:ee::3": [{ dst: "fd00:ee::3", dev: "eth3" }],
  "fd00:ee::4": [{ dst: "fd00:ee::4", dev: "lo", prefsrc: "fd00:ee::4" }],
  "fd00:ee::5": [],
};
const lookup = (a: string): Promise<RouteGet[]> => {
  const r = table[a];
  return r instanceof Error ? Promise.reject(r) : Promise.resolve(r ?? []);
};

describe("underlayTowardPeers", () => {
  it.each([
    { name: "first IPv6 peer", peers: ["fd00:ff::1", "fd00:ff::2"], want: { dev: "eth1", nextHop: "fd00:ff::11", peer: "fd00:ff::1" } },
    { name: "IPv4 peers are skipped", peers: ["192.0.2.1", "fd00:ff::2"], want: { dev: "eth2", nextHop: "fd00:ff::21", peer: "fd00:ff::2" } },
    { name: "unreachable peer, next one", peers: ["fd00:ee::1", "fd00:ff::1"], want: { dev: "eth1", nextHop: "fd00:ff::11", peer: "fd00:ff::1" } },
  ])("$name", async ({ peers, want }) => {
    await expect(underlayTowardPeers(peers, lookup)).resolves.toEqual(want);
  });

  it.each([
    { name: "no peers", peers: [], msg: /no BGP peer to find it from/ },
    { name: "only IPv4 peers", peers: ["192.0.2.1"], msg: /no IPv6 BGP peer .*peers: 192\.0\.2\.1/ },
    { name: "unreachable", peers: ["fd00:ee::1"], msg: /fd00:ee::1: RTNETLINK answers: Network is unreachable/ },
    { name: "local type", peers: ["fd00:ee::2"], msg: /fd00:ee::2: route of type local/ },
    { name: "no source", peers: ["fd00:ee::3"], msg: /fd00:ee::3: no IPv6 source address on eth3/ },
    { name: "own address", peers: ["fd00:ee::4"], msg: /fd00:ee::4: is a local address/ },
    { name: "no route, all reasons", peers: ["fd00:ee::5", "fd00:ee::1"], msg: /fd00:ee::5: no route; fd00:ee::1: RTNETLINK/ },
  ])("refuses: $name", async ({ peers, msg }) => {
    const err = await underlayTowardPeers(peers, lookup).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnderlayError);
    expect((err as Error).message).toMatch(msg);
  });
});
