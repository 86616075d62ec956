// Domain lists in the format of sendmail's class files (local-host-names = class w,
// relay-domains = class R): `#` comment lines, one or more entries per line separated by white
// space. Pure: the daemon reads the file and hands the text here. Errors carry `file:line`.
// Entries are case-folded, one trailing dot dropped; `[192.0.2.1]` address literals are kept as
// written (lower case). As in sendmail's class R, an entry that is an IPv4 prefix (`128.32`) or an
// `IPv6:` prefix (`IPv6:2001:db8`) names client networks instead of a domain; `[UNIX:localhost]`
// (local socket clients) is accepted and has no effect here (trust_local_sockets covers it).

import type { Network } from './networks.js';
import { parseIp } from './networks.js';

export type DomainEntry =
  | { readonly kind: 'domain'; readonly name: string; readonly where: string }
  | { readonly kind: 'network'; readonly network: Network; readonly where: string };

export interface DomainListResult {
  readonly entries: DomainEntry[];
  readonly errors: string[];
}

const LABELS = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** Normalises a domain or `[literal]`; null if it is neither. */
export function normaliseDomain(text: string): string | null {
  let d = text.toLowerCase();
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d.startsWith('[') && d.endsWith(']')) {
    const ip = parseIp(d.slice(1, -1));
    if (ip === null) return null;
    return d.slice(1, 6) === 'ipv6:' ? `[ipv6:${ip.toString()}]` : `[${ip.toString()}]`;
  }
  if (d.startsWith('.')) d = d.slice(1);
  return LABELS.test(d) ? d : null;
}

function prefixNetwork(word: string): Network | null {
  if (/^[0-9]{1,3}(\.[0-9]{1,3}){0,3}$/.test(word)) {
    const octets = word.split('.').map(Number);
    if (octets.some((o) => o > 255)) return null;
    const bits = octets.length * 8;
    while (octets.length < 4) octets.push(0);
    const ip = parseIp(octets.join('.'));
    return ip === null ? null : { text: word, address: ip, bits };
  }
  if (word.slice(0, 5).toLowerCase() === 'ipv6:') {
    const groups = word.slice(5).split(':');
    if (groups.length === 0 || groups.length > 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g)))
      return null;
    const bits = groups.length * 16;
    const full = [...groups, ...new Array<string>(8 - groups.length).fill('0')].join(':');
    const ip = parseIp(full);
    return ip === null ? null : { text: word, address: ip, bits };
  }
  return null;
}

export function parseDomainList(
  text: string,
  file: string,
  options: { lineLabel?: 'line' | 'entry' } = {},
): DomainListResult {
  const entries: DomainEntry[] = [];
  const errors: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    const where = options.lineLabel === 'entry' ? `${file}[${i}]` : `${file}:${i + 1}`;
    for (const word of line.split(/[ \t]+/)) {
      if (word === '') continue;
      if (word.toLowerCase() === '[unix:localhost]') continue;
      const net = prefixNetwork(word);
      if (net !== null) {
        entries.push({ kind: 'network', network: net, where });
        continue;
      }
      const name = normaliseDomain(word);
      if (name === null) {
        errors.push(`${where}: ${JSON.stringify(word)} is not a domain name, [address] or IP prefix`);
        continue;
      }
      entries.push({ kind: 'domain', name, where });
    }
  }
  return { entries, errors };
}
