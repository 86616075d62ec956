// The configuration reference and the annotated example are proved against the code: every option
// path is derived by walking the zod schema of daemon/config.ts (CONFIG_FILE_SCHEMA), with its
// default, and compared both ways with docs/configuration.md's tables (`| key | type | default |
// meaning |`) and with examples/milter-policy-annotated.yaml. A key added to the schema without a
// table row, a default changed in one place only, a documented key that no longer exists, an
// example that no longer validates: each fails here. Nothing is hard-coded about the keys
// themselves, so keys added later are covered too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CONFIG_FILE_SCHEMA, parseConfig } from '../../daemon/config.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const DOC = 'docs/configuration.md';
const ANNOTATED = 'examples/milter-policy-annotated.yaml';
const read = (p: string): string => readFileSync(path.join(PACKAGE_ROOT, p), 'utf8');

// ---------------------------------------------------------------------------------------------
// The options, from the schema

type Schema = z.ZodType;
interface SchemaDef {
  readonly type: string;
  readonly innerType?: Schema;
  readonly shape?: Record<string, Schema>;
  readonly element?: Schema;
  readonly entries?: Record<string, string | number>;
}
const defOf = (s: Schema): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

interface Option {
  /** `a.b`, `list[].field`. */
  readonly path: string;
  /** The value's schema without its default / optional wrappers: parses a value as the file does. */
  readonly schema: Schema;
  /** The default as the parsed configuration holds it (after transforms), if there is one. */
  readonly default?: { readonly value: unknown };
  /** No default and not optional: must be written (fields of list entries). */
  readonly required: boolean;
  readonly kind: string;
  readonly enumValues: readonly string[];
}

/** Every option of the configuration file: leaves, and lists of objects (plus their fields). */
function configOptions(root: Schema = CONFIG_FILE_SCHEMA): Option[] {
  const out: Option[] = [];
  const unwrap = (s: Schema): { schema: Schema; withDefault: Schema | null; optional: boolean } => {
    let withDefault: Schema | null = null;
    let optional = false;
    for (;;) {
      const d = defOf(s);
      if (d.type === 'default' || d.type === 'prefault') withDefault ??= s;
      else if (d.type === 'optional') optional = true;
      else return { schema: s, withDefault, optional };
      s = d.innerType as Schema;
    }
  };
  const walk = (node: Schema, at: string): void => {
    const { schema, withDefault, optional } = unwrap(node);
    const d = defOf(schema);
    if (d.type === 'object') {
      for (const [k, v] of Object.entries(d.shape ?? {})) walk(v, at === '' ? k : `${at}.${k}`);
      return;
    }
    out.push({
      path: at,
      schema,
      ...(withDefault === null ? {} : { default: { value: withDefault.parse(undefined) } }),
      required: withDefault === null && !optional,
      kind: d.type,
      enumValues: d.type === 'enum' ? Object.values(d.entries ?? {}).map(String) : [],
    });
    if (d.type === 'array') {
      const element = unwrap(d.element as Schema).schema;
      if (defOf(element).type === 'object') walk(element, `${at}[]`);
    }
  };
  walk(root, '');
  return out;
}

// ---------------------------------------------------------------------------------------------
// The reference's tables

interface Row {
  readonly line: number;
  readonly key: string;
  readonly type: string;
  readonly default: string;
}

/** Cells of a markdown table row (`\|` is a literal bar). */
function cells(line: string): string[] {
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return body.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

/** Every row of every `| key | … |` table, and the header problems found on the way. */
function docRows(text: string): { rows: Row[]; problems: string[] } {
  const lines = text.split('\n');
  const rows: Row[] = [];
  const problems: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith('|') || !/^\|[\s|:-]+\|$/.test(lines[i + 1] ?? '')) continue;
    const header = cells(line);
    if (header[0] !== 'key') continue;
    if (header.join('|') !== 'key|type|default|meaning')
      problems.push(`${DOC}:${i + 1}: a key table must have the columns key | type | default | meaning`);
    for (i += 2; i < lines.length && (lines[i] as string).startsWith('|'); i++) {
      const c = cells(lines[i] as string);
      const key = /^`([^`]+)`$/.exec(c[0] ?? '');
      if (key === null || c.length !== 4) {
        problems.push(`${DOC}:${i + 1}: a row must be \`one.key\` | type | default | meaning`);
        continue;
      }
      rows.push({ line: i + 1, key: key[1] as string, type: c[1] as string, default: c[2] as string });
    }
  }
  return { rows, problems };
}

/** The fenced ```yaml blocks of a markdown text. */
const yamlBlocks = (text: string): string[] =>
  [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);

/** Every key path a parsed YAML value sets, in the options' spelling (`list[].field`). */
function pathsIn(value: unknown, at = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value)
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) pathsIn(v, `${at}[]`, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const p = at === '' ? k : `${at}.${k}`;
      out.add(p);
      pathsIn(v, p, out);
    }
  }
  return out;
}

/** A documented default, as the file would hold it after parsing; a problem text when it does not parse. */
function parseDocDefault(
  o: Option,
  cell: string,
): { ok: true; value: unknown } | { ok: false; problem: string } {
  const code = /^`([^`]*)`/.exec(cell);
  if (code === null) return { ok: false, problem: `default ${JSON.stringify(cell)} is not a \`value\`` };
  let raw: unknown;
  try {
    raw = parseYaml(code[1] as string);
  } catch (e) {
    return { ok: false, problem: `default \`${code[1]}\` is not YAML: ${(e as Error).message}` };
  }
  const r = o.schema.safeParse(raw);
  if (!r.success)
    return { ok: false, problem: `default \`${code[1]}\` is not a valid value: ${r.error.message}` };
  return { ok: true, value: r.data };
}

const options = configOptions();
const byPath = new Map(options.map((o) => [o.path, o]));
const docText = read(DOC);
const { rows, problems: tableProblems } = docRows(docText);

describe(`${DOC} against the schema in daemon/config.ts`, () => {
  it('the schema walk finds the options (leaves, lists, fields of list entries)', () => {
    for (const p of [
      'workers',
      'listen',
      'socket.mode',
      'limits.max_packet_bytes',
      'rate_limits.limits',
      'rate_limits.limits[].name',
      'rate_limits.bad_recipients.ban',
      'dnsbl.zones[].zone',
      'store.redis.on_failure',
    ])
      assert.ok(byPath.has(p), p);
    assert.ok(options.length > 100, `${options.length} options`);
    assert.equal(byPath.get('limits.max_packet_bytes')?.default?.value, 1024 * 1024);
    assert.equal(byPath.get('rate_limits.limits[].name')?.required, true);
    assert.equal(byPath.get('socket.group')?.required, false);
    assert.equal(byPath.get('socket.group')?.default, undefined);
  });

  it('every key table has the columns key | type | default | meaning, one key per row', () => {
    assert.deepEqual(tableProblems, []);
    assert.ok(rows.length > 0);
  });

  it('every documented key exists in the code, and is documented once', () => {
    const problems: string[] = [];
    const seen = new Map<string, number>();
    for (const r of rows) {
      if (!byPath.has(r.key)) problems.push(`${DOC}:${r.line}: ${r.key} is not a configuration key`);
      const before = seen.get(r.key);
      if (before !== undefined)
        problems.push(`${DOC}:${r.line}: ${r.key} is documented at line ${before} too`);
      seen.set(r.key, r.line);
    }
    assert.deepEqual(problems, []);
  });

  it('every option of the code is documented, with a type and the default of the code', () => {
    const rowOf = new Map(rows.map((r) => [r.key, r]));
    const problems: string[] = [];
    for (const o of options) {
      const r = rowOf.get(o.path);
      if (r === undefined) {
        problems.push(`${o.path}: not documented in ${DOC}`);
        continue;
      }
      const at = `${DOC}:${r.line}: ${o.path}`;
      if (r.type === '' || r.type === '—') problems.push(`${at}: no type`);
      if (o.kind === 'boolean' && !/\bboolean\b/.test(r.type)) problems.push(`${at}: type must say boolean`);
      for (const v of o.enumValues)
        if (!r.type.includes(`\`${v}\``)) problems.push(`${at}: type does not list \`${v}\``);
      if (o.required && !/\brequired\b/.test(r.type)) problems.push(`${at}: type must say required`);
      if (o.default === undefined) {
        if (!r.default.startsWith('—')) problems.push(`${at}: the code has no default; write — (and why)`);
        continue;
      }
      const d = parseDocDefault(o, r.default);
      if (!d.ok) problems.push(`${at}: ${d.problem}`);
      else if (!isDeepStrictEqual(d.value, o.default.value))
        problems.push(
          `${at}: documented default ${r.default} is not the code's ${JSON.stringify(o.default.value)}`,
        );
    }
    assert.deepEqual(problems, []);
  });

  it('every yaml example in the reference is valid, and together they set every option', () => {
    const blocks = yamlBlocks(docText);
    assert.ok(blocks.length > 0);
    const set = new Set<string>();
    blocks.forEach((b, i) => {
      const value: unknown = parseYaml(b);
      const r = CONFIG_FILE_SCHEMA.safeParse(value ?? {});
      assert.ok(
        r.success,
        `yaml example ${i + 1} (${b.split('\n')[0]}…): ${r.success ? '' : r.error.message}`,
      );
      for (const p of pathsIn(value)) set.add(p);
    });
    assert.deepEqual(
      options.map((o) => o.path).filter((p) => !set.has(p)),
      [],
      'options without an example',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The annotated example

/** A commented-out setting: `# key: value`, `# - item`, indented under its parent after the `# `. */
const COMMENTED_SETTING = /^(\s*)# (\s*(?:[a-z0-9_]+:(?:\s|$)|- ))/;

describe(ANNOTATED, () => {
  const text = read(ANNOTATED);
  const lines = text.split('\n');
  /** The same text with the commented-out settings uncommented (line numbers kept). */
  const uncommented = lines.map((l) => l.replace(COMMENTED_SETTING, '$1$2')).join('\n');
  const active: unknown = parseYaml(text);
  // A commented-out example list repeats its key (`limits: []`, then `# limits:`): the later one counts.
  const all: unknown = parseYaml(uncommented, { uniqueKeys: false });

  it('passes check-config (parseConfig)', async () => {
    const r = await parseConfig(text, path.join(PACKAGE_ROOT, ANNOTATED));
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  });

  it('sets every option that has a default, at its default', () => {
    const problems: string[] = [];
    for (const o of options) {
      if (o.default === undefined || o.path.includes('[]')) continue;
      let v: unknown = active;
      for (const k of o.path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
      if (v === undefined) {
        problems.push(`${o.path}: missing`);
        continue;
      }
      const r = o.schema.safeParse(v);
      if (!r.success || !isDeepStrictEqual(r.data, o.default.value))
        problems.push(
          `${o.path}: ${JSON.stringify(v)} is not the default ${JSON.stringify(o.default.value)}`,
        );
    }
    assert.deepEqual(problems, []);
  });

  it('shows every other option commented out, and the uncommented file is valid too', () => {
    const r = CONFIG_FILE_SCHEMA.safeParse(all);
    assert.ok(r.success, r.success ? '' : r.error.message);
    const set = pathsIn(all);
    assert.deepEqual(
      options.map((o) => o.path).filter((p) => !set.has(p)),
      [],
      'options neither set nor shown commented out',
    );
  });

  it('annotates every setting: a comment on its line or just above it', () => {
    const ulines = uncommented.split('\n');
    const isProse = (i: number): boolean =>
      /^\s*#/.test(lines[i] as string) && !COMMENTED_SETTING.test(lines[i] as string);
    const problems: string[] = [];
    ulines.forEach((l, i) => {
      const m = /^\s*(?:- )?([a-z0-9_]+):(.*)$/.exec(l);
      if (m === null) return;
      const value = (m[2] as string).trim();
      // A mapping or list follows on the next lines: its settings carry the comments.
      if (value === '' || value.startsWith('#')) return;
      if (/\s#(\s|$)/.test(value)) return;
      let j = i - 1;
      while (j >= 0 && (lines[j] as string).trim() === '') j--;
      if (j >= 0 && isProse(j)) return;
      problems.push(`${ANNOTATED}:${i + 1}: ${m[1]} has no comment`);
    });
    assert.deepEqual(problems, []);
  });
});
