// Ordinal (UTF-16 code unit) comparison for sorting names, prefixes and condition types. Unlike
// `localeCompare`, it is the same on every node whatever its locale, and costs no ICU: collation
// showed up in kvrfd's profile and its data in kvrfd's memory.
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
