// kvrfd against gobgpd 4.x (api.GoBgpService); the steps are in kvrfd-scenario.ts.
import { tool } from "../harness/tools.js";
import { kvrfdScenario } from "./kvrfd-scenario.js";

kvrfdScenario("g4", () => tool("gobgpd4"));
