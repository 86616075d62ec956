// One immutable, loaded access map: exact-key lookups into the compiled image, CIDR matching
// (extension), and each entry's right-hand side parsed once. Pure apart from what it is given.
// Built by ./load.ts (from a file) or fromText (tests, `query`), read by ./walk.ts.

import type ipaddr from 'ipaddr.js';
import { addressNibbles, prefixKeyFromNibbles } from './cidr-key.js';
import type { CidrRecord, ImageMeta, ImageView } from './image.js';
import { buildImage, fnv1a, openImage } from './image.js';
import type { AccessAction, RhsOptions } from './rhs.js';
import { parseRhs } from './rhs.js';
import type { Diagnostic, SourceOptions } from './source.js';
import { parseAccessSource } from './source.js';

export interface AccessEntry {
  /** The normalised key that matched. */
  readonly key: string;
  /** The right-hand side as written. */
  readonly value: string;
  readonly valueId: number;
  readonly line: number;
  /** `file:line` of the entry. */
  readonly where: string;
  /** Prefix length, for network entries (octet/group keys and CIDR keys). */
  readonly bits?: number;
}

interface CidrTable<K> {
  /** Distinct prefix lengths, longest first. */
  readonly lengths: number[];
  /** Per tag ('' = untagged): network key -> index into meta.cidrs. */
  readonly maps: Map<string, Map<K, number>>;
}

/** The longest prefix with a network entry (tagged before untagged on the same length). */
function longestMatch<K>(
  t: CidrTable<K>,
  tag: string,
  untagged: boolean,
  keyOf: (bits: number) => K,
): { index: number; bits: number } | null {
  const tagged = t.maps.get(tag);
  const plain = untagged ? t.maps.get('') : undefined;
  if (tagged === undefined && plain === undefined) return null;
  for (const bits of t.lengths) {
    const k = keyOf(bits);
    const index = tagged?.get(k) ?? plain?.get(k);
    if (index !== undefined) return { index, bits };
  }
  return null;
}

/** IPv4 network key: prefix length and the network's top bits in one number. */
function v4Key(addr: number, bits: number): number {
  return bits * 4294967296 + (bits === 0 ? 0 : addr >>> (32 - bits));
}

export class AccessSnapshot {
  private readonly actions: (AccessAction | undefined)[] = [];
  private readonly cidr4: CidrTable<number>;
  private readonly cidr6: CidrTable<string>;
  private readonly mask: number;

  private constructor(
    private readonly view: ImageView,
    private readonly rhsOptions: RhsOptions,
    /** Bytes of the image (for memory accounting). */
    readonly imageBytes: number,
  ) {
    this.mask = view.meta.tableSize - 1;
    // The CIDR records are pre-parsed at compile time: building the tables is a few Map sets per
    // record, so swapping in a new snapshot does not stall the event loop.
    const t4: CidrTable<number> = { lengths: [], maps: new Map() };
    const t6: CidrTable<string> = { lengths: [], maps: new Map() };
    const add = <K>(t: CidrTable<K>, tag: string, bits: number, key: K, index: number): void => {
      let nets = t.maps.get(tag);
      if (nets === undefined) t.maps.set(tag, (nets = new Map<K, number>()));
      if (!t.lengths.includes(bits)) t.lengths.push(bits);
      if (!nets.has(key)) nets.set(key, index);
    };
    view.meta.cidrs.forEach((c, index) => {
      if (c.family === 6) {
        add(t6, c.tag, c.bits, c.net, index);
        return;
      }
      // `bits/hex`: the network's top bits, hex nibbles, padded to 32 bits.
      const hex = c.net.slice(c.net.indexOf('/') + 1).padEnd(8, '0');
      add(t4, c.tag, c.bits, v4Key(parseInt(hex, 16), c.bits), index);
    });
    t4.lengths.sort((a, b) => b - a);
    t6.lengths.sort((a, b) => b - a);
    this.cidr4 = t4;
    this.cidr6 = t6;
  }

  static fromImage(
    image: Buffer,
    rhsOptions: RhsOptions,
    verify = true,
  ): { ok: true; snapshot: AccessSnapshot } | { ok: false; problem: string } {
    const r = openImage(image, { verify });
    if (!r.ok) return r;
    return { ok: true, snapshot: new AccessSnapshot(r.view, rhsOptions, image.length) };
  }

  /** Parses and compiles source text in memory (tests, the explain tool, text-file configs). */
  static fromText(
    text: string,
    file: string,
    rhsOptions: RhsOptions,
    sourceOptions: SourceOptions = {},
  ):
    | { ok: true; snapshot: AccessSnapshot; warnings: Diagnostic[] }
    | { ok: false; errors: Diagnostic[]; warnings: Diagnostic[] } {
    const parsed = parseAccessSource(text, file, sourceOptions);
    if (parsed.errors.length > 0) return { ok: false, errors: parsed.errors, warnings: parsed.warnings };
    const r = AccessSnapshot.fromImage(buildImage(parsed), rhsOptions, false);
    if (!r.ok) throw new Error(`internal: fresh image refused: ${r.problem}`);
    return { ok: true, snapshot: r.snapshot, warnings: parsed.warnings };
  }

  get meta(): ImageMeta {
    return this.view.meta;
  }

  get version(): string {
    return this.view.meta.version;
  }

  get file(): string {
    return this.view.meta.file;
  }

  /** Exact entries plus CIDR entries. */
  get size(): number {
    return this.view.meta.entries + this.view.meta.cidrs.length;
  }

  /** The entry stored under exactly this (normalised, lower-case) key. */
  get(key: string): AccessEntry | null {
    const { keys, entries, table } = this.view;
    let slot = fnv1a(key) & this.mask;
    for (;;) {
      const ref = table[slot] as number;
      if (ref === 0) return null;
      const i = (ref - 1) * 4;
      const off = entries[i] as number;
      const len = entries[i + 1] as number;
      if (len === key.length) {
        let same = true;
        for (let j = 0; j < len; j++) {
          if (keys[off + j] !== (key.charCodeAt(j) & 0xff)) {
            same = false;
            break;
          }
        }
        if (same) {
          const line = entries[i + 3] as number;
          const valueId = entries[i + 2] as number;
          return {
            key,
            value: this.view.meta.values[valueId] as string,
            valueId,
            line,
            where: `${this.view.meta.file}:${line}`,
          };
        }
      }
      slot = (slot + 1) & this.mask;
    }
  }

  /**
   * The most specific CIDR entry containing `ip`, with this tag and (if `untagged`) without; on
   * equal prefix lengths the tagged one.
   */
  cidr(tag: string, ip: ipaddr.IPv4 | ipaddr.IPv6, untagged: boolean): AccessEntry | null {
    let found: { index: number; bits: number } | null;
    if (ip.kind() === 'ipv4') {
      const o = (ip as ipaddr.IPv4).octets;
      const addr =
        (((o[0] as number) << 24) | ((o[1] as number) << 16) | ((o[2] as number) << 8) | (o[3] as number)) >>>
        0;
      found = longestMatch(this.cidr4, tag, untagged, (bits) => v4Key(addr, bits));
    } else {
      const nibbles = addressNibbles(ip.toByteArray());
      found = longestMatch(this.cidr6, tag, untagged, (bits) => prefixKeyFromNibbles(nibbles, bits));
    }
    if (found !== null) {
      const { index, bits } = found;
      const c = this.view.meta.cidrs[index] as CidrRecord;
      return {
        key: c.key,
        value: this.view.meta.values[c.valueId] as string,
        valueId: c.valueId,
        line: c.line,
        where: `${this.view.meta.file}:${c.line}`,
        bits,
      };
    }
    return null;
  }

  get hasCidrs(): boolean {
    return this.view.meta.cidrs.length > 0;
  }

  /** The parsed right-hand side of an entry (parsed once per distinct value). */
  action(entry: AccessEntry): AccessAction {
    let a = this.actions[entry.valueId];
    if (a === undefined) {
      a = parseRhs(entry.value, this.rhsOptions);
      this.actions[entry.valueId] = a;
    }
    return a;
  }

  /** Every exact key (for the lint); in file order of their first appearance in the image. */
  *allEntries(): Generator<AccessEntry> {
    const { keys, entries, meta } = this.view;
    for (let i = 0; i < meta.entries; i++) {
      const off = entries[i * 4] as number;
      const len = entries[i * 4 + 1] as number;
      const valueId = entries[i * 4 + 2] as number;
      const line = entries[i * 4 + 3] as number;
      yield {
        key: keys.toString('latin1', off, off + len),
        value: meta.values[valueId] as string,
        valueId,
        line,
        where: `${meta.file}:${line}`,
      };
    }
    for (const c of meta.cidrs) {
      yield {
        key: c.key,
        value: meta.values[c.valueId] as string,
        valueId: c.valueId,
        line: c.line,
        where: `${meta.file}:${c.line}`,
      };
    }
  }
}
