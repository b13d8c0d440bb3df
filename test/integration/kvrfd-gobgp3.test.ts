// kvrfd against Debian's gobgpd 3.10 (apipb.GobgpApi); the steps are in kvrfd-scenario.ts.
import { tool } from "../harness/tools.js";
import { kvrfdScenario } from "./kvrfd-scenario.js";

kvrfdScenario("g3", () => tool("gobgpd3"));
