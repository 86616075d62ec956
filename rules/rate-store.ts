// Where rate-limit state lives: token buckets and connection leases, behind one interface so the
// Redis store (daemon/redis-store.ts: several gateways share one limit) can stand in for the
// in-memory one (the default: no set-up, one process). Memory is bounded: buckets and lease sets
// sit in lru-cache instances of `maxKeys` entries each, so a flood from a million distinct
// sources evicts the least recently seen ones instead of growing without limit (an evicted
// bucket comes back full, an evicted lease set empty: the failure mode is lenient). Nothing is
// deleted from the caches, see take(). Never throws.

import { LRUCache } from 'lru-cache';
import type { BucketLimit, BucketState, TakeResult } from './token-bucket.js';
import { take, tokensAt } from './token-bucket.js';

export type MaybePromise<T> = T | Promise<T>;

export interface LeaseResult {
  readonly allowed: boolean;
  /** Live leases on the key after this attempt (this one included when allowed). */
  readonly count: number;
}

export interface RateStore {
  /** One attempt at the bucket `key`. */
  take(key: string, limit: BucketLimit, cost: number, countRefused: boolean): MaybePromise<TakeResult>;
  /** Tokens in the bucket now, nothing taken (a bucket never seen is full). */
  peek(key: string, limit: BucketLimit): MaybePromise<number>;
  /**
   * A concurrency lease: allowed while fewer than `max` live leases hold `key`. A lease lives
   * `ttlMs` unless renewed by acquiring it again, so a daemon that dies never leaves a client
   * locked out for longer than that.
   */
  acquire(key: string, lease: string, max: number, ttlMs: number): MaybePromise<LeaseResult>;
  release(key: string, lease: string): MaybePromise<void>;
}

export interface MemoryRateStoreOptions {
  /** Most buckets and most lease sets kept (each). */
  readonly maxKeys: number;
  readonly now?: () => number;
}

export const DEFAULT_MEMORY_MAX_KEYS = 1_000_000;

export class MemoryRateStore implements RateStore {
  // Created on first use: lru-cache allocates its index for `max` entries up front (tens of MiB
  // for a million), which a daemon without rate limits should not pay for.
  private bucketCache: LRUCache<string, BucketState> | null = null;
  private leaseCache: LRUCache<string, Map<string, number>> | null = null;
  private readonly now: () => number;
  private readonly max: number;

  constructor(o: Partial<MemoryRateStoreOptions> = {}) {
    this.max = o.maxKeys ?? DEFAULT_MEMORY_MAX_KEYS;
    this.now = o.now ?? Date.now;
  }

  /** Allocates the caches now (a store about to be used: the first call should not pay for it). */
  warm(): this {
    void this.buckets;
    void this.leases;
    return this;
  }

  private get buckets(): LRUCache<string, BucketState> {
    this.bucketCache ??= new LRUCache<string, BucketState>({ max: this.max, perf: { now: this.now } });
    return this.bucketCache;
  }

  private get leases(): LRUCache<string, Map<string, number>> {
    this.leaseCache ??= new LRUCache<string, Map<string, number>>({ max: this.max, perf: { now: this.now } });
    return this.leaseCache;
  }

  take(key: string, limit: BucketLimit, cost: number, countRefused: boolean): TakeResult {
    const now = this.now();
    const out = take(this.buckets.get(key) ?? null, now, limit, cost, countRefused);
    // No TTL and no delete: lru-cache removes an entry that is its last one with a clear(), which
    // walks arrays sized for maxKeys (milliseconds for a million) — per connection on a quiet
    // gateway. An old bucket reads as full anyway (tokensAt); the LRU bound keeps memory bounded.
    this.buckets.set(key, out.state);
    return { allowed: out.allowed, remaining: out.remaining, retryAfterMs: out.retryAfterMs };
  }

  peek(key: string, limit: BucketLimit): number {
    return tokensAt(this.buckets.get(key) ?? null, this.now(), limit);
  }

  acquire(key: string, lease: string, max: number, ttlMs: number): LeaseResult {
    const now = this.now();
    let set = this.leases.get(key);
    if (set === undefined) {
      set = new Map();
      this.leases.set(key, set);
    }
    for (const [id, until] of set) if (until <= now) set.delete(id);
    if (set.has(lease) || set.size < max) {
      set.set(lease, now + ttlMs);
      return { allowed: true, count: set.size };
    }
    return { allowed: false, count: set.size };
  }

  release(key: string, lease: string): void {
    // the empty set stays (see take: no lru-cache delete); least recently used sets are evicted
    this.leases.get(key)?.delete(lease);
  }

  /** Buckets and lease sets held (tests, the memory benchmark). */
  get size(): { buckets: number; leases: number } {
    return { buckets: this.bucketCache?.size ?? 0, leases: this.leaseCache?.size ?? 0 };
  }
}
