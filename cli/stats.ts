// `milter-policy stats`: the live counters of a running daemon for an admin at a terminal. Fetches
// the Prometheus text from the daemon's metrics listener (daemon/metrics.ts; `--url`, or the
// `metrics` section of `--config FILE`, or http://127.0.0.1:9464/metrics) and prints a compact
// table: connections and protocol errors, configuration and access map, Redis, decisions by stage,
// action and check, refusals by reply code, the blocklists per zone, rate-limit refusals, check
// errors, engine time per stage. `--watch N` reprints every N seconds with the change since the
// previous print. The parser and the printer are pure (parseMetrics, renderStats); exit 1 when the
// daemon cannot be reached, 2 for a usage error.

import { parseArgs } from 'node:util';
import { loadConfig } from '../daemon/config.js';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const DEFAULT_URL = 'http://127.0.0.1:9464/metrics';

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function numberOf(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/** The Prometheus text exposition format (0.0.4) as samples; comments and bad lines are skipped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    const body = m[3] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;
    for (let l = re.exec(body); l !== null; l = re.exec(body))
      labels[l[1] as string] = unescapeLabel(l[2] as string);
    const value = numberOf(m[4] as string);
    if (Number.isNaN(value) && m[4] !== 'NaN') continue;
    out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

class Samples {
  constructor(readonly all: readonly Sample[]) {}
  of(name: string): Sample[] {
    return this.all.filter((s) => s.name === name);
  }
  sum(name: string, where: Record<string, string> = {}): number {
    return this.of(name)
      .filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v))
      .reduce((a, s) => a + s.value, 0);
  }
  has(name: string): boolean {
    return this.all.some((s) => s.name === name);
  }
}

const n = (v: number): string => (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2));
const pct = (part: number, whole: number): string =>
  whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-';
const ms = (seconds: number): string => {
  const m = seconds * 1000;
  return m >= 100 ? m.toFixed(0) : m >= 1 ? m.toFixed(1) : m.toFixed(3);
};

/** Left-aligned text columns, right-aligned numbers. */
function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly boolean[],
): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]): string =>
    r
      .map((c, i) => (numeric[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [`  ${fmt(head)}`, ...rows.map((r) => `  ${fmt(r)}`)];
}

export interface RenderOptions {
  readonly url: string;
  readonly at: Date;
  /** The previous print's samples (--watch): counters show the change since then. */
  readonly previous?: readonly Sample[];
}

/** The samples as the admin's table. */
export function renderStats(samples: readonly Sample[], o: RenderOptions): string {
  const s = new Samples(samples);
  const prev = o.previous === undefined ? null : new Samples(o.previous);
  const delta = (name: string, where: Record<string, string>): string => {
    if (prev === null) return '';
    const d = s.sum(name, where) - prev.sum(name, where);
    return d === 0 ? '' : `+${n(d)}`;
  };
  const L: string[] = [];
  const version = s.of('milter_policy_info')[0]?.labels['version'];
  L.push(`milter-policy ${version ?? '?'}  ${o.url}  ${o.at.toISOString()}`);
  if (s.has('milter_policy_cluster_workers'))
    L.push(
      `workers       ${n(s.sum('milter_policy_cluster_workers', { state: 'ready' }))} of ${n(s.sum('milter_policy_cluster_workers', { state: 'configured' }))} ready, ${n(s.sum('milter_policy_cluster_worker_restarts_total'))} restarted`,
    );

  const refusedConn = s.of('milter_policy_connections_refused_total').filter((x) => x.value > 0);
  L.push(
    `connections   ${n(s.sum('milter_policy_connections_open'))} open, ${n(s.sum('milter_policy_connections_total'))} accepted` +
      (refusedConn.length > 0
        ? `, refused: ${refusedConn.map((x) => `${x.labels['reason'] ?? '?'} ${n(x.value)}`).join(', ')}`
        : ', none refused'),
  );
  const proto = s.of('milter_policy_protocol_errors_total').filter((x) => x.value > 0);
  L.push(
    `protocol      ${proto.length === 0 ? 'no errors' : `errors: ${proto.map((x) => `${x.labels['code'] ?? '?'} ${n(x.value)}`).join(', ')}`}`,
  );
  L.push(
    `config        generation ${n(s.sum('milter_policy_config_generation'))}, reloads ok ${n(s.sum('milter_policy_config_reloads_total', { result: 'ok' }))}, refused ${n(s.sum('milter_policy_config_reloads_total', { result: 'refused' }))}`,
  );
  const accessVersion = s.of('milter_policy_access_db_info')[0]?.labels['version'];
  if (accessVersion === undefined) L.push('access_db     off');
  else {
    const last = s
      .of('milter_policy_access_db_last_reload_timestamp_seconds')
      .sort((a, b) => b.value - a.value)[0];
    const when =
      last === undefined
        ? ''
        : ` (last: ${last.labels['result'] ?? '?'}, ${new Date(last.value * 1000).toISOString()})`;
    L.push(
      `access_db     ${accessVersion.slice(0, 19)}…  ${n(s.sum('milter_policy_access_db_entries'))} entries, reloads ok ${n(s.sum('milter_policy_access_db_reloads_total', { result: 'ok' }))}, refused ${n(s.sum('milter_policy_access_db_reloads_total', { result: 'refused' }))}${when}`,
    );
  }
  const redis = s.of('milter_policy_redis_up')[0];
  if (redis === undefined) L.push('store         memory');
  else {
    const fallback = s.of('milter_policy_redis_fallback_active')[0];
    const state =
      redis.value === 1 ? 'up' : `DOWN (on_failure ${fallback?.labels['on_failure'] ?? '?'} in effect)`;
    L.push(
      `store         redis ${redis.labels['mode'] ?? ''}: ${state}, unavailable ${n(s.sum('milter_policy_redis_unavailable_total'))} times`,
    );
  }

  const decisions = s.of('milter_policy_decisions_total').filter((x) => x.value > 0);
  const order = ['connect', 'helo', 'mail', 'rcpt', 'eom'];
  const key = (x: Sample): string =>
    `${order.indexOf(x.labels['stage'] ?? '')}${x.labels['mode'] === 'enforce' ? 0 : 1}${x.labels['action'] ?? ''}${x.labels['check'] ?? ''}`;
  L.push('', 'decisions');
  if (decisions.length === 0) L.push('  (none yet)');
  else
    L.push(
      ...table(
        ['stage', 'action', 'check', 'mode', 'count', ...(prev === null ? [] : ['change'])],
        [...decisions]
          .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
          .map((x) => [
            x.labels['stage'] ?? '',
            x.labels['action'] ?? '',
            x.labels['check'] ?? '',
            x.labels['mode'] ?? '',
            n(x.value),
            ...(prev === null ? [] : [delta('milter_policy_decisions_total', x.labels)]),
          ]),
        [false, false, false, false, true, true],
      ),
    );
  const replies = s.of('milter_policy_replies_total').filter((x) => x.value > 0);
  L.push(
    `  refusals by reply code: ${replies.length === 0 ? 'none' : replies.map((x) => `${x.labels['code'] ?? '?'} ${n(x.value)}`).join(', ')}`,
  );

  const zones = new Set([
    ...s.of('milter_policy_dnsbl_zone_enabled').map((x) => x.labels['zone'] ?? ''),
    ...s.of('milter_policy_dnsbl_queries_total').map((x) => x.labels['zone'] ?? ''),
  ]);
  if (zones.size > 0) {
    L.push('', 'dnsbl');
    L.push(
      ...table(
        ['zone', 'queries', 'listed', 'clean', 'errors', 'listed%', 'mean ms', 'enabled'],
        [...zones].sort().map((zone) => {
          const q = s.sum('milter_policy_dnsbl_queries_total', { zone });
          const listed = s.sum('milter_policy_dnsbl_queries_total', { zone, result: 'listed' });
          const count = s.sum('milter_policy_dnsbl_lookup_seconds_count', { zone });
          const sum = s.sum('milter_policy_dnsbl_lookup_seconds_sum', { zone });
          const enabled = s.of('milter_policy_dnsbl_zone_enabled').find((x) => x.labels['zone'] === zone);
          return [
            zone,
            n(q),
            n(listed),
            n(s.sum('milter_policy_dnsbl_queries_total', { zone, result: 'clean' })),
            n(s.sum('milter_policy_dnsbl_queries_total', { zone, result: 'error' })),
            pct(listed, q),
            count > 0 ? ms(sum / count) : '-',
            enabled === undefined ? '-' : enabled.value === 1 ? 'yes' : 'NO (probe failed)',
          ];
        }),
        [false, true, true, true, true, true, true, false],
      ),
    );
    const hits = s.sum('milter_policy_dnsbl_cache_hits_total');
    const misses = s.sum('milter_policy_dnsbl_cache_misses_total');
    const coalesced = s.sum('milter_policy_dnsbl_cache_coalesced_total');
    L.push(
      `  cache: ${n(hits)} hits, ${n(misses)} misses, ${n(coalesced)} coalesced; hit ratio ${pct(hits + coalesced, hits + misses + coalesced)}`,
    );
  }

  const limits = s.of('milter_policy_rate_limit_refusals_total').filter((x) => x.value > 0);
  if (limits.length > 0) {
    L.push('', 'rate limits');
    L.push(
      ...table(
        ['limit', 'mode', 'refusals'],
        limits.map((x) => [x.labels['limit'] ?? '', x.labels['mode'] ?? '', n(x.value)]),
        [false, false, true],
      ),
    );
  }
  const errors = s.of('milter_policy_check_errors_total').filter((x) => x.value > 0);
  if (errors.length > 0)
    L.push('', `check errors  ${errors.map((x) => `${x.labels['check'] ?? '?'} ${n(x.value)}`).join(', ')}`);

  const stages = order.filter((st) => s.sum('milter_policy_stage_seconds_count', { stage: st }) > 0);
  if (stages.length > 0) {
    L.push('', 'engine time per stage');
    L.push(
      ...table(
        ['stage', 'evaluations', 'mean ms', 'p99 ms (≤)'],
        stages.map((stage) => {
          const count = s.sum('milter_policy_stage_seconds_count', { stage });
          const sum = s.sum('milter_policy_stage_seconds_sum', { stage });
          return [
            stage,
            n(count),
            ms(sum / count),
            quantile(s, 'milter_policy_stage_seconds', { stage }, 0.99),
          ];
        }),
        [false, true, true, true],
      ),
    );
  }
  return `${L.join('\n')}\n`;
}

/** The upper bound of the histogram bucket holding quantile q (what the buckets can tell). */
function quantile(s: Samples, name: string, where: Record<string, string>, q: number): string {
  const buckets = s
    .of(`${name}_bucket`)
    .filter((x) => Object.entries(where).every(([k, v]) => x.labels[k] === v))
    .map((x) => ({ le: numberOf(x.labels['le'] ?? '+Inf'), count: x.value }))
    .sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return '-';
  const b = buckets.find((x) => x.count >= q * total);
  return b === undefined || b.le === Infinity ? `> ${ms(buckets[buckets.length - 2]?.le ?? 0)}` : ms(b.le);
}

/** The URL from --url, or the metrics section of --config, or the default. */
async function metricsUrl(
  url: string | undefined,
  config: string | undefined,
): Promise<string | { error: string }> {
  if (url !== undefined) return url;
  if (config === undefined) return DEFAULT_URL;
  const c = await loadConfig(config);
  if (!c.ok) return { error: c.errors.join('\n') };
  const l = c.config.metrics.listen;
  if (l === null) return { error: `${config}: metrics are off (metrics.enabled: true turns them on)` };
  const host = l.host === '0.0.0.0' ? '127.0.0.1' : l.host === '::' ? '::1' : l.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${l.port}${c.config.metrics.path}`;
}

async function fetchSamples(url: string): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return parseMetrics(await res.text());
}

export async function stats(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        config: { type: 'string', short: 'c' },
        watch: { type: 'string', short: 'w' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(
      `milter-policy stats: ${e instanceof Error ? e.message : String(e)}\nusage: milter-policy stats [--url URL | --config FILE] [--watch SECONDS]\n`,
    );
    return 2;
  }
  const watch = values.watch === undefined ? 0 : Number(values.watch);
  if (values.watch !== undefined && !(watch >= 0.5)) {
    process.stderr.write('milter-policy stats: --watch takes a number of seconds (0.5 or more)\n');
    return 2;
  }
  const url = await metricsUrl(values.url, values.config);
  if (typeof url !== 'string') {
    process.stderr.write(`milter-policy stats: ${url.error}\n`);
    return 2;
  }
  let previous: Sample[] | undefined;
  for (;;) {
    let samples: Sample[];
    try {
      samples = await fetchSamples(url);
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
      process.stderr.write(`milter-policy stats: ${e instanceof Error ? e.message : String(e)}${cause}\n`);
      if (watch === 0) return 1;
      await new Promise((r) => setTimeout(r, watch * 1000));
      continue;
    }
    const text = renderStats(samples, {
      url,
      at: new Date(),
      ...(previous === undefined ? {} : { previous }),
    });
    if (watch === 0) {
      process.stdout.write(text);
      return 0;
    }
    process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : '\n'}${text}`);
    previous = samples;
    await new Promise((r) => setTimeout(r, watch * 1000));
  }
}
