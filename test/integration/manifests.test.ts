// The installation as operators apply it: every kustomization under manifests/ (the root and each
// overlay) passes `kubectl apply --server-side --dry-run=server -k` against the real API server, and
// the rendered DaemonSet keeps the security settings issue 6 asks for. Monitoring objects need the
// Prometheus Operator's CRDs, which this API server does not have: minimal stand-ins (schema-less)
// let the dry run resolve their kinds, and their content is checked structurally here instead.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { loadAll } from "js-yaml";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { repoRoot, tool } from "../harness/tools.js";

const run = promisify(execFile);
const manifests = path.join(repoRoot, "manifests");
const overlays = ["", ...readdirSync(path.join(manifests, "overlays")).map((d) => `overlays/${d}`)];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  restartPolicy?: string;
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type: string };
  };
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number }; exec?: { command: string[] } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}

interface PodSpec {
  hostNetwork?: boolean;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: { seccompProfile?: { type: string } };
  initContainers?: Container[];
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string }; emptyDir?: object; projected?: object }[];
}

const kubectl = async (...args: string[]): Promise<string> =>
  (await run(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), ...args], { maxBuffer: 16 << 20 })).stdout;

const monitoringCrd = (plural: string, kind: string): object => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${plural}.monitoring.coreos.com` },
  spec: {
    group: "monitoring.coreos.com",
    scope: "Namespaced",
    names: { plural, kind, singular: kind.toLowerCase(), listKind: `${kind}List` },
    versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }],
  },
});

const env = (c: Container | undefined, name: string): string | undefined => c?.env?.find((e) => e.name === name)?.value;

describe("manifests", () => {
  const rendered = new Map<string, K8sObject[]>();

  beforeAll(async () => {
    for (const o of overlays) {
      rendered.set(o, loadAll(await kubectl("kustomize", path.join(manifests, o))) as K8sObject[]);
    }
    // A dry run does not create the namespace its namespaced objects live in.
    await kubectl("apply", "--server-side", "--force-conflicts", "-f", path.join(manifests, "base/namespace.yaml"));
    const stubs = JSON.stringify({ apiVersion: "v1", kind: "List", items: [monitoringCrd("servicemonitors", "ServiceMonitor"), monitoringCrd("prometheusrules", "PrometheusRule")] });
    const apply = execFile(tool("kubectl"), ["--kubeconfig", inject("kubeconfig"), "apply", "--server-side", "-f", "-"]);
    apply.stdin?.end(stubs);
    await new Promise<void>((resolve, reject) => apply.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`applying monitoring CRD stand-ins: exit ${code}`)))));
    await kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com");
  });

  it.each(overlays)("kubectl apply --server-side --dry-run=server -k manifests/%s", async (o) => {
    const out = await kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", path.join(manifests, o));
    const lines = out.trim().split("\n");
    expect(lines.length).toBe(rendered.get(o)?.length);
    for (const l of lines) expect(l).toMatch(/ serverside-applied \(server dry run\)$/);
  });

  describe.each(overlays)("the DaemonSet of manifests/%s", (o) => {
    const objects = (): K8sObject[] => rendered.get(o) ?? [];
    const ds = (): K8sObject & { spec: { updateStrategy: { type: string; rollingUpdate?: { maxUnavailable?: number } }; template: { spec: PodSpec } } } => {
      const d = objects().filter((x) => x.kind === "DaemonSet");
      expect(d.map((x) => x.metadata.name)).toEqual(["kvrf-node"]);
      return d[0] as ReturnType<typeof ds>;
    };
    const pod = (): PodSpec => ds().spec.template.spec;
    const all = (): Container[] => [...(pod().initContainers ?? []), ...pod().containers];
    const byName = (n: string): Container | undefined => all().find((c) => c.name === n);

    it("runs on the host network, never privileged, seccomp RuntimeDefault, as the kvrfd identity", () => {
      expect(pod()).toMatchObject({ hostNetwork: true, serviceAccountName: "kvrfd", automountServiceAccountToken: false, securityContext: { seccompProfile: { type: "RuntimeDefault" } } });
      expect(all().map((c) => c.name).sort()).toEqual(["cni-token", "gobgpd", "install-cni", "kvrfd"]);
    });

    it("gives each container only the capabilities it needs, a read-only root and no escalation", () => {
      const needs: Record<string, string[]> = { kvrfd: ["NET_ADMIN"], gobgpd: ["NET_BIND_SERVICE"], "install-cni": [], "cni-token": [] };
      for (const c of all()) {
        const sc = c.securityContext;
        expect({ container: c.name, privileged: sc?.privileged ?? false, escalation: sc?.allowPrivilegeEscalation, readOnlyRoot: sc?.readOnlyRootFilesystem, drop: sc?.capabilities?.drop, add: sc?.capabilities?.add ?? [] }).toEqual({
          container: c.name,
          privileged: false,
          escalation: false,
          readOnlyRoot: true,
          drop: ["ALL"],
          add: needs[c.name],
        });
      }
    });

    it("sets CPU and memory requests and limits on every container", () => {
      for (const c of all()) {
        expect({ container: c.name, requests: Object.keys(c.resources?.requests ?? {}).sort(), limits: Object.keys(c.resources?.limits ?? {}).sort() }).toEqual({
          container: c.name,
          requests: ["cpu", "memory"],
          limits: ["cpu", "memory"],
        });
      }
    });

    it("probes kvrfd's /healthz and /readyz on the port kvrfd listens on", () => {
      const k = byName("kvrfd");
      const port = k?.ports?.find((p) => p.name === "metrics");
      expect(port?.containerPort).toBe(Number(env(k, "KVRFD_HEALTH_PORT")));
      expect(k?.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "metrics" });
      expect(k?.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "metrics" });
    });

    it("shares gobgpd's API only as a unix socket in an in-memory emptyDir", () => {
      const k = byName("kvrfd");
      const g = byName("gobgpd");
      const sock = env(k, "KVRFD_GOBGP_SOCKET") ?? "";
      expect(env(g, "GOBGPD_SOCKET")).toBe(sock);
      const mount = (c: Container | undefined): { name: string; mountPath: string } | undefined => c?.volumeMounts?.find((m) => m.mountPath === path.dirname(sock));
      expect(mount(k)?.name).toBeDefined();
      expect(mount(g)?.name).toBe(mount(k)?.name);
      expect(pod().volumes.find((v) => v.name === mount(k)?.name)).toMatchObject({ emptyDir: { medium: "Memory" } });
      expect(g?.ports ?? []).toEqual([]);
      // gobgpd gets no API credentials: it never talks to the API server.
      expect(g?.volumeMounts?.map((m) => m.mountPath)).toEqual([path.dirname(sock)]);
    });

    it("drains BGP in gobgpd's preStop within the grace period, and updates one node at a time", () => {
      const g = byName("gobgpd");
      expect(g?.lifecycle?.preStop?.exec?.command).toEqual(["/usr/local/bin/gobgp-drain"]);
      // gobgpd 4 cannot start BGP again after StopBgp: kubelet restarts it (gobgp-alive.test.ts).
      expect(g?.livenessProbe?.exec?.command).toEqual(["/usr/local/bin/gobgp-alive"]);
      // kvrfd's hook stops BGP without a NOTIFICATION when graceful restart is negotiated; it must
      // reach gobgpd's socket, which gobgp-drain waits on.
      const k = byName("kvrfd");
      expect(k?.lifecycle?.preStop?.exec?.command).toEqual(["node", "/opt/kvrf/kvrfd", "prestop"]);
      expect(env(k, "KVRFD_GOBGP_SOCKET")).toBe(env(g, "GOBGPD_SOCKET"));
      expect(pod().terminationGracePeriodSeconds).toBeGreaterThan(Number(env(g, "KVRF_DRAIN_SECONDS")) + 5);
      expect(ds().spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    });

    it("installs the plugin from an init container into the host's CNI directories, then keeps its token fresh", () => {
      const init = pod().initContainers ?? [];
      expect(init.map((c) => [c.name, c.restartPolicy ?? "none", c.command?.slice(-1)[0]])).toEqual([
        ["install-cni", "none", "install"],
        ["cni-token", "Always", "refresh-token"],
      ]);
      const hostPaths = Object.fromEntries(pod().volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath?.path]));
      const installMounts = Object.fromEntries((init[0]?.volumeMounts ?? []).map((m) => [m.mountPath, hostPaths[m.name]]));
      expect(installMounts).toMatchObject({ [env(init[0], "KVRF_CNI_BIN_DIR") ?? "?"]: "/opt/cni/bin", [env(init[0], "KVRF_CNI_CONF_DIR") ?? "?"]: "/etc/cni/net.d" });
      expect(env(init[0], "KVRF_CNI_HOST_CONF_DIR")).toBe("/etc/cni/net.d");
    });

    it("runs what the images contain", () => {
      const kvrfImage = readFileSync(path.join(repoRoot, "images/kvrf/Dockerfile"), "utf8");
      for (const c of ["install-cni", "cni-token", "kvrfd"]) {
        const script = byName(c)?.command?.[1] ?? "";
        expect(kvrfImage).toContain(`/src/dist/${path.basename(script)}`);
        expect(script.startsWith("/opt/kvrf/")).toBe(true);
      }
      expect(readdirSync(path.join(repoRoot, "images/gobgpd"))).toEqual(expect.arrayContaining(["gobgp-drain", "gobgp-alive", "gobgpd-entrypoint", "Dockerfile"]));
    });

    it("keeps the identities and namespaces the admission policies name", () => {
      const role = objects().find((x) => x.kind === "Role" && x.metadata.name === "kvrfd-cni-token") as K8sObject & { rules: { resourceNames: string[] }[] };
      expect(role.rules[0]?.resourceNames).toEqual(["kvrf-cni"]);
      const sas = objects().filter((x) => x.kind === "ServiceAccount").map((x) => `${x.metadata.namespace}/${x.metadata.name}`);
      // kvrf-debug: the identity of `kubectl kvrf`'s audience-bound tokens (rbac/debug.yaml).
      expect(sas.sort()).toEqual(["kvrf-system/kvrf-cni", "kvrf-system/kvrf-debug", "kvrf-system/kvrfd"]);
      const mint = objects().find((x) => x.kind === "Role" && x.metadata.name === "kvrf-debug-token") as K8sObject & { rules: { resources: string[]; resourceNames: string[]; verbs: string[] }[] };
      expect(mint.rules).toEqual([{ apiGroups: [""], resources: ["serviceaccounts/token"], resourceNames: ["kvrf-debug"], verbs: ["create"] }]);
      const placed = objects()
        .filter((x) => x.metadata.namespace !== undefined)
        .map((x) => `${x.metadata.namespace}`);
      expect(new Set(placed)).toEqual(new Set(["kvrf-system", "default"]));
      const inDefault = objects().filter((x) => x.metadata.namespace === "default").map((x) => `${x.kind}/${x.metadata.name}`);
      expect(inDefault.sort()).toEqual(["Role/kvrfd-events", "RoleBinding/kvrfd-events"]);
    });
  });

  describe("monitoring", () => {
    const objects = (): K8sObject[] => rendered.get("overlays/monitoring") ?? [];
    const one = <T>(kind: string): K8sObject & T => {
      const found = objects().filter((x) => x.kind === kind);
      expect(found.length).toBe(1);
      return found[0] as K8sObject & T;
    };

    it("scrapes kvrfd's metrics port through a Service that selects the DaemonSet's pods", () => {
      const ds = one<{ spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }>("DaemonSet");
      const svc = one<{ spec: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] } }>("Service");
      const sm = one<{ spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: { matchNames: string[] }; endpoints: { port: string; path: string }[] } }>("ServiceMonitor");
      expect(ds.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      const kvrfdPorts = ds.spec.template.spec.containers.find((c) => c.name === "kvrfd")?.ports?.map((p) => p.name);
      expect(kvrfdPorts).toContain(svc.spec.ports[0]?.targetPort);
      expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
      expect(sm.spec.namespaceSelector.matchNames).toEqual([svc.metadata.namespace]);
      expect(sm.spec.endpoints.map((e) => [e.port, e.path])).toEqual([[svc.spec.ports[0]?.name, "/metrics"]]);
    });

    it("alerts on BGP peers down, VRFs not ready and reconcile errors, using kvrfd's metrics", () => {
      const rule = one<{ spec: { groups: { rules: { alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string } }[] }[] } }>("PrometheusRule");
      const rules = rule.spec.groups.flatMap((g) => g.rules);
      expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(["KvrfBGPPeerDown", "KvrfVRFNotReady", "KvrfReconcileErrors"]));
      for (const r of rules) {
        expect({ alert: r.alert, for: /^\d+[smh]$/.test(r.for), severity: ["warning", "critical"].includes(r.labels.severity), summary: r.annotations.summary.length > 0 }).toEqual({
          alert: r.alert,
          for: true,
          severity: true,
          summary: true,
        });
      }
      // Every metric an alert uses must be one kvrfd exports (reconciler/metrics.ts), or one
      // requested from kvrfd and listed here until it lands.
      const exported = new Set([...readFileSync(path.join(repoRoot, "reconciler/metrics.ts"), "utf8").matchAll(/name: "(kvrfd_\w+)"/g)].map((m) => m[1]));
      const requested = new Set(["kvrfd_vrfs_not_ready"]);
      const used = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\b(kvrfd_\w+)/g)].map((m) => m[1] ?? "")));
      expect([...used].filter((m) => !exported.has(m) && !requested.has(m))).toEqual([]);
    });
  });
});
