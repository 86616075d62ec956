// `milter-policy check`: what an admin should know about an access file before relying on it. Pure:
// a parsed source in, findings with `file:line` out. Beyond the parser's errors and duplicate keys:
//   - IPv6 keys in a form sendmail 8.15+ never matches (compressed, leading zeros);
//   - `ERROR:4xx` without a D.S.N (the enhanced code becomes 4.0.0), a D.S.N contradicting its code;
//   - values that are no keyword and no ERROR: form: clients get `553 5.3.0 <addr>... <value>`
//     (typos like REJCT, SKIP without the skip option);
//   - unquoted reply texts sendmail re-joins differently from how they are written;
//   - untagged (or From:) OK/RELAY entries for local domains: with delay_checks a forged
//     `MAIL FROM:<anyone@local>` then skips the client checks (cf/README's warning);
//   - network entries (octet keys and CIDR keys) that can never decide because more specific
//     entries cover all of their addresses;
//   - entries for tags milter-policy does not use, Spam: entries that are not FRIEND/HATER.

import ipaddr from 'ipaddr.js';
import { parseKey } from './keys.js';
import { parseRhs, sendmailText } from './rhs.js';
import type { ParsedSource, SourceEntry } from './source.js';

export type Severity = 'error' | 'warning' | 'note';

export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly severity: Severity;
  readonly message: string;
}

export interface LintOptions {
  readonly skip: boolean;
  readonly spam: 'none' | 'friend' | 'hater';
  readonly delayChecks: boolean;
  /** Local domains (class w), lower case. */
  readonly localDomains: ReadonlySet<string>;
}

export function formatFinding(f: Finding): string {
  return `${f.file}:${f.line}: ${f.severity}: ${f.message}`;
}

const USED_TAGS = new Set(['connect', 'from', 'to', 'spam', 'clientrate', 'clientconn']);

interface NetEntry {
  readonly entry: SourceEntry;
  readonly tag: string;
  readonly v6: boolean;
  readonly start: bigint;
  readonly bits: number;
  readonly octet: boolean;
}

function toBig(ip: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  let n = 0n;
  for (const b of ip.toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

/** An IP network an entry's key stands for (octet / group keys and CIDR keys), or null. */
function networkOf(e: SourceEntry): NetEntry | null {
  const k = e.key;
  const tag = k.tag ?? '';
  if (tag !== '' && tag !== 'connect') return null;
  if (k.cidr !== undefined) {
    const max = k.cidr.family === 4 ? 32 : 128;
    const start = (toBig(k.cidr.address) >> BigInt(max - k.cidr.bits)) << BigInt(max - k.cidr.bits);
    return { entry: e, tag, v6: k.cidr.family === 6, start, bits: k.cidr.bits, octet: false };
  }
  const r = k.rest;
  if (/^[0-9]{1,3}(\.[0-9]{1,3}){0,3}$/.test(r)) {
    const parts = r.split('.').map(Number);
    if (parts.some((p) => p > 255)) return null;
    const bits = parts.length * 8;
    while (parts.length < 4) parts.push(0);
    return { entry: e, tag, v6: false, start: toBig(ipaddr.IPv4.parse(parts.join('.'))), bits, octet: true };
  }
  if (r.startsWith('ipv6:') && !r.includes('/')) {
    const groups = r.slice(5).split(':');
    if (groups.length > 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
    const bits = groups.length * 16;
    const full = [...groups, ...new Array<string>(8 - groups.length).fill('0')].join(':');
    return { entry: e, tag, v6: true, start: toBig(ipaddr.IPv6.parse(full)), bits, octet: true };
  }
  return null;
}

/** Network entries wholly covered by more specific ones (which always win the lookup). */
function shadowedNetworks(nets: NetEntry[]): { shadowed: NetEntry; by: NetEntry[] }[] {
  const out: { shadowed: NetEntry; by: NetEntry[] }[] = [];
  const groups = new Map<string, NetEntry[]>();
  for (const n of nets) {
    const key = `${n.tag}|${n.v6 ? 6 : 4}`;
    const g = groups.get(key) ?? [];
    g.push(n);
    groups.set(key, g);
  }
  for (const list of groups.values()) {
    list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.bits - b.bits));
    const max = (list[0] as NetEntry).v6 ? 128 : 32;
    const end = (e: NetEntry): bigint => e.start + (1n << BigInt(max - e.bits));
    for (let i = 0; i < list.length; i++) {
      const c = list[i] as NetEntry;
      // Entries that win over c on an address: more specific, or as specific and an octet key
      // (the walk's key wins a tie with a CIDR key). Sorted by start, they sit right after c.
      const cEnd = end(c);
      const by: NetEntry[] = [];
      let cur = c.start;
      let gap = false;
      let lo = 0;
      let hi = i;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((list[mid] as NetEntry).start < c.start) lo = mid + 1;
        else hi = mid;
      }
      for (let j = lo; j < list.length; j++) {
        const e = list[j] as NetEntry;
        if (e.start >= cEnd) break;
        if (e === c || end(e) > cEnd || !(e.bits > c.bits || (e.bits === c.bits && e.octet && !c.octet)))
          continue;
        if (e.start > cur) {
          gap = true;
          break;
        }
        by.push(e);
        if (end(e) > cur) cur = end(e);
        if (cur >= cEnd) break;
      }
      if (!gap && by.length > 0 && cur >= cEnd) out.push({ shadowed: c, by });
    }
  }
  return out;
}

export function lintAccess(source: ParsedSource, options: LintOptions): Finding[] {
  const findings: Finding[] = [];
  const file = source.file;
  const add = (line: number, severity: Severity, message: string): void => {
    findings.push({ file, line, severity, message });
  };
  for (const e of source.errors) add(e.line, 'error', e.message);
  for (const w of source.warnings) add(w.line, 'warning', w.message);
  const nets: NetEntry[] = [];
  for (const e of source.entries) {
    const tag = e.key.tag;
    if (e.key.rewritten !== undefined) {
      add(
        e.line,
        'warning',
        `key ${JSON.stringify(e.written)} is not in sendmail's IPv6 form: sendmail 8.15+ only matches ${JSON.stringify(parseKey(e.written).key)} (milter-policy normalises it)`,
      );
    }
    if (tag !== null && !USED_TAGS.has(tag)) {
      add(e.line, 'note', `${tag}: entries are not used by milter-policy`);
      continue;
    }
    const a = parseRhs(e.value, { skip: options.skip });
    const value = e.value.trim();
    if (tag === 'spam') {
      if (a.kind !== 'friend' && a.kind !== 'hater')
        add(e.line, 'warning', `Spam: entries take FRIEND or HATER, not ${JSON.stringify(value)}`);
      else if (options.spam === 'none' || !options.delayChecks)
        add(e.line, 'note', 'Spam: entries are ignored without delay_checks and spam: friend|hater');
      else if (options.spam !== a.kind)
        add(e.line, 'note', `${value} entries are ignored with spam: ${options.spam}`);
      continue;
    }
    if (tag === 'clientrate' || tag === 'clientconn') {
      if (a.kind !== 'number')
        add(e.line, 'warning', `${tag}: entries take a number, not ${JSON.stringify(value)}`);
      continue;
    }
    switch (a.kind) {
      case 'error':
        if (a.form === 'unknown') {
          const skip = value.toUpperCase() === 'SKIP';
          add(
            e.line,
            'warning',
            skip
              ? 'SKIP needs the skip option (access_db.skip); without it clients get "553 5.3.0 <addr>... SKIP"'
              : `${JSON.stringify(value)} is no keyword and no ERROR: form: clients get "553 5.3.0 <addr>... ${a.text}"`,
          );
          break;
        }
        if (!a.dsnWritten && a.code >= 400 && a.code < 500) {
          add(
            e.line,
            'warning',
            `${a.code} without a D.S.N gets ${a.dsn}; write ERROR:4.x.x:${a.code} ... (cf/README)`,
          );
        }
        if (a.dsnWritten && a.dsn[0] !== String(a.code)[0]) {
          add(
            e.line,
            'warning',
            `enhanced code ${a.dsn} contradicts reply code ${a.code} (sendmail sends it as written, Postfix refuses it; milter-policy sends ${String(a.code)[0]}${a.dsn.slice(1)})`,
          );
        }
        if (a.form === 'bare')
          add(e.line, 'note', `"${a.code} text" is the deprecated form of ERROR:${a.code} text`);
        {
          const raw = /^(?:ERROR:)?(?:[0-9.]+:)?\s*(.*)$/is.exec(value)?.[1] ?? '';
          if (!raw.startsWith('"') && /[.:%@!^/[\]+()<>,;]/.test(raw.replace(/^[0-9]{3}\s+/, ''))) {
            add(
              e.line,
              'note',
              `unquoted text is sent as ${JSON.stringify(sendmailText(raw.replace(/^[0-9]{3}\s+/, '')))}; quote it to keep it as written`,
            );
          }
        }
        break;
      case 'friend':
      case 'hater':
      case 'number':
        add(
          e.line,
          'warning',
          `${JSON.stringify(value)} means nothing for a ${tag ?? 'untagged'} entry: clients get "553 5.3.0 <addr>... ${value}"`,
        );
        break;
      case 'ok':
      case 'relay':
        if ((tag === null || tag === 'from') && options.localDomains.has(e.key.rest) && options.delayChecks) {
          add(
            e.line,
            'warning',
            `${tag === null ? 'untagged' : 'From:'} ${value.toUpperCase()} for local domain ${e.key.rest} also matches senders: a forged MAIL FROM:<anyone@${e.key.rest}> then skips the client checks (DNSBLs, Connect: REJECTs); use To:/Connect: entries`,
          );
        }
        break;
      default:
        break;
    }
    const net = networkOf(e);
    if (net !== null) nets.push(net);
  }
  for (const { shadowed, by } of shadowedNetworks(nets)) {
    const lines = by.map((b) => b.entry.line).slice(0, 5);
    add(
      shadowed.entry.line,
      'warning',
      `${shadowed.entry.key.key} never decides: more specific entries (line${lines.length > 1 ? 's' : ''} ${lines.join(', ')}${by.length > 5 ? ', ...' : ''}) cover all of its addresses`,
    );
  }
  return findings.sort((a, b) => a.line - b.line);
}
