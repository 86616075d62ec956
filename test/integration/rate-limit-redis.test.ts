// Ring (b): rate limits shared by two real daemon processes through one real redis-server (nothing
// mocked; the MTA side is the in-process fake MTA speaking the milter protocol): one limit enforced
// by both together, and Redis killed mid-run and restarted under each store.redis.on_failure
// setting: no crash, every reply within the budget, the configured behaviour meanwhile, Redis used
// again after the restart. Without redis-server it skips, except under CI=true, where it fails.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../daemon/version.js';
import { FakeMta } from '../support/fake-mta.js';
import { MISSING, RedisServer, SKIP, sleep } from '../support/redis-server.js';
import { readLogLines } from '../support/log-lines.js';

const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');
const LIMIT_REPLY = '452 4.3.2 Message rate limit exceeded.';
/** Generous: a reply must come back well before an MTA's milter timeout, not at a fine deadline. */
const REPLY_WITHIN_MS = 1000;

interface Daemon {
  readonly dir: string;
  readonly socket: string;
  readonly proc: ChildProcess;
  stderr: string;
}

const running = new Set<Daemon>();

async function startDaemon(redisUrl: string, onFailure: string): Promise<Daemon> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-rl-redis-'));
  const socket = path.join(dir, 'milter.sock');
  const config = `listen: ["unix:${socket}"]
socket: { mode: "0666" }
log: { level: info, file: ${path.join(dir, 'log.jsonl')} }
domains: { local: [example.test] }
trusted_networks: ["127.0.0.1/32"]
shutdown: { drain_timeout: 300ms }
rate_limits:
  on_error: tempfail
  limits:
    - { name: msgs, counts: messages, rate: 10, per: 1h }
store:
  type: redis
  redis: { url: "${redisUrl}", timeout: 50ms, on_failure: ${onFailure} }
`;
  await writeFile(path.join(dir, 'c.yaml'), config);
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', path.join(dir, 'c.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const d: Daemon = { dir, socket, proc, stderr: '' };
  proc.stderr?.on('data', (b: Buffer) => (d.stderr += b.toString()));
  running.add(d);
  const end = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}: ${d.stderr}`);
    if ((await logLines(d)).some((l) => l['event'] === 'started')) return d;
    if (Date.now() > end) throw new Error(`daemon did not start: ${d.stderr}`);
    await sleep(20);
  }
}

async function stopDaemon(d: Daemon): Promise<number | null> {
  running.delete(d);
  if (d.proc.exitCode !== null) return d.proc.exitCode;
  const exited = new Promise<number | null>((r) => d.proc.once('exit', (code) => r(code)));
  d.proc.kill('SIGTERM');
  const code = await exited;
  await rm(d.dir, { recursive: true, force: true });
  return code;
}

function logLines(d: Daemon): Promise<Record<string, unknown>[]> {
  return readLogLines(path.join(d.dir, 'log.jsonl'));
}

/** The log lines matching `pred` once there are `count` of them (the log is written in batches). */
async function waitLog(
  d: Daemon,
  pred: (l: Record<string, unknown>) => boolean,
  count = 1,
): Promise<Record<string, unknown>[]> {
  const end = Date.now() + 5000;
  for (;;) {
    const hits = (await logLines(d)).filter(pred);
    if (hits.length >= count || Date.now() > end) return hits;
    await sleep(50);
  }
}

/** One message (MAIL, one RCPT) through the daemon, from `client`: the RCPT reply text, or `continue`. */
async function mailReply(d: Daemon, client: string): Promise<{ reply: string; ms: number }> {
  const mta = await FakeMta.connect({ path: d.socket });
  try {
    await mta.negotiate();
    mta.macro('C', { v: 'Postfix 3.7.11' });
    mta.send({ kind: 'connect', hostname: `[${client}]`, family: 'inet4', port: 1, address: client });
    const start = performance.now();
    // MAIL is only watched (no reply: NR_MAIL); the message's verdict comes at its RCPT
    mta.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
    const r = await mta.request({ kind: 'rcpt', recipient: '<u@example.test>', args: [] });
    const ms = performance.now() - start;
    return { reply: r.kind === 'replycode' ? r.text : r.kind, ms };
  } finally {
    mta.close();
  }
}

after(async () => {
  await Promise.all([...running].map(stopDaemon));
});

describe('rate limits shared through Redis by two daemons', { skip: SKIP }, () => {
  it('burst 10 across both: the 11th message through either is refused; another client is not', async () => {
    if (MISSING !== undefined) assert.fail(MISSING);
    const redis = await RedisServer.start();
    try {
      const a = await startDaemon(redis.url, 'fallback');
      const b = await startDaemon(redis.url, 'fallback');
      const replies: string[] = [];
      for (let i = 0; i < 10; i++) replies.push((await mailReply(i % 2 === 0 ? a : b, '192.0.2.9')).reply);
      assert.deepEqual(replies, Array(10).fill('continue'), 'ten messages through the two daemons');
      assert.equal((await mailReply(a, '192.0.2.9')).reply, LIMIT_REPLY, 'the 11th through a');
      assert.equal((await mailReply(b, '192.0.2.9')).reply, LIMIT_REPLY, 'and through b');
      assert.equal((await mailReply(b, '192.0.2.10')).reply, 'continue', 'another client');
      const refused = await waitLog(b, (l) => l['event'] === 'decision' && l['rule'] === 'rate_limit');
      assert.equal(refused.length, 1, JSON.stringify(refused));
      assert.equal(refused[0]?.['reply'], LIMIT_REPLY);
      assert.equal(await stopDaemon(a), 0);
      assert.equal(await stopDaemon(b), 0);
    } finally {
      await redis.close();
    }
  });

  for (const onFailure of ['fallback', 'allow', 'tempfail'] as const) {
    it(`Redis killed mid-run and restarted, on_failure ${onFailure}: no crash, replies within the budget, recovery`, async () => {
      if (MISSING !== undefined) assert.fail(MISSING);
      const redis = await RedisServer.start();
      try {
        const d = await startDaemon(redis.url, onFailure);
        const client = '192.0.2.20';
        // 8 of the 10 in Redis
        for (let i = 0; i < 8; i++) assert.equal((await mailReply(d, client)).reply, 'continue');
        await redis.kill();
        const during: string[] = [];
        for (let i = 0; i < 12; i++) {
          const r = await mailReply(d, client);
          assert.ok(r.ms < REPLY_WITHIN_MS, `reply ${i + 1} while Redis is down took ${r.ms.toFixed(0)} ms`);
          during.push(r.reply);
        }
        if (onFailure === 'fallback') {
          // counted from scratch in this daemon's memory: 10 allowed, then refused
          assert.deepEqual(during, [...Array<string>(10).fill('continue'), LIMIT_REPLY, LIMIT_REPLY]);
        } else if (onFailure === 'allow') {
          assert.deepEqual(during, Array(12).fill('continue'));
        } else {
          for (const r of during) assert.match(r, /^451 4\.3\.0 /, 'the check errs, on_error tempfail');
        }
        assert.equal(d.proc.exitCode, null, 'still running');
        const down = await waitLog(d, (l) => l['event'] === 'redis_unavailable');
        assert.equal(down.length, 1, 'logged once');
        await redis.run();
        const up = await waitLog(d, (l) => l['event'] === 'redis_recovered');
        assert.equal(up.length, 1, 'redis_recovered within 5 s of the restart');
        // the restarted Redis is empty: a fresh bucket of 10 there, refused at the 11th
        const after: string[] = [];
        for (let i = 0; i < 11; i++) after.push((await mailReply(d, client)).reply);
        assert.deepEqual(
          after,
          [...Array<string>(10).fill('continue'), LIMIT_REPLY],
          'counted in Redis again',
        );
        assert.equal(await stopDaemon(d), 0, 'clean exit');
      } finally {
        await redis.close();
      }
    });
  }
});
