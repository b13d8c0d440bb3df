// kvrfd's kernel routes: remote VPC prefixes in the VPC's table — SRv6-encapsulated to the remote
// SID, or via the remote VTEP on the VPC's VXLAN device with that VTEP's neighbour and FDB entries
// (vtep.ts) — marked `proto 241` (routeProtocol.kvrfd). Every listing filters on that protocol and every
// delete names it, so the kernel itself refuses to remove anyone else's route; new routes use
// `ip route add`, which fails rather than overwrite a route another owner put at the same key
// (`replace` would silently take over, e.g., the CNI plugin's proto-240 route to a local pod).
import { routeProtocol } from "../../shared/api-types.js";
import { monotonicMs } from "../../shared/clock.js";
import { batchFailures, bridgeJson, ip, IpBatchProcess, ipJson, IpError } from "../../shared/kernel/ip.js";
import { parseVxlanDeviceName } from "../../shared/ifnames.js";
import { canonicalMac } from "../../shared/router-mac.js";
import { canonicalIpv6, canonicalPrefix } from "../vrf/desired.js";
import { routeCommands, routeKey, type KernelRoute, type RoutePlan } from "../vrf/planner.js";
import { canonicalVia, vtepCommands, vtepKey, type VtepEntry } from "./vtep.js";

const proto = routeProtocol.kvrfd;

interface IpRoute {
  type?: string;
  dst?: string;
  table?: string;
  dev?: string;
  encap?: string;
  segs?: string[];
  protocol?: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  metric?: number;
}

export interface RouteFailure {
  /** The route (for a VTEP's entries, a stand-in whose prefix names the VTEP, for messages). */
  route: KernelRoute;
  /** Set when the failure is a remote VTEP's neighbour or FDB entry, not a route. */
  vtep?: VtepEntry;
  op: "add" | "replace" | "remove";
  message: string;
  /** The add failed because someone else's route holds the prefix (named by its protocol). */
  foreignOwner?: string;
}

/** The kernel as kvrfd needs it; the real one runs iproute2, unit tests use an in-memory one. */
export interface KernelRouteBackend {
  /** kvrfd's routes in every table. */
  dumpOwned(): Promise<KernelRoute[]>;
  /** kvrfd's routes in one table, read now. */
  dumpTable(table: number): Promise<KernelRoute[]>;
  /**
   * The protocol of every route at (table, prefix) that an `ip route add` of kvrfd's would collide
   * with (any owner, at the metric kvrfd's routes get), read now.
   */
  owners(table: number, prefix: string): Promise<string[]>;
  /** Runs the plan; resolves with what failed (the rest is done). */
  apply(plan: RoutePlan): Promise<RouteFailure[]>;
  /** The remote VTEPs on kvrfd's VXLAN devices' forwarding databases (FDB entries with a dst). */
  dumpVteps?(): Promise<VtepEntry[]>;
  /** Deletes every kvrfd route of a table in both families, known or not (best effort). */
  flushTable?(table: number): Promise<void>;
}

/** The table of an `ip -j route` entry as a number (iproute2 prints names for 253–255). */
export function tableNumber(t: string | undefined): number | undefined {
  if (t === undefined || t === "main") return 254;
  if (t === "local") return 255;
  if (t === "default") return 253;
  const n = Number(t);
  return Number.isInteger(n) ? n : undefined;
}

/**
 * A route's destination as a canonical prefix. iproute2 prints 0.0.0.0/0 and ::/0 alike as
 * "default" (a gateway's default route into a VPC), so those need the family of the dump.
 */
function hostPrefix(dst: string, family: 4 | 6 | undefined): string | undefined {
  if (dst === "default") return family === undefined ? undefined : family === 4 ? "0.0.0.0/0" : "::/0";
  return canonicalPrefix(dst.includes("/") ? dst : `${dst}/${dst.includes(":") ? 128 : 32}`);
}

/**
 * Parses `ip -j -4|-6 route show … proto 241` entries into kvrfd routes (table given when the dump
 * omits it; family given for default routes, which a dump of both families cannot place).
 */
export function parseOwnedRoutes(entries: readonly IpRoute[], table?: number, family?: 4 | 6): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const e of entries) {
    if (e.dst === undefined) continue;
    const prefix = hostPrefix(e.dst, family);
    const t = table ?? tableNumber(e.table);
    if (prefix === undefined || t === undefined) continue;
    if (e.type === "throw") {
      out.push({ table: t, prefix, sid: "", dev: "", kind: "throw" });
      continue;
    }
    const via = e.gateway ?? e.via?.host;
    if (via !== undefined && e.dev !== undefined && parseVxlanDeviceName(e.dev) !== undefined) {
      out.push({ table: t, prefix, sid: "", dev: e.dev, kind: "vxlan", via: canonicalVia(via) });
      continue;
    }
    const sid = e.encap === "seg6" ? canonicalIpv6(e.segs?.[0]) : undefined;
    out.push({ table: t, prefix, sid: sid ?? "", dev: e.dev ?? "" });
  }
  return out;
}

const missingTable = (err: unknown): boolean => err instanceof IpError && /FIB table does not exist/.test(err.stderr);

interface BatchRequest {
  lines: string[];
  resolve(failed: Map<number, string>): void;
  reject(err: unknown): void;
}

/** An entry of `bridge -j fdb show`. */
export interface FdbJson {
  mac?: string;
  ifname?: string;
  dst?: string;
  state?: string;
}

/**
 * Remote VTEPs in `bridge -j fdb show` output: the permanent entries with a destination on the
 * devices `isDevice` accepts, in canonical form (vtep.ts writes them so).
 */
export function parseVteps(entries: readonly FdbJson[], isDevice: (dev: string) => boolean): VtepEntry[] {
  const out: VtepEntry[] = [];
  for (const e of entries) {
    if (e.ifname === undefined || !isDevice(e.ifname) || e.dst === undefined || e.state !== "permanent") continue;
    const mac = canonicalMac(e.mac ?? "");
    if (mac === undefined) continue;
    out.push({ dev: e.ifname, vtep: canonicalVia(e.dst), routerMac: mac });
  }
  return out;
}

export class IpRouteBackend implements KernelRouteBackend {
  private readonly pending: BatchRequest[] = [];
  private draining = false;
  /** Writes go to one long-lived `ip -force -batch -` (no fork of kvrfd per batch). */
  private readonly batcher: IpBatchProcess;


  constructor(
    private readonly netns?: string,
    /** Observes every `ip` run, by purpose (metrics): a batch written; a dump, lookup or flush process. */
    private readonly onRun: (kind: "batch" | "dump" | "lookup" | "flush") => void = () => undefined,
    private readonly maxLines = 2000,
  ) {
    this.batcher = new IpBatchProcess({ ...(netns !== undefined ? { netns } : {}), timeoutMs: 30_000 });
  }

  async dumpVteps(): Promise<VtepEntry[]> {
    this.onRun("dump");
    return parseVteps(await bridgeJson<FdbJson>(["fdb", "show"], this.opts()), (dev) => parseVxlanDeviceName(dev) !== undefined);
  }

  private opts(): { netns?: string } {
    return this.netns === undefined ? {} : { netns: this.netns };
  }

  async dumpOwned(): Promise<KernelRoute[]> {
    // One family per dump: both print a default route as "default".
    const out: KernelRoute[] = [];
    for (const family of [4, 6] as const) {
      this.onRun("dump");
      out.push(...parseOwnedRoutes(await ipJson<IpRoute>([`-${family}`, "route", "show", "table", "all", "proto", String(proto)], this.opts()), undefined, family));
    }
    return out;
  }

  async dumpTable(table: number): Promise<KernelRoute[]> {
    const out: KernelRoute[] = [];
    for (const family of [4, 6] as const) {
      this.onRun("dump");
      try {
        out.push(...parseOwnedRoutes(await ipJson<IpRoute>([`-${family}`, "route", "show", "table", String(table), "proto", String(proto)], this.opts()), table, family));
      } catch (err) {
        // A table with no routes of a family does not exist for that family.
        if (!missingTable(err)) throw err;
      }
    }
    return out;
  }

  async owners(table: number, prefix: string): Promise<string[]> {
    try {
      // With a table and no family, iproute2 lists IPv4 only.
      const fam = prefix.includes(":") ? "-6" : "-4";
      this.onRun("lookup");
      const got = await ipJson<IpRoute>([fam, "route", "show", "table", String(table), "exact", prefix], this.opts());
      // kvrfd adds without a metric: the kernel's default for the family (IPv4 0, which `ip -j`
      // omits; IPv6 1024). A route at another metric, such as the CNI plugin's unreachable
      // default at the VPC table's last-resort metric, sits beside ours and is no collision.
      const ours = fam === "-4" ? 0 : 1024;
      return got.filter((r) => (r.metric ?? 0) === ours).map((r) => r.protocol ?? "boot");
    } catch (err) {
      if (missingTable(err)) return [];
      throw err;
    }
  }

  async apply(plan: RoutePlan): Promise<RouteFailure[]> {
    // VXLAN next hops first (neighbour and FDB entries), then the routes, then the next hops no
    // route uses any more: a route never points at a VTEP the device cannot reach.
    const v = vtepCommands(plan.vteps ?? { add: [], remove: [] }, proto);
    const routeLines = routeCommands(plan, proto);
    const lines = [...v.ipAdd, ...routeLines, ...v.ipRemove];
    if (lines.length === 0 && v.bridgeAdd.length === 0 && v.bridgeRemove.length === 0) return [];
    const routes: { route: KernelRoute; op: RouteFailure["op"] }[] = [
      ...plan.remove.map((route) => ({ route, op: "remove" as const })),
      ...plan.replace.map((route) => ({ route, op: "replace" as const })),
      ...plan.add.map((route) => ({ route, op: "add" as const })),
    ];
    const out: RouteFailure[] = [];
    const asRoute = (e: VtepEntry): KernelRoute => ({ table: 0, prefix: `VTEP ${e.vtep} (${e.routerMac}) on ${e.dev}`, sid: "", dev: e.dev });
    const vtepFailed = (failed: Map<number, string>, entries: readonly VtepEntry[], perEntry: number, op: RouteFailure["op"], ignore: RegExp): void => {
      for (const [i, message] of failed) {
        const e = entries[Math.floor(i / perEntry)];
        if (e !== undefined && !ignore.test(message)) out.push({ route: asRoute(e), vtep: e, op, message });
      }
    };
    const perAdd = (plan.vteps?.add ?? []).length === 0 ? 1 : v.ipAdd.length / (plan.vteps?.add.length ?? 1);
    const perRemove = (plan.vteps?.remove ?? []).length === 0 ? 1 : v.ipRemove.length / (plan.vteps?.remove.length ?? 1);
    if (v.bridgeAdd.length > 0) vtepFailed(await this.runFdb(v.bridgeAdd), plan.vteps?.add ?? [], 1, "add", /^$/);
    if (lines.length > 0) {
      const failed = await this.run(lines);
      for (const [i, message] of failed) {
        if (i < v.ipAdd.length) {
          vtepFailed(new Map([[i, message]]), plan.vteps?.add ?? [], perAdd, "add", /^$/);
          continue;
        }
        const j = i - v.ipAdd.length;
        if (j >= routeLines.length) {
          vtepFailed(new Map([[j - routeLines.length, message]]), plan.vteps?.remove ?? [], perRemove, "remove", /No such file|Cannot find device|RTNETLINK answers: No such/);
          continue;
        }
        const r = routes[j];
        if (r === undefined) continue;
        // Removing what is already gone is what we wanted.
        if (r.op === "remove" && /No such process/.test(message)) continue;
        out.push({ ...r, message });
      }
    }
    // A device already gone (the CNI plugin removed the VPC) took its entries along.
    if (v.bridgeRemove.length > 0) vtepFailed(await this.runFdb(v.bridgeRemove), plan.vteps?.remove ?? [], 1, "remove", /No such file|Cannot find device|does not exist/);
    return out;
  }

  /**
   * FDB writes (VXLAN) in a `bridge -force -batch` of their own. Not a long-lived process like the
   * routes': `bridge` keeps the ifindex of a device name it has seen, and a VPC's VXLAN device is
   * made again (a new ifindex) when the VPC returns to the node ("unknown ifindex" ever after).
   * FDB entries change only when a VTEP joins or leaves a VPC, so the process start is rare.
   */
  private async runFdb(lines: string[]): Promise<Map<number, string>> {
    this.onRun("batch");
    try {
      await ip([], { ...this.opts(), batch: lines, force: true, tool: "bridge" });
      return new Map();
    } catch (err) {
      if (!(err instanceof IpError)) throw err;
      const failed = batchFailures(err.stderr);
      if (failed.size === 0) throw err;
      return new Map([...failed].map(([n, m]): [number, string] => [n - 1, m]));
    }
  }

  async flushTable(table: number): Promise<void> {
    // `proto` makes the kernel spare every other owner's routes. A batch line flushes IPv4 only
    // (iproute2 takes the family from the command line, `-6`, not from a batch line, where
    // `root ::/0` silently matches nothing), so IPv6 gets a process of its own.
    await this.run([`route flush root 0.0.0.0/0 table ${table} proto ${proto}`]);
    this.onRun("flush");
    await ip(["-6", "route", "flush", "table", String(table), "proto", String(proto)], this.opts()).catch((err: unknown) => {
      // A table with no IPv6 route does not exist for IPv6.
      if (!missingTable(err)) throw err;
    });
  }

  /**
   * Runs lines through the `ip -force -batch` process; requests that arrive while a batch runs go
   * together in the next one. Resolves with this request's failed lines (0-based) and their
   * messages.
   */
  private run(lines: string[]): Promise<Map<number, string>> {
    return new Promise((resolve, reject) => {
      this.pending.push({ lines, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.pending.length > 0) {
        const batch: BatchRequest[] = [];
        let n = 0;
        while (this.pending.length > 0 && (batch.length === 0 || n + (this.pending[0]?.lines.length ?? 0) <= this.maxLines)) {
          const r = this.pending.shift() as BatchRequest;
          batch.push(r);
          n += r.lines.length;
        }
        this.onRun("batch");
        let failed: Map<number, string>;
        const lines = batch.flatMap((r) => r.lines);
        try {
          failed = await this.batcher.run(lines);
        } catch (first) {
          // The `ip` process ended mid-batch. iproute2 exits on some kernel errors, e.g. ENODEV for
          // a device it still knows by an old ifindex: a VPC's VXLAN device made anew under the
          // same name when the VPC returned to the node. One retry on a fresh process (which looks
          // names up again); lines applied before the exit answer "File exists" or "No such
          // process" the second time, which the callers take as done.
          if (!(first instanceof IpError)) {
            for (const r of batch) r.reject(first);
            continue;
          }
          try {
            this.onRun("batch");
            failed = await this.batcher.run(lines);
          } catch (err) {
            for (const r of batch) r.reject(err);
            continue;
          }
        }
        let offset = 0;
        for (const r of batch) {
          const mine = new Map<number, string>();
          for (let i = 0; i < r.lines.length; i++) {
            const m = failed.get(offset + i);
            if (m !== undefined) mine.set(i, m);
          }
          offset += r.lines.length;
          r.resolve(mine);
        }
      }
    } finally {
      this.draining = false;
    }
  }
}

/**
 * Writes to the kernel run side by side (each records only its own routes); a re-read of the
 * kernel runs alone. A dump that overlapped a write would otherwise replace the view with a
 * snapshot taken before that write: the route exists but kvrfd forgets it, and it survives its
 * VPC's deletion. Re-reads are rare (start, orphan sweep, a failed write), so they wait for the
 * writes in flight and hold new ones back until they are done.
 */
export class WriteReadGate {
  private writers = 0;
  private reading: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  async write<T>(f: () => Promise<T>): Promise<T> {
    while (this.reading !== undefined) await this.reading;
    this.writers++;
    try {
      return await f();
    } finally {
      this.writers--;
      if (this.writers === 0) this.drained?.();
    }
  }

  async read<T>(f: () => Promise<T>): Promise<T> {
    // Check and claim in one turn of the event loop: two readers woken together take turns.
    while (this.reading !== undefined) await this.reading;
    let done!: () => void;
    this.reading = new Promise<void>((r) => (done = r));
    try {
      if (this.writers > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await f();
    } finally {
      this.reading = undefined;
      done();
    }
  }
}

/**
 * kvrfd's routes as last read from the kernel and kept up to date by our own writes, so that a
 * reconcile that changes nothing runs no `ip` at all. `load()` re-reads everything (start,
 * periodic resync, and after a write failed).
 */
export class KernelRouteCache {
  private byTable = new Map<number, Map<string, KernelRoute>>();
  /** VXLAN device → vtepKey → the remote VTEP's entries as last read or written. */
  private vtepsByDev = new Map<string, Map<string, VtepEntry>>();
  private loaded = false;
  /** Routes in byTable, kept with every change (count() is asked for after every write). */
  private total = 0;
  private readonly gate = new WriteReadGate();

  constructor(
    readonly backend: KernelRouteBackend,
    /** The clock of a route's age (`since`), compared with hold starts (monotonic, shared/clock.ts). */
    private readonly now: () => number = monotonicMs,
  ) {}

  load(): Promise<void> {
    return this.gate.read(() => this.loadNow());
  }

  private async loadNow(): Promise<void> {
    const fresh = new Map<number, Map<string, KernelRoute>>();
    for (const r of await this.backend.dumpOwned()) {
      let t = fresh.get(r.table);
      if (t === undefined) fresh.set(r.table, (t = new Map<string, KernelRoute>()));
      const known = this.byTable.get(r.table)?.get(routeKey(r));
      t.set(routeKey(r), known !== undefined && known.sid === r.sid && known.since !== undefined ? { ...r, since: known.since } : r);
    }
    this.byTable = fresh;
    this.total = 0;
    for (const t of fresh.values()) this.total += t.size;
    const vteps = new Map<string, Map<string, VtepEntry>>();
    for (const e of (await this.backend.dumpVteps?.()) ?? []) {
      let d = vteps.get(e.dev);
      if (d === undefined) vteps.set(e.dev, (d = new Map<string, VtepEntry>()));
      d.set(vtepKey(e), e);
    }
    this.vtepsByDev = vteps;
    this.loaded = true;
  }

  /** The remote VTEPs kvrfd keeps on a VXLAN device. */
  vteps(dev: string): VtepEntry[] {
    return [...(this.vtepsByDev.get(dev)?.values() ?? [])];
  }

  /** VXLAN devices kvrfd keeps VTEP entries on. */
  vtepDevices(): string[] {
    return [...this.vtepsByDev.keys()];
  }

  /** Records the VTEP entries of a plan that worked. */
  private noteVteps(plan: RoutePlan, failures: readonly RouteFailure[]): void {
    const failed = new Set(failures.flatMap((f) => (f.vtep === undefined ? [] : [`${f.op} ${vtepKey(f.vtep)}`])));
    for (const e of plan.vteps?.add ?? []) {
      if (failed.has(`add ${vtepKey(e)}`)) continue;
      let d = this.vtepsByDev.get(e.dev);
      if (d === undefined) this.vtepsByDev.set(e.dev, (d = new Map<string, VtepEntry>()));
      d.set(vtepKey(e), e);
    }
    for (const e of plan.vteps?.remove ?? []) {
      if (failed.has(`remove ${vtepKey(e)}`)) continue;
      const d = this.vtepsByDev.get(e.dev);
      d?.delete(vtepKey(e));
      if (d !== undefined && d.size === 0) this.vtepsByDev.delete(e.dev);
    }
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  table(table: number): KernelRoute[] {
    return [...(this.byTable.get(table)?.values() ?? [])];
  }

  tables(): number[] {
    return [...this.byTable.keys()];
  }

  count(): number {
    return this.total;
  }

  /** Runs a change of some tables' routes and keeps the total (and no empty table) in step. */
  private change(tables: Iterable<number>, f: () => void): void {
    const touched = new Set(tables);
    let before = 0;
    for (const t of touched) before += this.byTable.get(t)?.size ?? 0;
    f();
    let after = 0;
    for (const t of touched) {
      const size = this.byTable.get(t)?.size ?? 0;
      if (size === 0) this.byTable.delete(t);
      after += size;
    }
    this.total += after - before;
  }

  /** Applies a plan and records what succeeded; add failures caused by foreign routes are diagnosed. */
  async apply(plan: RoutePlan): Promise<RouteFailure[]> {
    const failures = await this.gate.write(async () => {
      const failures = await this.backend.apply(plan);
      this.record(plan, failures);
      return failures;
    });
    const out: RouteFailure[] = [];
    for (const f of failures) {
      if (f.vtep === undefined && f.op === "add" && /File exists/.test(f.message)) {
        const owners = await this.backend.owners(f.route.table, f.route.prefix);
        const foreign = owners.filter((o) => o !== String(proto));
        if (foreign.length === 0) {
          // Ours after all (our view was stale): re-read the table and let the next pass compare.
          await this.reloadTable(f.route.table);
          continue;
        }
        out.push({ ...f, foreignOwner: foreign.join(",") });
        continue;
      }
      out.push(f);
    }
    return out;
  }

  /** Records what of a plan worked. */
  private record(plan: RoutePlan, failures: readonly RouteFailure[]): void {
    this.noteVteps(plan, failures);
    const failed = new Set(failures.filter((f) => f.vtep === undefined).map((f) => `${f.op} ${routeKey(f.route)}`));
    this.change([...plan.remove, ...plan.replace, ...plan.add].map((r) => r.table), () => {
      for (const r of plan.remove) if (!failed.has(`remove ${routeKey(r)}`)) this.byTable.get(r.table)?.delete(routeKey(r));
      for (const [op, list] of [["replace", plan.replace], ["add", plan.add]] as const) {
        for (const r of list) {
          if (failed.has(`${op} ${routeKey(r)}`)) continue;
          let t = this.byTable.get(r.table);
          if (t === undefined) this.byTable.set(r.table, (t = new Map<string, KernelRoute>()));
          t.set(routeKey(r), { ...r, since: this.now() });
        }
      }
    });
  }

  reloadTable(table: number): Promise<void> {
    return this.gate.read(() => this.reloadTableNow(table));
  }

  private async reloadTableNow(table: number): Promise<void> {
    const fresh = await this.backend.dumpTable(table);
    this.change([table], () => {
      const old = this.byTable.get(table);
      this.byTable.set(
        table,
        new Map(
          fresh.map((r): [string, KernelRoute] => {
            const known = old?.get(routeKey(r));
            return [routeKey(r), known?.since !== undefined && known.sid === r.sid ? { ...r, since: known.since } : r];
          }),
        ),
      );
    });
  }

  /**
   * Removes every kvrfd route of `table`: the ones we know of (with their VTEP entries), plus a
   * flush of both families limited to our protocol for any we do not.
   */
  clearTable(table: number): Promise<RouteFailure[]> {
    return this.gate.write(() => this.clearTableNow(table));
  }

  private async clearTableNow(table: number): Promise<RouteFailure[]> {
    const known = this.table(table);
    // The VTEP entries on the VXLAN devices these routes went through go with them.
    const devices = new Set(known.filter((r) => r.kind === "vxlan").map((r) => r.dev));
    const vteps = { add: [], remove: [...devices].flatMap((d) => this.vteps(d)) };
    const failures = await this.backend.apply({ add: [], replace: [], remove: known, vteps });
    this.noteVteps({ add: [], replace: [], remove: [], vteps }, failures);
    const failed = new Set(failures.map((f) => routeKey(f.route)));
    this.change([table], () => {
      const t = this.byTable.get(table);
      for (const r of known) if (!failed.has(routeKey(r))) t?.delete(routeKey(r));
    });
    await this.backend.flushTable?.(table);
    return failures;
  }
}
