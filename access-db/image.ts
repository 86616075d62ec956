// The compiled access map ("snapshot image"): what `milter-policy makemap` writes and the daemon
// loads. Pure (Buffers in and out). One format serves text sources too: a text file is compiled to
// an image in memory, so lookups have one code path.
//
// Layout (all integers u32 little-endian, sections 4-byte aligned):
//   "MPACDB2\n"              magic, 8 bytes
//   metaLength               then `metaLength` bytes of JSON (ImageMeta), zero-padded to 4
//   keys                     every key, latin1, back to back (meta.keysLength bytes), padded to 4
//   entries                  4 x u32 per entry: key offset, key length, value id, source line
//   table                    meta.tableSize x u32: open-addressing hash table (FNV-1a 32 of the
//                            key bytes, linear probing), entry index + 1, 0 = empty
// Values (right-hand sides) are de-duplicated in meta.values; CIDR entries (an extension sendmail
// does not have) are listed in meta.cidrs. meta.version is the SHA-256 of everything after the
// metadata plus the values, so a truncated or altered file is refused at load.
// For 1,000,000 entries the image is about 50 MB and lookups touch a few cache lines.

import { createHash } from 'node:crypto';
import { prefixKey } from './cidr-key.js';
import type { ParsedSource } from './source.js';

export const IMAGE_MAGIC = Buffer.from('MPACDB2\n', 'latin1');
export const IMAGE_FORMAT = 2;

export interface ImageMeta {
  readonly format: number;
  /** `sha256:` + hex of the body and values. */
  readonly version: string;
  readonly created: string;
  /** The source file name diagnostics and decision lines name (`/etc/mail/access`). */
  readonly file: string;
  readonly entries: number;
  readonly keysLength: number;
  readonly tableSize: number;
  readonly values: readonly string[];
  readonly cidrs: readonly CidrRecord[];
  readonly warnings: readonly string[];
}

/**
 * A CIDR entry, pre-parsed at compile time so that loading a snapshot does no address parsing:
 * `net` is the network as a prefix key (./cidr-key.ts), `tag` '' for untagged keys.
 */
export interface CidrRecord {
  readonly key: string;
  readonly valueId: number;
  readonly line: number;
  readonly tag: string;
  readonly family: 4 | 6;
  readonly bits: number;
  readonly net: string;
}

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds an image from a parsed source (which must have no errors). */
export function buildImage(source: ParsedSource, created = new Date()): Buffer {
  const valueIds = new Map<string, number>();
  const values: string[] = [];
  const idOf = (v: string): number => {
    let id = valueIds.get(v);
    if (id === undefined) {
      id = values.length;
      values.push(v);
      valueIds.set(v, id);
    }
    return id;
  };
  const cidrs: CidrRecord[] = [];
  const exact = source.entries.filter((e) => {
    const c = e.key.cidr;
    if (c === undefined) return true;
    cidrs.push({
      key: e.key.key,
      valueId: idOf(e.value),
      line: e.line,
      tag: e.key.tag ?? '',
      family: c.family,
      bits: c.bits,
      net: prefixKey(c.address.toByteArray(), c.bits),
    });
    return false;
  });
  const n = exact.length;
  let keysLength = 0;
  for (const e of exact) keysLength += e.key.key.length;
  let tableSize = 8;
  while (tableSize < n * 2) tableSize *= 2;

  const keysBytes = pad4(keysLength);
  const body = Buffer.alloc(keysBytes + n * 16 + tableSize * 4);
  const entries = new Uint32Array(body.buffer, body.byteOffset + keysBytes, n * 4);
  const table = new Uint32Array(body.buffer, body.byteOffset + keysBytes + n * 16, tableSize);
  const mask = tableSize - 1;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const e = exact[i] as (typeof exact)[number];
    const k = e.key.key;
    body.write(k, off, 'latin1');
    entries[i * 4] = off;
    entries[i * 4 + 1] = k.length;
    entries[i * 4 + 2] = idOf(e.value);
    entries[i * 4 + 3] = e.line;
    off += k.length;
    let slot = fnv1a(k) & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = i + 1;
  }
  const version = `sha256:${createHash('sha256').update(body).update(JSON.stringify(values)).update(JSON.stringify(cidrs)).digest('hex')}`;
  const meta: ImageMeta = {
    format: IMAGE_FORMAT,
    version,
    created: created.toISOString(),
    file: source.file,
    entries: n,
    keysLength,
    tableSize,
    values,
    cidrs,
    warnings: source.warnings.map((w) => `${w.file}:${w.line}: ${w.message}`),
  };
  const metaJson = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(8 + 4 + pad4(metaJson.length));
  IMAGE_MAGIC.copy(head, 0);
  head.writeUInt32LE(metaJson.length, 8);
  metaJson.copy(head, 12);
  return Buffer.concat([head, body]);
}

export interface ImageView {
  readonly meta: ImageMeta;
  readonly keys: Buffer;
  readonly entries: Uint32Array;
  readonly table: Uint32Array;
}

export type ImageResult =
  { readonly ok: true; readonly view: ImageView } | { readonly ok: false; readonly problem: string };

export function isImage(buf: Buffer): boolean {
  return buf.length >= IMAGE_MAGIC.length && buf.subarray(0, IMAGE_MAGIC.length).equals(IMAGE_MAGIC);
}

/** Opens an image, checking its structure and checksum; never throws for a bad file. */
export function openImage(input: Buffer, options: { verify?: boolean } = {}): ImageResult {
  if (!isImage(input)) return { ok: false, problem: 'not a milter-policy access map (bad magic)' };
  // Typed-array views need 4-byte alignment of the underlying buffer.
  const buf = input.byteOffset % 4 === 0 ? input : Buffer.from(input);
  if (buf.length < 12) return { ok: false, problem: 'truncated header' };
  const metaLength = buf.readUInt32LE(8);
  if (12 + metaLength > buf.length) return { ok: false, problem: 'truncated metadata' };
  let meta: ImageMeta;
  try {
    meta = JSON.parse(buf.toString('utf8', 12, 12 + metaLength)) as ImageMeta;
  } catch {
    return { ok: false, problem: 'corrupt metadata' };
  }
  if (meta.format !== IMAGE_FORMAT)
    return { ok: false, problem: `unsupported format ${String(meta.format)}` };
  const bodyStart = 12 + pad4(metaLength);
  const keysBytes = pad4(meta.keysLength);
  const need = keysBytes + meta.entries * 16 + meta.tableSize * 4;
  if (buf.length - bodyStart !== need) {
    return {
      ok: false,
      problem: `size mismatch: ${buf.length - bodyStart} body bytes, ${need} expected (truncated?)`,
    };
  }
  if ((meta.tableSize & (meta.tableSize - 1)) !== 0 || meta.tableSize < meta.entries) {
    return { ok: false, problem: 'corrupt hash table size' };
  }
  const body = buf.subarray(bodyStart);
  if (options.verify !== false) {
    const v = `sha256:${createHash('sha256').update(body).update(JSON.stringify(meta.values)).update(JSON.stringify(meta.cidrs)).digest('hex')}`;
    if (v !== meta.version) return { ok: false, problem: 'checksum mismatch (file altered or damaged)' };
  }
  return {
    ok: true,
    view: {
      meta,
      keys: body.subarray(0, meta.keysLength),
      entries: new Uint32Array(body.buffer, body.byteOffset + keysBytes, meta.entries * 4),
      table: new Uint32Array(body.buffer, body.byteOffset + keysBytes + meta.entries * 16, meta.tableSize),
    },
  };
}
