// Access map keys as sendmail matches them. Pure; used when an access file is loaded (every key is
// normalised once) and when lookups build their candidate keys (so both sides agree).
//   - keys are case-folded (makemap does it unless -f, and sendmail folds what it looks up);
//   - a key is `Tag:rest` for the tags sendmail knows, otherwise untagged (`IPv6:...` is not a tag);
//   - IPv6 keys are rewritten to the one form sendmail 8.15+ looks up: lower-case hex, no leading
//     zeros in a group, no `::` (`IPv6:2001:db8:0:0:0:0:0:1`); a group prefix (`IPv6:2001:db8`)
//     keeps its groups, each without leading zeros. A key written otherwise never matches in
//     sendmail; here it is normalised and the lint says so;
//   - extension: `a.b.c.d/n` and `IPv6:addr/n` are CIDR networks (sendmail matches networks only
//     on octet or group boundaries).

import ipaddr from 'ipaddr.js';

/** Tags (key prefixes) of sendmail's access map; lower case. */
export const KNOWN_TAGS: ReadonlySet<string> = new Set([
  'connect',
  'from',
  'to',
  'spam',
  'clientrate',
  'clientconn',
  'greetpause',
  'compat',
  'qgrp',
  'certissuer',
  'certsubject',
  'tls_clt',
  'tls_srv',
  'tls_rcpt',
  'try_tls',
  'srv_features',
  'clt_features',
  'mailer',
  'authinfo',
  'ehlo',
]);

export interface ParsedKey {
  /** Lower-case tag without the colon, or null for an untagged key. */
  readonly tag: string | null;
  /** The key after the tag, normalised. */
  readonly rest: string;
  /** The full normalised key (`tag:rest` or `rest`) as stored and looked up. */
  readonly key: string;
  /** Set when the key is a CIDR network (extension). */
  readonly cidr?: {
    readonly family: 4 | 6;
    readonly address: ipaddr.IPv4 | ipaddr.IPv6;
    readonly bits: number;
  };
  /** Set when normalisation changed the written form in a way that matters to sendmail. */
  readonly rewritten?: string;
}

/** sendmail's IPv6 text form: 8 groups, lower-case, no leading zeros, no `::`. */
export function sendmailIpv6(addr: ipaddr.IPv6): string {
  return addr.parts.map((p) => p.toString(16)).join(':');
}

/** `2001:0db8::1` / `2001:db8` (group prefix) -> sendmail's form; null if not IPv6. */
export function normaliseIpv6Text(text: string): string | null {
  const t = text.toLowerCase();
  if (t.includes('::') || t.split(':').length === 8 || t.includes('.')) {
    if (!ipaddr.IPv6.isValid(t)) return null;
    return sendmailIpv6(ipaddr.IPv6.parse(t));
  }
  const groups = t.split(':');
  if (groups.length === 0 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

function normaliseRest(rest: string): { rest: string; cidr?: ParsedKey['cidr']; changed: boolean } {
  // CIDR extension
  const slash = rest.lastIndexOf('/');
  if (slash > 0 && /^[0-9]{1,3}$/.test(rest.slice(slash + 1))) {
    const bits = Number(rest.slice(slash + 1));
    const addrText = rest.slice(0, slash);
    if (ipaddr.IPv4.isValidFourPartDecimal(addrText) && bits <= 32) {
      const address = ipaddr.IPv4.parse(addrText);
      return { rest: `${addrText}/${bits}`, cidr: { family: 4, address, bits }, changed: false };
    }
    if (addrText.startsWith('ipv6:') && ipaddr.IPv6.isValid(addrText.slice(5)) && bits <= 128) {
      const address = ipaddr.IPv6.parse(addrText.slice(5));
      return {
        rest: `ipv6:${sendmailIpv6(address)}/${bits}`,
        cidr: { family: 6, address, bits },
        changed: false,
      };
    }
  }
  if (rest.startsWith('ipv6:')) {
    const n = normaliseIpv6Text(rest.slice(5));
    if (n !== null) return { rest: `ipv6:${n}`, changed: n !== rest.slice(5) };
  }
  if (rest.startsWith('[ipv6:') && rest.endsWith(']')) {
    const n = normaliseIpv6Text(rest.slice(6, -1));
    if (n !== null) return { rest: `[ipv6:${n}]`, changed: n !== rest.slice(6, -1) };
  }
  return { rest, changed: false };
}

/** Normalises a key as written in an access file. */
export function parseKey(written: string): ParsedKey {
  const lower = written.toLowerCase();
  const colon = lower.indexOf(':');
  const maybeTag = colon > 0 ? lower.slice(0, colon) : '';
  const tag = KNOWN_TAGS.has(maybeTag) ? maybeTag : null;
  const raw = tag === null ? lower : lower.slice(colon + 1);
  const n = normaliseRest(raw);
  const key = tag === null ? n.rest : `${tag}:${n.rest}`;
  return {
    tag,
    rest: n.rest,
    key,
    ...(n.cidr === undefined ? {} : { cidr: n.cidr }),
    ...(n.changed ? { rewritten: key } : {}),
  };
}

/** The key a lookup asks for: `tag:rest` (rest already normalised by the caller). */
export function tagged(tag: string | null, rest: string): string {
  return tag === null ? rest : `${tag}:${rest}`;
}
