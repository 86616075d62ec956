import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClientFacts, PolicyInput } from '../../rules/check.js';
import { NO_MEMO } from '../../rules/check.js';
import { DomainSet } from '../../rules/domain-set.js';
import { clientIp, parseNetwork } from '../../rules/networks.js';
import { PostmasterExemption } from '../../rules/postmaster.js';
import { recipientRoute } from '../../rules/recipient-route.js';
import { RelayGuard } from '../../rules/relay-guard.js';

const local = new DomainSet(['example.test', '[192.0.2.25]'], false);
const relay = new DomainSet(['relay.example.test', 'partner.example'], true);
const nets = ['127.0.0.1/32', '10.0.0.0/8', '2001:db8:1::/48'].map((n) => {
  const r = parseNetwork(n);
  if (!r.ok) throw new Error(r.problem);
  return r.network;
});
const guardOptions = {
  localDomains: local,
  relayDomains: relay,
  trustedNetworks: nets,
  trustAuthenticated: true,
  trustLocalSockets: true,
  checkClientResolve: true,
  reply: { code: 550, dsn: '5.7.1', text: 'Relaying denied' },
  mode: 'enforce',
  budgetMs: 1000,
  onError: 'defer_if_permit',
} as const;
const guard = new RelayGuard(guardOptions);
const budget = { ms: 1000, signal: new AbortController().signal };

function client(address: string, kind: ClientFacts['kind'] = 'inet4'): ClientFacts {
  return {
    address,
    ip: kind === 'inet4' || kind === 'inet6' ? clientIp(address) : null,
    hostname: `[${address}]`,
    port: 1,
    kind,
  };
}
function input(
  recipient: string,
  c: ClientFacts = client('192.0.2.9'),
  macros: Record<string, string> = {},
): PolicyInput {
  return {
    stage: 'rcpt',
    client: c,
    helo: 'x',
    sender: '<a@b>',
    senderArgs: [],
    recipient,
    recipients: [],
    macro: (n) => macros[n.replace(/^\{(.*)\}$/, '$1')],
    memo: NO_MEMO,
  };
}
const verdictOf = (rcpt: string, c?: ClientFacts, m?: Record<string, string>): string =>
  guard.run(input(rcpt, c, m), budget).kind;

describe('recipientRoute', () => {
  const cases: [string, string[], string][] = [
    ['<user@example.test>', ['example.test'], 'user'],
    ['<User@Example.TEST.>', ['example.test'], 'User'],
    ['<user%other.invalid@example.test>', ['example.test', 'other.invalid'], 'user'],
    ['<user%c%b@d>', ['d', 'b', 'c'], 'user'],
    ['<other.invalid!user@example.test>', ['example.test', 'other.invalid'], 'user'],
    ['<a!b!user>', ['a', 'b'], 'user'],
    ['<@example.test:user@other.invalid>', ['example.test', 'other.invalid'], 'user'],
    ['<@a,@b:user@c>', ['a', 'b', 'c'], 'user'],
    ['<"user@other.invalid"@example.test>', ['example.test', 'other.invalid'], 'user'],
    ['<"user@other.invalid">', ['other.invalid'], 'user'],
    ['<"a\\"b"@example.test>', ['example.test'], 'a"b'],
    ['<user@[192.0.2.25]>', ['[192.0.2.25]'], 'user'],
    ['<user@[IPv6:2001:DB8::1]>', ['[ipv6:2001:db8::1]'], 'user'],
    ['postmaster', [], 'postmaster'],
    ['<user@other.invalid@example.test>', ['example.test', 'other.invalid'], 'user'],
  ];
  for (const [raw, hosts, localPart] of cases) {
    it(raw, () => {
      const r = recipientRoute(raw);
      assert.deepEqual(r.hosts, hosts);
      assert.equal(r.localPart, localPart);
    });
  }
});

describe('relay guard', () => {
  it('accepts local, relay-domain and subdomain-of-relay recipients from anyone', () => {
    for (const r of [
      '<u@example.test>',
      '<U@EXAMPLE.TEST>',
      '<u@example.test.>',
      '<u@relay.example.test>',
      '<u@mx.partner.example>',
      '<postmaster>',
      '<u@[192.0.2.25]>',
    ]) {
      assert.equal(verdictOf(r), 'pass', r);
    }
  });

  it('does not treat subdomains of local domains as local (class w is exact)', () => {
    assert.equal(verdictOf('<u@sub.example.test>'), 'hit');
  });

  // The classic third-party relay tests: every one must be refused for an untrusted client.
  const battery = [
    '<user@other.invalid>',
    '<USER@OTHER.INVALID>',
    '<user@other.invalid.>',
    '<user%other.invalid@example.test>',
    '<user%other.invalid@example.test.>',
    '<user%other.invalid@[192.0.2.25]>',
    '<other.invalid!user@example.test>',
    '<other.invalid!user>',
    '<other.invalid!user@[192.0.2.25]>',
    '<@example.test:user@other.invalid>',
    '<@example.test,@a.invalid:user@other.invalid>',
    '<@other.invalid:user@example.test>',
    '<"user@other.invalid">',
    '<"user@other.invalid"@example.test>',
    '<"user%other.invalid"@example.test>',
    '<"other.invalid!user"@example.test>',
    '<user@other.invalid@example.test>',
    '<user@[192.0.2.1]>',
    '<user@[127.0.0.1]>',
    '<user%other.invalid>',
    '<user@example.test.other.invalid>',
    '<user@>',
    '<>',
  ];
  for (const r of battery) {
    it(`refuses ${r} from an untrusted client`, () => {
      const res = guard.run(input(r), budget);
      assert.equal(res.kind, 'hit');
      if (res.kind === 'hit')
        assert.deepEqual(res.verdict, {
          action: 'reject',
          reply: { code: 550, dsn: '5.7.1', text: 'Relaying denied' },
        });
    });
  }

  it('lets trusted networks (IPv4, IPv6, IPv4-mapped) relay', () => {
    assert.equal(verdictOf('<x@other.invalid>', client('10.9.8.7')), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('127.0.0.1')), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('2001:db8:1:ffff::5', 'inet6')), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('::ffff:10.0.0.1', 'inet6')), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('2001:db8:2::5', 'inet6')), 'hit');
    assert.equal(verdictOf('<x@other.invalid>', client('127.0.0.2')), 'hit');
  });

  it('lets authenticated clients and local-socket clients relay', () => {
    assert.equal(verdictOf('<x@other.invalid>', client('192.0.2.9'), { auth_authen: 'alice' }), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('192.0.2.9'), { auth_authen: '' }), 'hit');
    assert.equal(verdictOf('<x@other.invalid>', client('/run/x.sock', 'unix')), 'pass');
    assert.equal(verdictOf('<x@other.invalid>', client('', 'unknown')), 'pass');
  });

  it('lets Postfix local submissions (loopback, port 0) relay even when loopback is not trusted', () => {
    const strict = new RelayGuard({ ...guardOptions, trustedNetworks: [] });
    const local: ClientFacts = {
      address: '127.0.0.1',
      ip: clientIp('127.0.0.1'),
      hostname: 'localhost',
      port: 0,
      kind: 'inet4',
    };
    assert.equal(strict.run(input('<x@other.invalid>', local), budget).kind, 'pass');
    assert.equal(strict.run(input('<x@other.invalid>', { ...local, port: 25 }), budget).kind, 'hit');
    assert.equal(
      strict.run(
        input('<x@other.invalid>', { ...local, address: '192.0.2.1', ip: clientIp('192.0.2.1') }),
        budget,
      ).kind,
      'hit',
    );
    const off = new RelayGuard({ ...guardOptions, trustedNetworks: [], trustLocalSockets: false });
    assert.equal(off.run(input('<x@other.invalid>', local), budget).kind, 'hit');
  });

  it('explains its decisions', () => {
    const r = guard.run(input('<user%other.invalid@example.test>'), budget);
    assert.ok(r.kind === 'hit' && r.reason.includes('"other.invalid" is not a local or relay domain'));
    const p = guard.run(input('<x@other.invalid>', client('10.1.1.1')), budget);
    assert.ok(p.kind === 'pass' && p.reason?.includes('trusted network 10.0.0.0/8'));
  });
});

describe('postmaster exemption', () => {
  const pm = new PostmasterExemption(local);
  it('accepts postmaster of local domains, bare postmaster, any case', () => {
    for (const r of [
      '<postmaster@example.test>',
      '<Postmaster@EXAMPLE.test>',
      '<postmaster>',
      'postmaster',
    ]) {
      const res = pm.run(input(r), budget);
      assert.ok(res.kind === 'hit' && res.verdict.action === 'ok', r);
    }
  });
  it('does not exempt postmaster elsewhere or behind a route', () => {
    for (const r of [
      '<postmaster@other.invalid>',
      '<postmaster%other.invalid@example.test>',
      '<other.invalid!postmaster@example.test>',
      '<postmaster2@example.test>',
    ]) {
      assert.equal(pm.run(input(r), budget).kind, 'pass', r);
    }
  });
});
