import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBanStore } from '../../rules/ban-store.js';
import type { CheckResult, PolicyInput, PolicyMemo, PolicyStage, SessionHooks } from '../../rules/check.js';
import { NO_MEMO } from '../../rules/check.js';
import { clientIp, parseNetwork } from '../../rules/networks.js';
import { prefixKey, senderKey, sourceKeys } from '../../rules/rate-keys.js';
import type { BadRecipientSpec, RateLimitOptions, RateLimitSpec } from '../../rules/rate-limit.js';
import { BadRecipientThrottle, RateLimit } from '../../rules/rate-limit.js';
import type { RateStore } from '../../rules/rate-store.js';
import { MemoryRateStore } from '../../rules/rate-store.js';
import { idleMs, take, tokensAt } from '../../rules/token-bucket.js';
import { FakeSession } from '../support/fake-session.js';

const budget = { ms: 1000, signal: new AbortController().signal };
const MIN = 60_000;

describe('token bucket math (injected clock)', () => {
  const limit = { rate: 10, perMs: MIN, burst: 10 };
  it('a fresh bucket allows burst attempts, then refuses', () => {
    let state = null;
    for (let i = 0; i < 10; i++) {
      const r = take(state, 0, limit);
      assert.equal(r.allowed, true, `attempt ${i + 1}`);
      assert.equal(r.remaining, 9 - i);
      state = r.state;
    }
    const refused = take(state, 0, limit);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryAfterMs, 6000, 'one token per 6 s');
  });
  it('refills at rate/per, capped at burst; a clock going back adds nothing', () => {
    const empty = { tokens: 0, at: 1000 };
    assert.equal(tokensAt(empty, 1000 + 6000, limit), 1);
    assert.equal(tokensAt(empty, 1000 + 30_000, limit), 5);
    assert.equal(tokensAt(empty, 1000 + 10 * MIN, limit), 10);
    assert.equal(tokensAt(empty, 0, limit), 0);
    assert.equal(take(empty, 1000 + 5999, limit).allowed, false);
    assert.equal(take(empty, 1000 + 6000, limit).allowed, true);
  });
  it('refused attempts cost nothing by default; with countRefused they drain down to -burst', () => {
    const empty = { tokens: 0, at: 0 };
    assert.equal(take(empty, 0, limit).state.tokens, 0);
    let s = take(empty, 0, limit, 1, true).state;
    assert.equal(s.tokens, -1);
    for (let i = 0; i < 30; i++) s = take(s, 0, limit, 1, true).state;
    assert.equal(s.tokens, -10, 'bounded below');
    assert.equal(take(s, 0, limit, 1, true).retryAfterMs, 11 * 6000);
  });
  it('costs above one and the limit at its value', () => {
    const r = take(null, 0, { rate: 1, perMs: 1000, burst: 3 }, 3);
    assert.equal(r.allowed, true);
    assert.equal(take(r.state, 0, { rate: 1, perMs: 1000, burst: 3 }, 1).allowed, false);
    assert.equal(take(null, 0, { rate: 1, perMs: 1000, burst: 3 }, 4).allowed, false);
  });
  it('nonsense limits allow everything; idleMs says when a bucket is full again', () => {
    assert.equal(take({ tokens: 0, at: 0 }, 0, { rate: 0, perMs: 1000, burst: 1 }).allowed, true);
    assert.equal(idleMs({ tokens: 4, at: 0 }, limit), 36_000);
  });
});

describe('rate keys', () => {
  const v4 = clientIp('192.0.2.77');
  const v6 = clientIp('2001:db8:1:2:3:4:5:6');
  assert.ok(v4 !== null && v6 !== null);
  it('cuts addresses to prefixes', () => {
    assert.equal(prefixKey(v4, 32), '192.0.2.77');
    assert.equal(prefixKey(v4, 24), '192.0.2.0/24');
    assert.equal(prefixKey(v4, 20), '192.0.0.0/20');
    assert.equal(prefixKey(v6, 128), '2001:db8:1:2:3:4:5:6');
    assert.equal(prefixKey(v6, 64), '2001:db8:1:2::/64');
    assert.equal(prefixKey(v6, 48), '2001:db8:1::/48');
    assert.equal(prefixKey(v6, 60), '2001:db8:1::/60');
  });
  it('one key per prefix of the family, no repeats', () => {
    assert.deepEqual(sourceKeys(v4, [32, 24, 32], [64]), ['192.0.2.77', '192.0.2.0/24']);
    assert.deepEqual(sourceKeys(v6, [32], [128, 64, 48]), [
      '2001:db8:1:2:3:4:5:6',
      '2001:db8:1:2::/64',
      '2001:db8:1::/48',
    ]);
  });
  it('senders: bare and lower case, the null sender has no key', () => {
    assert.equal(senderKey('<Bulk@Example.COM>'), 'bulk@example.com');
    assert.equal(senderKey('<>'), null);
    assert.equal(senderKey(null), null);
  });
});

describe('memory store', () => {
  it('is bounded: a million distinct sources never hold more than maxKeys buckets', () => {
    const store = new MemoryRateStore({ maxKeys: 1000 });
    const limit = { rate: 1, perMs: MIN, burst: 5 };
    for (let i = 0; i < 20_000; i++) store.take(`k${i}`, limit, 1, false);
    assert.equal(store.size.buckets, 1000);
    for (let i = 0; i < 20_000; i++) {
      store.acquire(`c${i}`, 'l', 5, 1000);
      store.release(`c${i}`, 'l');
    }
    assert.equal(store.size.leases, 1000);
  });
  it('a bucket refills with time; an old one reads as full', () => {
    let now = 0;
    const store = new MemoryRateStore({ maxKeys: 10, now: () => now });
    const limit = { rate: 1, perMs: 1000, burst: 2 };
    store.take('a', limit, 1, false);
    store.take('a', limit, 1, false);
    assert.equal(store.take('a', limit, 1, false).allowed, false);
    now = 1000;
    assert.equal(store.peek('a', limit), 1);
    now = 5000;
    assert.equal(store.peek('a', limit), 2);
  });
  it('leases: at most max live, renewable, released, and expiring (a dead holder never locks out)', () => {
    let now = 0;
    const store = new MemoryRateStore({ maxKeys: 10, now: () => now });
    assert.equal(store.acquire('c', 'l1', 2, 1000).allowed, true);
    assert.equal(store.acquire('c', 'l2', 2, 1000).allowed, true);
    const third = store.acquire('c', 'l3', 2, 1000);
    assert.deepEqual(third, { allowed: false, count: 2 });
    assert.equal(store.acquire('c', 'l1', 2, 1000).allowed, true, 'renewing a held lease');
    store.release('c', 'l2');
    assert.equal(store.acquire('c', 'l3', 2, 1000).allowed, true);
    now = 1001;
    assert.deepEqual(
      store.acquire('c', 'l4', 2, 1000),
      { allowed: true, count: 1 },
      'expired leases dropped',
    );
  });
});

/** A memo that remembers for one transaction (the daemon's adapter clears it at each MAIL). */
function transactionMemo(): PolicyMemo {
  const conn = new Map<string, unknown>();
  const msg = new Map<string, unknown>();
  const remember =
    (m: Map<string, unknown>) =>
    <T>(key: string, compute: () => T): T => {
      if (!m.has(key)) m.set(key, compute());
      return m.get(key) as T;
    };
  return { connection: remember(conn), message: remember(msg) };
}

function input(
  stage: PolicyStage,
  session: SessionHooks | undefined,
  extra: Partial<PolicyInput> = {},
  address = '192.0.2.9',
): PolicyInput {
  return {
    stage,
    client: { address, ip: clientIp(address), hostname: `[${address}]`, port: 1, kind: 'inet4' },
    helo: 'h',
    sender: '<a@b.example>',
    senderArgs: [],
    recipient: stage === 'rcpt' ? '<u@example.test>' : null,
    recipients: [],
    macro: () => undefined,
    memo: NO_MEMO,
    ...(session === undefined ? {} : { session }),
    ...extra,
  };
}

function spec(
  counts: RateLimitSpec['counts'],
  burst: number,
  extra: Partial<RateLimitSpec> = {},
): RateLimitSpec {
  return {
    name: counts,
    counts,
    by: 'client',
    ipv4Prefixes: [32],
    ipv6Prefixes: [64],
    limit: { rate: burst, perMs: MIN, burst },
    countRefused: false,
    reply:
      counts === 'concurrent'
        ? '452 4.3.2 Too many open connections.'
        : '452 4.3.2 Connection rate limit exceeded.',
    ...extra,
  };
}

function rateLimit(limits: RateLimitSpec[], extra: Partial<RateLimitOptions> = {}): RateLimit {
  return new RateLimit({
    store: new MemoryRateStore(),
    bans: new MemoryBanStore(),
    limits,
    accessLimits: null,
    reportAt: 'rcpt',
    terminate: false,
    leaseMs: 600_000,
    instance: 'test',
    allow: [],
    trustedNetworks: [],
    trustAuthenticated: true,
    mode: 'enforce',
    budgetMs: 1000,
    onError: 'defer_if_permit',
    ...extra,
  });
}

const run = (c: RateLimit | BadRecipientThrottle, i: PolicyInput): CheckResult =>
  c.run(i, budget) as CheckResult;

/** One SMTP session: connect, then one RCPT; the result of the RCPT. */
function connectThenRcpt(c: RateLimit, address = '192.0.2.9'): { rcpt: CheckResult; session: FakeSession } {
  const session = new FakeSession();
  // reported at RCPT: the connection is only watched at connect (no reply the MTA waits for)
  assert.ok(!c.stages.includes('connect') && c.watches.includes('connect'));
  c.watch(input('connect', session, {}, address));
  return { rcpt: run(c, input('rcpt', session, {}, address)), session };
}

describe('rate limit check', () => {
  it('connections: the burst+1th connection is refused at RCPT with sendmail text, others unaffected', () => {
    const c = rateLimit([spec('connections', 3)]);
    for (let i = 0; i < 3; i++) assert.equal(connectThenRcpt(c).rcpt.kind, 'pass', `connection ${i + 1}`);
    const over = connectThenRcpt(c).rcpt;
    assert.equal(over.kind, 'hit');
    assert.ok(over.kind === 'hit' && over.verdict.action === 'tempfail');
    assert.deepEqual(over.kind === 'hit' && 'reply' in over.verdict ? over.verdict.reply : null, {
      code: 452,
      dsn: '4.3.2',
      text: 'Connection rate limit exceeded.',
    });
    assert.equal(connectThenRcpt(c, '192.0.2.10').rcpt.kind, 'pass', 'a second client is unaffected');
  });
  it('a connection is counted once, however many RCPTs and stages it has', () => {
    const c = rateLimit([spec('connections', 1)]);
    const session = new FakeSession();
    c.watch(input('connect', session));
    c.watch(input('connect', session));
    for (let i = 0; i < 5; i++) assert.equal(run(c, input('rcpt', session)).kind, 'pass');
  });
  it('report_at connect refuses at connect; terminate makes it 421', () => {
    const c = rateLimit([spec('connections', 1)], { reportAt: 'connect', terminate: true });
    assert.ok(c.stages.includes('connect'), 'decided at connect');
    assert.equal(run(c, input('connect', new FakeSession())).kind, 'pass');
    const over = run(c, input('connect', new FakeSession()));
    assert.ok(over.kind === 'hit' && over.verdict.action === 'tempfail');
    assert.equal(over.kind === 'hit' && 'reply' in over.verdict ? over.verdict.reply.code : 0, 421);
  });
  it('/24 keys aggregate a network; the /32 key alone does not', () => {
    const c = rateLimit([spec('connections', 2, { ipv4Prefixes: [32, 24] })]);
    assert.equal(connectThenRcpt(c, '192.0.2.1').rcpt.kind, 'pass');
    assert.equal(connectThenRcpt(c, '192.0.2.2').rcpt.kind, 'pass');
    const third = connectThenRcpt(c, '192.0.2.3').rcpt;
    assert.equal(third.kind, 'hit');
    assert.match(third.kind === 'hit' ? third.reason : '', /192\.0\.2\.0\/24/);
  });
  it('concurrent connections are leases: the limit+1th open connection is refused, closing one frees a place', () => {
    const c = rateLimit([spec('concurrent', 2)]);
    const a = connectThenRcpt(c);
    const b = connectThenRcpt(c);
    assert.equal(a.rcpt.kind, 'pass');
    assert.equal(b.rcpt.kind, 'pass');
    const third = connectThenRcpt(c).rcpt;
    assert.equal(third.kind, 'hit');
    assert.match(third.kind === 'hit' ? third.reason : '', /more than 2 open connections/);
    a.session.close();
    assert.equal(connectThenRcpt(c).rcpt.kind, 'pass');
  });
  it('MAIL is never waited for with report_at rcpt (watched: messages counted, leases renewed); decided with report_at connect', () => {
    const concurrent = rateLimit([spec('concurrent', 2)]);
    assert.deepEqual(concurrent.stages, ['rcpt']);
    assert.deepEqual(concurrent.watches, ['connect', 'mail']);
    const messages = rateLimit([spec('messages', 2)]);
    assert.deepEqual(messages.stages, ['rcpt']);
    assert.deepEqual(messages.watches, ['mail']);
    const early = rateLimit([spec('messages', 2)], { reportAt: 'connect' });
    assert.deepEqual(early.stages, ['mail', 'rcpt']);
  });
  it('messages and recipients, by client, sender and authenticated user; a message refused at MAIL is reported at its RCPTs', () => {
    const c = rateLimit([
      spec('messages', 2, {
        name: 'msgs_by_sender',
        by: 'sender',
        reply: '452 4.3.2 Message rate limit exceeded.',
      }),
    ]);
    const r = rateLimit([
      spec('recipients', 3, { name: 'rcpts', reply: '452 4.3.2 Recipient rate limit exceeded.' }),
    ]);
    const s = new FakeSession();
    /** One transaction: MAIL watched, then `rcpts` RCPTs decided; their results. */
    const message = (rcpts: number, extra: Partial<PolicyInput> = {}, limit = c): CheckResult[] => {
      const memo = transactionMemo();
      limit.watch(input('mail', s, { memo, ...extra }));
      return Array.from({ length: rcpts }, () => run(limit, input('rcpt', s, { memo, ...extra })));
    };
    assert.equal(message(1)[0]?.kind, 'pass');
    assert.equal(message(1)[0]?.kind, 'pass');
    const third = message(2);
    for (const r of third) {
      assert.ok(r.kind === 'hit' && 'reply' in r.verdict, JSON.stringify(r));
      assert.equal(r.verdict.reply.text, 'Message rate limit exceeded.');
    }
    assert.equal(message(1, { sender: '<other@b.example>' })[0]?.kind, 'pass', 'another sender');
    assert.equal(message(1, { sender: '<>' })[0]?.kind, 'pass', 'the null sender has no key');
    assert.deepEqual(
      message(2, {}, r).map((x) => x.kind),
      ['pass', 'pass'],
    );
    const rcpts = message(2, {}, r);
    assert.deepEqual(
      rcpts.map((x) => x.kind),
      ['pass', 'hit'],
      'the 4th recipient',
    );
    const over = rcpts[1];
    assert.ok(over?.kind === 'hit' && 'reply' in over.verdict);
    assert.equal(over.verdict.reply.text, 'Recipient rate limit exceeded.');
    const byUser = rateLimit([spec('messages', 1, { by: 'user' })]);
    const auth = { macro: (n: string) => (n === 'auth_authen' ? 'alice' : undefined) };
    assert.equal(message(1, auth, byUser)[0]?.kind, 'pass');
    assert.equal(message(1, auth, byUser)[0]?.kind, 'hit', 'per-user limits apply to authenticated clients');
    assert.equal(message(1, {}, byUser)[0]?.kind, 'pass', 'unauthenticated: no key');
  });
  it('exempt: trusted networks, the allow list, authenticated clients; the explain tool counts nothing', () => {
    const net = parseNetwork('192.0.2.0/24');
    assert.ok(net.ok);
    for (const extra of [{ trustedNetworks: [net.network] }, { allow: [net.network] }]) {
      const c = rateLimit([spec('connections', 1)], extra);
      for (let i = 0; i < 3; i++) {
        const s = new FakeSession();
        c.watch(input('connect', s));
        assert.equal(run(c, input('rcpt', s)).kind, 'skip');
      }
    }
    const c = rateLimit([spec('messages', 1)]);
    const auth = { macro: (n: string) => (n === 'auth_authen' ? 'alice' : undefined) };
    const s = new FakeSession();
    const message = (extra: Partial<PolicyInput>): string => {
      const memo = transactionMemo();
      c.watch(input('mail', s, { memo, ...extra }));
      return run(c, input('rcpt', s, { memo, ...extra })).kind;
    };
    for (let i = 0; i < 3; i++) assert.equal(message(auth), 'skip', 'authenticated: not counted');
    assert.equal(message({}), 'pass', 'the first unauthenticated message');
    assert.equal(message({}), 'hit');
    const store = new MemoryRateStore();
    const explained = rateLimit([spec('connections', 1)], { store });
    explained.watch(input('connect', undefined));
    assert.equal(run(explained, input('rcpt', undefined)).kind, 'skip');
    assert.equal(store.size.buckets, 0);
  });
  it('a store that fails is an error result (on_error), never a throw', async () => {
    const memory = new MemoryRateStore();
    const broken: RateStore = {
      take: () => Promise.reject(new Error('Redis unavailable')),
      peek: (k, l) => memory.peek(k, l),
      acquire: (k, l, m, t) => memory.acquire(k, l, m, t),
      release: (k, l) => memory.release(k, l),
    };
    const c = rateLimit([spec('connections', 1)], { store: broken });
    const s = new FakeSession();
    c.watch(input('connect', s));
    const r = await c.run(input('rcpt', s), budget);
    assert.equal(r.kind, 'error');
    assert.match(r.kind === 'error' ? r.error : '', /Redis unavailable/);
  });
});

function throttle(
  extra: Partial<BadRecipientSpec> = {},
  bans = new MemoryBanStore(),
  onBan?: (client: string) => void,
): BadRecipientThrottle {
  return new BadRecipientThrottle({
    spec: {
      perConnection: 3,
      perSource: 0,
      windowMs: 10 * MIN,
      ipv4Prefix: 32,
      ipv6Prefix: 64,
      reply: '452 4.3.2 Too many refused recipients, try again later',
      banMs: 0,
      bannedReply: '450 4.7.1 Too many refused recipients from %i, try again later',
      ...extra,
    },
    store: new MemoryRateStore(),
    bans,
    terminate: false,
    allow: [],
    trustedNetworks: [],
    trustAuthenticated: true,
    mode: 'enforce',
    budgetMs: 1000,
    onError: 'continue',
    ...(onBan === undefined ? {} : { onBan }),
  });
}

describe('bad-recipient throttle', () => {
  const refuse = (t: BadRecipientThrottle, s: SessionHooks, address = '192.0.2.9'): CheckResult => {
    const i = input('rcpt', s, {}, address);
    const r = run(t, i);
    if (r.kind === 'pass') t.settled(i, { action: 'reject', decidedBy: 'access_recipient' });
    return r;
  };
  it('after N refused recipients in one connection, further RCPTs are tempfailed', () => {
    const t = throttle();
    const s = new FakeSession();
    for (let i = 0; i < 3; i++) assert.equal(refuse(t, s).kind, 'pass');
    const r = refuse(t, s);
    assert.ok(r.kind === 'hit' && r.verdict.action === 'tempfail');
    assert.equal(refuse(t, new FakeSession()).kind, 'pass', 'a new connection starts again');
  });
  it('accepted recipients do not count', () => {
    const t = throttle();
    const s = new FakeSession();
    for (let i = 0; i < 10; i++) {
      const i2 = input('rcpt', s);
      assert.equal(run(t, i2).kind, 'pass');
      t.settled(i2, { action: 'accept', decidedBy: null });
    }
  });
  it('after M per source in the window, every connection from it is tempfailed, and with ban the source is banned', () => {
    const bans = new MemoryBanStore();
    const banned: string[] = [];
    const t = throttle({ perConnection: 0, perSource: 4, ipv4Prefix: 24, banMs: 3_600_000 }, bans, (client) =>
      banned.push(client),
    );
    for (let i = 0; i < 4; i++) assert.equal(refuse(t, new FakeSession(), `192.0.2.${i + 1}`).kind, 'pass');
    assert.deepEqual(banned, ['192.0.2.0/24']);
    const r = refuse(t, new FakeSession(), '192.0.2.200');
    assert.ok(r.kind === 'hit' && 'reply' in r.verdict);
    assert.equal(r.verdict.reply.text, 'Too many refused recipients from 192.0.2.200, try again later');
    assert.equal(refuse(t, new FakeSession(), '198.51.100.1').kind, 'pass', 'another network is unaffected');
  });
});
