// The README's snippets are the ones the end-to-end suite uses, and .ci/run runs the README's test
// command: a snippet edited in one place only fails here.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const read = (p: string): string => readFileSync(path.join(PACKAGE_ROOT, p), 'utf8');
const readme = read('README.md');

/** The fenced code blocks of the README. */
const blocks = [...readme.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe('README', () => {
  for (const snippet of ['examples/postfix-main.cf', 'examples/sendmail.mc']) {
    it(`shows ${snippet} verbatim`, () => {
      assert.ok(blocks.includes(read(snippet)), `a README code block equal to ${snippet}`);
    });
  }

  it('has the two set-up commands, and .ci/run runs exactly the test command', () => {
    assert.ok(blocks.includes('npm ci && npm start\n'));
    assert.ok(blocks.includes('npm ci && npm test\n'));
    const ci = read('.ci/run');
    assert.match(ci, /^npm ci && npm test$/m);
  });

  it('its Documentation list links every guide in docs/ and the examples, and each link resolves', () => {
    const start = readme.indexOf('\n## Documentation\n');
    assert.ok(start >= 0, 'a Documentation section');
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end === -1 ? undefined : end);
    const links = [...section.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1] as string);
    const docs = readdirSync(path.join(PACKAGE_ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    for (const f of [
      ...docs.map((d) => `docs/${d}`),
      'examples/milter-policy-annotated.yaml',
      'examples/access',
    ])
      assert.ok(links.includes(f), `the Documentation list links ${f}`);
    for (const l of links) assert.ok(existsSync(path.join(PACKAGE_ROOT, l)), `${l} exists`);
  });
});
