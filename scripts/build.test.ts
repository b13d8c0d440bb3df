// The kvrfd bundle stays small: what it must not contain is checked on the real entry point, and
// the check itself catches a bundle that pulls client-node in (even behind a lazy import()).
import { build, type BuildOptions } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { common, forbiddenInputs } from "./build.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function meta(input: Pick<BuildOptions, "entryPoints" | "stdin">) {
  const r = await build({ ...common, ...input, outfile: "/dev/null/kvrfd.cjs", write: false, logLevel: "silent", absWorkingDir: root });
  return r.metafile ?? { inputs: {}, outputs: {} };
}

describe("dist/kvrfd contents", () => {
  it("bundles neither client-node, undici nor the full zod", async () => {
    expect(forbiddenInputs(await meta({ entryPoints: [path.join(root, "reconciler/main.ts")] }))).toEqual([]);
  }, 30_000);

  it("flags a bundle that would carry client-node or the full zod", async () => {
    const contents = 'export const later = () => import("@kubernetes/client-node/dist/watch.js");\nexport { z } from "zod";\n';
    const found = forbiddenInputs(await meta({ stdin: { contents, resolveDir: root, sourcefile: "lazy.ts", loader: "ts" } }));
    expect(found.some((f) => f.includes("@kubernetes/client-node") && f.includes("kube-client.ts"))).toBe(true);
    expect(found.some((f) => f.includes("zod/mini"))).toBe(true);
  }, 30_000);
});
