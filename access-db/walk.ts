// The lookup walks of sendmail's access_db (proto.m4 rulesets D, A, F, U and SearchList;
// landscape.md §1.4), each returning the entry found and every key it tried (for `query`). Pure.
//   host (D)   `Tag:mail.example.net`, `mail.example.net`, [lookupdotdomain: `Tag:.example.net`,
//              `.example.net`], `Tag:example.net`, ... down to the top label; a bracketed
//              address name `[192.0.2.7]` walks `[192.0.2.7]`, `[192.0.2]`, `[192.0]`, `[192]`;
//   ip (A)     `Tag:192.0.2.77`, `192.0.2.77`, `Tag:192.0.2`, ... `192`; IPv6 drops one group per
//              step down to `Tag:IPv6:2001` and the bare `Tag:IPv6`; CIDR keys (extension) compete
//              by prefix length: the most specific entry wins, an octet key on a tie;
//   address    F (full: `user+ext@dom`, `user+*@dom`, `user@dom`), U (`user+ext@`, `user+*@`,
//              `user@`), D (the domain walk), in the order each caller asks for.
// Every candidate is tried tagged, then untagged where sendmail falls back (Connect, From, To);
// Spam, ClientRate, ClientConn are tag-only. A SKIP entry (with the skip option) ends the walk of
// its kind with "not found".

import type ipaddr from 'ipaddr.js';
import { sendmailIpv6 } from './keys.js';
import type { AccessAction } from './rhs.js';
import type { AccessEntry, AccessSnapshot } from './snapshot.js';

export interface WalkStep {
  readonly key: string;
  readonly entry: AccessEntry | null;
  readonly note?: string;
}

export interface WalkResult {
  readonly entry: AccessEntry | null;
  readonly action: AccessAction | null;
}

export interface WalkOptions {
  readonly lookupdotdomain: boolean;
  /** Try untagged keys after each tagged one (sendmail does for Connect, From and To). */
  readonly untagged: boolean;
  /** Collects every key tried, when given (the explain tool); lookups cost nothing extra without. */
  readonly steps?: WalkStep[];
}

export const NOT_FOUND: WalkResult = Object.freeze({ entry: null, action: null });

type Probe = { kind: 'hit'; result: WalkResult } | { kind: 'skip' } | { kind: 'miss' };

function probe(snap: AccessSnapshot, tag: string, rest: string, o: WalkOptions): Probe {
  const keys = o.untagged ? [`${tag}:${rest}`, rest] : [`${tag}:${rest}`];
  for (const key of keys) {
    const entry = snap.get(key);
    o.steps?.push({ key, entry });
    if (entry === null) continue;
    const action = snap.action(entry);
    if (action.kind === 'skip') return { kind: 'skip' };
    return { kind: 'hit', result: { entry, action } };
  }
  return { kind: 'miss' };
}

/** The D walk of a host or domain name (already lower case, no trailing dot). */
export function hostWalk(snap: AccessSnapshot, tag: string, host: string, o: WalkOptions): WalkResult {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h.length === 0) return NOT_FOUND;
  if (h.startsWith('[') && h.endsWith(']')) {
    const inner = h.slice(1, -1);
    const v6 = inner.startsWith('ipv6:');
    const sep = v6 ? ':' : '.';
    const parts = (v6 ? inner.slice(5) : inner).split(sep);
    for (let n = parts.length; n >= 1; n--) {
      const p = probe(snap, tag, `[${v6 ? 'ipv6:' : ''}${parts.slice(0, n).join(sep)}]`, o);
      if (p.kind === 'hit') return p.result;
      if (p.kind === 'skip') return NOT_FOUND;
    }
    return NOT_FOUND;
  }
  let level = h;
  for (;;) {
    const p = probe(snap, tag, level, o);
    if (p.kind === 'hit') return p.result;
    if (p.kind === 'skip') return NOT_FOUND;
    const dot = level.indexOf('.');
    if (dot < 0) return NOT_FOUND;
    const parent = level.slice(dot + 1);
    if (o.lookupdotdomain) {
      const d = probe(snap, tag, `.${parent}`, o);
      if (d.kind === 'hit') return d.result;
      if (d.kind === 'skip') return NOT_FOUND;
    }
    level = parent;
  }
}

/** The A walk of a client address, with CIDR entries competing by prefix length. */
export function ipWalk(
  snap: AccessSnapshot,
  tag: string,
  ip: ipaddr.IPv4 | ipaddr.IPv6,
  o: WalkOptions,
): WalkResult {
  let walked: WalkResult = NOT_FOUND;
  let walkedBits = -1;
  const v6 = ip.kind() === 'ipv6';
  const parts = v6 ? sendmailIpv6(ip as ipaddr.IPv6).split(':') : ip.toString().split('.');
  const step = v6 ? 16 : 8;
  for (let n = parts.length; n >= (v6 ? 0 : 1); n--) {
    const rest = v6
      ? n === 0
        ? 'ipv6'
        : `ipv6:${parts.slice(0, n).join(':')}`
      : parts.slice(0, n).join('.');
    const p = probe(snap, tag, rest, o);
    if (p.kind === 'skip') break;
    if (p.kind === 'hit') {
      walked = p.result;
      walkedBits = n * step;
      break;
    }
  }
  if (!snap.hasCidrs) return walked;
  const best = snap.cidr(tag, ip, o.untagged);
  if (best !== null) o.steps?.push({ key: best.key, entry: best, note: `CIDR /${best.bits ?? 0}` });
  if (best !== null && (best.bits ?? 0) > walkedBits) {
    const action = snap.action(best);
    return action.kind === 'skip' ? NOT_FOUND : { entry: best, action };
  }
  return walked;
}

export type AddressPart = 'F' | 'U' | 'D';

/**
 * F, U and D lookups of an address (`user@domain` or unqualified `user`, no angle brackets), in
 * the order given. `+detail` local parts are tried as written, as `user+*`, then as `user`.
 */
export function addressWalk(
  snap: AccessSnapshot,
  tag: string,
  address: string,
  order: readonly AddressPart[],
  o: WalkOptions,
): WalkResult {
  const a = address.toLowerCase();
  const at = a.lastIndexOf('@');
  const user = at < 0 ? a : a.slice(0, at);
  const domain = at < 0 ? null : a.slice(at + 1).replace(/\.$/, '');
  const plus = user.indexOf('+');
  const users = plus > 0 ? [user, `${user.slice(0, plus)}+*`, user.slice(0, plus)] : [user];
  for (const part of order) {
    if (part === 'F') {
      if (domain === null) continue;
      for (const u of users) {
        const p = probe(snap, tag, `${u}@${domain}`, o);
        if (p.kind === 'hit') return p.result;
        if (p.kind === 'skip') break;
      }
    } else if (part === 'U') {
      for (const u of users) {
        const p = probe(snap, tag, `${u}@`, o);
        if (p.kind === 'hit') return p.result;
        if (p.kind === 'skip') break;
      }
    } else if (domain !== null && domain.length > 0) {
      const r = hostWalk(snap, tag, domain, o);
      if (r.entry !== null) return r;
    }
  }
  return NOT_FOUND;
}
