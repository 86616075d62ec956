// What the load generator prints (bench/c/loadgen.c, print_results): one JSON object per run.
// Types only; read by bench/run.ts and bench/access-db.ts after JSON.parse (a field the C side
// stops printing shows up there as undefined, not here).

export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export type Stage =
  'optneg' | 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'eom';

export interface LoadgenResult {
  readonly messages_per_connection: number;
  readonly clients: string;
  readonly recipients: readonly string[];
  readonly body_bytes: number;
  readonly headers: number;
  /** --mime: the body is a multipart/mixed message with one attachment (older runs: absent). */
  readonly mime?: boolean;
  readonly negotiated: {
    readonly version: number;
    readonly actions: string;
    readonly protocol: string;
    readonly connections_differing: number;
    readonly macro_lists: Record<string, string>;
  } | null;
  readonly window_s: number;
  readonly messages: number;
  readonly messages_per_sec: number;
  readonly connections: number;
  readonly latency_us: Record<'message' | Stage, Latency | null>;
  readonly replies: Record<string, Record<string, number>>;
  readonly reply_samples: Record<string, string>;
  readonly modifications: Record<string, number>;
  readonly modification_samples: Record<string, string>;
  readonly dispositions: Record<string, number>;
  readonly errors: {
    readonly protocol: number;
    readonly unexpected_reply: number;
    readonly connect_failed: number;
    readonly connection_lost: number;
    readonly timeout: number;
    readonly total: number;
    readonly first: string | null;
  };
  readonly warnings: Record<string, number | string | null>;
  readonly totals: {
    readonly connections: number;
    readonly negotiated: number;
    readonly messages: number;
    readonly unfinished_at_end: number;
    readonly sent: Record<Exclude<Stage, 'optneg'>, number>;
  };
  readonly loadgen_cpu_pct: number;
  /** Only with --timeline MS. */
  readonly timeline?: Timeline;
}

/** The whole run cut into buckets by the time each message ended (--timeline MS). */
export interface Timeline {
  /** Wall clock (ms since the epoch) at the start of bucket 0, the generator's start. */
  readonly t0_epoch_ms: number;
  readonly bucket_ms: number;
  /** Where the warm-up ends, ms after t0. */
  readonly warmup_end_ms: number;
  readonly buckets: readonly TimelineBucket[];
}

export interface TimelineBucket {
  readonly messages: number;
  readonly p50_us: number | null;
  readonly p99_us: number | null;
  readonly max_us: number | null;
  readonly tempfail: number;
  readonly errors: number;
}
