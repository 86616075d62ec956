// Ring (b): the metrics of the real daemon, driven by the fake MTA — a refused relay attempt counted
// as a decision (relay_guard, reject, rcpt) and a 550 reply, connections open and accepted, a
// protocol error by its code, /healthz 200 while serving and 503 while draining after stop; then
// `workers: 2` as a process, where the primary alone serves the sum over its workers, and
// `milter-policy stats` reading it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseMetrics } from '../../cli/stats.js';
import type { Sample } from '../../cli/stats.js';
import { startDaemon } from '../../daemon/serve.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';
import { FakeMta } from '../support/fake-mta.js';
import { readLogLines } from '../support/log-lines.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

function config(dir: string, extra = ''): string {
  return `listen: ["unix:${path.join(dir, 'milter.sock')}"]
socket: { mode: "0666" }
log: { level: info, file: ${path.join(dir, 'log.jsonl')} }
domains: { local: [example.test] }
shutdown: { drain_timeout: 3s }
metrics: { enabled: true, listen: "127.0.0.1:0" }
${extra}`;
}

function logLines(dir: string): Promise<Record<string, unknown>[]> {
  return readLogLines(path.join(dir, 'log.jsonl'));
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not seen`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function scrape(url: string): Promise<Sample[]> {
  const r = await fetch(url);
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return parseMetrics(text);
}

function value(all: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return all
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

const RELAY = { stage: 'rcpt', action: 'reject', check: 'relay_guard', mode: 'enforce' };

async function relayAttempt(sock: string): Promise<string> {
  const mta = await FakeMta.connect({ path: sock });
  await mta.negotiate();
  mta.macro('C', { v: 'Postfix 3.7.11' });
  mta.send({ kind: 'connect', hostname: '[192.0.2.9]', family: 'inet4', port: 1, address: '192.0.2.9' });
  mta.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
  const r = await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] });
  mta.close();
  await mta.closed;
  return r.kind === 'replycode' ? r.text : r.kind;
}

describe('metrics', () => {
  it('count a refused relay attempt, connections and protocol errors; /healthz 200 serving, 503 draining', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-metrics-'));
    const sock = path.join(dir, 'milter.sock');
    await writeFile(path.join(dir, 'c.yaml'), config(dir));
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    if ('errors' in d) assert.fail(d.errors.join('\n'));
    const url = d.metricsUrl;
    assert.ok(url !== null && /^http:\/\/127\.0\.0\.1:[0-9]+\/metrics$/.test(url), String(url));
    const healthz = url.replace(/\/metrics$/, '/healthz');
    let stopped = false;
    try {
      const before = await scrape(url);
      assert.equal(value(before, 'milter_policy_decisions_total', RELAY), 0);
      assert.equal((await fetch(healthz)).status, 200);

      assert.equal(await relayAttempt(sock), '550 5.7.1 <x@other.invalid>... Relaying denied');
      const after = await waitFor('connection closed', async () => {
        const s = await scrape(url);
        return value(s, 'milter_policy_connections_open') === 0 ? s : undefined;
      });
      assert.equal(value(after, 'milter_policy_decisions_total', RELAY), 1);
      assert.equal(value(after, 'milter_policy_replies_total', { code: '550' }), 1);
      assert.equal(value(after, 'milter_policy_connections_total'), 1);
      assert.equal(value(after, 'milter_policy_config_generation'), 1);
      assert.equal(value(after, 'milter_policy_stage_seconds_count', { stage: 'rcpt' }), 1);

      // a zero-length packet: protocol_error frame_empty, the connection closed
      const raw = net.connect({ path: sock });
      await new Promise<void>((r) => raw.once('connect', () => r()));
      raw.write(Buffer.from([0, 0, 0, 0]));
      await new Promise<void>((r) => raw.once('close', () => r()));
      const errs = await waitFor('protocol error', async () => {
        const s = await scrape(url);
        return value(s, 'milter_policy_protocol_errors_total', { code: 'frame_empty' }) === 1 ? s : undefined;
      });
      assert.equal(value(errs, 'milter_policy_connections_total'), 2);

      // draining: a session still open keeps the daemon in drain; /healthz says so
      const mta = await FakeMta.connect({ path: sock });
      await mta.negotiate();
      const open = await scrape(url);
      assert.equal(value(open, 'milter_policy_connections_open'), 1);
      const stopping = d.stop();
      stopped = true;
      const draining = await fetch(healthz);
      assert.equal(draining.status, 503);
      assert.equal(await draining.text(), 'draining\n');
      mta.close();
      assert.equal(await stopping, 0);
      await assert.rejects(fetch(healthz), 'the listener is closed after the drain');
    } finally {
      if (!stopped) await d.stop();
    }
  });

  it('a metrics port in use fails the start', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-metrics-'));
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    await writeFile(path.join(dir, 'c.yaml'), config(dir).replace('127.0.0.1:0', `127.0.0.1:${port}`));
    const d = await startDaemon(path.join(dir, 'c.yaml'));
    busy.close();
    assert.ok(
      'errors' in d && /metrics: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/.test(d.errors[0] ?? ''),
    );
  });

  it('workers: 2 — the primary serves the sum over the workers; stats prints it; SIGTERM exits 0', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-metrics-'));
    const sock = path.join(dir, 'milter.sock');
    const file = path.join(dir, 'c.yaml');
    await writeFile(file, config(dir, 'workers: 2\n'));
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const started = await waitFor('started', async () =>
        (await logLines(dir)).find((l) => l.event === 'started' && l.workers === 2),
      );
      const url = String(started.metrics);
      assert.match(url, /^http:\/\/127\.0\.0\.1:[0-9]+\/metrics$/);
      const healthz = url.replace(/\/metrics$/, '/healthz');
      assert.equal((await fetch(healthz)).status, 200);
      // until both workers have decided one (SCHED_NONE: the kernel picks who accepts)
      let attempts = 0;
      const workersServed = async (): Promise<number> =>
        new Set((await logLines(dir)).filter((l) => l.event === 'decision').map((l) => l.worker)).size;
      while (attempts < 4 || ((await workersServed()) < 2 && attempts < 60)) {
        assert.equal(await relayAttempt(sock), '550 5.7.1 <x@other.invalid>... Relaying denied');
        attempts++;
      }
      const s = await waitFor('all connections closed', async () => {
        const x = await scrape(url);
        return value(x, 'milter_policy_connections_open') === 0 ? x : undefined;
      });
      assert.equal(value(s, 'milter_policy_decisions_total', RELAY), attempts);
      assert.equal(value(s, 'milter_policy_replies_total', { code: '550' }), attempts);
      assert.equal(value(s, 'milter_policy_connections_total'), attempts);
      assert.equal(value(s, 'milter_policy_cluster_workers', { state: 'ready' }), 2);
      assert.equal(
        value(s, 'milter_policy_config_generation'),
        1,
        'the highest worker generation, not a sum',
      );
      assert.equal(await workersServed(), 2, `both workers decided within ${attempts} attempts`);

      const out = spawnSync(process.execPath, [CLI, 'stats', '--config', file], { encoding: 'utf8' });
      assert.equal(out.status, 1, 'the config names port 0: nobody listens there');
      const stats = spawnSync(process.execPath, [CLI, 'stats', '--url', url], { encoding: 'utf8' });
      assert.equal(stats.status, 0, stats.stderr);
      assert.match(stats.stdout, /^workers {7}2 of 2 ready, 0 restarted$/m);
      assert.match(stats.stdout, new RegExp(`^ {2}rcpt +reject +relay_guard +enforce +${attempts}$`, 'm'));
      assert.match(stats.stdout, new RegExp(`refusals by reply code: 550 ${attempts}$`, 'm'));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});
