// The MTA side of the codec: typed command -> bytes and response frame -> typed response. Pure.
// The daemon never uses it; the in-process fake MTA (test/support), the load generator (bench/) and
// the decoder's round-trip tests do, so both directions of the wire format live in milter/.

import { SMFIC, SMFIR } from './constants.js';
import type { Command, ProtocolError, Response } from './commands.js';
import { protocolError } from './commands.js';

function frame(code: number, payload: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(5 + payload.length);
  buf.writeUInt32BE(payload.length + 1, 0);
  buf[4] = code;
  payload.copy(buf, 5);
  return buf;
}

function cstrings(items: readonly string[]): Buffer {
  return Buffer.from(items.map((s) => `${s}\0`).join(''), 'latin1');
}

/** Encodes an MTA command as Postfix/sendmail would put it on the wire. */
export function encodeCommand(c: Command): Buffer {
  switch (c.kind) {
    case 'optneg': {
      const p = Buffer.allocUnsafe(12);
      p.writeUInt32BE(c.version >>> 0, 0);
      p.writeUInt32BE(c.actions >>> 0, 4);
      p.writeUInt32BE(c.protocol >>> 0, 8);
      return frame(SMFIC.OPTNEG, p);
    }
    case 'macro':
      return frame(SMFIC.MACRO, Buffer.concat([Buffer.from([c.stage]), cstrings(c.pairs)]));
    case 'connect': {
      const host = cstrings([c.hostname]);
      if (c.family === 'unknown') return frame(SMFIC.CONNECT, Buffer.concat([host, Buffer.from('U')]));
      const fam = c.family === 'inet4' ? '4' : c.family === 'inet6' ? '6' : 'L';
      const port = Buffer.allocUnsafe(2);
      port.writeUInt16BE(c.port, 0);
      return frame(SMFIC.CONNECT, Buffer.concat([host, Buffer.from(fam), port, cstrings([c.address])]));
    }
    case 'helo':
      return frame(SMFIC.HELO, cstrings([c.helo]));
    case 'mail':
      return frame(SMFIC.MAIL, cstrings([c.sender, ...c.args]));
    case 'rcpt':
      return frame(SMFIC.RCPT, cstrings([c.recipient, ...c.args]));
    case 'data':
      return frame(SMFIC.DATA, Buffer.alloc(0));
    case 'header':
      return frame(SMFIC.HEADER, cstrings([c.name, c.value]));
    case 'eoh':
      return frame(SMFIC.EOH, Buffer.alloc(0));
    case 'body':
      return frame(SMFIC.BODY, c.chunk);
    case 'eom':
      return frame(SMFIC.BODYEOB, c.chunk ?? Buffer.alloc(0));
    case 'unknown':
      return frame(SMFIC.UNKNOWN, cstrings([c.line]));
    case 'abort':
      return frame(SMFIC.ABORT, Buffer.alloc(0));
    case 'quit':
      return frame(SMFIC.QUIT, Buffer.alloc(0));
    case 'quitNc':
      return frame(SMFIC.QUIT_NC, Buffer.alloc(0));
  }
}

function strs(payload: Buffer, offset = 0): string[] | null {
  if (payload.length <= offset || payload[payload.length - 1] !== 0) return null;
  return payload.toString('latin1', offset, payload.length - 1).split('\0');
}

function bad(code: number, why: string): ProtocolError {
  return protocolError('bad_response', why, code);
}

/** Decodes a milter response frame (what an MTA reads). */
export function decodeResponse(code: number, payload: Buffer): Response | ProtocolError {
  const noPayload = (r: Response): Response | ProtocolError =>
    payload.length === 0 ? r : bad(code, 'reply carries unexpected payload bytes');
  switch (code) {
    case SMFIR.CONTINUE:
      return noPayload({ kind: 'continue' });
    case SMFIR.ACCEPT:
      return noPayload({ kind: 'accept' });
    case SMFIR.REJECT:
      return noPayload({ kind: 'reject' });
    case SMFIR.TEMPFAIL:
      return noPayload({ kind: 'tempfail' });
    case SMFIR.DISCARD:
      return noPayload({ kind: 'discard' });
    case SMFIR.SKIP:
      return noPayload({ kind: 'skip' });
    case SMFIR.PROGRESS:
      return noPayload({ kind: 'progress' });
    case SMFIR.REPLYCODE: {
      const s = strs(payload);
      return s?.length === 1
        ? { kind: 'replycode', text: s[0] as string }
        : bad(code, 'malformed reply code text');
    }
    case SMFIR.ADDHEADER: {
      const s = strs(payload);
      return s?.length === 2
        ? { kind: 'addHeader', name: s[0] as string, value: s[1] as string }
        : bad(code, 'malformed header');
    }
    case SMFIR.INSHEADER:
    case SMFIR.CHGHEADER: {
      if (payload.length < 4) return bad(code, 'short header index');
      const s = strs(payload, 4);
      if (s?.length !== 2) return bad(code, 'malformed header');
      const index = payload.readUInt32BE(0);
      const [name, value] = s as [string, string];
      return code === SMFIR.INSHEADER
        ? { kind: 'insertHeader', index, name, value }
        : { kind: 'changeHeader', index, name, value };
    }
    case SMFIR.ADDRCPT: {
      const s = strs(payload);
      return s?.length === 1
        ? { kind: 'addRecipient', recipient: s[0] as string }
        : bad(code, 'malformed recipient');
    }
    case SMFIR.ADDRCPT_PAR: {
      const s = strs(payload);
      if (s === null || s.length > 2) return bad(code, 'malformed recipient');
      return s.length === 2
        ? { kind: 'addRecipient', recipient: s[0] as string, args: s[1] as string }
        : { kind: 'addRecipient', recipient: s[0] as string };
    }
    case SMFIR.DELRCPT: {
      const s = strs(payload);
      return s?.length === 1
        ? { kind: 'deleteRecipient', recipient: s[0] as string }
        : bad(code, 'malformed recipient');
    }
    case SMFIR.CHGFROM: {
      const s = strs(payload);
      if (s === null || s.length > 2) return bad(code, 'malformed sender');
      return s.length === 2
        ? { kind: 'changeFrom', sender: s[0] as string, args: s[1] as string }
        : { kind: 'changeFrom', sender: s[0] as string };
    }
    case SMFIR.QUARANTINE: {
      const s = strs(payload);
      return s?.length === 1
        ? { kind: 'quarantine', reason: s[0] as string }
        : bad(code, 'malformed quarantine reason');
    }
    case SMFIR.REPLBODY:
      return { kind: 'replaceBody', chunk: payload };
    case SMFIR.OPTNEG: {
      if (payload.length < 12) return bad(code, 'short option negotiation');
      const macros = new Map<number, string>();
      let off = 12;
      while (off < payload.length) {
        if (payload.length - off < 5) return bad(code, 'truncated macro list');
        const stage = payload.readUInt32BE(off);
        const end = payload.indexOf(0, off + 4);
        if (end < 0) return bad(code, 'macro list is not NUL-terminated');
        macros.set(stage, payload.toString('latin1', off + 4, end));
        off = end + 1;
      }
      return {
        kind: 'optneg',
        version: payload.readUInt32BE(0),
        actions: payload.readUInt32BE(4),
        protocol: payload.readUInt32BE(8),
        macros,
      };
    }
    default:
      return bad(code, `unknown response byte 0x${code.toString(16)}`);
  }
}
