// FakeKernel: an in-memory KernelRouteBackend for unit tests. It holds routes of any owner per
// table, refuses `add` over an existing route like the kernel does (EEXIST), and deletes only
// routes carrying kvrfd's protocol, so tests can prove foreign routes survive.
import { routeProtocol } from "../../shared/api-types.js";
import type { KernelRouteBackend, RouteFailure } from "../kernel/kernel-routes.js";
import { routeKey, type KernelRoute, type RoutePlan } from "../vrf/planner.js";

export interface FakeRoute extends KernelRoute {
  proto: number;
}

export class FakeKernel implements KernelRouteBackend {
  readonly routes = new Map<string, FakeRoute>();
  /** Every write, in order: "add 100 10.0.0.1/32", … */
  readonly log: string[] = [];
  failNextApply: string | undefined;
  /** When set, dumps wait for it (to run other work while a reader is in the middle of one). */
  dumpGate: Promise<void> | undefined;

  put(r: FakeRoute): void {
    this.routes.set(routeKey(r), r);
  }

  owned(table?: number): KernelRoute[] {
    return [...this.routes.values()]
      .filter((r) => r.proto === routeProtocol.kvrfd && (table === undefined || r.table === table))
      .map(({ proto: _p, ...r }) => r);
  }

  /** kvrfd's encap routes only (without the throw routes for remote SIDs). */
  encap(table?: number): KernelRoute[] {
    return this.owned(table).filter((r) => r.kind === undefined);
  }

  async dumpOwned(): Promise<KernelRoute[]> {
    const routes = this.owned();
    await this.dumpGate;
    return routes;
  }

  async dumpTable(table: number): Promise<KernelRoute[]> {
    return this.owned(table);
  }

  async owners(table: number, prefix: string): Promise<string[]> {
    const r = this.routes.get(routeKey({ table, prefix }));
    return r === undefined ? [] : [String(r.proto)];
  }

  async flushTable(table: number): Promise<void> {
    for (const [k, r] of this.routes) {
      if (r.table === table && r.proto === routeProtocol.kvrfd) {
        this.routes.delete(k);
        this.log.push(`flush ${k}`);
      }
    }
  }

  async apply(plan: RoutePlan): Promise<RouteFailure[]> {
    if (this.failNextApply !== undefined) {
      const msg = this.failNextApply;
      this.failNextApply = undefined;
      throw new Error(msg);
    }
    const failures: RouteFailure[] = [];
    for (const r of plan.remove) {
      const h = this.routes.get(routeKey(r));
      if (h === undefined || h.proto !== routeProtocol.kvrfd) continue;
      this.routes.delete(routeKey(r));
      this.log.push(`remove ${routeKey(r)}`);
    }
    for (const r of plan.replace) {
      this.routes.set(routeKey(r), { ...r, proto: routeProtocol.kvrfd });
      this.log.push(`replace ${routeKey(r)}`);
    }
    for (const r of plan.add) {
      if (this.routes.has(routeKey(r))) {
        failures.push({ route: r, op: "add", message: "RTNETLINK answers: File exists" });
        continue;
      }
      this.routes.set(routeKey(r), { ...r, proto: routeProtocol.kvrfd });
      this.log.push(`add ${routeKey(r)}`);
    }
    return failures;
  }
}
