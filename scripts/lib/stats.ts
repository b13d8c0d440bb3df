// Small helpers shared by the benchmark scripts: quantiles and a plain-text table.

/** Linear-interpolated quantile (q in [0,1]) of the samples; NaN for no samples. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

/** Renders rows as an aligned table; the first column is left-aligned, the others right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]): string =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ").trimEnd() + "\n";
  return line(header) + line(widths.map((w) => "-".repeat(w))) + rows.map(line).join("");
}

/** Median, minimum and maximum of samples (NaN for none): a benchmark's "median (min–max)". */
export function spread(samples: readonly number[]): { median: number; min: number; max: number; n: number } {
  if (samples.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: quantile(samples, 0.5), min: Math.min(...samples), max: Math.max(...samples), n: samples.length };
}

/** "median (min–max)" in whole units, "-" for no samples. */
export function formatSpread(samples: readonly number[]): string {
  const s = spread(samples);
  return s.n === 0 ? "-" : `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
}

/** a / b to two decimals, "-" when either is missing or b is 0. */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : "-";
}
