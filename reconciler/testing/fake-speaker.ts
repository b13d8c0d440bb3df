// FakeSpeaker: an in-memory Speaker for unit tests of kvrfd's controllers. It keeps global config,
// peers, VRFs and local paths like gobgpd does, holds a global table of VPN and EVPN type-5 paths
// (our local paths with their VRF's RD and export RTs, "remote" paths with theirs), reports
// best-path changes of that table as watch events and imports by route target, and can fail calls
// or lose all state (a gobgpd restart) on demand. It mimics gobgpd's observable rules that kvrfd
// depends on: VRF calls fail with "not-started" before StartBgp, duplicate VRFs and RDs are
// refused, DeleteVrf withdraws the VRF's paths, a locally originated path is the best one of its
// destination, and input the real Speaker refuses is refused (the same checks).
// test/integration/speaker-evpn.test.ts runs the same cases against it and real gobgpds.
import { formatAdminAssigned, type AdminAssigned } from "../../shared/route-distinguisher.js";
import { checkLocalGlobalPath, checkPeer, checkVrf, readRouterMac } from "../gobgp/convert.js";
import {
  SpeakerError,
  type AddressFamily,
  type DefinedSet,
  type DefinedSetType,
  type EvpnInfo,
  type GlobalConfig,
  type LocalPath,
  type PeerConfig,
  type PeerStatus,
  type PolicyAssignment,
  type PolicyDirection,
  type RibFamily,
  type RibPath,
  type RoutingPolicy,
  type SoftResetDirection,
  type Speaker,
  type SpeakerErrorKind,
  type SpeakerEvent,
  type Vrf,
  type VrfPath,
} from "../gobgp/speaker.js";

/**
 * A path learned from a peer, carried with its route targets so VRFs can import it: a VPN path,
 * or with `evpn` an EVPN type-5 path (with `problem` when it is one kvrf cannot use).
 */
export interface FakeRemotePath {
  prefix: string;
  nextHop: string;
  sid?: string;
  behavior?: number;
  evpn?: EvpnInfo;
  problem?: string;
  rts: AdminAssigned[];
  /** Default: the first route target (kvrf's RD and RT of a VPC have the same value). */
  rd?: AdminAssigned;
  neighbor: string;
}

export type FakeCall = keyof Omit<Speaker, "api" | "watch" | "close">;

const rtKey = (v: AdminAssigned): string => `${v.type}:${formatAdminAssigned(v)}`;
const family = (prefix: string): AddressFamily => (prefix.includes(":") ? "ipv6" : "ipv4");
const destKey = (p: { rd: AdminAssigned; prefix: string; evpn?: unknown }): string => `${p.evpn !== undefined ? "evpn " : ""}${rtKey(p.rd)} ${p.prefix}`;
const inFamily = (p: { prefix: string; evpn?: unknown }, fam: RibFamily): boolean => (fam === "evpn" ? p.evpn !== undefined : p.evpn === undefined && family(p.prefix) === fam);

/** The RibPath fields that say how a path is reached: the SRv6 SID or the EVPN VNI and router MAC. */
function encapFields(p: LocalPath): Pick<RibPath, "sid" | "behavior" | "evpn"> {
  return p.encap === "vxlan" ? { evpn: { vni: p.vni, routerMac: p.routerMac.toLowerCase() } } : { sid: p.sid, behavior: p.behavior };
}

function remoteFields(r: FakeRemotePath): Pick<RibPath, "sid" | "behavior" | "evpn" | "problem"> {
  const out: Pick<RibPath, "sid" | "behavior" | "evpn" | "problem"> = {};
  if (r.evpn !== undefined) {
    out.evpn = { ...r.evpn };
    const problem = r.problem ?? readRouterMac(r.evpn.routerMac === "" ? undefined : r.evpn.routerMac).problem;
    if (problem !== undefined) out.problem = problem;
    return out;
  }
  if (r.sid !== undefined) out.sid = r.sid;
  if (r.behavior !== undefined) out.behavior = r.behavior;
  return out;
}

export class FakeSpeaker implements Speaker {
  readonly api = "v4" as const;
  global: GlobalConfig | undefined;
  readonly peers = new Map<string, PeerStatus>();
  readonly vrfs = new Map<string, Vrf>();
  /** vrf → prefix → path, for paths originated in VPN form (srv6) */
  readonly localPaths = new Map<string, Map<string, LocalPath>>();
  /** vrf → prefix → path, for paths originated as EVPN type-5 routes (vxlan): other routes than the VPN ones */
  readonly localEvpnPaths = new Map<string, Map<string, LocalPath>>();
  /** The RD and export RTs each VRF's local paths were originated with (VPN form). */
  private readonly localVrf = new Map<string, Vrf>();
  /** Path calls (AddPath, AddPathStream): how many requests carried local path changes. */
  pathCalls = 0;
  /** Every call, in order (reads included). */
  readonly calls: FakeCall[] = [];
  remote: FakeRemotePath[] = [];
  /** Every mutating call, in order: "addVrf vpc-1", "addLocalPath vpc-1 10.0.0.1/32", … */
  readonly log: string[] = [];
  closed = false;
  private readonly failures: { call: FakeCall | "*"; kind: SpeakerErrorKind; times: number }[] = [];
  private watchers = new Set<{ push: (e: SpeakerEvent | Error) => void }>();

  /** Routing policy as gobgpd keeps it (not applied to paths: the real daemons are tested for that). */
  readonly definedSets = new Map<string, DefinedSet>();
  readonly policies = new Map<string, RoutingPolicy>();
  readonly assignments: Record<PolicyDirection, PolicyAssignment> = { import: { policies: [], defaultAction: "accept" }, export: { policies: [], defaultAction: "accept" } };

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
    this.localEvpnPaths.clear();
    this.localVrf.clear();
    this.remote = [];
    this.definedSets.clear();
    this.policies.clear();
    this.assignments.import = { policies: [], defaultAction: "accept" };
    this.assignments.export = { policies: [], defaultAction: "accept" };
    for (const w of this.watchers) w.push(new SpeakerError("unavailable", "fake gobgpd restarted"));
    this.watchers.clear();
  }

  /** Adds or replaces a remote path (by form, RD, prefix and neighbor) and tells watchers. */
  learn(p: FakeRemotePath): void {
    this.changeRib(() => {
      const key = destKey({ ...p, rd: this.rdOf(p) });
      this.remote = this.remote.filter((r) => !(r.neighbor === p.neighbor && destKey({ ...r, rd: this.rdOf(r) }) === key));
      this.remote.push(p);
    });
  }

  /** Withdraws the remote paths of `prefix` from `neighbor` (VPN and EVPN, unless `evpn` says which). */
  withdraw(prefix: string, neighbor: string, evpn?: boolean): void {
    this.changeRib(() => {
      this.remote = this.remote.filter((r) => !(r.prefix === prefix && r.neighbor === neighbor && (evpn === undefined || evpn === (r.evpn !== undefined))));
    });
  }

  private rdOf(p: FakeRemotePath): AdminAssigned {
    return p.rd ?? p.rts[0] ?? { type: 0, asn: 0, assigned: 0 };
  }

  /**
   * The global VPN and EVPN tables: every destination's paths, best first (a local path wins, then
   * the remote paths in the order they were learned).
   */
  private table(): Map<string, RibPath[]> {
    const out = new Map<string, RibPath[]>();
    const add = (p: RibPath): void => {
      const k = destKey(p);
      const list = out.get(k);
      if (list === undefined) out.set(k, [p]);
      else list.push(p);
    };
    for (const [name, paths] of [...this.localPaths, ...this.localEvpnPaths]) {
      const v = this.localVrf.get(name);
      if (v === undefined) continue;
      for (const p of paths.values()) {
        add({ family: family(p.prefix), rd: v.rd, prefix: p.prefix, rts: [...v.exportRts], nextHop: p.nextHop, ...encapFields(p), best: false, local: true, withdraw: false });
      }
    }
    for (const r of this.remote) {
      add({ family: family(r.prefix), rd: this.rdOf(r), prefix: r.prefix, rts: [...r.rts], nextHop: r.nextHop, ...remoteFields(r), best: false, local: false, neighbor: r.neighbor, withdraw: false });
    }
    for (const list of out.values()) list.forEach((p, i) => (p.best = i === 0));
    return out;
  }

  /** Runs a change of the table and reports each destination whose best path changed, as gobgpd does. */
  private changeRib(change: () => void): void {
    const before = new Map([...this.table()].map(([k, l]) => [k, l[0] as RibPath]));
    change();
    const after = new Map([...this.table()].map(([k, l]) => [k, l[0] as RibPath]));
    const paths: RibPath[] = [];
    for (const [k, old] of before) if (!after.has(k)) paths.push({ ...old, best: false, withdraw: true });
    for (const [k, p] of after) if (JSON.stringify(before.get(k)) !== JSON.stringify(p)) paths.push(p);
    if (paths.length > 0) this.emit({ kind: "rib", paths });
  }

  emit(e: SpeakerEvent): void {
    for (const w of this.watchers) w.push(e);
  }

  private check(call: FakeCall, needsStarted: boolean): void {
    this.calls.push(call);
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

  async stopBgp(_opts?: { allowGracefulRestart?: boolean }): Promise<void> {
    this.check("stopBgp", false);
    this.global = undefined;
    this.peers.clear();
    this.vrfs.clear();
    this.localPaths.clear();
    this.localEvpnPaths.clear();
    this.localVrf.clear();
    this.log.push("stopBgp");
  }

  async listPeers(): Promise<PeerStatus[]> {
    this.check("listPeers", true);
    return [...this.peers.values()].map((p) => ({ ...p }));
  }

  async addPeer(peer: PeerConfig): Promise<void> {
    this.check("addPeer", true);
    checkPeer(peer);
    if (this.peers.has(peer.address)) throw new SpeakerError("already-exists", `can't overwrite the existing peer: ${peer.address}`);
    this.peers.set(peer.address, { ...peer, state: "active" });
    this.log.push(`addPeer ${peer.address}`);
  }

  async updatePeer(peer: PeerConfig): Promise<void> {
    this.check("updatePeer", true);
    checkPeer(peer);
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

  async listDefinedSets(type: DefinedSetType): Promise<string[]> {
    this.check("listDefinedSets", false);
    return [...this.definedSets.values()].filter((d) => d.type === type).map((d) => d.name);
  }

  async addDefinedSet(set: DefinedSet): Promise<void> {
    this.check("addDefinedSet", false);
    const key = `${set.type} ${set.name}`;
    const old = this.definedSets.get(key);
    // gobgpd appends to an existing set of the name.
    this.definedSets.set(key, { ...set, list: [...(old?.list ?? []), ...set.list] });
    this.log.push(`addDefinedSet ${set.name}`);
  }

  async deleteDefinedSet(type: DefinedSetType, name: string): Promise<void> {
    this.check("deleteDefinedSet", false);
    const used = [...this.policies.values()].some((p) => p.statements.some((st) => (type === "neighbor" ? st.neighborSet : st.extCommunitySet) === name));
    if (used) throw new SpeakerError("other", `can't delete. defined set ${name} is in use`);
    if (!this.definedSets.delete(`${type} ${name}`)) throw new SpeakerError("not-found", `not found defined-set: ${name}`);
    this.log.push(`deleteDefinedSet ${name}`);
  }

  async listPolicies(): Promise<string[]> {
    this.check("listPolicies", false);
    return [...this.policies.keys()];
  }

  async addPolicy(policy: RoutingPolicy): Promise<void> {
    this.check("addPolicy", false);
    for (const st of policy.statements) {
      if (!this.definedSets.has(`neighbor ${st.neighborSet}`)) throw new SpeakerError("not-found", `not found neighbor set ${st.neighborSet}`);
      if (st.extCommunitySet !== undefined && !this.definedSets.has(`ext-community ${st.extCommunitySet}`)) {
        throw new SpeakerError("not-found", `not found ext-community set ${st.extCommunitySet}`);
      }
      // (The adapter refuses it: gobgpd would take an empty next-hop list as no condition.)
      if (st.nextHops?.length === 0) throw new SpeakerError("invalid", `statement ${st.name}: empty next-hop list`);
    }
    if (this.policies.has(policy.name)) throw new SpeakerError("already-exists", `policy ${policy.name} exists (gobgpd would merge)`);
    this.policies.set(policy.name, structuredClone(policy));
    this.log.push(`addPolicy ${policy.name}`);
  }

  async deletePolicy(name: string): Promise<void> {
    this.check("deletePolicy", false);
    if (this.assignments.import.policies.includes(name) || this.assignments.export.policies.includes(name)) {
      throw new SpeakerError("other", `can't delete ${name} policy that is in use`);
    }
    if (!this.policies.delete(name)) throw new SpeakerError("not-found", `not found policy: ${name}`);
    this.log.push(`deletePolicy ${name}`);
  }

  async getGlobalPolicyAssignment(direction: PolicyDirection): Promise<PolicyAssignment> {
    this.check("getGlobalPolicyAssignment", false);
    const a = this.assignments[direction];
    return { policies: [...a.policies], defaultAction: a.defaultAction };
  }

  async setGlobalPolicyAssignment(direction: PolicyDirection, assignment: PolicyAssignment): Promise<void> {
    this.check("setGlobalPolicyAssignment", false);
    for (const name of assignment.policies) if (!this.policies.has(name)) throw new SpeakerError("not-found", `not found policy ${name}`);
    this.assignments[direction] = { policies: [...assignment.policies], defaultAction: assignment.defaultAction };
    this.log.push(`setGlobalPolicyAssignment ${direction} ${assignment.policies.join(",")}`);
  }

  async resetPeer(address: string, how: SoftResetDirection | "hard"): Promise<void> {
    this.check("resetPeer", true);
    if (!this.peers.has(address)) throw new SpeakerError("not-found", `peer ${address} not found`);
    this.log.push(`resetPeer ${address} ${how}`);
  }

  async listVrfs(): Promise<Vrf[]> {
    this.check("listVrfs", true);
    return [...this.vrfs.values()].map((v) => structuredClone(v));
  }

  async addVrf(vrf: Vrf): Promise<void> {
    this.check("addVrf", true);
    checkVrf(vrf);
    if (this.vrfs.has(vrf.name)) throw new SpeakerError("already-exists", `vrf ${vrf.name} already exists`);
    for (const v of this.vrfs.values()) {
      if (rtKey(v.rd) === rtKey(vrf.rd)) throw new SpeakerError("already-exists", "multiple VRFs with the same RD is not allowed");
    }
    this.vrfs.set(vrf.name, structuredClone(vrf));
    this.log.push(`addVrf ${vrf.name}`);
  }

  async deleteVrf(name: string): Promise<void> {
    this.check("deleteVrf", true);
    const v = this.vrfs.get(name);
    if (v === undefined) throw new SpeakerError("not-found", `vrf ${name} not found`);
    this.vrfs.delete(name);
    // DeleteVrf withdraws the local paths carrying the VRF's RD.
    this.changeRib(() => {
      for (const [n, lv] of this.localVrf) {
        if (rtKey(lv.rd) !== rtKey(v.rd)) continue;
        this.localPaths.delete(n);
        this.localEvpnPaths.delete(n);
        this.localVrf.delete(n);
      }
    });
    this.log.push(`deleteVrf ${name}`);
  }

  async listVrfPaths(vrf: string, fam: RibFamily): Promise<VrfPath[]> {
    this.check("listVrfPaths", true);
    const v = this.vrfs.get(vrf);
    if (v === undefined) throw new SpeakerError("not-found", `vrf ${vrf} not found`);
    const imports = new Set(v.importRts.map(rtKey));
    const imported = (rts: readonly AdminAssigned[]): boolean => rts.some((rt) => imports.has(rtKey(rt)));
    const out: VrfPath[] = [];
    if (fam === "evpn") {
      // gobgpd's VRF view of EVPN: the type-5 paths of the global table whose RTs the VRF imports, as they are.
      for (const list of this.table().values()) {
        for (const p of list) {
          if (p.evpn === undefined || !imported(p.rts)) continue;
          const { family: _f, rd: _rd, rts: _rts, withdraw: _w, ...seen } = p;
          out.push({ vrf, ...seen });
        }
      }
      return out;
    }
    for (const p of this.localPaths.get(vrf)?.values() ?? []) {
      if (p.encap !== "srv6" || family(p.prefix) !== fam) continue;
      out.push({ vrf, prefix: p.prefix, nextHop: p.nextHop, sid: p.sid, behavior: p.behavior, best: true, local: true });
    }
    const localPrefixes = new Set(out.map((p) => p.prefix));
    for (const r of this.remote) {
      if (r.evpn !== undefined || family(r.prefix) !== fam || !imported(r.rts)) continue;
      out.push({ vrf, prefix: r.prefix, nextHop: r.nextHop, ...remoteFields(r), best: !localPrefixes.has(r.prefix), local: false, neighbor: r.neighbor });
    }
    return out;
  }

  async listRib(fam: RibFamily): Promise<RibPath[]> {
    this.check("listRib", false);
    if (this.global === undefined) return [];
    return [...this.table().values()].flat().filter((p) => inFamily(p, fam));
  }

  async addLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    this.check("addLocalPaths", true);
    for (const p of paths) checkLocalGlobalPath(vrf, p);
    this.pathCalls++;
    this.changeRib(() => {
      this.localVrf.set(vrf.name, structuredClone(vrf));
      for (const p of paths) {
        const byForm = p.encap === "vxlan" ? this.localEvpnPaths : this.localPaths;
        let m = byForm.get(vrf.name);
        if (m === undefined) byForm.set(vrf.name, (m = new Map<string, LocalPath>()));
        m.set(p.prefix, { ...p });
        this.log.push(`addLocalPath ${vrf.name} ${p.prefix}`);
      }
    });
  }

  async deleteLocalPaths(vrf: Vrf, paths: readonly LocalPath[]): Promise<void> {
    this.check("deleteLocalPaths", true);
    for (const p of paths) checkLocalGlobalPath(vrf, p);
    this.pathCalls++;
    this.changeRib(() => {
      for (const p of paths) {
        (p.encap === "vxlan" ? this.localEvpnPaths : this.localPaths).get(vrf.name)?.delete(p.prefix);
        this.log.push(`deleteLocalPath ${vrf.name} ${p.prefix}`);
      }
    });
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
    // gobgpd reports END_OF_INIT once the watch is registered.
    w.push({ kind: "watching" });
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
