// docs/benchmarks.md is written by four scripts: bench/run.ts writes the whole file, and
// bench/access-db.ts, bench/attachments.ts and bench/rate-limit.ts own one section each, between `<!-- NAME:begin -->`
// and `<!-- NAME:end -->`. These helpers let each rewrite its part and keep the others': run.ts
// carries the owned sections of the old file over to the end of the new one, the others replace
// their section in place (or append it). Also the JSON writer they all use for their raw files
// (prettier-formatted, so `prettier --check .` passes). Pure apart from formatJson's prettier import.

/** Sections of docs/benchmarks.md owned by a script other than bench/run.ts. */
export const OWNED_SECTIONS = ['access-db', 'attachments', 'rate-limit'] as const;
export type SectionName = (typeof OWNED_SECTIONS)[number];

function markers(name: SectionName): { begin: string; end: string } {
  return { begin: `<!-- ${name}:begin -->`, end: `<!-- ${name}:end -->` };
}

/** The section with its markers, or null when the document has none (or only half of one). */
export function extractSection(doc: string, name: SectionName): string | null {
  const { begin, end } = markers(name);
  const a = doc.indexOf(begin);
  if (a < 0) return null;
  const b = doc.indexOf(end, a + begin.length);
  if (b < 0) return null;
  return doc.slice(a, b + end.length);
}

/** `doc` with the section `name` set to `body` (markers added): in place, or appended at the end. */
export function replaceSection(doc: string, name: SectionName, body: string): string {
  const { begin, end } = markers(name);
  const section = `${begin}\n${body.trimEnd()}\n${end}`;
  const old = extractSection(doc, name);
  if (old !== null) return doc.replace(old, () => section);
  return `${doc.trimEnd()}${doc.trim() === '' ? '' : '\n\n'}${section}\n`;
}

/** A freshly rendered document plus the owned sections of the one it replaces (run.ts). */
export function keepSections(previous: string, fresh: string): string {
  let out = fresh;
  for (const name of OWNED_SECTIONS) {
    const s = extractSection(previous, name);
    if (s === null || extractSection(out, name) !== null) continue;
    out = `${out.trimEnd()}\n\n${s}\n`;
  }
  return out;
}

export async function formatJson(file: string, value: unknown): Promise<string> {
  const text = JSON.stringify(value, null, 2);
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...config, parser: 'json' });
  } catch {
    return `${text}\n`;
  }
}
