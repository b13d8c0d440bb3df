import { describe, expect, it } from "vitest";
import { chooseNextHop, underlayTowardPeers, UnderlayError, type AddrInfo, type RouteGet } from "./underlay.js";

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

describe("chooseNextHop", () => {
  // As `ip -j -6 addr show dev fab0 scope global` lists them: the newest first. The SLAAC address
  // is what FRR's router advertisements made in the lab (docs/interop.md).
  const slaac: AddrInfo = { family: "inet6", local: "fd00:ff::c87:49ff:fe01:1969", scope: "global", dynamic: true };
  const configured: AddrInfo = { family: "inet6", local: "fd00:ff::11", scope: "global" };
  const other: AddrInfo = { family: "inet6", local: "fd00:ff::99", scope: "global" };
  it.each([
    { name: "the Node's address over a newer SLAAC one", addrs: [slaac, configured], node: ["fd00:ff:0::11"], kernel: undefined, want: "fd00:ff::11", why: /Node's own/ },
    { name: "the Node's address over the kernel's SLAAC source", addrs: [slaac, configured], node: ["fd00:ff::11"], kernel: slaac.local, want: "fd00:ff::11", why: /Node's own/ },
    { name: "of two Node addresses, the kernel's", addrs: [configured, other], node: ["fd00:ff::11", "fd00:ff::99"], kernel: "fd00:ff::99", want: "fd00:ff::99", why: /Node's own/ },
    { name: "no Node address on the link: the kernel's configured source", addrs: [other, configured], node: ["192.0.2.1"], kernel: "fd00:ff::11", want: "fd00:ff::11", why: /kernel/ },
    { name: "no Node address, kernel chose SLAAC: first configured", addrs: [slaac, configured], node: [], kernel: slaac.local, want: "fd00:ff::11", why: /first configured/ },
    { name: "only SLAAC", addrs: [slaac], node: [], kernel: undefined, want: slaac.local, why: /autoconfigured/ },
    { name: "deprecated and tentative are skipped", addrs: [{ ...configured, deprecated: true }, { ...other, tentative: true }, slaac], node: ["fd00:ff::11"], kernel: undefined, want: slaac.local, why: /autoconfigured/ },
  ])("$name", ({ addrs, node, kernel, want, why }) => {
    const got = chooseNextHop(addrs, node, kernel);
    expect(got?.address).toBe(want);
    expect(got?.why).toMatch(why);
  });

  it("nothing usable", () => {
    expect(chooseNextHop([{ family: "inet6", local: "fe80::1", scope: "link" }], [])).toBeUndefined();
  });
});
