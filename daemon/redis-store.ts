// Rate-limit buckets, connection leases and client bans in Redis, so several gateways share one
// limit and see each other's bans. Built by the daemon when the configuration names a Redis (or a
// Redis Cluster) and handed to the checks as their RateStore and BanStore; the daemon closes it on
// shutdown. Each operation is one Lua script on one key (EVALSHA with ioredis's NOSCRIPT fallback),
// reading the Redis server's clock (TIME) so gateways with skewed clocks agree; the bucket script
// is rules/token-bucket.ts's arithmetic. Keys are `${prefix}{${key}}:bucket|leases|ban`: the hash
// tag puts everything about one logical key in one Redis Cluster slot.
//
// How it fails: never hangs, never throws synchronously. A call that errors or takes longer than
// `timeoutMs` follows `onFailure` — `fallback` answers from local memory stores, `allow` allows,
// `tempfail` rejects with "Redis is unavailable" (the check applies its on_error). Writes nobody
// waits for (ban, release) never reject: under `allow`/`tempfail` they are dropped. Once a call
// has failed for want of a connection, calls go straight to the policy, without waiting, until
// ioredis reports `ready` again; a timed-out connection is dropped and reconnected (capped backoff,
// ≤ 1 s) so a stalled Redis is noticed coming back. `onState` hears each up/down transition once.

import { Cluster, Redis, ReplyError } from 'ioredis';
import type { Ban, BanStore } from '../rules/ban-store.js';
import { MemoryBanStore } from '../rules/ban-store.js';
import type { LeaseResult, MaybePromise, RateStore } from '../rules/rate-store.js';
import { MemoryRateStore } from '../rules/rate-store.js';
import type { BucketLimit, TakeResult } from '../rules/token-bucket.js';

export type RedisFailurePolicy = 'fallback' | 'allow' | 'tempfail';
export type RedisState = 'up' | 'down';

export interface RedisStoreOptions {
  /** Standalone Redis (ignored when `cluster` is given). Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** Redis Cluster seed nodes, `host:port` or `[v6]:port`. */
  readonly cluster?: readonly string[];
  /** Default `mp:`. */
  readonly prefix?: string;
  /** Budget per call in ms, default 50. */
  readonly timeoutMs?: number;
  /** Default `fallback`. */
  readonly onFailure?: RedisFailurePolicy;
  /** The stores `fallback` answers from (default: fresh memory stores). */
  readonly local?: LocalStores;
  readonly onState?: (state: RedisState, detail: string) => void;
  /** Every call that failed: an error reply, or no answer within the budget / no connection. */
  readonly onCallError?: (kind: 'reply' | 'unavailable') => void;
}

export interface LocalStores {
  readonly rates: RateStore;
  readonly bans: BanStore;
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_REDIS_PREFIX = 'mp:';
export const DEFAULT_REDIS_TIMEOUT_MS = 50;

// Server time in ms. Every script starts with it (scripts may call TIME since Redis 5: effects are
// replicated, not the script).
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// A bucket is a HASH {tokens, at}; rules/token-bucket.ts take() with the same names. Returns
// {allowed 0/1, remaining (-1: unlimited), retryAfterMs}.
const TAKE = `${NOW}local rate, per, burst = tonumber(ARGV[1]) or 0, tonumber(ARGV[2]) or 0, tonumber(ARGV[3]) or 0
local cost, countRefused = tonumber(ARGV[4]) or 0, ARGV[5] == '1'
if not (rate > 0) or not (burst > 0) or not (per > 0) then return {1, -1, 0} end
local tokens = burst
local st = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if st[1] and st[2] then
  tokens = math.min(burst, tonumber(st[1]) + math.max(0, now - tonumber(st[2])) * rate / per)
end
local allowed, left, retry = 1, tokens - cost, 0
if tokens < cost then
  allowed = 0
  left = tokens
  if countRefused then left = math.max(-burst, tokens - cost) end
  retry = math.ceil((cost - left) * per / rate)
end
local idle = math.ceil((burst - left) * per / rate)
if idle > 0 then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', left), 'at', now)
  redis.call('PEXPIRE', KEYS[1], idle)
else
  redis.call('DEL', KEYS[1])
end
if allowed == 1 then return {1, math.floor(left), 0} end
return {0, 0, retry}
`;

// tokensAt(): the bucket's tokens now, as a string (Lua numbers become integers in replies).
const PEEK = `${NOW}local rate, per, burst = tonumber(ARGV[1]) or 0, tonumber(ARGV[2]) or 0, tonumber(ARGV[3]) or 0
local tokens = burst
local st = redis.call('HMGET', KEYS[1], 'tokens', 'at')
if st[1] and st[2] and per > 0 then
  tokens = math.min(burst, tonumber(st[1]) + math.max(0, now - tonumber(st[2])) * rate / per)
end
return string.format('%.17g', tokens)
`;

// Leases are a ZSET of lease ids scored by expiry (server ms); the key lives until the last one
// expires. Returns {allowed 0/1, count}.
const ACQUIRE = `${NOW}local max, ttl = tonumber(ARGV[2]) or 0, tonumber(ARGV[3]) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and count >= max then return {0, count} end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
if not held then count = count + 1 end
return {1, count}
`;

const RELEASE = `redis.call('ZREM', KEYS[1], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 0
`;

// A ban is a HASH {reason, until} that expires with the ban.
const BAN = `${NOW}local ms = math.ceil(tonumber(ARGV[2]) or 0)
if not (ms > 0) then redis.call('DEL', KEYS[1]) return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'until', now + ms)
redis.call('PEXPIRE', KEYS[1], ms)
return 0
`;

const BANNED = `return redis.call('HMGET', KEYS[1], 'reason', 'until')`;

const SCRIPTS = {
  mpTake: TAKE,
  mpPeek: PEEK,
  mpAcquire: ACQUIRE,
  mpRelease: RELEASE,
  mpBan: BAN,
  mpBanned: BANNED,
} as const;

/** The commands defineCommand adds (key first, then ARGV). */
interface Scripts {
  mpTake(key: string, ...argv: string[]): Promise<[number, number, number]>;
  mpPeek(key: string, ...argv: string[]): Promise<string>;
  mpAcquire(key: string, ...argv: string[]): Promise<[number, number]>;
  mpRelease(key: string, lease: string): Promise<number>;
  mpBan(key: string, ...argv: string[]): Promise<number>;
  mpBanned(key: string): Promise<[string | null, string | null]>;
}

type Client = (Redis | Cluster) & Scripts;

/** `host:port` or `[v6]:port`. */
function seedNode(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`redis cluster node "${s}": expected host:port`);
  }
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

const memoryStores = (): LocalStores => ({ rates: new MemoryRateStore(), bans: new MemoryBanStore() });

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class RedisRateStore implements RateStore, BanStore {
  private readonly client: Client;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly onFailure: RedisFailurePolicy;
  /** What `fallback` answers from (none needed under the other policies). */
  private local: LocalStores | undefined;
  private readonly onState: ((state: RedisState, detail: string) => void) | undefined;
  private readonly onCallError: ((kind: 'reply' | 'unavailable') => void) | undefined;
  /** Connected and ready, and no call has failed for want of Redis since. */
  private up = false;
  /** What onState was last told (nothing yet counts as up: the first report is a failure). */
  private reported: RedisState = 'up';
  private lastError = 'not connected yet';
  private closing = false;
  /** Where Redis is, for messages (no password). */
  private readonly where: string;

  constructor(o: RedisStoreOptions = {}) {
    this.prefix = o.prefix ?? DEFAULT_REDIS_PREFIX;
    this.timeoutMs = o.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
    this.onFailure = o.onFailure ?? 'fallback';
    // Made up front: a 1M-key MemoryRateStore takes a while to allocate.
    this.local = o.local ?? (this.onFailure === 'fallback' ? memoryStores() : undefined);
    this.onState = o.onState;
    this.onCallError = o.onCallError;
    // Keep reconnecting for ever, never more than a second apart, so a restarted Redis is used again.
    const retry = (times: number): number => Math.min(50 * times, 1000);
    // A command cut off by a lost connection fails at once, never resent later: its caller has had
    // the failure policy's answer by then, and a late resend would count a take twice.
    // No commandTimeout: within() is the budget (one timer per call, not two); a command it gave
    // up on makes failed() force a reconnect, which rejects what is still pending. Auto-pipelining
    // sends the calls of one stage (a connection's buckets and lease) in one write.
    const common = {
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: Math.max(1000, this.timeoutMs),
      enableAutoPipelining: true,
    };
    const client =
      o.cluster !== undefined && o.cluster.length > 0
        ? new Cluster(o.cluster.map(seedNode), {
            enableOfflineQueue: false,
            enableAutoPipelining: true,
            clusterRetryStrategy: retry,
            redisOptions: common,
          })
        : new Redis(o.url ?? DEFAULT_REDIS_URL, {
            ...common,
            enableOfflineQueue: false,
            retryStrategy: retry,
          });
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua, numberOfKeys: 1 });
    this.client = client as Client;
    this.where =
      client instanceof Cluster
        ? `cluster ${o.cluster?.join(',')}`
        : (client.options.path ?? `${client.options.host}:${client.options.port}`);
    this.client.on('ready', () => this.markUp());
    this.client.on('error', (e: unknown) => this.markDown(message(e)));
    this.client.on('close', () => this.markDown('connection closed'));
    this.client.on('end', () => this.markDown('connection ended'));
  }

  /** True while calls go to Redis. */
  get healthy(): boolean {
    return this.up;
  }

  take(key: string, limit: BucketLimit, cost: number, countRefused: boolean): Promise<TakeResult> {
    return this.call(
      'take',
      async () => {
        const argv = [limit.rate, limit.perMs, limit.burst, cost].map(String);
        const [allowed, remaining, retryAfterMs] = await this.client.mpTake(
          this.key(key, 'bucket'),
          ...argv,
          countRefused ? '1' : '0',
        );
        return {
          allowed: allowed === 1,
          remaining: remaining < 0 ? Number.MAX_SAFE_INTEGER : remaining,
          retryAfterMs,
        };
      },
      (l) => l.rates.take(key, limit, cost, countRefused),
      { allowed: true, remaining: Number.MAX_SAFE_INTEGER, retryAfterMs: 0 },
    );
  }

  peek(key: string, limit: BucketLimit): Promise<number> {
    return this.call(
      'peek',
      async () => {
        const argv = [limit.rate, limit.perMs, limit.burst].map(String);
        return Number(await this.client.mpPeek(this.key(key, 'bucket'), ...argv));
      },
      (l) => l.rates.peek(key, limit),
      limit.burst,
    );
  }

  acquire(key: string, lease: string, max: number, ttlMs: number): Promise<LeaseResult> {
    return this.call(
      'acquire',
      async () => {
        const argv = [lease, String(max), String(Math.ceil(ttlMs))];
        const [allowed, count] = await this.client.mpAcquire(this.key(key, 'leases'), ...argv);
        return { allowed: allowed === 1, count };
      },
      (l) => l.rates.acquire(key, lease, max, ttlMs),
      { allowed: true, count: 1 },
    );
  }

  async release(key: string, lease: string): Promise<void> {
    await this.write(
      'release',
      async () => {
        await this.client.mpRelease(this.key(key, 'leases'), lease);
      },
      (l) => l.rates.release(key, lease),
    );
  }

  async ban(key: string, reason: string, ms: number): Promise<void> {
    await this.write(
      'ban',
      async () => {
        await this.client.mpBan(this.key(key, 'ban'), reason, String(ms));
      },
      (l) => l.bans.ban(key, reason, ms),
    );
  }

  banned(key: string): Promise<Ban | null> {
    return this.call(
      'banned',
      async () => {
        const [reason, until] = await this.client.mpBanned(this.key(key, 'ban'));
        return reason === null || until === null ? null : { reason, until: Number(until) };
      },
      (l) => l.bans.banned(key),
      null,
    );
  }

  /** Quit (pending replies first, within the budget), then drop the connection. */
  async close(): Promise<void> {
    this.closing = true;
    this.up = false;
    try {
      await this.client.quit();
    } catch {
      // Not connected, or no reply in time: nothing to wait for.
    } finally {
      this.client.disconnect();
    }
  }

  /** The Redis key: the hash tag is the logical key, so its bucket, leases and ban share a slot. */
  key(key: string, kind: 'bucket' | 'leases' | 'ban'): string {
    return `${this.prefix}{${key}}:${kind}`;
  }

  /** Redis when it is up and answers within the budget; otherwise the failure policy. */
  private async call<T>(
    what: string,
    remote: () => Promise<T>,
    local: (l: LocalStores) => MaybePromise<T>,
    allowed: T,
  ): Promise<T> {
    if (this.up) {
      try {
        return await this.within(remote());
      } catch (e) {
        this.failed(e);
      }
    }
    switch (this.onFailure) {
      case 'fallback':
        return local((this.local ??= memoryStores()));
      case 'allow':
        return allowed;
      case 'tempfail':
        throw new Error(`Redis is unavailable (${what} at ${this.where}): ${this.lastError}`);
    }
  }

  /** A write nobody waits for: like call(), but dropped instead of rejected under `tempfail`. */
  private async write(
    what: string,
    remote: () => Promise<void>,
    local: (l: LocalStores) => MaybePromise<void>,
  ): Promise<void> {
    await this.call(what, remote, local, undefined).catch(() => undefined);
  }

  /** The budget; ioredis's commandTimeout alone would give a NOSCRIPT resend a second one. */
  private within<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /**
   * A failed call. An error reply (WRONGTYPE, OOM, a script error) means Redis is there: only this
   * call fails. Anything else (no connection, a timeout) marks Redis down; a connection that still
   * looks ready (the timeout case) is dropped and reconnected, so `ready` tells us when Redis
   * answers again.
   */
  private failed(e: unknown): void {
    const detail = message(e);
    this.lastError = detail;
    try {
      this.onCallError?.(e instanceof ReplyError ? 'reply' : 'unavailable');
    } catch {
      // a counter must not change what the store answers
    }
    if (e instanceof ReplyError) return;
    this.markDown(detail);
    if (this.client.status === 'ready') this.client.disconnect(true);
  }

  private markUp(): void {
    if (this.closing) return;
    this.up = true;
    if (this.reported === 'down') this.tell('up', `ready at ${this.where}`);
  }

  private markDown(detail: string): void {
    this.up = false;
    this.lastError = detail;
    if (this.closing || this.reported === 'down') return;
    this.tell('down', detail);
  }

  private tell(state: RedisState, detail: string): void {
    this.reported = state;
    try {
      this.onState?.(state, detail);
    } catch {
      // A listener's bug must not turn into a failed call or an error in the event loop.
    }
  }
}
