// Ring (b): the Redis store against real redis-server processes started here (Debian's; nothing
// mocked): buckets, leases and bans shared by two store instances, NOSCRIPT recovery, key names
// and TTLs, Redis killed (SIGKILL) and restarted, Redis frozen (SIGSTOP), and a 3-master Redis
// Cluster. Without redis-server the suite skips with a message, except under CI=true, where it fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { RedisFailurePolicy, RedisState, RedisStoreOptions } from '../../daemon/redis-store.js';
import { RedisRateStore } from '../../daemon/redis-store.js';
import { MemoryBanStore } from '../../rules/ban-store.js';
import { MemoryRateStore } from '../../rules/rate-store.js';
import type { BucketLimit } from '../../rules/token-bucket.js';
import { MISSING, REDIS_CLI, RedisServer, servers, SKIP, sleep, until } from '../support/redis-server.js';

const BUDGET = 50;
/** Scheduling slack on top of the budget for "settles within the budget". */
const MARGIN = 50;

/** A plain client for looking at what the store wrote. */
async function raw<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
  try {
    return await f(r);
  } finally {
    r.disconnect();
  }
}

interface Probe {
  store: RedisRateStore;
  states: [RedisState, string][];
}

const open: RedisRateStore[] = [];

async function store(o: RedisStoreOptions): Promise<Probe> {
  const states: [RedisState, string][] = [];
  const s = new RedisRateStore({ timeoutMs: BUDGET, ...o, onState: (st, d) => states.push([st, d]) });
  open.push(s);
  await until('the store to be ready', () => s.healthy);
  return { store: s, states };
}

/** Runs `f` and returns how long it took to settle, and how (a thrown error is a failure). */
async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value?: T; error?: Error }> {
  const t0 = performance.now();
  try {
    const value = await f();
    return { ms: performance.now() - t0, value };
  } catch (e) {
    return { ms: performance.now() - t0, error: e as Error };
  }
}

const SLOW: BucketLimit = { rate: 1, perMs: 60_000, burst: 10 };

/**
 * Fallback stores, used once: lru-cache allocates a 1M-key cache's TTL arrays on the first set
 * (~70 ms here), which is the memory store's start-up cost, not the Redis store's.
 */
function warmLocal(): { rates: MemoryRateStore; bans: MemoryBanStore } {
  const local = { rates: new MemoryRateStore(), bans: new MemoryBanStore() };
  local.rates.take('warm', SLOW, 1, false);
  local.rates.acquire('warm', 'warm', 1, 1);
  local.bans.ban('warm', 'warm', 1);
  return local;
}

describe('Redis store', { skip: SKIP }, () => {
  let server: RedisServer;
  let a: RedisRateStore;
  let b: RedisRateStore;
  const prefix = `mp-test-${process.pid}:`;

  before(async () => {
    if (MISSING !== undefined) throw new Error(`${MISSING}: CI=true requires it`);
    server = await RedisServer.start();
    a = (await store({ url: server.url, prefix })).store;
    b = (await store({ url: server.url, prefix })).store;
  });

  after(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await Promise.all([...servers].map((s) => s.close()));
  });

  it('one bucket for two gateways: burst 10 across both, the 11th take through either is refused', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await (i % 2 === 0 ? a : b).take('client:192.0.2.1', SLOW, 1, false);
      assert.deepEqual(r, { allowed: true, remaining: 9 - i, retryAfterMs: 0 });
    }
    for (const s of [a, b]) {
      const r = await s.take('client:192.0.2.1', SLOW, 1, false);
      assert.equal(r.allowed, false);
      assert.equal(r.remaining, 0);
      assert.ok(r.retryAfterMs > 59_000 && r.retryAfterMs <= 60_000, `retryAfterMs ${r.retryAfterMs}`);
      assert.ok((await s.peek('client:192.0.2.1', SLOW)) < 0.01);
    }
    // The bucket is forgotten when it would be full again: 10 tokens at 1 a minute.
    const ttl = await raw(server.port, (r) => r.pttl(`${prefix}{client:192.0.2.1}:bucket`));
    assert.ok(ttl > 590_000 && ttl <= 600_000, `pttl ${ttl}`);
  });

  it('refills with the server clock, seen by both', async () => {
    const fast: BucketLimit = { rate: 10, perMs: 1000, burst: 10 };
    for (let i = 0; i < 10; i++) assert.equal((await a.take('refill', fast, 1, false)).allowed, true);
    assert.equal((await b.take('refill', fast, 1, false)).allowed, false);
    await sleep(300);
    const tokens = await b.peek('refill', fast);
    assert.ok(tokens > 2 && tokens < 4.5, `tokens after 300 ms: ${tokens}`);
    const r = await a.take('refill', fast, 2, false);
    assert.equal(r.allowed, true);
    assert.ok(r.remaining - Math.floor(tokens - 2) <= 1, `remaining ${r.remaining}, peeked ${tokens}`);
    assert.equal(await a.peek('never-seen', fast), 10);
  });

  it('countRefused drains down to -burst; without it a refused attempt costs nothing', async () => {
    const limit: BucketLimit = { rate: 1, perMs: 60_000, burst: 2 };
    assert.equal((await a.take('hammer', limit, 1, true)).allowed, true);
    assert.equal((await b.take('hammer', limit, 1, true)).allowed, true);
    const free = await a.take('hammer', limit, 1, false);
    assert.equal(free.allowed, false);
    assert.ok((await b.peek('hammer', limit)) < 0.01);
    const expected = [-1, -2, -2]; // floored at -burst
    for (const tokens of expected) {
      const r = await (tokens === -1 ? a : b).take('hammer', limit, 1, true);
      assert.equal(r.allowed, false);
      assert.ok(Math.abs((await a.peek('hammer', limit)) - tokens) < 0.01);
      const want = (1 - tokens) * 60_000;
      assert.ok(r.retryAfterMs > want - 1000 && r.retryAfterMs <= want, `retryAfterMs ${r.retryAfterMs}`);
    }
    const ttl = await raw(server.port, (r) => r.pttl(`${prefix}{hammer}:bucket`));
    assert.ok(ttl > 239_000 && ttl <= 240_000, `pttl ${ttl}`);
  });

  it('nonsense limits allow everything and store nothing', async () => {
    for (const limit of [
      { rate: 0, perMs: 1000, burst: 5 },
      { rate: 1, perMs: 1000, burst: 0 },
      { rate: 1, perMs: 0, burst: 5 },
      { rate: Number.NaN, perMs: 1000, burst: 5 },
    ]) {
      assert.deepEqual(await a.take('nonsense', limit, 1, true), {
        allowed: true,
        remaining: Number.MAX_SAFE_INTEGER,
        retryAfterMs: 0,
      });
    }
    assert.equal(await raw(server.port, (r) => r.exists(`${prefix}{nonsense}:bucket`)), 0);
  });

  it('leases: at most max, re-acquiring renews, release frees one, a crashed holder blocks for ttl only', async () => {
    assert.deepEqual(await a.acquire('conn:192.0.2.2', 'a-1', 2, 5000), { allowed: true, count: 1 });
    assert.deepEqual(await b.acquire('conn:192.0.2.2', 'b-1', 2, 5000), { allowed: true, count: 2 });
    assert.deepEqual(await a.acquire('conn:192.0.2.2', 'a-2', 2, 5000), { allowed: false, count: 2 });
    assert.deepEqual(await b.acquire('conn:192.0.2.2', 'a-1', 2, 5000), { allowed: true, count: 2 });
    await a.release('conn:192.0.2.2', 'b-1');
    assert.deepEqual(await a.acquire('conn:192.0.2.2', 'a-2', 2, 8000), { allowed: true, count: 2 });
    const ttl = await raw(server.port, (r) => r.pttl(`${prefix}{conn:192.0.2.2}:leases`));
    assert.ok(ttl > 7500 && ttl <= 8000, `pttl ${ttl} (the latest lease's expiry)`);

    // Gateway a takes the only lease and dies without releasing it.
    assert.equal((await a.acquire('conn:192.0.2.3', 'crashed', 1, 300)).allowed, true);
    assert.deepEqual(await b.acquire('conn:192.0.2.3', 'b-2', 1, 300), { allowed: false, count: 1 });
    await sleep(350);
    assert.deepEqual(await b.acquire('conn:192.0.2.3', 'b-2', 1, 300), { allowed: true, count: 1 });
    await b.release('conn:192.0.2.3', 'b-2');
    assert.equal(await raw(server.port, (r) => r.exists(`${prefix}{conn:192.0.2.3}:leases`)), 0);
  });

  it('a ban made through one store is seen through the other, until it expires', async () => {
    const t0 = Date.now();
    await a.ban('trap:192.0.2.4', 'sent to spam trap trap@example.test', 2000);
    const ban = await b.banned('trap:192.0.2.4');
    assert.equal(ban?.reason, 'sent to spam trap trap@example.test');
    assert.ok(ban !== null && Math.abs(ban.until - (t0 + 2000)) < 1000, `until ${ban?.until}`);
    assert.equal(await b.banned('trap:192.0.2.5'), null);
    await b.ban('trap:192.0.2.6', 'short', 150);
    assert.equal((await a.banned('trap:192.0.2.6'))?.reason, 'short');
    await sleep(250);
    assert.equal(await a.banned('trap:192.0.2.6'), null);
    const ttl = await raw(server.port, (r) => r.pttl(`${prefix}{trap:192.0.2.4}:ban`));
    assert.ok(ttl > 1000 && ttl <= 2000, `pttl ${ttl}`);
  });

  it('recovers from SCRIPT FLUSH (NOSCRIPT, then EVAL) without a failed call', async () => {
    await raw(server.port, (r) => r.config('RESETSTAT'));
    for (let i = 0; i < 3; i++) assert.equal((await a.take('flush', SLOW, 1, false)).remaining, 9 - i);
    await raw(server.port, (r) => r.script('FLUSH'));
    for (let i = 3; i < 6; i++) assert.equal((await a.take('flush', SLOW, 1, false)).remaining, 9 - i);
    assert.equal(a.healthy, true);
    const stats = await raw(server.port, (r) => r.info('all'));
    assert.match(stats, /errorstat_NOSCRIPT:count=1\b/);
    assert.match(stats, /cmdstat_evalsha:calls=[1-9]/);
    assert.match(stats, /cmdstat_eval:calls=1,/);
  });

  it('every key is hash-tagged by its logical key and has a TTL', async () => {
    const keys = await raw(server.port, (r) => r.keys(`${prefix}*`));
    assert.ok(keys.length >= 5, `keys: ${keys.join(' ')}`);
    for (const key of keys) {
      assert.match(key, /^mp-test-\d+:\{[^{}]+\}:(bucket|leases|ban)$/);
      const ttl = await raw(server.port, (r) => r.pttl(key));
      assert.ok(ttl > 0, `${key} has no TTL (${ttl})`);
    }
  });

  it('Redis killed mid-run: no throw, each call settles within the budget, per onFailure; back after restart', async () => {
    const dead = await RedisServer.start();
    const local = warmLocal();
    const probes = new Map<RedisFailurePolicy, Probe>();
    for (const onFailure of ['fallback', 'allow', 'tempfail'] as const) {
      probes.set(
        onFailure,
        await store({ url: dead.url, onFailure, ...(onFailure === 'fallback' ? { local } : {}) }),
      );
    }
    const each = async (f: (p: Probe, policy: RedisFailurePolicy) => Promise<void>): Promise<void> => {
      for (const [policy, p] of probes) await f(p, policy);
    };
    await each(async (p, policy) => {
      assert.equal((await p.store.take(`before:${policy}`, SLOW, 1, false)).remaining, 9);
    });

    // Killed with calls in flight: each is answered by Redis or by the policy, within the budget.
    const inFlight = [...probes].flatMap(([policy, p]) =>
      Array.from({ length: 10 }, () => timed(() => p.store.take(`flight:${policy}`, SLOW, 1, false))),
    );
    await dead.kill();
    const flight = await Promise.all(inFlight);
    for (const r of flight) if (r.error !== undefined) assert.match(r.error.message, /Redis is unavailable/);
    const limit: BucketLimit = { rate: 1, perMs: 60_000, burst: 2 };
    const durations = flight.map((r) => r.ms);
    const call = async <T>(f: () => Promise<T>): Promise<{ value?: T; error?: Error }> => {
      const r = await timed(f);
      durations.push(r.ms);
      return r;
    };
    for (let round = 0; round < 3; round++) {
      await each(async (p, policy) => {
        const s = p.store;
        const take = await call(() => s.take(`down:${policy}`, limit, 1, false));
        const peek = await call(() => s.peek(`down:${policy}`, limit));
        const lease = await call(() => s.acquire(`down:${policy}`, `l${round}`, 1, 10_000));
        const ban = await call(() => s.ban(`down:${policy}`, 'while down', 10_000));
        const banned = await call(() => s.banned(`down:${policy}`));
        const release = await call(() => s.release(`down:${policy}`, 'nobody'));
        assert.equal(ban.error, undefined, 'ban never rejects');
        assert.equal(release.error, undefined, 'release never rejects');
        switch (policy) {
          case 'fallback': {
            // The local memory store's answers: burst 2, then refused; one lease.
            const t = take.value;
            assert.equal(t?.allowed, round < 2);
            assert.equal(t?.remaining, round === 0 ? 1 : 0);
            assert.ok(round < 2 ? t?.retryAfterMs === 0 : (t?.retryAfterMs ?? 0) > 59_000);
            assert.ok(Math.abs((peek.value ?? Number.NaN) - (round === 0 ? 1 : 0)) < 0.01);
            assert.deepEqual(lease.value, { allowed: round === 0, count: 1 });
            assert.equal(banned.value?.reason, 'while down');
            break;
          }
          case 'allow':
            assert.deepEqual(take.value, {
              allowed: true,
              remaining: Number.MAX_SAFE_INTEGER,
              retryAfterMs: 0,
            });
            assert.equal(peek.value, 2);
            assert.deepEqual(lease.value, { allowed: true, count: 1 });
            assert.equal(banned.value, null);
            break;
          case 'tempfail':
            for (const r of [take, peek, lease, banned])
              assert.match(r.error?.message ?? '', /Redis is unavailable/);
            break;
        }
      });
    }
    const max = Math.max(...durations);
    const mean = durations.reduce((x, y) => x + y, 0) / durations.length;
    console.log(
      `# Redis down: ${durations.length} calls, max ${max.toFixed(1)} ms, mean ${mean.toFixed(2)} ms`,
    );
    assert.ok(max < BUDGET + MARGIN, `slowest call ${max} ms`);
    assert.ok(local.rates.peek('down:fallback', limit) < 0.01, 'fallback takes went to the local store');
    for (const p of probes.values()) {
      assert.equal(p.store.healthy, false);
      assert.deepEqual(
        p.states.map(([st]) => st),
        ['down'],
      );
    }

    const t0 = Date.now();
    await dead.run();
    await each(async (p) => await until('reconnect after restart', () => p.store.healthy, 3000));
    console.log(`# Redis restarted: all stores ready again after ${Date.now() - t0} ms`);
    await each(async (p, policy) => {
      assert.deepEqual(
        p.states.map(([st]) => st),
        ['down', 'up'],
      );
      assert.equal((await p.store.take(`after:${policy}`, SLOW, 1, false)).remaining, 9);
      assert.equal(await raw(dead.port, (r) => r.exists(`mp:{after:${policy}}:bucket`)), 1);
    });
    await dead.close();
  });

  it('no Redis yet at start-up: down reported once, calls follow the policy; up when it starts', async () => {
    const later = await RedisServer.start([], false);
    const states: [RedisState, string][] = [];
    const s = new RedisRateStore({
      url: later.url,
      onFailure: 'tempfail',
      timeoutMs: BUDGET,
      onState: (st, d) => states.push([st, d]),
    });
    open.push(s);
    await until('down reported', () => states.length > 0, 2000);
    assert.equal(states[0]?.[0], 'down');
    assert.match(states[0]?.[1] ?? '', /ECONNREFUSED/);
    const r = await timed(() => s.take('early', SLOW, 1, false));
    assert.match(r.error?.message ?? '', /^Redis is unavailable \(take at 127\.0\.0\.1:\d+\): /);
    assert.ok(r.ms < 5, `${r.ms} ms`);
    await later.run();
    await until('ready', () => s.healthy, 3000);
    assert.deepEqual(
      states.map(([st]) => st),
      ['down', 'up'],
    );
    assert.equal((await s.take('early', SLOW, 1, false)).remaining, 9);
    await s.close();
    await later.close();
  });

  it('Redis frozen (SIGSTOP): one call waits the budget, the rest go straight to the policy', async () => {
    const frozen = await RedisServer.start();
    const p = await store({ url: frozen.url, onFailure: 'fallback', local: warmLocal() });
    assert.equal((await p.store.take('frozen', SLOW, 1, false)).remaining, 9);
    frozen.signal('SIGSTOP');
    try {
      const first = await timed(() => p.store.take('frozen', SLOW, 1, false));
      assert.equal(first.value?.remaining, 9, 'answered by a fresh local bucket');
      assert.ok(first.ms >= BUDGET - 5 && first.ms < BUDGET + MARGIN, `first call ${first.ms} ms`);
      const rest: number[] = [];
      for (let i = 0; i < 20; i++) rest.push((await timed(() => p.store.take('frozen', SLOW, 1, false))).ms);
      const slowest = Math.max(...rest);
      console.log(
        `# Redis frozen: first call ${first.ms.toFixed(1)} ms, next 20 at most ${slowest.toFixed(2)} ms`,
      );
      assert.ok(slowest < 10, `calls after the failure should not wait: ${slowest} ms`);
      assert.deepEqual(
        p.states.map(([st]) => st),
        ['down'],
      );
    } finally {
      frozen.signal('SIGCONT');
    }
    await until('ready after SIGCONT', () => p.store.healthy, 3000);
    assert.deepEqual(
      p.states.map(([st]) => st),
      ['down', 'up'],
    );
    // The take that timed out was in Redis's socket buffer when it stopped, and Redis runs it when
    // it resumes: a call past its budget may still have happened (so: 8 or 7 left now).
    const left = (await p.store.take('frozen', SLOW, 1, false)).remaining;
    assert.ok(left === 8 || left === 7, `remaining ${left}`);
    await frozen.close();
  });

  it('works against a 3-master Redis Cluster through seed nodes', { timeout: 60_000 }, async () => {
    const t0 = Date.now();
    const nodes = await Promise.all(
      [0, 1, 2].map(() =>
        RedisServer.start([
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
        ]),
      ),
    );
    const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
    const create = spawnSync(REDIS_CLI ?? 'redis-cli', ['--cluster', 'create', ...seeds, '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(create.status, 0, `redis-cli --cluster create: ${create.stdout}${create.stderr}`);
    const ok = async (): Promise<boolean> => {
      const infos = await Promise.all(nodes.map((n) => raw(n.port, (r) => r.cluster('INFO'))));
      return infos.every((i) => /cluster_state:ok/.test(String(i)));
    };
    while (!(await ok())) {
      if (Date.now() - t0 > 20_000) throw new Error('cluster_state never became ok');
      await sleep(50);
    }
    console.log(`# Redis Cluster: 3 masters up and cluster_state:ok after ${Date.now() - t0} ms`);

    const c1 = (await store({ cluster: seeds.slice(0, 1), timeoutMs: 200 })).store;
    const c2 = (await store({ cluster: seeds.slice(2), timeoutMs: 200 })).store;
    const clients = Array.from({ length: 12 }, (_, i) => `client:198.51.100.${i}`);
    for (const key of clients) {
      for (let i = 0; i < 10; i++)
        assert.equal((await (i % 2 === 0 ? c1 : c2).take(key, SLOW, 1, false)).allowed, true);
      assert.equal((await c2.take(key, SLOW, 1, false)).allowed, false);
      assert.equal((await c1.acquire(key, 'x', 1, 5000)).allowed, true);
      assert.equal((await c2.acquire(key, 'y', 1, 5000)).allowed, false);
      await c1.ban(key, 'cluster ban', 5000);
      assert.equal((await c2.banned(key))?.reason, 'cluster ban');
    }
    await Promise.all(nodes.map((n) => raw(n.port, (r) => r.script('FLUSH'))));
    assert.equal((await c2.take(clients[0] ?? '', SLOW, 1, false)).allowed, false);
    assert.equal(c1.healthy && c2.healthy, true);

    // The keys are spread over the masters; a logical key's bucket, leases and ban sit together.
    const byNode = await Promise.all(nodes.map((n) => raw(n.port, (r) => r.keys('mp:*'))));
    assert.ok(byNode.filter((k) => k.length > 0).length >= 2, 'keys on at least two masters');
    for (const [i, keys] of byNode.entries()) {
      for (const key of keys) {
        const tag = /^mp:\{([^{}]+)\}:/.exec(key)?.[1] ?? '';
        for (const kind of ['bucket', 'leases', 'ban']) assert.ok(keys.includes(`mp:{${tag}}:${kind}`));
        assert.ok((await raw(nodes[i]?.port ?? 0, (r) => r.pttl(key))) > 0, `${key} has a TTL`);
      }
    }
    assert.equal(byNode.flat().length, clients.length * 3);
  });
});
