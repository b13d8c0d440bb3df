// Integration tier: one real control plane (etcd + kube-apiserver) shared by the tier's files,
// started before and stopped after, also when tests fail. Leftovers of a crashed run are reaped.
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startControlPlane, type ControlPlane } from "./apiserver.js";
import { reapStale } from "./process.js";
import { testEnvDir } from "./tools.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    apiserverUrl: string;
    /** The control plane's etcd (test/harness/etcd.ts). */
    etcdUrl: string;
  }
}

let cp: ControlPlane | undefined;
let runDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const runRoot = path.join(testEnvDir, "run");
  for (const what of reapStale(runRoot)) process.stderr.write(`reaped stale ${what} from a previous run\n`);
  const dir = path.join(runRoot, `integration-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  runDir = dir;
  cp = await startControlPlane({ dir });
  project.provide("kubeconfig", cp.kubeconfig);
  project.provide("apiserverUrl", cp.url);
  project.provide("etcdUrl", cp.etcdUrl);
}

export async function teardown(): Promise<void> {
  await cp?.stop();
  // etcd's data and the certificates: ~64 MiB a run, which piled up run after run.
  if (runDir !== undefined && process.env["KVRF_KEEP_TEST_DIRS"] !== "1") rmSync(runDir, { recursive: true, force: true });
}
