import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageContentCollector } from '../../daemon/message-content.js';
import { MemoryBanStore } from '../../rules/ban-store.js';
import type { Check, CheckResult, PolicyInput } from '../../rules/check.js';
import { NO_MEMO } from '../../rules/check.js';
import { AdvertisementSubject, MessageIdCheck, SpacePatrol } from '../../rules/content-filters.js';
import { PolicyEngine } from '../../rules/engine.js';
import { declaredSize, MessageSize, RouteAddress, routeForm } from '../../rules/envelope-filters.js';
import { compileRulePattern, HeaderRules } from '../../rules/header-rules.js';
import { decodeHeader } from '../../rules/header-text.js';
import { SpamTrap } from '../../rules/spam-trap.js';
import { clientIp } from '../../rules/networks.js';

const budget = { ms: 1000, signal: new AbortController().signal };

function content(headers: [string, string][], body = 0): MessageContentCollector {
  const c = new MessageContentCollector({ maxHeaders: 100, maxHeaderBytes: 65536 }, null);
  for (const [n, v] of headers) c.addHeader(n, v);
  if (body > 0) c.addBody(Buffer.alloc(body));
  return c;
}

function input(extra: Partial<PolicyInput> = {}): PolicyInput {
  return {
    stage: 'eom',
    client: {
      address: '192.0.2.9',
      ip: clientIp('192.0.2.9'),
      hostname: '[192.0.2.9]',
      port: 1,
      kind: 'inet4',
    },
    helo: 'h',
    sender: '<a@b.example>',
    senderArgs: [],
    recipient: null,
    recipients: ['<u@example.test>'],
    macro: () => undefined,
    memo: NO_MEMO,
    ...extra,
  };
}
const kind = (c: Check, i: PolicyInput): string => (c.run(i, budget) as CheckResult).kind;
const ADV = new AdvertisementSubject('enforce', '550 5.7.1 Advertisements are not accepted here', [
  'ADV:',
  'AD:',
  'ADVERTISEMENT',
]);

describe('advertisement Subject', () => {
  for (const [subject, hit] of [
    ['ADV: buy now', true],
    ['   adv: lower case, leading spaces', true],
    ['Advertisement of the week', true],
    ['AD:x', true],
    ['=?utf-8?B?QURWOiBidXk=?=', true],
    ['=?iso-8859-1?Q?AD=3A_promo?=', true],
    ['Adventures in Scotland', false],
    ['Re: ADV: quoted', false],
    ['\xc3\xa9t\xc3\xa9 (8-bit UTF-8)', false],
    ['=?utf-8?B?broken', false],
  ] as const) {
    it(`${hit ? 'refuses' : 'passes'} ${JSON.stringify(subject)}`, () => {
      assert.equal(kind(ADV, input({ content: content([['Subject', subject]]) })), hit ? 'hit' : 'pass');
    });
  }
  it('passes a message without Subject', () => {
    assert.equal(kind(ADV, input({ content: content([]) })), 'pass');
  });
  it('decodes 8-bit UTF-8 and leaves invalid bytes as Latin-1', () => {
    assert.equal(decodeHeader('\xc3\xa9'), 'é');
    assert.equal(decodeHeader('\xe9\xff'), '\xe9\xff');
  });
});

describe('Space Patrol', () => {
  const sp = new SpacePatrol('enforce', '550 5.7.1 no', 8);
  it('refuses 8 consecutive spaces, not 7; after decoding and unfolding', () => {
    assert.equal(kind(sp, input({ content: content([['Subject', `hello${' '.repeat(8)}x`]]) })), 'hit');
    assert.equal(kind(sp, input({ content: content([['Subject', `hello${' '.repeat(7)}x`]]) })), 'pass');
    assert.equal(kind(sp, input({ content: content([['Subject', '=?utf-8?Q?a________b?=']]) })), 'hit');
  });
});

describe('Message-ID', () => {
  const all = new MessageIdCheck('enforce', '550 5.7.1 no', { missing: true, noAt: true, malformed: true });
  it('refuses missing, @-less and malformed ids; each rule can be switched off', () => {
    assert.equal(kind(all, input({ content: content([]) })), 'hit');
    assert.equal(kind(all, input({ content: content([['Message-ID', '<abc.def>']]) })), 'hit');
    assert.equal(kind(all, input({ content: content([['Message-ID', 'abc@def']]) })), 'hit');
    assert.equal(kind(all, input({ content: content([['Message-ID', '<abc@def.example>']]) })), 'pass');
    assert.equal(kind(all, input({ content: content([['message-id', '  <abc@def.example> ']]) })), 'pass');
    const lax = new MessageIdCheck('enforce', '550 5.7.1 no', {
      missing: false,
      noAt: true,
      malformed: false,
    });
    assert.equal(kind(lax, input({ content: content([]) })), 'pass');
    assert.equal(kind(lax, input({ content: content([['Message-ID', 'abc@def']]) })), 'pass');
  });
});

describe('route addresses', () => {
  it('recognises %, ! and source routes; never the null sender', () => {
    assert.equal(routeForm('<a%b@c>'), '% in the address');
    assert.equal(routeForm('<b!c@d>'), '! in the address');
    assert.equal(routeForm('<@a:b@c>'), 'source route (starts with @)');
    assert.equal(routeForm('<>'), null);
    assert.equal(routeForm('<plain@example.com>'), null);
  });
  it('judges the sender at MAIL and the recipient at RCPT', () => {
    const r = new RouteAddress('enforce', '553 5.1.3 no');
    assert.equal(kind(r, input({ stage: 'mail', sender: '<a%b@c>' })), 'hit');
    assert.equal(kind(r, input({ stage: 'mail', sender: '<>' })), 'pass');
    assert.equal(kind(r, input({ stage: 'rcpt', recipient: '<x!y@example.test>' })), 'hit');
  });
});

describe('message size', () => {
  const m = new MessageSize('enforce', 1000, '552 5.3.4 Message size exceeds fixed maximum message size');
  it('refuses SIZE= over the limit at MAIL and a counted message over it at end of message, at the limit passes', () => {
    assert.equal(declaredSize(['BODY=8BITMIME', 'size=1500']), 1500);
    assert.equal(kind(m, input({ stage: 'mail', senderArgs: ['SIZE=1001'] })), 'hit');
    assert.equal(kind(m, input({ stage: 'mail', senderArgs: ['SIZE=1000'] })), 'pass');
    assert.equal(kind(m, input({ stage: 'mail', senderArgs: [] })), 'pass');
    const c = content([['Subject', 'x']], 1000 - 'Subject'.length - 1 - 4);
    assert.equal(c.headerBytes + c.bodyBytes, 1000);
    assert.equal(kind(m, input({ content: c })), 'pass');
    c.addBody(Buffer.alloc(1));
    assert.equal(kind(m, input({ content: c })), 'hit');
  });
});

describe('header rules (RE2)', () => {
  it('first matching rule decides; tag and observe rules do not refuse', () => {
    const rules = new HeaderRules(
      'enforce',
      [
        {
          name: 'tagme',
          header: 'X-Mailer',
          pattern: 'bulk',
          flags: 'i',
          action: 'tag',
          reply: '550 5.7.1 x',
        },
        {
          name: 'viagra',
          header: 'Subject',
          pattern: 'v[i1]agra',
          flags: 'i',
          action: 'reject',
          reply: '550 5.7.1 Message refused by rule %r',
        },
      ],
      4096,
    );
    const hit = rules.run(
      input({
        content: content([
          ['X-Mailer', 'BulkMailer'],
          ['Subject', 'cheap V1AGRA'],
        ]),
      }),
      budget,
    );
    assert.ok(hit.kind === 'hit' && hit.verdict.action === 'reject');
    assert.equal(hit.verdict.reply.text, 'Message refused by rule viagra');
    const tag = rules.run(
      input({
        content: content([
          ['X-Mailer', 'BulkMailer'],
          ['Subject', 'hello'],
        ]),
      }),
      budget,
    );
    assert.ok(tag.kind === 'pass');
    assert.deepEqual(tag.tags, ['header_rules: rule tagme: X-Mailer matches /bulk/i']);
  });
  it('refuses patterns RE2 cannot run in linear time, and does not blow up on hostile input', () => {
    assert.equal(compileRulePattern('(a)\\1', '').ok, false);
    assert.equal(compileRulePattern('(?=x)', '').ok, false);
    const evil = new HeaderRules(
      'enforce',
      [
        {
          name: 'evil',
          header: 'Subject',
          pattern: '^(a+)+$',
          flags: '',
          action: 'reject',
          reply: '550 5.7.1 x',
        },
      ],
      4096,
    );
    assert.equal(kind(evil, input({ content: content([['Subject', `${'a'.repeat(100_000)}!`]]) })), 'pass');
  });
});

describe('spam trap', () => {
  it('refuses the trap, bans the client, refuses its later recipients; another client is unaffected; the ban expires', () => {
    let now = 1_000_000;
    const store = new MemoryBanStore(100, () => now);
    const banned: string[] = [];
    const trap = new SpamTrap({
      mode: 'enforce',
      addresses: ['<trap@example.test>'],
      banMs: 60_000,
      reply: '550 5.7.1 Mail sent to spam lists is not accepted here',
      bannedReply: '550 5.7.1 Access denied',
      store,
      onBan: (c) => banned.push(c),
    });
    const rcpt = (r: string, addr = '192.0.2.9'): CheckResult =>
      trap.run(
        input({
          stage: 'rcpt',
          recipient: r,
          client: { address: addr, ip: clientIp(addr), hostname: `[${addr}]`, port: 1, kind: 'inet4' },
        }),
        budget,
      ) as CheckResult;
    assert.equal(rcpt('<u@example.test>').kind, 'pass');
    assert.equal(rcpt('<TRAP@example.test>').kind, 'hit');
    assert.deepEqual(banned, ['192.0.2.9']);
    const later = rcpt('<u@example.test>');
    assert.ok(later.kind === 'hit' && later.reason.includes('banned'));
    assert.equal(rcpt('<u@example.test>', '192.0.2.10').kind, 'pass');
    now += 60_000;
    assert.equal(rcpt('<u@example.test>').kind, 'pass');
  });
  it('in observe mode logs the trap but bans nobody', () => {
    const store = new MemoryBanStore();
    const trap = new SpamTrap({
      mode: 'observe',
      addresses: ['trap@example.test'],
      banMs: 1000,
      reply: '550 5.7.1 x',
      bannedReply: '550 5.7.1 y',
      store,
    });
    void trap.run(input({ stage: 'rcpt', recipient: '<trap@example.test>' }), budget);
    assert.equal(store.size, 0);
  });
});

describe('tag mode and content limits', () => {
  it('a check in tag mode adds a tag instead of refusing', () => {
    const e = new PolicyEngine([new AdvertisementSubject('tag', '550 5.7.1 x', ['ADV:'])], {
      observe: false,
      stageBudgetMs: 1000,
    });
    const o = e.evaluate('eom', input({ content: content([['Subject', 'ADV: x']]) }));
    assert.ok(!(o instanceof Promise));
    assert.equal(o.verdict, null);
    assert.deepEqual(o.tags, ['advertisement: Subject starts with "ADV:"']);
    assert.equal(o.trace[0]?.result, 'tagged');
  });
  it('keeps at most max_headers / max_header_bytes of the header, counting the rest', () => {
    const c = new MessageContentCollector({ maxHeaders: 2, maxHeaderBytes: 65536 }, null);
    for (let i = 0; i < 5; i++) c.addHeader(`X-${i}`, 'v');
    assert.equal(c.headers.length, 2);
    assert.equal(c.headersTruncated, true);
    assert.equal(c.headerBytes, 5 * 'X-0'.length + 5 * 'v'.length + 5 * 4);
    const b = new MessageContentCollector({ maxHeaders: 100, maxHeaderBytes: 20 }, null);
    b.addHeader('Subject', '123456789'); // 7 + 9 + 4 = 20: exactly the limit
    b.addHeader('X', 'y');
    assert.deepEqual(
      b.headers.map((h) => h.name),
      ['Subject'],
    );
  });
});
