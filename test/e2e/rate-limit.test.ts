// End to end: rate limiting and connection control (rules/rate-limit.ts: checks `rate_limit` and
// `bad_recipients`) through real Postfix 3.7 and sendmail 8.17 into the daemon and out to the
// sink. The daemon is restarted on a new configuration per phase (fresh in-memory store, one
// worker, so both MTAs' sessions are counted in the same place): connection rate, recipient
// burst, concurrent connections (lease released at milter close), the dictionary-attack throttle
// per connection and per source with a ban, `terminate: true` (421 and the MTA hangs up) and
// `report_at: connect` (what each MTA does with a milter's 4xx at connect). Every scenario runs
// through both MTAs and asserts on the SMTP replies the client sees, the sink and the daemon's
// decision lines. State is per client address and both MTAs talk to the same daemon, so each MTA
// gets its own client addresses: 127.0.70.x for Postfix, 127.0.71.x for sendmail, the last octet
// per scenario (not used by any other e2e file). Needs root, Postfix, the unpacked sendmail,
// sasl2-bin and a built daemon: skips without them, fails under CI=true.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Decision } from './harness/daemon.js';
import type { MailBed, MtaName, MtaUnderTest, PolicyOptions } from './harness/mail-bed.js';
import type { HostsEntry } from './harness/mta-namespace.js';
import {
  MTA_NAMES,
  openSession,
  startMailBed,
  uniqueHelo,
  waitSessionDecisions,
} from './harness/mail-bed.js';
import type { SmtpReply } from './harness/smtp-client.js';
import { SmtpClient, testMessage } from './harness/smtp-client.js';
import type { TransactionResult } from './harness/transaction.js';
import { addressReply, transaction, uniqueToken } from './harness/transaction.js';
import {
  DAEMON,
  M4,
  POSTFIX,
  SASL_PLAIN,
  SASLPASSWD2,
  SENDMAIL,
  SENDMAIL_CF,
  skipUnless,
  sleep,
  UNSHARE,
  waitUntil,
} from './harness/testbed.js';

const skip = skipUnless(POSTFIX, SENDMAIL, SENDMAIL_CF, M4, UNSHARE, SASLPASSWD2, SASL_PLAIN, DAEMON);

const RCPT = 'user@example.test';
const SENDER = 'sender@client.example.test';

const CONN_REPLY = '452 4.3.2 Connection rate limit exceeded.';
const RCPT_REPLY = '452 4.3.2 Recipient rate limit exceeded.';
const CC_REPLY = '452 4.3.2 Too many open connections.';
const BAD_REPLY = '452 4.3.2 Too many refused recipients, try again later';
const TERMINATE_REPLY = '421 4.3.2 Connection rate limit exceeded.';
const bannedReply = (client: string): string =>
  `450 4.7.1 Too many refused recipients from ${client}, try again later`;
const relayingDenied = (address: string): string => addressReply('550 5.7.1 Relaying denied', address);

/** Client addresses: a /24 per MTA, the last octet per scenario (+0 the limited client, +1 another). */
const CLIENT_NET: Record<MtaName, string> = { postfix: '127.0.70', sendmail: '127.0.71' };
const SCENARIO_OCTET = {
  conn: 10,
  rcpt: 20,
  concurrent: 30,
  dictionary: 40,
  ban: 50,
  terminate: 60,
  connect: 70,
} as const;
type Scenario = keyof typeof SCENARIO_OCTET;
function clientAddr(mta: MtaName, scenario: Scenario, which: 'limited' | 'other'): string {
  return `${CLIENT_NET[mta]}.${SCENARIO_OCTET[scenario] + (which === 'limited' ? 0 : 1)}`;
}

/**
 * Every client a verified name (PTR and A agree in the MTAs' private /etc/hosts): the relay guard
 * answers an unresolvable client's relay attempt with a 450 ("Cannot resolve PTR record"), which
 * the dictionary throttle rightly does not count (it counts 5xx refusals only).
 */
const HOSTS: HostsEntry[] = MTA_NAMES.flatMap((m) =>
  (Object.keys(SCENARIO_OCTET) as Scenario[]).flatMap((s) =>
    (['limited', 'other'] as const).map((w) => {
      const address = clientAddr(m, s, w);
      return { address, names: [`client-${address.replace(/\./g, '-')}.external.test`] };
    }),
  ),
);

const TRUSTED = ['127.0.0.1/32', '::1/128'];
const y = (v: unknown): string => JSON.stringify(v);

function ratePolicy(rateLimits: Record<string, unknown>): PolicyOptions {
  return {
    trustedNetworks: TRUSTED,
    extra: [
      `shutdown: ${y({ drain_timeout: '3s' })}`,
      `store: ${y({ type: 'memory' })}`,
      `rate_limits: ${y(rateLimits)}`,
    ],
  };
}

const PHASES = {
  conn: ratePolicy({ limits: [{ name: 'conn', counts: 'connections', rate: 3, per: '1h' }] }),
  rcpt: ratePolicy({ limits: [{ name: 'rcpt', counts: 'recipients', rate: 5, per: '1h' }] }),
  concurrent: ratePolicy({ limits: [{ name: 'cc', counts: 'concurrent', rate: 2 }] }),
  dictionary: ratePolicy({ bad_recipients: { enabled: true, per_connection: 3 } }),
  ban: ratePolicy({
    bad_recipients: { enabled: true, per_connection: 10, per_source: 4, window: '1h', ban: '10m' },
  }),
  terminate: ratePolicy({
    terminate: true,
    limits: [{ name: 'conn', counts: 'connections', rate: 1, per: '1h' }],
  }),
  connect: ratePolicy({
    report_at: 'connect',
    limits: [{ name: 'conn', counts: 'connections', rate: 1, per: '1h' }],
  }),
} as const;

/** Replies per scenario and MTA; those expected alike are compared across the MTAs at the end. */
const seen = new Map<string, Map<MtaName, string>>();
function record(key: string, mta: MtaName, text: string | undefined): void {
  const m = seen.get(key) ?? new Map<MtaName, string>();
  m.set(mta, text ?? '(none)');
  seen.set(key, m);
}
/**
 * What the over-limit client sees with `report_at: connect` (the daemon tempfails at CONNECT):
 * Postfix greets and answers EHLO normally, then gives the milter's text to every MAIL; sendmail
 * ignores a milter's text at connect and answers MAIL with its own tempfail text.
 */
const AT_CONNECT: Record<MtaName, { mail: string; rcpt: string }> = {
  postfix: { mail: CONN_REPLY, rcpt: '503 5.5.1 Error: need MAIL command' },
  sendmail: { mail: '451 4.3.2 Please try again later', rcpt: '503 5.0.0 Need MAIL before RCPT' },
};
/** report_at connect, per MTA and command (printed, never compared: the MTAs differ by design). */
const atConnect = new Map<string, string>();
/** What the MTAs did that the summary prints (transcripts, timings). */
const notes: string[] = [];

function assertCode(reply: SmtpReply | undefined, code: number, what: string): void {
  assert.ok(reply !== undefined, `${what}: no reply`);
  assert.equal(reply.code, code, `${what}: expected ${code}, got ${reply.text}`);
}

function assertDecision(
  d: Decision | undefined,
  action: Decision['action'],
  rule: string,
  reply: string,
  reason?: RegExp,
): void {
  assert.ok(d !== undefined, 'no decision line');
  const text = JSON.stringify(d);
  assert.equal(d.action, action, text);
  assert.equal(d.rule, rule, text);
  assert.equal(d.reply, reply, `the decision line logs the reply the client saw: ${text}`);
  if (reason !== undefined) assert.match(String(d.reason), reason, text);
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('rate limits and connection control through real MTAs', { skip }, () => {
  let bed: MailBed;
  const startedAt = Date.now();

  /** Every RCPT accepted, the message delivered to the sink, the eom decision an accept. */
  async function assertDelivered(r: TransactionResult, what: string): Promise<void> {
    assertCode(r.mail, 250, `${what}: MAIL`);
    r.rcpts.forEach((reply, i) => assertCode(reply, 250, `${what}: RCPT ${i + 1}`));
    assertCode(r.data?.final, 250, `${what}: end of data`);
    await bed.sink.waitFor(r.token);
    const [eom] = await waitSessionDecisions(bed.daemon, r.helo, 'eom', 1);
    assert.equal(eom?.action, 'accept', `${what}: ${JSON.stringify(eom)}`);
  }

  /** EHLO and MAIL FROM on a new session from `from` (the milter has seen the connection). */
  async function mailSession(
    mta: MtaUnderTest,
    what: string,
    from: string,
  ): Promise<{ client: SmtpClient; helo: string }> {
    const s = await openSession(mta, what, from);
    try {
      assertCode(await s.client.mail(SENDER), 250, `${what}: MAIL`);
    } catch (err) {
      await s.client.quit();
      throw err;
    }
    return s;
  }

  before(async () => {
    bed = await startMailBed('ratelimit', { hosts: HOSTS, policy: PHASES.conn });
  });

  after(async () => {
    if (bed === undefined) return;
    try {
      await bed.daemon.stop();
    } finally {
      await bed.tb.teardown();
    }
  });

  test('client addresses: distinct per MTA and scenario', () => {
    const all = MTA_NAMES.flatMap((m) =>
      (Object.keys(SCENARIO_OCTET) as Scenario[]).flatMap((s) => [
        clientAddr(m, s, 'limited'),
        clientAddr(m, s, 'other'),
      ]),
    );
    assert.equal(new Set(all).size, all.length, all.join(' '));
  });

  describe('phase 1: connection rate {counts: connections, rate: 3, per: 1h}', () => {
    for (const name of MTA_NAMES) {
      test(`${name}: three sessions accepted, the 4th session's RCPTs get 452; another client is not affected`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'conn', 'limited');
        for (let i = 1; i <= 3; i++) {
          await assertDelivered(await transaction(mta, { what: `conn${i}`, from: limited }), `session ${i}`);
        }
        const { client, helo } = await mailSession(mta, 'conn4', limited);
        try {
          const first = await client.rcpt(RCPT);
          const second = await client.rcpt('second@example.test');
          assert.equal(first.text, CONN_REPLY, '4th session, 1st RCPT');
          assert.equal(second.text, CONN_REPLY, '4th session, 2nd RCPT');
          record('connection rate, 4th session RCPT', name, first.text);
          const ds = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 2);
          for (const d of ds) {
            assertDecision(
              d,
              'tempfail',
              'rate_limit',
              CONN_REPLY,
              new RegExp(`^conn: more than 3 connections for ${esc(limited)}$`),
            );
          }
          assert.deepEqual(
            ds.map((d) => d.recipient),
            [`<${RCPT}>`, '<second@example.test>'],
          );
          // While the over-limit session is still open, another client is accepted.
          const other = await transaction(mta, {
            what: 'conn-other',
            from: clientAddr(name, 'conn', 'other'),
          });
          await assertDelivered(other, 'another client');
        } finally {
          await client.quit();
        }
      });
    }
  });

  describe('phase 2: recipient burst {counts: recipients, rate: 5, per: 1h}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.rcpt);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: 7 RCPTs in one session, 5 accepted and delivered, 2 get 452; another client is not affected`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'rcpt', 'limited');
        const addresses = Array.from({ length: 7 }, (_v, i) => `burst${i + 1}@example.test`);
        const r = await transaction(mta, {
          what: 'burst',
          from: limited,
          rcpts: addresses.map((a) => `<${a}>`),
        });
        assertCode(r.mail, 250, 'MAIL');
        r.rcpts.slice(0, 5).forEach((reply, i) => assertCode(reply, 250, `RCPT ${i + 1}`));
        assert.deepEqual(
          r.rcpts.slice(5).map((x) => x.text),
          [RCPT_REPLY, RCPT_REPLY],
          'RCPTs 6 and 7',
        );
        record('recipient burst, 6th RCPT', name, r.rcpts[5]?.text);
        assertCode(r.data?.final, 250, 'end of data (the 5 accepted recipients)');
        const delivered = await waitUntil('the 5 accepted recipients at the sink', () => {
          const to = bed.sink.find(r.token).flatMap((m) => m.rcptTo);
          return to.length >= 5 ? to : undefined;
        });
        assert.deepEqual([...delivered].sort(), addresses.slice(0, 5).sort(), 'delivered to the 5 only');

        const ds = await waitSessionDecisions(bed.daemon, r.helo, 'rcpt', 7);
        assert.deepEqual(
          ds.map((d) => d.action),
          ['accept', 'accept', 'accept', 'accept', 'accept', 'tempfail', 'tempfail'],
          JSON.stringify(ds),
        );
        for (const d of ds.slice(5)) {
          assertDecision(
            d,
            'tempfail',
            'rate_limit',
            RCPT_REPLY,
            new RegExp(`^rcpt: more than 5 recipients for ${esc(limited)}$`),
          );
        }
        const [eom] = await waitSessionDecisions(bed.daemon, r.helo, 'eom', 1);
        assert.equal(eom?.action, 'accept', JSON.stringify(eom));

        const other = await transaction(mta, {
          what: 'burst-other',
          from: clientAddr(name, 'rcpt', 'other'),
          rcpts: ['<o1@example.test>', '<o2@example.test>', '<o3@example.test>'],
        });
        await assertDelivered(other, 'another client');
      });
    }
  });

  describe('phase 3: concurrent connections {counts: concurrent, rate: 2}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.concurrent);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: two sessions held open, a 3rd gets 452 at RCPT; after a QUIT a new session is accepted`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'concurrent', 'limited');
        const open = new Set<SmtpClient>();
        const quit = async (c: SmtpClient): Promise<void> => {
          open.delete(c);
          await c.quit();
        };
        try {
          const held1 = await mailSession(mta, 'cc-hold1', limited);
          open.add(held1.client);
          const held2 = await mailSession(mta, 'cc-hold2', limited);
          open.add(held2.client);
          assertCode(await held1.client.rcpt(RCPT), 250, 'held session 1: RCPT');
          assertCode(await held2.client.rcpt(RCPT), 250, 'held session 2: RCPT');

          const third = await mailSession(mta, 'cc-third', limited);
          open.add(third.client);
          const refused = await third.client.rcpt(RCPT);
          assert.equal(refused.text, CC_REPLY, 'the 3rd open session');
          record('concurrent, 3rd open session RCPT', name, refused.text);
          const [d] = await waitSessionDecisions(bed.daemon, third.helo, 'rcpt', 1);
          assertDecision(
            d,
            'tempfail',
            'rate_limit',
            CC_REPLY,
            new RegExp(`^cc: more than 2 open connections \\(2 open\\) for ${esc(limited)}$`),
          );
          await quit(third.client);

          // Another client is not affected while the first holds two.
          await assertDelivered(
            await transaction(mta, { what: 'cc-other', from: clientAddr(name, 'concurrent', 'other') }),
            'another client',
          );

          // QUIT one of the two: its lease is released when the MTA closes the milter session.
          await quit(held1.client);
          const quitAt = Date.now();
          let attempts = 0;
          let next: { client: SmtpClient; helo: string } | undefined;
          while (next === undefined) {
            attempts += 1;
            const s = await mailSession(mta, 'cc-after', limited);
            const reply = await s.client.rcpt(RCPT);
            if (reply.code === 250) {
              next = s;
              open.add(s.client);
              break;
            }
            assert.equal(reply.text, CC_REPLY, `attempt ${attempts} after the QUIT`);
            await s.client.quit();
            assert.ok(Date.now() - quitAt < 5000, `no session accepted within 5 s of the QUIT (${attempts})`);
            await sleep(100);
          }
          notes.push(
            `${name}: concurrent: a new session was accepted ${Date.now() - quitAt} ms after the QUIT of a held one (attempt ${attempts})`,
          );
          record('concurrent, after a QUIT', name, 'accepted');

          // Two open again (held 2 and the new one): one more is refused again.
          const fifth = await mailSession(mta, 'cc-fifth', limited);
          open.add(fifth.client);
          assert.equal((await fifth.client.rcpt(RCPT)).text, CC_REPLY, 'two open again: refused');
          await quit(fifth.client);

          // The new session's message is delivered.
          const token = uniqueToken('cc-after', name);
          const { final } = await next.client.data(testMessage({ from: SENDER, to: [RCPT], token }));
          assertCode(final, 250, 'the new session: end of data');
          await bed.sink.waitFor(token);
          const [eom] = await waitSessionDecisions(bed.daemon, next.helo, 'eom', 1);
          assert.equal(eom?.action, 'accept', JSON.stringify(eom));
        } finally {
          for (const c of [...open]) await quit(c);
        }
      });
    }
  });

  describe('phase 4: dictionary attack, bad_recipients {per_connection: 3}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.dictionary);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: after 3 refused RCPTs every further RCPT gets 452; a new session and another client are not affected`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'dictionary', 'limited');
        const probes = ['a1@other.test', 'a2@other.test', 'a3@other.test'];
        const r = await transaction(mta, {
          what: 'dict',
          from: limited,
          rcpts: [...probes, RCPT, 'a4@other.test'].map((a) => `<${a}>`),
        });
        assertCode(r.mail, 250, 'MAIL');
        assert.deepEqual(
          r.rcpts.map((x) => x.text),
          [...probes.map(relayingDenied), BAD_REPLY, BAD_REPLY],
        );
        assert.equal(r.data, null, 'no recipient accepted, no DATA');
        record('dictionary, refused by the relay guard', name, r.rcpts[0]?.text);
        record('dictionary, after 3 refused (valid RCPT)', name, r.rcpts[3]?.text);
        const ds = await waitSessionDecisions(bed.daemon, r.helo, 'rcpt', 5);
        ds.slice(0, 3).forEach((d, i) =>
          assertDecision(d, 'reject', 'relay_guard', relayingDenied(probes[i] ?? '')),
        );
        for (const d of ds.slice(3)) {
          assertDecision(
            d,
            'tempfail',
            'bad_recipients',
            BAD_REPLY,
            /^3 recipients refused in this connection \(limit 3\)$/,
          );
        }

        // The count is per connection: a new session from the same client is accepted.
        await assertDelivered(
          await transaction(mta, { what: 'dict-again', from: limited }),
          'same client, new session',
        );
        await assertDelivered(
          await transaction(mta, { what: 'dict-other', from: clientAddr(name, 'dictionary', 'other') }),
          'another client',
        );
      });
    }
  });

  describe('phase 5: dictionary attack across sessions, bad_recipients {per_source: 4, window: 1h, ban: 10m}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.ban);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: the 4th refused RCPT from one source (2 sessions) bans it; another client is not affected`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'ban', 'limited');
        const s1 = await transaction(mta, {
          what: 'ban1',
          from: limited,
          rcpts: ['<b1@other.test>', '<b2@other.test>'],
        });
        assert.deepEqual(
          s1.rcpts.map((x) => x.text),
          ['b1@other.test', 'b2@other.test'].map(relayingDenied),
        );
        const s2 = await transaction(mta, {
          what: 'ban2',
          from: limited,
          rcpts: ['<b3@other.test>', '<b4@other.test>', `<${RCPT}>`],
        });
        const banned = addressReply(bannedReply(limited), RCPT);
        assert.deepEqual(
          s2.rcpts.map((x) => x.text),
          [relayingDenied('b3@other.test'), relayingDenied('b4@other.test'), banned],
        );
        assert.equal(s2.data, null);
        record('ban, the RCPT after the 4th refusal', name, s2.rcpts[2]?.text.replace(limited, '<client>'));
        const ds = await waitSessionDecisions(bed.daemon, s2.helo, 'rcpt', 3);
        assertDecision(ds[0], 'reject', 'relay_guard', relayingDenied('b3@other.test'));
        assertDecision(ds[1], 'reject', 'relay_guard', relayingDenied('b4@other.test'));
        assertDecision(
          ds[2],
          'tempfail',
          'bad_recipients',
          banned,
          new RegExp(`^${esc(limited)} is banned until `),
        );
        const ban = await waitUntil('the client_banned log line', () =>
          bed.daemon.log.find((e) => e.event === 'client_banned' && e['client_addr'] === limited),
        );
        assert.match(String(ban['reason']), /^4 refused recipients from/);

        // A third session from the banned source: refused at once.
        const s3 = await transaction(mta, { what: 'ban3', from: limited });
        assert.equal(s3.rcpts[0]?.text, banned, 'banned client, new session');
        assert.equal(s3.data, null);
        record(
          'ban, a new session of the banned client',
          name,
          s3.rcpts[0]?.text.replace(limited, '<client>'),
        );
        await assertDelivered(
          await transaction(mta, { what: 'ban-other', from: clientAddr(name, 'ban', 'other') }),
          'another client',
        );
      });
    }
  });

  describe('phase 6: terminate: true with {counts: connections, rate: 1, per: 1h}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.terminate);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: the over-limit session gets 421 at RCPT and the MTA closes the connection`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'terminate', 'limited');
        await assertDelivered(await transaction(mta, { what: 'term1', from: limited }), 'first session');
        const { client, helo } = await mailSession(mta, 'term2', limited);
        try {
          const reply = await client.rcpt(RCPT);
          assert.equal(reply.text, TERMINATE_REPLY, 'the over-limit RCPT');
          record('terminate, over-limit RCPT', name, reply.text);
          // Give the MTA's FIN time to arrive; a NOOP written into the closing socket may also
          // come back as a reset.
          await sleep(100);
          const after = await client.command('NOOP').then(
            (r) => `NOOP answered: ${r.text}`,
            (e: unknown) => `closed (${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)})`,
          );
          notes.push(`${name}: terminate: RCPT -> ${reply.text}; then ${after}`);
          assert.match(
            after,
            /^closed \(NOOP: (connection closed by server|.*ECONNRESET|.*EPIPE)/,
            `${name} closes the connection`,
          );
          record('terminate, after the 421', name, 'connection closed');
          const [d] = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 1);
          assertDecision(
            d,
            'tempfail',
            'rate_limit',
            TERMINATE_REPLY,
            new RegExp(`^conn: more than 1 connection for ${esc(limited)}$`),
          );
        } finally {
          client.destroy();
        }
        await assertDelivered(
          await transaction(mta, { what: 'term-other', from: clientAddr(name, 'terminate', 'other') }),
          'another client',
        );
      });
    }
  });

  describe('phase 7: report_at: connect with {counts: connections, rate: 1, per: 1h}', () => {
    before(async () => {
      await bed.reconfigure(PHASES.connect);
    });

    for (const name of MTA_NAMES) {
      test(`${name}: what the over-limit client sees when the refusal is reported at connect`, async () => {
        const mta = bed.mtas[name];
        const limited = clientAddr(name, 'connect', 'limited');
        await assertDelivered(await transaction(mta, { what: 'atconn1', from: limited }), 'first session');
        const from = bed.daemon.log.length;
        const client = await SmtpClient.connect({ port: mta.port, localAddress: limited, timeoutMs: 10_000 });
        const replies: Record<string, string> = { greeting: client.greeting.text };
        try {
          for (const [key, line] of [
            ['EHLO', `EHLO ${uniqueHelo(name, 'atconn2')}`],
            ['MAIL', `MAIL FROM:<${SENDER}>`],
            ['RCPT', `RCPT TO:<${RCPT}>`],
            ['MAIL again', `MAIL FROM:<${SENDER}>`],
          ] as const) {
            replies[key] = await client.command(line).then(
              (r) => r.text,
              (e: unknown) =>
                `(failed: ${e instanceof Error ? (e.message.split('\n')[0] ?? '') : String(e)})`,
            );
          }
        } finally {
          await client.quit();
        }
        notes.push(`${name}: report_at connect: ${JSON.stringify(replies)}`);
        const [d] = await bed.daemon.waitForDecisions(
          (x) => x.stage === 'connect' && x.client_addr === limited,
          1,
          10_000,
          from,
        );
        // The decision line logs the reply the client saw: sendmail ignores a milter's text at
        // connect and answers MAIL with its own.
        assertDecision(
          d,
          'tempfail',
          'rate_limit',
          name === 'sendmail' ? AT_CONNECT.sendmail.mail : CONN_REPLY,
          new RegExp(`^conn: more than 1 connection for ${esc(limited)}$`),
        );
        // Nothing of this session reached the milter after connect (both MTAs stop asking).
        await sleep(200);
        const later = bed.daemon
          .decisions(from)
          .filter((x) => x.client_addr === limited && x.stage !== 'connect');
        assert.deepEqual(later, [], 'no decisions after the connect refusal');
        const expected = AT_CONNECT[name];
        assert.match(replies['greeting'] ?? '', /^220 /, 'a normal greeting after a 4xx at connect');
        assert.match(replies['EHLO'] ?? '', /^250-/, 'EHLO answered normally');
        assert.equal(replies['MAIL'], expected.mail, 'MAIL');
        assert.equal(replies['RCPT'], expected.rcpt, 'RCPT (no MAIL accepted)');
        assert.equal(replies['MAIL again'], expected.mail, 'every MAIL');
        for (const key of ['EHLO', 'MAIL', 'RCPT'] as const)
          atConnect.set(`${name} ${key}`, replies[key]?.split('\n')[0] ?? '');
        await assertDelivered(
          await transaction(mta, { what: 'atconn-other', from: clientAddr(name, 'connect', 'other') }),
          'another client',
        );
      });
    }
  });

  test('summary: replies through both MTAs, what the MTAs did', () => {
    console.log('rate-limit replies (same text through Postfix and sendmail unless shown apart):');
    for (const [key, byMta] of seen) {
      const pf = byMta.get('postfix');
      const sm = byMta.get('sendmail');
      console.log(`  ${key.padEnd(44)} ${pf === sm ? pf : `postfix: ${pf} | sendmail: ${sm}`}`);
    }
    console.log('report_at: connect, the over-limit client (first line of each reply):');
    for (const [key, text] of atConnect) console.log(`  ${key.padEnd(44)} ${text}`);
    for (const note of notes) console.log(`  note: ${note}`);
    console.log(`  run time so far: ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    for (const [key, byMta] of seen) {
      assert.equal(byMta.size, 2, `${key}: both MTAs ran`);
      assert.equal(byMta.get('postfix'), byMta.get('sendmail'), key);
    }
  });
});
