// A caching, coalescing front of a DNS lookup function (architecture.md §11). Used by the DNSBL
// checks; the lookup itself (node:dns in daemon/dns-resolver.ts, a fake in tests) is injected, so
// this is pure apart from the clock lru-cache reads.
//   - identical lookups in flight share one query;
//   - answers are cached with their TTL clamped to [min_ttl, max_ttl]; NXDOMAIN ("not listed") is
//     cached for negative_ttl; errors (timeouts, SERVFAIL) are not cached, so the next mail retries;
//   - the cache is bounded (max_entries, least recently used dropped first).

import { LRUCache } from 'lru-cache';

export type DnsAnswer =
  | { readonly kind: 'records'; readonly records: readonly string[]; readonly ttlSeconds: number }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'error'; readonly error: string };

export type DnsRecordType = 'A' | 'TXT';

export interface DnsLookup {
  /** Never rejects: failures are `{kind: 'error'}`. */
  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer>;
}

/** Told how each lookup was answered (the daemon's metrics); must not throw. */
export interface DnsCacheObserver {
  cacheHit(): void;
  cacheMiss(): void;
  /** Joined an identical lookup in flight. */
  coalesced(): void;
}

export interface DnsCacheOptions {
  readonly maxEntries: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly negativeTtlMs: number;
  readonly observer?: DnsCacheObserver;
}

export interface DnsCacheStats {
  hits: number;
  misses: number;
  coalesced: number;
  errors: number;
}

export class DnsCache implements DnsLookup {
  private readonly cache: LRUCache<string, DnsAnswer>;
  private readonly inFlight = new Map<string, Promise<DnsAnswer>>();
  readonly stats: DnsCacheStats = { hits: 0, misses: 0, coalesced: 0, errors: 0 };

  constructor(
    private readonly upstream: DnsLookup,
    private readonly options: DnsCacheOptions,
  ) {
    this.cache = new LRUCache<string, DnsAnswer>({
      max: options.maxEntries,
      ttlAutopurge: false,
      allowStale: false,
    });
  }

  get size(): number {
    return this.cache.size;
  }

  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer> {
    const key = `${type} ${name.toLowerCase()}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.stats.hits++;
      this.options.observer?.cacheHit();
      return Promise.resolve(cached);
    }
    const pending = this.inFlight.get(key);
    if (pending !== undefined) {
      this.stats.coalesced++;
      this.options.observer?.coalesced();
      return pending;
    }
    this.stats.misses++;
    this.options.observer?.cacheMiss();
    const p = this.upstream.lookup(name, type).then(
      (answer) => {
        this.inFlight.delete(key);
        this.store(key, answer);
        return answer;
      },
      (e: unknown) => {
        this.inFlight.delete(key);
        this.stats.errors++;
        return { kind: 'error', error: e instanceof Error ? e.message : String(e) } as const;
      },
    );
    this.inFlight.set(key, p);
    return p;
  }

  private store(key: string, answer: DnsAnswer): void {
    if (answer.kind === 'error') {
      this.stats.errors++;
      return;
    }
    const o = this.options;
    const ttl =
      answer.kind === 'nxdomain'
        ? o.negativeTtlMs
        : Math.min(o.maxTtlMs, Math.max(o.minTtlMs, answer.ttlSeconds * 1000));
    if (ttl > 0) this.cache.set(key, answer, { ttl });
  }
}
