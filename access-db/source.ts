// The makemap source format (`/etc/mail/access` before `makemap hash`), parsed exactly as
// sendmail's makemap reads it (landscape.md §1.1). Pure: text in, entries and diagnostics out.
//   - a line whose first character is `#` is a comment; an empty line is skipped;
//   - key = up to the first blank, then blanks, then value = the rest of the line;
//   - a line starting with a blank is an error ("leading space": no continuation lines);
//   - a key without a value is an error (unless allowEmptyValue, makemap -e);
//   - keys are case-folded; a duplicate key keeps the first entry with a warning (makemap -r:
//     the last one wins);
//   - CR before the newline is dropped with a warning (a file edited on Windows).
// Every error and warning carries `file:line`.

import type { ParsedKey } from './keys.js';
import { parseKey } from './keys.js';

export interface SourceEntry {
  readonly key: ParsedKey;
  /** The key as written in the file. */
  readonly written: string;
  /** The right-hand side as written (trailing blanks kept, as makemap keeps them). */
  readonly value: string;
  readonly line: number;
}

export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}: ${d.message}`;
}

export interface SourceOptions {
  /** makemap -r: a duplicate key replaces the earlier one. */
  readonly replace?: boolean;
  /** makemap -e: allow keys without a value. */
  readonly allowEmptyValue?: boolean;
  /** Longest line accepted (makemap refuses over-long lines); default 64 KiB. */
  readonly maxLineLength?: number;
}

export interface ParsedSource {
  readonly file: string;
  /** In file order, duplicates resolved. */
  readonly entries: SourceEntry[];
  readonly errors: Diagnostic[];
  readonly warnings: Diagnostic[];
}

export function parseAccessSource(text: string, file: string, options: SourceOptions = {}): ParsedSource {
  const errors: Diagnostic[] = [];
  const warnings: Diagnostic[] = [];
  const byKey = new Map<string, number>();
  const entries: SourceEntry[] = [];
  const max = options.maxLineLength ?? 65536;
  let lineNo = 0;
  let start = 0;
  let crWarned = false;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    if (line.endsWith('\r')) {
      line = line.slice(0, -1);
      if (!crWarned) {
        warnings.push({
          file,
          line: lineNo,
          message: 'CRLF line ending (CR dropped; sendmail would keep it in the value)',
        });
        crWarned = true;
      }
    }
    if (line.length === 0 || line.charCodeAt(0) === 0x23 /* # */) continue;
    if (line.length > max) {
      errors.push({ file, line: lineNo, message: `line too long (${line.length} bytes, limit ${max})` });
      continue;
    }
    const c0 = line.charCodeAt(0);
    if (c0 === 0x20 || c0 === 0x09) {
      errors.push({
        file,
        line: lineNo,
        message: 'syntax error (leading space): continuation lines are not allowed',
      });
      continue;
    }
    let k = 0;
    while (k < line.length && line.charCodeAt(k) !== 0x20 && line.charCodeAt(k) !== 0x09) k++;
    const written = line.slice(0, k);
    let v = k;
    while (v < line.length && (line.charCodeAt(v) === 0x20 || line.charCodeAt(v) === 0x09)) v++;
    const value = line.slice(v);
    if (value.length === 0 && options.allowEmptyValue !== true) {
      errors.push({ file, line: lineNo, message: `no value for key ${JSON.stringify(written)}` });
      continue;
    }
    const key = parseKey(written);
    const seen = byKey.get(key.key);
    if (seen !== undefined) {
      const first = entries[seen] as SourceEntry;
      if (options.replace === true) {
        warnings.push({
          file,
          line: lineNo,
          message: `duplicate key ${JSON.stringify(key.key)} replaces line ${first.line}`,
        });
        entries[seen] = { key, written, value, line: lineNo };
      } else {
        warnings.push({
          file,
          line: lineNo,
          message: `duplicate key ${JSON.stringify(key.key)} (line ${first.line} wins)`,
        });
      }
      continue;
    }
    byKey.set(key.key, entries.length);
    entries.push({ key, written, value, line: lineNo });
  }
  return { file, entries, errors, warnings };
}
