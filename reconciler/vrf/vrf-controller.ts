// The VRF controller: one reconcile per BGPVRFInstance key. Each run reads a fresh snapshot of the
// object from the informer cache, what gobgpd holds for its VRF (the VRF and the paths we originate
// from the session, the paths it imports from the session's view of the global VPN tables, see
// rib.ts) and kvrfd's kernel routes of its table, plans with the pure planners and applies the
// difference; then it writes status when it changed. A finalizer holds a deleted object until its
// VRF (and with it the VRF's paths) and its kernel routes are gone.
import type { Logger } from "pino";
import { apiVersion, bgpVrfInstance, vrfFinalizer, type BGPVRFInstance } from "../shared/api-types.js";
import { formatAdminAssigned, parseAdminAssigned } from "../shared/route-distinguisher.js";
import { desiredVrf, isKvrfVrfName, SpecError, vrfName, type DesiredVrf } from "./desired.js";
import type { KernelRouteCache, RouteFailure } from "./kernel-routes.js";
import type { VrfApi } from "./kube.js";
import type { Metrics } from "./metrics.js";
import { emptyPlan, findConflicts, planRoutes, planVrf, remoteRoutes, vrfImports, type Conflict, type SpeakerAction } from "./planner.js";
import type { ReconcileResult } from "./queue.js";
import { aaKey, type RibChange } from "./rib.js";
import { SpeakerError, type LocalPath, type Vrf, type VrfPath } from "./speaker.js";
import type { Session } from "./speaker-link.js";
import { buildStatus, failed, ok, readyVerdict, sameStatus, unknown, type Verdict, type VrfOutcome } from "./status.js";
import type { StatusSink } from "./status-writer.js";

/** The key of the pass that removes what no object owns any more (serialised with the others). */
export const orphanKey = "\u0000orphans";

export interface Underlay {
  dev: string;
  nextHop: string;
}

export interface VrfControllerDeps {
  nodeName: string;
  objects: {
    get(name: string): BGPVRFInstance | undefined;
    list(): BGPVRFInstance[];
    readonly hasSynced: boolean;
    /** Changes with the cache; without it, what is derived from list() is recomputed every time. */
    version?(): number;
  };
  link: {
    current(): Session | undefined;
    report(s: Session, err: unknown): void;
    loadVrfs(s: Session): Promise<void>;
    downForMs(): number;
  };
  /** How long gobgpd may be away before objects report it (a restart takes about a second). */
  speakerGraceMs?: number;
  kernel: KernelRouteCache;
  api: VrfApi;
  /** Where status goes: written in the background (StatusWriter), or at once in tests. */
  status: StatusSink;
  /** The underlay device and next hop, resolved lazily (the link may come up after kvrfd). */
  underlay(): Promise<Underlay>;
  metrics: Metrics;
  log: Logger;
  routeHoldMs: number;
  now?: () => number;
}

interface KeyState {
  vrf: string;
  table: number;
  local: number;
  remote: number;
  configured: boolean;
  warned?: string | undefined;
  written?: { json: string; rv: string | undefined };
}

class Retry extends Error {
  override readonly name = "Retry";
}

export class VrfController {
  private readonly keys = new Map<string, KeyState>();
  private conflictMemo: { version: number; conflicts: Map<string, Conflict> } | undefined;
  private importMemo: { version: number; index: Map<string, { key: string; rd: string }[]> } | undefined;
  private readonly totals = { vrfs: 0, local: 0, remote: 0 };
  private readonly notReady = new Set<string>();

  constructor(private readonly d: VrfControllerDeps) {}

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    if (key === orphanKey) {
      await this.sweepOrphans();
      return { kind: "done" };
    }
    const obj = this.d.objects.get(key);
    if (obj === undefined) {
      await this.forget(key);
      return { kind: "done" };
    }
    this.keys.set(key, { ...(this.keys.get(key) ?? { local: 0, remote: 0, configured: false }), vrf: vrfName(obj.spec.vpc), table: obj.spec.table });
    if (obj.metadata.deletionTimestamp !== undefined) return this.finalize(obj);
    return this.sync(obj);
  }

  /**
   * The keys of objects whose VRF a change of the global VPN tables can affect: those that import
   * one of its route targets, except the VRF that made a change of its own paths itself (it
   * accounted for it then). The index is built once per cache version.
   */
  keysAffected(changes: Iterable<RibChange>): string[] {
    const index = this.importIndex();
    const out = new Set<string>();
    for (const c of changes) {
      for (const rt of c.rts) {
        for (const e of index.get(rt) ?? []) if (!(c.ownOnly && e.rd === c.rd)) out.add(e.key);
      }
    }
    return [...out];
  }

  private importIndex(): Map<string, { key: string; rd: string }[]> {
    const v = this.d.objects.version?.();
    if (v !== undefined && this.importMemo?.version === v) return this.importMemo.index;
    const index = new Map<string, { key: string; rd: string }[]>();
    for (const o of this.d.objects.list()) {
      const key = o.metadata.name ?? "";
      let rd = "";
      try {
        rd = aaKey(parseAdminAssigned(o.spec.routeDistinguisher));
      } catch {
        // reported by the object's own reconcile
      }
      for (const text of o.spec.importRouteTargets ?? []) {
        let rt: string;
        try {
          rt = aaKey(parseAdminAssigned(text));
        } catch {
          continue;
        }
        const list = index.get(rt);
        if (list === undefined) index.set(rt, [{ key, rd }]);
        else if (!list.some((e) => e.key === key)) list.push({ key, rd });
      }
    }
    if (v !== undefined) this.importMemo = { version: v, index };
    return index;
  }

  /** Every key the controller has seen: for a pass over everything. */
  knownKeys(): string[] {
    return [...this.keys.keys()];
  }

  /** An object vanished without our finalizer (someone removed it): clean up what we know it had. */
  private async forget(key: string): Promise<void> {
    const st = this.keys.get(key);
    if (st === undefined) return;
    const others = this.d.objects.list().filter((o) => o.metadata.name !== key);
    if (!others.some((o) => o.spec.table === st.table)) await this.clearRoutes(st.table);
    if (!others.some((o) => vrfName(o.spec.vpc) === st.vrf)) await this.deleteVrf(st.vrf, true);
    this.setCounts(st, undefined);
    this.keys.delete(key);
    this.updateGauges();
  }

  private async finalize(obj: BGPVRFInstance): Promise<ReconcileResult> {
    const key = obj.metadata.name ?? "";
    if (!(obj.metadata.finalizers ?? []).includes(vrfFinalizer)) return { kind: "done" };
    const name = vrfName(obj.spec.vpc);
    const others = this.d.objects.list().filter((o) => o.metadata.name !== key && o.metadata.deletionTimestamp === undefined);
    // A conflicting newer object for the same VPC or table must not take the survivor's state along.
    if (!others.some((o) => o.spec.table === obj.spec.table)) await this.clearRoutes(obj.spec.table);
    if (!others.some((o) => vrfName(o.spec.vpc) === name)) {
      const done = await this.deleteVrf(name, false);
      if (!done) {
        this.d.log.info({ key }, "deleted object waits for gobgpd before its finalizer is released");
        return { kind: "done" };
      }
    }
    await this.d.api.removeFinalizer(obj);
    this.d.log.info({ key, vrf: name, table: obj.spec.table }, "VRF removed; finalizer released");
    this.setCounts(this.keys.get(key), undefined);
    this.keys.delete(key);
    this.updateGauges();
    return { kind: "done" };
  }

  private async clearRoutes(table: number): Promise<void> {
    const failures = await this.d.kernel.clearTable(table);
    if (failures.length > 0) throw new Retry(`removing routes of table ${table}: ${failures.map((f) => f.message).join("; ")}`);
    this.d.metrics.kernelRoutes.set(this.d.kernel.count());
  }

  /**
   * Deletes a VRF from gobgpd. Returns false when gobgpd is unreachable (the caller waits for the
   * next session). Without BGP running there are no VRFs, so there is nothing to delete.
   */
  private async deleteVrf(name: string, bestEffort: boolean): Promise<boolean> {
    const s = this.d.link.current();
    if (s === undefined) return false;
    const vrf = s.vrfs.get(name);
    if (!s.started || vrf === undefined) return true;
    try {
      await s.speaker.deleteVrf(name);
      this.d.metrics.speakerWrites.inc({ op: "delete-vrf" });
    } catch (err) {
      if (!(err instanceof SpeakerError && err.kind === "not-found")) {
        this.d.link.report(s, err);
        if (bestEffort) return false;
        throw err;
      }
    }
    s.vrfs.delete(name);
    // DeleteVrf withdraws the paths originated with the VRF's RD.
    s.rib.dropLocal(vrf.rd);
    return true;
  }

  private async sync(obj: BGPVRFInstance): Promise<ReconcileResult> {
    const key = obj.metadata.name ?? "";
    if (!(obj.metadata.finalizers ?? []).includes(vrfFinalizer)) {
      // The CNI plugin creates objects with the finalizer; one created by hand gets it here, before
      // anything exists that it would have to protect.
      await this.d.api.addFinalizer(obj);
    }
    const conflict = this.conflicts().get(key);
    if (conflict !== undefined) {
      await this.report(obj, { generation: obj.metadata.generation, vrf: failed(conflict.reason, conflict.message), routes: unknown("VRFNotConfigured", "the VRF is not configured"), localPrefixes: 0, remotePrefixes: 0 });
      return { kind: "done" };
    }
    let underlay: Underlay;
    try {
      underlay = await this.d.underlay();
    } catch (err) {
      await this.report(obj, {
        generation: obj.metadata.generation,
        vrf: failed("UnderlayUnavailable", err instanceof Error ? err.message : String(err)),
        routes: unknown("VRFNotConfigured", "the VRF is not configured"),
        localPrefixes: 0,
        remotePrefixes: 0,
      });
      throw err;
    }
    let desired: DesiredVrf;
    try {
      desired = desiredVrf(obj, underlay.nextHop);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      // Retrying cannot fix a spec; the next spec change enqueues the key again.
      await this.report(obj, { generation: obj.metadata.generation, vrf: failed("InvalidSpec", err.message), routes: unknown("VRFNotConfigured", "the VRF is not configured"), localPrefixes: 0, remotePrefixes: 0 });
      return { kind: "done" };
    }
    const s = this.d.link.current();
    // Until the speaker controller has looked at this session, "BGP not running" may only mean
    // "not started yet"; it enqueues every VRF once it has, so wait quietly.
    if (s !== undefined && !s.started && !s.settled) return { kind: "done" };
    // Likewise a gobgpd that just went away: the next session passes over every object anyway.
    if (s === undefined && this.d.link.downForMs() < (this.d.speakerGraceMs ?? 10_000)) return { kind: "done" };
    if (s === undefined || !s.started) {
      const v =
        s === undefined
          ? failed("SpeakerUnavailable", "gobgpd is not reachable; waiting for it")
          : failed("SpeakerNotConfigured", "BGP is not running on this node (no BGPInstance selects it, or it is starting)");
      await this.report(obj, { generation: obj.metadata.generation, vrf: v, routes: unknown("SpeakerUnavailable", "remote paths are unknown while BGP is down"), localPrefixes: 0, remotePrefixes: this.d.kernel.table(obj.spec.table).filter((r) => r.kind === undefined).length });
      return { kind: "done" };
    }

    // The RIB view is read when the watch starts; its end passes over every key again.
    if (!s.rib.synced) return { kind: "done" };

    const name = desired.vrf.name;
    try {
      const have = s.vrfs.get(name);
      const observed = { localPaths: have === undefined ? [] : s.rib.localPaths(have.rd, name), ...(have !== undefined ? { vrf: have } : {}) };
      const actions = planVrf(desired, observed);
      if (actions.length > 0) {
        this.d.log.debug({ key, actions: actions.map((a) => (a.op === "add-vrf" ? `${a.op} ${a.vrf.name}` : a.op === "delete-vrf" ? `${a.op} ${a.name}` : `${a.op} ${a.path.prefix}`)) }, "speaker changes");
      }
      await this.applySpeaker(s, desired.vrf, actions);
    } catch (err) {
      this.d.link.report(s, err);
      const msg = err instanceof Error ? err.message : String(err);
      await this.report(obj, { generation: obj.metadata.generation, vrf: failed("SpeakerError", msg), routes: unknown("VRFNotConfigured", "the VRF is not fully configured"), localPrefixes: 0, remotePrefixes: this.d.kernel.table(obj.spec.table).filter((r) => r.kind === undefined).length }).catch(() => undefined);
      throw err;
    }

    // What the VRF imports, from the session's view of the global VPN tables (no RIB listing).
    const paths: VrfPath[] = s.vrfs.has(name) ? vrfImports(name, desired.vrf.importRts, s.rib.imported(desired.vrf.importRts), s.rib.localPrefixes(desired.vrf.rd)) : [];
    const { routes, unusable } = remoteRoutes(paths, obj.spec.table, underlay.dev);
    const holdUntil = s.freshSince === undefined ? 0 : s.freshSince + this.d.routeHoldMs;
    const holdBefore = this.now() < holdUntil ? s.freshSince : undefined;
    const plan = planRoutes(routes, this.d.kernel.table(obj.spec.table), holdBefore);
    const held = holdBefore !== undefined && planRoutes(routes, this.d.kernel.table(obj.spec.table)).remove.length > plan.remove.length;
    let failures: RouteFailure[] = [];
    if (!emptyPlan(plan)) {
      try {
        failures = await this.d.kernel.apply(plan);
      } catch (err) {
        await this.d.kernel.load().catch(() => undefined);
        throw err;
      }
      this.d.metrics.kernelWrites.inc({ op: "add" }, plan.add.length);
      this.d.metrics.kernelWrites.inc({ op: "replace" }, plan.replace.length);
      this.d.metrics.kernelWrites.inc({ op: "remove" }, plan.remove.length);
      this.d.metrics.kernelRoutes.set(this.d.kernel.count());
      this.d.log.debug({ key, add: plan.add.length, replace: plan.replace.length, remove: plan.remove.length, failed: failures.length }, "kernel routes");
    }

    // Remote prefixes: the encap routes (each comes with a throw route for its SID).
    const installed = this.d.kernel.table(obj.spec.table).filter((r) => r.kind === undefined).length;
    const foreign = failures.filter((f) => f.foreignOwner !== undefined);
    const other = failures.filter((f) => f.foreignOwner === undefined);
    let routesVerdict: Verdict;
    if (other.length > 0) {
      routesVerdict = failed("KernelError", other.map((f) => `${f.op} ${f.route.prefix}: ${f.message}`).join("; "));
    } else if (foreign.length > 0) {
      routesVerdict = failed("ForeignRoute", foreign.map((f) => `${f.route.prefix} in table ${f.route.table} is held by a route of protocol ${f.foreignOwner}`).join("; "));
    } else {
      // Routes held after a gobgpd restart are not mentioned: a note would cost two status writes
      // per VRF on every gobgpd restart (on, then off when the paths are relearnt a second later),
      // which at 1,000 VRFs was a sixth of kvrfd's CPU in the replay. The log says it instead.
      if (held) this.d.log.debug({ key, table: obj.spec.table, until: new Date(holdUntil).toISOString() }, "stale routes kept while gobgpd relearns paths");
      routesVerdict = ok("Programmed", `${installed} remote prefixes in table ${obj.spec.table}${unusable.length > 0 ? ` (${unusable.join("; ")})` : ""}`);
    }
    const vrfMsg =
      `VRF ${desired.vrf.name} RD ${formatAdminAssigned(desired.vrf.rd)} import ${desired.vrf.importRts.map(formatAdminAssigned).join(",")} ` +
      `export ${desired.vrf.exportRts.map(formatAdminAssigned).join(",")}, ${desired.localPaths.length} local prefixes` +
      (desired.skipped.length > 0 ? `; not originated: ${desired.skipped.join("; ")}` : "");
    this.setCounts(this.keys.get(key), { local: desired.localPaths.length, remote: installed, configured: true });
    this.updateGauges();
    await this.report(obj, { generation: obj.metadata.generation, vrf: ok("Configured", vrfMsg), routes: routesVerdict, localPrefixes: desired.localPaths.length, remotePrefixes: installed });
    if (other.length > 0) throw new Retry(routesVerdict.message);
    if (held) return { kind: "requeue-after", ms: Math.max(50, holdUntil - this.now() + 10) };
    return { kind: "done" };
  }

  /** findConflicts over the snapshot, computed once per cache version (every reconcile needs it). */
  private conflicts(): Map<string, Conflict> {
    const v = this.d.objects.version?.();
    if (v !== undefined && this.conflictMemo?.version === v) return this.conflictMemo.conflicts;
    const conflicts = findConflicts(this.d.objects.list());
    if (v !== undefined) this.conflictMemo = { version: v, conflicts };
    return conflicts;
  }

  /**
   * Applies the planned speaker changes. Paths are originated in VPN form (their own RD and route
   * targets), so they do not need the VRF to exist in gobgpd: a new VRF and its paths are sent
   * together (one round trip instead of two). Only a VRF being replaced goes first, since
   * deleting it withdraws every path with its RD. The VRF's path changes go in one request with
   * other reconciles' (PathBatcher).
   */
  private async applySpeaker(s: Session, vrf: Vrf, actions: readonly SpeakerAction[]): Promise<void> {
    const adds: LocalPath[] = [];
    const dels: LocalPath[] = [];
    let addVrf: Vrf | undefined;
    try {
      for (const a of actions) {
        switch (a.op) {
          case "delete-vrf": {
            const old = s.vrfs.get(a.name);
            await s.speaker.deleteVrf(a.name).catch(ignore("not-found"));
            s.vrfs.delete(a.name);
            if (old !== undefined) s.rib.dropLocal(old.rd);
            this.d.metrics.speakerWrites.inc({ op: a.op });
            break;
          }
          case "add-vrf":
            addVrf = a.vrf;
            break;
          case "add-path":
            adds.push(a.path);
            break;
          case "delete-path":
            dels.push(a.path);
            break;
        }
      }
      const added = addVrf;
      await Promise.all([
        added === undefined
          ? undefined
          : s.speaker.addVrf(added).then(() => {
              s.vrfs.set(added.name, added);
              this.d.metrics.speakerWrites.inc({ op: "add-vrf" });
            }),
        dels.length === 0
          ? undefined
          : s.speaker.deleteLocalPaths(vrf, dels).then(() => {
              for (const p of dels) s.rib.deleteLocal(vrf.rd, p.prefix);
              this.d.metrics.speakerWrites.inc({ op: "delete-path" }, dels.length);
            }),
        adds.length === 0
          ? undefined
          : s.speaker.addLocalPaths(vrf, adds).then(() => {
              for (const p of adds) s.rib.setLocal(vrf.rd, p);
              this.d.metrics.speakerWrites.inc({ op: "add-path" }, adds.length);
            }),
      ]);
    } catch (err) {
      // Our view of gobgpd's VRFs was wrong (someone else changed it): re-read before the retry.
      if (err instanceof SpeakerError && (err.kind === "already-exists" || err.kind === "not-found")) await this.d.link.loadVrfs(s).catch(() => undefined);
      throw err;
    }
  }

  /** Writes status when it changed, and an Event when a new failure reason appears. */
  private async report(obj: BGPVRFInstance, o: VrfOutcome): Promise<void> {
    const key = obj.metadata.name ?? "";
    const st = this.keys.get(key);
    const status = buildStatus(obj.status, o, new Date(this.now()));
    if (readyVerdict(o).status === "True") this.notReady.delete(key);
    else this.notReady.add(key);
    this.d.metrics.vrfsNotReady.set(this.notReady.size);
    const json = JSON.stringify(status.conditions?.map((c) => [c.type, c.status, c.reason, c.message]) ?? []) + `${o.localPrefixes}/${o.remotePrefixes}/${o.generation ?? ""}`;
    const stale = st?.written !== undefined && st.written.json === json && st.written.rv === obj.metadata.resourceVersion;
    if (!sameStatus(obj.status, status) && !stale) {
      this.d.status.set(key, status);
      if (st !== undefined) st.written = { json, rv: obj.metadata.resourceVersion };
    }
    const bad = [o.vrf, o.routes].find((v) => v.status === "False");
    if (st === undefined) return;
    if (bad === undefined) {
      st.warned = undefined;
      return;
    }
    if (st.warned === bad.reason) return;
    st.warned = bad.reason;
    this.d.log.warn({ key, reason: bad.reason, message: bad.message }, "reconcile problem");
    await this.d.api
      .event({ kind: bgpVrfInstance.kind, apiVersion, name: key, ...(obj.metadata.uid !== undefined ? { uid: obj.metadata.uid } : {}) }, "Warning", bad.reason, bad.message)
      .catch((err: unknown) => this.d.log.debug({ err: String(err) }, "could not record event"));
  }

  private updateGauges(): void {
    for (const k of this.notReady) if (!this.keys.has(k)) this.notReady.delete(k);
    this.d.metrics.vrfsNotReady.set(this.notReady.size);
    // Totals are kept as keys change (see setCounts): summing every key here made each reconcile O(VRFs).
    this.d.metrics.vrfs.set(this.totals.vrfs);
    this.d.metrics.localPaths.set(this.totals.local);
    this.d.metrics.remotePaths.set(this.totals.remote);
  }

  private setCounts(st: KeyState | undefined, counts: { local: number; remote: number; configured: boolean } | undefined): void {
    if (st === undefined) return;
    this.totals.vrfs -= st.configured ? 1 : 0;
    this.totals.local -= st.local;
    this.totals.remote -= st.remote;
    if (counts === undefined) {
      st.local = 0;
      st.remote = 0;
      st.configured = false;
    } else {
      Object.assign(st, counts);
      this.totals.vrfs += st.configured ? 1 : 0;
      this.totals.local += st.local;
      this.totals.remote += st.remote;
    }
  }

  /**
   * Removes what no object owns: kvrfd's routes in tables of no object (left by a crash or by an
   * object deleted while its finalizer was forced off) and kvrfd-named VRFs of no object. Only
   * after the informer synced: before that, "no object" means "not listed yet".
   */
  private async sweepOrphans(): Promise<void> {
    if (!this.d.objects.hasSynced) return;
    // Ownership is read from the cache right before each decision, never from a list taken before
    // an await: objects created meanwhile get their tables and VRFs from reconciles running next
    // to this one (an object is in the cache before its reconcile makes anything for it).
    const tablesOwned = (): Set<number> => new Set(this.d.objects.list().map((o) => o.spec.table));
    await this.d.kernel.load();
    const owned = tablesOwned();
    const candidates = this.d.kernel.tables().filter((t) => !owned.has(t));
    for (const t of candidates) {
      if (tablesOwned().has(t)) continue;
      this.d.log.info({ table: t }, "removing kvrfd routes of a table no object owns");
      await this.clearRoutes(t);
    }
    this.d.metrics.kernelRoutes.set(this.d.kernel.count());
    const s = this.d.link.current();
    if (s === undefined || !s.started) return;
    const vrfsOwned = (): Set<string> => new Set(this.d.objects.list().map((o) => vrfName(o.spec.vpc)));
    const named = vrfsOwned();
    const orphans = [...s.vrfs.keys()].filter((name) => isKvrfVrfName(name) && !named.has(name));
    for (const name of orphans) {
      if (vrfsOwned().has(name)) continue;
      this.d.log.info({ vrf: name }, "removing a VRF no object owns");
      await this.deleteVrf(name, false);
    }
  }
}

function ignore(kind: SpeakerError["kind"]): (err: unknown) => void {
  return (err) => {
    if (!(err instanceof SpeakerError && err.kind === kind)) throw err;
  };
}
