// One immutable, loaded access map: exact-key lookups into the compiled image, CIDR matching
// (extension), and each entry's right-hand side parsed once. Pure apart from what it is given.
// Built by ./load.ts (from a file) or fromText (tests, `query`), read by ./walk.ts.

import type ipaddr from 'ipaddr.js';
import type { ImageMeta, ImageView } from './image.js';
import { buildImage, fnv1a, openImage } from './image.js';
import { parseKey } from './keys.js';
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

interface CidrTable {
  /** Distinct prefix lengths, longest first. */
  readonly lengths: number[];
  /** Per tag (or '' for untagged), per prefix length: masked network -> cidr index. */
  readonly maps: Map<string, Map<number, Map<string, number>>>;
}

function maskedNetwork(ip: ipaddr.IPv4 | ipaddr.IPv6, bits: number): string {
  const bytes = ip.toByteArray();
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    const b = keep === 0 ? 0 : (bytes[i] as number) & ((0xff << (8 - keep)) & 0xff);
    out += `${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export class AccessSnapshot {
  private readonly actions: (AccessAction | undefined)[] = [];
  private readonly cidr4: CidrTable;
  private readonly cidr6: CidrTable;
  private readonly mask: number;

  private constructor(
    private readonly view: ImageView,
    private readonly rhsOptions: RhsOptions,
    /** Bytes of the image (for memory accounting). */
    readonly imageBytes: number,
  ) {
    this.mask = view.meta.tableSize - 1;
    const t4: CidrTable = { lengths: [], maps: new Map() };
    const t6: CidrTable = { lengths: [], maps: new Map() };
    view.meta.cidrs.forEach((c, index) => {
      const k = parseKey(c.key);
      if (k.cidr === undefined) return;
      const t = k.cidr.family === 4 ? t4 : t6;
      const tag = k.tag ?? '';
      let byLen = t.maps.get(tag);
      if (byLen === undefined) t.maps.set(tag, (byLen = new Map<number, Map<string, number>>()));
      let nets = byLen.get(k.cidr.bits);
      if (nets === undefined) byLen.set(k.cidr.bits, (nets = new Map<string, number>()));
      if (!t.lengths.includes(k.cidr.bits)) t.lengths.push(k.cidr.bits);
      const net = maskedNetwork(k.cidr.address, k.cidr.bits);
      if (!nets.has(net)) nets.set(net, index);
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

  /** The most specific CIDR entry with this tag (null = untagged) containing `ip`. */
  cidr(tag: string | null, ip: ipaddr.IPv4 | ipaddr.IPv6): AccessEntry | null {
    const t = ip.kind() === 'ipv4' ? this.cidr4 : this.cidr6;
    const byLen = t.maps.get(tag ?? '');
    if (byLen === undefined) return null;
    for (const bits of t.lengths) {
      const nets = byLen.get(bits);
      if (nets === undefined) continue;
      const index = nets.get(maskedNetwork(ip, bits));
      if (index === undefined) continue;
      const c = this.view.meta.cidrs[index] as ImageMeta['cidrs'][number];
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
