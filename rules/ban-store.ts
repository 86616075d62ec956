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
  private readonly bans: LRUCache<string, Ban>;
  constructor(
    maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {
    this.bans = new LRUCache<string, Ban>({ max: maxEntries });
  }
  ban(key: string, reason: string, ms: number): void {
    this.bans.set(key, { reason, until: this.now() + ms });
  }
  banned(key: string): Ban | null {
    const b = this.bans.get(key);
    if (b === undefined) return null;
    if (b.until <= this.now()) {
      this.bans.delete(key);
      return null;
    }
    return b;
  }
  get size(): number {
    return this.bans.size;
  }
}
