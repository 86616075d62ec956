// Reads an access map from disk: a compiled image (`milter-policy makemap`) is checked (structure
// and checksum), a makemap source text file is parsed and compiled in memory. Either way the result
// is an image Buffer, or every problem as `file:line: problem`. Called by the daemon's loader (in a
// worker thread, so a large file never blocks mail) and by the CLI.

import { readFile } from 'node:fs/promises';
import { buildImage, isImage, openImage } from './image.js';
import type { SourceOptions } from './source.js';
import { formatDiagnostic, parseAccessSource } from './source.js';

export type ReadResult =
  | {
      readonly ok: true;
      readonly image: Buffer;
      /** The file was source text (compiled now), not an image. */
      readonly fromText: boolean;
      readonly entries: number;
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly errors: readonly string[]; readonly warnings: readonly string[] };

export async function readAccessImage(file: string, options: SourceOptions = {}): Promise<ReadResult> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    return {
      ok: false,
      errors: [`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`],
      warnings: [],
    };
  }
  if (isImage(buf)) {
    const r = openImage(buf, { verify: true });
    if (!r.ok) return { ok: false, errors: [`${file}: ${r.problem}`], warnings: [] };
    return {
      ok: true,
      image: buf,
      fromText: false,
      entries: r.view.meta.entries + r.view.meta.cidrs.length,
      warnings: r.view.meta.warnings,
    };
  }
  const parsed = parseAccessSource(buf.toString('latin1'), file, options);
  const warnings = parsed.warnings.map(formatDiagnostic);
  if (parsed.errors.length > 0) return { ok: false, errors: parsed.errors.map(formatDiagnostic), warnings };
  return { ok: true, image: buildImage(parsed), fromText: true, entries: parsed.entries.length, warnings };
}
