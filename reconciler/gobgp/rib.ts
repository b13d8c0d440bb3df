// gobgpd's global VPN tables as kvrfd knows them, per gobgpd session: every VRF imports from
// here, so a VRF's remote routes are computed from this view (vrfImports in planner.ts) instead of
// listing the VRF's RIB, and a change touches only the VRFs that import its route targets.
//
// Two parts, kept the way Session.vrfs is kept:
//  - the best path of every VPN destination (RD + prefix): read once when the watch is registered
//    (ListPath GLOBAL), then kept current by the watch's BEST events, each of which carries the
//    destination's new best path or its withdrawal. Events that arrive while the table is being
//    read are applied on top of what was read, in order, so the result is what gobgpd holds;
//  - the paths this node originates, per RD: read with the table, then kept by kvrfd's own writes
//    (a local path need not be the best one of its destination, so events do not say enough).
import { aaKey, type AdminAssigned } from "../../shared/route-distinguisher.js";
import { localPathOf, type LocalPath, type RibPath } from "./speaker.js";


// A VPN and an EVPN (type-5) destination with the same RD and prefix are different destinations.
const destKey = (p: { rd: AdminAssigned; prefix: string; evpn?: unknown }): string => `${p.evpn !== undefined ? "evpn " : ""}${aaKey(p.rd)} ${p.prefix}`;

/** A LocalPath without its VRF (the VRF is known by the RD it is kept under). */
type OwnPath = LocalPath extends infer P ? (P extends unknown ? Omit<P, "vrf"> : never) : never;

const ownPath = ({ vrf: _vrf, ...p }: LocalPath): OwnPath => p;
const ownKey = (p: Pick<LocalPath, "prefix" | "encap">): string => `${p.encap} ${p.prefix}`;

/** A destination whose best path changed: its RD and the route targets before and after (keys). */
export interface RibChange {
  rd: string;
  rts: string[];
  /**
   * Only this node's own paths were involved (ours before, ours or nothing after): the VRF that
   * originated them already accounted for the change when it made it; other VRFs that import the
   * route targets may still need to look.
   */
  ownOnly: boolean;
}

interface Read {
  token: number;
  /** A reset happened meanwhile: what the read returns is older than that. */
  stale: boolean;
  /** Changes reported meanwhile, to apply on top of what the read returns. */
  events: RibPath[][];
  /** Our own writes meanwhile, likewise. */
  ownOps: (() => void)[];
}

export class RibView {
  private best = new Map<string, RibPath>();
  /** Route-target key → destinations whose best path carries it. */
  private byRt = new Map<string, Set<string>>();
  /** RD key → "encap prefix" → the path this node originates (a prefix has a VPN and an EVPN form). */
  private own = new Map<string, Map<string, OwnPath>>();
  private complete = false;
  private read: Read | undefined;
  private reads = 0;

  /** The view is complete: everything gobgpd holds, and every change since. */
  get synced(): boolean {
    return this.complete;
  }

  /** The view can no longer be trusted (the watch ended); a new read is needed. */
  invalidate(): void {
    this.complete = false;
    this.read = undefined;
  }

  /**
   * A read of the table starts (the watch is registered). A complete view stays in use meanwhile
   * (a periodic re-read); changes and our own writes are also kept to apply on top of the read.
   */
  beginRead(): number {
    this.read = { token: ++this.reads, stale: false, events: [], ownOps: [] };
    return this.read.token;
  }

  /**
   * The read `token` returned `paths` (the global VPN tables, every path with its best flag): the
   * view becomes that plus every change since the read began. Returns false when the read was
   * superseded (nothing changes then).
   */
  finishRead(token: number, paths: readonly RibPath[]): boolean {
    const r = this.read;
    if (r === undefined || r.token !== token) return false;
    this.read = undefined;
    if (!r.stale) {
      this.best = new Map();
      this.byRt = new Map();
      this.own = new Map();
      for (const p of paths) {
        if (p.best) this.put(p);
        if (p.local) {
          const own = ownPath(localPathOf("", p));
          this.ownMap(p.rd).set(ownKey(own), own);
        }
      }
      this.complete = true;
      for (const batch of r.events) this.apply(batch);
      for (const op of r.ownOps) op();
    }
    this.complete = true;
    return true;
  }

  /**
   * gobgpd's RIB is empty now (BGP just started, or stopped): the view is empty and complete. A
   * read in progress still finishes, but what it returns predates this and is dropped.
   */
  reset(): void {
    this.clear();
    this.complete = true;
    if (this.read !== undefined) {
      this.read.stale = true;
      this.read.events = [];
      this.read.ownOps = [];
    }
  }

  /**
   * Applies best-path changes (a BEST event). Returns what changed, or undefined while the view is
   * not complete (the changes are kept for the read in progress, or dropped when there is none:
   * the next read has them).
   */
  apply(paths: readonly RibPath[]): RibChange[] | undefined {
    if (this.read !== undefined && !this.read.stale) this.read.events.push([...paths]);
    if (!this.complete) return undefined;
    const changes: RibChange[] = [];
    for (const p of paths) {
      const k = destKey(p);
      const old = this.best.get(k);
      if (old === undefined && p.withdraw) continue;
      const rts = new Set<string>();
      for (const rt of old?.rts ?? []) rts.add(aaKey(rt));
      if (old !== undefined) this.remove(k, old);
      if (!p.withdraw) {
        this.put({ ...p, best: true });
        for (const rt of p.rts) rts.add(aaKey(rt));
      }
      changes.push({ rd: aaKey(p.rd), rts: [...rts], ownOnly: (old === undefined || old.local) && (p.withdraw || p.local) });
    }
    return changes;
  }

  /** Best paths whose route targets meet `importRts` (what a VRF with these import RTs sees). */
  imported(importRts: readonly AdminAssigned[]): RibPath[] {
    const keys = new Set<string>();
    for (const rt of importRts) for (const k of this.byRt.get(aaKey(rt)) ?? []) keys.add(k);
    return [...keys].flatMap((k) => this.best.get(k) ?? []);
  }

  /** The paths this node originates with `rd`, as the VRF `vrf`'s local paths. */
  localPaths(rd: AdminAssigned, vrf: string): LocalPath[] {
    return [...(this.own.get(aaKey(rd))?.values() ?? [])].map((p) => ({ vrf, ...p }));
  }

  /** Prefixes this node originates with `rd` (in either route form). */
  localPrefixes(rd: AdminAssigned): Set<string> {
    return new Set([...(this.own.get(aaKey(rd))?.values() ?? [])].map((p) => p.prefix));
  }

  /** Our own write: `path` is originated with `rd` (replacing any path of its prefix in its form). */
  setLocal(rd: AdminAssigned, path: LocalPath): void {
    const own = ownPath(path);
    this.own_(() => this.ownMap(rd).set(ownKey(own), own));
  }

  /** Our own write: the path of `path`'s prefix and form with `rd` is withdrawn. */
  deleteLocal(rd: AdminAssigned, path: Pick<LocalPath, "prefix" | "encap">): void {
    this.own_(() => {
      const m = this.own.get(aaKey(rd));
      m?.delete(ownKey(path));
      if (m !== undefined && m.size === 0) this.own.delete(aaKey(rd));
    });
  }

  /** Our own write: the VRF with `rd` was deleted, which withdraws every path it originated. */
  dropLocal(rd: AdminAssigned): void {
    this.own_(() => this.own.delete(aaKey(rd)));
  }

  /** Applies an own write now, and again on top of a read in progress (which may predate it). */
  private own_(op: () => void): void {
    op();
    if (this.read !== undefined && !this.read.stale) this.read.ownOps.push(op);
  }

  get size(): number {
    return this.best.size;
  }

  private ownMap(rd: AdminAssigned): Map<string, OwnPath> {
    const k = aaKey(rd);
    let m = this.own.get(k);
    if (m === undefined) this.own.set(k, (m = new Map<string, OwnPath>()));
    return m;
  }

  private put(p: RibPath): void {
    const k = destKey(p);
    this.best.set(k, p);
    for (const rt of p.rts) {
      const rk = aaKey(rt);
      let set = this.byRt.get(rk);
      if (set === undefined) this.byRt.set(rk, (set = new Set()));
      set.add(k);
    }
  }

  private remove(k: string, p: RibPath): void {
    this.best.delete(k);
    for (const rt of p.rts) {
      const rk = aaKey(rt);
      const set = this.byRt.get(rk);
      set?.delete(k);
      if (set !== undefined && set.size === 0) this.byRt.delete(rk);
    }
  }

  private clear(): void {
    this.best = new Map();
    this.byRt = new Map();
    this.own = new Map();
  }
}
