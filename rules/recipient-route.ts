// Where a recipient address really goes: every host it routes through, in order. Pure; used by the
// relay guard and the postmaster exemption. The classic third-party relay tricks all hide a remote
// host inside an address whose visible domain is local; each is unfolded here the way an MTA that
// honours it would route the mail (sendmail's %-hack and UUCP handling, RFC 821 source routes,
// Postfix's resolve_dequoted_address):
//   <@a,@b:user@c>          source route: a, b, then c
//   <user%host@local>       local, then host (right-most % first: user%c%b@d -> d, b, c)
//   <host!user@local>       local, then host (a!b!user -> a, then b)
//   <"user@host"@local>     quoted local part, taken unquoted: local, then host
// Hosts are case-folded, one trailing dot dropped, address literals normalised. A recipient whose
// every host is local or relayable is safe to accept; one remote host anywhere is relaying.

import { normaliseDomain } from './domain-list.js';

export interface RecipientRoute {
  /** The address without angle brackets, as sent. */
  readonly address: string;
  /** The innermost local part, unquoted (`postmaster`, `user`). */
  readonly localPart: string;
  /** Every host the address routes through, in order; empty for an unqualified local user. */
  readonly hosts: readonly string[];
  /** The last host: where the mail finally goes (null = unqualified, i.e. local). */
  readonly destination: string | null;
}

/** Strips one pair of angle brackets and surrounding blanks. */
export function bareAddress(raw: string): string {
  const s = raw.trim();
  return s.length >= 2 && s.startsWith('<') && s.endsWith('>') ? s.slice(1, -1).trim() : s;
}

/** Index of the last `@` outside quotes and [brackets], or -1. */
function lastUnquotedAt(s: string): number {
  let inQuote = false;
  let inBracket = false;
  let last = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c /* \ */) {
      i++;
      continue;
    }
    if (inQuote) {
      if (c === 0x22) inQuote = false;
      continue;
    }
    if (c === 0x22 /* " */) inQuote = true;
    else if (c === 0x5b /* [ */) inBracket = true;
    else if (c === 0x5d /* ] */) inBracket = false;
    else if (c === 0x40 /* @ */ && !inBracket) last = i;
  }
  return last;
}

/** Removes quoting: `"a@b"` -> `a@b`, `\x` -> `x`. */
function unquote(s: string): string {
  if (!s.includes('"') && !s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '\\' && i + 1 < s.length) {
      out += s[++i] as string;
    } else if (ch !== '"') {
      out += ch;
    }
  }
  return out;
}

function host(text: string): string {
  const t = text.trim();
  return normaliseDomain(t) ?? t.toLowerCase();
}

export function recipientRoute(raw: string): RecipientRoute {
  const address = bareAddress(raw);
  const hosts: string[] = [];
  let rest = address;

  // RFC 821 source route: @a,@b:mailbox
  if (rest.startsWith('@')) {
    const colon = rest.indexOf(':');
    const route = colon < 0 ? rest : rest.slice(0, colon);
    for (const hop of route.split(',')) hosts.push(host(hop.trim().replace(/^@/, '')));
    rest = colon < 0 ? '' : rest.slice(colon + 1);
  }

  const at = lastUnquotedAt(rest);
  let local = unquote(at < 0 ? rest : rest.slice(0, at));
  if (at >= 0) hosts.push(host(rest.slice(at + 1)));

  // Hosts hidden in the local part, outermost first.
  for (;;) {
    const inner = local.lastIndexOf('@');
    if (inner >= 0) {
      hosts.push(host(local.slice(inner + 1)));
      local = local.slice(0, inner);
      continue;
    }
    const pct = local.lastIndexOf('%');
    if (pct >= 0) {
      hosts.push(host(local.slice(pct + 1)));
      local = local.slice(0, pct);
      continue;
    }
    const bang = local.indexOf('!');
    if (bang >= 0) {
      hosts.push(host(local.slice(0, bang)));
      local = local.slice(bang + 1);
      continue;
    }
    break;
  }
  return {
    address,
    localPart: local,
    hosts,
    destination: hosts.length > 0 ? (hosts[hosts.length - 1] as string) : null,
  };
}
