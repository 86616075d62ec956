// Reply templates of the configuration (`550 5.7.1 Rejected: %i listed at %z`) filled in for one
// decision. Placeholders: %i client address, %z zone, %t TXT record, %d domain, %n file name,
// %e extension, %r rule name; %% is a literal %. Values come from outside (DNS TXT records,
// attachment names): they are sanitised into one safe line first (no CR/LF or control characters,
// length capped). Templates were validated when the configuration loaded.

import type { SmtpReply } from '../milter/reply-text.js';
import { parseReplySpec, sanitiseReplyText } from '../milter/reply-text.js';

export type TemplateValues = Partial<Record<'i' | 'z' | 't' | 'd' | 'n' | 'e' | 'r', string>>;

/** Fallback if an expanded template somehow fails to parse (a value cannot break the code). */
const FALLBACK: SmtpReply = { code: 550, dsn: '5.7.1', text: 'Rejected' };

export function expandReply(template: string, values: TemplateValues): SmtpReply {
  const text = template.replace(/%([%izdtner])/g, (_m, c: string) =>
    c === '%' ? '%' : sanitiseReplyText(values[c as keyof TemplateValues] ?? '', 200),
  );
  const r = parseReplySpec(text);
  if (r.ok) return r.reply;
  const code = /^[45][0-9][0-9]/.exec(template)?.[0];
  return code === undefined ? FALLBACK : { code: Number(code), text: 'Rejected' };
}
