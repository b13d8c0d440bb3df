// Writes into the host's CNI directories. The container runtime reads them at any moment (it may
// exec the plugin or load a conflist while we write), so every file appears whole or not at all:
// written to a hidden temporary name in the same directory, flushed, then renamed over the target.
// A binary being replaced this way keeps running in the processes that have it open.
import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";

export type WriteResult = "written" | "unchanged";

async function currentContent(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

async function currentMode(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/**
 * Replaces `file` with `data` (mode `mode`) atomically; leaves it alone when it already holds
 * exactly that, so an unchanged conflist does not make the runtime reload its networks.
 */
export async function writeAtomic(file: string, data: string | Buffer, mode: number): Promise<WriteResult> {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const existing = await currentContent(file);
  if (existing !== undefined && existing.equals(bytes) && (await currentMode(file)) === mode) return "unchanged";
  const dir = path.dirname(file);
  // Hidden and without a .conf/.conflist/.json extension: libcni never loads a half-written file.
  const tmp = path.join(dir, `.${path.basename(file)}.kvrf-tmp-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(bytes);
    await fh.chmod(mode); // the umask may have narrowed the mode given to open
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename itself is durable only once the directory is flushed.
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
  return "written";
}
