// One SMTP transaction as the policy scenarios send it: connect from a chosen loopback client,
// EHLO (unique name, or a given one), optional AUTH, MAIL FROM (with ESMTP parameters), any number
// of RCPT TO, and DATA only when some recipient was accepted; every reply and the time each RCPT
// took are kept for the assertions. Also the reply texts the scenarios expect (sendmail's
// `<addr>... ` prefix at MAIL/RCPT, which the daemon reproduces under Postfix). Called by the
// DNSBL and filter e2e files. Fails only where the bed is broken: EHLO or AUTH refused, or a
// connection that dies mid-transaction, reject with the transcript; 4xx/5xx replies are results.

import type { MtaUnderTest } from './mail-bed.js';
import { openSession } from './mail-bed.js';
import type { SaslUser } from './sasl.js';
import type { SmtpReply } from './smtp-client.js';
import { testMessage } from './smtp-client.js';

export interface TransactionOptions {
  /** Short label: part of the EHLO name and the token. */
  what: string;
  /** Client source address (default 127.0.0.4: not trusted, not listed in bl.test). */
  from?: string;
  /** Exact EHLO name (default: a unique one, which ties decision lines to this session). */
  helo?: string;
  auth?: SaslUser;
  /** Envelope sender without brackets ('' = null sender); default sender@client.example.test. */
  sender?: string;
  /** The whole MAIL FROM argument, verbatim (overrides `sender`), e.g. `<a@b> SIZE=9999`. */
  mailArgument?: string;
  /** RCPT TO arguments, verbatim with brackets; default ['<user@example.test>']. */
  rcpts?: readonly string[];
  /** The message for a token (default testMessage); not sent unless a RCPT got 2xx. */
  message?: (token: string) => string;
}

export interface TransactionResult {
  helo: string;
  token: string;
  mail: SmtpReply;
  rcpts: SmtpReply[];
  /** Milliseconds from sending each RCPT to its reply. */
  rcptMs: number[];
  /** null when DATA was not attempted (MAIL or every RCPT refused). */
  data: { start: SmtpReply; final: SmtpReply } | null;
}

let tokenCounter = 0;

/** A token unique in this run (goes into Subject and body so the sink message can be found). */
export function uniqueToken(what: string, mta: string): string {
  tokenCounter += 1;
  return `${what}-${mta}-${process.pid}-${Date.now()}-${tokenCounter}`;
}

export async function transaction(mta: MtaUnderTest, opts: TransactionOptions): Promise<TransactionResult> {
  const { client, helo } = await openSession(mta, opts.what, opts.from ?? '127.0.0.4', opts.helo);
  try {
    if (opts.auth !== undefined) {
      const auth = await client.authPlain(opts.auth.login, opts.auth.password);
      if (auth.code !== 235) throw new Error(`AUTH refused by ${mta.name}: ${auth.text}`);
    }
    const token = uniqueToken(opts.what, mta.name);
    const sender = opts.sender ?? 'sender@client.example.test';
    const mail = await client.command(`MAIL FROM:${opts.mailArgument ?? `<${sender}>`}`);
    const rcpts: SmtpReply[] = [];
    const rcptMs: number[] = [];
    if (mail.code < 400) {
      for (const rcpt of opts.rcpts ?? ['<user@example.test>']) {
        const started = Date.now();
        rcpts.push(await client.rcptRaw(rcpt));
        rcptMs.push(Date.now() - started);
      }
    }
    let data: TransactionResult['data'] = null;
    if (rcpts.some((r) => r.code < 300)) {
      const accepted = (opts.rcpts ?? ['<user@example.test>']).filter(
        (_r, i) => (rcpts[i]?.code ?? 500) < 300,
      );
      const message =
        opts.message?.(token) ??
        testMessage({ from: sender || 'mailer-daemon@client.example.test', to: accepted.map(bare), token });
      data = await client.data(message);
    }
    return { helo, token, mail, rcpts, rcptMs, data };
  } finally {
    await client.quit();
  }
}

function bare(argument: string): string {
  return argument.replace(/^<|>$/g, '');
}

/** `CODE X.Y.Z <addr>... text`: a MAIL/RCPT refusal as the client sees it through both MTAs. */
export function addressReply(reply: string, address: string): string {
  const m = /^(\d{3}) (\d\.\d{1,3}\.\d{1,3}) (.*)$/s.exec(reply);
  if (m === null) throw new Error(`not a reply with an enhanced code: ${reply}`);
  return `${m[1]} ${m[2]} <${address}>... ${m[3]}`;
}

/** A minimal RFC 5322 message from raw header lines and a body (CRLF line ends). */
export function rawMessage(headers: readonly string[], body: string): string {
  return `${headers.join('\r\n')}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`;
}

/** The usual headers (From, To, Date, Message-ID from the token) with a given Subject. */
export function standardHeaders(token: string, subject: string, extra: readonly string[] = []): string[] {
  return [
    'From: <sender@client.example.test>',
    'To: <user@example.test>',
    `Subject: ${subject}`,
    `Message-ID: <${token}@client.example.test>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    ...extra,
  ];
}
