// IP networks for trust decisions (trusted_networks, relay-domains IP prefixes): parsing CIDR and
// bare addresses, and matching a client address. Pure; IPv4-mapped IPv6 clients (::ffff:a.b.c.d)
// match IPv4 networks, as the MTAs report such peers as IPv4.

import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

export interface Network {
  /** As written by the admin, for log lines. */
  readonly text: string;
  readonly address: IpAddress;
  readonly bits: number;
}

export type NetworkResult =
  { readonly ok: true; readonly network: Network } | { readonly ok: false; readonly problem: string };

export function parseNetwork(text: string): NetworkResult {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrPart = slash < 0 ? t : t.slice(0, slash);
  const ip = parseIp(addrPart);
  if (ip === null)
    return { ok: false, problem: `${JSON.stringify(text)} is not an IP address or CIDR network` };
  const max = ip.kind() === 'ipv4' ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = t.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(b) || Number(b) > max) {
      return { ok: false, problem: `${JSON.stringify(text)}: prefix length must be 0-${max}` };
    }
    bits = Number(b);
  }
  return { ok: true, network: { text: t, address: ip, bits } };
}

/** Strict address parse (dotted quad IPv4, any IPv6 form, `IPv6:` tag and brackets accepted). */
export function parseIp(text: string): IpAddress | null {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.slice(0, 5).toLowerCase() === 'ipv6:') s = s.slice(5);
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s);
  if (ipaddr.IPv6.isValid(s)) {
    const v6 = ipaddr.IPv6.parse(s);
    return v6;
  }
  return null;
}

/** The form a client address is matched in: IPv4-mapped IPv6 becomes IPv4. */
export function clientIp(text: string): IpAddress | null {
  const ip = parseIp(text);
  if (ip !== null && ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (ip as ipaddr.IPv6).toIPv4Address();
  }
  return ip;
}

export function inNetwork(ip: IpAddress, net: Network): boolean {
  return ip.kind() === net.address.kind() && ip.match(net.address, net.bits);
}

/** The first network containing `ip`, or null. */
export function findNetwork(ip: IpAddress, nets: readonly Network[]): Network | null {
  for (const n of nets) if (inNetwork(ip, n)) return n;
  return null;
}
