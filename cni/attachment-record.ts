// The node's record of which VPC each attachment was ADDed to: `<stateDir>/attachments/<name>`,
// one small JSON file per attachment (network, container ID, interface, VPC, and the pod's
// namespace when the VPC came from it). With `vpcFromNamespace` the VPC of a pod depends on its
// namespace's annotation at ADD time; DEL, CHECK and GC must act on that VPC even when the
// annotation has changed or the namespace is gone since, and the config alone no longer says it.
// ADD writes the record before it changes anything (so a DEL after an ADD killed halfway finds
// the VPC too), DEL and GC remove it once the attachment is gone. The state directory is a tmpfs:
// after a reboot the records are gone, and del.ts falls back to what the kernel and the API still
// hold (docs/cni-config.md#the-vpc-of-a-namespace).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../shared/atomic-write.js";
import { parseVpc } from "../shared/ids.js";

export interface AttachmentRecord {
  network: string;
  containerID: string;
  ifName: string;
  /** The VPC ID, canonical hex. */
  vpc: string;
  /** The pod's namespace, when the VPC came from (or was looked up through) it. */
  namespace?: string;
}

export function recordDir(stateDir: string): string {
  return path.join(stateDir, "attachments");
}

/**
 * The record's file: `<network>:<containerID>:<ifName>` (container IDs, network names and
 * interface names have no '/'), hashed when that would be too long for a file name.
 */
export function recordPath(stateDir: string, network: string, containerID: string, ifName: string): string {
  const plain = `${network}:${containerID}:${ifName}`;
  const name = Buffer.byteLength(plain) <= 200 && !plain.includes("/") ? plain : `h-${createHash("sha256").update(plain).digest("hex").slice(0, 40)}`;
  return path.join(recordDir(stateDir), name);
}

function parse(text: string): AttachmentRecord | undefined {
  let r: Partial<AttachmentRecord>;
  try {
    r = JSON.parse(text) as Partial<AttachmentRecord>;
  } catch {
    return undefined;
  }
  if (typeof r !== "object" || r === null) return undefined;
  if (typeof r.network !== "string" || typeof r.containerID !== "string" || typeof r.ifName !== "string" || typeof r.vpc !== "string") return undefined;
  try {
    parseVpc(r.vpc);
  } catch {
    return undefined;
  }
  return { network: r.network, containerID: r.containerID, ifName: r.ifName, vpc: r.vpc, ...(typeof r.namespace === "string" ? { namespace: r.namespace } : {}) };
}

/** The attachment's record; undefined when there is none (or it is unreadable: then it is no record). */
export function readRecord(stateDir: string, network: string, containerID: string, ifName: string): AttachmentRecord | undefined {
  let text: string;
  try {
    text = readFileSync(recordPath(stateDir, network, containerID, ifName), "utf8");
  } catch {
    return undefined;
  }
  const r = parse(text);
  // A hashed name could in theory be another attachment's: the content says whose it is.
  return r !== undefined && r.network === network && r.containerID === containerID && r.ifName === ifName ? r : undefined;
}

/** Writes (or replaces) the attachment's record atomically; throws the file system's error. */
export function writeRecord(stateDir: string, r: AttachmentRecord): void {
  writeFileAtomic(recordPath(stateDir, r.network, r.containerID, r.ifName), JSON.stringify(r));
}

/** Removes the attachment's record (none: nothing to do); throws the file system's error. */
export function removeRecord(stateDir: string, network: string, containerID: string, ifName: string): void {
  rmSync(recordPath(stateDir, network, containerID, ifName), { force: true });
}

/** Every record of `network` on this node (GC); of every network when none is given. */
export function listRecords(stateDir: string, network?: string): AttachmentRecord[] {
  let names: string[];
  try {
    names = readdirSync(recordDir(stateDir));
  } catch {
    return [];
  }
  const out: AttachmentRecord[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(path.join(recordDir(stateDir), name), "utf8");
    } catch {
      continue; // removed meanwhile, or a temporary file
    }
    const r = parse(text);
    if (r !== undefined && (network === undefined || r.network === network)) out.push(r);
  }
  return out;
}
