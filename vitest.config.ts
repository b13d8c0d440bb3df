// Test tiers, fast to real. `scripts/test` decides which tiers this machine can run and says so.
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
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts"],
          testTimeout: 180_000 * slow,
          hookTimeout: 600_000 * slow,
          fileParallelism: false,
        },
      },
    ],
  },
});
