// A deterministic generator of a realistic, large sendmail access file for bench/access-db.ts: the
// same (entries, seed) always gives the same bytes. The mix is what a big site's map holds after a
// few years of blocklist feeds and hand edits: Connect: IPv4 addresses and octet prefixes, IPv6
// keys in sendmail's form (`IPv6:2a01:4f8:c17:1a2b:0:0:0:1`, group prefixes), host names and
// domains, From: full addresses, `user@` and domains, To: addresses and relay domains, CIDR keys
// (`Connect:198.51.100.0/25`, our extension), untagged entries, with OK / RELAY / REJECT /
// DISCARD / ERROR:5.7.1:"550 ..." (and a few 4xx and QUARANTINE) right-hand sides, comment
// blocks and blank lines. Every key is unique (no duplicate-key warnings).
//
// The generated keys stay out of the address space the benchmark's load generator uses
// (192.0.2.0/24, sender@client.example, *@example.test, *@elsewhere.example) and out of the space
// the lookup benchmark draws its misses from (198.18.0.0/15, 3fff::/16, *.invalid), except for a
// handful of FIXED entries placed at known lines so that some of the load generator's decisions
// come from the map; one of them (`flip`) is the entry the reload test changes.
// Besides the lines it returns samples of keys that hit (and of queries that miss) for each walk.
// Pure (no I/O); throws only on impossible arguments (entries < the fixed entries).

/** Right-hand side of the `flip` entry in each version of the map the reload test installs. */
export const FLIP_VALUES = ['REJECT', 'RELAY', 'ERROR:5.7.1:"550 bench map v3 refuses 192.0.2.10"'] as const;

/** Entries aimed at the load generator's clients and recipients (bench/c/loadgen.c). */
export const FIXED = {
  flip: { key: 'Connect:192.0.2.10', value: FLIP_VALUES[0] as string },
  relay: { key: 'Connect:192.0.2.20', value: 'RELAY' },
  cidr: { key: 'Connect:192.0.2.32/28', value: 'ERROR:5.7.1:"550 bench CIDR block"' },
  discard: { key: 'Connect:192.0.2.60', value: 'DISCARD' },
  untagged: { key: '192.0.2.70', value: 'REJECT' },
  ok: { key: 'Connect:192.0.2.80', value: 'OK' },
  rcpt: { key: 'To:blocked@example.test', value: 'REJECT' },
} as const;
export type FixedName = keyof typeof FIXED;

export type EntryKind =
  | 'connect-ipv4'
  | 'connect-ipv4-prefix'
  | 'connect-ipv6'
  | 'connect-host'
  | 'connect-domain'
  | 'from-address'
  | 'from-user'
  | 'from-domain'
  | 'to-address'
  | 'to-domain'
  | 'cidr'
  | 'untagged'
  | 'fixed';

/** Share of each kind among the generated entries (the fixed ones come on top). */
const MIX: readonly (readonly [Exclude<EntryKind, 'fixed'>, number])[] = [
  ['connect-ipv4', 0.3],
  ['connect-ipv4-prefix', 0.08],
  ['connect-ipv6', 0.07],
  ['connect-host', 0.09],
  ['connect-domain', 0.06],
  ['from-address', 0.15],
  ['from-user', 0.02],
  ['from-domain', 0.08],
  ['to-address', 0.04],
  ['to-domain', 0.04],
  ['cidr', 0.01],
  ['untagged', 0.06],
];

/** Lookup samples: what the lookup benchmark asks (all lower case, as the walks receive them). */
export interface QuerySamples {
  /** IPv4 addresses with their own Connect: entry. */
  readonly ip4Exact: string[];
  /** IPv4 addresses inside an octet-prefix entry (`Connect:203.0.113`). */
  readonly ip4Prefix: string[];
  /** IPv4 addresses inside a CIDR entry only. */
  readonly ip4Cidr: string[];
  /** IPv6 addresses with their own entry. */
  readonly ip6Exact: string[];
  /** Connect: host names with their own entry. */
  readonly hostExact: string[];
  /** Host names one label below a Connect: domain entry (`mx3.<domain>`). */
  readonly hostParent: string[];
  /** From: full addresses with an entry. */
  readonly fromAddress: string[];
  /** Addresses whose local part has a `From:user@` entry (domain under .invalid). */
  readonly fromUser: string[];
  /** Addresses in a From: domain entry. */
  readonly fromDomain: string[];
}

export interface GeneratedAccess {
  /** The source, one element per line, without newlines. */
  readonly lines: string[];
  readonly entries: number;
  readonly counts: Record<EntryKind, number>;
  /** 1-based line of each fixed entry. */
  readonly fixedLines: Record<FixedName, number>;
  readonly samples: QuerySamples;
}

/** mulberry32: small, fast, and the same on every platform (integer arithmetic only). */
export function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TLDS: readonly (readonly [string, number])[] = [
  ['com', 34],
  ['net', 14],
  ['org', 7],
  ['ru', 5],
  ['cn', 4],
  ['br', 3],
  ['de', 3],
  ['info', 3],
  ['biz', 2],
  ['xyz', 3],
  ['top', 3],
  ['online', 2],
  ['co.uk', 2],
  ['com.br', 2],
  ['jp', 1],
  ['in', 2],
  ['fr', 1],
  ['it', 1],
  ['nl', 1],
  ['pl', 2],
  ['vn', 1],
  ['us', 1],
  ['site', 1],
  ['shop', 1],
];

const WORDS = (
  'mail net web host data tech info shop cloud link star blue red sun moon fast best top pro max ' +
  'city home zone world market media news promo deal club one smart green alpha nova prime delta ' +
  'global secure direct express digital online first rapid bright metro north south east west ' +
  'silver gold river lake hill park union trade money bank loan casino pharma dating travel'
).split(' ');

const LOCALS = (
  'info sales news newsletter noreply no-reply promo offers marketing support admin billing contact ' +
  'hello team jobs deals service mailer bounce alerts office webmaster orders accounts hr careers'
).split(' ');

const NAMES = (
  'john anna maria peter paul mike sarah laura david chris alex kate tom lisa mark emma daniel ' +
  'olga ivan chen wei li raj priya carlos ana jose luis'
).split(' ');

/** Local parts the load generator sends (a `user@` entry for them would change its decisions). */
const RESERVED_LOCALS = new Set(['sender', 'user', 'someone', 'blocked', 'postmaster']);

const REJECT_TEXTS = [
  'Access denied: listed locally, ticket',
  'Spam source refused, ref',
  'Your host is blocked here, case',
  'Mail from your network is not accepted, incident',
  'Sender blocked by local policy, rule',
  'Rejected: compromised host reported, report',
];

export function generateAccess(totalEntries: number, seed: number, sampleSize: number): GeneratedAccess {
  const fixedNames = Object.keys(FIXED) as FixedName[];
  if (!Number.isInteger(totalEntries) || totalEntries < fixedNames.length * 10)
    throw new Error(`entries: at least ${fixedNames.length * 10}`);
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const weighted = <T>(xs: readonly (readonly [T, number])[]): T => {
    let total = 0;
    for (const [, w] of xs) total += w;
    let r = rnd() * total;
    for (const [x, w] of xs) {
      r -= w;
      if (r < 0) return x;
    }
    return (xs[xs.length - 1] as readonly [T, number])[0];
  };

  const errorTexts: string[] = [];
  for (let i = 0; i < 300; i++)
    errorTexts.push(`ERROR:5.7.1:"550 ${pick(REJECT_TEXTS)} ${1000 + int(9000)}-${i}"`);
  const tempTexts: string[] = [];
  for (let i = 0; i < 20; i++) tempTexts.push(`ERROR:4.7.1:"451 Temporarily deferred, greylist ${i}"`);
  const quarantine = [
    'QUARANTINE:held for review',
    'QUARANTINE:suspicious source',
    'QUARANTINE:manual check',
  ];

  const rhs = {
    connect: (): string =>
      weighted<() => string>([
        [() => 'REJECT', 48],
        [() => pick(errorTexts), 20],
        [() => 'OK', 15],
        [() => 'RELAY', 8],
        [() => 'DISCARD', 5],
        [() => pick(tempTexts), 2],
        [() => pick(quarantine), 2],
      ])(),
    from: (): string =>
      weighted<() => string>([
        [() => 'REJECT', 50],
        [() => pick(errorTexts), 20],
        [() => 'OK', 20],
        [() => 'DISCARD', 8],
        [() => 'RELAY', 2],
      ])(),
    toAddress: (): string =>
      weighted<() => string>([
        [() => 'REJECT', 60],
        [() => pick(errorTexts), 20],
        [() => 'OK', 10],
        [() => 'DISCARD', 10],
      ])(),
    toDomain: (): string =>
      weighted<() => string>([
        [() => 'RELAY', 60],
        [() => 'REJECT', 20],
        [() => 'OK', 20],
      ])(),
  };

  // IPv4: first octets that never cover the load generator's, the trusted or the miss space.
  const firstOctets: number[] = [];
  for (let o = 1; o <= 223; o++) if (![10, 127, 192, 198].includes(o)) firstOctets.push(o);
  const ip4 = (): [number, number, number, number] => [pick(firstOctets), int(256), int(256), 1 + int(254)];
  const hex = (n: number): string => n.toString(16);
  const ip6Prefix = (): number[] => [0x2000 + int(0x1000), int(0x10000), int(0x10000), int(0x10000)];
  const ip6 = (): string => {
    const p = ip6Prefix();
    const iid =
      rnd() < 0.5 ? [0, 0, 0, 1 + int(0x100)] : [int(0x10000), int(0x10000), int(0x10000), int(0x10000)];
    return [...p, ...iid].map(hex).join(':');
  };
  const label = (): string => {
    const r = rnd();
    if (r < 0.45) return `${pick(WORDS)}${pick(WORDS)}${rnd() < 0.3 ? String(int(100)) : ''}`;
    if (r < 0.6) return `${pick(WORDS)}-${pick(WORDS)}`;
    let s = '';
    const n = 5 + int(6);
    for (let i = 0; i < n; i++) s += String.fromCharCode(97 + int(26));
    return rnd() < 0.3 ? `${s}${int(1000)}` : s;
  };
  const domain = (): string => `${rnd() < 0.15 ? `${pick(WORDS)}.` : ''}${label()}.${weighted(TLDS)}`;
  const host = (): string => {
    const r = rnd();
    if (r < 0.35)
      return `${pick(['mail', 'mx', 'smtp', 'out', 'relay', 'mta'])}${rnd() < 0.5 ? String(1 + int(20)) : ''}.${domain()}`;
    if (r < 0.75) {
      const [a, b, c, d] = ip4();
      return `${pick([`${a}-${b}-${c}-${d}`, `host-${a}-${b}-${c}-${d}`, `${d}.${c}.${b}.${a}`, `ip${a}-${b}-${c}-${d}`])}.${pick(['dyn', 'dsl', 'pool', 'cable', 'static', 'client', 'adsl', 'ftth'])}.${domain()}`;
    }
    return `${label()}.${domain()}`;
  };
  const local = (): string => {
    for (;;) {
      const r = rnd();
      const l =
        r < 0.4
          ? pick(LOCALS)
          : r < 0.7
            ? `${pick(NAMES)}${pick(['.', '_', ''])}${pick(NAMES)}${rnd() < 0.5 ? String(int(100)) : ''}`
            : `${label()}${int(10000)}`;
      if (!RESERVED_LOCALS.has(l)) return l;
    }
  };

  const seen = new Set<string>();
  const counts = Object.fromEntries([...MIX.map(([k]) => [k, 0]), ['fixed', 0]]) as Record<EntryKind, number>;
  const sampleLists: Record<keyof QuerySamples, string[]> = {
    ip4Exact: [],
    ip4Prefix: [],
    ip4Cidr: [],
    ip6Exact: [],
    hostExact: [],
    hostParent: [],
    fromAddress: [],
    fromUser: [],
    fromDomain: [],
  };
  const sampled: Record<keyof QuerySamples, number> = {
    ip4Exact: 0,
    ip4Prefix: 0,
    ip4Cidr: 0,
    ip6Exact: 0,
    hostExact: 0,
    hostParent: 0,
    fromAddress: 0,
    fromUser: 0,
    fromDomain: 0,
  };
  /** Reservoir sampling: every candidate has the same chance to be kept. */
  const sample = (kind: keyof QuerySamples, make: () => string): void => {
    const n = ++sampled[kind];
    const list = sampleLists[kind];
    if (list.length < sampleSize) list.push(make());
    else {
      const j = int(n);
      if (j < sampleSize) list[j] = make();
    }
  };

  /** One new entry of this kind: [key, value], or null when the key was taken. */
  const make = (kind: Exclude<EntryKind, 'fixed'>): [string, string] | null => {
    let key: string;
    let value: string;
    let after: (() => void) | null = null;
    switch (kind) {
      case 'connect-ipv4': {
        const a = ip4().join('.');
        key = `Connect:${a}`;
        value = rhs.connect();
        after = () => sample('ip4Exact', () => a);
        break;
      }
      case 'connect-ipv4-prefix': {
        const [a, b, c] = ip4();
        const three = rnd() < 0.98;
        const p = three ? `${a}.${b}.${c}` : `${a}.${b}`;
        key = `Connect:${p}`;
        value = rhs.connect();
        after = () =>
          sample('ip4Prefix', () => `${p}.${three ? 1 + int(254) : `${int(256)}.${1 + int(254)}`}`);
        break;
      }
      case 'connect-ipv6': {
        if (rnd() < 0.7) {
          const a = ip6();
          key = `Connect:IPv6:${a}`;
          after = () => sample('ip6Exact', () => a);
        } else {
          key = `Connect:IPv6:${ip6Prefix()
            .slice(0, 2 + int(3))
            .map(hex)
            .join(':')}`;
        }
        value = rhs.connect();
        break;
      }
      case 'connect-host': {
        const h = host();
        key = `Connect:${h}`;
        value = rhs.connect();
        after = () => sample('hostExact', () => h);
        break;
      }
      case 'connect-domain': {
        const d = domain();
        key = `Connect:${d}`;
        value = rhs.connect();
        after = () => sample('hostParent', () => `${pick(['mx', 'mail', 'smtp', 'a', 'b'])}${int(10)}.${d}`);
        break;
      }
      case 'from-address': {
        const a = `${local()}@${domain()}`;
        key = `From:${a}`;
        value = rhs.from();
        after = () => sample('fromAddress', () => a);
        break;
      }
      case 'from-user': {
        const l = `${local()}${int(100000)}`;
        key = `From:${l}@`;
        value = rhs.from();
        after = () => sample('fromUser', () => `${l}@${label()}.invalid`);
        break;
      }
      case 'from-domain': {
        const d = domain();
        key = `From:${d}`;
        value = rhs.from();
        after = () => sample('fromDomain', () => `${local()}@${d}`);
        break;
      }
      case 'to-address':
        key = `To:${local()}@${domain()}`;
        value = rhs.toAddress();
        break;
      case 'to-domain':
        key = `To:${domain()}`;
        value = rhs.toDomain();
        break;
      case 'cidr': {
        const untagged = rnd() < 0.1;
        if (rnd() < 0.9) {
          const bits = weighted([
            [16, 1],
            [18, 1],
            [20, 2],
            [22, 3],
            [23, 2],
            [25, 4],
            [26, 4],
            [27, 4],
            [28, 5],
            [29, 5],
            [30, 2],
          ] as const);
          const [a, b, c, d] = ip4();
          const n = (((a << 24) | (b << 16) | (c << 8) | d) & (~0 << (32 - bits))) >>> 0;
          const net = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
          key = `${untagged ? '' : 'Connect:'}${net.join('.')}/${bits}`;
          const size = 2 ** (32 - bits);
          after = () =>
            sample('ip4Cidr', () => {
              const x = n + 1 + int(size - 2);
              return [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
            });
        } else {
          const bits = pick([32, 40, 48, 56, 64]);
          const p = ip6Prefix();
          const groups = [...p, 0, 0, 0, 0].map((g, i) => (i * 16 >= bits ? 0 : g));
          if (bits % 16 !== 0) {
            const gi = Math.floor(bits / 16);
            groups[gi] = (groups[gi] as number) & (0xffff << (16 - (bits % 16))) & 0xffff;
          }
          key = `${untagged ? '' : 'Connect:'}IPv6:${groups.map(hex).join(':')}/${bits}`;
        }
        value = rhs.connect();
        break;
      }
      case 'untagged': {
        const r = rnd();
        if (r < 0.4) key = ip4().join('.');
        else if (r < 0.5) key = ip4().slice(0, 3).join('.');
        else if (r < 0.9) key = domain();
        else key = `${local()}@${domain()}`;
        value = rhs.connect();
        break;
      }
    }
    const norm = key.toLowerCase();
    if (seen.has(norm)) return null;
    seen.add(norm);
    after?.();
    counts[kind]++;
    return [key, value];
  };

  const generated = totalEntries - fixedNames.length;
  // Fixed entries spread over the file: near the top, in the middle, near the end.
  const fixedAt = new Map<number, FixedName>();
  fixedNames.forEach((name, i) => {
    fixedAt.set(Math.floor(((i + 0.5) / fixedNames.length) * generated), name);
  });
  const fixedLines = {} as Record<FixedName, number>;
  const lines: string[] = [
    '# /etc/mail/access: generated by bench/access-db-generate.ts for the access_db benchmark',
    `# ${totalEntries} entries, seed ${seed}. Compile with: milter-policy makemap hash access < access`,
    '',
  ];
  const feeds = [
    'local abuse desk',
    'customer relay list',
    'blocklist feed',
    'hand edits',
    'spamtrap harvest',
  ];
  for (let i = 0; i < generated; i++) {
    const f = fixedAt.get(i);
    if (f !== undefined) {
      lines.push(`# benchmark load generator entry: ${f}`);
      lines.push(`${FIXED[f].key}\t${FIXED[f].value}`);
      fixedLines[f] = lines.length;
      seen.add(FIXED[f].key.toLowerCase());
      counts.fixed++;
    }
    if (i % 5000 === 0 && i > 0) {
      lines.push('');
      lines.push(`# --- block ${i / 5000}: ${pick(feeds)}, imported 2026-${1 + int(12)}-${1 + int(28)} ---`);
    }
    for (;;) {
      const e = make(weighted(MIX));
      if (e === null) continue;
      lines.push(`${e[0]}${rnd() < 0.8 ? '\t' : ' '.repeat(1 + int(8))}${e[1]}`);
      break;
    }
  }
  return { lines, entries: totalEntries, counts, fixedLines, samples: sampleLists };
}

/** The lines as a file: newline-terminated. */
export function sourceText(lines: readonly string[]): string {
  return `${lines.join('\n')}\n`;
}
