// Writes a benchmark's table into its own section of docs/benchmarks.md, between
// <!-- bench:NAME --> and <!-- /bench:NAME --> markers, leaving the other sections alone.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export function writeSection(repoRoot: string, name: string, markdown: string): string {
  const file = path.join(repoRoot, "docs/benchmarks.md");
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n\nWritten by the scripts in `scripts/bench-*.ts`; each section says how it was measured.\n";
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
  return file;
}
