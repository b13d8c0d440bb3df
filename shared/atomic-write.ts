// Writing a small state file so that a reader never sees half of it: write a temporary file next
// to it, then rename over it (atomic within a file system). A write that fails — a full or
// read-only state directory — removes its temporary file instead of leaving it behind.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export function writeFileAtomic(file: string, data: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
