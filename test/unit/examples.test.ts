// The files in examples/ work as their comments say: the bundled configuration `npm start` uses
// passes check-config, and the example access map parses without a problem, lints without an error
// or a warning (what `milter-policy check --strict` demands), and decides what its comments promise
// (through the `query` explanation, i.e. the real checks on the real compiled snapshot), including
// the CIDR extension and the ClientRate:/ClientConn: values the rate limits read. The annotated
// configuration is checked by configuration-doc.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ipaddr from 'ipaddr.js';
import { lintAccess } from '../../access-db/lint.js';
import { AccessSnapshot } from '../../access-db/snapshot.js';
import { parseAccessSource } from '../../access-db/source.js';
import { ipWalk } from '../../access-db/walk.js';
import { parseConfig } from '../../daemon/config.js';
import type { Runtime } from '../../daemon/runtime.js';
import type { TransactionSpec } from '../../daemon/explain.js';
import { explainTransaction } from '../../daemon/explain.js';
import { buildRuntime } from '../../daemon/runtime.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';
import type { PolicyInput, PolicyStage, SessionHooks, Verdict } from '../../rules/check.js';
import { NO_MEMO } from '../../rules/check.js';
import { clientIp } from '../../rules/networks.js';
import { FakeSession } from '../support/fake-session.js';

const ACCESS = path.join(PACKAGE_ROOT, 'examples', 'access');
const accessText = readFileSync(ACCESS, 'latin1');

describe('examples/milter-policy.yaml (npm start)', () => {
  it('passes check-config', async () => {
    const file = path.join(PACKAGE_ROOT, 'examples', 'milter-policy.yaml');
    const r = await parseConfig(readFileSync(file, 'utf8'), file);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  });
});

describe('examples/access', () => {
  const snapshot = (): AccessSnapshot => {
    const r = AccessSnapshot.fromText(accessText, ACCESS, { skip: false });
    if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('\n'));
    return r.snapshot;
  };

  it('parses without a diagnostic and lints without an error or a warning', () => {
    const source = parseAccessSource(accessText, ACCESS);
    assert.deepEqual([...source.errors, ...source.warnings], []);
    assert.ok(source.entries.length >= 20, `${source.entries.length} entries`);
    const findings = lintAccess(source, {
      skip: false,
      spam: 'friend',
      delayChecks: true,
      localDomains: new Set(['example.org']),
    }).filter((f) => f.severity !== 'note');
    assert.deepEqual(findings, []);
  });

  it('has each kind of entry the header promises', () => {
    for (const re of [
      /^Connect:\S+\s+RELAY$/m,
      /^Connect:\S+\s+REJECT$/m,
      /^Connect:\S+\s+ERROR:5\.\d\.\d:"5\d\d /m,
      /^Connect:\S+\s+ERROR:4\.\d\.\d:"4\d\d /m,
      /^Connect:IPv6:/m,
      /^Connect:[0-9.]+\/\d+\s/m,
      /^Connect:IPv6:\S+\/\d+\s/m,
      /^From:\S+\s+(REJECT|OK|DISCARD|QUARANTINE:)/m,
      /^To:\S+\s+RELAY$/m,
      /^Spam:\S+\s+FRIEND$/m,
      /^ClientRate:\s/m,
      /^ClientConn:\s/m,
    ])
      assert.match(accessText, re);
  });

  /** The daemon's runtime on this map: local domain example.org, ClientRate:/ClientConn: on. */
  const accessRuntime = async (): Promise<Runtime> => {
    const yaml = JSON.stringify({
      domains: { local: ['example.org'] },
      access_db: { file: ACCESS },
      rate_limits: { access_db: true },
    });
    const c = await parseConfig(yaml, path.join(PACKAGE_ROOT, 'examples', 'c.yaml'));
    if (!c.ok) throw new Error(c.errors.join('\n'));
    return buildRuntime(c.config, 1, snapshot());
  };

  it('decides what its comments say', async () => {
    const runtime = await accessRuntime();
    /** The reply each RCPT gets (`accept` for the MTA's own 250), after a MAIL refusal if any. */
    const replies = (spec: Partial<TransactionSpec> & { clientAddress: string; recipients: string[] }) => {
      const x = explainTransaction(runtime, { sender: '<someone@example.net>', mta: 'postfix', ...spec });
      return {
        rcpt: x.stages.filter((s) => s.stage === 'rcpt').map((s) => s.reply ?? s.outcome),
        message: x.message,
      };
    };
    const user = '<user@example.org>';
    const denied = '550 5.7.1 <user@example.org>... Access denied';

    // Clients
    assert.deepEqual(replies({ clientAddress: '198.51.100.7', recipients: [user] }).rcpt, [denied]);
    assert.deepEqual(
      replies({ clientAddress: '192.0.2.200', recipients: [user] }).rcpt,
      [denied],
      'CIDR /25',
    );
    assert.deepEqual(replies({ clientAddress: '192.0.2.7', recipients: [user] }).rcpt, ['accept']);
    assert.deepEqual(replies({ clientAddress: '2001:db8:bad::25', recipients: [user] }).rcpt, [denied]);
    assert.deepEqual(replies({ clientAddress: '2001:db8:ffff::25', recipients: [user] }).rcpt, [denied]);
    assert.deepEqual(replies({ clientAddress: '203.0.113.66', recipients: [user] }).rcpt, [
      '550 5.7.1 <user@example.org>... Your host is listed as a spam source',
    ]);
    assert.deepEqual(replies({ clientAddress: '203.0.113.99', recipients: [user] }).rcpt, [
      '450 4.7.1 <user@example.org>... Too much mail from your host, try again later',
    ]);
    // Relaying: our networks may, a partner's OK host may not, To: RELAY domains may be relayed to.
    assert.deepEqual(replies({ clientAddress: '10.1.2.3', recipients: ['<x@other.example>'] }).rcpt, [
      'accept',
    ]);
    assert.deepEqual(
      replies({
        clientAddress: '192.0.2.9',
        clientName: 'mx.partner.example.net',
        recipients: ['<x@other.example>', '<x@backup.example.net>'],
      }).rcpt,
      ['550 5.7.1 <x@other.example>... Relaying denied', 'accept'],
    );
    // Senders
    const from = (sender: string): (string | null)[] =>
      replies({ clientAddress: '192.0.2.7', sender, recipients: [user] }).rcpt;
    assert.deepEqual(from('<spammer@example.com>'), [denied]);
    assert.deepEqual(from('<a@mail.junk.example.com>'), [
      '550 5.7.1 <user@example.org>... We do not accept mail from this domain',
    ]);
    assert.deepEqual(
      replies({ clientAddress: '198.51.100.7', sender: '<newsletter@lists.example.net>', recipients: [user] })
        .rcpt,
      ['accept'],
      'a sender OK skips the client REJECT',
    );
    assert.equal(
      replies({ clientAddress: '192.0.2.7', sender: '<loop@example.net>', recipients: [user] }).message
        .outcome,
      'discarded',
    );
    assert.equal(
      replies({ clientAddress: '192.0.2.7', sender: '<x@suspicious.example.net>', recipients: [user] })
        .message.quarantine,
      'held for review',
    );
    // Recipients and Spam: FRIEND
    assert.deepEqual(
      replies({ clientAddress: '192.0.2.7', recipients: ['<old-user@example.org>', '<sales@example.org>'] })
        .rcpt,
      [
        '550 5.2.1 <old-user@example.org>... Mailbox disabled for this recipient',
        '550 5.1.1 <sales@example.org>... This address is retired, write to info@example.org',
      ],
    );
    assert.deepEqual(
      replies({ clientAddress: '198.51.100.7', recipients: ['<abuse@example.org>', user] }).rcpt,
      ['accept', denied],
      'FRIEND skips the client check for abuse@ only',
    );
  });

  it('gives the ClientRate: and ClientConn: values the rate limits read (IP walk, then the default)', () => {
    const s = snapshot();
    const value = (tag: string, address: string): number | null => {
      const walked = ipWalk(s, tag, ipaddr.parse(address), { lookupdotdomain: false, untagged: false });
      const entry = walked.entry ?? s.get(`${tag}:`);
      const action = entry === null ? null : walked.entry === null ? s.action(entry) : walked.action;
      return action?.kind === 'number' ? action.value : null;
    };
    assert.equal(value('clientrate', '198.51.100.7'), 30, 'the default');
    assert.equal(value('clientrate', '192.0.2.7'), 10, 'the 192.0.2 prefix');
    assert.equal(value('clientrate', '127.0.0.1'), 0, 'unlimited');
    assert.equal(value('clientrate', '10.1.2.3'), 0);
    assert.equal(value('clientconn', '198.51.100.7'), 10);
    assert.equal(value('clientconn', '10.1.2.3'), 0);
  });

  it('limits connections by its ClientRate: and ClientConn: entries (rate_limits.access_db: true)', async () => {
    const runtime = await accessRuntime();
    /** A session from `address`: connect, then one RCPT to a local user; the RCPT's verdict. */
    const session = async (address: string, s = new FakeSession()): Promise<Verdict | null> => {
      await runtime.engine.evaluate('connect', input('connect', s, address));
      return (await runtime.engine.evaluate('rcpt', input('rcpt', s, address))).verdict;
    };
    const refused = (v: Verdict | null): string | null =>
      v !== null && 'reply' in v
        ? `${v.reply.code} ${v.reply.dsn ?? ''} ${[v.reply.text].flat().join(' / ')}`
        : null;
    // ClientRate:192.0.2 10: ten sessions per window from one address, the 11th refused.
    for (let i = 0; i < 10; i++) assert.equal(refused(await session('192.0.2.7')), null, `session ${i + 1}`);
    assert.equal(refused(await session('192.0.2.7')), '452 4.3.2 Connection rate limit exceeded.');
    assert.equal(refused(await session('192.0.2.8')), null, 'each address counts on its own');
    // ClientConn: 10 (the default): ten open sessions from one address, the 11th refused.
    const open = Array.from({ length: 10 }, () => new FakeSession());
    for (const s of open) assert.equal(refused(await session('203.0.113.7', s)), null);
    assert.equal(refused(await session('203.0.113.7')), '452 4.3.2 Too many open connections.');
    open[0]?.close();
    assert.equal(refused(await session('203.0.113.7')), null, 'a closed session frees a place');
  });
});

function input(stage: PolicyStage, session: SessionHooks, address: string): PolicyInput {
  return {
    stage,
    client: { address, ip: clientIp(address), hostname: `[${address}]`, port: 1, kind: 'inet4' },
    helo: 'client.example.net',
    sender: '<someone@example.net>',
    senderArgs: [],
    recipient: stage === 'rcpt' ? '<user@example.org>' : null,
    recipients: [],
    macro: () => undefined,
    memo: NO_MEMO,
    session,
  };
}
