// Token-bucket math, pure: (state, now, limit, cost) -> {allowed, state}. A bucket holds at most
// `burst` tokens and refills at `rate` tokens per `perMs` milliseconds; an attempt costing `cost`
// tokens is allowed when that many are there. The stores (./rate-store.ts in memory,
// daemon/redis-store.ts in Redis, where a Lua script does the same arithmetic) keep the state;
// the clock is injected. Never throws: nonsense limits (rate or burst <= 0) allow everything.

export interface BucketLimit {
  /** Tokens added per `perMs`. */
  readonly rate: number;
  readonly perMs: number;
  /** Most tokens held (the largest burst allowed after a quiet spell). */
  readonly burst: number;
}

export interface BucketState {
  readonly tokens: number;
  /** When `tokens` was computed (ms, the store's clock). */
  readonly at: number;
}

export interface TakeResult {
  readonly allowed: boolean;
  /** Whole tokens left after this attempt (0 when refused). */
  readonly remaining: number;
  /** When refused: ms until the attempt would be allowed; 0 when allowed. */
  readonly retryAfterMs: number;
}

export interface TakeOutcome extends TakeResult {
  readonly state: BucketState;
}

/** Tokens at `now`: refilled since `state.at`, capped at burst (a clock going back adds nothing). */
export function tokensAt(state: BucketState | null, now: number, limit: BucketLimit): number {
  if (state === null) return limit.burst;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(limit.burst, state.tokens + (elapsed * limit.rate) / limit.perMs);
}

/**
 * One attempt. `countRefused`: a refused attempt still drains the bucket (down to -burst), so a
 * client that keeps hammering stays refused; without it (the default) refused attempts cost
 * nothing and a tempfailed client's retry is not counted twice.
 */
export function take(
  state: BucketState | null,
  now: number,
  limit: BucketLimit,
  cost = 1,
  countRefused = false,
): TakeOutcome {
  if (!(limit.rate > 0) || !(limit.burst > 0) || !(limit.perMs > 0)) {
    return {
      allowed: true,
      remaining: Number.MAX_SAFE_INTEGER,
      retryAfterMs: 0,
      state: { tokens: 0, at: now },
    };
  }
  const tokens = tokensAt(state, now, limit);
  if (tokens >= cost) {
    const left = tokens - cost;
    return { allowed: true, remaining: Math.floor(left), retryAfterMs: 0, state: { tokens: left, at: now } };
  }
  const left = countRefused ? Math.max(-limit.burst, tokens - cost) : tokens;
  const retryAfterMs = Math.ceil(((cost - left) * limit.perMs) / limit.rate);
  return { allowed: false, remaining: 0, retryAfterMs, state: { tokens: left, at: now } };
}

/** How long a bucket's state matters: after this it is full again and can be forgotten. */
export function idleMs(state: BucketState, limit: BucketLimit): number {
  if (!(limit.rate > 0)) return 0;
  return Math.ceil(((limit.burst - state.tokens) * limit.perMs) / limit.rate);
}
