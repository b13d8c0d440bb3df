import { describe, expect, it } from "vitest";
import { desiredSpeaker, InstanceError, selectInstance, type BGPInstance } from "./bgp-instance.js";

const inst = (name: string, spec: Partial<BGPInstance["spec"]> = {}, created = "2026-01-01T00:00:00Z"): BGPInstance => ({
  apiVersion: "kvrf.dev/v1alpha1",
  kind: "BGPInstance",
  metadata: { name, creationTimestamp: new Date(created) },
  spec: { asn: 65000, nodeSelector: {}, ...spec },
});

describe("node selection", () => {
  it("picks the oldest matching instance and reports the rest", () => {
    const { chosen, ignored } = selectInstance(
      [inst("new", {}, "2026-02-01T00:00:00Z"), inst("old"), inst("rr", { nodeSelector: { matchLabels: { role: "rr" } } })],
      { role: "worker" },
    );
    expect(chosen?.metadata.name).toBe("old");
    expect(ignored.map((i) => i.metadata.name)).toEqual(["new"]);
  });

  it("selects nothing with a missing selector, everything with an empty one", () => {
    expect(selectInstance([{ ...inst("none"), spec: { asn: 1 } }], {}).chosen).toBeUndefined();
    expect(selectInstance([inst("all")], {}).chosen?.metadata.name).toBe("all");
  });
});

describe("desiredSpeaker", () => {
  const addresses = [{ type: "InternalIP", address: "fd00:ff::a" }];
  it("derives the global config and peers, resolving passwords and RR clients", async () => {
    const d = await desiredSpeaker(
      inst("i", {
        asn: 4200000001,
        listenPort: 1790,
        routeReflector: { clusterID: "1.1.1.1" },
        peers: [
          { address: "fd00:ff::1", asn: 4200000001, routeReflectorClient: true, timers: { holdTime: 9, keepalive: 3 }, passwordSecretRef: { namespace: "kvrf", name: "bgp", key: "pw" } },
          { address: "fd00:ff::2", asn: 4200000001, passwordSecretRef: { namespace: "kvrf", name: "bgp", key: "missing" } },
        ],
      }),
      addresses,
      async (ref) => (ref.key === "pw" ? "s3cret" : undefined),
    );
    expect(d.global).toEqual({ asn: 4200000001, routerId: "253.0.0.245", listenPort: 1790 });
    expect(d.peers).toEqual([
      { address: "fd00:ff::1", asn: 4200000001, families: ["vpnv4", "vpnv6"], password: "s3cret", routeReflectorClient: true, routeReflectorClusterId: "1.1.1.1", holdTimeSeconds: 9, keepaliveSeconds: 3 },
    ]);
    expect(d.skippedPeers).toEqual(["fd00:ff::2: password Secret kvrf/bgp key missing not found"]);
  });

  it("gives every peer the instance's graceful restart, unless it is absent or disabled", async () => {
    const peers = [{ address: "fd00:ff::1", asn: 65000 }];
    const gr = async (g: BGPInstance["spec"]["gracefulRestart"]) => (await desiredSpeaker(inst("i", { peers, ...(g !== undefined ? { gracefulRestart: g } : {}) }), addresses, async () => undefined)).peers[0]?.gracefulRestart;
    expect(await gr({ enabled: true, restartTime: 30 })).toEqual({ restartTimeSeconds: 30 });
    expect(await gr({})).toEqual({ restartTimeSeconds: 120 });
    expect(await gr({ enabled: false, restartTime: 30 })).toBeUndefined();
    expect(await gr(undefined)).toBeUndefined();
  });

  it("refuses a Manual router ID without a value and Auto without an InternalIP", async () => {
    await expect(desiredSpeaker(inst("i", { routerID: { source: "Manual" } }), addresses, async () => undefined)).rejects.toThrow(InstanceError);
    await expect(desiredSpeaker(inst("i"), [], async () => undefined)).rejects.toThrow(/InternalIP/);
  });
});
