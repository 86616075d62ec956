// A verdict as the milter answer and as the SMTP client will see it. Used by the policy adapter
// for every decision and by `milter-policy query`, so both say the same.
//   - sendmail prefixes `<addr>... ` to 250/450/550/553 replies at MAIL and RCPT itself; Postfix
//     passes milter text unchanged: the prefix is added to the milter reply only for Postfix,
//     so clients see the same text through both (landscape.md §7);
//   - a verdict can ask for no prefix (sendmail reports Connect: refusals at MAIL without one;
//     under sendmail the MTA still adds it, a documented difference);
//   - the text the client sees has `%%` as `%`;
//   - sendmail ignores a milter's text at connect: the client sees sendmail's own (tempfail:
//     `451 4.3.2 Please try again later` at MAIL; reject: `550 5.0.0 Command rejected`).

import type { Decision, MtaFlavour } from '../milter/handler.js';
import type { SmtpReply } from '../milter/reply-text.js';
import { buildReplyText } from '../milter/reply-text.js';
import type { PolicyStage, Verdict } from '../rules/check.js';
import { bareAddress } from '../rules/recipient-route.js';

const PREFIXED_CODES = new Set([250, 450, 550, 553]);

/** `<addr>... text` as sendmail words its MAIL/RCPT replies. */
function withAddressPrefix(reply: SmtpReply, address: string): SmtpReply {
  const lines = typeof reply.text === 'string' ? [reply.text] : [...reply.text];
  lines[0] = `<${address}>... ${lines[0] ?? ''}`;
  return { ...reply, text: lines };
}

export interface ClientReply {
  readonly decision: Decision;
  /** The reply text the SMTP client sees, or null for the MTA's own/default text. */
  readonly seen: string | null;
  /** Set when the verdict's text could not be sent (the MTA's default text is used). */
  readonly problem?: string;
}

const CONTINUE: Decision = Object.freeze({ kind: 'continue' });
/** What sendmail 8.17 answers after a milter's connect-stage verdict (real-mta-testbed.md, e2e). */
const SENDMAIL_CONNECT_TEMPFAIL = '451 4.3.2 Please try again later';
const SENDMAIL_CONNECT_REJECT = '550 5.0.0 Command rejected';

export function clientReply(
  stage: PolicyStage,
  verdict: Verdict | null,
  subject: string | null,
  mta: MtaFlavour,
): ClientReply {
  if (verdict === null || verdict.action === 'ok') return { decision: CONTINUE, seen: null };
  if (verdict.action === 'discard') return { decision: { kind: 'discard' }, seen: null };
  const mtaAddsPrefix = mta !== 'postfix';
  const wantPrefix =
    subject !== null && (stage === 'mail' || stage === 'rcpt') && PREFIXED_CODES.has(verdict.reply.code);
  const prefixed = wantPrefix ? withAddressPrefix(verdict.reply, bareAddress(subject)) : verdict.reply;
  const sent = buildReplyText(mtaAddsPrefix || verdict.noAddressPrefix === true ? verdict.reply : prefixed);
  if (!sent.ok) return { decision: { kind: verdict.action }, seen: null, problem: sent.problem };
  // What the client sees: the MTA's prefix under sendmail, ours (if wanted) under Postfix.
  const seenText = mtaAddsPrefix ? buildReplyText(prefixed) : sent;
  const seen =
    stage === 'connect' && mta === 'sendmail'
      ? verdict.reply.code === 421
        ? null // sendmail shuts the session down with its own words
        : verdict.action === 'tempfail'
          ? SENDMAIL_CONNECT_TEMPFAIL
          : SENDMAIL_CONNECT_REJECT
      : (seenText.ok ? seenText.text : sent.text).replace(/%%/g, '%');
  return { decision: { kind: verdict.action, text: sent.text }, seen };
}
