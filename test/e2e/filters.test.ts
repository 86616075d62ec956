// End to end: the classic content and envelope filters of issue 4 (advertisement Subject, Space
// Patrol, Message-ID, route addresses, dangerous attachments, message size, header regex rules,
// spam trap) through real Postfix 3.7 and sendmail 8.17 into the daemon and out to the sink. Phase
// 1 runs every filter in enforce mode; phases 2 and 3 run the advertisement and Space Patrol
// filters in observe and tag mode (each filter in each mode once). Every scenario runs through
// both MTAs and asserts on the SMTP replies, the sink and the decision lines; forms an MTA refuses
// or rewrites itself before the milter sees them are recorded and printed with who refused them.
// Clients are loopback aliases the daemon does not trust (127.0.0.4 by default; each MTA gets its
// own spam-trap client, because a ban is per client address). Needs root, Postfix, the unpacked
// sendmail, sasl2-bin and a built daemon: skips without them, fails under CI=true.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Decision } from './harness/daemon.js';
import type { MailBed, MtaName, MtaUnderTest, PolicyOptions } from './harness/mail-bed.js';
import {
  MTA_NAMES,
  SASL_USER,
  sessionDecisions,
  startMailBed,
  waitSessionDecisions,
} from './harness/mail-bed.js';
import type { HostsEntry } from './harness/mta-namespace.js';
import { headerValues } from './harness/sink.js';
import type { SmtpReply } from './harness/smtp-client.js';
import type { TransactionOptions, TransactionResult } from './harness/transaction.js';
import { addressReply, rawMessage, standardHeaders, transaction } from './harness/transaction.js';
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
const TAG_HEADER = 'X-Milter-Policy-Tag';
/** Spam-trap clients per MTA (a ban is per client address and lasts the whole phase). */
const TRAP_CLIENT: Record<MtaName, { trapped: string; other: string }> = {
  postfix: { trapped: '127.0.0.8', other: '127.0.0.9' },
  sendmail: { trapped: '127.0.0.10', other: '127.0.0.11' },
};
const HOSTS: HostsEntry[] = [4, 8, 9, 10, 11].map((n) => ({
  address: `127.0.0.${n}`,
  names: [`client${n}.external.test`],
}));

const ADV_REPLY = '554 5.7.1 No advertisements here, please';
const SPACES_REPLY = '550 5.7.1 Subject with a run of spaces is not accepted here';
const MESSAGE_ID_REPLY = '550 5.7.1 Message-ID header missing or malformed';
const ROUTE_REPLY = '553 5.1.3 Route and % or ! addresses are not accepted';
const SIZE_REPLY = '552 5.3.4 Message size exceeds fixed maximum message size';
const TRAP_REPLY = '550 5.7.1 Mail sent to spam lists is not accepted here';
const BANNED_REPLY = '550 5.7.1 Access denied';
const OVER_LIMIT_REPLY = '552 5.3.4 Message structure exceeds the limits of this server';
const attachmentReply = (name: string, ext: string): string =>
  `550 5.7.1 Attachment ${name} is not accepted here (.${ext})`;

const y = (v: unknown): string => JSON.stringify(v);

function filtersPolicy(filters: Record<string, unknown>): PolicyOptions {
  return {
    trustedNetworks: ['127.0.0.1/32', '::1/128'],
    extra: [`shutdown: ${y({ drain_timeout: '3s' })}`, `tag_header: ${TAG_HEADER}`, `filters: ${y(filters)}`],
  };
}

const ENFORCE_ALL = {
  advertisement: {
    enabled: true,
    mode: 'enforce',
    prefixes: ['ADV:', 'AD:', 'ADVERTISEMENT'],
    reply: ADV_REPLY,
  },
  space_patrol: { enabled: true, spaces: 8 },
  message_id: { enabled: true, missing: true, no_at: true, malformed: true },
  route_address: { enabled: true },
  attachments: { enabled: true, max_depth: 20, max_parts: 1000, max_bytes: '50m', over_limit: 'reject' },
  message_size: { enabled: true, max: '100k' },
  header_rules: [{ name: 'viagra', header: 'Subject', pattern: 'viagra', flags: 'i', action: 'reject' }],
  spam_trap: { enabled: true, addresses: ['trap@example.test'], ban: '10m' },
};

/** A message with the usual headers, this Subject, and the token in the body. */
const withSubject =
  (subject: string, extra: readonly string[] = []) =>
  (token: string): string =>
    rawMessage(standardHeaders(token, subject, extra), `token ${token}\n`);

/** multipart/mixed: a text part and one attachment part with these MIME headers. */
const withAttachment =
  (partHeaders: readonly string[]) =>
  (token: string): string =>
    rawMessage(
      standardHeaders(token, `attachment ${token}`, [
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1-e2e"',
      ]),
      [
        'This is a multi-part message in MIME format.',
        '--b1-e2e',
        'Content-Type: text/plain; charset=us-ascii',
        '',
        `token ${token}`,
        '--b1-e2e',
        ...partHeaders,
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('MZ not really a program\n').toString('base64'),
        '--b1-e2e--',
        '',
      ].join('\n'),
    );

/** Where a refusal came from, for the printed tables. */
interface Row {
  form: string;
  stage: 'MAIL' | 'RCPT' | 'DATA' | '-';
  reply: string;
  refusedBy: string;
}
const routeRows = new Map<MtaName, Row[]>();
const mtaNotes: string[] = [];
/** Replies per scenario and MTA, compared across the MTAs at the end. */
const seen = new Map<string, Map<MtaName, string>>();
function record(key: string, mta: MtaName, text: string | undefined): void {
  const m = seen.get(key) ?? new Map<MtaName, string>();
  m.set(mta, text ?? '(none)');
  seen.set(key, m);
}

function assertCode(reply: SmtpReply | undefined, code: number, what: string): void {
  assert.ok(reply !== undefined, `${what}: no reply`);
  assert.equal(reply.code, code, `${what}: expected ${code}, got ${reply.text}`);
}

describe('content and envelope filters through real MTAs', { skip }, () => {
  let bed: MailBed;

  const send = (mta: MtaUnderTest, opts: TransactionOptions): Promise<TransactionResult> =>
    transaction(mta, opts);

  /** Accepted at MAIL and RCPT, refused at end of data with `expected` by `rule`; nothing delivered. */
  async function assertEomRefused(r: TransactionResult, expected: string, rule: string): Promise<Decision> {
    assertCode(r.mail, 250, 'MAIL');
    assertCode(r.rcpts[0], 250, 'RCPT');
    assert.equal(r.data?.final.text, expected, 'end-of-data reply');
    const [eom] = await waitSessionDecisions(bed.daemon, r.helo, 'eom', 1);
    assert.equal(eom?.action, 'reject', JSON.stringify(eom));
    assert.equal(eom.rule, rule, JSON.stringify(eom));
    assert.equal(eom.reply, expected, 'the decision line logs the reply the client saw');
    assert.equal(bed.sink.find(r.token).length, 0, 'nothing delivered');
    return eom;
  }

  async function assertDelivered(r: TransactionResult, what: string) {
    assertCode(r.mail, 250, `${what}: MAIL`);
    assertCode(r.rcpts[0], 250, `${what}: RCPT`);
    assertCode(r.data?.final, 250, `${what}: end of data`);
    const message = await bed.sink.waitFor(r.token);
    const [eom] = await waitSessionDecisions(bed.daemon, r.helo, 'eom', 1);
    assert.equal(eom?.action, 'accept', `${what}: ${JSON.stringify(eom)}`);
    return { message, eom };
  }

  before(async () => {
    bed = await startMailBed('filters', { hosts: HOSTS, policy: filtersPolicy(ENFORCE_ALL) });
  });

  after(async () => {
    if (bed === undefined) return;
    try {
      await bed.daemon.stop();
    } finally {
      await bed.tb.teardown();
    }
  });

  describe('phase 1: every filter enabled, enforce', () => {
    for (const name of MTA_NAMES) {
      describe(name, () => {
        const mta = (): MtaUnderTest => bed.mtas[name];

        test('advertisement Subject (plain, RFC 2047, lower case with leading spaces) refused at end of data', async () => {
          for (const subject of [
            'ADV: buy now',
            '=?utf-8?B?QURWOiBidXk=?=',
            '   advertisement: summer sale',
          ]) {
            const r = await send(mta(), { what: 'adv', message: withSubject(subject) });
            const d = await assertEomRefused(r, ADV_REPLY, 'advertisement');
            assert.match(String(d.reason), /ADV|advertisement/i);
            record(`advertisement ${subject}`, name, r.data?.final.text);
          }
        });

        test('controls: "Adventures in ADVertising" and "Re: ADV: x" are delivered', async () => {
          for (const subject of ['Adventures in ADVertising', 'Re: ADV: x']) {
            await assertDelivered(
              await send(mta(), { what: 'adv-ok', message: withSubject(subject) }),
              subject,
            );
          }
        });

        test('Space Patrol: 8 spaces in the Subject refused, 7 delivered', async () => {
          const r = await send(mta(), { what: 'spaces', message: withSubject(`hello${' '.repeat(8)}world`) });
          await assertEomRefused(r, SPACES_REPLY, 'space_patrol');
          record('space patrol', name, r.data?.final.text);
          await assertDelivered(
            await send(mta(), { what: 'spaces-ok', message: withSubject(`hello${' '.repeat(7)}world`) }),
            '7 spaces',
          );
        });

        test('Message-ID missing, without @, and not in <...@...> form: refused', async () => {
          const variants: Array<[string, (t: string) => string]> = [
            [
              'missing',
              (t) =>
                rawMessage(
                  standardHeaders(t, `no id ${t}`).filter((h) => !h.startsWith('Message-ID:')),
                  `token ${t}\n`,
                ),
            ],
            ['no @', withSubjectAndId('<no-at-sign.example>')],
            ['malformed', withSubjectAndId('bare@client.example.test')],
          ];
          for (const [what, message] of variants) {
            const r = await send(mta(), { what: 'msgid', message });
            await assertEomRefused(r, MESSAGE_ID_REPLY, 'message_id');
            record(`message-id ${what}`, name, r.data?.final.text);
          }
        });

        test('route addresses in MAIL FROM and RCPT TO: every form refused (table: who refused)', async () => {
          const rows: Row[] = [];
          const senders = ['<a%b@x.example>', '<a!b@x.example>', '<@a.example:b@x.example>'];
          for (const form of senders) {
            const r = await send(mta(), { what: 'route-from', mailArgument: form });
            rows.push(await classify(r, `MAIL FROM:${form}`));
          }
          const rcpts = ['<b!c@example.test>', '<c%d@example.test>', '<@a.example:b@example.test>'];
          for (const auth of [false, true]) {
            for (const form of rcpts) {
              const r = await send(mta(), {
                what: 'route-rcpt',
                rcpts: [form],
                ...(auth ? { auth: SASL_USER, sender: SASL_USER.login } : {}),
              });
              rows.push(await classify(r, `RCPT TO:${form}${auth ? ' (after AUTH)' : ''}`));
            }
          }
          routeRows.set(name, rows);
          for (const row of rows)
            assert.notEqual(row.refusedBy, 'nobody', `${row.form} accepted: ${row.reply}`);
          for (const row of rows.filter((x) => x.refusedBy === 'route_address')) {
            assert.ok(
              row.reply.startsWith('553 5.1.3 ') && row.reply.endsWith(ROUTE_REPLY.slice(10)),
              row.reply,
            );
          }
          // After AUTH the relay guard lets any recipient through: these are the route filter's own.
          for (const row of rows.filter((x) => x.form.endsWith('(after AUTH)') && x.refusedBy !== 'MTA')) {
            assert.equal(row.refusedBy, 'route_address', `${row.form}: ${row.reply}`);
          }
          assert.ok(
            rows.filter((x) => x.refusedBy === 'route_address').length >= 3,
            'the route filter refused at least three forms itself',
          );
        });

        test('the null sender is never refused as a route address', async () => {
          await assertDelivered(await send(mta(), { what: 'null-sender', sender: '' }), 'MAIL FROM:<>');
        });

        test('dangerous attachments refused (double extension, RFC 2231, RFC 2047); a .pdf is delivered', async () => {
          const cases: Array<[string, readonly string[], string, string]> = [
            [
              'invoice.pdf.exe',
              [
                'Content-Type: application/octet-stream; name="invoice.pdf.exe"',
                'Content-Disposition: attachment; filename="invoice.pdf.exe"',
              ],
              'invoice.pdf.exe',
              'exe',
            ],
            [
              'RFC 2231 filename*=',
              [
                'Content-Type: application/octet-stream',
                "Content-Disposition: attachment; filename*=utf-8''Rechnung%20Maerz%202026.exe",
              ],
              'Rechnung Maerz 2026.exe',
              'exe',
            ],
            [
              'RFC 2047 name=',
              ['Content-Type: application/octet-stream; name="=?UTF-8?B?c2V0dXAuc2Ny?="'],
              'setup.scr',
              'scr',
            ],
          ];
          for (const [what, headers, file, ext] of cases) {
            const r = await send(mta(), { what: 'attach', message: withAttachment(headers) });
            await assertEomRefused(r, attachmentReply(file, ext), 'attachments');
            record(`attachment ${what}`, name, r.data?.final.text);
          }
          const ok = await send(mta(), {
            what: 'attach-ok',
            message: withAttachment([
              'Content-Type: application/pdf; name="invoice.pdf"',
              'Content-Disposition: attachment; filename="invoice.pdf"',
            ]),
          });
          await assertDelivered(ok, 'invoice.pdf');
        });

        test('attachments: a MIME structure deeper than max_depth (20) gets the over_limit verdict', async () => {
          const r = await send(mta(), { what: 'deep', message: nestedMultipart(25) });
          const d = await assertEomRefused(r, OVER_LIMIT_REPLY, 'attachments');
          assert.match(String(d.reason), /depth/i);
          record('attachment structure too deep', name, r.data?.final.text);
        });

        test('message size: 150 kB refused at end of data (max 100k); SIZE=200000 refused before DATA', async () => {
          const big = (token: string): string =>
            rawMessage(
              standardHeaders(token, `big ${token}`),
              `token ${token}\n${`${'x'.repeat(76)}\n`.repeat(2000)}`,
            );
          const r = await send(mta(), { what: 'big', message: big });
          await assertEomRefused(r, SIZE_REPLY, 'message_size');
          record('size at end of data', name, r.data?.final.text);

          const declared = await send(mta(), {
            what: 'size-declared',
            mailArgument: '<sender@client.example.test> SIZE=200000',
          });
          const refusal = declared.mail.code >= 400 ? declared.mail : declared.rcpts[0];
          assertCode(refusal, 552, 'SIZE=200000');
          assert.ok(refusal?.text.endsWith(SIZE_REPLY.slice(10)), refusal?.text);
          assert.equal(declared.data, null);
          const d = await bed.daemon.waitForDecisions(
            (x) => x.helo === declared.helo && x.action === 'reject',
            1,
          );
          assert.equal(d[0]?.rule, 'message_size', JSON.stringify(d));
          mtaNotes.push(
            `${name}: SIZE=200000 refused at ${declared.mail.code >= 400 ? 'MAIL' : 'RCPT'}: ${refusal?.text}`,
          );
          record('size declared', name, refusal?.text);

          const small = await send(mta(), {
            what: 'size-ok',
            mailArgument: '<sender@client.example.test> SIZE=50000',
          });
          await assertDelivered(small, 'SIZE=50000');
        });

        test('header rule: Subject matching /viagra/i refused with the rule name', async () => {
          const r = await send(mta(), { what: 'viagra', message: withSubject('Cheap VIAGRA today') });
          await assertEomRefused(r, '550 5.7.1 Message refused by rule viagra', 'header_rules');
          record('header rule', name, r.data?.final.text);
        });

        test('spam trap: the trap address is refused, then the client is banned; another client is not', async () => {
          const { trapped, other } = TRAP_CLIENT[name];
          const r = await send(mta(), {
            what: 'trap',
            from: trapped,
            rcpts: ['<trap@example.test>', `<${RCPT}>`],
          });
          assert.equal(r.rcpts[0]?.text, addressReply(TRAP_REPLY, 'trap@example.test'));
          assert.equal(r.rcpts[1]?.text, addressReply(BANNED_REPLY, RCPT), 'banned for the other recipients');
          const ds = await waitSessionDecisions(bed.daemon, r.helo, 'rcpt', 2);
          assert.deepEqual(
            ds.map((d) => [d.action, d.rule]),
            [
              ['reject', 'spam_trap'],
              ['reject', 'spam_trap'],
            ],
            JSON.stringify(ds),
          );
          const ban = await waitUntil('a ban log line', () =>
            bed.daemon.log.find((e) => /ban/i.test(String(e.event)) && JSON.stringify(e).includes(trapped)),
          );
          assert.ok(ban !== undefined);
          record('spam trap', name, r.rcpts[0]?.text);
          record('banned', name, r.rcpts[1]?.text);

          // A new connection from the banned client: still refused.
          const again = await send(mta(), { what: 'banned', from: trapped });
          const refusal = again.mail.code >= 400 ? again.mail : again.rcpts[0];
          assert.equal(refusal?.code, 550, `banned client, new connection: ${refusal?.text}`);
          assert.equal(again.data, null);
          // Another client is not affected.
          await assertDelivered(await send(mta(), { what: 'not-banned', from: other }), 'another client');
        });
      });
    }
  });

  for (const [phase, modes] of [
    ['phase 2: advertisement observe, Space Patrol tag', { advertisement: 'observe', space_patrol: 'tag' }],
    ['phase 3: advertisement tag, Space Patrol observe', { advertisement: 'tag', space_patrol: 'observe' }],
  ] as const) {
    describe(phase, () => {
      before(async () => {
        await bed.reconfigure(
          filtersPolicy({
            advertisement: { enabled: true, mode: modes.advertisement },
            space_patrol: { enabled: true, mode: modes.space_patrol },
          }),
        );
      });

      for (const name of MTA_NAMES) {
        describe(name, () => {
          const cases = [
            { filter: 'advertisement', mode: modes.advertisement, subject: 'ADV: buy now' },
            { filter: 'space_patrol', mode: modes.space_patrol, subject: `so${' '.repeat(9)}many spaces` },
          ] as const;
          for (const c of cases) {
            test(`${c.filter} in ${c.mode} mode: delivered, ${c.mode === 'tag' ? 'tag header' : 'log says what would have happened'}`, async () => {
              const r = await send(bed.mtas[name], {
                what: `${c.filter}-${c.mode}`,
                message: withSubject(c.subject),
              });
              const { message, eom } = await assertDelivered(r, `${c.filter} ${c.mode}`);
              assert.ok(message.data.includes(`Subject: ${c.subject}\r\n`), 'Subject unchanged');
              assert.ok(message.data.includes(`\r\n\r\ntoken ${r.token}\r\n`), 'body unchanged');
              const tags = headerValues(message, TAG_HEADER);
              const observed = (eom.observed ?? []) as Array<Record<string, unknown>>;
              if (c.mode === 'tag') {
                assert.equal(tags.length, 1, `one ${TAG_HEADER}: ${JSON.stringify(tags)}`);
                assert.match(tags[0] ?? '', new RegExp(`^${c.filter}\\b`));
                assert.equal(observed.length, 0);
              } else {
                assert.deepEqual(tags, [], 'observe adds no header');
                const entry = observed.find((o) => o['check'] === c.filter);
                assert.ok(entry !== undefined, `observed names ${c.filter}: ${JSON.stringify(eom)}`);
                assert.equal(entry['would'], 'reject');
              }
            });
          }
        });
      }
    });
  }

  test('summary: replies through both MTAs, and what the MTAs did themselves', () => {
    console.log('filter replies (same text through Postfix and sendmail unless shown apart):');
    for (const [key, byMta] of seen) {
      const pf = byMta.get('postfix');
      const sm = byMta.get('sendmail');
      console.log(`  ${key.padEnd(44)} ${pf === sm ? pf : `postfix: ${pf} | sendmail: ${sm}`}`);
    }
    const pf = routeRows.get('postfix') ?? [];
    const sm = routeRows.get('sendmail') ?? [];
    console.log('route addresses from 127.0.0.4 (refused by: a daemon check name, or MTA = its own error):');
    for (let i = 0; i < Math.max(pf.length, sm.length); i++) {
      const a = pf[i];
      const b = sm[i];
      const form = a?.form ?? b?.form ?? '';
      const who = (x: Row | undefined): string => (x === undefined ? '-' : `${x.refusedBy}@${x.stage}`);
      const reply = a?.reply === b?.reply ? a?.reply : `postfix: ${a?.reply} | sendmail: ${b?.reply}`;
      console.log(`  ${form.padEnd(52)} ${who(a).padEnd(22)} ${who(b).padEnd(22)} ${reply}`);
    }
    for (const note of mtaNotes) console.log(`  note: ${note}`);
    for (const [key, byMta] of seen) {
      assert.equal(byMta.size, 2, `${key}: both MTAs ran`);
      assert.equal(byMta.get('postfix'), byMta.get('sendmail'), key);
    }
  });

  /** Who refused a route-address transaction, from the replies and the session's decision lines. */
  async function classify(r: TransactionResult, form: string): Promise<Row> {
    const refused =
      r.mail.code >= 400
        ? { stage: 'MAIL' as const, reply: r.mail }
        : (r.rcpts[0]?.code ?? 250) >= 400
          ? { stage: 'RCPT' as const, reply: r.rcpts[0] as SmtpReply }
          : r.data !== null && r.data.final.code >= 400
            ? { stage: 'DATA' as const, reply: r.data.final }
            : null;
    if (refused === null)
      return { form, stage: '-', reply: r.data?.final.text ?? r.mail.text, refusedBy: 'nobody' };
    // A refusal by the daemon has a decision line with that reply (logged just after the reply).
    let decision: Decision | undefined;
    for (const deadline = Date.now() + 500; decision === undefined && Date.now() < deadline;) {
      decision = sessionDecisions(bed.daemon, r.helo).find((x) => x.reply === refused.reply.text);
      if (decision === undefined) await sleep(20);
    }
    const rule = decision === undefined ? 'MTA' : (decision.rule ?? 'daemon');
    return { form, stage: refused.stage, reply: refused.reply.text, refusedBy: rule };
  }
});

/** A message whose Message-ID header is exactly `id`. */
function withSubjectAndId(id: string): (token: string) => string {
  return (token) =>
    rawMessage(
      standardHeaders(token, `id ${token}`).map((h) =>
        h.startsWith('Message-ID:') ? `Message-ID: ${id}` : h,
      ),
      `token ${token}\n`,
    );
}

/** multipart/mixed nested `depth` levels deep, a text part with the token innermost. */
function nestedMultipart(depth: number): (token: string) => string {
  return (token) => {
    const lines: string[] = [];
    for (let i = 1; i < depth; i++)
      lines.push(`--d${i - 1}`, `Content-Type: multipart/mixed; boundary="d${i}"`, '');
    lines.push(`--d${depth - 1}`, 'Content-Type: text/plain', '', `token ${token}`);
    for (let i = depth - 1; i >= 0; i--) lines.push(`--d${i}--`);
    return rawMessage(
      standardHeaders(token, `deep ${token}`, [
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="d0"',
      ]),
      `${lines.join('\n')}\n`,
    );
  };
}
