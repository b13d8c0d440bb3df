// kvrfd against Debian's gobgpd 3.10 (apipb.GobgpApi); the steps are in kvrfd-scenario.ts.
import { tool } from "../harness/tools.js";
import { kvrfdScenario } from "./kvrfd-scenario.js";

// The v3 API is the encapsulation's concern only through the Speaker (both forms are covered by
// test/integration/speaker*.test.ts on both daemons): one encapsulation here, the one every
// kernel runs.
kvrfdScenario("g3", () => tool("gobgpd3"), "vxlan");
