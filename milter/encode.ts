// Typed response -> bytes, for the milter side (milter -> MTA). Pure. Each call returns one complete
// packet as one Buffer, so the server writes it with one socket.write (miltertest fails on short
// reads). Payloads are checked against MILTER_CHUNK_SIZE: we never send more than 65535 bytes.
// Strings are binary strings (latin1 = one char per byte), see ./commands.ts.
// Layouts: ../shared/docs/milter-protocol.md §3, §4.

import { MILTER_CHUNK_SIZE, SMFIR } from './constants.js';
import type { Response } from './commands.js';

function packet(code: number, payloadLength: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + payloadLength);
  buf.writeUInt32BE(payloadLength + 1, 0);
  buf[4] = code;
  return buf;
}

/** Pre-built packets for the replies that carry no payload (never mutated). */
const STATIC = {
  continue: packet(SMFIR.CONTINUE, 0),
  accept: packet(SMFIR.ACCEPT, 0),
  reject: packet(SMFIR.REJECT, 0),
  tempfail: packet(SMFIR.TEMPFAIL, 0),
  discard: packet(SMFIR.DISCARD, 0),
  skip: packet(SMFIR.SKIP, 0),
  progress: packet(SMFIR.PROGRESS, 0),
} as const;

/** `str\0 str\0 ...` payload packet. */
function strings(code: number, items: readonly string[], prefixU32?: number): Buffer {
  let len = prefixU32 === undefined ? 0 : 4;
  for (const s of items) len += s.length + 1;
  const buf = packet(code, len);
  let off = 5;
  if (prefixU32 !== undefined) {
    buf.writeUInt32BE(prefixU32 >>> 0, off);
    off += 4;
  }
  for (const s of items) {
    off += buf.write(s, off, 'latin1');
    buf[off++] = 0;
  }
  return buf;
}

export class EncodeError extends Error {}

function checkString(what: string, s: string): void {
  if (s.includes('\0')) throw new EncodeError(`${what} contains a NUL byte`);
}

/**
 * Encodes one response. Throws EncodeError only for values the caller should never construct
 * (NUL inside a string, oversized payload): those are programming errors, caught by the session.
 */
export function encodeResponse(r: Response): Buffer {
  switch (r.kind) {
    case 'continue':
    case 'accept':
    case 'reject':
    case 'tempfail':
    case 'discard':
    case 'skip':
    case 'progress':
      return STATIC[r.kind];
    case 'replycode':
      checkString('reply text', r.text);
      return limit(strings(SMFIR.REPLYCODE, [r.text]));
    case 'addHeader':
      checkString('header name', r.name);
      checkString('header value', r.value);
      return limit(strings(SMFIR.ADDHEADER, [r.name, r.value]));
    case 'insertHeader':
      checkString('header name', r.name);
      checkString('header value', r.value);
      return limit(strings(SMFIR.INSHEADER, [r.name, r.value], r.index));
    case 'changeHeader':
      checkString('header name', r.name);
      checkString('header value', r.value);
      return limit(strings(SMFIR.CHGHEADER, [r.name, r.value], r.index));
    case 'addRecipient':
      checkString('recipient', r.recipient);
      if (r.args === undefined) return limit(strings(SMFIR.ADDRCPT, [r.recipient]));
      checkString('recipient arguments', r.args);
      return limit(strings(SMFIR.ADDRCPT_PAR, [r.recipient, r.args]));
    case 'deleteRecipient':
      checkString('recipient', r.recipient);
      return limit(strings(SMFIR.DELRCPT, [r.recipient]));
    case 'changeFrom':
      checkString('sender', r.sender);
      if (r.args === undefined) return limit(strings(SMFIR.CHGFROM, [r.sender]));
      checkString('sender arguments', r.args);
      return limit(strings(SMFIR.CHGFROM, [r.sender, r.args]));
    case 'quarantine':
      checkString('quarantine reason', r.reason);
      if (r.reason.length === 0) throw new EncodeError('quarantine reason is empty');
      return limit(strings(SMFIR.QUARANTINE, [r.reason]));
    case 'replaceBody': {
      const buf = packet(SMFIR.REPLBODY, r.chunk.length);
      r.chunk.copy(buf, 5);
      return limit(buf);
    }
    case 'optneg': {
      let len = 12;
      for (const names of r.macros.values()) len += 4 + names.length + 1;
      const buf = packet(SMFIR.OPTNEG, len);
      buf.writeUInt32BE(r.version >>> 0, 5);
      buf.writeUInt32BE(r.actions >>> 0, 9);
      buf.writeUInt32BE(r.protocol >>> 0, 13);
      let off = 17;
      for (const [stage, names] of r.macros) {
        checkString('macro list', names);
        buf.writeUInt32BE(stage, off);
        off += 4;
        off += buf.write(names, off, 'latin1');
        buf[off++] = 0;
      }
      return limit(buf);
    }
  }
}

function limit(buf: Buffer): Buffer {
  if (buf.length - 5 > MILTER_CHUNK_SIZE) {
    throw new EncodeError(`response payload of ${buf.length - 5} bytes exceeds ${MILTER_CHUNK_SIZE}`);
  }
  return buf;
}

/** Splits a new body into REPLBODY-sized chunks (configurable: miltertest copes with <= 1000). */
export function bodyChunks(body: Buffer, chunkSize = MILTER_CHUNK_SIZE): Buffer[] {
  const size = Math.max(1, Math.min(chunkSize, MILTER_CHUNK_SIZE));
  if (body.length === 0) return [body];
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) out.push(body.subarray(off, off + size));
  return out;
}
