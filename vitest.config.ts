// Test tiers, fast to real. `scripts/test` decides which tiers this machine can run and says so.
import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// In the vm tier's guest (test/harness/vm.ts) the CPU is emulated: the same work takes several
// times longer than on the host, so every timeout stretches with it (KVRF_TIME_SCALE, set by
// scripts/vm/tier.ts; tests read it as `timeScale` from test/harness/needs.ts).
const slow = Number(process.env["KVRF_TIME_SCALE"] ?? "1") || 1;
// There the integration tier uses the host's control plane (test/harness/vm-apiserver.ts), which
// scripts/vm/tier.ts starts: under emulation one of its own would cost minutes.
const integrationSetup = process.env["KVRF_VM_KUBECONFIG"] !== undefined ? "test/harness/vm-apiserver.ts" : "test/harness/global-integration.ts";

export default defineConfig({
  test: {
    // vitest's default is one worker fewer than the CPUs: on a 2-CPU machine one, and then it runs
    // every file of every project one after another (its groupSpecs puts projects with one worker
    // into its sequential group). The unit, kernel and integration files mostly wait on processes
    // and the network, and run two at a time in the vm tier's guest already: at least two here.
    // (The lab and cluster projects stay one file at a time: fileParallelism false below.)
    maxWorkers: Math.max(2, availableParallelism()),
    projects: [
      {
        test: {
          name: "unit",
          include: ["{cni,reconciler,shared,scripts}/**/*.test.ts", "test/unit/**/*.test.ts", "test/harness/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "kernel",
          include: ["test/kernel/**/*.test.ts"],
          testTimeout: 30_000 * slow,
          hookTimeout: 30_000 * slow,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: [integrationSetup],
          testTimeout: 60_000 * slow,
          hookTimeout: 120_000 * slow,
        },
      },
      // The lab and cluster tiers share one lab (scripts/netns-lab): one file at a time in each
      // project, and lab-session.ts holds the lab lock around every file, so a file of one never
      // runs its lab while a file of the other (or of another vitest run) has one up. Vitest puts
      // files of projects with fileParallelism false into one group of its own that runs after
      // all the others, one file at a time; the lock does not rely on that.
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts"],
          setupFiles: ["test/harness/lab-session.ts"],
          testTimeout: 180_000 * slow,
          hookTimeout: 600_000 * slow,
          fileParallelism: false,
        },
      },
      // kvrf under kubelet + containerd on the lab's three workers (scripts/lab up --kubelet).
      {
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          setupFiles: ["test/harness/lab-session.ts"],
          testTimeout: 180_000 * slow,
          hookTimeout: 600_000 * slow,
          fileParallelism: false,
        },
      },
    ],
  },
});
