// Prometheus metrics: one Metrics object per process owns a prom-client Registry (never the
// module-global default registry) with every series the daemon exports, and hands small observer
// objects to the parts that see the events (the milter server, the DNS cache and blocklist checks,
// the policy adapter, the composition root). Created by daemon/serve.ts when `metrics.enabled`;
// without it nothing here is loaded into the hot path. Served by MetricsHttpServer on a loopback
// HTTP listener of its own (GET /metrics, GET /healthz); with `workers` above 1 the cluster primary
// serves the sum over its workers (prom-client's AggregatorRegistry over the cluster IPC channel)
// and the workers serve nothing themselves.
//
// The hot path stays cheap: a frequent event adds 1 to a plain number in a cell resolved once per
// label set (nested maps, no string building per event; prom-client's own children hash their
// labels on every inc); the cells are copied into the prom-client metrics when the registry is
// read. Values read from the runtime (generation, access map, zone health, Redis state) are read
// at scrape time only. How it fails: an observer never throws into its caller; a scrape that fails
// (a worker that does not answer in 5 s) is answered 500 with the reason; a listener that cannot
// bind fails the start.

import http from 'node:http';
import type { Histogram as HistogramType } from 'prom-client';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision } from '../milter/handler.js';
import type { ServerObserver } from '../milter/server.js';
import type { PolicyStage } from '../rules/check.js';
import type { DnsCacheObserver } from '../rules/dns-cache.js';
import type { DnsblObserver } from '../rules/dnsbl.js';
import type { StageOutcome } from '../rules/engine.js';
import { RedisRateStore } from './redis-store.js';
import type { Runtime, RuntimeObserver } from './runtime.js';
import { VERSION } from './version.js';

/** Engine time per stage: synchronous stages take microseconds, DNS-bound ones milliseconds. */
const STAGE_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/** One blocklist zone's answer, cached (microseconds) or from the resolver (milliseconds, seconds). */
const DNSBL_BUCKETS = [0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4];

/** A counter's value for one label set, counted in place. */
interface CounterCell {
  value: number;
}

interface CounterSeries<L extends string> extends CounterCell {
  readonly labels: Partial<Record<L, string>>;
  reported: number;
}

/** `{name: value}` for the label names in order. */
function labelObject<L extends string>(
  names: readonly L[],
  values: readonly string[],
): Partial<Record<L, string>> {
  const labels: Partial<Record<L, string>> = {};
  names.forEach((n, i) => (labels[n] = values[i] ?? ''));
  return labels;
}

/** A prom-client Counter fed from cells: events add to a number, a scrape adds the difference. */
class CellCounter<L extends string> {
  private readonly series: CounterSeries<L>[] = [];
  readonly counter: Counter<L>;

  constructor(
    registry: Registry,
    name: string,
    help: string,
    private readonly labelNames: readonly L[],
  ) {
    const series = this.series;
    this.counter = new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect(this: Counter<L>) {
        for (const s of series) {
          if (s.value === s.reported) continue;
          if (labelNames.length === 0) this.inc(s.value - s.reported);
          else this.inc(s.labels, s.value - s.reported);
          s.reported = s.value;
        }
      },
    });
  }

  cell(values: readonly string[] = []): CounterCell {
    const s: CounterSeries<L> = { labels: labelObject(this.labelNames, values), value: 0, reported: 0 };
    this.series.push(s);
    return s;
  }
}

/** A histogram's buckets for one label set, counted in place. */
class HistogramCell {
  private readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    if (i < b.length) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count++;
  }

  /** Cumulative bucket counts, as Prometheus wants them. */
  cumulative(): number[] {
    let acc = 0;
    return this.counts.map((c) => (acc += c));
  }
}

type HistogramData<L extends string> = Awaited<ReturnType<HistogramType<L | 'le'>['get']>>;

/**
 * A prom-client Histogram whose values come from cells: it is registered, formatted and
 * aggregated across workers like any other, but an observation costs a few additions.
 */
class CellHistogram<L extends string> extends Histogram<L | 'le'> {
  private readonly cells: {
    readonly labels: Partial<Record<L | 'le', string | number>>;
    readonly cell: HistogramCell;
  }[] = [];

  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly helpText: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[],
  ) {
    super({ name: metricName, help: helpText, labelNames, buckets: [...bounds], registers: [registry] });
  }

  cell(values: readonly string[]): HistogramCell {
    const cell = new HistogramCell(this.bounds);
    const labels = labelObject<L | 'le'>(this.labelNames, values);
    this.cells.push({ labels, cell });
    return cell;
  }

  /** What the cluster aggregation reads (Registry#getMetricsAsJSON). */
  override get(): Promise<HistogramData<L>> {
    return this.getForPromString();
  }

  /** What Registry#metrics() reads: the cells as buckets, sum and count. */
  // eslint-disable-next-line @typescript-eslint/require-await
  async getForPromString(): Promise<HistogramData<L>> {
    const values: HistogramData<L>['values'] = [];
    const bucket = `${this.metricName}_bucket`;
    for (const { labels, cell } of this.cells) {
      if (cell.count === 0) continue;
      const cumulative = cell.cumulative();
      this.bounds.forEach((le, i) =>
        values.push({ labels: { ...labels, le }, value: cumulative[i] ?? 0, metricName: bucket }),
      );
      values.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: bucket });
      values.push({ labels, value: cell.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels, value: cell.count, metricName: `${this.metricName}_count` });
    }
    const data = { name: this.metricName, help: this.helpText, type: 'histogram', aggregator: 'sum', values };
    // prom-client's typings declare `type` as a numeric enum; at run time it is this string
    return data as unknown as HistogramData<L>;
  }
}

/** Cells by label values, resolved through nested maps (no key string built per event). */
class CellTree<C> {
  private readonly root = new Map<string, unknown>();
  constructor(private readonly make: (values: readonly string[]) => C) {}

  private level(m: Map<string, unknown>, k: string): Map<string, unknown> {
    let next = m.get(k) as Map<string, unknown> | undefined;
    if (next === undefined) {
      next = new Map();
      m.set(k, next);
    }
    return next;
  }

  private leaf(m: Map<string, unknown>, k: string, values: () => readonly string[]): C {
    let c = m.get(k) as C | undefined;
    if (c === undefined) {
      c = this.make(values());
      m.set(k, c);
    }
    return c;
  }

  of1(a: string): C {
    return this.leaf(this.root, a, () => [a]);
  }
  of2(a: string, b: string): C {
    return this.leaf(this.level(this.root, a), b, () => [a, b]);
  }
  of4(a: string, b: string, c: string, d: string): C {
    const m = this.level(this.level(this.level(this.root, a), b), c);
    return this.leaf(m, d, () => [a, b, c, d]);
  }
}

type DecisionAction = 'accept' | 'reject' | 'tempfail' | 'discard';

function decisionAction(kind: Decision['kind']): DecisionAction {
  return kind === 'continue' ? 'accept' : kind;
}

/** What a check in observe or tag mode would have done (an observed `ok` is an accept). */
function verdictAction(a: 'ok' | 'reject' | 'tempfail' | 'discard' | undefined): DecisionAction {
  return a === 'ok' ? 'accept' : (a ?? 'reject');
}

/** The three-digit code at the start of a reply text, as a number (0 when there is none). */
function replyCode(reply: string): number {
  if (reply.length < 3) return 0;
  const a = reply.charCodeAt(0) - 48;
  const b = reply.charCodeAt(1) - 48;
  const c = reply.charCodeAt(2) - 48;
  if (a < 2 || a > 5 || b < 0 || b > 9 || c < 0 || c > 9) return 0;
  return a * 100 + b * 10 + c;
}

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  readonly defaultMetrics?: boolean;
}

/** The process's metrics: the registry, the observers handed out, the values read at scrape time. */
export class Metrics {
  readonly registry = new Registry();
  private runtime: (() => Runtime | null) | null = null;

  private readonly decisions: CellTree<CounterCell>;
  private readonly replies: CellTree<CounterCell>;
  private readonly checkErrors: CellTree<CounterCell>;
  private readonly rateRefusals: CellTree<CounterCell>;
  private readonly stageTime: CellTree<HistogramCell>;
  private readonly dnsblQueries: CellTree<CounterCell>;
  private readonly dnsblLatency: CellTree<HistogramCell>;
  private readonly protocolErrors: CellTree<CounterCell>;
  private readonly refused: CellTree<CounterCell>;
  private readonly connectionsTotal: CounterCell;
  private connectionsOpen = 0;
  private readonly cacheHits: CounterCell;
  private readonly cacheMisses: CounterCell;
  private readonly cacheCoalesced: CounterCell;
  private readonly accessReloads: Counter<'result'>;
  private readonly accessLastReload: Gauge<'result'>;
  private readonly configReloads: Counter<'result'>;
  private readonly bans: Counter;
  private readonly redisErrors: Counter<'kind'>;
  private readonly redisUnavailable: Counter;

  constructor(options: MetricsOptions = {}) {
    const r = this.registry;
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: r });
    new Gauge({
      name: 'milter_policy_info',
      help: 'The running version (always 1)',
      labelNames: ['version'],
      registers: [r],
      aggregator: 'max',
    }).set({ version: VERSION }, 1);

    const decisions = new CellCounter(
      r,
      'milter_policy_decisions_total',
      'Decisions: mode="enforce" one per decision line (what was done, and the check that decided, "none" if none); mode="observe"/"tag" one per observe-mode or tag-mode finding (what the check would have done)',
      ['stage', 'action', 'check', 'mode'] as const,
    );
    this.decisions = new CellTree((v) => decisions.cell(v));
    const replies = new CellCounter(
      r,
      'milter_policy_replies_total',
      'Refusals sent to the SMTP client, by reply code ("4xx"/"5xx": the MTA\'s default text)',
      ['code'] as const,
    );
    this.replies = new CellTree((v) => replies.cell(v));
    const checkErrors = new CellCounter(
      r,
      'milter_policy_check_errors_total',
      'Checks that failed (timeout, lookup or store error) in a decision; their on_error applied',
      ['check'] as const,
    );
    this.checkErrors = new CellTree((v) => checkErrors.cell(v));
    const rate = new CellCounter(
      r,
      'milter_policy_rate_limit_refusals_total',
      'Replies refused by a rate limit (limit name, ClientRate, ClientConn, bad_recipients); mode="observe": would have been',
      ['limit', 'mode'] as const,
    );
    this.rateRefusals = new CellTree((v) => rate.cell(v));
    const stage = new CellHistogram(
      r,
      'milter_policy_stage_seconds',
      'Time the policy engine took to decide one stage',
      ['stage'] as const,
      STAGE_BUCKETS,
    );
    this.stageTime = new CellTree((v) => stage.cell(v));
    const queries = new CellCounter(
      r,
      'milter_policy_dnsbl_queries_total',
      'Blocklist zone lookups by their answer (cached answers included)',
      ['zone', 'result'] as const,
    );
    this.dnsblQueries = new CellTree((v) => queries.cell(v));
    const latency = new CellHistogram(
      r,
      'milter_policy_dnsbl_lookup_seconds',
      'Time until a blocklist zone answered (cached answers included)',
      ['zone'] as const,
      DNSBL_BUCKETS,
    );
    this.dnsblLatency = new CellTree((v) => latency.cell(v));
    const cache = (name: string, help: string): CounterCell =>
      new CellCounter(r, name, help, [] as const).cell();
    this.cacheHits = cache(
      'milter_policy_dnsbl_cache_hits_total',
      'DNS lookups answered from the blocklist cache',
    );
    this.cacheMisses = cache('milter_policy_dnsbl_cache_misses_total', 'DNS lookups sent to the resolver');
    this.cacheCoalesced = cache(
      'milter_policy_dnsbl_cache_coalesced_total',
      'DNS lookups that joined an identical query in flight',
    );
    const protocol = new CellCounter(
      r,
      'milter_policy_protocol_errors_total',
      'Milter connections closed for a protocol error (docs/errors.md codes)',
      ['code'] as const,
    );
    this.protocolErrors = new CellTree((v) => protocol.cell(v));
    const refused = new CellCounter(
      r,
      'milter_policy_connections_refused_total',
      'MTA connections closed at once (max_connections, shutting_down)',
      ['reason'] as const,
    );
    this.refused = new CellTree((v) => refused.cell(v));
    this.connectionsTotal = new CellCounter(
      r,
      'milter_policy_connections_total',
      'MTA connections accepted',
      [] as const,
    ).cell();
    const open = (): number => this.connectionsOpen;
    new Gauge({
      name: 'milter_policy_connections_open',
      help: 'MTA connections open now',
      registers: [r],
      collect(this: Gauge) {
        this.set(open());
      },
    });

    this.accessReloads = new Counter({
      name: 'milter_policy_access_db_reloads_total',
      help: 'Access map reloads: ok = swapped in, refused = the file did not load and the old map serves',
      labelNames: ['result'],
      registers: [r],
    });
    this.accessLastReload = new Gauge({
      name: 'milter_policy_access_db_last_reload_timestamp_seconds',
      help: "When the access map was last reloaded (or refused), by that reload's result",
      labelNames: ['result'],
      registers: [r],
      aggregator: 'max',
    });
    this.redisErrors = new Counter({
      name: 'milter_policy_redis_errors_total',
      help: 'Redis store calls that failed: kind="unavailable" (no answer within store.redis.timeout, no connection; store.redis.on_failure answered), kind="reply" (an error reply)',
      labelNames: ['kind'],
      registers: [r],
    });
    this.bans = new Counter({
      name: 'milter_policy_bans_total',
      help: 'Clients or sources banned (spam trap, bad-recipient throttle with ban); each is also a client_banned log line',
      registers: [r],
    });
    this.configReloads = new Counter({
      name: 'milter_policy_config_reloads_total',
      help: 'Configuration reloads (SIGHUP): ok, or refused (the old configuration serves)',
      labelNames: ['result'],
      registers: [r],
    });
    this.redisUnavailable = new Counter({
      name: 'milter_policy_redis_unavailable_total',
      help: 'Times the Redis store stopped answering (redis_unavailable); store.redis.on_failure applied meanwhile',
      registers: [r],
    });
    this.runtimeGauges();
  }

  /** Where the scrape-time values come from (the runtime in force). */
  watch(runtime: () => Runtime | null): void {
    this.runtime = runtime;
  }

  private runtimeGauges(): void {
    const r = this.registry;
    const current = (): Runtime | null => this.runtime?.() ?? null;
    new Gauge({
      name: 'milter_policy_config_generation',
      help: 'Generation of the configuration in force (1 at start, +1 per reload)',
      registers: [r],
      aggregator: 'max',
      collect(this: Gauge) {
        this.set(current()?.generation ?? 0);
      },
    });
    new Gauge({
      name: 'milter_policy_access_db_info',
      help: 'The access map in force, by version (sha256 of its contents); 1',
      labelNames: ['version'],
      registers: [r],
      aggregator: 'max',
      collect(this: Gauge<'version'>) {
        this.reset();
        const a = current()?.accessDb;
        if (a !== null && a !== undefined) this.set({ version: a.version }, 1);
      },
    });
    new Gauge({
      name: 'milter_policy_access_db_entries',
      help: 'Entries of the access map in force (0 without access_db)',
      registers: [r],
      aggregator: 'max',
      collect(this: Gauge) {
        this.set(current()?.accessDb?.size ?? 0);
      },
    });
    new Gauge({
      name: 'milter_policy_dnsbl_zone_enabled',
      help: 'Blocklist zones in use: 1, or 0 while the zone fails its RFC 5782 probe',
      labelNames: ['zone'],
      registers: [r],
      aggregator: 'min',
      collect(this: Gauge<'zone'>) {
        this.reset();
        const rt = current();
        if (rt === null) return;
        const health = rt.services.health;
        for (const z of rt.config.dnsbl.zones) {
          const zone = z.zone.toLowerCase().replace(/\.$/, '');
          this.set({ zone }, health.isDown(z.zone) ? 0 : 1);
        }
      },
    });
    new Gauge({
      name: 'milter_policy_redis_up',
      help: 'The Redis store answers (1) or not (0); absent with store.type memory',
      labelNames: ['mode'],
      registers: [r],
      aggregator: 'min',
      collect(this: Gauge<'mode'>) {
        this.reset();
        const rt = current();
        if (rt === null || !(rt.services.rates instanceof RedisRateStore)) return;
        const mode = rt.config.store.redis.cluster === undefined ? 'standalone' : 'cluster';
        this.set({ mode }, rt.services.rates.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'milter_policy_redis_fallback_active',
      help: 'Redis is not answering and store.redis.on_failure (label) decides instead: 1; absent with store.type memory',
      labelNames: ['on_failure'],
      registers: [r],
      aggregator: 'max',
      collect(this: Gauge<'on_failure'>) {
        this.reset();
        const rt = current();
        if (rt === null || !(rt.services.rates instanceof RedisRateStore)) return;
        this.set({ on_failure: rt.config.store.redis.on_failure }, rt.services.rates.healthy ? 0 : 1);
      },
    });
  }

  /** For the milter server: connections and protocol errors. */
  readonly server: ServerObserver = {
    connectionOpened: () => {
      this.connectionsOpen++;
      this.connectionsTotal.value++;
    },
    connectionClosed: () => {
      this.connectionsOpen--;
    },
    connectionRefused: (reason) => {
      this.refused.of1(reason).value++;
    },
    protocolError: (code) => {
      this.protocolErrors.of1(code).value++;
    },
  };

  /** For the DNS cache in front of the blocklist resolver. */
  readonly dnsCache: DnsCacheObserver = {
    cacheHit: () => {
      this.cacheHits.value++;
    },
    cacheMiss: () => {
      this.cacheMisses.value++;
    },
    coalesced: () => {
      this.cacheCoalesced.value++;
    },
  };

  /** For the DNSBL and RHSBL checks: every zone's answer and how long it took. */
  readonly dnsbl: DnsblObserver = {
    zoneLookup: (zone, result, seconds) => {
      this.dnsblQueries.of2(zone, result).value++;
      this.dnsblLatency.of1(zone).observe(seconds);
    },
  };

  /** For the runtime (engine timing, DNS) and the policy adapter (decisions). */
  readonly policy: RuntimeObserver = {
    dnsCache: this.dnsCache,
    dnsbl: this.dnsbl,
    stage: (stage, ms) => {
      this.stageTime.of1(stage).observe(ms / 1000);
    },
    decision: (stage, decision, rule, o, reply) => this.decision(stage, decision, rule, o, reply),
  };

  /** One decision line: what was done and why, what observe/tag mode found, what failed. */
  decision(
    stage: PolicyStage,
    decision: Decision,
    rule: string | null,
    o: StageOutcome,
    reply: string | null,
  ): void {
    const action = decisionAction(decision.kind);
    this.decisions.of4(stage, action, rule ?? 'none', 'enforce').value++;
    if (action === 'reject' || action === 'tempfail') {
      const code = reply === null ? 0 : replyCode(reply);
      this.replies.of1(code === 0 ? (action === 'reject' ? '5xx' : '4xx') : String(code)).value++;
    }
    for (const t of o.trace) {
      switch (t.result) {
        case 'hit':
          if (t.check === 'rate_limit' || t.check === 'bad_recipients')
            this.rateRefusals.of2(limitName(t.check, t.reason), 'enforce').value++;
          break;
        case 'observed':
          this.decisions.of4(stage, verdictAction(t.action), t.check, 'observe').value++;
          if (t.check === 'rate_limit' || t.check === 'bad_recipients')
            this.rateRefusals.of2(limitName(t.check, t.reason), 'observe').value++;
          break;
        case 'tagged':
          this.decisions.of4(stage, verdictAction(t.action), t.check, 'tag').value++;
          break;
        case 'error':
          this.checkErrors.of1(t.check).value++;
          break;
        case 'pass':
          // observe-mode parts of a passing check (e.g. an observe zone of the DNSBLs)
          if (t.observed !== undefined)
            for (let i = 0; i < t.observed.length; i++)
              this.decisions.of4(stage, 'reject', t.check, 'observe').value++;
          break;
        case 'skip':
          break;
      }
    }
  }

  accessReload(ok: boolean): void {
    const result = ok ? 'ok' : 'refused';
    this.accessReloads.inc({ result });
    this.accessLastReload.reset();
    this.accessLastReload.set({ result }, Date.now() / 1000);
  }

  redisError(kind: 'reply' | 'unavailable'): void {
    this.redisErrors.inc({ kind });
  }

  banned(): void {
    this.bans.inc();
  }

  configReload(ok: boolean): void {
    this.configReloads.inc({ result: ok ? 'ok' : 'refused' });
  }

  redisState(state: 'up' | 'down'): void {
    if (state === 'down') this.redisUnavailable.inc();
  }

  /** The exposition text of this process's registry. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * In a cluster worker: answer the primary's metrics requests with this registry (prom-client's
   * cluster IPC; the primary's AggregatorRegistry sums the workers).
   */
  serveToPrimary(): void {
    AggregatorRegistry.setRegistries([this.registry]);
    // The constructor installs prom-client's worker-side message listener (once per process).
    new AggregatorRegistry();
  }
}

/** rate_limit's refusal reasons start with the limit's name (`name: more than ...`). */
function limitName(check: string, reason: string | undefined): string {
  if (check !== 'rate_limit' || reason === undefined) return check;
  const colon = reason.indexOf(':');
  return colon > 0 ? reason.slice(0, colon) : check;
}

/**
 * The cluster primary's view: the workers' registries summed (gauges as each metric says: the
 * lowest zone/Redis health, the highest generation), plus the primary's own worker counts.
 */
export class ClusterMetrics {
  private readonly aggregator = new AggregatorRegistry();
  private readonly own = new Registry();
  private readonly restarts: Counter;

  constructor(workers: () => { configured: number; ready: number }) {
    new Gauge({
      name: 'milter_policy_cluster_workers',
      help: 'Worker processes: configured, and ready (started and serving)',
      labelNames: ['state'],
      registers: [this.own],
      collect(this: Gauge<'state'>) {
        const w = workers();
        this.set({ state: 'configured' }, w.configured);
        this.set({ state: 'ready' }, w.ready);
      },
    });
    this.restarts = new Counter({
      name: 'milter_policy_cluster_worker_restarts_total',
      help: 'Workers that died and were replaced',
      registers: [this.own],
    });
  }

  workerRestarted(): void {
    this.restarts.inc();
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const [workers, own] = await Promise.all([this.aggregator.clusterMetrics(), this.own.metrics()]);
    return { contentType: this.aggregator.contentType, body: `${workers}${own}` };
  }
}

export type HealthState = 'ok' | 'starting' | 'draining';

export interface MetricsHttpOptions {
  readonly host: string;
  readonly port: number;
  /** Where the metrics are (default /metrics); /healthz is fixed. */
  readonly path: string;
  readonly render: () => Promise<{ contentType: string; body: string }>;
  readonly health: () => HealthState;
  /** The daemon's logger (a listener that fails after the start). */
  readonly log: { error(obj: object, msg?: string): void };
}

/**
 * The loopback HTTP listener: GET /metrics (the exposition text), GET /healthz (200 `ok` when
 * every milter listener listens and the rules are loaded; 503 `starting` / `draining`).
 */
export class MetricsHttpServer {
  private readonly server: http.Server;
  private bound = '';

  constructor(private readonly o: MetricsHttpOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  /** `http://host:port/metrics` once listening. */
  get url(): string {
    return this.bound;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(
          new Error(
            `metrics: cannot listen on ${this.o.host}:${this.o.port}: ${e.code ?? ''} ${e.message}`.trim(),
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.o.host, port: this.o.port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (e) =>
          this.o.log.error({ event: 'listener_error', listen: 'metrics', err: e }, 'metrics listener failed'),
        );
        const a = this.server.address();
        const port = typeof a === 'object' && a !== null ? a.port : this.o.port;
        const host = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
        this.bound = `http://${host}:${port}${this.o.path}`;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q < 0 ? url : url.slice(0, q);
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (p !== this.o.path && p !== '/healthz') {
      send(404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (p === '/healthz') {
      const h = this.o.health();
      send(h === 'ok' ? 200 : 503, 'text/plain; charset=utf-8', `${h}\n`);
      return;
    }
    this.o.render().then(
      (m) => send(200, m.contentType, m.body),
      // the scraper records the failure (Prometheus: the target's last error); nothing to log
      (e: unknown) =>
        send(
          500,
          'text/plain; charset=utf-8',
          `metrics could not be collected: ${e instanceof Error ? e.message : String(e)}\n`,
        ),
    );
  }
}
