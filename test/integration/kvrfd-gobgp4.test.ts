// kvrfd against gobgpd 4.x (api.GoBgpService); the steps are in kvrfd-scenario.ts.
import { tool } from "../harness/tools.js";
import { kvrfdScenario } from "./kvrfd-scenario.js";

// VXLAN on every kernel, every step; SRv6 where the kernel has it (the vm tier on this project's CI
// machines), the steps that depend on the encapsulation.
kvrfdScenario("g4", () => tool("gobgpd4"), "vxlan");
kvrfdScenario("g4s", () => tool("gobgpd4"), "srv6", false);
