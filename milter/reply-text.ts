// The one function that builds SMTP reply text for SMFIR_REPLYCODE. Every reply the daemon sends to
// an SMTP client goes through buildReplyText, so the rules Postfix's milter8_valid_smtp_reply and
// sendmail enforce hold by construction (milter-protocol.md §3.4):
//   - reply code [45]dd; enhanced code class.subject.detail with class equal to the code's first digit
//     (filled in as X.0.0 when none is given, as libmilter's smfi_setmlreply does);
//   - no CR, LF or NUL inside a line's text; lines joined with CRLF in the multi-line form
//     (`550-5.7.1 first` ... `550 5.7.1 last`), at most 32 lines of at most 980 bytes of text;
//   - every `%` doubled, because sendmail treats the text as a printf format and drops a text with
//     a lone `%`, while Postfix turns `%%` back into `%`.
// Returns a typed failure instead of throwing; sanitiseReplyText turns untrusted text (DNS TXT,
// addresses) into a valid single line first.

export const MAX_REPLY_LINES = 32;
export const MAX_REPLY_LINE_TEXT = 980;

export interface SmtpReply {
  /** Three-digit SMTP code, 4xx or 5xx. */
  readonly code: number;
  /** Enhanced status code (RFC 3463), e.g. `5.7.1`; defaults to `<class>.0.0`. */
  readonly dsn?: string;
  /** Text of each line (no CR/LF); a string is one line. */
  readonly text: string | readonly string[];
}

export type ReplyTextResult =
  { readonly ok: true; readonly text: string } | { readonly ok: false; readonly problem: string };

const DSN = /^([245])\.(\d{1,3})\.(\d{1,3})$/;
const FORBIDDEN = /[\r\n\0]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]+/g;

export function buildReplyText(reply: SmtpReply): ReplyTextResult {
  const { code } = reply;
  if (!Number.isInteger(code) || code < 400 || code > 599) {
    return { ok: false, problem: `reply code ${code} is not a 4xx or 5xx code` };
  }
  const klass = String(code)[0] as string;
  const dsn = reply.dsn ?? `${klass}.0.0`;
  const m = DSN.exec(dsn);
  if (m === null)
    return { ok: false, problem: `enhanced status code ${JSON.stringify(dsn)} is not of the form N.N.N` };
  if (m[1] !== klass) {
    return {
      ok: false,
      problem: `enhanced status code ${dsn} does not match the class of reply code ${code}`,
    };
  }
  const lines = typeof reply.text === 'string' ? [reply.text] : reply.text;
  if (lines.length === 0) return { ok: false, problem: 'reply has no text' };
  if (lines.length > MAX_REPLY_LINES) {
    return { ok: false, problem: `reply has ${lines.length} lines, more than ${MAX_REPLY_LINES}` };
  }
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (FORBIDDEN.test(line)) return { ok: false, problem: `reply line ${i + 1} contains CR, LF or NUL` };
    const escaped = line.includes('%') ? line.replace(/%/g, '%%') : line;
    if (escaped.length > MAX_REPLY_LINE_TEXT) {
      return { ok: false, problem: `reply line ${i + 1} is longer than ${MAX_REPLY_LINE_TEXT} bytes` };
    }
    const sep = i === lines.length - 1 ? ' ' : '-';
    out += `${i === 0 ? '' : '\r\n'}${code}${sep}${dsn}${escaped.length > 0 ? ' ' : ''}${escaped}`;
  }
  return { ok: true, text: out };
}

/** Same as buildReplyText, for replies known to be valid (built from validated configuration). */
export function replyTextOrThrow(reply: SmtpReply): string {
  const r = buildReplyText(reply);
  if (!r.ok) throw new Error(`invalid SMTP reply: ${r.problem}`);
  return r.text;
}

/**
 * Makes untrusted text safe for one reply line: control characters (CR, LF, NUL, TAB, ...) become
 * spaces, runs of spaces collapse, and the result is cut to `max` bytes (the `%` doubling happens
 * later in buildReplyText, and is accounted for here).
 */
export function sanitiseReplyText(text: string, max = 400): string {
  let s = text.replace(CONTROL, ' ').replace(/ {2,}/g, ' ').trim();
  let budget = Math.min(max, MAX_REPLY_LINE_TEXT);
  let out = '';
  for (const ch of s) {
    const cost = ch === '%' ? 2 : ch.length;
    if (cost > budget) break;
    budget -= cost;
    out += ch;
  }
  s = out;
  return s;
}

/** Parses `550 5.7.1 text` / `550 text` (configuration values) into an SmtpReply. */
export function parseReplySpec(
  spec: string,
): { ok: true; reply: SmtpReply } | { ok: false; problem: string } {
  const m = /^([0-9]{3})(?:[ -]([0-9]\.[0-9]{1,3}\.[0-9]{1,3}))?(?: (.*))?$/s.exec(spec.trim());
  if (m === null)
    return { ok: false, problem: `${JSON.stringify(spec)} is not of the form "550 5.7.1 text"` };
  const reply: SmtpReply =
    m[2] === undefined
      ? { code: Number(m[1]), text: m[3] ?? '' }
      : { code: Number(m[1]), dsn: m[2], text: m[3] ?? '' };
  const built = buildReplyText(reply);
  if (!built.ok) return { ok: false, problem: built.problem };
  return { ok: true, reply };
}
