// CNI spec versions this plugin speaks and helpers to compare them.

/** Spec versions accepted in a network config, oldest first. */
export const supportedVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type SpecVersion = (typeof supportedVersions)[number];
export const currentVersion: SpecVersion = "1.1.0";

export function isSupported(v: string): v is SpecVersion {
  return (supportedVersions as readonly string[]).includes(v);
}

/** Numeric comparison of dotted versions ("0.4.0" < "1.0.0"); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
