// End to end: what each MTA does while the daemon is down, and that mail flows again once it is
// back. The README snippets configure Postfix with `milter_default_action = tempfail` (451 4.7.1)
// and sendmail with `F=T` (451 4.3.2): a client must get a 4xx and retry, never have mail pass
// unchecked. Same code for both MTAs. The daemon is stopped with SIGTERM (exit 0 expected) and
// restarted on the same port. Needs root, Postfix, the unpacked sendmail and a built daemon:
// skips without them, fails under CI=true.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HEADER_NAME } from './harness/daemon.js';
import type { MailBed, MtaName } from './harness/mail-bed.js';
import { MTA_NAMES, openSession, startMailBed, waitSessionDecisions } from './harness/mail-bed.js';
import { headerValues } from './harness/sink.js';
import { testMessage } from './harness/smtp-client.js';
import {
  DAEMON,
  isListening,
  M4,
  packageVersion,
  POSTFIX,
  SASL_PLAIN,
  SASLPASSWD2,
  SENDMAIL,
  SENDMAIL_CF,
  skipUnless,
  UNSHARE,
} from './harness/testbed.js';

const skip = skipUnless(POSTFIX, SENDMAIL, SENDMAIL_CF, M4, UNSHARE, SASLPASSWD2, SASL_PLAIN, DAEMON);

/** What each MTA's configured default action says to the client while the milter is unreachable. */
const DOWN_REPLY: Record<MtaName, string> = {
  postfix: '451 4.7.1 Service unavailable - try again later',
  sendmail: '451 4.3.2 Please try again later',
};

describe('daemon down, then back up', { skip }, () => {
  let bed: MailBed;

  before(async () => {
    bed = await startMailBed('down');
  });

  after(async () => {
    if (bed === undefined) return;
    try {
      await bed.daemon.stop();
    } finally {
      await bed.tb.teardown();
    }
  });

  /** One message from 127.0.0.2 to a local recipient; resolves with the MAIL reply and the rest. */
  async function sendOne(mta: MtaName, what: string): Promise<{ mail: string; token: string; helo: string }> {
    const { client, helo } = await openSession(bed.mtas[mta], what);
    const token = `${what}-${mta}-${Date.now()}`;
    const mail = await client.mail('sender@example.test');
    if (mail.code === 250) {
      assert.equal((await client.rcpt('user@example.test')).code, 250);
      const { final } = await client.data(
        testMessage({ from: 'sender@example.test', to: ['user@example.test'], token }),
      );
      assert.equal(final.code, 250, final.text);
    }
    await client.quit();
    return { mail: mail.text, token, helo };
  }

  test('mail flows while the daemon is up', async () => {
    for (const mta of MTA_NAMES) {
      const { mail, token } = await sendOne(mta, 'before');
      assert.match(mail, /^250 /);
      const message = await bed.sink.waitFor(token);
      assert.equal(headerValues(message, HEADER_NAME).length, 1, `${mta}: header added`);
    }
  });

  test('daemon stops cleanly on SIGTERM (exit 0, `stopped` logged)', async () => {
    await bed.stopDaemon();
    assert.equal(isListening(bed.milterPort), false, 'nothing listens on the milter port any more');
  });

  for (const mta of MTA_NAMES) {
    test(`${mta}: daemon down -> its configured default, ${DOWN_REPLY[mta].slice(0, 9)}, at MAIL FROM`, async () => {
      const { mail, token } = await sendOne(mta, 'down');
      assert.equal(mail, DOWN_REPLY[mta]);
      assert.equal(bed.sink.find(token).length, 0, 'nothing delivered unchecked');
    });
  }

  test('daemon back up on the same port', async () => {
    await bed.restartDaemon();
    assert.ok(isListening(bed.milterPort));
  });

  for (const mta of MTA_NAMES) {
    test(`${mta}: mail flows again, checked by the restarted daemon`, async () => {
      const { mail, token, helo } = await sendOne(mta, 'after');
      assert.match(mail, /^250 /);
      const message = await bed.sink.waitFor(token);
      const [eom] = await waitSessionDecisions(bed.daemon, helo, 'eom', 1);
      assert.equal(eom?.action, 'accept');
      assert.deepEqual(headerValues(message, HEADER_NAME), [
        `milter-policy ${packageVersion()} on ${bed.mtas[mta].hostname} q=${eom.queue_id}`,
      ]);
    });
  }
});
