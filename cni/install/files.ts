// Writes into the host's CNI directories. The container runtime reads them at any moment (it may
// exec the plugin or load a conflist while we write), so every file appears whole or not at all:
// written to a hidden temporary name in the same directory, flushed, then renamed over the target.
// A binary being replaced this way keeps running in the processes that have it open.
import { randomBytes } from "node:crypto";
import { copyFile, open, readFile, rename, rm, stat } from "node:fs/promises";
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
  await replaceWith(file, async (tmp) => {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(bytes);
      await fh.chmod(mode); // the umask may have narrowed the mode given to open
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
  return "written";
}

/**
 * Makes the new content with `fill` under a temporary name beside `file`, renames it over `file`,
 * and flushes the directory; the temporary file never outlives a failure.
 */
async function replaceWith(file: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const dir = path.dirname(file);
  // Hidden and without a .conf/.conflist/.json extension: libcni never loads a half-written file.
  const tmp = path.join(dir, `.${path.basename(file)}.kvrf-tmp-${randomBytes(6).toString("hex")}`);
  try {
    await fill(tmp);
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
}

/** Whether two files hold the same bytes, read a chunk at a time (never whole: the plugin is ~100 MiB). */
async function sameContent(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== sb.size) return false;
  const chunk = 1 << 20;
  const [ha, hb] = await Promise.all([open(a, "r"), open(b, "r")]);
  try {
    const [ba, bb] = [Buffer.alloc(chunk), Buffer.alloc(chunk)];
    for (let pos = 0; pos < sa.size; pos += chunk) {
      const [ra, rb] = await Promise.all([ha.read(ba, 0, chunk, pos), hb.read(bb, 0, chunk, pos)]);
      if (ra.bytesRead !== rb.bytesRead || !ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      if (ra.bytesRead === 0) break;
    }
    return true;
  } finally {
    await Promise.all([ha.close(), hb.close()]);
  }
}

/**
 * Installs a copy of `source` as `file` (mode `mode`) atomically, like writeAtomic, without holding
 * either in memory: the plugin executable is ~100 MiB, and the installer's container has a memory
 * limit (reading the image's copy and the node's whole, 2 × 100 MiB, got it OOM-killed on every
 * restart once the node had the plugin). Leaves `file` alone when it already holds exactly that.
 */
export async function copyAtomic(source: string, file: string, mode: number): Promise<WriteResult> {
  if ((await currentMode(file)) === mode && (await sameContent(source, file).catch(() => false))) return "unchanged";
  await replaceWith(file, async (tmp) => {
    await copyFile(source, tmp);
    const fh = await open(tmp, "r+");
    try {
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
  return "written";
}
