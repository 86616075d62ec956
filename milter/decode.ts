// Frame -> typed command, for the milter side of the protocol (MTA -> milter commands).
// Pure: no sockets, timers or logger. Called by the session for every frame the FrameReader yields.
// Fails by *returning* a ProtocolError (never throws): every string must be NUL-terminated, no
// left-over bytes may follow the fields a command defines, address families are parsed strictly.
// Payload layouts: ../shared/docs/milter-protocol.md §2.

import ipaddr from 'ipaddr.js';
import { MILTER_OPTLEN, SMFIC } from './constants.js';
import type { ClientFamily, Command, ProtocolError } from './commands.js';
import { protocolError } from './commands.js';

const EMPTY: readonly string[] = Object.freeze([]);

/** Reads NUL-terminated strings out of a payload, left to right. */
class StringCursor {
  offset: number;
  constructor(
    private readonly buf: Buffer,
    start: number,
  ) {
    this.offset = start;
  }
  get done(): boolean {
    return this.offset >= this.buf.length;
  }
  /** The next `str\0`, or null when the payload has no NUL from here on. */
  next(): string | null {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) return null;
    const s = this.buf.toString('latin1', this.offset, end);
    this.offset = end + 1;
    return s;
  }
}

function missingNul(cmd: number, what: string): ProtocolError {
  return protocolError('missing_nul', `${what} is not NUL-terminated`, cmd);
}

function trailing(cmd: number, what: string): ProtocolError {
  return protocolError('trailing_bytes', `left-over bytes after ${what}`, cmd);
}

/** One string that must fill the whole payload. */
function single(cmd: number, payload: Buffer, what: string): string | ProtocolError {
  const c = new StringCursor(payload, 0);
  const s = c.next();
  if (s === null) return missingNul(cmd, what);
  if (!c.done) return trailing(cmd, what);
  return s;
}

/** One or more strings running to the end of the payload (MAIL/RCPT: address then ESMTP args). */
function list(cmd: number, payload: Buffer, what: string): string[] | ProtocolError {
  if (payload.length === 0 || payload[payload.length - 1] !== 0) return missingNul(cmd, what);
  return payload.toString('latin1', 0, payload.length - 1).split('\0');
}

function expectEmpty(
  cmd: number,
  payload: Buffer,
  kind: 'data' | 'eoh' | 'abort' | 'quit' | 'quitNc',
): Command | ProtocolError {
  if (payload.length !== 0) return trailing(cmd, `the empty ${kind} command`);
  switch (kind) {
    case 'data':
      return DATA;
    case 'eoh':
      return EOH;
    case 'abort':
      return ABORT;
    case 'quit':
      return QUIT;
    case 'quitNc':
      return QUIT_NC;
  }
}

const DATA: Command = Object.freeze({ kind: 'data' });
const EOH: Command = Object.freeze({ kind: 'eoh' });
const ABORT: Command = Object.freeze({ kind: 'abort' });
const QUIT: Command = Object.freeze({ kind: 'quit' });
const QUIT_NC: Command = Object.freeze({ kind: 'quitNc' });
const EOM_EMPTY: Command = Object.freeze({ kind: 'eom', chunk: null });

/**
 * Parses the address of a CONNECT packet strictly. sendmail sends `IPv6:` + an uncompressed
 * address, Postfix the bare compressed form, some tools brackets; all normalise to ipaddr.js's
 * compressed form. Returns null if it is not an address of that family.
 */
export function normaliseClientAddress(family: 'inet4' | 'inet6', raw: string): string | null {
  if (family === 'inet4') {
    return ipaddr.IPv4.isValidFourPartDecimal(raw) ? ipaddr.IPv4.parse(raw).toString() : null;
  }
  let s = raw;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.length > 5 && s.slice(0, 5).toLowerCase() === 'ipv6:') s = s.slice(5);
  if (!ipaddr.IPv6.isValid(s)) return null;
  return ipaddr.IPv6.parse(s).toString();
}

function decodeConnect(payload: Buffer): Command | ProtocolError {
  const cmd = SMFIC.CONNECT;
  const c = new StringCursor(payload, 0);
  const hostname = c.next();
  if (hostname === null) return missingNul(cmd, 'the connect host name');
  if (c.done) return protocolError('short_payload', 'connect packet has no address family', cmd);
  const familyByte = payload[c.offset] as number;
  c.offset += 1;
  let family: ClientFamily;
  switch (familyByte) {
    case 0x34: // '4'
      family = 'inet4';
      break;
    case 0x36: // '6'
      family = 'inet6';
      break;
    case 0x4c: // 'L'
      family = 'unix';
      break;
    case 0x55: // 'U'
      if (!c.done) return trailing(cmd, "the 'U' (unknown) address family");
      return { kind: 'connect', hostname, family: 'unknown', port: 0, address: '' };
    default:
      return protocolError('bad_family', `unknown address family byte 0x${familyByte.toString(16)}`, cmd);
  }
  if (payload.length - c.offset < 2) return protocolError('short_payload', 'connect packet has no port', cmd);
  const port = payload.readUInt16BE(c.offset);
  c.offset += 2;
  const raw = c.next();
  if (raw === null) return missingNul(cmd, 'the connect address');
  if (!c.done) return trailing(cmd, 'the connect address');
  if (family === 'unix') return { kind: 'connect', hostname, family, port, address: raw };
  const address = normaliseClientAddress(family, raw);
  if (address === null) {
    return protocolError(
      'bad_address',
      `not an ${family === 'inet4' ? 'IPv4' : 'IPv6'} address: ${JSON.stringify(raw)}`,
      cmd,
    );
  }
  return { kind: 'connect', hostname, family, port, address };
}

function decodeMacro(payload: Buffer): Command | ProtocolError {
  const cmd = SMFIC.MACRO;
  if (payload.length === 0) return protocolError('short_payload', 'macro packet has no stage byte', cmd);
  const stage = payload[0] as number;
  if (payload.length === 1) return { kind: 'macro', stage, pairs: EMPTY };
  if (payload[payload.length - 1] !== 0) return missingNul(cmd, 'a macro name or value');
  const pairs = payload.toString('latin1', 1, payload.length - 1).split('\0');
  if (pairs.length % 2 !== 0)
    return protocolError('odd_macro_pairs', 'macro packet has a name without a value', cmd);
  return { kind: 'macro', stage, pairs };
}

/** Decodes one frame (command byte + payload) sent by the MTA. */
export function decodeCommand(code: number, payload: Buffer): Command | ProtocolError {
  switch (code) {
    case SMFIC.OPTNEG: {
      if (payload.length < MILTER_OPTLEN) {
        return protocolError(
          'short_payload',
          `option negotiation needs ${MILTER_OPTLEN} bytes, got ${payload.length}`,
          code,
        );
      }
      // Extra bytes after the three u32 are ignored, as libmilter does.
      return {
        kind: 'optneg',
        version: payload.readUInt32BE(0),
        actions: payload.readUInt32BE(4),
        protocol: payload.readUInt32BE(8),
      };
    }
    case SMFIC.MACRO:
      return decodeMacro(payload);
    case SMFIC.CONNECT:
      return decodeConnect(payload);
    case SMFIC.HELO: {
      const helo = single(code, payload, 'the HELO name');
      return typeof helo === 'string' ? { kind: 'helo', helo } : helo;
    }
    case SMFIC.MAIL: {
      const items = list(code, payload, 'the sender');
      if (!Array.isArray(items)) return items;
      return { kind: 'mail', sender: items[0] as string, args: items.length > 1 ? items.slice(1) : EMPTY };
    }
    case SMFIC.RCPT: {
      const items = list(code, payload, 'the recipient');
      if (!Array.isArray(items)) return items;
      return { kind: 'rcpt', recipient: items[0] as string, args: items.length > 1 ? items.slice(1) : EMPTY };
    }
    case SMFIC.HEADER: {
      const c = new StringCursor(payload, 0);
      const name = c.next();
      if (name === null) return missingNul(code, 'the header name');
      const value = c.next();
      if (value === null) return missingNul(code, 'the header value');
      if (!c.done) return trailing(code, 'the header value');
      return { kind: 'header', name, value };
    }
    case SMFIC.BODY:
      return { kind: 'body', chunk: payload };
    case SMFIC.BODYEOB:
      return payload.length === 0 ? EOM_EMPTY : { kind: 'eom', chunk: payload };
    case SMFIC.UNKNOWN: {
      const line = single(code, payload, 'the unknown command line');
      return typeof line === 'string' ? { kind: 'unknown', line } : line;
    }
    case SMFIC.DATA:
      return expectEmpty(code, payload, 'data');
    case SMFIC.EOH:
      return expectEmpty(code, payload, 'eoh');
    case SMFIC.ABORT:
      return expectEmpty(code, payload, 'abort');
    case SMFIC.QUIT:
      return expectEmpty(code, payload, 'quit');
    case SMFIC.QUIT_NC:
      return expectEmpty(code, payload, 'quitNc');
    default:
      return protocolError('unknown_command', `unknown command byte ${describeByte(code)}`, code);
  }
}

function describeByte(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  return code >= 0x21 && code < 0x7f ? `'${String.fromCharCode(code)}' (${hex})` : hex;
}
