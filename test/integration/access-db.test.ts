// Ring (b): the access map in the running daemon and the admin's tools around it — makemap
// (nothing written on error, atomic replace), the daemon noticing a new snapshot (inode/mtime)
// and swapping it between transactions, a bad file never replacing good rules, decision lines
// naming the snapshot version and the entry, `query` and `check`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startDaemon } from '../../daemon/serve.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';
import { FakeMta } from '../support/fake-mta.js';
import { readLogLines } from '../support/log-lines.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = readLogLines;

async function waitLog(
  file: string,
  pred: (l: Record<string, unknown>) => boolean,
  ms = 5000,
): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const hit = (await lines(file)).find(pred);
    if (hit !== undefined) return hit;
    if (Date.now() > end) throw new Error('log line not seen');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rcpt(sock: string, client: string, sender: string, recipient: string): Promise<string> {
  const mta = await FakeMta.connect({ path: sock });
  await mta.negotiate();
  mta.macro('C', { v: 'Postfix 3.7.11', j: 'mx.example.test' });
  mta.send({ kind: 'connect', hostname: `[${client}]`, family: 'inet4', port: 1025, address: client });
  mta.send({ kind: 'mail', sender, args: [] });
  const r = await mta.request({ kind: 'rcpt', recipient, args: [] });
  mta.close();
  return r.kind === 'replycode' ? r.text : r.kind;
}

describe('makemap', () => {
  it('compiles from standard input as sendmail’s makemap is typed, and writes atomically', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-makemap-'));
    const src = path.join(dir, 'access');
    await writeFile(src, 'Connect:192.0.2 REJECT\nFrom:a@b.example OK\nfrom:A@B.example REJECT\n');
    const r = cli(['makemap', 'hash', src], await readFile(src, 'utf8'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /access:3: warning: duplicate key "from:a@b.example" \(line 2 wins\)/);
    const first = await stat(`${src}.mpdb`);
    // Recompiling replaces the file by rename: a new inode, no temporary file left behind.
    assert.equal(cli(['makemap', src]).status, 0);
    const second = await stat(`${src}.mpdb`);
    assert.notEqual(first.ino, second.ino);
    assert.deepEqual((await readdir(dir)).sort(), ['access', 'access.mpdb']);
  });

  it('on any error writes nothing, prints every file:line: problem and exits 1', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-makemap-'));
    const src = path.join(dir, 'access');
    await writeFile(src, 'ok.example OK\n  leading\nnovalue\n');
    const r = cli(['makemap', 'hash', src], await readFile(src, 'utf8'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${src}:2: syntax error \\(leading space\\)`));
    assert.match(r.stderr, new RegExp(`${src}:3: no value for key "novalue"`));
    assert.deepEqual(await readdir(dir), ['access']);
    assert.equal(cli(['makemap', 'foo', 'bar', 'baz']).status, 2);
  });
});

describe('access_db in the daemon', () => {
  it('loads a compiled map, swaps a new one in when the file changes, keeps the old one when the new is bad', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-access-'));
    const src = path.join(dir, 'access');
    const log = path.join(dir, 'log.jsonl');
    const sock = path.join(dir, 'm.sock');
    await writeFile(src, 'Connect:192.0.2 REJECT\nFrom:friend.example OK\n');
    assert.equal(cli(['makemap', src]).status, 0);
    await writeFile(
      path.join(dir, 'c.yaml'),
      `listen: ["unix:${sock}"]\nlog: { level: info, accepted: true, file: ${log} }\ndomains: { local: [example.test] }\naccess_db: { file: access.mpdb, check_interval: 100ms }\n`,
    );
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    try {
      const loaded = await waitLog(log, (l) => l.event === 'access_db_loaded');
      assert.equal(loaded.entries, 2);
      assert.equal(loaded.compiled, true);
      assert.equal(
        await rcpt(sock, '192.0.2.9', '<x@neutral.example>', '<u@example.test>'),
        '550 5.7.1 <u@example.test>... Access denied',
      );
      assert.equal(await rcpt(sock, '192.0.2.9', '<x@friend.example>', '<u@example.test>'), 'continue');
      const dec = await waitLog(log, (l) => l.event === 'decision' && l.action === 'reject');
      assert.equal(dec.rule, 'access_client');
      assert.equal(dec.entry, `${src}:1`);
      assert.equal(dec.access_db, loaded.version);

      // A new snapshot (makemap renames over the file): noticed and swapped in.
      await writeFile(src, 'Connect:192.0.2 OK\nConnect:198.51.100 REJECT\n');
      assert.equal(cli(['makemap', src]).status, 0);
      const reload = await waitLog(log, (l) => l.event === 'access_db_reload' && l.ok === true);
      assert.notEqual(reload.version, loaded.version);
      assert.equal(await rcpt(sock, '192.0.2.9', '<x@neutral.example>', '<u@example.test>'), 'continue');
      assert.equal(
        await rcpt(sock, '198.51.100.7', '<x@neutral.example>', '<u@example.test>'),
        '550 5.7.1 <u@example.test>... Access denied',
      );

      // A damaged file is refused; the rules in force stay.
      const good = await readFile(`${src}.mpdb`);
      await writeFile(`${src}.mpdb`, good.subarray(0, good.length - 10));
      const bad = await waitLog(log, (l) => l.event === 'access_db_reload' && l.ok === false);
      assert.match(String((bad.errors as string[])[0]), /size mismatch|truncated/);
      assert.equal(
        await rcpt(sock, '198.51.100.7', '<x@neutral.example>', '<u@example.test>'),
        '550 5.7.1 <u@example.test>... Access denied',
      );
    } finally {
      await d.stop();
    }
  });

  it('reads the text source directly and refuses to start on a broken one, with file:line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-access-'));
    const src = path.join(dir, 'access');
    await writeFile(src, 'Connect:192.0.2 REJECT\n bad line\n');
    await writeFile(
      path.join(dir, 'c.yaml'),
      `listen: ["unix:${path.join(dir, 'm.sock')}"]\nlog: { level: silent }\naccess_db: { file: access }\n`,
    );
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    assert.ok('errors' in d);
    assert.deepEqual(d.errors, [
      `${src}:2: syntax error (leading space): continuation lines are not allowed`,
    ]);
  });

  it('a reload with a broken access file keeps the previous configuration and map', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-access-'));
    const src = path.join(dir, 'access');
    const sock = path.join(dir, 'm.sock');
    await writeFile(src, 'Connect:192.0.2 REJECT\n');
    await writeFile(
      path.join(dir, 'c.yaml'),
      `listen: ["unix:${sock}"]\nlog: { level: silent }\ndomains: { local: [example.test] }\naccess_db: { file: access, check_interval: 1h }\n`,
    );
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    try {
      await writeFile(src, 'Connect:192.0.2 OK\n  broken\n');
      assert.equal(await d.reload(), false);
      assert.equal(
        await rcpt(sock, '192.0.2.9', '<x@neutral.example>', '<u@example.test>'),
        '550 5.7.1 <u@example.test>... Access denied',
      );
      await writeFile(src, 'Connect:192.0.2 OK\n');
      assert.equal(await d.reload(), true);
      assert.equal(await rcpt(sock, '192.0.2.9', '<x@neutral.example>', '<u@example.test>'), 'continue');
    } finally {
      await d.stop();
    }
  });
});

describe('query and check', () => {
  it('query explains the keys tried, the entry and the reply', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-query-'));
    const src = path.join(dir, 'access');
    await writeFile(src, 'Connect:192.0.2 REJECT\nSpam:abuse@ FRIEND\n');
    const r = cli([
      'query',
      '--access',
      src,
      '--local',
      'example.test',
      '--client',
      '192.0.2.7',
      '--from',
      '<a@b.example>',
      '--to',
      '<u@example.test>',
      '--to',
      '<abuse@example.test>',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /tried connect:\[192\.0\.2\.7\], \[192\.0\.2\.7\],.*connect:192\.0\.2 => REJECT \(.*access:1\)/,
    );
    assert.match(
      r.stdout,
      /=> 550 5\.7\.1 <u@example\.test>\.\.\. Access denied {3}\[access_client, .*access:1\]/,
    );
    assert.match(
      r.stdout,
      /RCPT <abuse@example\.test>[\s\S]*=> 250 \(accepted\) {3}\[delay_checks, .*access:2\]/,
    );
    assert.match(r.stdout, /message: delivered for <abuse@example\.test>/);
    const j = cli([
      'query',
      '--access',
      src,
      '--client',
      '192.0.2.7',
      '--to',
      'x@elsewhere.example',
      '--json',
    ]);
    assert.equal((JSON.parse(j.stdout) as { message: { outcome: string } }).message.outcome, 'refused');
  });

  it('check lints a file: exit 0 with warnings, 1 with errors or --strict', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-check-'));
    const src = path.join(dir, 'access');
    await writeFile(src, 'From:a@b.example REJCT\n');
    const w = cli(['check', src]);
    assert.equal(w.status, 0);
    assert.match(w.stdout, /access:1: warning: "REJCT" is no keyword/);
    assert.equal(cli(['check', '--strict', src]).status, 1);
    await writeFile(src, ' leading\n');
    assert.equal(cli(['check', src]).status, 1);
  });
});
