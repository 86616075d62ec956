// The pure parts of DNS blocklist lookups (architecture.md §11): query names, and what an answer
// means. Used by ./dnsbl.ts and by the tests; no DNS here.
//   - IPv4 192.0.2.7 -> 7.2.0.192.zone; IPv6 -> its 32 nibbles reversed (RFC 5782);
//   - a listing answer must be in 127.0.0.0/8; answers in 127.255.255.0/24 are the blocklist
//     operators' error codes (refused, rate-limited: e.g. Spamhaus 127.255.255.254), and anything
//     outside 127/8 is a broken or hijacked resolver: both are errors, never listings;
//   - which listing answers count is configurable: exact addresses, ranges, bit masks.

import ipaddr from 'ipaddr.js';

export function reversedIp(ip: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (ip.kind() === 'ipv4') return [...(ip as ipaddr.IPv4).octets].reverse().join('.');
  const hex = (ip as ipaddr.IPv6).parts.map((p) => p.toString(16).padStart(4, '0')).join('');
  return [...hex].reverse().join('.');
}

export function queryName(ip: ipaddr.IPv4 | ipaddr.IPv6, zone: string): string {
  return `${reversedIp(ip)}.${zone}`;
}

export type AnswerClass = { kind: 'listed'; address: string } | { kind: 'error'; reason: string };

/** What one A record of a blocklist answer means. */
export function classifyAnswer(address: string): AnswerClass {
  if (!ipaddr.IPv4.isValidFourPartDecimal(address))
    return { kind: 'error', reason: `not an IPv4 answer: ${address}` };
  const o = ipaddr.IPv4.parse(address).octets;
  if (o[0] !== 127)
    return {
      kind: 'error',
      reason: `answer ${address} is outside 127.0.0.0/8 (broken or hijacked resolver)`,
    };
  if (o[1] === 255 && o[2] === 255)
    return {
      kind: 'error',
      reason: `answer ${address} is a blocklist error code (query refused or rate-limited)`,
    };
  return { kind: 'listed', address };
}

function toNumber(a: string): number {
  const o = ipaddr.IPv4.parse(a).octets;
  return (
    (((o[0] as number) << 24) | ((o[1] as number) << 16) | ((o[2] as number) << 8) | (o[3] as number)) >>> 0
  );
}

export type AnswerMatcher = (address: string) => boolean;

/**
 * `[]` = every listing answer counts; otherwise any of `127.0.0.2` (exact), `127.0.0.4-127.0.0.11`
 * (range), `&0x04` / `&4` (bit mask on the last octet, as postscreen's `zone=127.0.0.[..]`
 * selectors are used for bitmask zones). Specs are validated by the configuration schema.
 */
export function answerMatcher(specs: readonly string[]): AnswerMatcher {
  if (specs.length === 0) return () => true;
  const tests = specs.map((spec): AnswerMatcher => {
    if (spec.startsWith('&')) {
      const mask = Number(spec.slice(1));
      return (a) => (toNumber(a) & 0xff & mask) !== 0;
    }
    const dash = spec.indexOf('-');
    if (dash > 0) {
      const lo = toNumber(spec.slice(0, dash));
      const hi = toNumber(spec.slice(dash + 1));
      return (a) => {
        const n = toNumber(a);
        return n >= lo && n <= hi;
      };
    }
    const exact = toNumber(spec);
    return (a) => toNumber(a) === exact;
  });
  return (a) => tests.some((t) => t(a));
}

/** A domain for a RHSBL query: lower case, no trailing dot; null if it cannot be one. */
export function rhsblDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (d.length === 0 || d.length > 253 || d.startsWith('[') || !/^[a-z0-9_.-]+$/.test(d) || d.includes('..'))
    return null;
  return d;
}
