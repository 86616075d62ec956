// The guides in docs/ are tried by tests: each MTA snippet in a guide that the end-to-end suite
// really uses is byte for byte the one the suite's harness feeds to Postfix or sendmail, and the
// several-gateways YAML is the configuration the two-daemons-one-Redis integration test runs.
// A guide marks such a block with a comment on the line before it:
//   <!-- verbatim: examples/postfix-main.cf -->   the block is that file, exactly
//   <!-- lines of: test/e2e/harness/postfix.ts --> each line of the block is a string (or line) there
//   <!-- config of: test/integration/X.test.ts --> the block is the test's daemon configuration
//                                                   from `rate_limits:` on, its ${...} filled in
// Besides: every guide links the configuration reference and the errors reference, names the
// tests that prove it (and those files exist), and its YAML blocks are valid configurations.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CONFIG_FILE_SCHEMA } from '../../daemon/config.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const read = (p: string): string => readFileSync(path.join(PACKAGE_ROOT, p), 'utf8');

/** Each guide and the marked snippets it must have. */
const GUIDES: Record<string, readonly string[]> = {
  'docs/postfix.md': ['verbatim: examples/postfix-main.cf', 'lines of: test/e2e/harness/postfix.ts'],
  'docs/sendmail.md': ['verbatim: examples/sendmail.mc', 'lines of: test/e2e/harness/sendmail.ts'],
  'docs/migration-from-sendmail.md': [],
  'docs/several-gateways.md': ['config of: test/integration/rate-limit-redis.test.ts'],
};

interface Marked {
  readonly marker: string;
  readonly line: number;
  /** The fenced block right after the marker, without its fences; null when there is none. */
  readonly block: string | null;
}

function markedBlocks(text: string): Marked[] {
  const lines = text.split('\n');
  const out: Marked[] = [];
  lines.forEach((l, i) => {
    const m = /^<!-- ((?:verbatim|lines of|config of): \S+) -->$/.exec(l);
    if (m === null) return;
    let block: string | null = null;
    if (/^```[a-z]*$/.test(lines[i + 1] ?? '')) {
      const end = lines.indexOf('```', i + 2);
      if (end > i) block = `${lines.slice(i + 2, end).join('\n')}\n`;
    }
    out.push({ marker: m[1] as string, line: i + 1, block });
  });
  return out;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A test's daemon configuration (its `const config = \`...\`` template) from `rate_limits:` on, as a pattern. */
function testConfigPattern(file: string): RegExp {
  const source = read(file);
  const template = /const config = `([\s\S]*?)`;/.exec(source)?.[1];
  assert.ok(template !== undefined, `${file} has a \`const config = \`...\`\` template`);
  const from = template.indexOf('rate_limits:');
  assert.ok(from >= 0, `${file}: the configuration has rate_limits:`);
  const pattern = escapeRe(template.slice(from)).replace(/\\\$\\\{[^}]*\\\}/g, '[^\\s"]+');
  return new RegExp(`^${pattern}$`);
}

/** Checks one marked snippet against what it claims to be; a problem text, or null. */
function checkMarked(guide: string, m: Marked): string | null {
  const at = `${guide}:${m.line}: ${m.marker}`;
  if (m.block === null) return `${at}: no fenced block right after the marker`;
  const [kind, file] = m.marker.split(': ') as [string, string];
  if (!existsSync(path.join(PACKAGE_ROOT, file))) return `${at}: ${file} does not exist`;
  switch (kind) {
    case 'verbatim':
      return m.block === read(file) ? null : `${at}: the block is not ${file} byte for byte`;
    case 'lines of': {
      // Each line is a whole string literal of the source, or a whole line of it.
      const source = read(file);
      const whole = (l: string): boolean =>
        ["'", '"', '`'].some((q) => source.includes(`${q}${l}${q}`)) ||
        source.split('\n').some((s) => s.trim() === l.trim());
      const missing = m.block.split('\n').filter((l) => l.trim() !== '' && !whole(l));
      return missing.length === 0 ? null : `${at}: not in ${file}: ${missing.join(' | ')}`;
    }
    case 'config of':
      return testConfigPattern(file).test(m.block) ? null : `${at}: the block is not ${file}'s configuration`;
    default:
      return `${at}: unknown marker`;
  }
}

describe('the guides in docs/', () => {
  it('the e2e harness feeds the MTAs the example snippets the guides show', () => {
    const harness = read('test/e2e/harness/mta-snippets.ts');
    assert.match(harness, /path\.join\(repoRoot, 'examples', 'postfix-main\.cf'\)/);
    assert.match(harness, /path\.join\(repoRoot, 'examples', 'sendmail\.mc'\)/);
    assert.match(read('test/e2e/harness/postfix.ts'), /postfixSnippet\(opts\.milter\)/);
    assert.match(read('test/e2e/harness/sendmail.ts'), /sendmailSnippet\(opts\.milter\)/);
  });

  for (const [guide, required] of Object.entries(GUIDES)) {
    describe(guide, () => {
      const text = read(guide);

      it('each marked snippet is what the tests really use', () => {
        const marked = markedBlocks(text);
        for (const r of required)
          assert.ok(
            marked.some((m) => m.marker === r),
            `${guide} has a block marked <!-- ${r} -->`,
          );
        assert.deepEqual(
          marked.map((m) => checkMarked(guide, m)).filter((p) => p !== null),
          [],
        );
      });

      it('links the configuration and errors references', () => {
        assert.match(text, /\]\(configuration\.md\)/);
        assert.match(text, /\]\(errors\.md\)/);
      });

      it('says which tests prove it, and those tests exist', () => {
        const section = text.slice(text.indexOf('\n## Which tests prove this guide'));
        assert.ok(
          text.includes('\n## Which tests prove this guide\n'),
          'a "Which tests prove this guide" section',
        );
        const named = [...section.matchAll(/`(test\/[\w/.-]+\.test\.ts)`/g)].map((m) => m[1] as string);
        assert.ok(named.length > 0, 'names at least one test file');
        const all = [...text.matchAll(/`((?:test|examples|systemd)\/[\w/.-]+)`/g)].map((m) => m[1] as string);
        assert.deepEqual(
          all.filter((p) => !existsSync(path.join(PACKAGE_ROOT, p))),
          [],
          'files the guide names that do not exist',
        );
      });

      it('its YAML blocks are valid configurations', () => {
        const blocks = [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
        for (const b of blocks) {
          const r = CONFIG_FILE_SCHEMA.safeParse(parseYaml(b) ?? {});
          assert.ok(r.success, `${guide}: ${b.split('\n')[0]}…: ${r.success ? '' : r.error.message}`);
        }
      });
    });
  }
});
