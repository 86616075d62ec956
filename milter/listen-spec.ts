// Listen specifications as admins write them for either MTA, parsed into one typed form. Pure.
//   sendmail / libmilter:  unix:/path  local:/path  /path  inet:PORT@HOST  inet6:PORT@HOST  inet:PORT
//   Postfix:               unix:/path  inet:HOST:PORT  inet:[::1]:PORT
// `inet:PORT` without a host binds every address, as libmilter does.

import ipaddr from 'ipaddr.js';

export type ListenSpec =
  | { readonly kind: 'unix'; readonly path: string; readonly spec: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly spec: string };

export type ListenSpecResult =
  { readonly ok: true; readonly value: ListenSpec } | { readonly ok: false; readonly problem: string };

function port(text: string, spec: string): number | string {
  if (!/^[0-9]{1,5}$/.test(text))
    return `${JSON.stringify(spec)}: port ${JSON.stringify(text)} is not a number`;
  const n = Number(text);
  if (n < 1 || n > 65535) return `${JSON.stringify(spec)}: port ${n} is out of range 1-65535`;
  return n;
}

function host(text: string, family: 4 | 6 | 'any', spec: string): string | { problem: string } {
  let h = text;
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (family !== 6 && ipaddr.IPv4.isValidFourPartDecimal(h)) return h;
  if (family !== 4 && ipaddr.IPv6.isValid(h)) return ipaddr.IPv6.parse(h).toString();
  if (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(h)) return h;
  return {
    problem: `${JSON.stringify(spec)}: ${JSON.stringify(text)} is not a host name or ${family === 6 ? 'IPv6' : 'IP'} address`,
  };
}

function tcp(h: string | { problem: string }, p: number | string, spec: string): ListenSpecResult {
  if (typeof h !== 'string') return { ok: false, problem: h.problem };
  if (typeof p === 'string') return { ok: false, problem: p };
  return { ok: true, value: { kind: 'tcp', host: h, port: p, spec } };
}

export function parseListenSpec(spec: string): ListenSpecResult {
  const s = spec.trim();
  if (s.startsWith('/')) return { ok: true, value: { kind: 'unix', path: s, spec } };
  const colon = s.indexOf(':');
  if (colon < 0)
    return {
      ok: false,
      problem: `${JSON.stringify(spec)}: expected unix:/path, inet:PORT@HOST or inet:HOST:PORT`,
    };
  const scheme = s.slice(0, colon).toLowerCase();
  const rest = s.slice(colon + 1);
  switch (scheme) {
    case 'unix':
    case 'local':
      if (rest.length === 0)
        return { ok: false, problem: `${JSON.stringify(spec)}: the socket path is empty` };
      return { ok: true, value: { kind: 'unix', path: rest, spec } };
    case 'inet':
    case 'inet6': {
      const family = scheme === 'inet6' ? 6 : 'any';
      const at = rest.indexOf('@');
      if (at >= 0)
        return tcp(host(rest.slice(at + 1), family === 6 ? 6 : 4, spec), port(rest.slice(0, at), spec), spec);
      if (/^[0-9]+$/.test(rest)) return tcp(scheme === 'inet6' ? '::' : '0.0.0.0', port(rest, spec), spec);
      const last = rest.lastIndexOf(':');
      if (last < 0)
        return {
          ok: false,
          problem: `${JSON.stringify(spec)}: expected ${scheme}:PORT@HOST or ${scheme}:HOST:PORT`,
        };
      return tcp(host(rest.slice(0, last), family, spec), port(rest.slice(last + 1), spec), spec);
    }
    default:
      return {
        ok: false,
        problem: `${JSON.stringify(spec)}: unknown socket type ${JSON.stringify(scheme)} (use unix:, local:, inet: or inet6:)`,
      };
  }
}

/** The spec as the other MTA spells it (for README snippets and the test harness). */
export function forPostfix(s: ListenSpec): string {
  if (s.kind === 'unix') return `unix:${s.path}`;
  return s.host.includes(':') ? `inet:[${s.host}]:${s.port}` : `inet:${s.host}:${s.port}`;
}

export function forSendmail(s: ListenSpec): string {
  if (s.kind === 'unix') return `unix:${s.path}`;
  return s.host.includes(':') ? `inet6:${s.port}@${s.host}` : `inet:${s.port}@${s.host}`;
}
