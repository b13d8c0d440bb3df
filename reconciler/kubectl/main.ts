// `kubectl kvrf`: see and debug VPCs across the fleet. Reads the kvrf objects, Nodes and Pods from
// the API server with the caller's kubeconfig, and each node's debug snapshot from its kvrfd with a
// short-lived token of audience kvrf.dev/kvrfd (TokenRequest for kvrf-system/kvrf-debug), then
// compares desired state, GoBGP and the kernel (model.ts). Built as the single executable
// dist/kubectl-kvrf; put it on PATH and kubectl finds it.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import yargs, { type Argv } from "yargs";
import { bgpInstance, bgpVrfInstance, group, routeTargetClaim, version, vniClaim, type BGPVRFInstance } from "../../shared/api-types.js";
import type { BGPInstance } from "../bgp-instance/bgp-instance.js";
import { debugAudience, debugServiceAccount, debugSnapshotPath, type Snapshot } from "../../shared/debug-snapshot.js";
import { KubeClient, loadKubeAccess } from "../kube/kube-client.js";
import { diffNode, findContainer, findEndpoints, nodeVpcs, trace, vpcKey, type DiffRow, type Endpoint, type World } from "./model.js";
import ipaddr from "ipaddr.js";

const usageError = (m: string): UsageError => new UsageError(m);
class UsageError extends Error {
  override readonly name = "UsageError";
}

interface Globals {
  kubeconfig?: string;
  port: number;
  endpoint: string[];
  token?: string;
  timeout: number;
  output: "text" | "json";
}

interface Claim {
  metadata?: { name?: string };
  spec?: { vpc?: string };
}

class Fleet {
  readonly api: KubeClient;
  private token: Promise<string> | undefined;

  constructor(
    api: KubeClient,
    private readonly g: Globals,
  ) {
    this.api = api;
  }

  async world(): Promise<World & { instances: BGPInstance[] }> {
    const list = async <T>(p: string): Promise<T[]> => (await this.api.request<{ items?: T[] }>("GET", p)).items ?? [];
    const base = `/apis/${group}/${version}`;
    const [vrfs, instances, nodes, rts, vnis] = await Promise.all([
      list<BGPVRFInstance>(`${base}/${bgpVrfInstance.plural}`),
      list<BGPInstance>(`${base}/${bgpInstance.plural}`),
      list<V1Node>("/api/v1/nodes"),
      list<Claim>(`${base}/${routeTargetClaim.plural}`),
      list<Claim>(`${base}/${vniClaim.plural}`),
    ]);
    const index = (cs: Claim[]): Map<string, { vpc?: string }> => new Map(cs.map((c) => [c.metadata?.name ?? "", c.spec ?? {}]));
    const rtIndex = index(rts);
    const vniIndex = index(vnis);
    return { vrfs, instances, nodes, claims: { routeTargetClaim: (n) => rtIndex.get(n), vniClaim: (n) => vniIndex.get(n) } };
  }

  /** A token kvrfd accepts: --token, or one minted now for kvrf-system/kvrf-debug (10 minutes). */
  private debugToken(): Promise<string> {
    if (this.g.token !== undefined) return Promise.resolve(this.g.token);
    const { namespace, name } = debugServiceAccount;
    this.token ??= this.api
      .request<{ status?: { token?: string } }>("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [debugAudience], expirationSeconds: 600 } },
      })
      .then(
        (tr) => {
          if (tr.status?.token === undefined) throw new Error("the API server returned no token");
          return tr.status.token;
        },
        (err: unknown) => {
          throw new Error(`cannot mint a debug token for ${namespace}/${name} (needs create serviceaccounts/token on it, Role kvrf-debug-token): ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    return this.token;
  }

  endpoint(node: V1Node | undefined, name: string): string {
    const given = this.g.endpoint.find((e) => e.startsWith(`${name}=`));
    if (given !== undefined) return given.slice(name.length + 1).replace(/\/+$/, "");
    const addr = node?.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    if (addr === undefined) throw new Error(`node ${name} has no InternalIP; pass --endpoint ${name}=http://ADDRESS:PORT`);
    return `http://${addr.includes(":") ? `[${addr}]` : addr}:${this.g.port}`;
  }

  async snapshot(node: V1Node | undefined, name: string): Promise<Snapshot> {
    const base = this.endpoint(node, name);
    const token = await this.debugToken();
    const url = new URL(debugSnapshotPath, `${base}/`);
    return new Promise((resolve, reject) => {
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(
        url,
        { method: "GET", headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, signal: AbortSignal.timeout(this.g.timeout * 1000) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            if (res.statusCode !== 200) return reject(new Error(`${url.href}: HTTP ${res.statusCode ?? "?"}: ${body.trim()}`));
            try {
              resolve(JSON.parse(body) as Snapshot);
            } catch (err) {
              reject(new Error(`${url.href}: not JSON: ${(err as Error).message}`));
            }
          });
        },
      );
      req.on("error", (err) => reject(new Error(`${url.href}: ${err.message}`)));
      req.end();
    });
  }

  /** Snapshots of `names`, read in parallel; a node that cannot be read gives its error. */
  async snapshots(world: { nodes: V1Node[] }, names: readonly string[]): Promise<Map<string, Snapshot | Error>> {
    const byName = new Map(world.nodes.map((n) => [n.metadata?.name ?? "", n]));
    const got = await Promise.all(names.map((n) => this.snapshot(byName.get(n), n).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))));
    return new Map(names.map((n, i) => [n, got[i] as Snapshot | Error]));
  }
}

// ---------------------------------------------------------------------------------------------
// Output

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function kvrfNodes(world: World & { instances: BGPInstance[] }): string[] {
  const names = new Set<string>();
  for (const i of world.instances) for (const n of i.status?.nodes ?? []) names.add(n.nodeName);
  for (const o of world.vrfs) names.add(o.spec.nodeName);
  return [...names].sort();
}

function diffText(node: string, rows: DiffRow[]): string {
  const body = table(
    ["VPC", "KIND", "ITEM", "ORIGIN", "OBJECTS", "GOBGP", "KERNEL"],
    rows.map((r) => [r.vpc, r.kind, r.item, r.origin, r.objects, r.gobgp, r.kernel]),
  );
  const broken = rows.filter((r) => !r.ok);
  const tail = broken.length === 0 ? `${node}: no drift (${rows.length} lines)` : [`${node}: ${broken.length} of ${rows.length} lines drift:`, ...broken.map((r) => `  ${r.vpc} ${r.kind} ${r.item}: ${r.broken ?? "?"}: ${r.reason ?? ""}`)].join("\n");
  return `${body}\n\n${tail}`;
}

// ---------------------------------------------------------------------------------------------
// Commands

type Out = (s: string) => void;

async function cmdStatus(fleet: Fleet, g: Globals, node: string | undefined, out: Out): Promise<number> {
  const world = await fleet.world();
  const names = kvrfNodes(world).filter((n) => node === undefined || n === node);
  if (node !== undefined && names.length === 0) throw usageError(`node ${node} runs no kvrf (no BGPInstance status entry, no BGPVRFInstance)`);
  const snaps = await fleet.snapshots(world, names);
  const rows: string[][] = [];
  const json: unknown[] = [];
  let bad = 0;
  for (const n of names) {
    const entry = world.instances.flatMap((i) => (i.status?.nodes ?? []).filter((e) => e.nodeName === n).map((e) => ({ instance: i.metadata.name ?? "", e })))[0];
    const s = snaps.get(n);
    const snap = s instanceof Error ? undefined : s;
    const notReady = snap === undefined ? [] : snap.ready.filter((c) => !c.ok).map((c) => c.detail);
    const drift = snap === undefined ? [] : diffNode(world, n, snap).filter((r) => !r.ok);
    const peers = snap?.gobgp.peers ?? [];
    const established = peers.filter((p) => p.state === "established").length;
    const vpcs = nodeVpcs(world, n);
    if (snap === undefined || notReady.length > 0 || drift.length > 0) bad++;
    const k = snap?.kernel ?? entry?.e.kernel;
    rows.push([
      n,
      snap === undefined ? "unknown" : notReady.length === 0 ? "yes" : "NO",
      entry?.e.routerID ?? snap?.gobgp.routerId ?? "-",
      snap === undefined ? `${entry?.e.establishedPeers ?? "?"}/${entry?.e.peers?.length ?? "?"}` : `${established}/${peers.length}`,
      k === undefined ? "-" : `${k.release} ${k.mode}${k.missing !== undefined && k.missing.length > 0 ? ` lacks ${k.missing.join(",")}` : ""}`,
      String(vpcs.length),
      snap === undefined ? "-" : String(snap.gobgp.paths.filter((p) => p.local).length),
      snap === undefined ? "-" : String(snap.linux.routes.filter((r) => r.protocol === 241).length),
      snap === undefined ? "-" : drift.length === 0 ? "none" : `${drift.length} (kubectl kvrf diff --node ${n})`,
      s instanceof Error ? `debug snapshot: ${s.message}` : notReady.join("; "),
    ]);
    json.push({ node: n, instance: entry?.instance, status: entry?.e, snapshot: s instanceof Error ? { error: s.message } : { ready: snap?.ready, kernel: snap?.kernel, peers }, vpcs: vpcs.map((v) => v.vpc), drift });
    if (g.output === "text" && snap !== undefined && peers.length > 0 && node !== undefined) {
      // One node asked for: its sessions too.
      rows.push(...peers.map((p) => ["", "", `peer ${p.address}`, p.state, `AS ${p.asn}`, p.families.join(","), "", "", "", ""]));
    }
  }
  out(g.output === "json" ? JSON.stringify(json, null, 2) : table(["NODE", "READY", "ROUTER-ID", "BGP", "KERNEL", "VPCS", "LOCAL", "REMOTE", "DRIFT", "NOT READY"], rows));
  return bad === 0 ? 0 : 1;
}

async function cmdVpc(fleet: Fleet, g: Globals, id: string, out: Out): Promise<number> {
  let vpc: string;
  try {
    vpc = vpcKey(id);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const world = await fleet.world();
  const objs = world.vrfs.filter((o) => {
    try {
      return vpcKey(o.spec.vpc) === vpc;
    } catch {
      return false;
    }
  });
  if (objs.length === 0) throw usageError(`no BGPVRFInstance of VPC ${vpc}: no node hosts it`);
  const names = [...new Set(objs.map((o) => o.spec.nodeName))].sort();
  const snaps = await fleet.snapshots(world, names);
  const lines: string[] = [];
  const first = objs[0] as BGPVRFInstance;
  lines.push(
    `VPC ${vpc}: RD ${first.spec.routeDistinguisher}, RT ${first.spec.importRouteTargets.join(",")}, table ${first.spec.table}, ${first.spec.encapsulation ?? "srv6"}${first.spec.vni !== undefined ? `, VNI ${first.spec.vni}` : ""}`,
  );
  const rows: string[][] = [];
  const drift: string[] = [];
  const json: unknown[] = [];
  for (const n of names) {
    const v = nodeVpcs(world, n).find((x) => x.vpc === vpc);
    const obj = objs.find((o) => o.spec.nodeName === n) as BGPVRFInstance;
    const atts = (obj.spec.attachments ?? []).map((a) => `${a.prefixes.join(",")}${a.sid !== undefined ? ` SID ${a.sid}` : ""}`);
    const s = snaps.get(n);
    const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
    let adv = "-";
    let imp = "-";
    let kern = "-";
    let rowsOf: DiffRow[] = [];
    if (s instanceof Error) drift.push(`${n}: cannot read its debug snapshot: ${s.message}`);
    else if (s !== undefined) {
      rowsOf = diffNode(world, n, s).filter((r) => r.vpc === vpc);
      const local = rowsOf.filter((r) => r.kind === "local");
      const remote = rowsOf.filter((r) => r.kind === "remote");
      adv = `${local.filter((r) => r.broken !== "gobgp").length}/${local.length}`;
      imp = `${remote.filter((r) => r.broken !== "gobgp").length}/${remote.length}`;
      kern = `${remote.filter((r) => r.ok).length}/${remote.length}`;
      for (const r of rowsOf.filter((x) => !x.ok)) drift.push(`${n}: ${r.kind} ${r.item}${r.origin !== n ? ` (of ${r.origin})` : ""}: ${r.broken ?? "?"}: ${r.reason ?? ""}`);
    }
    if (v?.refused !== undefined && !drift.some((d) => d.startsWith(`${n}: vrf`))) drift.push(`${n}: not programmed: ${v.refused}`);
    rows.push([n, obj.spec.routeDistinguisher, obj.spec.vtep ?? "-", atts.join("; ") || "-", adv, imp, kern, ready === undefined ? "-" : `${ready.status}${ready.reason !== undefined ? ` ${ready.reason}` : ""}`]);
    json.push({ node: n, object: obj.metadata.name, attachments: obj.spec.attachments ?? [], ready, lines: rowsOf, refused: v?.refused });
  }
  if (g.output === "json") {
    out(JSON.stringify({ vpc, nodes: json, drift }, null, 2));
    return drift.length === 0 ? 0 : 1;
  }
  lines.push(table(["NODE", "RD", "VTEP", "ATTACHMENTS", "ADVERTISED", "IMPORTED", "KERNEL", "READY"], rows));
  lines.push(drift.length === 0 ? "no drift" : ["drift:", ...drift.map((d) => `  ${d}`)].join("\n"));
  out(lines.join("\n"));
  return drift.length === 0 ? 0 : 1;
}

async function cmdDiff(fleet: Fleet, g: Globals, node: string, out: Out): Promise<number> {
  const world = await fleet.world();
  const snaps = await fleet.snapshots(world, [node]);
  const s = snaps.get(node);
  if (s instanceof Error || s === undefined) throw new Error(`cannot read ${node}'s debug snapshot: ${s?.message ?? "?"}`);
  const rows = diffNode(world, node, s);
  out(g.output === "json" ? JSON.stringify(rows, null, 2) : diffText(node, rows));
  return rows.every((r) => r.ok) ? 0 : 1;
}

/** A pod (namespace/name or name), a container ID (container:<id>), or an address (with --vpc). */
async function resolve(fleet: Fleet, world: World, what: string, namespace: string, vpc: string | undefined, family?: 4 | 6): Promise<Endpoint | { address: string }> {
  if (what.startsWith("container:")) {
    const found = findContainer(world, what.slice("container:".length));
    if (found.length !== 1) throw usageError(`${what}: ${found.length === 0 ? "no attachment of that container" : `${found.length} attachments match; give more of the ID`}`);
    return found[0] as Endpoint;
  }
  if (ipaddr.isValid(what)) {
    const found = findEndpoints(world, what, vpc);
    const vpcs = new Set(found.map((f) => f.vpc));
    if (vpcs.size > 1) throw usageError(`${what} is a pod address in VPCs ${[...vpcs].join(", ")}: pass --vpc`);
    return found[0] ?? { address: what };
  }
  const [ns, name] = what.includes("/") ? (what.split("/", 2) as [string, string]) : [namespace, what];
  let pod: V1Pod;
  try {
    pod = await fleet.api.request<V1Pod>("GET", `/api/v1/namespaces/${ns}/pods/${name}`);
  } catch (err) {
    throw usageError(`pod ${ns}/${name}: ${err instanceof Error ? err.message : String(err)} (lab pods have no Pod object: use container:<id> or an address with --vpc)`);
  }
  const ips = (pod.status?.podIPs ?? []).map((p) => p.ip).filter((ip): ip is string => ip !== undefined);
  const ordered = family === undefined ? ips : [...ips.filter((ip) => (ip.includes(":") ? 6 : 4) === family), ...ips];
  for (const ip of ordered) {
    const found = findEndpoints(world, ip, vpc).filter((e) => e.node === pod.spec?.nodeName);
    if (found.length > 0) return found[0] as Endpoint;
  }
  throw usageError(`pod ${ns}/${name} (${ips.join(", ") || "no IP"}) has no kvrf attachment on ${pod.spec?.nodeName ?? "any node"}`);
}

async function cmdTrace(fleet: Fleet, g: Globals, from: string, to: string, namespace: string, vpc: string | undefined, out: Out): Promise<number> {
  const world = await fleet.world();
  const src = await resolve(fleet, world, from, namespace, vpc);
  if (!("node" in src)) throw usageError(`${from} is not the address of any pod${vpc !== undefined ? ` of VPC ${vpc}` : ""}: the source must be a pod`);
  const family = src.address.includes(":") ? 6 : 4;
  const dst = await resolve(fleet, world, to, namespace, src.vpc, family);
  const dstEndpoint = "node" in dst ? dst : undefined;
  if (dstEndpoint !== undefined && dstEndpoint.vpc !== src.vpc) {
    const hops = [{ node: src.node, step: "source", ok: false, detail: `${from} is in VPC ${src.vpc} and ${to} in VPC ${dstEndpoint.vpc}: VPCs are isolated, no path exists by design` }];
    out(g.output === "json" ? JSON.stringify(hops, null, 2) : hops.map((h) => `✗ ${h.node} ${h.step}: ${h.detail}`).join("\n"));
    return 1;
  }
  const nodes = [...new Set([src.node, ...(dstEndpoint !== undefined ? [dstEndpoint.node] : []), ...world.vrfs.filter((o) => o.spec.nodeName !== src.node).map((o) => o.spec.nodeName)])];
  // The destination node is known for a pod; for a bare address, whichever node the route points at.
  const snaps = await fleet.snapshots(world, dstEndpoint !== undefined ? [...new Set([src.node, dstEndpoint.node])] : nodes);
  const hops = trace(world, snaps, src, dstEndpoint?.address ?? (dst).address, dstEndpoint);
  if (g.output === "json") out(JSON.stringify(hops, null, 2));
  else out(hops.map((h, i) => `${h.ok ? "✓" : "✗"} ${i + 1}. ${h.node.padEnd(12)} ${h.step.padEnd(8)} ${h.detail}`).join("\n"));
  return hops.every((h) => h.ok) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

export async function main(argv: readonly string[], out: Out = (s) => process.stdout.write(`${s}\n`), err: Out = (s) => process.stderr.write(`${s}\n`)): Promise<number> {
  let code = 0;
  let fleet: Fleet | undefined;
  const run = (fn: (f: Fleet, g: Globals) => Promise<number>) => async (argv: unknown): Promise<void> => {
    const args = argv as Globals & Record<string, unknown>;
    const access = await loadKubeAccess(args.kubeconfig).catch((e: unknown) => {
      throw usageError(`cannot use the kubeconfig: ${e instanceof Error ? e.message : String(e)}`);
    });
    fleet = new Fleet(new KubeClient(access, args.timeout * 1000, 30_000, "kubectl-kvrf"), args);
    code = await fn(fleet, args);
  };
  try {
    await yargs(argv)
      .scriptName("kubectl kvrf")
      .usage("$0 <command>: see and debug kvrf VPCs across the fleet (objects vs GoBGP vs kernel)")
      .option("kubeconfig", { type: "string", default: process.env["KUBECONFIG"], describe: "Kubeconfig (default $KUBECONFIG, then ~/.kube/config)" })
      .option("port", { type: "number", default: 9477, describe: "kvrfd's health/metrics port on each node's InternalIP" })
      .option("endpoint", { type: "string", array: true, default: [] as string[], describe: "NODE=URL: where NODE's kvrfd answers, instead of http://InternalIP:port" })
      .option("token", { type: "string", describe: `A token of audience ${debugAudience} to send to kvrfd, instead of minting one for ${debugServiceAccount.namespace}/${debugServiceAccount.name}` })
      .option("timeout", { type: "number", default: 10, describe: "Seconds per request" })
      .option("output", { alias: "o", choices: ["text", "json"] as const, default: "text" as const, describe: "Output format" })
      .command(
        "status",
        "Per node: readiness, BGP sessions, kernel and mode, VPCs, local and remote prefix counts, drift",
        (y: Argv) => y.option("node", { type: "string", describe: "Only this node (and list its BGP sessions)" }),
        run((f, g) => cmdStatus(f, g, (g as Globals & { node?: string }).node, out)),
      )
      .command(
        "vpc <id>",
        "A VPC on every node hosting it: RD/RT/VNI, attachments, what each node advertises, imports and installs, drift",
        (y: Argv) => y.positional("id", { type: "string", demandOption: true, describe: "VPC ID (hex)" }),
        run((f, g) => cmdVpc(f, g, (g as Globals & { id: string }).id, out)),
      )
      .command(
        "diff",
        "One node, line by line: desired (objects) vs GoBGP vs kernel routes; exit 1 when anything drifts",
        (y: Argv) => y.option("node", { type: "string", demandOption: true, describe: "Node name" }),
        run((f, g) => cmdDiff(f, g, (g as Globals & { node: string }).node, out)),
      )
      .command(
        "trace <from> <to>",
        "The path a packet takes from a pod to a pod or address (VPC, table lookup, encapsulation, remote decapsulation, delivery) and the first hop where it breaks",
        (y: Argv) =>
          y
            .positional("from", { type: "string", demandOption: true, describe: "Pod (NAMESPACE/NAME or NAME), container:<ID>, or a pod address (with --vpc when ambiguous)" })
            .positional("to", { type: "string", demandOption: true, describe: "Pod, container:<ID>, or an address" })
            .option("namespace", { alias: "n", type: "string", default: "default", describe: "Namespace of pod names without one" })
            .option("vpc", { type: "string", describe: "VPC of an address given as source" }),
        run((f, g) => {
          const a = g as Globals & { from: string; to: string; namespace: string; vpc?: string };
          return cmdTrace(f, g, a.from, a.to, a.namespace, a.vpc, out);
        }),
      )
      .demandCommand(1, "Name a command: status, vpc, diff or trace")
      .strict()
      .help()
      .version(process.env["KVRF_VERSION"] ?? "0.1.0")
      .fail((msg, e) => {
        throw e ?? usageError(msg);
      })
      .parseAsync();
  } catch (e) {
    err(`kubectl kvrf: ${e instanceof Error ? e.message : String(e)}`);
    code = 2;
  } finally {
    fleet?.api.close();
  }
  return code;
}

