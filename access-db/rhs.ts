// Right-hand sides of access entries, parsed into what sendmail does with them (landscape.md §1.3,
// §7). Pure; each distinct value of a snapshot is parsed once.
//   OK RELAY REJECT DISCARD           keywords, case-insensitive, trailing blanks ignored
//   SKIP                              only with the `skip` option, else it is error text
//   FRIEND HATER                      Spam: entries (delay_checks friend / hater)
//   ERROR:### text                    reply with that code; enhanced code <class>.0.0
//   ERROR:D.S.N:### text              the enhanced code as written
//   ### text                          deprecated form of ERROR:### text
//   QUARANTINE:reason                 accept, hold the message
//   a number                          ClientRate:, ClientConn:, GreetPause: values
//   anything else                     553 5.3.0 <addr>... <the text>
// Text inside double quotes is kept exactly; unquoted text is re-joined the way sendmail's
// rewriting engine re-joins tokens (a space only between two words), because that is what
// sendmail sends (for From: entries it also ends the text before a `>`). `%%` is a literal `%` (map values are %-expanded).

export type AccessAction =
  | { readonly kind: 'ok' }
  | { readonly kind: 'relay' }
  | { readonly kind: 'reject' }
  | { readonly kind: 'discard' }
  | { readonly kind: 'skip' }
  | { readonly kind: 'friend' }
  | { readonly kind: 'hater' }
  | { readonly kind: 'quarantine'; readonly reason: string }
  | { readonly kind: 'number'; readonly value: number }
  | {
      readonly kind: 'error';
      readonly code: number;
      readonly dsn: string;
      readonly text: string;
      /**
       * The text as sendmail's check_mail sends it for a From: entry: unquoted text ends before the
       * first `>` there (measured: `... <here>!` is sent as `... <here`); Connect: and To: keep it.
       */
      readonly senderText: string;
      /** How it was written: `ERROR:`, a bare code, or text sendmail does not understand (553 5.3.0). */
      readonly form: 'error' | 'bare' | 'unknown';
      /** The D.S.N was written (not derived from the code). */
      readonly dsnWritten: boolean;
    };

export interface RhsOptions {
  /** sendmail's `skip` access_db option. */
  readonly skip: boolean;
}

const OPERATORS = new Set(['.', ':', '%', '@', '!', '^', '/', '[', ']', '+', '(', ')', '<', '>', ',', ';']);

/** sendmail's tokenise-and-cataddr of unquoted text: a space survives only between two words. */
export function sendmailText(text: string, stopAtAngle = false): string {
  let out = '';
  let prevWord = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === ' ' || ch === '\t') {
      i++;
      continue;
    }
    if (ch === '"') {
      const end = text.indexOf('"', i + 1);
      const q = end < 0 ? text.slice(i + 1) : text.slice(i + 1, end);
      out += (prevWord ? ' ' : '') + q;
      prevWord = true;
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    if (ch === '>' && stopAtAngle) break;
    if (OPERATORS.has(ch)) {
      out += ch;
      prevWord = false;
      i++;
      continue;
    }
    let j = i;
    while (
      j < text.length &&
      !OPERATORS.has(text[j] as string) &&
      text[j] !== ' ' &&
      text[j] !== '\t' &&
      text[j] !== '"'
    )
      j++;
    out += (prevWord ? ' ' : '') + text.slice(i, j);
    prevWord = true;
    i = j;
  }
  return out.replace(/%%/g, '%');
}

/** Text of a reply: quoted as a whole -> exactly; otherwise sendmail's re-joined tokens. */
function replyText(raw: string, stopAtAngle = false): string {
  const t = raw.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"') && t.indexOf('"', 1) === t.length - 1) {
    return t.slice(1, -1).replace(/%%/g, '%');
  }
  return sendmailText(t, stopAtAngle);
}

interface Texts {
  readonly text: string;
  readonly senderText: string;
}

function texts(raw: string): Texts {
  return { text: replyText(raw), senderText: replyText(raw, true) };
}

/** `550 text` (possibly quoted as a whole) -> code and texts, or null if there is no leading code. */
function codeAndText(raw: string): ({ code: number } & Texts) | null {
  let t = raw.trim();
  const quoted = t.startsWith('"') && t.endsWith('"') && t.length >= 2;
  if (quoted) t = t.slice(1, -1);
  const m = /^([1-5][0-9][0-9])(?:[ \t]+([\s\S]*))?$/.exec(t);
  if (m === null) return null;
  const rest = m[2] ?? '';
  if (quoted) {
    const exact = rest.replace(/%%/g, '%');
    return { code: Number(m[1]), text: exact, senderText: exact };
  }
  return { code: Number(m[1]), ...texts(rest) };
}

function error(
  code: number,
  dsn: string,
  t: Texts,
  form: 'error' | 'bare' | 'unknown',
  dsnWritten: boolean,
): AccessAction {
  return { kind: 'error', code, dsn, text: t.text, senderText: t.senderText, form, dsnWritten };
}

function unknown(value: string): AccessAction {
  return error(553, '5.3.0', texts(value), 'unknown', false);
}

export function parseRhs(value: string, options: RhsOptions): AccessAction {
  const t = value.trim();
  const upper = t.toUpperCase();
  switch (upper) {
    case 'OK':
      return { kind: 'ok' };
    case 'RELAY':
      return { kind: 'relay' };
    case 'REJECT':
      return { kind: 'reject' };
    case 'DISCARD':
      return { kind: 'discard' };
    case 'FRIEND':
      return { kind: 'friend' };
    case 'HATER':
      return { kind: 'hater' };
    case 'SKIP':
      return options.skip ? { kind: 'skip' } : unknown(t);
  }
  if (/^[0-9]+$/.test(t)) return { kind: 'number', value: Number(t) };
  if (upper.startsWith('QUARANTINE:'))
    return { kind: 'quarantine', reason: replyText(t.slice('QUARANTINE:'.length)) };
  if (upper.startsWith('ERROR:')) {
    const rest = t.slice('ERROR:'.length);
    const withDsn = /^[ \t]*"?([245]\.[0-9]{1,3}\.[0-9]{1,3})"?[ \t]*:([\s\S]*)$/.exec(rest);
    if (withDsn !== null) {
      const dsn = withDsn[1] as string;
      const ct = codeAndText(withDsn[2] as string);
      return ct !== null
        ? error(ct.code, dsn, ct, 'error', true)
        : error(553, dsn, texts(withDsn[2] as string), 'error', true);
    }
    const ct = codeAndText(rest);
    return ct !== null ? error(ct.code, `${String(ct.code)[0]}.0.0`, ct, 'error', false) : unknown(rest);
  }
  const bare = codeAndText(t);
  if (bare !== null) return error(bare.code, `${String(bare.code)[0]}.0.0`, bare, 'bare', false);
  return unknown(t);
}
