// The node's kvrf conflist, rendered from a template (a ConfigMap in the DaemonSet) with the values
// that differ per node. A conflist already at the target path that is not a kvrf one belongs to
// another plugin; overwriting it would silently swap the node's network, so we refuse instead.

export class ConflistError extends Error {
  override readonly name = "ConflistError";
}

/**
 * Values for a template's placeholders, written inside JSON strings as @NAME@ (a variable) or
 * @annotation:KEY@ (an annotation of the node, e.g. @annotation:kvrf.dev/srv6-locator@).
 */
export interface TemplateValues {
  vars: Readonly<Record<string, string | undefined>>;
  annotations?: Readonly<Record<string, string>>;
}

const placeholder = /@([A-Z][A-Z0-9_]*|annotation:[A-Za-z0-9][-A-Za-z0-9_./]*)@/g;

interface Conflist {
  name?: unknown;
  cniVersion?: unknown;
  plugins?: unknown;
}

function isKvrfList(v: unknown): boolean {
  const c = v as Conflist;
  return (
    typeof v === "object" &&
    v !== null &&
    Array.isArray(c.plugins) &&
    c.plugins.some((p) => typeof p === "object" && p !== null && (p as { type?: unknown }).type === "kvrf")
  );
}

/**
 * Substitutes every @NAME@ (JSON-escaped, so a value cannot break out of its string) and checks the
 * result is a conflist with a "kvrf" plugin. Returns it as canonical, indented JSON.
 */
export function renderConflist(template: string, values: TemplateValues): string {
  const missing = new Set<string>();
  const text = template.replace(placeholder, (_m, name: string) => {
    const v = name.startsWith("annotation:") ? values.annotations?.[name.slice("annotation:".length)] : values.vars[name];
    if (v === undefined || v === "") {
      missing.add(name);
      return "";
    }
    return JSON.stringify(v).slice(1, -1);
  });
  if (missing.size > 0) {
    throw new ConflistError(`conflist template: no value for ${[...missing].map((m) => `@${m}@`).join(", ")} (a node annotation that is not set?)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConflistError(`conflist template is not JSON after substitution: ${(err as Error).message}`, { cause: err });
  }
  const c = parsed as Conflist;
  if (typeof c.name !== "string" || c.name === "" || typeof c.cniVersion !== "string") {
    throw new ConflistError('conflist template: needs "name" and "cniVersion"');
  }
  if (!isKvrfList(parsed)) throw new ConflistError('conflist template: "plugins" must include a plugin of type "kvrf"');
  return `${JSON.stringify(parsed, null, 2)}\n`;
}

/**
 * Whether the existing file may be replaced by ours: absent, or a conflist that runs kvrf. Anything
 * else — another plugin's list, a single-plugin .conf, a file we cannot parse — is not ours.
 */
export function mayReplace(existing: string | undefined): boolean {
  if (existing === undefined) return true;
  try {
    return isKvrfList(JSON.parse(existing));
  } catch {
    return false;
  }
}
