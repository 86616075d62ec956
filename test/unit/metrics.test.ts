// daemon/metrics.ts: the registry's text after simulated events (every observer the daemon hands
// out), counters that stay right across scrapes, the values read from the runtime at scrape time,
// the HTTP listener's routes, and the `metrics` configuration key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decision } from '../../milter/handler.js';
import type { StageOutcome, TraceEntry } from '../../rules/engine.js';
import { parseConfig } from '../../daemon/config.js';
import { Metrics, MetricsHttpServer } from '../../daemon/metrics.js';
import type { HealthState } from '../../daemon/metrics.js';
import { buildRuntime, createServices } from '../../daemon/runtime.js';
import { clientIp } from '../../rules/networks.js';
import { AggregatorRegistry } from 'prom-client';
import { parseMetrics } from '../../cli/stats.js';
import { VERSION } from '../../daemon/version.js';
import type { Sample } from '../../cli/stats.js';

function outcome(o: Partial<StageOutcome> & { trace?: readonly TraceEntry[] }): StageOutcome {
  return {
    verdict: null,
    decidedBy: null,
    reason: null,
    entry: null,
    trace: [],
    addHeaders: [],
    quarantine: null,
    tags: [],
    ...o,
  };
}

const QUIET = { error: (): void => undefined };

const REJECT: Decision = { kind: 'reject', text: '550 5.7.1 Relaying denied' };

async function samples(m: Metrics): Promise<Sample[]> {
  return parseMetrics((await m.render()).body);
}

function value(
  all: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return all.find(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

async function config(text: string) {
  const r = await parseConfig(text, '/nonexistent/milter-policy.yaml');
  if (!r.ok) assert.fail(r.errors.join('\n'));
  return r.config;
}

describe('Metrics', () => {
  it('counts decisions by stage, action, check and mode; replies by code; observe, tag, errors and rate limits', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const relay = outcome({
      verdict: { action: 'reject', reply: { code: 550, dsn: '5.7.1', text: 'Relaying denied' } },
      decidedBy: 'relay_guard',
      trace: [{ check: 'relay_guard', result: 'hit', action: 'reject', reason: 'not local' }],
    });
    m.decision('rcpt', REJECT, 'relay_guard', relay, '550 5.7.1 <x@other.invalid>... Relaying denied');
    m.decision('rcpt', REJECT, 'relay_guard', relay, '550 5.7.1 <y@other.invalid>... Relaying denied');
    m.decision('rcpt', { kind: 'continue' }, 'relay_guard', outcome({}), null);
    m.decision('eom', { kind: 'accept' }, null, outcome({}), null);
    m.decision(
      'rcpt',
      { kind: 'tempfail' },
      'dnsbl',
      outcome({ trace: [{ check: 'dnsbl', result: 'error', reason: 'timeout' }] }),
      null,
    );
    m.decision(
      'rcpt',
      { kind: 'tempfail', text: '452 4.3.2 Recipient rate limit exceeded.' },
      'rate_limit',
      outcome({
        decidedBy: 'rate_limit',
        trace: [
          { check: 'header_rules', result: 'tagged', action: 'reject', reason: 'x' },
          { check: 'spam_trap', result: 'observed', action: 'reject', reason: 'trap' },
          { check: 'dnsbl', result: 'pass', observed: ['dnsbl: listed in a', 'dnsbl: listed in b'] },
          {
            check: 'rate_limit',
            result: 'hit',
            action: 'tempfail',
            reason: 'per_ip: more than 5 recipients for 192.0.2.9',
          },
        ],
      }),
      '452 4.3.2 Recipient rate limit exceeded.',
    );
    m.decision(
      'connect',
      { kind: 'continue' },
      null,
      outcome({
        trace: [{ check: 'bad_recipients', result: 'observed', action: 'tempfail', reason: 'too many' }],
      }),
      null,
    );
    const s = await samples(m);
    const d = (stage: string, action: string, check: string, mode: string): number | undefined =>
      value(s, 'milter_policy_decisions_total', { stage, action, check, mode });
    assert.equal(d('rcpt', 'reject', 'relay_guard', 'enforce'), 2);
    assert.equal(d('rcpt', 'accept', 'relay_guard', 'enforce'), 1);
    assert.equal(d('eom', 'accept', 'none', 'enforce'), 1);
    assert.equal(d('rcpt', 'tempfail', 'dnsbl', 'enforce'), 1);
    assert.equal(d('rcpt', 'reject', 'header_rules', 'tag'), 1);
    assert.equal(d('rcpt', 'reject', 'spam_trap', 'observe'), 1);
    assert.equal(d('rcpt', 'reject', 'dnsbl', 'observe'), 2);
    assert.equal(d('connect', 'tempfail', 'bad_recipients', 'observe'), 1);
    assert.equal(value(s, 'milter_policy_replies_total', { code: '550' }), 2);
    assert.equal(value(s, 'milter_policy_replies_total', { code: '452' }), 1);
    assert.equal(
      value(s, 'milter_policy_replies_total', { code: '4xx' }),
      1,
      'tempfail with the default text',
    );
    assert.equal(value(s, 'milter_policy_check_errors_total', { check: 'dnsbl' }), 1);
    assert.equal(
      value(s, 'milter_policy_rate_limit_refusals_total', { limit: 'per_ip', mode: 'enforce' }),
      1,
    );
    assert.equal(
      value(s, 'milter_policy_rate_limit_refusals_total', { limit: 'bad_recipients', mode: 'observe' }),
      1,
    );
  });

  it('connections, protocol errors, DNSBL zones and cache, stage times; counters stay right across scrapes', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.server.connectionOpened();
    m.server.connectionOpened();
    m.server.connectionClosed();
    m.server.connectionRefused('max_connections');
    m.server.protocolError('frame_too_large');
    m.dnsbl.zoneLookup('zen.example', 'listed', 0.004);
    m.dnsbl.zoneLookup('zen.example', 'clean', 0.0002);
    m.dnsbl.zoneLookup('bl.example', 'error', 2.5);
    m.dnsCache.cacheHit();
    m.dnsCache.cacheMiss();
    m.dnsCache.cacheMiss();
    m.dnsCache.coalesced();
    m.policy.stage?.('rcpt', 0.3);
    m.policy.stage?.('rcpt', 7);
    let s = await samples(m);
    assert.equal(value(s, 'milter_policy_connections_open'), 1);
    assert.equal(value(s, 'milter_policy_connections_total'), 2);
    assert.equal(value(s, 'milter_policy_connections_refused_total', { reason: 'max_connections' }), 1);
    assert.equal(value(s, 'milter_policy_protocol_errors_total', { code: 'frame_too_large' }), 1);
    assert.equal(value(s, 'milter_policy_dnsbl_queries_total', { zone: 'zen.example', result: 'listed' }), 1);
    assert.equal(value(s, 'milter_policy_dnsbl_queries_total', { zone: 'bl.example', result: 'error' }), 1);
    assert.equal(value(s, 'milter_policy_dnsbl_lookup_seconds_count', { zone: 'zen.example' }), 2);
    assert.equal(
      value(s, 'milter_policy_dnsbl_lookup_seconds_bucket', { zone: 'zen.example', le: '0.001' }),
      1,
    );
    assert.equal(
      value(s, 'milter_policy_dnsbl_lookup_seconds_bucket', { zone: 'zen.example', le: '0.005' }),
      2,
    );
    assert.equal(value(s, 'milter_policy_dnsbl_lookup_seconds_bucket', { zone: 'bl.example', le: '2' }), 0);
    assert.equal(
      value(s, 'milter_policy_dnsbl_lookup_seconds_bucket', { zone: 'bl.example', le: '+Inf' }),
      1,
    );
    assert.equal(value(s, 'milter_policy_dnsbl_cache_hits_total'), 1);
    assert.equal(value(s, 'milter_policy_dnsbl_cache_misses_total'), 2);
    assert.equal(value(s, 'milter_policy_dnsbl_cache_coalesced_total'), 1);
    assert.equal(value(s, 'milter_policy_stage_seconds_count', { stage: 'rcpt' }), 2);
    assert.ok(
      Math.abs((value(s, 'milter_policy_stage_seconds_sum', { stage: 'rcpt' }) ?? 0) - 0.0073) < 1e-9,
    );
    assert.equal(value(s, 'milter_policy_stage_seconds_bucket', { stage: 'rcpt', le: '0.0005' }), 1);
    assert.equal(value(s, 'milter_policy_stage_seconds_bucket', { stage: 'rcpt', le: '0.01' }), 2);
    const text = (await m.render()).body;
    assert.match(text, /# TYPE milter_policy_stage_seconds histogram/);
    assert.match(text, /# TYPE milter_policy_decisions_total counter/);
    // a second scrape adds only what happened since
    m.server.connectionOpened();
    m.dnsCache.cacheHit();
    m.policy.stage?.('rcpt', 0.1);
    await samples(m);
    s = await samples(m);
    assert.equal(value(s, 'milter_policy_connections_total'), 3);
    assert.equal(value(s, 'milter_policy_connections_open'), 2);
    assert.equal(value(s, 'milter_policy_dnsbl_cache_hits_total'), 2);
    assert.equal(value(s, 'milter_policy_stage_seconds_count', { stage: 'rcpt' }), 3);
  });

  it('reads the runtime at scrape time: generation, zone health, access map, Redis; reload counters', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const c = await config(
      'dnsbl: { zones: [{ zone: zen.example, probe: true }, { zone: "Bl.Example." }] }\nmetrics: { enabled: true }\n',
    );
    const services = createServices(c, { observer: m.policy });
    const rt = buildRuntime(c, 3, null, services);
    m.watch(() => rt);
    services.health.set('zen.example', 'probe failed');
    let s = await samples(m);
    assert.equal(value(s, 'milter_policy_config_generation'), 3);
    assert.equal(value(s, 'milter_policy_dnsbl_zone_enabled', { zone: 'zen.example' }), 0);
    assert.equal(value(s, 'milter_policy_dnsbl_zone_enabled', { zone: 'bl.example' }), 1);
    assert.equal(value(s, 'milter_policy_access_db_entries'), 0);
    assert.equal(s.filter((x) => x.name === 'milter_policy_access_db_info').length, 0);
    assert.equal(s.filter((x) => x.name === 'milter_policy_redis_up').length, 0, 'no Redis: no series');
    services.health.set('zen.example', null);
    m.accessReload(true);
    m.accessReload(false);
    m.configReload(true);
    m.redisState('down');
    m.redisState('up');
    m.banned();
    m.redisError('unavailable');
    m.redisError('unavailable');
    s = await samples(m);
    assert.equal(value(s, 'milter_policy_bans_total'), 1);
    assert.equal(value(s, 'milter_policy_redis_errors_total', { kind: 'unavailable' }), 2);
    assert.equal(value(s, 'milter_policy_dnsbl_zone_enabled', { zone: 'zen.example' }), 1);
    assert.equal(value(s, 'milter_policy_access_db_reloads_total', { result: 'ok' }), 1);
    assert.equal(value(s, 'milter_policy_access_db_reloads_total', { result: 'refused' }), 1);
    const last = s.filter((x) => x.name === 'milter_policy_access_db_last_reload_timestamp_seconds');
    assert.equal(last.length, 1);
    assert.equal(last[0]?.labels['result'], 'refused');
    assert.equal(value(s, 'milter_policy_config_reloads_total', { result: 'ok' }), 1);
    assert.equal(value(s, 'milter_policy_redis_unavailable_total'), 1);
    assert.equal(value(s, 'milter_policy_info', { version: VERSION }), 1);
  });

  it('the runtime hands the observers to the DNS cache, the blocklist check and the engine', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const c = await config('domains: { local: [example.test] }\n');
    const rt = buildRuntime(c, 1, null, createServices(c, { observer: m.policy }));
    const input = {
      stage: 'rcpt' as const,
      client: {
        address: '192.0.2.9',
        ip: clientIp('192.0.2.9'),
        hostname: '[192.0.2.9]',
        port: 1,
        kind: 'inet4' as const,
      },
      helo: 'x',
      sender: '<a@b.example>',
      senderArgs: [],
      recipient: '<x@other.invalid>',
      recipients: [],
      macro: () => undefined,
      memo: {
        connection: <T>(_k: string, f: () => T): T => f(),
        message: <T>(_k: string, f: () => T): T => f(),
      },
    };
    const o = await rt.engine.evaluate('rcpt', input);
    assert.equal(o.decidedBy, 'relay_guard');
    const s = await samples(m);
    assert.equal(value(s, 'milter_policy_stage_seconds_count', { stage: 'rcpt' }), 1);
    assert.equal(rt.services.observer, m.policy);
  });

  it("two workers' registries aggregate as the primary sums them (counters, histograms; max, min gauges)", async () => {
    const workers = [new Metrics({ defaultMetrics: false }), new Metrics({ defaultMetrics: false })];
    const c = await config('dnsbl: { zones: [{ zone: zen.example }] }\n');
    workers.forEach((w, i) => {
      const services = createServices(c, { observer: w.policy });
      if (i === 1) services.health.set('zen.example', 'down');
      const rt = buildRuntime(c, i + 1, null, services);
      w.watch(() => rt);
      w.server.connectionOpened();
      w.policy.stage?.('rcpt', 0.2);
    });
    const json = await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()));
    const s = parseMetrics(await AggregatorRegistry.aggregate(json).metrics());
    assert.equal(value(s, 'milter_policy_connections_open'), 2);
    assert.equal(value(s, 'milter_policy_connections_total'), 2);
    assert.equal(value(s, 'milter_policy_stage_seconds_count', { stage: 'rcpt' }), 2);
    assert.equal(value(s, 'milter_policy_stage_seconds_bucket', { stage: 'rcpt', le: '0.00025' }), 2);
    assert.equal(value(s, 'milter_policy_config_generation'), 2);
    assert.equal(value(s, 'milter_policy_dnsbl_zone_enabled', { zone: 'zen.example' }), 0);
    assert.equal(value(s, 'milter_policy_info', { version: VERSION }), 1);
  });

  it('process metrics come from prom-client, in this registry only', async () => {
    const m = new Metrics();
    const text = (await m.render()).body;
    assert.match(text, /^process_cpu_user_seconds_total /m);
    assert.match(text, /^nodejs_version_info\{/m);
  });
});

describe('MetricsHttpServer', () => {
  it('serves /metrics and /healthz (200 ok, 503 otherwise), 404 and 405 for the rest', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let health: HealthState = 'starting';
    const http = new MetricsHttpServer({
      host: '127.0.0.1',
      port: 0,
      path: '/m',
      render: () => m.render(),
      health: () => health,
      log: QUIET,
    });
    await http.start();
    try {
      const base = http.url.replace(/\/m$/, '');
      assert.match(http.url, /^http:\/\/127\.0\.0\.1:[0-9]+\/m$/);
      let r = await fetch(`${base}/healthz`);
      assert.equal(r.status, 503);
      assert.equal(await r.text(), 'starting\n');
      health = 'ok';
      r = await fetch(`${base}/healthz`);
      assert.equal(r.status, 200);
      assert.equal(await r.text(), 'ok\n');
      health = 'draining';
      assert.equal((await fetch(`${base}/healthz`)).status, 503);
      r = await fetch(`${base}/m?x=1`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(await r.text(), /milter_policy_connections_open 0/);
      assert.equal((await fetch(`${base}/metrics`)).status, 404);
      assert.equal((await fetch(`${base}/m`, { method: 'POST' })).status, 405);
    } finally {
      await http.close();
    }
  });

  it('a port in use fails start() with a message naming it', async () => {
    const log = QUIET;
    const common = { host: '127.0.0.1', path: '/metrics', log, health: (): HealthState => 'ok' };
    const m = new Metrics({ defaultMetrics: false });
    const a = new MetricsHttpServer({ ...common, port: 0, render: () => m.render() });
    await a.start();
    const port = Number(new URL(a.url).port);
    const b = new MetricsHttpServer({ ...common, port, render: () => m.render() });
    await assert.rejects(
      b.start(),
      new RegExp(`metrics: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`),
    );
    await a.close();
  });
});

describe('metrics configuration', () => {
  it('is off by default; on, loopback 127.0.0.1:9464 /metrics', async () => {
    assert.deepEqual((await config('')).metrics, { listen: null, path: '/metrics' });
    assert.deepEqual((await config('metrics: { enabled: true }')).metrics, {
      listen: { host: '127.0.0.1', port: 9464 },
      path: '/metrics',
    });
    assert.deepEqual((await config('metrics: { enabled: true, listen: "[::1]:0", path: /stats }')).metrics, {
      listen: { host: '::1', port: 0 },
      path: '/stats',
    });
  });

  it('refuses a non-loopback address unless allow_remote, bad listen specs and /healthz as the path', async () => {
    const problems = async (text: string): Promise<string> => {
      const r = await parseConfig(text, 'c.yaml');
      return r.ok ? '' : r.errors.join('\n');
    };
    assert.match(
      await problems('metrics:\n  enabled: true\n  listen: "0.0.0.0:9464"\n'),
      /^c\.yaml:3: metrics\.listen: 0\.0\.0\.0 is not a loopback address/,
    );
    assert.equal(
      await problems('metrics: { enabled: true, listen: "0.0.0.0:9464", allow_remote: true }'),
      '',
    );
    assert.equal(await problems('metrics: { listen: "localhost:9464" }'), '');
    assert.match(await problems('metrics: { listen: "9464" }'), /is not HOST:PORT/);
    assert.match(await problems('metrics: { listen: "127.0.0.1:70000" }'), /is not HOST:PORT/);
    assert.match(await problems('metrics: { path: /healthz }'), /health check/);
    assert.match(await problems('metrics: { path: metrics }'), /URL path/);
    assert.match(await problems('metrics: { port: 1 }'), /metrics\.port: unknown setting/);
  });
});
