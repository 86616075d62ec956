// Ring (b): the daemon as a process and as a library — unix socket handling, reload (SIGHUP) that
// keeps the old configuration when the new one is broken, drain on SIGTERM, check-config.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstat, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startDaemon } from '../../daemon/serve.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';
import { FakeMta } from '../support/fake-mta.js';
import { readLogLines } from '../support/log-lines.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

async function tmp(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'mp-daemon-'));
}

function config(dir: string, extra = ''): string {
  return `listen: ["unix:${path.join(dir, 'milter.sock')}"]
socket: { mode: "0666" }
log: { level: info, accepted: true, file: ${path.join(dir, 'log.jsonl')} }
domains: { local: [example.test] }
shutdown: { drain_timeout: 300ms }
${extra}`;
}

function logLines(dir: string): Promise<Record<string, unknown>[]> {
  return readLogLines(path.join(dir, 'log.jsonl'));
}

async function waitForLog(
  dir: string,
  pred: (l: Record<string, unknown>) => boolean,
  ms = 3000,
): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const hit = (await logLines(dir)).find(pred);
    if (hit !== undefined) return hit;
    if (Date.now() > end) throw new Error('log line not seen');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function relayDecision(sock: string, recipient: string): Promise<string> {
  const mta = await FakeMta.connect({ path: sock });
  await mta.negotiate();
  mta.macro('C', { v: 'Postfix 3.7.11' });
  mta.send({ kind: 'connect', hostname: '[192.0.2.9]', family: 'inet4', port: 1, address: '192.0.2.9' });
  mta.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
  const r = await mta.request({ kind: 'rcpt', recipient, args: [] });
  mta.close();
  return r.kind === 'replycode' ? r.text : r.kind;
}

describe('daemon', () => {
  it('creates the unix socket with the configured mode, replaces a stale one, refuses a live one', async () => {
    const dir = await tmp();
    const sock = path.join(dir, 'milter.sock');
    // A stale socket: bound by a server that is gone.
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(sock, r));
    await new Promise<void>((r) => {
      // close() unlinks; re-create the file as a dead socket by leaving it bound in a child.
      stale.close(() => r());
    });
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.exit(0))`,
    ]);
    assert.ok((await lstat(sock)).isSocket());
    await writeFile(path.join(dir, 'c.yaml'), config(dir));
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    assert.ok(!('errors' in d), 'errors' in d ? d.errors.join('\n') : '');
    if ('errors' in d) return;
    try {
      assert.equal((await stat(sock)).mode & 0o777, 0o666);
      assert.equal(
        await relayDecision(sock, '<x@other.invalid>'),
        '550 5.7.1 <x@other.invalid>... Relaying denied',
      );
      const second = await startDaemon(path.join(dir, 'c.yaml'));
      assert.ok('errors' in second && /another process is serving/.test(second.errors[0] ?? ''));
    } finally {
      await d.stop();
    }
    assert.ok(
      !(await lstat(sock)
        .then(() => true)
        .catch(() => false)),
      'socket removed at stop',
    );
  });

  it('never deletes a path that is not a socket', async () => {
    const dir = await tmp();
    await writeFile(path.join(dir, 'milter.sock'), 'precious');
    await writeFile(path.join(dir, 'c.yaml'), config(dir));
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    assert.ok('errors' in d && /exists and is not a socket/.test(d.errors[0] ?? ''));
    assert.equal(await readFile(path.join(dir, 'milter.sock'), 'utf8'), 'precious');
  });

  it('reload: a good file is swapped in between transactions, a broken one leaves the old rules serving', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    const sock = path.join(dir, 'milter.sock');
    await writeFile(file, config(dir));
    const d = await startDaemon(file);
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    try {
      assert.equal(
        await relayDecision(sock, '<x@other.invalid>'),
        '550 5.7.1 <x@other.invalid>... Relaying denied',
      );
      await writeFile(file, config(dir, 'relay_guard: { mode: observe }\n'));
      assert.equal(await d.reload(), true);
      assert.equal(await relayDecision(sock, '<x@other.invalid>'), 'continue');
      await writeFile(file, config(dir, 'relay_guard: { mode: sometimes }\n'));
      assert.equal(await d.reload(), false);
      assert.equal(
        await relayDecision(sock, '<x@other.invalid>'),
        'continue',
        'old (observe) rules still serve',
      );
      const bad = await waitForLog(dir, (l) => l.event === 'reload' && l.ok === false);
      assert.match(String((bad.errors as string[])[0]), /c\.yaml:\d+: relay_guard\.mode: /);
      const obs = await waitForLog(dir, (l) => l.event === 'decision' && Array.isArray(l.observed));
      assert.equal((obs.observed as { would: string }[])[0]?.would, 'reject');
      assert.equal(obs.config_generation, 2);
    } finally {
      await d.stop();
    }
  });

  it('decision lines: refusals at info with their mode, accepted ones only with log.accepted; addresses redacted or hashed', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    const sock = path.join(dir, 'milter.sock');
    // config() turns log.accepted on; this file is the default (off) plus log.addresses
    const quiet = (addresses: string): string =>
      config(dir).replace('accepted: true', `accepted: false, addresses: ${addresses}, hash_key: k`);
    await writeFile(file, quiet('redact'));
    const d = await startDaemon(file);
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    try {
      assert.equal(await relayDecision(sock, '<u@example.test>'), 'continue');
      assert.match(await relayDecision(sock, '<x@other.invalid>'), /^550 /);
      const refused = await waitForLog(dir, (l) => l.event === 'decision' && l.action === 'reject');
      assert.equal(refused.mode, 'enforce');
      assert.equal(refused.recipient, '<\u2026@other.invalid>');
      assert.equal(refused.sender, '<\u2026@b.example>');
      const accepted = (await logLines(dir)).filter((l) => l.event === 'decision' && l.action === 'accept');
      assert.deepEqual(accepted, [], 'the accepted recipient is not logged at info');
      await writeFile(file, quiet('hash'));
      assert.equal(await d.reload(), true);
      assert.match(await relayDecision(sock, '<x@other.invalid>'), /^550 /);
      const hashed = await waitForLog(
        dir,
        (l) => l.event === 'decision' && l.config_generation === 2 && l.action === 'reject',
      );
      assert.match(String(hashed.recipient), /^<h:[0-9a-f]{12}@other\.invalid>$/);
    } finally {
      await d.stop();
    }
  });

  it('stop drains: an open session may finish within drain_timeout, then the rest are cut off', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    const sock = path.join(dir, 'milter.sock');
    await writeFile(file, config(dir));
    const d = await startDaemon(file);
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    const mta = await FakeMta.connect({ path: sock });
    await mta.negotiate();
    mta.send({ kind: 'connect', hostname: '[192.0.2.9]', family: 'inet4', port: 1, address: '192.0.2.9' });
    const stopping = d.stop();
    await new Promise((r) => setTimeout(r, 50));
    // Still served while draining; new connections are refused.
    assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<u@example.test>', args: [] }), {
      kind: 'continue',
    });
    await assert.rejects(FakeMta.connect({ path: sock }));
    const cut = await stopping;
    assert.equal(cut, 1, 'the idle session is cut off at the deadline');
    await mta.closed;
  });

  it('as a process: SIGHUP reloads, SIGTERM drains and exits 0', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    await writeFile(file, config(dir));
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitForLog(dir, (l) => l.event === 'started');
    await writeFile(file, config(dir, 'bogus: 1\n'));
    child.kill('SIGHUP');
    const bad = await waitForLog(dir, (l) => l.event === 'reload' && l.ok === false);
    assert.match(String((bad.errors as string[])[0]), /c\.yaml:\d+: bogus: unknown setting/);
    await writeFile(file, config(dir));
    child.kill('SIGHUP');
    await waitForLog(dir, (l) => l.event === 'reload' && l.ok === true);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await waitForLog(dir, (l) => l.event === 'stopped');
  });

  it('check-config prints every problem and exits 1; a good file exits 0; a bad start exits 2', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    await writeFile(file, 'listen: [nowhere]\nrelay_guard: { reply: "550 4.7.1 x" }\n');
    const r = spawnSync(process.execPath, [CLI, 'check-config', file], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /c\.yaml:1: listen\[0\]: /);
    assert.match(r.stdout, /c\.yaml:2: relay_guard\.reply: enhanced status code 4\.7\.1 does not match/);
    const ok = spawnSync(
      process.execPath,
      [CLI, 'check-config', path.join(PACKAGE_ROOT, 'examples', 'milter-policy.yaml')],
      { encoding: 'utf8' },
    );
    assert.equal(ok.status, 0);
    const start = spawnSync(process.execPath, [CLI, 'serve', '--config', file], { encoding: 'utf8' });
    assert.equal(start.status, 2);
    assert.match(start.stderr, /c\.yaml:1: listen\[0\]/);
  });

  it('workers: 2 — both workers serve the shared socket; SIGHUP is checked once and forwarded; SIGTERM exits 0', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'c.yaml');
    const sock = path.join(dir, 'milter.sock');
    await writeFile(file, config(dir, 'workers: 2\n'));
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitForLog(dir, (l) => l.event === 'started' && l.workers === 2);
    for (const w of [1, 2]) await waitForLog(dir, (l) => l.event === 'started' && l.worker === w);
    for (let i = 0; i < 6; i++) {
      assert.equal(
        await relayDecision(sock, '<x@other.invalid>'),
        '550 5.7.1 <x@other.invalid>... Relaying denied',
      );
    }
    await writeFile(file, config(dir, 'workers: 2\nbogus: 1\n'));
    child.kill('SIGHUP');
    await waitForLog(dir, (l) => l.event === 'reload' && l.ok === false && l.worker === 0);
    await writeFile(file, config(dir, 'workers: 2\nrelay_guard: { mode: observe }\n'));
    child.kill('SIGHUP');
    await waitForLog(dir, (l) => l.event === 'reload' && l.ok === true && l.worker === 1);
    await waitForLog(dir, (l) => l.event === 'reload' && l.ok === true && l.worker === 2);
    assert.equal(await relayDecision(sock, '<x@other.invalid>'), 'continue');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await waitForLog(dir, (l) => l.event === 'stopped' && l.worker === 0);
    assert.ok(
      !(await lstat(sock)
        .then(() => true)
        .catch(() => false)),
      'socket removed at stop',
    );
  });
});
