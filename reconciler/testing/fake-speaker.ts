// FakeSpeaker: an in-memory Speaker for unit tests of kvrfd's controllers. It keeps global config,
// peers, VRFs and local paths like gobgpd does, imports "remote" paths by route target, emits
// watch events, and can fail calls or lose all state (a gobgpd restart) on demand. It mimics
// gobgpd's observable rules that kvrfd depends on: VRF calls fail with "not-started" before
// StartBgp, duplicate VRFs and RDs are refused, DeleteVrf withdraws the VRF's paths.
import { formatAdminAssigned, type AdminAssigned } from "../../shared/route-distinguisher.js";
import {
  SpeakerError,
  type AddressFamily,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type Speaker,
  type SpeakerErrorKind,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "../speaker.js";

/** A path learned from a peer, carried with its route targets so VRFs can import it. */
export interface FakeRemotePath {
  prefix: string;
  nextHop: string;
  sid?: string;
  behavior?: number;
  rts: AdminAssigned[];
  neighbor: string;
}

export type FakeCall = keyof Omit<Speaker, "api" | "watch" | "close">;

const rtKey = (v: AdminAssigned): string => `${v.type}:${formatAdminAssigned(v)}`;
const family = (prefix: string): AddressFamily => (prefix.includes(":") ? "ipv6" : "ipv4");

export class FakeSpeaker implements Speaker {
  readonly api = "v4" as const;
  global: GlobalConfig | undefined;
  readonly peers = new Map<string, PeerStatus>();
  readonly vrfs = new Map<string, Vrf>();
  /** vrf → prefix → path */
  readonly localPaths = new Map<string, Map<string, LocalPath>>();
  remote: FakeRemotePath[] = [];
  /** Every mutating call, in order: "addVrf vpc-1", "addLocalPath vpc-1 10.0.0.1/32", … */
  readonly log: string[] = [];
  closed = false;
  private readonly failures: { call: FakeCall | "*"; kind: SpeakerErrorKind; times: number }[] = [];
  private watchers = new Set<{ push: (e: SpeakerEvent | Error) => void }>();

  /** Makes the next `times` calls of `call` (or of any call) fail with `kind`. */
  failNext(call: FakeCall | "*", kind: SpeakerErrorKind, times = 1): void {
    this.failures.push({ call, kind, times });
  }

  /** gobgpd restarted: everything is gone and open watches break. */
  restart(): void {
    this.global = undefined;
    this.peers.clear();
    this.vrfs.clear();
    this.localPaths.clear();
    this.remote = [];
    for (const w of this.watchers) w.push(new SpeakerError("unavailable", "fake gobgpd restarted"));
    this.watchers.clear();
  }

  /** Adds or replaces a remote path (by prefix and neighbor) and tells watchers. */
  learn(p: FakeRemotePath): void {
    this.remote = this.remote.filter((r) => !(r.prefix === p.prefix && r.neighbor === p.neighbor));
    this.remote.push(p);
    this.emit({ kind: "rib" });
  }

  withdraw(prefix: string, neighbor: string): void {
    this.remote = this.remote.filter((r) => !(r.prefix === prefix && r.neighbor === neighbor));
    this.emit({ kind: "rib" });
  }

  emit(e: SpeakerEvent): void {
    for (const w of this.watchers) w.push(e);
  }

  private check(call: FakeCall, needsStarted: boolean): void {
    if (this.closed) throw new SpeakerError("unavailable", `${call}: speaker closed`);
    const f = this.failures.find((x) => (x.call === call || x.call === "*") && x.times > 0);
    if (f !== undefined) {
      f.times--;
      if (f.times === 0) this.failures.splice(this.failures.indexOf(f), 1);
      throw new SpeakerError(f.kind, `${call}: injected ${f.kind}`);
    }
    if (needsStarted && this.global === undefined) throw new SpeakerError("not-started", "bgp server hasn't started yet");
  }

  async getGlobal(): Promise<GlobalConfig | undefined> {
    this.check("getGlobal", false);
    return this.global === undefined ? undefined : { ...this.global };
  }

  async startBgp(config: GlobalConfig): Promise<void> {
    this.check("startBgp", false);
    if (this.global !== undefined) throw new SpeakerError("already-exists", "gobgp is already started");
    this.global = { ...config };
    this.log.push(`startBgp ${config.asn} ${config.routerId}`);
  }

  async stopBgp(): Promise<void> {
    this.check("stopBgp", false);
    this.global = undefined;
    this.peers.clear();
    this.vrfs.clear();
    this.localPaths.clear();
    this.log.push("stopBgp");
  }

  async listPeers(): Promise<PeerStatus[]> {
    this.check("listPeers", true);
    return [...this.peers.values()].map((p) => ({ ...p }));
  }

  async addPeer(peer: PeerConfig): Promise<void> {
    this.check("addPeer", true);
    if (this.peers.has(peer.address)) throw new SpeakerError("already-exists", `can't overwrite the existing peer: ${peer.address}`);
    this.peers.set(peer.address, { ...peer, state: "active" });
    this.log.push(`addPeer ${peer.address}`);
  }

  async updatePeer(peer: PeerConfig): Promise<void> {
    this.check("updatePeer", true);
    const old = this.peers.get(peer.address);
    if (old === undefined) throw new SpeakerError("not-found", `peer ${peer.address} not found`);
    this.peers.set(peer.address, { ...peer, state: old.state });
    this.log.push(`updatePeer ${peer.address}`);
  }

  async deletePeer(address: string): Promise<void> {
    this.check("deletePeer", true);
    if (!this.peers.delete(address)) throw new SpeakerError("not-found", `peer ${address} not found`);
    this.log.push(`deletePeer ${address}`);
  }

  async listVrfs(): Promise<Vrf[]> {
    this.check("listVrfs", true);
    return [...this.vrfs.values()].map((v) => structuredClone(v));
  }

  async addVrf(vrf: Vrf): Promise<void> {
    this.check("addVrf", true);
    if (this.vrfs.has(vrf.name)) throw new SpeakerError("already-exists", `vrf ${vrf.name} already exists`);
    for (const v of this.vrfs.values()) {
      if (rtKey(v.rd) === rtKey(vrf.rd)) throw new SpeakerError("already-exists", "multiple VRFs with the same RD is not allowed");
    }
    this.vrfs.set(vrf.name, structuredClone(vrf));
    this.localPaths.set(vrf.name, new Map());
    this.log.push(`addVrf ${vrf.name}`);
    this.emit({ kind: "rib" });
  }

  async deleteVrf(name: string): Promise<void> {
    this.check("deleteVrf", true);
    if (!this.vrfs.delete(name)) throw new SpeakerError("not-found", `vrf ${name} not found`);
    this.localPaths.delete(name);
    this.log.push(`deleteVrf ${name}`);
    this.emit({ kind: "rib" });
  }

  async listVrfPaths(vrf: string, fam: AddressFamily): Promise<VrfPath[]> {
    this.check("listVrfPaths", true);
    const v = this.vrfs.get(vrf);
    if (v === undefined) throw new SpeakerError("not-found", `vrf ${vrf} not found`);
    const imports = new Set(v.importRts.map(rtKey));
    const out: VrfPath[] = [];
    for (const p of this.localPaths.get(vrf)?.values() ?? []) {
      if (family(p.prefix) !== fam) continue;
      out.push({ vrf, prefix: p.prefix, nextHop: p.nextHop, sid: p.sid, behavior: p.behavior, best: true, local: true });
    }
    const localPrefixes = new Set(out.map((p) => p.prefix));
    for (const r of this.remote) {
      if (family(r.prefix) !== fam || !r.rts.some((rt) => imports.has(rtKey(rt)))) continue;
      const path: VrfPath = { vrf, prefix: r.prefix, nextHop: r.nextHop, best: !localPrefixes.has(r.prefix), local: false, neighbor: r.neighbor };
      if (r.sid !== undefined) path.sid = r.sid;
      if (r.behavior !== undefined) path.behavior = r.behavior;
      out.push(path);
    }
    return out;
  }

  async addLocalPath(path: LocalPath): Promise<void> {
    this.check("addLocalPath", true);
    const m = this.localPaths.get(path.vrf);
    if (m === undefined) throw new SpeakerError("not-found", `vrf ${path.vrf} not found`);
    m.set(path.prefix, { ...path });
    this.log.push(`addLocalPath ${path.vrf} ${path.prefix}`);
    this.emit({ kind: "rib" });
  }

  async deleteLocalPath(path: LocalPath): Promise<void> {
    this.check("deleteLocalPath", true);
    const m = this.localPaths.get(path.vrf);
    if (m === undefined) throw new SpeakerError("not-found", `vrf ${path.vrf} not found`);
    m.delete(path.prefix);
    this.log.push(`deleteLocalPath ${path.vrf} ${path.prefix}`);
    this.emit({ kind: "rib" });
  }

  watch(signal: AbortSignal): AsyncIterable<SpeakerEvent> {
    const buffered: (SpeakerEvent | Error)[] = [];
    let wake: (() => void) | undefined;
    const w = {
      push: (e: SpeakerEvent | Error): void => {
        buffered.push(e);
        wake?.();
      },
    };
    this.watchers.add(w);
    const watchers = this.watchers;
    signal.addEventListener("abort", () => wake?.(), { once: true });
    return {
      async *[Symbol.asyncIterator](): AsyncIterator<SpeakerEvent> {
        try {
          for (;;) {
            if (signal.aborted) return;
            const e = buffered.shift();
            if (e === undefined) {
              await new Promise<void>((r) => (wake = r));
              wake = undefined;
              continue;
            }
            if (e instanceof Error) throw e;
            yield e;
          }
        } finally {
          watchers.delete(w);
        }
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.push(new SpeakerError("unavailable", "fake speaker closed"));
    this.watchers.clear();
  }
}
