// Where client bans live (the spam trap shuts a client out for a while; the rate-limit issue adds
// more reasons). One interface, so the Redis store can replace the in-memory one and every gateway
// sees a ban made on any of them. The memory store is bounded (lru-cache) and expires entries itself.

import { LRUCache } from 'lru-cache';

export interface Ban {
  readonly reason: string;
  /** Epoch milliseconds. */
  readonly until: number;
}

export interface BanStore {
  ban(key: string, reason: string, ms: number): Promise<void> | void;
  /** The ban in force for this key, or null. */
  banned(key: string): Promise<Ban | null> | Ban | null;
}

export class MemoryBanStore implements BanStore {
  private cache: LRUCache<string, Ban> | null = null;
  constructor(
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}
  /** Allocates the cache now (a store about to be used). */
  warm(): this {
    void this.bans;
    return this;
  }
  /** Created on first use (lru-cache allocates for maxEntries up front). */
  private get bans(): LRUCache<string, Ban> {
    this.cache ??= new LRUCache<string, Ban>({ max: this.maxEntries });
    return this.cache;
  }
  ban(key: string, reason: string, ms: number): void {
    this.bans.set(key, { reason, until: this.now() + ms });
  }
  banned(key: string): Ban | null {
    const b = this.bans.get(key);
    if (b === undefined) return null;
    // expired: left for the LRU to evict (lru-cache's delete of its last entry walks the whole
    // maxEntries-sized index)
    if (b.until <= this.now()) return null;
    return b;
  }
  get size(): number {
    return this.cache?.size ?? 0;
  }
}
