// End to end: the relay guard and the added header, through real Postfix 3.7 and real sendmail
// 8.17 (both configured with the README snippets and the "milter decides" relay preset), into the
// daemon, out to the test sink. Every scenario runs through both MTAs with the same code and
// asserts on the SMTP replies the client saw, on what reached the sink and on the daemon's
// decision log. "External" clients connect from 127.0.0.2 (sendmail always trusts 127.0.0.1
// itself), which both MTAs know by a verified name (relay-tester.external.test, in their private
// /etc/hosts); trusted-network clients from 127.0.0.3; 127.0.0.4 has no name and the MTAs' PTR
// lookup for it fails temporarily (their resolver does not answer), which sendmail's relay rules
// turn into a 450. Needs root, Postfix, the unpacked sendmail,
// sasl2-bin and a built daemon: skips without them, fails under CI=true.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Decision } from './harness/daemon.js';
import { HEADER_NAME } from './harness/daemon.js';
import type { MailBed, MtaName, MtaUnderTest } from './harness/mail-bed.js';
import {
  MTA_NAMES,
  openSession,
  SASL_USER,
  sessionDecisions,
  startMailBed,
  waitSessionDecisions,
} from './harness/mail-bed.js';
import { headerValues } from './harness/sink.js';
import type { SmtpReply } from './harness/smtp-client.js';
import { testMessage } from './harness/smtp-client.js';
import {
  DAEMON,
  M4,
  packageVersion,
  POSTFIX,
  SASL_PLAIN,
  SASLPASSWD2,
  SENDMAIL,
  SENDMAIL_CF,
  skipUnless,
  UNSHARE,
  waitUntil,
} from './harness/testbed.js';

const skip = skipUnless(POSTFIX, SENDMAIL, SENDMAIL_CF, M4, UNSHARE, SASLPASSWD2, SASL_PLAIN, DAEMON);

/**
 * Classic third-party relay tests (the forms relay testers have used since the 1990s), sent from
 * an untrusted client. Every one must be refused; some may be refused by the MTA's own address
 * parser before the milter sees them, which is also a refusal (the table says who refused).
 */
const RELAY_FORMS: readonly string[] = [
  '<x@other.invalid>',
  '<user%other.invalid@example.test>',
  '<other.invalid!user@example.test>',
  '<other.invalid!user>',
  '<@example.test:user@other.invalid>',
  '<@example.test,@a.invalid:user@other.invalid>',
  '<"user@other.invalid">',
  '<"user@other.invalid"@example.test>',
  '<"user%other.invalid"@example.test>',
  '<"other.invalid!user"@example.test>',
  '<user@[192.0.2.1]>',
  '<user%other.invalid@[127.0.0.1]>',
  '<user@[IPv6:2001:db8::1]>',
  '<user@other.invalid.>',
  '<USER@OTHER.INVALID>',
  '<user%OTHER.INVALID@EXAMPLE.TEST>',
  '<user@other.invalid@example.test>',
  '<user%other.invalid%example.test@example.test>',
  '<other.invalid!user%example.test@example.test>',
  '<@relay.example.test:user@other.invalid>',
  '<user%other.invalid@relay.example.test>',
  '<user@sub.example.test>',
  '<user@xrelay.example.test>',
  '<user@relay.example.test.other.invalid>',
];

/** Forms the guard must let through from the same untrusted client (controls for the battery). */
const ACCEPTED_FORMS: readonly string[] = [
  '<user@example.test>',
  '<USER@EXAMPLE.TEST>',
  '<user@relay.example.test>',
  '<user@a.relay.example.test>',
  '<postmaster@example.test>',
];

const RELAYING_DENIED = (rcpt: string): string => `550 5.7.1 ${rcpt}... Relaying denied`;
/** The 450 each MTA gave the unresolvable client, to compare across MTAs. */
const unresolvedReplies = new Map<string, string>();

interface BatteryRow {
  form: string;
  reply: string;
  refusedBy: 'milter' | 'MTA' | 'nobody';
}

/** Results kept across the two MTAs, compared at the end. */
const deniedReplies = new Map<MtaName, string>();
const battery = new Map<MtaName, BatteryRow[]>();

function assertReply(reply: SmtpReply, code: number, what: string): void {
  assert.equal(reply.code, code, `${what}: expected ${code}, got ${reply.text}`);
}

describe('relay guard and header through real MTAs', { skip }, () => {
  let bed: MailBed;
  const version = packageVersion();

  before(async () => {
    bed = await startMailBed('relay', {
      hosts: [{ address: '127.0.0.2', names: ['relay-tester.external.test'] }],
    });
  });

  after(async () => {
    if (bed === undefined) return;
    try {
      await bed.daemon.stop();
    } finally {
      await bed.tb.teardown();
    }
  });

  for (const name of MTA_NAMES) {
    describe(name, () => {
      const mta = (): MtaUnderTest => bed.mtas[name];

      test('accepted mail reaches the sink with the daemon header (end-of-message change)', async () => {
        const { client, helo } = await openSession(mta(), 'accept');
        const token = `accept-${name}-${Date.now()}`;
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
        assertReply(await client.rcpt('user@example.test'), 250, 'RCPT');
        const { final } = await client.data(
          testMessage({ from: 'sender@example.test', to: ['user@example.test'], token }),
        );
        assertReply(final, 250, 'end of data');
        await client.quit();

        const message = await bed.sink.waitFor(token);
        const [eom] = await waitSessionDecisions(bed.daemon, helo, 'eom', 1);
        assert.ok(eom !== undefined);
        assert.equal(eom.action, 'accept');
        assert.equal(eom.mta, name);
        assert.equal(eom.client_addr, '127.0.0.2');
        assert.ok(typeof eom.queue_id === 'string' && eom.queue_id !== '', 'eom decision has the queue id');
        assert.deepEqual(headerValues(message, HEADER_NAME), [
          `milter-policy ${version} on ${mta().hostname} q=${eom.queue_id}`,
        ]);
        assert.deepEqual(message.rcptTo, ['user@example.test']);
      });

      test('untrusted client: foreign recipient refused, local one accepted in the same transaction', async () => {
        const { client, helo } = await openSession(mta(), 'mixed');
        const token = `mixed-${name}-${Date.now()}`;
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
        const denied = await client.rcpt('x@other.invalid');
        assert.equal(denied.text, RELAYING_DENIED('<x@other.invalid>'));
        deniedReplies.set(name, denied.text);
        assertReply(await client.rcpt('user@example.test'), 250, 'RCPT local');
        const { final } = await client.data(
          testMessage({ from: 'sender@example.test', to: ['user@example.test', 'x@other.invalid'], token }),
        );
        assertReply(final, 250, 'end of data');
        await client.quit();

        const message = await bed.sink.waitFor(token);
        assert.deepEqual(message.rcptTo, ['user@example.test'], 'only the local recipient was delivered');
        const rcpts = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 2);
        const byRcpt = new Map(rcpts.map((d) => [d.recipient, d]));
        const reject = byRcpt.get('<x@other.invalid>');
        const accept = byRcpt.get('<user@example.test>');
        assert.equal(reject?.action, 'reject', JSON.stringify(rcpts));
        assert.equal(reject.rule, 'relay_guard');
        assert.equal(reject.client_addr, '127.0.0.2');
        assert.equal(reject.mta, name);
        assert.equal(accept?.action, 'accept', JSON.stringify(rcpts));
        const [eom] = await waitSessionDecisions(bed.daemon, helo, 'eom', 1);
        assert.equal(eom?.action, 'accept');
        assert.deepEqual(eom.recipients, ['<user@example.test>']);
        assert.equal(headerValues(message, HEADER_NAME).length, 1);
      });

      test('an unresolvable client is told to retry, as sendmail does: 450 4.4.0 Cannot resolve PTR record', async () => {
        const { client, helo } = await openSession(mta(), 'nopt', '127.0.0.4');
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
        const r = await client.rcpt('x@other.invalid');
        assert.equal(
          r.text,
          '450 4.4.0 <x@other.invalid>... Relaying temporarily denied. Cannot resolve PTR record for 127.0.0.4',
        );
        unresolvedReplies.set(name, r.text);
        assertReply(await client.rcpt('user@example.test'), 250, 'RCPT local');
        await client.quit();
        const rcpts = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 2);
        const temp = rcpts.find((d) => d.recipient === '<x@other.invalid>');
        assert.equal(temp?.action, 'tempfail', JSON.stringify(rcpts));
        assert.equal(temp.rule, 'relay_guard');
      });

      test('trusted network client (127.0.0.3) may relay', async () => {
        const { client, helo } = await openSession(mta(), 'trusted', '127.0.0.3');
        const token = `trusted-${name}-${Date.now()}`;
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
        assertReply(await client.rcpt('x@other.invalid'), 250, 'RCPT foreign from trusted network');
        const { final } = await client.data(
          testMessage({ from: 'sender@example.test', to: ['x@other.invalid'], token }),
        );
        assertReply(final, 250, 'end of data');
        await client.quit();
        const message = await bed.sink.waitFor(token);
        assert.deepEqual(message.rcptTo, ['x@other.invalid']);
        const [rcpt] = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 1);
        assert.equal(rcpt?.action, 'accept');
        assert.equal(rcpt.client_addr, '127.0.0.3');
        assert.match(String(rcpt.reason), /trusted/i, 'accepted because of the trusted network');
        assert.equal(headerValues(message, HEADER_NAME).length, 1);
      });

      test('SMTP AUTH client may relay; a failed AUTH may not', async () => {
        // Wrong password first: the MTA refuses AUTH, the client stays unauthenticated.
        {
          const { client } = await openSession(mta(), 'authfail');
          const failed = await client.authPlain(SASL_USER.login, 'wrong-password');
          assert.equal(failed.code, 535, `bad password: ${failed.text}`);
          assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
          assert.equal((await client.rcpt('x@other.invalid')).text, RELAYING_DENIED('<x@other.invalid>'));
          await client.quit();
        }
        const { client, helo } = await openSession(mta(), 'auth');
        const token = `auth-${name}-${Date.now()}`;
        assertReply(await client.authPlain(SASL_USER.login, SASL_USER.password), 235, 'AUTH PLAIN');
        assertReply(await client.mail('alice@example.test'), 250, 'MAIL');
        assertReply(await client.rcpt('x@other.invalid'), 250, 'RCPT foreign after AUTH');
        const { final } = await client.data(
          testMessage({ from: 'alice@example.test', to: ['x@other.invalid'], token }),
        );
        assertReply(final, 250, 'end of data');
        await client.quit();
        const message = await bed.sink.waitFor(token);
        assert.deepEqual(message.rcptTo, ['x@other.invalid']);
        const [rcpt] = await waitSessionDecisions(bed.daemon, helo, 'rcpt', 1);
        assert.equal(rcpt?.action, 'accept');
        assert.equal(rcpt.client_addr, '127.0.0.2', 'accepted for AUTH, not for the address');
        assert.match(
          String(rcpt.reason),
          new RegExp(`authenticated.*${SASL_USER.login}`),
          'reason names the login',
        );
      });

      test(`battery of ${RELAY_FORMS.length} third-party relay forms: all refused`, async () => {
        const { client, helo } = await openSession(mta(), 'battery');
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL');
        const replies: Array<{ form: string; reply: SmtpReply }> = [];
        for (const form of RELAY_FORMS) replies.push({ form, reply: await client.rcptRaw(form) });
        const controls: Array<{ form: string; reply: SmtpReply }> = [];
        for (const form of ACCEPTED_FORMS) controls.push({ form, reply: await client.rcptRaw(form) });
        await client.rset();
        await client.quit();

        // Decision lines can reach the log a little after the reply reached the client (the log is
        // written asynchronously): wait for every one the replies promise, then attribute each
        // refusal: a reject decision for that exact RCPT argument = the daemon, none = the MTA.
        const expected = replies.filter((r) => r.reply.text.endsWith('Relaying denied')).length;
        const decisions = await waitUntil('the battery decisions', () => {
          const ds = sessionDecisions(bed.daemon, helo).filter((d) => d.stage === 'rcpt');
          return ds.length >= expected + controls.length ? ds : undefined;
        });
        const decisionFor = (form: string): Decision | undefined =>
          decisions.find((d) => d.recipient === form);
        const rows: BatteryRow[] = replies.map(({ form, reply }) => {
          const decision = decisionFor(form);
          const refusedBy = reply.code >= 500 ? (decision?.action === 'reject' ? 'milter' : 'MTA') : 'nobody';
          return { form, reply: reply.text, refusedBy };
        });
        battery.set(name, rows);

        for (const row of rows) {
          assert.notEqual(row.refusedBy, 'nobody', `${row.form} was not refused: ${row.reply}`);
          if (row.refusedBy === 'milter') {
            assert.equal(row.reply, RELAYING_DENIED(row.form));
            assert.equal(decisionFor(row.form)?.rule, 'relay_guard');
          }
        }
        assert.ok(
          rows.filter((r) => r.refusedBy === 'milter').length >= 15,
          'at least 15 refused by the daemon',
        );
        for (const { form, reply } of controls) {
          assert.equal(reply.code, 250, `control ${form} must be accepted: ${reply.text}`);
          assert.equal(decisionFor(form)?.action, 'accept', `control ${form}`);
        }
      });

      test('two messages and an RSET on one connection: both delivered, decisions per transaction', async () => {
        const { client, helo } = await openSession(mta(), 'multi');
        const tokens = [`multi1-${name}-${Date.now()}`, `multi2-${name}-${Date.now()}`];
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL 1');
        assertReply(await client.rcpt('first@example.test'), 250, 'RCPT 1');
        const one = await client.data(
          testMessage({ from: 'sender@example.test', to: ['first@example.test'], token: tokens[0] ?? '' }),
        );
        assertReply(one.final, 250, 'end of data 1');
        // An abandoned transaction: MAIL, RCPT, then RSET.
        assertReply(await client.mail('sender@example.test'), 250, 'MAIL abandoned');
        assertReply(await client.rcpt('abandoned@example.test'), 250, 'RCPT abandoned');
        assertReply(await client.rset(), 250, 'RSET');
        assertReply(await client.mail('other-sender@example.test'), 250, 'MAIL 2');
        assertReply(await client.rcpt('second@example.test'), 250, 'RCPT 2');
        assert.equal((await client.rcpt('x@other.invalid')).text, RELAYING_DENIED('<x@other.invalid>'));
        const two = await client.data(
          testMessage({
            from: 'other-sender@example.test',
            to: ['second@example.test'],
            token: tokens[1] ?? '',
          }),
        );
        assertReply(two.final, 250, 'end of data 2');
        await client.quit();

        const first = await bed.sink.waitFor(tokens[0] ?? '');
        const second = await bed.sink.waitFor(tokens[1] ?? '');
        assert.deepEqual(first.rcptTo, ['first@example.test']);
        assert.deepEqual(second.rcptTo, ['second@example.test']);
        assert.equal(second.mailFrom, 'other-sender@example.test');

        const eoms = await waitSessionDecisions(bed.daemon, helo, 'eom', 2);
        assert.equal(eoms.length, 2, 'no end-of-message decision for the abandoned transaction');
        const [e1, e2] = eoms as [Decision, Decision];
        assert.deepEqual(e1.recipients, ['<first@example.test>']);
        assert.deepEqual(e2.recipients, ['<second@example.test>']);
        assert.equal(e2.sender, '<other-sender@example.test>');
        assert.ok(
          typeof e1.transaction === 'number' &&
            typeof e2.transaction === 'number' &&
            e2.transaction > e1.transaction,
          `transactions increase: ${e1.transaction} then ${e2.transaction}`,
        );
        assert.notEqual(e1.queue_id, e2.queue_id, 'each message has its own queue id');
        assert.deepEqual(headerValues(first, HEADER_NAME), [
          `milter-policy ${version} on ${mta().hostname} q=${e1.queue_id}`,
        ]);
        assert.deepEqual(headerValues(second, HEADER_NAME), [
          `milter-policy ${version} on ${mta().hostname} q=${e2.queue_id}`,
        ]);
        const rcpts = sessionDecisions(bed.daemon, helo).filter((d) => d.stage === 'rcpt');
        const abandoned = rcpts.find((d) => d.recipient === '<abandoned@example.test>');
        assert.equal(abandoned?.action, 'accept', 'the abandoned transaction reached the daemon at RCPT');
        assert.ok(
          typeof abandoned.transaction === 'number' &&
            abandoned.transaction > e1.transaction &&
            abandoned.transaction < e2.transaction,
          `abandoned transaction numbered between: ${e1.transaction} < ${abandoned.transaction} < ${e2.transaction}`,
        );
      });
    });
  }

  test('the 450 for an unresolvable client is identical through both MTAs', () => {
    assert.equal(unresolvedReplies.size, 2);
    assert.equal(unresolvedReplies.get('postfix'), unresolvedReplies.get('sendmail'));
  });

  test('the "Relaying denied" reply is identical through both MTAs', () => {
    const texts = MTA_NAMES.map((n) => deniedReplies.get(n));
    assert.ok(
      texts.every((t) => t !== undefined),
      'both MTA scenarios ran',
    );
    assert.equal(texts[0], texts[1]);
    const pf: BatteryRow[] = battery.get('postfix') ?? [];
    const sm: BatteryRow[] = battery.get('sendmail') ?? [];
    if (pf.length === 0 || sm.length === 0) return;
    console.log(
      'third-party relay battery from 127.0.0.2 (refused by: milter = daemon decision logged, MTA = its own error)',
    );
    console.log(`  ${'RCPT TO:'.padEnd(48)} ${'postfix'.padEnd(8)} ${'sendmail'.padEnd(8)} reply`);
    for (let i = 0; i < pf.length; i++) {
      const a = pf[i];
      const b = sm[i];
      if (a === undefined || b === undefined) continue;
      const reply = a.reply === b.reply ? a.reply : `postfix: ${a.reply} | sendmail: ${b.reply}`;
      console.log(`  ${a.form.padEnd(48)} ${a.refusedBy.padEnd(8)} ${b.refusedBy.padEnd(8)} ${reply}`);
      if (a.refusedBy === 'milter' && b.refusedBy === 'milter') {
        assert.equal(a.reply, b.reply, `${a.form}: same reply through both MTAs`);
      }
    }
  });
});
