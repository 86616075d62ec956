// docs/errors.md is the catalogue of log events and protocol error codes (architecture: "errors are
// a catalogue"). This test greps the sources for the event names they log (`event: 'name'`, and the
// names handed to the access-map logging helper) and reads the ProtocolErrorCode union, and checks
// both against the document's tables, both ways: an event logged but not documented, or documented
// but no longer logged, fails here.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const SOURCE_DIRS = ['daemon', 'milter', 'rules', 'access-db', 'cli'];
const doc = readFileSync(path.join(PACKAGE_ROOT, 'docs', 'errors.md'), 'utf8');

function sources(): { file: string; text: string }[] {
  return SOURCE_DIRS.flatMap((dir) =>
    readdirSync(path.join(PACKAGE_ROOT, dir))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(path.join(PACKAGE_ROOT, dir, f), 'utf8') })),
  );
}

/** Event names the code logs; the cluster's IPC messages (`process.send`, their type) are not log lines. */
function loggedEvents(): Map<string, string> {
  const found = new Map<string, string>();
  for (const { file, text } of sources()) {
    text.split('\n').forEach((line, i) => {
      if (/process\.send|type \w*Message\b/.test(line)) return;
      for (const m of line.matchAll(/\bevent: '([a-z_]+)'|logAccessLoaded\(\s*\w+,\s*'([a-z_]+)'/g))
        if (!found.has((m[1] ?? m[2]) as string)) found.set((m[1] ?? m[2]) as string, `${file}:${i + 1}`);
    });
  }
  return found;
}

/** The names in the first column of the table under a `## heading` (several per cell allowed). */
function tableNames(heading: string): Set<string> {
  const start = doc.indexOf(`\n## ${heading}`);
  assert.ok(start >= 0, `docs/errors.md has a section ${heading}`);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`([a-z_]+)`/g)) names.add(m[1] as string);
  }
  return names;
}

describe('docs/errors.md', () => {
  it('lists every event the code logs, and only those', () => {
    const logged = loggedEvents();
    assert.ok(logged.has('decision') && logged.has('protocol_error') && logged.has('access_db_loaded'));
    const documented = tableNames('Events');
    const missing = [...logged].filter(([name]) => !documented.has(name)).map(([n, at]) => `${n} (${at})`);
    assert.deepEqual(missing, [], 'logged but not in docs/errors.md');
    assert.deepEqual(
      [...documented].filter((n) => !logged.has(n)),
      [],
      'in docs/errors.md but not logged',
    );
  });

  it('lists every protocol error code of milter/commands.ts, and only those', () => {
    const commands = readFileSync(path.join(PACKAGE_ROOT, 'milter', 'commands.ts'), 'utf8');
    const union = /export type ProtocolErrorCode =([^;]+);/.exec(commands)?.[1] ?? '';
    const codes = new Set([...union.matchAll(/'([a-z_]+)'/g)].map((m) => m[1] as string));
    assert.ok(codes.size > 5, 'the ProtocolErrorCode union was found');
    const documented = tableNames('Protocol error codes');
    assert.deepEqual(
      [...codes].filter((c) => !documented.has(c)),
      [],
      'codes not documented',
    );
    assert.deepEqual(
      [...documented].filter((c) => !codes.has(c)),
      [],
      'documented codes that do not exist',
    );
  });
});
