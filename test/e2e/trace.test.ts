// End to end: one refused message traced the way an admin would, through real Postfix 3.7 and
// sendmail 8.17 — from the SMTP client's reply, to the daemon's decision line that gave it, to the
// Prometheus counters that counted it (metrics enabled on a loopback port). Also /healthz. Needs
// root, Postfix, the unpacked sendmail, sasl2-bin and a built daemon: skips without them, fails
// under CI=true.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MailBed } from './harness/mail-bed.js';
import { MTA_NAMES, startMailBed, waitSessionDecisions } from './harness/mail-bed.js';
import { transaction } from './harness/transaction.js';
import {
  DAEMON,
  M4,
  POSTFIX,
  SASL_PLAIN,
  SASLPASSWD2,
  SENDMAIL,
  SENDMAIL_CF,
  UNSHARE,
  freePort,
  skipUnless,
} from './harness/testbed.js';

const skip = skipUnless(POSTFIX, SENDMAIL, SENDMAIL_CF, M4, UNSHARE, SASLPASSWD2, SASL_PLAIN, DAEMON);

const RELAY_DENIED = '550 5.7.1 <someone@elsewhere.example>... Relaying denied';
const SERIES =
  'milter_policy_decisions_total{stage="rcpt",action="reject",check="relay_guard",mode="enforce"}';
const REPLIES = 'milter_policy_replies_total{code="550"}';

/** One sample's value from the Prometheus text (0 when the series is absent). */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

describe('a refused message traced from the client to the decision line and the metric', { skip }, () => {
  let bed: MailBed;
  let metricsPort: number;
  const scrape = async (path = '/metrics'): Promise<{ status: number; text: string }> => {
    const r = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
    return { status: r.status, text: await r.text() };
  };

  before(async () => {
    metricsPort = await freePort();
    bed = await startMailBed('trace', {
      // a verified name, so the relay guard's reply is the plain one (no PTR-failure variant)
      hosts: [{ address: '127.0.0.4', names: ['client4.external.test'] }],
      policy: {
        extra: [`metrics: ${JSON.stringify({ enabled: true, listen: `127.0.0.1:${metricsPort}` })}`],
      },
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

  test('/healthz answers 200 while the daemon serves', async () => {
    const h = await scrape('/healthz');
    assert.equal(h.status, 200, h.text);
  });

  for (const name of MTA_NAMES) {
    test(`${name}: relay attempt → 550 at the client → the decision line → +1 in the counters`, async () => {
      const before = await scrape();
      const r = await transaction(bed.mtas[name], {
        what: 'trace',
        rcpts: ['<someone@elsewhere.example>'],
      });
      // 1. what the SMTP client saw
      assert.equal(r.rcpts[0]?.text, RELAY_DENIED);
      // 2. the decision line with the same reply, the check and the mode
      const [d] = await waitSessionDecisions(bed.daemon, r.helo, 'rcpt', 1);
      assert.equal(d?.action, 'reject', JSON.stringify(d));
      assert.equal(d.rule, 'relay_guard');
      assert.equal(d.reply, RELAY_DENIED, 'the line logs the reply the client saw');
      assert.equal(d['mode'], 'enforce');
      assert.equal(d.recipient, '<someone@elsewhere.example>');
      // 3. the counters that counted it
      const after = await scrape();
      assert.equal(after.status, 200);
      assert.equal(sample(after.text, SERIES) - sample(before.text, SERIES), 1, SERIES);
      assert.equal(sample(after.text, REPLIES) - sample(before.text, REPLIES), 1, REPLIES);
    });
  }
});
