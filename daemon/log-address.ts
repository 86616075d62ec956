// Envelope addresses as decision lines show them (log.addresses): as sent (`plain`), with the
// local part replaced (`redact`: `<…@example.com>`), or with the local part replaced by a short
// keyed hash (`hash`: `<h:3f9a0c1d2b4e@example.com>`, HMAC-SHA256 with log.hash_key, so the same
// address always gives the same token and lines can still be correlated). The domain stays: it is
// what an admin needs to see why a relay attempt was refused. The null sender stays `<>`.
// Pure apart from node:crypto. Called by the policy handler for every decision line.

import { createHmac } from 'node:crypto';
import { displayText } from '../milter/text.js';

export type AddressLogging = 'plain' | 'redact' | 'hash';

/** `<addr>` for logs, also where Postfix's local submissions send it bare; redacted as configured. */
export function logAddress(raw: string, mode: AddressLogging = 'plain', key = ''): string {
  const t = displayText(raw.trim());
  const bare = t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
  if (mode === 'plain' || bare === '') return `<${bare}>`;
  const at = bare.lastIndexOf('@');
  const local = at < 0 ? bare : bare.slice(0, at);
  const domain = at < 0 ? '' : bare.slice(at);
  if (mode === 'redact') return `<\u2026${domain}>`;
  const token = createHmac('sha256', key).update(local.toLowerCase()).digest('hex').slice(0, 12);
  return `<h:${token}${domain}>`;
}
