// Prefix keys for CIDR matching: an address's first `bits` bits as a short string, so that a
// network and every address in it give the same key. Pure. Used when an image is compiled (for
// each CIDR entry) and at lookup (once per address and prefix length): hex nibbles, the last one
// masked, so a /25 is 7 characters and comparing keys is one Map lookup.

const HEX = '0123456789abcdef';

/** The key of the first `bits` bits of an address given as bytes (4 or 16). */
export function prefixKey(bytes: readonly number[], bits: number): string {
  let out = '';
  const nibbles = Math.ceil(bits / 4);
  for (let i = 0; i < nibbles; i++) {
    const byte = bytes[i >> 1] ?? 0;
    let n = i % 2 === 0 ? byte >> 4 : byte & 0xf;
    const keep = bits - i * 4;
    if (keep < 4) n &= (0xf << (4 - keep)) & 0xf;
    out += HEX[n] as string;
  }
  return `${bits}/${out}`;
}

/** The address as 32 (IPv6) or 8 (IPv4) hex nibbles, computed once per lookup. */
export function addressNibbles(bytes: readonly number[]): string {
  let out = '';
  for (const b of bytes) out += (HEX[b >> 4] as string) + (HEX[b & 0xf] as string);
  return out;
}

/** prefixKey for a prefix length, from the address's nibbles (no byte arithmetic per length). */
export function prefixKeyFromNibbles(nibbles: string, bits: number): string {
  const whole = bits >> 2;
  const rest = bits & 3;
  if (rest === 0) return `${bits}/${nibbles.slice(0, whole)}`;
  const n = parseInt(nibbles[whole] as string, 16) & ((0xf << (4 - rest)) & 0xf);
  return `${bits}/${nibbles.slice(0, whole)}${HEX[n] as string}`;
}
