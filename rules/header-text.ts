// Header values as a person reads them: RFC 2047 encoded words decoded (libmime), 8-bit bytes read
// as UTF-8 where they are valid UTF-8 and as Latin-1 where not, folding undone. Pure; used by the
// Subject filters and the header rules. Never throws: a broken encoded word stays as it is.

import libmime from 'libmime';

/** Binary string (one char per byte) -> text. */
export function bytesToText(s: string): string {
  if (!/[\x80-\xff]/.test(s)) return s;
  const buf = Buffer.from(s, 'latin1');
  const utf8 = buf.toString('utf8');
  return utf8.includes('\ufffd') ? s : utf8;
}

/** A header value decoded for matching: encoded words, 8-bit text, unfolded. */
export function decodeHeader(value: string): string {
  const unfolded = value.replace(/\r?\n(?=[ \t])/g, '');
  let decoded: string;
  try {
    decoded = libmime.decodeWords(bytesToText(unfolded));
  } catch {
    decoded = bytesToText(unfolded);
  }
  return decoded;
}
