// kvrfd's PromQL, checked without a Prometheus: every expression of the alerts
// (manifests/monitoring/prometheusrule.yaml) and of the Grafana dashboard that
// manifests/overlays/monitoring ships is parsed with the Prometheus project's own PromQL grammar
// (@prometheus-io/lezer-promql, the parser of the Prometheus UI), and every metric and label it
// names must be one kvrfd registers: the registry is the real one, built by reconciler/metrics.ts.
// test/integration/manifests.test.ts applies the same objects against an API server.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { load } from "js-yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../../reconciler/metrics.js";
import { repoRoot } from "../harness/tools.js";

type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

const read = (file: string): string => readFileSync(path.join(repoRoot, file), "utf8");

// ---- What kvrfd exports, as Prometheus stores it.

/** A series name Prometheus can hold for kvrfd, and the labels its series carry. */
type Known = Map<string, Set<string>>;

// Labels the Prometheus Operator puts on every series scraped through a ServiceMonitor endpoint,
// besides the ones its relabelings add (read from servicemonitor.yaml).
const operatorTargetLabels = ["job", "instance", "namespace", "service", "endpoint", "pod", "container"];

interface ServiceMonitor {
  spec: { jobLabel?: string; endpoints: { relabelings?: { targetLabel?: string }[] }[] };
}

const serviceMonitor = load(read("manifests/monitoring/servicemonitor.yaml")) as ServiceMonitor;
const targetLabels = [...operatorTargetLabels, ...serviceMonitor.spec.endpoints.flatMap((e) => (e.relabelings ?? []).flatMap((r) => (r.targetLabel !== undefined ? [r.targetLabel] : [])))];
// Without spec.jobLabel the operator names the job after the scraped Service.
const jobs = new Set(serviceMonitor.spec.jobLabel === undefined ? [(load(read("manifests/monitoring/service.yaml")) as { metadata: { name: string } }).metadata.name] : []);

/**
 * The series kvrfd's registry produces: counters and gauges under their registered names,
 * histograms as `_bucket` (plus `le`), `_sum` and `_count`, summaries under their name (plus
 * `quantile`), `_sum` and `_count`; each with its labelNames and the target labels. Plus `up`,
 * which Prometheus itself writes for every scrape of kvrfd (target labels only).
 */
async function knownSeries(m: Metrics): Promise<Known> {
  const known: Known = new Map([["up", new Set(targetLabels)]]);
  for (const { name, type } of await m.registry.getMetricsAsJSON()) {
    const { labelNames } = m.registry.getSingleMetric(name) as unknown as { labelNames: readonly string[] };
    const labels = (...extra: string[]): Set<string> => new Set([...labelNames, ...targetLabels, ...extra]);
    switch (String(type)) {
      case "histogram":
        known.set(`${name}_bucket`, labels("le")).set(`${name}_sum`, labels()).set(`${name}_count`, labels());
        break;
      case "summary":
        known.set(name, labels("quantile")).set(`${name}_sum`, labels()).set(`${name}_count`, labels());
        break;
      default:
        known.set(name, labels());
    }
  }
  return known;
}

// ---- The expressions.

interface Query {
  /** Where it is written: the alert's or the panel's name. */
  where: string;
  expr: string;
  /** Grafana variables in `expr` and the sample values they are replaced with before parsing. */
  variables?: ReadonlyMap<string, string>;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
const ruleFile = "manifests/monitoring/prometheusrule.yaml";
const rules = (load(read(ruleFile)) as { spec: { groups: { name: string; rules: Rule[] }[] } }).spec.groups.flatMap((g) => g.rules);
const ruleQueries: Query[] = rules.map((r) => ({ where: `${ruleFile}: ${r.alert !== undefined ? `alert ${r.alert}` : `record ${r.record}`}`, expr: r.expr }));

interface Datasource {
  type?: string;
  uid?: string;
}
interface Target {
  refId?: string;
  expr?: string;
  datasource?: Datasource;
}
interface Panel {
  id: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: Datasource;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  /** A collapsed row's panels. */
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: Datasource;
  multi?: boolean;
  includeAll?: boolean;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Variable[] };
  panels: Panel[];
}

interface Generator {
  name: string;
  namespace?: string;
  files?: string[];
  options?: { disableNameSuffixHash?: boolean; labels?: Record<string, string> };
}
const overlay = "manifests/overlays/monitoring";
const generators = (load(read(`${overlay}/kustomization.yaml`)) as { configMapGenerator?: Generator[] }).configMapGenerator ?? [];
// The dashboards are the files of the ConfigMaps labelled for Grafana's sidecar ("key=file" or "file").
const dashboardFiles = generators.filter((g) => g.options?.labels?.["grafana_dashboard"] === "1").flatMap((g) => (g.files ?? []).map((f) => path.join(overlay, f.split("=").pop() ?? f)));
const dashboards = dashboardFiles.map((file) => ({ file, dashboard: JSON.parse(read(file)) as Dashboard }));

const allPanels = (panels: readonly Panel[]): Panel[] => panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

// Grafana replaces its variables before Prometheus sees a query, so the parser gets what Prometheus
// would: $__rate_interval, $__interval and $__range become a duration; a dashboard variable its
// sample value. A multi-value variable (or one with "All") is rendered by Grafana as a regular
// expression over the chosen values, `(a|b)`, so that is its sample, and it belongs in =~ / !~
// matchers only (checked). A variable that is neither is reported.
const multiSample = "(kvrf-a|kvrf-b)";
const builtinVariables: [string, string][] = [
  ["__rate_interval", "2m"],
  ["__interval", "1m"],
  ["__range", "1h"],
];
const dashboardVariables = (d: Dashboard): Map<string, string> =>
  new Map([...builtinVariables, ...d.templating.list.map((v): [string, string] => [v.name, v.multi === true || v.includeAll === true ? multiSample : "kvrf-a"])]);

/**
 * A variable query's PromQL. `label_values(selector, label)` (Grafana's, not PromQL) lists the
 * label's values among the selected series; it is checked as its PromQL equivalent
 * `group by (label) (selector)`. `query_result(expr)` runs expr; anything else must be PromQL.
 */
function variableExpr(query: string): string | undefined {
  const labelValues = /^\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*$/s.exec(query);
  if (labelValues !== null) return `group by (${labelValues[2]}) (${labelValues[1]})`;
  if (/^\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*$/.test(query)) return undefined;
  const queryResult = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  return queryResult !== null ? queryResult[1] : query;
}

function dashboardQueries(file: string, d: Dashboard): Query[] {
  const variables = dashboardVariables(d);
  const panels = allPanels(d.panels).flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr !== undefined ? [{ where: `${file}: panel "${p.title}" (query ${t.refId})`, expr: t.expr, variables }] : [])));
  const vars = d.templating.list.flatMap((v) => {
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    const expr = v.type === "query" && q !== undefined ? variableExpr(q) : undefined;
    return expr !== undefined ? [{ where: `${file}: variable ${v.name}`, expr, variables }] : [];
  });
  return [...panels, ...vars];
}

const queries: Query[] = [...ruleQueries, ...dashboards.flatMap(({ file, dashboard }) => dashboardQueries(file, dashboard))];

// ---- Checking one expression.

const grafanaVariable = /\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g;

/** `expr` with its Grafana variables replaced, and how to map a position back to `expr`. */
function substitute(expr: string, values: ReadonlyMap<string, string>): { text: string; original: (pos: number) => number; unknown: string[] } {
  const edits: { from: number; to: number; at: number; length: number }[] = [];
  const unknown: string[] = [];
  let text = "";
  let copied = 0;
  for (const m of expr.matchAll(grafanaVariable)) {
    const value = values.get(m[1] ?? m[2] ?? m[3] ?? "");
    if (value === undefined) {
      unknown.push(m[0]);
      continue;
    }
    text += expr.slice(copied, m.index);
    edits.push({ from: m.index, to: m.index + m[0].length, at: text.length, length: value.length });
    text += value;
    copied = m.index + m[0].length;
  }
  text += expr.slice(copied);
  const original = (pos: number): number => {
    let shift = 0;
    for (const e of edits) {
      if (pos < e.at) break;
      if (pos < e.at + e.length) return e.from;
      shift = e.to - (e.at + e.length);
    }
    return pos + shift;
  };
  return { text, original, unknown };
}

/** Where `pos` is in `expr`, for messages: line:column (from 1) and the text around it. */
function at(expr: string, pos: number): string {
  const before = expr.slice(0, pos);
  const line = before.split("\n").length;
  const column = pos - before.lastIndexOf("\n");
  return `${line}:${column}: «${expr.slice(Math.max(0, pos - 40), pos)}⟨here⟩${expr.slice(pos, pos + 40)}»`;
}

const children = (n: SyntaxNode): SyntaxNode[] => {
  const found: SyntaxNode[] = [];
  for (let c = n.firstChild; c !== null; c = c.nextSibling) found.push(c);
  return found;
};
const descendants = (n: SyntaxNode, name: string): SyntaxNode[] => children(n).flatMap((c) => [...(c.name === name ? [c] : []), ...descendants(c, name)]);
const firstError = (n: SyntaxNode): SyntaxNode | undefined => {
  if (n.type.isError) return n;
  for (const c of children(n)) {
    const e = firstError(c);
    if (e !== undefined) return e;
  }
  return undefined;
};

/** A PromQL string literal's value: "…" takes escapes (read as JSON's, its subset in practice), '…' and `…` are taken as written. */
function unquote(s: string): string {
  if (!s.startsWith('"')) return s.slice(1, -1);
  try {
    return JSON.parse(s) as string;
  } catch {
    return s.slice(1, -1);
  }
}

interface Matcher {
  label: string;
  op: string;
  value: string;
}
interface Selector {
  /** The metric, from `name{…}`, `{__name__="name"}` or `{"name"}`. */
  metric: string | undefined;
  matchers: Matcher[];
}

function selector(n: SyntaxNode, text: string): Selector {
  const src = (x: SyntaxNode | null): string => (x === null ? "" : text.slice(x.from, x.to));
  const list = n.getChild("LabelMatchers");
  const matchers = (list === null ? [] : children(list))
    .filter((m) => m.name === "UnquotedLabelMatcher" || m.name === "QuotedLabelMatcher")
    .map((m) => {
      const name = m.getChild("LabelName") ?? m.getChild("QuotedLabelName");
      const values = m.getChildren("StringLiteral");
      return { label: name?.name === "QuotedLabelName" ? unquote(src(name)) : src(name), op: src(m.getChild("MatchOp")), value: unquote(src(values[values.length - 1] ?? null)) };
    });
  const identifier = n.getChild("Identifier");
  const bare = list?.getChild("QuotedLabelName") ?? null;
  const byName = matchers.find((m) => m.label === "__name__" && m.op === "=");
  const metric = identifier !== null ? src(identifier) : bare !== null ? unquote(src(bare)) : byName?.value;
  return { metric, matchers: matchers.filter((m) => m !== byName) };
}

// Functions whose argument must be a range vector (`x[5m]` or a subquery), by the grammar's node
// names: the grammar accepts an instant vector there, Prometheus refuses it when the query runs.
const rangeFunctions = new Set(
  "Rate Irate Increase Delta Idelta Deriv Changes Resets PredictLinear AvgOverTime MinOverTime MaxOverTime SumOverTime CountOverTime QuantileOverTime StddevOverTime StdvarOverTime LastOverTime FirstOverTime PresentOverTime AbsentOverTime MadOverTime".split(" "),
);

/** The expression as Prometheus gets it (Grafana variables replaced) and its syntax tree, or why it does not parse. */
function parse(q: Query): { problems: string[]; text: string; top?: SyntaxNode } {
  const { text, original, unknown } = q.variables !== undefined ? substitute(q.expr, q.variables) : { text: q.expr, original: (p: number) => p, unknown: [] };
  const problems = unknown.map((v) => `${q.where}: unknown Grafana variable ${v} (neither a dashboard variable nor one of ${builtinVariables.map(([n]) => `$${n}`).join(", ")})`);
  const top = parser.parse(text).topNode;
  const error = firstError(top);
  if (error !== undefined) return { problems: [...problems, `${q.where}: PromQL syntax error at ${at(q.expr, original(error.from))}`], text };
  return { problems, text, top };
}

/** Everything wrong with one expression, each naming where it is written. */
function check(q: Query, known: Known): string[] {
  const { problems, text, top } = parse(q);
  if (top === undefined) return problems;
  const src = (n: SyntaxNode): string => text.slice(n.from, n.to);
  const labelsOf = (n: SyntaxNode): Set<string> | undefined => {
    const all = new Set<string>();
    for (const s of descendants(n, "VectorSelector").map((v) => selector(v, text))) {
      const labels = s.metric !== undefined ? known.get(s.metric) : undefined;
      if (labels === undefined) return undefined;
      for (const l of labels) all.add(l);
    }
    return all;
  };
  for (const v of descendants(top, "VectorSelector")) {
    const s = selector(v, text);
    const labels = s.metric !== undefined ? known.get(s.metric) : undefined;
    if (s.metric === undefined) problems.push(`${q.where}: the selector ${src(v)} names no metric`);
    else if (labels === undefined) problems.push(`${q.where}: metric ${s.metric} is not one kvrfd exports (reconciler/metrics.ts; histograms as _bucket, _sum, _count)`);
    for (const m of s.matchers) {
      if (labels !== undefined && !labels.has(m.label)) problems.push(`${q.where}: ${s.metric} has no label "${m.label}" (it has ${[...labels].sort().join(", ")})`);
      if (m.value.includes(multiSample) && m.op !== "=~" && m.op !== "!~") problems.push(`${q.where}: ${m.label}${m.op}"…" uses a multi-value variable, which Grafana renders as a regular expression: use =~ or !~`);
      if (m.label === "job" && m.op === "=" && !jobs.has(m.value)) problems.push(`${q.where}: job="${m.value}" is not kvrfd's scrape job (${[...jobs].join(", ")})`);
    }
  }
  // by (…), without (…), on (…), ignoring (…): labels of the series they group.
  for (const g of descendants(top, "GroupingLabels")) {
    let owner: SyntaxNode | null = g.parent;
    while (owner !== null && owner.name !== "AggregateExpr" && owner.name !== "BinaryExpr") owner = owner.parent;
    const labels = owner !== null ? labelsOf(owner) : undefined;
    if (labels === undefined) continue;
    for (const l of g.getChildren("LabelName").map(src)) if (!labels.has(l)) problems.push(`${q.where}: grouping by "${l}", which none of ${descendants(owner ?? g, "Identifier").map(src).join(", ")} has`);
  }
  for (const f of descendants(top, "FunctionCall")) {
    const fn = f.getChild("FunctionIdentifier");
    const args = f.getChild("FunctionCallBody");
    if (fn === null || args === null || !rangeFunctions.has(fn.firstChild?.name ?? "")) continue;
    if (!children(args).some((a) => a.name === "MatrixSelector" || a.name === "SubqueryExpr")) problems.push(`${q.where}: ${src(fn)}() needs a range vector, as in ${src(fn)}(metric[$__rate_interval]): ${src(f)}`);
  }
  for (const r of descendants(top, "MatrixSelector")) {
    if (r.parent?.name !== "FunctionCallBody") problems.push(`${q.where}: a range vector is no query result of its own, only a function's argument: ${src(r)}`);
  }
  return problems;
}

// ---- The tests.

// kvrfd's own registry: reconciler/daemon.ts creates `new Metrics()`, with prom-client's default
// metrics (process and Node.js, prefixed kvrfd_), so they count as exported too.
let known: Known = new Map();
beforeAll(async () => {
  known = await knownSeries(new Metrics());
});

describe("kvrfd's monitoring PromQL", () => {
  it("finds the alerts and the dashboard's queries", () => {
    expect(ruleQueries.length).toBeGreaterThan(0);
    expect(dashboardFiles).toEqual([`${overlay}/grafana-dashboard-kvrfd.json`]);
    expect(queries.length - ruleQueries.length).toBeGreaterThan(20);
  });

  it("includes prom-client's default metrics because kvrfd registers them", () => {
    expect(read("reconciler/daemon.ts")).toMatch(/readonly metrics = new Metrics\(\);/);
    expect([...known.keys()]).toEqual(expect.arrayContaining(["kvrfd_process_cpu_seconds_total", "kvrfd_reconcile_duration_seconds_bucket", "kvrfd_reconciles_total", "up"]));
  });

  it.each(queries.map((q) => [q.where, q] as const))("%s parses and uses kvrfd's metrics and labels", (_where, q) => {
    expect(check(q, known)).toEqual([]);
  });

  // The checks themselves: each finds the mistake it is there for.
  const dashVariables = new Map([...builtinVariables, ["node", multiSample]]);
  it.each([
    ["sum(rate(kvrfd_reconciles_total[5m])", undefined, /PromQL syntax error at 1:37/],
    ["sum by (node) (kvrfd_bgp_peers{state!=established})", undefined, /PromQL syntax error at 1:39/],
    ["kvrfd_vrfs{node=~\"$node\"} >", dashVariables, /PromQL syntax error at 1:28: «kvrfd_vrfs\{node=~"\$node"\} >⟨here⟩»/],
    ["kvrfd_no_such_metric > 0", undefined, /metric kvrfd_no_such_metric is not one kvrfd exports/],
    ["rate(kvrfd_reconcile_duration_seconds[5m])", undefined, /metric kvrfd_reconcile_duration_seconds is not one kvrfd exports/],
    ["kvrfd_remote_paths_ignored{reson=\"sid-of-another-vpc\"}", undefined, /kvrfd_remote_paths_ignored has no label "reson"/],
    ["sum by (nod) (kvrfd_vrfs)", undefined, /grouping by "nod"/],
    ["rate(kvrfd_reconciles_total)", undefined, /rate\(\) needs a range vector/],
    ["kvrfd_vrfs{node=\"$node\"}", dashVariables, /multi-value variable/],
    ["kvrfd_vrfs{node=~\"$nodes\"}", dashVariables, /unknown Grafana variable \$nodes/],
    ["up{job=\"kvrfd\"}", undefined, /job="kvrfd" is not kvrfd's scrape job/],
  ] as const)("reports %s", (expr, variables, problem) => {
    const found = check({ where: "t", expr, ...(variables !== undefined ? { variables } : {}) }, known);
    expect(found).toEqual([expect.stringMatching(problem)]);
  });
});

describe.each(dashboards)("the Grafana dashboard $file", ({ file, dashboard: d }) => {
  const panels = allPanels(d.panels);

  it("ships as a ConfigMap Grafana's dashboard sidecar loads, under a fixed name", () => {
    const g = generators.find((x) => (x.files ?? []).some((f) => path.join(overlay, f.split("=").pop() ?? f) === file));
    expect(g).toMatchObject({ namespace: "kvrf-system", options: { disableNameSuffixHash: true, labels: { grafana_dashboard: "1" } } });
  });

  it("is a current Grafana dashboard with a Prometheus datasource variable and a node variable", () => {
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(d.uid).toMatch(/^[\w-]{1,40}$/);
    const v = new Map(d.templating.list.map((x) => [x.name, x]));
    expect(v.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(v.get("node")).toMatchObject({ type: "query", datasource: { type: "prometheus", uid: "${datasource}" }, multi: true, includeAll: true });
  });

  it("gives every panel a title, a description and the datasource variable", () => {
    const missing = panels.filter((p) => !p.title?.trim() || !p.description?.trim()).map((p) => `panel ${p.id} "${p.title ?? ""}"`);
    expect(missing).toEqual([]);
    const ds = { type: "prometheus", uid: "${datasource}" };
    for (const p of panels.filter((x) => x.type !== "row")) {
      expect({ panel: p.title, datasource: p.datasource, targets: (p.targets ?? []).map((t) => t.datasource ?? ds) }).toEqual({ panel: p.title, datasource: ds, targets: (p.targets ?? []).map(() => ds) });
      expect({ panel: p.title, refIds: new Set((p.targets ?? []).map((t) => t.refId)).size }).toEqual({ panel: p.title, refIds: (p.targets ?? []).length });
    }
  });

  it("lays the panels out on Grafana's 24-column grid without overlaps, with unique ids", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const overlaps: string[] = [];
    for (const [i, a] of d.panels.entries()) {
      expect({ panel: a.title, fits: a.gridPos.x >= 0 && a.gridPos.w > 0 && a.gridPos.x + a.gridPos.w <= 24 }).toEqual({ panel: a.title, fits: true });
      for (const b of d.panels.slice(i + 1)) {
        const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x || a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        if (!apart) overlaps.push(`"${a.title}" and "${b.title}"`);
      }
    }
    expect(overlaps).toEqual([]);
  });

  it("narrows every panel's series to the nodes chosen in $node", () => {
    const unfiltered = dashboardQueries(file, d)
      .filter((q) => !q.where.includes(": variable "))
      .flatMap((q) => {
        const { text, top } = parse(q);
        if (top === undefined) return [];
        const selectors = descendants(top, "VectorSelector").map((v) => selector(v, text));
        return selectors.filter((s) => !s.matchers.some((m) => m.label === "node" && m.op === "=~" && m.value === multiSample)).map((s) => `${q.where}: ${s.metric}`);
      });
    expect(unfiltered).toEqual([]);
  });
});
