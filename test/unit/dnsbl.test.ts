import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import type { PolicyInput } from '../../rules/check.js';
import type { DnsAnswer, DnsLookup, DnsRecordType } from '../../rules/dns-cache.js';
import { DnsCache } from '../../rules/dns-cache.js';
import type { ZoneSpec } from '../../rules/dnsbl.js';
import { DnsblCheck, probeZone, RhsblCheck, ZoneHealth } from '../../rules/dnsbl.js';
import { answerMatcher, classifyAnswer, queryName } from '../../rules/dnsbl-query.js';
import { clientIp, parseNetwork } from '../../rules/networks.js';

/** A DNS that answers from a table; anything else NXDOMAIN; `slow` names never answer. */
class TableDns implements DnsLookup {
  queries: string[] = [];
  constructor(
    private readonly table: Record<string, DnsAnswer>,
    private readonly slow = new Set<string>(),
  ) {}
  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer> {
    this.queries.push(`${type} ${name}`);
    if (this.slow.has(name)) return new Promise(() => undefined);
    return Promise.resolve(this.table[`${type} ${name}`] ?? { kind: 'nxdomain' });
  }
}
const A = (...records: string[]): DnsAnswer => ({ kind: 'records', records, ttlSeconds: 300 });

function zone(z: Partial<ZoneSpec> & { zone: string }): ZoneSpec {
  return {
    answers: [],
    weight: 1,
    action: 'reject',
    reply: '550 5.7.1 Rejected: %i listed at %z',
    onError: 'ignore',
    tempfailReply: '451 4.4.3 Temporary lookup failure of %i at %z',
    ...z,
  };
}

function input(
  address: string,
  extra: Partial<PolicyInput> = {},
  macros: Record<string, string> = {},
): PolicyInput {
  const conn = new Map<string, unknown>();
  const remember = <T>(key: string, f: () => T): T => {
    if (!conn.has(key)) conn.set(key, f());
    return conn.get(key) as T;
  };
  return {
    stage: 'rcpt',
    client: {
      address,
      ip: clientIp(address),
      hostname: `[${address}]`,
      port: 1,
      kind: address.includes(':') ? 'inet6' : 'inet4',
    },
    helo: 'helo.example',
    sender: '<a@sender.example>',
    senderArgs: [],
    recipient: '<u@example.test>',
    recipients: [],
    macro: (n) => macros[n.replace(/^\{(.*)\}$/, '$1')],
    memo: { connection: remember, message: remember },
    ...extra,
  };
}
const budget = { ms: 1000, signal: new AbortController().signal };

function dnsbl(
  dns: DnsLookup,
  zones: ZoneSpec[],
  extra: { threshold?: number; trusted?: string[]; health?: ZoneHealth } = {},
): DnsblCheck {
  return new DnsblCheck({
    dns,
    zones,
    threshold: extra.threshold ?? 1,
    stage: 'rcpt',
    mode: 'enforce',
    budgetMs: 1000,
    health: extra.health ?? new ZoneHealth(),
    trustedNetworks: (extra.trusted ?? []).map((n) => {
      const r = parseNetwork(n);
      if (!r.ok) throw new Error(r.problem);
      return r.network;
    }),
    trustAuthenticated: true,
  });
}

describe('DNSBL query names and answers', () => {
  it('reverses IPv4 octets and IPv6 nibbles (RFC 5782)', () => {
    assert.equal(queryName(ipaddr.parse('192.0.2.7'), 'bl.test'), '7.2.0.192.bl.test');
    assert.equal(
      queryName(ipaddr.parse('2001:db8::1'), 'bl.test'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
    );
  });
  it('answers outside 127/8 and in 127.255.255/24 are errors, not listings', () => {
    assert.equal(classifyAnswer('127.0.0.2').kind, 'listed');
    assert.equal(classifyAnswer('127.255.255.254').kind, 'error');
    assert.equal(classifyAnswer('10.1.2.3').kind, 'error');
    assert.equal(classifyAnswer('junk').kind, 'error');
  });
  it('selects answers: exact, range, bit mask, or any', () => {
    const m = answerMatcher(['127.0.0.2', '127.0.0.4-127.0.0.11', '&0x40']);
    assert.deepEqual(['127.0.0.2', '127.0.0.3', '127.0.0.11', '127.0.0.12', '127.0.0.64'].map(m), [
      true,
      false,
      true,
      false,
      true,
    ]);
    assert.equal(answerMatcher([])('127.0.0.99'), true);
  });
});

describe('DNSBL check', () => {
  const dns = new TableDns({
    'A 2.0.0.127.bl.test': A('127.0.0.2'),
    'TXT 2.0.0.127.bl.test': { kind: 'records', records: ['Listed\r\nfor 100% sure'], ttlSeconds: 0 },
    'A 3.0.0.127.bl.test': A('127.0.0.10'),
    'A 3.0.0.127.pbl.test': A('127.0.0.3'),
    'A 2.0.0.127.err.test': A('127.255.255.254'),
    'A 2.0.0.127.allow.test': A('127.0.0.2'),
  });

  it('refuses a listed client with sendmail’s text; a clean client passes', async () => {
    const r = await dnsbl(dns, [zone({ zone: 'bl.test' })]).run(input('127.0.0.2'), budget);
    assert.ok(r.kind === 'hit' && r.verdict.action === 'reject');
    assert.deepEqual(r.verdict, {
      action: 'reject',
      reply: { code: 550, dsn: '5.7.1', text: 'Rejected: 127.0.0.2 listed at bl.test' },
    });
    assert.equal(
      (await dnsbl(dns, [zone({ zone: 'bl.test' })]).run(input('127.0.0.1'), budget)).kind,
      'pass',
    );
  });

  it('counts only the selected answers', async () => {
    const z = zone({ zone: 'bl.test', answers: ['127.0.0.2'] });
    assert.equal((await dnsbl(dns, [z]).run(input('127.0.0.3'), budget)).kind, 'pass');
    assert.equal((await dnsbl(dns, [z]).run(input('127.0.0.2'), budget)).kind, 'hit');
  });

  it('puts the TXT record into the reply, sanitised', async () => {
    const r = await dnsbl(dns, [zone({ zone: 'bl.test', reply: '550 5.7.1 %t' })]).run(
      input('127.0.0.2'),
      budget,
    );
    assert.ok(r.kind === 'hit' && r.verdict.action === 'reject');
    assert.equal(r.verdict.reply.text, 'Listed for 100% sure');
  });

  it('treats an error-code answer as a lookup failure: ignored, or tempfail per zone', async () => {
    assert.equal(
      (await dnsbl(dns, [zone({ zone: 'err.test' })]).run(input('127.0.0.2'), budget)).kind,
      'pass',
    );
    const t = await dnsbl(dns, [zone({ zone: 'err.test', onError: 'tempfail' })]).run(
      input('127.0.0.2'),
      budget,
    );
    assert.ok(t.kind === 'hit' && t.verdict.action === 'tempfail');
    assert.equal(t.verdict.reply.text, 'Temporary lookup failure of 127.0.0.2 at err.test');
  });

  it('weights and threshold: two zones needed, a negative weight is an allow list', async () => {
    const zones = [zone({ zone: 'bl.test', weight: 1 }), zone({ zone: 'pbl.test', weight: 1 })];
    assert.equal((await dnsbl(dns, zones, { threshold: 2 }).run(input('127.0.0.3'), budget)).kind, 'hit');
    assert.equal(
      (await dnsbl(dns, [zones[0] as ZoneSpec], { threshold: 2 }).run(input('127.0.0.3'), budget)).kind,
      'pass',
    );
    const allow = [zone({ zone: 'bl.test', weight: 2 }), zone({ zone: 'allow.test', weight: -2 })];
    assert.equal((await dnsbl(dns, allow, { threshold: 1 }).run(input('127.0.0.2'), budget)).kind, 'pass');
  });

  it('observe and tag zones do not refuse; tag zones tag the message', async () => {
    const o = await dnsbl(dns, [zone({ zone: 'bl.test', action: 'observe' })]).run(
      input('127.0.0.2'),
      budget,
    );
    assert.ok(o.kind === 'pass' && o.reason?.includes('observed: listed in bl.test'));
    const t = await dnsbl(dns, [zone({ zone: 'bl.test', action: 'tag' })]).run(input('127.0.0.2'), budget);
    assert.ok(t.kind === 'pass');
    assert.deepEqual(t.tags, ['dnsbl: listed in bl.test (127.0.0.2)']);
  });

  it('does not look up trusted or authenticated clients', async () => {
    const q = new TableDns({});
    assert.equal(
      (
        await dnsbl(q, [zone({ zone: 'bl.test' })], { trusted: ['127.0.0.0/8'] }).run(
          input('127.0.0.2'),
          budget,
        )
      ).kind,
      'skip',
    );
    assert.equal(
      (
        await dnsbl(q, [zone({ zone: 'bl.test' })]).run(
          input('127.0.0.2', {}, { auth_authen: 'alice' }),
          budget,
        )
      ).kind,
      'skip',
    );
    assert.deepEqual(q.queries, []);
  });

  it('queries each zone once per connection, all in parallel', async () => {
    const q = new TableDns({ 'A 2.0.0.127.bl.test': A('127.0.0.2') });
    const check = dnsbl(q, [zone({ zone: 'bl.test', action: 'observe' }), zone({ zone: 'b2.test' })]);
    const i = input('127.0.0.2');
    await check.run(i, budget);
    await check.run(i, budget);
    assert.deepEqual(q.queries.sort(), ['A 2.0.0.127.b2.test', 'A 2.0.0.127.bl.test']);
  });

  it('skips a zone that failed its health probe', async () => {
    const health = new ZoneHealth();
    health.set('bl.test', 'probe failed');
    const r = await dnsbl(dns, [zone({ zone: 'bl.test' })], { health }).run(input('127.0.0.2'), budget);
    assert.ok(r.kind === 'pass' && r.reason?.includes('skipped'));
  });

  it('RFC 5782 probe: 127.0.0.2 listed and 127.0.0.1 not', async () => {
    assert.equal(await probeZone(dns, 'bl.test'), null);
    assert.match(String(await probeZone(new TableDns({}), 'dead.test')), /127\.0\.0\.2 is not listed/);
    const everything = new TableDns({
      'A 2.0.0.127.all.test': A('127.0.0.2'),
      'A 1.0.0.127.all.test': A('127.0.0.2'),
    });
    assert.match(String(await probeZone(everything, 'all.test')), /lists everything/);
  });
});

describe('RHSBL', () => {
  const dns = new TableDns({
    'A spam.example.dbl.test': A('127.0.1.2'),
    'A bad.helo.dbl.test': A('127.0.1.2'),
  });
  const rhsbl = (targets: ('sender' | 'helo')[]): RhsblCheck =>
    new RhsblCheck({
      dns,
      zones: [
        {
          ...zone({ zone: 'dbl.test', reply: '550 5.7.1 Mail from %d refused by blackhole site %z' }),
          targets,
        },
      ],
      stage: 'rcpt',
      mode: 'enforce',
      budgetMs: 1000,
      trustedNetworks: [],
      trustAuthenticated: true,
    });
  it('refuses a listed sender domain, and a listed HELO when asked to', async () => {
    const r = await rhsbl(['sender']).run(input('192.0.2.1', { sender: '<x@Spam.Example>' }), budget);
    assert.ok(r.kind === 'hit' && r.verdict.action === 'reject');
    assert.equal(r.verdict.reply.text, 'Mail from spam.example refused by blackhole site dbl.test');
    assert.equal(
      (
        await rhsbl(['sender']).run(
          input('192.0.2.1', { sender: '<x@ok.example>', helo: 'bad.helo' }),
          budget,
        )
      ).kind,
      'pass',
    );
    assert.equal(
      (await rhsbl(['helo']).run(input('192.0.2.1', { sender: '<x@ok.example>', helo: 'bad.helo' }), budget))
        .kind,
      'hit',
    );
    assert.equal((await rhsbl(['sender']).run(input('192.0.2.1', { sender: '<>' }), budget)).kind, 'pass');
  });
});

describe('DNS cache', () => {
  it('coalesces identical lookups in flight, caches answers and NXDOMAIN, not errors', async () => {
    let calls = 0;
    const upstream: DnsLookup = {
      lookup: (name) => {
        calls++;
        if (name === 'err.test') return Promise.resolve({ kind: 'error', error: 'SERVFAIL' });
        if (name === 'nx.test') return Promise.resolve({ kind: 'nxdomain' });
        return new Promise((r) => setTimeout(() => r(A('127.0.0.2')), 5));
      },
    };
    const c = new DnsCache(upstream, { maxEntries: 10, minTtlMs: 1000, maxTtlMs: 5000, negativeTtlMs: 1000 });
    await Promise.all([c.lookup('a.test', 'A'), c.lookup('a.test', 'A'), c.lookup('A.TEST', 'A')]);
    assert.equal(calls, 1);
    assert.equal(c.stats.coalesced, 2);
    await c.lookup('a.test', 'A');
    await c.lookup('nx.test', 'A');
    await c.lookup('nx.test', 'A');
    await c.lookup('err.test', 'A');
    await c.lookup('err.test', 'A');
    assert.equal(calls, 4, 'a once, nx once, err twice');
  });
  it('is bounded', async () => {
    const c = new DnsCache(
      { lookup: () => Promise.resolve(A('127.0.0.2')) },
      { maxEntries: 3, minTtlMs: 1000, maxTtlMs: 5000, negativeTtlMs: 1000 },
    );
    for (let i = 0; i < 10; i++) await c.lookup(`n${i}.test`, 'A');
    assert.equal(c.size, 3);
  });
});

describe('DNSBL within the budget', () => {
  it('a zone that never answers becomes that zone’s lookup failure before the budget ends', async () => {
    const slow = new TableDns({ 'A 2.0.0.127.bl.test': A('127.0.0.2') }, new Set(['2.0.0.127.slow.test']));
    const check = (onError: 'ignore' | 'tempfail'): DnsblCheck =>
      new DnsblCheck({
        dns: slow,
        zones: [zone({ zone: 'slow.test', onError })],
        threshold: 1,
        stage: 'rcpt',
        mode: 'enforce',
        budgetMs: 150,
        health: new ZoneHealth(),
        trustedNetworks: [],
        trustAuthenticated: true,
      });
    const ignored = await check('ignore').run(input('127.0.0.2'), budget);
    assert.ok(
      ignored.kind === 'pass' && /slow\.test: lookup failed: no answer within/.test(ignored.reason ?? ''),
    );
    const t = await check('tempfail').run(input('127.0.0.2'), budget);
    assert.ok(t.kind === 'hit' && t.verdict.action === 'tempfail');
    assert.equal(t.verdict.reply.code, 451);
  });
});
