// The lookup walks and the stage semantics, on the worked example of landscape.md §1.11 and the
// classic seed table, through the same explainer `milter-policy query` uses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import { AccessSnapshot } from '../../access-db/snapshot.js';
import type { WalkStep } from '../../access-db/walk.js';
import { addressWalk, hostWalk, ipWalk } from '../../access-db/walk.js';
import { parseConfig } from '../../daemon/config.js';
import type { TransactionSpec } from '../../daemon/explain.js';
import { explainTransaction } from '../../daemon/explain.js';
import type { Runtime } from '../../daemon/runtime.js';
import { buildRuntime } from '../../daemon/runtime.js';

const WORKED = `Connect:127.0.0.1                 RELAY
Connect:192.0.2                   REJECT
Connect:192.0.2.10                OK
Connect:mx.partner.example        RELAY
Connect:IPv6:2001:db8:0:0         ERROR:5.7.1:"550 IPv6 range refused"
From:spammer@example.com          REJECT
From:bulk@                        ERROR:5.7.1:"550 Bulk senders not accepted"
From:example.com                  OK
To:partner.example                RELAY
To:nobody@                        ERROR:5.1.1:"550 User unknown"
Spam:abuse@                       FRIEND
ClientRate:                       10
ClientRate:192.0.2.10             0
`;

const SEED = `spammers.net                 REJECT
spammer@ube.com              ERROR:5.7.1:551 Relay denied
spam@uce.uce.com             DISCARD
example.gr.jp                RELAY
localhost                    RELAY
127.0.0.1                    RELAY
bogus_user@                  REJECT
bogus.example.gr.jp          ERROR:550 Bogus host
junk@other.example.gr.jp     ERROR:550 Mailbox unavailable
`;

function snapshot(text: string, skip = false): AccessSnapshot {
  const r = AccessSnapshot.fromText(text, '/etc/mail/access', { skip });
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
  return r.snapshot;
}

async function runtime(
  text: string,
  access: Record<string, unknown> = {},
  local = ['local.dom'],
): Promise<Runtime> {
  const yaml = JSON.stringify({ domains: { local }, access_db: { file: '/etc/mail/access', ...access } });
  const c = await parseConfig(yaml, '/etc/milter-policy/c.yaml');
  if (!c.ok) throw new Error(c.errors.join('\n'));
  const a = c.config.accessDb;
  return buildRuntime(c.config, 1, snapshot(text, a?.skip ?? false));
}

function replies(
  r: Runtime,
  spec: Partial<TransactionSpec> & { clientAddress: string; recipients: string[] },
): (string | null)[] {
  const x = explainTransaction(r, { sender: '<x@neutral.example>', ...spec });
  return x.stages
    .filter((s) => s.stage === 'rcpt' || (s.stage === 'mail' && s.outcome !== 'accept'))
    .map((s) => s.reply ?? s.outcome);
}

describe('lookup walks', () => {
  const s = snapshot(WORKED);
  const o = (steps?: WalkStep[]): { lookupdotdomain: boolean; untagged: boolean; steps?: WalkStep[] } =>
    steps === undefined
      ? { lookupdotdomain: false, untagged: true }
      : { lookupdotdomain: false, untagged: true, steps };

  it('host walk: tagged, untagged, then the parent domain', () => {
    const steps: WalkStep[] = [];
    hostWalk(s, 'connect', 'a.b.example', o(steps));
    assert.deepEqual(
      steps.map((x) => x.key),
      ['connect:a.b.example', 'a.b.example', 'connect:b.example', 'b.example', 'connect:example', 'example'],
    );
  });

  it('host walk with lookupdotdomain tries .parent forms', () => {
    const steps: WalkStep[] = [];
    hostWalk(s, 'connect', 'a.b.example', { lookupdotdomain: true, untagged: false, steps });
    assert.deepEqual(
      steps.map((x) => x.key),
      [
        'connect:a.b.example',
        'connect:.b.example',
        'connect:b.example',
        'connect:.example',
        'connect:example',
      ],
    );
  });

  it('bracketed names walk their octets; IPs walk octets and IPv6 groups down to bare IPv6', () => {
    const steps: WalkStep[] = [];
    hostWalk(s, 'connect', '[192.0.2.7]', { lookupdotdomain: false, untagged: false, steps });
    assert.deepEqual(
      steps.map((x) => x.key),
      ['connect:[192.0.2.7]', 'connect:[192.0.2]', 'connect:[192.0]', 'connect:[192]'],
    );
    assert.equal(ipWalk(s, 'connect', ipaddr.parse('192.0.2.10'), o()).entry?.line, 3);
    assert.equal(ipWalk(s, 'connect', ipaddr.parse('192.0.2.11'), o()).entry?.line, 2);
    const v6: WalkStep[] = [];
    ipWalk(s, 'connect', ipaddr.parse('2001:db9::1'), { lookupdotdomain: false, untagged: false, steps: v6 });
    assert.equal(v6[0]?.key, 'connect:ipv6:2001:db9:0:0:0:0:0:1');
    assert.equal(v6.at(-1)?.key, 'connect:ipv6');
    assert.equal(v6.length, 9);
  });

  it('sender walk: full address with +detail forms, then user@, then the domain', () => {
    const steps: WalkStep[] = [];
    const r = addressWalk(s, 'from', 'bulk+x@example.com', ['F', 'U', 'D'], o(steps));
    assert.equal(r.entry?.key, 'from:bulk@');
    assert.deepEqual(
      steps.map((x) => x.key).filter((k) => k.startsWith('from:')),
      [
        'from:bulk+x@example.com',
        'from:bulk+*@example.com',
        'from:bulk@example.com',
        'from:bulk+x@',
        'from:bulk+*@',
        'from:bulk@',
      ],
    );
  });

  it('CIDR keys compete by prefix length with octet keys; an octet key wins a tie', () => {
    const c = snapshot(
      'Connect:192.0.2 REJECT\nConnect:192.0.2.0/25 OK\nConnect:192.0.2.0/24 DISCARD\nConnect:IPv6:2001:db8::/32 REJECT\n',
    );
    assert.equal(ipWalk(c, 'connect', ipaddr.parse('192.0.2.5'), o()).action?.kind, 'ok');
    assert.equal(ipWalk(c, 'connect', ipaddr.parse('192.0.2.200'), o()).action?.kind, 'reject');
    assert.equal(ipWalk(c, 'connect', ipaddr.parse('2001:db8:1::5'), o()).action?.kind, 'reject');
    assert.equal(ipWalk(c, 'connect', ipaddr.parse('2001:db9::5'), o()).entry, null);
  });

  it('SKIP (with the skip option) ends the walk with no entry', () => {
    const k = snapshot('Connect:10.1.2 SKIP\nConnect:10.1 REJECT\n', true);
    assert.equal(ipWalk(k, 'connect', ipaddr.parse('10.1.2.3'), o()).entry, null);
    assert.equal(ipWalk(k, 'connect', ipaddr.parse('10.1.3.3'), o()).action?.kind, 'reject');
  });
});

describe('landscape.md §1.11 worked example (delay_checks, friend)', () => {
  it('1. a RELAY host name is accepted and may relay', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, {
        clientAddress: '192.0.2.10',
        clientName: 'mx.partner.example',
        resolve: 'OK',
        recipients: ['<u@elsewhere.example>'],
      }),
      ['accept'],
    );
  });
  it('2. the same IP without a name: OK, but no relaying', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, { clientAddress: '192.0.2.10', recipients: ['<u@local.dom>', '<u@elsewhere.example>'] }),
      ['accept', '550 5.7.1 <u@elsewhere.example>... Relaying denied'],
    );
  });
  it('3. a rejected network: Access denied per recipient, FRIEND and an OK sender exempt', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, {
        clientAddress: '192.0.2.77',
        recipients: ['<u@local.dom>', '<abuse@local.dom>', '<postmaster@local.dom>'],
      }),
      [
        '550 5.7.1 <u@local.dom>... Access denied',
        'accept',
        '550 5.7.1 <postmaster@local.dom>... Access denied',
      ],
    );
    assert.deepEqual(
      replies(r, { clientAddress: '192.0.2.77', sender: '<x@example.com>', recipients: ['<u@local.dom>'] }),
      ['accept'],
    );
  });
  it('4/5. user@ before the domain; +detail falls back to the plain user', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, {
        clientAddress: '198.51.100.1',
        sender: '<bulk@example.com>',
        recipients: ['<u@local.dom>'],
      }),
      ['550 5.7.1 <u@local.dom>... Bulk senders not accepted'],
    );
    assert.deepEqual(
      replies(r, {
        clientAddress: '198.51.100.1',
        sender: '<spammer+promo@example.com>',
        recipients: ['<u@local.dom>'],
      }),
      ['550 5.7.1 <u@local.dom>... Access denied'],
    );
  });
  it('7. To: RELAY permits relaying to that domain; others are refused', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, {
        clientAddress: '198.51.100.1',
        recipients: ['<u@partner.example>', '<u@elsewhere.example>'],
      }),
      ['accept', '550 5.7.1 <u@elsewhere.example>... Relaying denied'],
    );
  });
  it('8. To:nobody@ applies to local domains only', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(replies(r, { clientAddress: '198.51.100.1', recipients: ['<nobody@local.dom>'] }), [
      '550 5.1.1 <nobody@local.dom>... User unknown',
    ]);
  });
  it('9. an IPv6 client matched by group truncation', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(replies(r, { clientAddress: '2001:db8::25', recipients: ['<u@local.dom>'] }), [
      '550 5.7.1 <u@local.dom>... IPv6 range refused',
    ]);
  });
  it('the null sender is never looked up', async () => {
    const r = await runtime('From:<> REJECT\nFrom:@ REJECT\n');
    assert.deepEqual(
      replies(r, { clientAddress: '198.51.100.1', sender: '<>', recipients: ['<u@local.dom>'] }),
      ['accept'],
    );
  });
});

describe('the seed table', () => {
  it('gives sendmail’s answers', async () => {
    const r = await runtime(SEED, {}, ['local.dom', 'localhost']);
    const rc = (sender: string, rcpt: string, clientName?: string): (string | null)[] =>
      replies(r, {
        clientAddress: '198.51.100.9',
        sender,
        recipients: [rcpt],
        ...(clientName === undefined ? {} : { clientName, resolve: 'OK' }),
      });
    assert.deepEqual(rc('<a@mail.spammers.net>', '<u@local.dom>'), [
      '550 5.7.1 <u@local.dom>... Access denied',
    ]);
    assert.deepEqual(rc('<spammer@ube.com>', '<u@local.dom>'), ['551 5.7.1 Relay denied']);
    assert.deepEqual(rc('<bogus_user@anywhere.example>', '<u@local.dom>'), [
      '550 5.7.1 <u@local.dom>... Access denied',
    ]);
    assert.deepEqual(rc('<junk@other.example.gr.jp>', '<u@local.dom>'), [
      '550 5.0.0 <u@local.dom>... Mailbox unavailable',
    ]);
    assert.deepEqual(
      rc('<x@neutral.example>', '<u@x.example.gr.jp>'),
      ['accept'],
      'example.gr.jp RELAY: relaying to it',
    );
    assert.deepEqual(rc('<x@neutral.example>', '<u@local.dom>', 'bogus.example.gr.jp'), [
      '550 5.0.0 <u@local.dom>... Bogus host',
    ]);
    // The name's own entry is found before example.gr.jp RELAY, so it gives no relay permission.
    assert.deepEqual(rc('<x@neutral.example>', '<u@elsewhere.example>', 'bogus.example.gr.jp'), [
      '550 5.7.1 <u@elsewhere.example>... Relaying denied',
    ]);
    assert.deepEqual(rc('<x@neutral.example>', '<u@elsewhere.example>', 'host.example.gr.jp'), ['accept']);
    const discard = explainTransaction(r, {
      clientAddress: '198.51.100.9',
      sender: '<spam@uce.uce.com>',
      recipients: ['<u@local.dom>'],
    });
    assert.equal(discard.message.outcome, 'discarded');
  });
});

describe('options', () => {
  it('without delay_checks, client and sender refusals come at MAIL (client without address prefix)', async () => {
    const r = await runtime(WORKED, { delay_checks: false });
    const x = explainTransaction(r, {
      clientAddress: '192.0.2.77',
      sender: '<x@neutral.example>',
      recipients: ['<abuse@local.dom>'],
      mta: 'postfix',
    });
    assert.equal(x.stages.find((s) => s.stage === 'mail')?.reply, '550 5.7.1 Access denied');
    assert.equal(x.message.outcome, 'refused');
  });
  it('spam: hater runs the sender and client checks only for HATER recipients', async () => {
    const r = await runtime(`${WORKED}Spam:victim@ HATER\n`, { spam: 'hater' });
    assert.deepEqual(
      replies(r, { clientAddress: '192.0.2.77', recipients: ['<u@local.dom>', '<victim@local.dom>'] }),
      ['accept', '550 5.7.1 <victim@local.dom>... Access denied'],
    );
  });
  it('authenticated clients skip the delayed checks', async () => {
    const r = await runtime(WORKED);
    assert.deepEqual(
      replies(r, {
        clientAddress: '192.0.2.77',
        auth: 'alice',
        recipients: ['<u@local.dom>', '<u@elsewhere.example>'],
      }),
      ['accept', 'accept'],
    );
  });
  it('QUARANTINE holds the message with the last reason; DISCARD beats it', async () => {
    const r = await runtime(
      'To:a@local.dom QUARANTINE:first\nTo:b@local.dom QUARANTINE:second\nTo:c@local.dom DISCARD\n',
    );
    const x = explainTransaction(r, {
      clientAddress: '198.51.100.1',
      sender: '<s@x.example>',
      recipients: ['<a@local.dom>', '<b@local.dom>'],
    });
    assert.deepEqual([x.message.outcome, x.message.quarantine], ['delivered', 'second']);
    const y = explainTransaction(r, {
      clientAddress: '198.51.100.1',
      sender: '<s@x.example>',
      recipients: ['<a@local.dom>', '<c@local.dom>'],
    });
    assert.equal(y.message.outcome, 'discarded');
  });
});
