// The keys rate limits count by: a client address cut to each configured prefix (IPv4 /32 and
// /24, IPv6 /64 by default, sendmail counts the exact address), an envelope sender, an
// authenticated user. Pure; the names are what the store keys and the logs show
// (`192.0.2.0/24`, `2001:db8:1:2::/64`).

import ipaddr from 'ipaddr.js';
import type { IpAddress } from './networks.js';

/** The network of `ip` with `bits` prefix bits, as `addr/bits` (the bare address for a full prefix). */
export function prefixKey(ip: IpAddress, bits: number): string {
  const v6 = ip.kind() === 'ipv6';
  const width = v6 ? 128 : 32;
  const b = Math.max(0, Math.min(width, bits));
  if (b === width) return ip.toString();
  const bytes = ip.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, b - i * 8));
    bytes[i] = (bytes[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${b}`;
}

/** One key per prefix of the client's family, in the order given, without repeats. */
export function sourceKeys(
  ip: IpAddress,
  ipv4Prefixes: readonly number[],
  ipv6Prefixes: readonly number[],
): string[] {
  const prefixes = ip.kind() === 'ipv6' ? ipv6Prefixes : ipv4Prefixes;
  return [...new Set(prefixes.map((p) => prefixKey(ip, p)))];
}

/** An envelope sender as a key: bare, lower case; null for the null sender. */
export function senderKey(sender: string | null): string | null {
  if (sender === null) return null;
  const s = sender
    .trim()
    .replace(/^<(.*)>$/, '$1')
    .toLowerCase();
  return s === '' ? null : s;
}
