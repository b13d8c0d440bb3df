// FRR process management lives in scripts/netns-lab/frr.ts (the lab's FRR route reflector uses it
// too, and scripts do not import from test/); the harness keeps its import path.
export * from "../../scripts/netns-lab/frr.js";
