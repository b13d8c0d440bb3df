import { describe, expect, it } from "vitest";
import type { PeerConfig, PeerStatus } from "../gobgp/speaker.js";
import { peerFingerprint, planGlobal, planPeers } from "./speaker-planner.js";

const g = { asn: 65000, routerId: "10.0.0.1", listenPort: 179 };
const peer = (address: string, over: Partial<PeerConfig> = {}): PeerConfig => ({ address, asn: 65000, families: ["vpnv4", "vpnv6"], ...over });
const seen = (p: PeerConfig, over: Partial<PeerStatus> = {}): PeerStatus => ({ ...p, state: "established", ...over });

describe("planGlobal", () => {
  it.each([
    ["start when BGP is not running", g, undefined, "start"],
    ["nothing when it matches", g, { ...g }, undefined],
    ["restart on a new router ID", g, { ...g, routerId: "10.0.0.2" }, "restart"],
    ["restart on a new ASN", g, { ...g, asn: 1 }, "restart"],
    ["stop when no instance selects the node", undefined, g, "stop"],
    ["nothing when neither", undefined, undefined, undefined],
  ] as const)("%s", (_n, desired, observed, want) => {
    expect(planGlobal(desired, observed)?.op).toBe(want);
  });
});

describe("planPeers", () => {
  it.each([
    ["adds missing and deletes unknown peers", [peer("fd00::1")], [seen(peer("fd00::2"))], new Map(), ["delete-peer fd00::2", "add-peer fd00::1"]],
    ["leaves matching peers alone after a kvrfd restart (no fingerprint)", [peer("fd00::1", { password: "s" })], [seen(peer("fd00::1"))], new Map(), []],
    ["updates on an ASN change seen on the speaker", [peer("fd00::1")], [seen(peer("fd00::1", { asn: 1 }))], new Map(), ["update-peer fd00::1"]],
    [
      "updates when what we applied differs from what is desired",
      [peer("fd00::1", { holdTimeSeconds: 9 })],
      [seen(peer("fd00::1"))],
      new Map([["fd00::1", peerFingerprint(peer("fd00::1"))]]),
      ["update-peer fd00::1"],
    ],
    ["updates when the RR-client flag changed", [peer("fd00::1", { routeReflectorClient: true })], [seen(peer("fd00::1"))], new Map(), ["update-peer fd00::1"]],
    ["updates when graceful restart is turned on", [peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 120 } })], [seen(peer("fd00::1"))], new Map(), ["update-peer fd00::1"]],
    ["updates when its restart time changed", [peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 60 } })], [seen(peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 120 } }))], new Map(), ["update-peer fd00::1"]],
    [
      "never updates for the restarting flag (a session reset for nothing)",
      [peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 120 } })],
      [seen(peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 120 } }))],
      new Map([["fd00::1", peerFingerprint(peer("fd00::1", { gracefulRestart: { restartTimeSeconds: 120 }, localRestarting: true }))]]),
      [],
    ],
  ] as const)("%s", (_n, desired, observed, applied, want) => {
    expect(planPeers(desired, observed, applied).map((a) => `${a.op} ${a.op === "delete-peer" ? a.address : a.peer.address}`)).toEqual(want);
  });
});
