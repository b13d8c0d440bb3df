// Prints this kernel's data-plane capabilities (shared/kernel/capabilities.ts) as one
// comma-separated line on stdout, for KVRF_HOST_CAPS (scripts/test probes once and every test
// process, and the vm tier's guest, reads the answer); what is missing goes to stderr, with the
// kernel options that provide it.
import { allCapabilities, describeMissing, probeCapabilities } from "../shared/kernel/capabilities.js";

const report = await probeCapabilities();
const present = allCapabilities.filter((c) => report.results[c].ok);
const missing = allCapabilities.filter((c) => !report.results[c].ok);
process.stdout.write(present.join(",") + "\n");
process.stderr.write(
  `kernel ${report.kernel} (${report.isolation} probe): has ${present.join(", ") || "nothing"}` +
    (missing.length > 0 ? `; lacks ${describeMissing(missing)}` : "") +
    "\n",
);
