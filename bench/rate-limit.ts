// The rate-limit benchmark, compiled to dist/bench/rate-limit.js and run as
//   npm run bench:rate-limit -- [options]
// What counting costs the daemon, and how much memory the in-memory store can take:
//   throughput  the load generator (bench/c/loadgen.c, Postfix's side, --mime, clients cycling
//               through 192.0.2.0/24) against one fresh `node dist/cli/main.js serve` per run, on
//               bench/milter-policy-bench.yaml (workers: auto, as bench/run.ts's `ours`) in three
//               variants: `off` (no rate limits), `memory` (a realistic set of limits: connections
//               per /32 and per /24, open connections per /32, messages and recipients per /32,
//               bad_recipients on; all far above what the load generator sends, so nothing is
//               refused) and `redis` (the same limits in `store: {type: redis}`, against a private
//               redis-server started for the run on a free port with --save "" --appendonly no).
//               Variants interleaved, each repeated; medians of msgs/s, latency, CPU; the cost of
//               each store against `off`, with the targets (memory <= 15 %, Redis <= 35 %, at 64
//               connections). A run is valid only if nothing was refused or tempfailed on behalf of
//               the limits (the daemon's decision lines and the generator's replies), no store call
//               failed, every decision names a load generator client (not an exempt address), and,
//               with Redis, Redis itself counted the script calls every message must make. Before
//               that, short sanity runs with one limit at a time set low prove the limits run: each
//               must get refusals from that limit, with either store.
//   memory      in a child process (--expose-gc, clean heap): the daemon's own rule engine
//               (buildRuntime on the `memory` configuration, store.max_keys at its default of
//               1,000,000, then at 100,000) fed 1,000,000 SMTP sessions from distinct IPv4
//               sources (connect, MAIL, a local and a relayed RCPT, close: the keys the checks
//               build), then 2,000,000 more; heap, ArrayBuffers and RSS after a forced GC at each
//               checkpoint, and the buckets the store holds, which must stop at max_keys.
// Results: the `rate-limit` section of docs/benchmarks.md (between its markers; bench/run.ts keeps
// it when it rewrites the rest) and docs/benchmarks-rate-limit.json, written here, never by hand.
// The shared-machine guard of bench/run.ts applies (waitQuiet before each run; a run disturbed by
// other work is repeated).
//
// Options:
//   --repeat N        throughput runs per variant and level, interleaved (default 3)
//   --duration SEC    measured seconds per throughput run (default 10)
//   --warmup SEC      warm-up seconds before that (default 2)
//   --concurrency L   comma-separated connection levels (default 64,256; the targets are at 64)
//   --parts L         from throughput,memory (default both)
//   --out DIR         where the reports go (default docs)
//   --quick           --duration 2 --warmup 1 --repeat 1, 1 s sanity runs, 300,000 sources (smoke run)
//   --from-json FILE  measure nothing: re-render the reports from a raw file written earlier
// Failure: exit 1 when something cannot run at all (build, daemon or Redis start, memory child);
// exit 2 when everything ran but a validity check failed (a limit that does not refuse when set
// low, a refusal or store error in a throughput run, Redis not counting): the reports are written
// first, with the failures in them; 0 otherwise (a missed cost target is a result, not a failure).

import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseConfig } from '../daemon/config.js';
import { buildRuntime, createServices } from '../daemon/runtime.js';
import type { PolicyInput, PolicyStage, SessionHooks, SettledOutcome, Verdict } from '../rules/check.js';
import type { Network } from '../rules/networks.js';
import { clientIp, findNetwork, inNetwork, parseNetwork } from '../rules/networks.js';
import { MemoryRateStore } from '../rules/rate-store.js';
import type { LoadgenResult } from './loadgen-result.js';
import type { Machine, ProcSample, StatSample, SystemCpu } from './machine.js';
import {
  CLK_TCK,
  DISTURBED_PCT,
  DISTURBED_RETRIES,
  PAGE_SIZE,
  firstLine,
  machine,
  procSample,
  readText,
  root,
  statSample,
  systemCpu,
  waitQuiet,
} from './machine.js';
import type { Captured } from './processes.js';
import {
  buildCPrograms,
  daemonMain,
  fail,
  freePort,
  hasStarted,
  killAll,
  loadgenBin,
  run,
} from './processes.js';
import { formatJson, replaceSection } from './report-sections.js';

const configTemplate = path.join(root, 'bench', 'milter-policy-bench.yaml');
const thisScript = fileURLToPath(import.meta.url);
/** The load generator's client pool (its default, passed explicitly) and workload (as bench/run.ts). */
const LOADGEN_CLIENTS = '192.0.2.0/24';
const LOADGEN_WORKLOAD: readonly string[] = ['--mime'];
/** The issue's targets: at most this throughput cost (%) against `off`, at TARGET_CONCURRENCY. */
const TARGET_MAX_COST = { memory: 15, redis: 35 } as const;
const TARGET_CONCURRENCY = 64;
/**
 * Store calls one load generator message makes with the limits below (each one EVALSHA in Redis):
 * at connect conn-client, conn-net (take) and open-client (acquire), watched without a reply; at
 * MAIL msgs-client (take; the lease is renewed only after half its life); at the local RCPT the
 * bad-recipient throttle's peek (once per connection) and rcpt-client (take); the relayed RCPT,
 * refused by the relay guard first, only adds the bad-recipient count (take); at close the lease
 * release.
 */
const EXPECTED_STORE_CALLS = 8;
/** A Redis run counts as counting in Redis when it saw at least this share of the expected calls. */
const STORE_CALLS_MIN_SHARE = 0.9;
const SMALL_MAX_KEYS = 100_000;

type Variant = 'off' | 'memory' | 'redis' | 'memory-rcpt';
const VARIANTS: readonly Variant[] = ['off', 'memory', 'redis', 'memory-rcpt'];
const VARIANT_LABEL: Record<Variant, string> = {
  off: 'off (no rate limits)',
  memory: 'memory store',
  redis: 'Redis store',
  'memory-rcpt': 'memory store, RCPT-stage limits only',
};
/** The variants with a target; `memory-rcpt` is a diagnostic (see markdownSection). */
const TARGETED = ['memory', 'redis'] as const;
const isTargeted = (v: Variant): v is (typeof TARGETED)[number] =>
  (TARGETED as readonly string[]).includes(v);
type Part = 'throughput' | 'memory';
const ALL_PARTS: readonly Part[] = ['throughput', 'memory'];

// ---- the limits ----

interface LimitYaml {
  readonly name: string;
  readonly counts: 'connections' | 'concurrent' | 'messages' | 'recipients';
  readonly ipv4_prefixes: readonly number[];
  readonly rate: number;
  readonly per?: string;
}

/**
 * What a gateway would set, sized far above the load generator's traffic (about 40 connections a
 * second from each of its 254 clients, 10,000 from their /24, for up to 15 s per run), so that the
 * runs measure the counting and nothing is refused.
 */
const BENCH_LIMITS: readonly LimitYaml[] = [
  { name: 'conn-client', counts: 'connections', ipv4_prefixes: [32], rate: 6000, per: '60s' },
  { name: 'conn-net', counts: 'connections', ipv4_prefixes: [24], rate: 600000, per: '60s' },
  { name: 'open-client', counts: 'concurrent', ipv4_prefixes: [32], rate: 50 },
  { name: 'msgs-client', counts: 'messages', ipv4_prefixes: [32], rate: 6000, per: '60s' },
  { name: 'rcpt-client', counts: 'recipients', ipv4_prefixes: [32], rate: 12000, per: '60s' },
];
/** Every load generator message has one relayed recipient the relay guard refuses (550): counted. */
const BENCH_BAD_RECIPIENTS = { enabled: true, per_connection: 10, per_source: 100000, window: '10m' };

/** The sanity runs: one limit at a time set low. Six clients (192.0.2.1-6), so that each makes
 *  hundreds of connections even in a short run, in every worker. */
const SANITY_CLIENTS = '192.0.2.0/29';
interface SanityCase {
  readonly limit: string;
  readonly setting: string;
  readonly rate?: number;
  readonly per?: string;
  readonly perSource?: number;
}
const SANITY_CASES: readonly SanityCase[] = [
  { limit: 'conn-client', setting: 'rate 20 per 10m', rate: 20, per: '10m' },
  { limit: 'conn-net', setting: 'rate 100 per 10m', rate: 100, per: '10m' },
  { limit: 'open-client', setting: 'at most 2 open', rate: 2 },
  { limit: 'msgs-client', setting: 'rate 10 per 10m', rate: 10, per: '10m' },
  { limit: 'rcpt-client', setting: 'rate 10 per 10m', rate: 10, per: '10m' },
  { limit: 'bad_recipients', setting: 'per_source 10', perSource: 10 },
];

/** `rcptOnly`: only the limits counted at RCPT (recipients, bad_recipients), which leave the
 *  milter protocol as it is with no limits (no connect or MAIL reply wanted). */
function rateLimitsYaml(lower: SanityCase | null, rcptOnly = false): Record<string, unknown> {
  const limits = BENCH_LIMITS.filter((l) => !rcptOnly || l.counts === 'recipients').map((l) =>
    lower !== null && lower.limit === l.name
      ? {
          ...l,
          ...(lower.rate === undefined ? {} : { rate: lower.rate }),
          ...(lower.per === undefined ? {} : { per: lower.per }),
        }
      : { ...l },
  );
  const bad =
    lower?.perSource === undefined
      ? BENCH_BAD_RECIPIENTS
      : { ...BENCH_BAD_RECIPIENTS, per_source: lower.perSource };
  return { limits, bad_recipients: bad };
}

// ---- options ----

interface Options {
  readonly repeat: number;
  readonly duration: number;
  readonly warmup: number;
  readonly concurrency: readonly number[];
  readonly parts: readonly Part[];
  readonly out: string;
  readonly quick: boolean;
  readonly sanityDuration: number;
  /** Cumulative distinct sources at which memory is read. */
  readonly checkpoints: readonly number[];
  readonly smallMaxKeys: number;
  /** Sessions fed one at a time with no other connection open, before the feed (the slow path). */
  readonly aloneSessions: number;
  readonly fromJson: string | null;
}

const DEFAULTS = { repeat: 3, duration: 10, warmup: 2, concurrency: '64,256' } as const;

function parseOptions(argv: readonly string[]): Options {
  let repeat: number = DEFAULTS.repeat;
  let duration: number = DEFAULTS.duration;
  let warmup: number = DEFAULTS.warmup;
  let concurrency: string = DEFAULTS.concurrency;
  let parts: Part[] = [...ALL_PARTS];
  let out = 'docs';
  let quick = false;
  let fromJson: string | null = null;
  const num = (name: string, v: string, min: number, max: number, int: boolean): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n)))
      fail(`${name} ${JSON.stringify(v)}: expected ${int ? 'an integer' : 'a number'} in ${min}..${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--repeat':
        repeat = num(a, value(), 1, 50, true);
        break;
      case '--duration':
        duration = num(a, value(), 0.5, 3600, false);
        break;
      case '--warmup':
        warmup = num(a, value(), 0, 600, false);
        break;
      case '--concurrency':
        concurrency = value();
        break;
      case '--parts':
        parts = value()
          .split(',')
          .map((s) => {
            const p = s.trim();
            if (!(ALL_PARTS as readonly string[]).includes(p))
              fail(`--parts ${JSON.stringify(p)}: expected ${ALL_PARTS.join(', ')}`);
            return p as Part;
          });
        break;
      case '--out':
        out = value();
        break;
      case '--quick':
        quick = true;
        break;
      case '--from-json':
        fromJson = path.resolve(value());
        break;
      default:
        fail(`unknown option ${a} (see the header of bench/rate-limit.ts)`);
    }
  }
  if (quick) {
    duration = 2;
    warmup = 1;
    repeat = 1;
  }
  const levels = concurrency.split(',').map((s) => num('--concurrency', s.trim(), 1, 10000, true));
  return {
    repeat,
    duration,
    warmup,
    concurrency: levels,
    parts,
    out: path.resolve(root, out),
    quick,
    sanityDuration: quick ? 1 : 2,
    checkpoints: quick
      ? [50_000, 100_000, 300_000]
      : [100_000, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000],
    smallMaxKeys: quick ? 10_000 : SMALL_MAX_KEYS,
    aloneSessions: quick ? 200 : 2000,
    fromJson,
  };
}

function reproduceCommand(o: Options): string {
  const parts = ['npm run bench:rate-limit --'];
  if (o.quick) parts.push('--quick');
  else {
    if (o.repeat !== DEFAULTS.repeat) parts.push(`--repeat ${o.repeat}`);
    if (o.duration !== DEFAULTS.duration) parts.push(`--duration ${o.duration}`);
    if (o.warmup !== DEFAULTS.warmup) parts.push(`--warmup ${o.warmup}`);
  }
  if (o.concurrency.join(',') !== DEFAULTS.concurrency)
    parts.push(`--concurrency ${o.concurrency.join(',')}`);
  if (o.parts.join(',') !== ALL_PARTS.join(',')) parts.push(`--parts ${o.parts.join(',')}`);
  if (path.relative(root, o.out) !== 'docs') parts.push(`--out ${path.relative(root, o.out)}`);
  return parts.length === 1 ? 'npm run bench:rate-limit' : parts.join(' ');
}

function say(text: string): void {
  process.stderr.write(`rate-limit bench: ${text}\n`);
}

// ---- configuration and exemptions ----

/** The addresses the load generator puts in its connect packets (loadgen.c parse_cidr). */
function poolAddresses(cidr: string): string[] {
  const [net, lenText] = cidr.split('/');
  const ip = clientIp(net ?? '');
  const len = Number(lenText ?? '32');
  if (ip === null || ip.kind() !== 'ipv4' || !(len >= 8 && len <= 32)) fail(`bad client pool ${cidr}`);
  const bytes = ip.toByteArray();
  const base =
    (((bytes[0] as number) << 24) |
      ((bytes[1] as number) << 16) |
      ((bytes[2] as number) << 8) |
      (bytes[3] as number)) >>>
    0;
  const size = len === 32 ? 1 : 2 ** (32 - len);
  const first = len <= 30 ? 1 : 0;
  const count = len <= 30 ? size - 2 : size;
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(ipText((base & ~(size - 1)) + first + i));
  return out;
}

function ipText(n: number): string {
  const u = n >>> 0;
  return `${u >>> 24}.${(u >>> 16) & 255}.${(u >>> 8) & 255}.${u & 255}`;
}

/** trusted_networks for the derived configurations: the bench YAML's, minus any entry that would
 *  cover a load generator client (the limits would be skipped for it). */
interface TrustPlan {
  readonly given: readonly string[];
  readonly trusted: readonly string[];
  readonly removed: readonly string[];
}

function trustPlan(template: Record<string, unknown>): TrustPlan {
  const t = template['trusted_networks'];
  // the daemon's default when the file names none
  const given = Array.isArray(t) ? t.map(String) : ['127.0.0.1/32', '::1/128'];
  const pool = poolAddresses(LOADGEN_CLIENTS).map((a) => clientIp(a));
  const covers = (text: string): boolean => {
    const r = parseNetwork(text);
    return r.ok && pool.some((ip) => ip !== null && inNetwork(ip, r.network));
  };
  return { given, trusted: given.filter((x) => !covers(x)), removed: given.filter(covers) };
}

interface Derive {
  readonly store: Variant;
  readonly redisUrl: string | null;
  readonly listen: string;
  readonly logFile: string;
  readonly lower: SanityCase | null;
  /** store.max_keys; null: the daemon's default. */
  readonly maxKeys: number | null;
}

function derivedConfig(
  template: Record<string, unknown>,
  trust: TrustPlan,
  d: Derive,
): Record<string, unknown> {
  const c: Record<string, unknown> = { ...template };
  c['listen'] = [d.listen];
  c['log'] = { ...((c['log'] ?? {}) as Record<string, unknown>), file: d.logFile };
  c['trusted_networks'] = [...trust.trusted];
  delete c['rate_limits'];
  delete c['store'];
  if (d.store !== 'off') {
    c['rate_limits'] = rateLimitsYaml(d.lower, d.store === 'memory-rcpt');
    const max = d.maxKeys === null ? {} : { max_keys: d.maxKeys };
    c['store'] =
      d.store === 'redis'
        ? { type: 'redis', ...max, redis: { url: d.redisUrl } }
        : { type: 'memory', ...max };
  }
  return c;
}

/** The load generator clients the daemon, reading this configuration, would not limit. */
async function exemptClients(configText: string, clients: string): Promise<string[]> {
  const parsed = await parseConfig(configText, 'derived configuration');
  if (!parsed.ok) fail(`the derived configuration is invalid:\n${parsed.errors.join('\n')}`);
  const c = parsed.config;
  const nets: Network[] = [
    ...c.trustedNetworks,
    ...c.relayDomains.flatMap((e) => (e.kind === 'network' ? [e.network] : [])),
    ...c.rateLimits.allow,
  ];
  return poolAddresses(clients).filter((a) => {
    const ip = clientIp(a);
    return ip !== null && findNetwork(ip, nets) !== null;
  });
}

// ---- processes ----

interface Daemon {
  readonly proc: Captured;
  readonly pid: number;
  readonly listen: string;
  readonly logFile: string;
}

async function startDaemon(
  tmp: string,
  name: string,
  config: (listen: string, logFile: string) => Record<string, unknown>,
): Promise<Daemon> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const listen = `inet:${port}@127.0.0.1`;
    const logFile = path.join(tmp, `${name}.log`);
    await rm(logFile, { force: true });
    const configFile = path.join(tmp, `${name}.yaml`);
    await writeFile(configFile, stringifyYaml(config(listen, logFile)));
    const proc = run(process.execPath, [daemonMain, 'serve', '--config', configFile]);
    let exit: number | null | undefined;
    void proc.exited.then((c) => {
      exit = c;
    });
    const deadline = performance.now() + 30_000;
    for (;;) {
      if (hasStarted(readText(logFile)) && proc.child.pid !== undefined)
        return { proc, pid: proc.child.pid, listen, logFile };
      if (exit !== undefined || performance.now() > deadline) break;
      await sleep(50);
    }
    proc.child.kill('SIGKILL');
    await proc.exited;
    last = `${exit === undefined ? 'no "started" line within 30 s' : `exit ${String(exit)}`}\n${proc.stderr().slice(-2000)}\n${readText(logFile).slice(-2000)}`;
    if (!/EADDRINUSE|in use|cannot listen/i.test(last)) break;
  }
  fail(`the daemon (${name}) did not start: ${last}`);
}

async function stopProcess(p: Captured, graceMs: number): Promise<number | null> {
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

interface RedisServer {
  readonly proc: Captured;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
}

const REDIS_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];

async function redisCli(port: number, args: readonly string[]): Promise<string | null> {
  const p = run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return (await p.exited) === 0 ? p.stdout() : null;
}

async function startRedis(tmp: string): Promise<RedisServer> {
  let last = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = run('redis-server', ['--port', String(port), ...REDIS_ARGS, '--dir', tmp]);
    let exit: number | null | undefined;
    void proc.exited.then((c) => {
      exit = c;
    });
    const deadline = performance.now() + 10_000;
    while (exit === undefined && performance.now() < deadline) {
      if ((await redisCli(port, ['PING']))?.trim() === 'PONG' && proc.child.pid !== undefined)
        return { proc, pid: proc.child.pid, port, url: `redis://127.0.0.1:${port}` };
      await sleep(50);
    }
    if (exit === undefined) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    last = `${exit === undefined ? 'no PONG within 10 s' : `exit ${String(exit)}`}\n${proc.stdout().slice(-1500)}${proc.stderr().slice(-1500)}`;
    if (!/in use|bind/i.test(last)) break;
  }
  fail(`cannot start redis-server: ${last}`);
}

/** EVALSHA and EVAL calls (the store's Lua scripts) and their Redis-side µs, from INFO commandstats. */
interface ScriptStats {
  readonly calls: number;
  readonly usec: number;
}

async function scriptStats(port: number): Promise<ScriptStats | null> {
  const text = await redisCli(port, ['INFO', 'commandstats']);
  if (text === null) return null;
  let calls = 0;
  let usec = 0;
  for (const line of text.split(/\r?\n/)) {
    const m = /^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+)/.exec(line);
    if (m === null) continue;
    calls += Number(m[2]);
    usec += Number(m[3]);
  }
  return { calls, usec };
}

// ---- the daemon's log ----

interface LogFindings {
  readonly bytes: number;
  readonly events: Record<string, number>;
  /** Decision lines by stage. */
  readonly decisions: Record<string, number>;
  /** Decision lines refusing or tempfailing on behalf of a rate limit: `limit action` -> count. */
  readonly limited: Record<string, number>;
  /** The first such line's reason, per limit. */
  readonly limitedFirst: Record<string, string>;
  /** Decision lines whose `errors` name rate_limit or bad_recipients (a store call failed). */
  readonly storeErrors: number;
  /** Distinct client addresses in decision lines, and lines naming an address outside the pool. */
  readonly clients: number;
  readonly outsidePool: number;
  readonly outsideSamples: readonly string[];
  readonly warnSamples: readonly string[];
  /** Worker processes, from the primary's `started` line. */
  readonly workers: number | null;
}

interface LogLine {
  event?: unknown;
  level?: unknown;
  stage?: unknown;
  action?: unknown;
  rule?: unknown;
  reason?: unknown;
  client_addr?: unknown;
  errors?: unknown;
  worker?: unknown;
  workers?: unknown;
}

const RATE_CHECKS = new Set(['rate_limit', 'bad_recipients']);

async function analyseLog(file: string, pool: ReadonlySet<string>): Promise<LogFindings> {
  const events: Record<string, number> = {};
  const decisions: Record<string, number> = {};
  const limited: Record<string, number> = {};
  const limitedFirst: Record<string, string> = {};
  const outsideSamples: string[] = [];
  const warnSamples: string[] = [];
  const clients = new Set<string>();
  let bytes = 0;
  let storeErrors = 0;
  let outsidePool = 0;
  let workers: number | null = null;
  const bump = (r: Record<string, number>, k: string): void => {
    r[k] = (r[k] ?? 0) + 1;
  };
  if (!existsSync(file))
    return {
      bytes,
      events,
      decisions,
      limited,
      limitedFirst,
      storeErrors,
      clients: 0,
      outsidePool,
      outsideSamples,
      warnSamples,
      workers,
    };
  const rl = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    bytes += Buffer.byteLength(line) + 1;
    if (line === '') continue;
    let r: LogLine;
    try {
      r = JSON.parse(line) as LogLine;
    } catch {
      bump(events, '(not JSON)');
      continue;
    }
    const ev = typeof r.event === 'string' ? r.event : '(no event)';
    bump(events, ev);
    if ((r.level === 'warn' || r.level === 'error' || r.level === 'fatal') && warnSamples.length < 5)
      warnSamples.push(line.slice(0, 600));
    if (ev === 'started' && (r.worker === undefined || r.worker === 0) && typeof r.workers === 'number')
      workers = r.workers;
    if (ev !== 'decision') continue;
    bump(decisions, typeof r.stage === 'string' ? r.stage : '?');
    const rule = typeof r.rule === 'string' ? r.rule : '';
    const action = typeof r.action === 'string' ? r.action : '?';
    if (RATE_CHECKS.has(rule) && action !== 'accept') {
      const reason = typeof r.reason === 'string' ? r.reason : '';
      const limit = rule === 'rate_limit' ? reason.slice(0, Math.max(0, reason.indexOf(':'))) || '?' : rule;
      bump(limited, `${limit} ${action}`);
      limitedFirst[limit] ??= `${action} at ${typeof r.stage === 'string' ? r.stage : '?'}: ${reason}`;
    }
    if (
      Array.isArray(r.errors) &&
      r.errors.some((e) => RATE_CHECKS.has(String((e as { check?: unknown } | null)?.check)))
    )
      storeErrors++;
    const addr = typeof r.client_addr === 'string' ? r.client_addr : '';
    clients.add(addr);
    if (!pool.has(addr)) {
      outsidePool++;
      if (outsideSamples.length < 3) outsideSamples.push(line.slice(0, 400));
    }
  }
  rl.close();
  return {
    bytes,
    events,
    decisions,
    limited,
    limitedFirst,
    storeErrors,
    clients: clients.size,
    outsidePool,
    outsideSamples,
    warnSamples,
    workers,
  };
}

const total = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0);

// ---- throughput ----

interface RedisUse {
  /** Over the measured window, % of one core. */
  readonly cpuPct: number | null;
  /** Script calls over the window and over the whole run, and Redis's own µs per call. */
  readonly callsInWindow: number | null;
  readonly callsTotal: number | null;
  readonly usecPerCall: number | null;
}

interface ThroughputRun {
  readonly variant: Variant;
  readonly concurrency: number;
  readonly repetition: number;
  readonly loadgenCommand: string;
  readonly loadgenExit: number | null;
  readonly result: LoadgenResult | null;
  readonly milterCpuPct: number | null;
  readonly milterPeakRssMiB: number | null;
  readonly redis: RedisUse | null;
  readonly systemCpu: SystemCpu | null;
  readonly log: LogFindings;
  readonly problems: readonly string[];
  readonly disturbed: boolean;
  readonly discarded: number;
}

interface Ctx {
  readonly o: Options;
  readonly tmp: string;
  readonly template: Record<string, unknown>;
  readonly trust: TrustPlan;
}

function loadgenArgs(
  listen: string,
  concurrency: number,
  duration: number,
  warmup: number,
  clients: string,
): string[] {
  return [
    '--target',
    listen,
    '--concurrency',
    String(concurrency),
    '--duration',
    String(duration),
    '--warmup',
    String(warmup),
    '--clients',
    clients,
    ...LOADGEN_WORKLOAD,
  ];
}

function parseResult(
  lg: Captured,
  exit: number | null,
): { result: LoadgenResult | null; problem: string | null } {
  try {
    return { result: JSON.parse(lg.stdout()) as LoadgenResult, problem: null };
  } catch {
    return {
      result: null,
      problem: `loadgen printed no JSON (exit ${String(exit)}): ${lg.stderr().slice(-1000)}`,
    };
  }
}

async function measureOnce(
  ctx: Ctx,
  variant: Variant,
  concurrency: number,
  repetition: number,
): Promise<ThroughputRun> {
  const { o, tmp, template, trust } = ctx;
  const redis = variant === 'redis' ? await startRedis(tmp) : null;
  try {
    const d = await startDaemon(tmp, `${variant}-c${concurrency}-r${repetition}`, (listen, logFile) =>
      derivedConfig(template, trust, {
        store: variant,
        redisUrl: redis?.url ?? null,
        listen,
        logFile,
        lower: null,
        maxKeys: null,
      }),
    );
    const args = loadgenArgs(d.listen, concurrency, o.duration, o.warmup, LOADGEN_CLIENTS);
    const samples: ProcSample[] = [];
    const sample = (): ProcSample | null => {
      const s = procSample(d.pid);
      if (s !== null) samples.push(s);
      return s;
    };
    sample();
    const redisRunStart = redis === null ? null : await scriptStats(redis.port);
    const lg = run(loadgenBin, args);
    let windowStart: ProcSample | null = null;
    let windowEnd: ProcSample | null = null;
    let statStart: StatSample | null = null;
    let statEnd: StatSample | null = null;
    let redisStart: ProcSample | null = null;
    let redisEnd: ProcSample | null = null;
    let statsStart: Promise<ScriptStats | null> = Promise.resolve(null);
    let statsEnd: Promise<ScriptStats | null> = Promise.resolve(null);
    const t1 = setTimeout(() => {
      windowStart = sample();
      statStart = statSample();
      if (redis !== null) {
        redisStart = procSample(redis.pid);
        statsStart = scriptStats(redis.port);
      }
    }, o.warmup * 1000);
    const t2 = setTimeout(
      () => {
        windowEnd = sample();
        statEnd = statSample();
        if (redis !== null) {
          redisEnd = procSample(redis.pid);
          statsEnd = scriptStats(redis.port);
        }
      },
      (o.warmup + o.duration) * 1000,
    );
    const tick = setInterval(sample, 250);
    const loadgenExit = await lg.exited;
    clearInterval(tick);
    clearTimeout(t1);
    clearTimeout(t2);
    sample();
    const problems: string[] = [];
    const { result, problem } = parseResult(lg, loadgenExit);
    if (problem !== null) problems.push(problem);
    let redisUse: RedisUse | null = null;
    if (redis !== null) {
      const [a, b] = [await statsStart, await statsEnd];
      const end = await scriptStats(redis.port);
      const inWindow = a !== null && b !== null ? b.calls - a.calls : null;
      redisUse = {
        cpuPct: cpuPct(redisStart, redisEnd),
        callsInWindow: inWindow,
        callsTotal: end !== null && redisRunStart !== null ? end.calls - redisRunStart.calls : null,
        usecPerCall:
          a !== null && b !== null && b.calls > a.calls ? (b.usec - a.usec) / (b.calls - a.calls) : null,
      };
    }
    const exit = await stopProcess(d.proc, 20_000);
    if (exit !== 0) problems.push(`the daemon exited with ${String(exit)} after SIGTERM`);
    const log = await analyseLog(d.logFile, new Set(poolAddresses(LOADGEN_CLIENTS)));
    await rm(d.logFile, { force: true });
    const milterCpuPct = cpuPct(windowStart, windowEnd);
    problems.push(...runProblems(variant, result, log, redisUse));
    return {
      variant,
      concurrency,
      repetition,
      loadgenCommand: [path.relative(root, loadgenBin), ...args].join(' '),
      loadgenExit,
      result,
      milterCpuPct,
      milterPeakRssMiB:
        samples.length === 0 ? null : (Math.max(...samples.map((s) => s.rssPages)) * PAGE_SIZE) / 2 ** 20,
      redis: redisUse,
      systemCpu: systemCpu(
        statStart,
        statEnd,
        milterCpuPct === null ? null : milterCpuPct + (redisUse?.cpuPct ?? 0),
        result?.loadgen_cpu_pct ?? null,
      ),
      log,
      problems,
      disturbed: false,
      discarded: 0,
    };
  } finally {
    if (redis !== null) await stopProcess(redis.proc, 10_000);
  }
}

function cpuPct(a: ProcSample | null, b: ProcSample | null): number | null {
  return a === null || b === null || b.t <= a.t
    ? null
    : ((b.ticks - a.ticks) / CLK_TCK / ((b.t - a.t) / 1000)) * 100;
}

/** What makes a throughput run invalid (empty: valid). */
function runProblems(
  variant: Variant,
  r: LoadgenResult | null,
  log: LogFindings,
  redis: RedisUse | null,
): string[] {
  const out: string[] = [];
  if (r === null) return out;
  if (r.errors.total > 0)
    out.push(
      `the load generator counted ${r.errors.total} error(s) (tempfails included); first: ${r.errors.first ?? '—'}`,
    );
  const limited = total(log.limited);
  if (limited > 0)
    out.push(
      `${limited} decision line(s) refused or tempfailed by the rate limits (${Object.entries(log.limited)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}): the limits are not high enough for this load`,
    );
  if (log.storeErrors > 0) out.push(`${log.storeErrors} decision line(s) with a rate-limit store error`);
  const unavailable = log.events['redis_unavailable'] ?? 0;
  if (unavailable > 0)
    out.push(`the daemon logged redis_unavailable ${unavailable} time(s) (fell back to memory)`);
  const errs = (log.events['protocol_error'] ?? 0) + (log.events['handler_error'] ?? 0);
  if (errs > 0) out.push(`${errs} protocol_error/handler_error line(s)`);
  if (log.outsidePool > 0)
    out.push(
      `${log.outsidePool} decision line(s) name a client outside ${LOADGEN_CLIENTS}: ${log.outsideSamples[0] ?? ''}`,
    );
  const otherStages = total(log.decisions) - (log.decisions['rcpt'] ?? 0) - (log.decisions['eom'] ?? 0);
  if (otherStages > 0)
    out.push(
      `${otherStages} decision line(s) at connect/HELO/MAIL (${JSON.stringify(log.decisions)}): with nothing refused there are none, unless a check skipped (a rate limit exempting the client logs one)`,
    );
  const sent = r.totals.sent;
  if ((log.decisions['rcpt'] ?? 0) !== sent.rcpt || (log.decisions['eom'] ?? 0) !== sent.eom)
    out.push(
      `decision lines (rcpt ${log.decisions['rcpt'] ?? 0}, eom ${log.decisions['eom'] ?? 0}) differ from what was sent (rcpt ${sent.rcpt}, eom ${sent.eom})`,
    );
  if (variant === 'redis') {
    const calls = redis?.callsInWindow ?? null;
    const per = calls === null || r.messages === 0 ? null : calls / r.messages;
    if (per === null) out.push('no Redis command statistics');
    else if (per < EXPECTED_STORE_CALLS * STORE_CALLS_MIN_SHARE)
      out.push(
        `Redis ran ${per.toFixed(2)} script calls per message, expected ${EXPECTED_STORE_CALLS}: the store did not count in Redis`,
      );
  }
  return out;
}

async function measureUndisturbed(
  ctx: Ctx,
  variant: Variant,
  c: number,
  rep: number,
): Promise<ThroughputRun> {
  for (let attempt = 0; ; attempt++) {
    await waitQuiet();
    const m = await measureOnce(ctx, variant, c, rep);
    const other = m.systemCpu?.otherPct ?? 0;
    if (other <= DISTURBED_PCT) return { ...m, discarded: attempt };
    if (attempt >= DISTURBED_RETRIES) return { ...m, disturbed: true, discarded: attempt };
    process.stderr.write(`disturbed (rest of system ${other.toFixed(0)} %), again... `);
    await sleep(2000);
  }
}

// ---- sanity: the limits run ----

interface SanityRun {
  readonly store: 'memory' | 'redis';
  readonly limit: string;
  readonly setting: string;
  readonly clients: string;
  readonly loadgenCommand: string;
  readonly messages: number | null;
  /** Tempfail replies the load generator got (it counts each as an unexpected reply). */
  readonly generatorTempfails: number | null;
  /** Decision lines refused/tempfailed by the lowered limit, and by any rate limit. */
  readonly byThisLimit: number;
  readonly limited: Record<string, number>;
  /** The first refusal by that limit: `action at stage: reason`. */
  readonly first: string | null;
  readonly outsidePool: number;
  readonly pass: boolean;
  readonly problem: string | null;
}

async function sanityRun(ctx: Ctx, store: 'memory' | 'redis', c: SanityCase): Promise<SanityRun> {
  const { o, tmp, template, trust } = ctx;
  await waitQuiet();
  const redis = store === 'redis' ? await startRedis(tmp) : null;
  try {
    const d = await startDaemon(tmp, `sanity-${store}-${c.limit}`, (listen, logFile) =>
      derivedConfig(template, trust, {
        store,
        redisUrl: redis?.url ?? null,
        listen,
        logFile,
        lower: c,
        maxKeys: null,
      }),
    );
    // warm-up 0: every message counts, from the first connection on
    const args = loadgenArgs(d.listen, TARGET_CONCURRENCY, o.sanityDuration, 0, SANITY_CLIENTS);
    const lg = run(loadgenBin, args);
    const exit = await lg.exited;
    const { result, problem } = parseResult(lg, exit);
    await stopProcess(d.proc, 20_000);
    const log = await analyseLog(d.logFile, new Set(poolAddresses(SANITY_CLIENTS)));
    await rm(d.logFile, { force: true });
    const byThisLimit = Object.entries(log.limited)
      .filter(([k]) => k.split(' ')[0] === c.limit)
      .reduce((n, [, v]) => n + v, 0);
    return {
      store,
      limit: c.limit,
      setting: c.setting,
      clients: SANITY_CLIENTS,
      loadgenCommand: [path.relative(root, loadgenBin), ...args].join(' '),
      messages: result?.messages ?? null,
      generatorTempfails: result?.errors.unexpected_reply ?? null,
      byThisLimit,
      limited: log.limited,
      first: log.limitedFirst[c.limit] ?? null,
      outsidePool: log.outsidePool,
      pass: byThisLimit > 0 && log.outsidePool === 0,
      problem,
    };
  } finally {
    if (redis !== null) await stopProcess(redis.proc, 10_000);
  }
}

// ---- memory at 1,000,000 sources (child process) ----

interface MemoryPoint {
  readonly sources: number;
  readonly buckets: number;
  readonly leaseSets: number;
  readonly heapUsedMiB: number;
  /** Memory outside the V8 heap: ArrayBuffers (lru-cache's index arrays are typed arrays). */
  readonly externalMiB: number;
  readonly arrayBuffersMiB: number;
  readonly rssMiB: number;
}

interface MemoryRun {
  readonly maxKeys: number;
  readonly maxKeysSource: string;
  /** Buckets one session from a new source leaves in the store. */
  readonly bucketsPerSource: number;
  readonly baseline: MemoryPoint;
  readonly points: readonly MemoryPoint[];
  readonly exempt: number;
  readonly refused: number;
  /** Rule engine time per session (connect, MAIL, two RCPTs, close), all checks included, µs: with
   *  one other connection open throughout (the feed), and with none (the first sessions). */
  readonly usPerSession: number;
  readonly aloneSessions: number;
  readonly usPerSessionAlone: number;
  readonly bounded: boolean;
  readonly problem: string | null;
}

const MiB = 2 ** 20;
/** Every source in its own /24 (worst case: no key shared), from 64.0.0.1 up, away from 10/8 and 127/8. */
const SOURCE_BASE = 0x40000001;
/** The connection held open during the feed (outside the sources' range). */
const HELD_SOURCE = '63.255.255.1';

function settledAction(v: Verdict | null): SettledOutcome['action'] {
  if (v === null || v.action === 'ok') return 'accept';
  return v.action;
}

async function memoryChild(configFile: string, checkpoints: readonly number[], alone: number): Promise<void> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const text = await readFile(configFile, 'utf8');
  const parsed = await parseConfig(text, configFile);
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  const config = parsed.config;
  const services = createServices(config);
  const store = services.rates;
  if (!(store instanceof MemoryRateStore)) throw new Error('the configuration does not use the memory store');
  const engine = buildRuntime(config, 1, null, services).engine;
  const point = (sources: number): MemoryPoint => {
    gc();
    gc();
    const m = process.memoryUsage();
    return {
      sources,
      buckets: store.size.buckets,
      leaseSets: store.size.leases,
      heapUsedMiB: m.heapUsed / MiB,
      externalMiB: m.external / MiB,
      arrayBuffersMiB: m.arrayBuffers / MiB,
      rssMiB: m.rss / MiB,
    };
  };
  let exempt = 0;
  let refused = 0;
  const stage = (s: PolicyStage, input: PolicyInput): void => {
    const out = engine.evaluate(s, input);
    if (out instanceof Promise) throw new Error(`the ${s} stage went asynchronous with the memory store`);
    for (const t of out.trace) if (t.result === 'skip' && RATE_CHECKS.has(t.check)) exempt++;
    if (out.decidedBy !== null && RATE_CHECKS.has(out.decidedBy)) refused++;
    engine.settle(s, input, { action: settledAction(out.verdict), decidedBy: out.decidedBy });
  };
  const session = (i: number, address = ipText(SOURCE_BASE + i * 256), close = true): void => {
    const notes = new Map<string, unknown>();
    const closers: (() => unknown)[] = [];
    const keep = <T>(key: string, compute: () => T): T => {
      if (notes.has(key)) return notes.get(key) as T;
      const v = compute();
      notes.set(key, v);
      return v;
    };
    const hooks: SessionHooks = { keep, atClose: (r) => void closers.push(r) };
    const connectionNotes = new Map<string, unknown>();
    const messageNotes = new Map<string, unknown>();
    const remember =
      (m: Map<string, unknown>) =>
      <T>(key: string, compute: () => T): T => {
        if (m.has(key)) return m.get(key) as T;
        const v = compute();
        m.set(key, v);
        return v;
      };
    const base = {
      client: {
        address,
        ip: clientIp(address),
        hostname: `[${address}]`,
        port: 1024 + (i % 60000),
        kind: 'inet4' as const,
      },
      helo: 'client.example',
      sender: '<bench@client.example>',
      senderArgs: [],
      recipients: [] as string[],
      macro: (): string | undefined => undefined,
      memo: { connection: remember(connectionNotes), message: remember(messageNotes) },
      session: hooks,
    };
    stage('connect', { ...base, stage: 'connect', recipient: null });
    stage('mail', { ...base, stage: 'mail', recipient: null });
    stage('rcpt', { ...base, stage: 'rcpt', recipient: '<user@example.test>' });
    stage('rcpt', {
      ...base,
      stage: 'rcpt',
      recipient: '<someone@elsewhere.example>',
      recipients: ['<user@example.test>'],
    });
    if (close) for (const release of closers) void release();
  };
  // The lease release at close is a promise chain (as in the daemon): let it run, as the daemon's
  // event loop would, every few sessions and before each reading.
  const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const baseline = point(0);
  session(0);
  await drain();
  const bucketsPerSource = store.size.buckets;
  // A quiet gateway first: one connection at a time, each closed (its lease released) before the
  // next opens, so every close leaves the store's lease cache empty.
  const tAlone = performance.now();
  for (let i = 1; i <= alone; i++) {
    session(i);
    await drain();
  }
  const usPerSessionAlone = ((performance.now() - tAlone) * 1000) / Math.max(1, alone);
  // Then a busy one: one connection (not a counted source) stays open throughout, as under any
  // flood, so the lease cache never empties.
  session(-1, HELD_SOURCE, false);
  const points: MemoryPoint[] = [];
  let fed = alone + 1;
  let feedMs = 0;
  const fedBefore = fed;
  for (const target of checkpoints) {
    const t0 = performance.now();
    for (; fed < target; fed++) {
      session(fed);
      if ((fed & 255) === 0) await drain();
    }
    await drain();
    feedMs += performance.now() - t0;
    points.push(point(fed));
  }
  const max = config.store.max_keys;
  const last = points[points.length - 1];
  const saturated = points.filter((p) => p.sources * bucketsPerSource >= max);
  const out: MemoryRun = {
    maxKeys: max,
    maxKeysSource: text.includes('max_keys') ? 'store.max_keys' : 'the default',
    bucketsPerSource,
    baseline,
    points,
    exempt,
    refused,
    usPerSession: (feedMs * 1000) / Math.max(1, fed - fedBefore),
    aloneSessions: alone,
    usPerSessionAlone,
    bounded:
      points.every((p) => p.buckets <= max && p.leaseSets <= max) &&
      saturated.every((p) => p.buckets === max),
    problem:
      exempt > 0
        ? `${exempt} stage(s) skipped the rate limits as exempt`
        : last === undefined
          ? 'no checkpoint'
          : null,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function measureMemory(ctx: Ctx, maxKeys: number | null): Promise<MemoryRun> {
  const { o, tmp, template, trust } = ctx;
  const configFile = path.join(tmp, `memory-${maxKeys ?? 'default'}.yaml`);
  const cfg = derivedConfig(template, trust, {
    store: 'memory',
    redisUrl: null,
    listen: 'inet:1@127.0.0.1',
    logFile: path.join(tmp, 'memory-unused.log'),
    lower: null,
    maxKeys,
  });
  await writeFile(configFile, stringifyYaml(cfg));
  await waitQuiet();
  const p = run(process.execPath, [
    '--expose-gc',
    thisScript,
    '--memory-child',
    configFile,
    o.checkpoints.join(','),
    String(o.aloneSessions),
  ]);
  const code = await p.exited;
  try {
    if (code !== 0) throw new Error(`exit ${String(code)}`);
    return JSON.parse(p.stdout()) as MemoryRun;
  } catch (e) {
    fail(
      `the memory child (max_keys ${maxKeys ?? 'default'}) failed: ${e instanceof Error ? e.message : String(e)}\n${p.stderr().slice(-3000)}`,
    );
  }
}

// ---- report ----

function median(values: readonly (number | null | undefined)[]): number | undefined {
  const v = values
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

interface Cell {
  readonly runs: number;
  readonly msgsPerSec: number | undefined;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly p50: number | undefined;
  readonly p99: number | undefined;
  readonly milterCpu: number | undefined;
  /** Milter CPU per message, µs; and the Redis server's. */
  readonly cpuPerMsg: number | undefined;
  readonly redisCpu: number | undefined;
  readonly redisCpuPerMsg: number | undefined;
  readonly callsPerMsg: number | undefined;
  readonly redisUsecPerCall: number | undefined;
  readonly loadgenCpu: number | undefined;
  readonly other: number | undefined;
  readonly rssMiB: number | undefined;
  readonly errors: number;
  readonly invalid: number;
  readonly disturbed: number;
  readonly workers: number | undefined;
  readonly protocol: string | undefined;
}

function cell(all: readonly ThroughputRun[], v: Variant, c: number): Cell | undefined {
  const runs = all.filter((m) => m.variant === v && m.concurrency === c);
  if (runs.length === 0) return undefined;
  const ok = runs.filter((m) => m.result !== null);
  const tput = ok.map((m) => (m.result as LoadgenResult).messages_per_sec);
  const perMsg = (pct: number | null | undefined, m: ThroughputRun): number | undefined =>
    pct === null || pct === undefined || m.result === null || m.result.messages_per_sec === 0
      ? undefined
      : (pct / 100 / m.result.messages_per_sec) * 1e6;
  return {
    runs: runs.length,
    msgsPerSec: median(tput),
    min: tput.length === 0 ? undefined : Math.min(...tput),
    max: tput.length === 0 ? undefined : Math.max(...tput),
    p50: median(ok.map((m) => m.result?.latency_us.message?.p50)),
    p99: median(ok.map((m) => m.result?.latency_us.message?.p99)),
    milterCpu: median(runs.map((m) => m.milterCpuPct)),
    cpuPerMsg: median(runs.map((m) => perMsg(m.milterCpuPct, m))),
    redisCpu: median(runs.map((m) => m.redis?.cpuPct)),
    redisCpuPerMsg: median(runs.map((m) => perMsg(m.redis?.cpuPct, m))),
    callsPerMsg: median(
      runs.map((m) => {
        const calls = m.redis?.callsInWindow ?? null;
        const msgs = m.result?.messages ?? 0;
        return calls === null || msgs === 0 ? undefined : calls / msgs;
      }),
    ),
    redisUsecPerCall: median(runs.map((m) => m.redis?.usecPerCall)),
    loadgenCpu: median(ok.map((m) => m.result?.loadgen_cpu_pct)),
    other: median(runs.map((m) => m.systemCpu?.otherPct)),
    rssMiB: median(runs.map((m) => m.milterPeakRssMiB)),
    errors: ok.reduce((n, m) => n + (m.result?.errors.total ?? 0), 0),
    invalid: runs.filter((m) => m.problems.length > 0).length,
    disturbed: runs.filter((m) => m.disturbed).length,
    workers: median(runs.map((m) => m.log.workers)),
    protocol: ok[0]?.result?.negotiated?.protocol,
  };
}

/** Throughput cost of a store against `off`, %. */
function cost(all: readonly ThroughputRun[], v: Variant, c: number): number | null {
  const a = cell(all, v, c)?.msgsPerSec;
  const off = cell(all, 'off', c)?.msgsPerSec;
  return a === undefined || off === undefined || off === 0 ? null : (1 - a / off) * 100;
}

interface Finding {
  readonly text: string;
  readonly pass: boolean | null;
}

function verdicts(rep: RawReport): Finding[] {
  const out: Finding[] = [];
  const all = rep.throughput;
  if (rep.options.parts.includes('throughput')) {
    for (const v of TARGETED) {
      const k = cost(all, v, TARGET_CONCURRENCY);
      const max = TARGET_MAX_COST[v];
      out.push({
        text: `${VARIANT_LABEL[v]} at ${TARGET_CONCURRENCY} connections costs at most ${max} % of the throughput with limits off: ${k === null ? 'not measured' : `${k.toFixed(1)} %`}`,
        pass: k === null ? null : k <= max,
      });
    }
    const invalid = all.filter((m) => m.problems.length > 0);
    out.push({
      text:
        invalid.length === 0
          ? `every throughput run is valid: nothing refused or tempfailed by a rate limit, no store error, no Redis fallback, every decision for a load generator client (${all.length} runs)`
          : `${invalid.length} of ${all.length} throughput runs are invalid: ${invalid
              .slice(0, 3)
              .map((m) => `${m.variant} at ${m.concurrency} #${m.repetition + 1}: ${m.problems[0] ?? ''}`)
              .join('; ')}`,
      pass: all.length === 0 ? null : invalid.length === 0,
    });
    const failed = rep.sanity.filter((s) => !s.pass);
    out.push({
      text:
        failed.length === 0
          ? `the limits run: each of the ${SANITY_CASES.length} limits, set low, refused the load generator's clients, with the memory store and with Redis (${rep.sanity.length} sanity runs)`
          : `${failed.length} sanity run(s) got no refusal from the lowered limit: ${failed.map((s) => `${s.store} ${s.limit}`).join(', ')}`,
      pass: rep.sanity.length === 0 ? null : failed.length === 0,
    });
  }
  for (const m of rep.memory) {
    const at = (n: number): MemoryPoint | undefined => m.points.find((p) => p.sources === n);
    const first = at(1_000_000) ?? m.points[0];
    const last = m.points[m.points.length - 1];
    out.push({
      text: `memory store, max_keys ${fmtInt(m.maxKeys)}: buckets bounded (${m.points.map((p) => fmtInt(p.buckets)).join(' → ')} over ${m.points.map((p) => fmtInt(p.sources)).join(' / ')} sources)${first !== undefined && last !== undefined ? `; heap ${mib(first.heapUsedMiB)} MiB after ${fmtInt(first.sources)} sources, ${mib(last.heapUsedMiB)} MiB after ${fmtInt(last.sources)}` : ''}${m.problem === null ? '' : ` — ${m.problem}`}`,
      pass: m.bounded && m.problem === null,
    });
  }
  return out;
}

const fmtInt = (n: number): string => n.toLocaleString('en-US');
const mib = (x: number): string => x.toFixed(x >= 100 ? 0 : 1);
const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '—' : `${v.toFixed(0)} %`;
const n0 = (v: number | null | undefined, d = 0): string =>
  v === null || v === undefined ? '—' : v.toFixed(d);

function ms(us: number | undefined): string {
  if (us === undefined) return '—';
  const v = us / 1000;
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

interface RawReport {
  readonly generatedBy: 'bench/rate-limit.ts';
  readonly date: string;
  readonly command: string;
  readonly machine: Machine;
  readonly redisVersion: string;
  readonly options: Omit<Options, 'out' | 'fromJson'>;
  readonly config: {
    readonly template: string;
    readonly trust: TrustPlan;
    readonly exemptClients: readonly string[];
    readonly rateLimits: Record<string, unknown>;
    readonly redisArgs: readonly string[];
  };
  readonly throughput: readonly ThroughputRun[];
  readonly sanity: readonly SanityRun[];
  readonly memory: readonly MemoryRun[];
  readonly elapsedS: number;
  readonly verdicts?: readonly Finding[];
}

/** The rate_limits block as an admin would write it: one flow mapping per limit. */
function limitsYamlText(r: Record<string, unknown>): string {
  const flow = (v: unknown): string =>
    stringifyYaml(v, { collectionStyle: 'flow', lineWidth: 0 })
      .trim()
      .replace(/\[ ([^\]]*) \]/g, '[$1]');
  const limits = Array.isArray(r['limits']) ? (r['limits'] as unknown[]) : [];
  return [
    'rate_limits:',
    '  limits:',
    ...limits.map((l) => `    - ${flow(l)}`),
    `  bad_recipients: ${flow(r['bad_recipients'])}`,
  ].join('\n');
}

function markdownSection(rep: RawReport): string {
  const m = rep.machine;
  const o = rep.options;
  const all = rep.throughput;
  const L: string[] = [];
  L.push('## Rate limits: the cost of counting, and memory at 1,000,000 sources');
  L.push('');
  L.push(
    '<!-- Written by bench/rate-limit.ts (`npm run bench:rate-limit`); do not edit by hand. Raw data: benchmarks-rate-limit.json. -->',
  );
  L.push('');
  L.push(
    `Measured ${rep.date} in ${Math.round(rep.elapsedS)} s, commit ${m.commit}${m.uncommitted.length > 0 ? ` plus uncommitted ${m.uncommitted.map((f) => `\`${f}\``).join(', ')}` : ''}; ` +
      `${m.cores} cores (${m.cpuModel}), Node ${m.node}, ${rep.redisVersion}. Reproduce: \`${rep.command}\`.`,
  );
  L.push('');
  if (o.parts.includes('throughput')) {
    const workers = median(all.map((r) => r.log.workers));
    L.push('### Throughput with limits on');
    L.push('');
    L.push(
      `bench/c/loadgen.c as in the main benchmark (\`--mime\`, one milter connection per message, clients cycling through ${LOADGEN_CLIENTS}: ${poolAddresses(LOADGEN_CLIENTS).length} addresses in one /24, a local and a relayed recipient), ` +
        `${o.warmup} s of warm-up and ${o.duration} s measured per run, against one fresh daemon per run on a copy of ${path.relative(root, configTemplate)} ` +
        `(\`workers: auto\`, ${workers === undefined ? '?' : workers} worker processes, like \`milter-policy\` above; decisions logged to a file). Variants:`,
    );
    L.push('');
    L.push('- **off**: the file as written, no `rate_limits`.');
    L.push(
      '- **memory store**: the limits below, `store: {type: memory}`. Each worker process has its own store, so each counts only the connections it accepted (about 1/' +
        `${workers ?? 'N'} of a client's); the limits are per worker.`,
    );
    L.push(
      `- **Redis store**: the same limits, \`store: {type: redis, redis: {url: ...}}\` against a private \`redis-server ${rep.config.redisArgs.map((a) => (a === '' ? '""' : a)).join(' ')}\` on a free port, started fresh for each run; every worker shares its counts (one ioredis connection per worker; each store call is one EVALSHA). Its CPU is shown separately; it shares the machine's ${m.cores} cores with the daemon and the load generator.`,
    );
    L.push(
      '- **memory store, RCPT-stage limits only** (a diagnostic, no target): only `rcpt-client` and `bad_recipients`, counted at RCPT, where the daemon answers anyway. Connections are counted and leases renewed without a reply the MTA waits for (NR_CONN and NR_MAIL stay negotiated), but a `messages` limit can refuse at MAIL, so with one the daemon wants a reply to MAIL (NR_MAIL off): one more milter round trip per message. This variant keeps the protocol of `off`, so its cost is the counting alone.',
    );
    L.push('');
    L.push('```yaml');
    L.push(limitsYamlText(rep.config.rateLimits));
    L.push('```');
    L.push('');
    const tr = rep.config.trust;
    L.push(
      `The limits are far above what the generator sends (about 40 connections a second from each client), so they count and never refuse; every run is checked for that (below). ` +
        `The daemon sees the client address of the connect packet (${LOADGEN_CLIENTS}), not the socket's 127.0.0.1; the derived configuration sets \`trusted_networks: [${tr.trusted.join(', ')}]\`` +
        `${tr.removed.length > 0 ? ` (removed from the bench YAML's list: ${tr.removed.join(', ')})` : ' (as in the bench YAML)'}, and the daemon's own parser finds ` +
        `${rep.config.exemptClients.length === 0 ? 'none' : rep.config.exemptClients.join(', ')} of the generator's clients in trusted networks, relay networks or \`rate_limits.allow\`.`,
    );
    L.push('');
    L.push(
      `${o.repeat > 1 ? `Each variant ran ${o.repeat} times, interleaved (off, memory, Redis, RCPT-only, off, ...); figures are medians, msgs/s with min–max. ` : ''}` +
        `Cost = 1 − msgs/s ÷ msgs/s with limits off. Before each run the driver waits for a quiet machine; a run that other work disturbed (rest of system > ${DISTURBED_PCT} % of a core) is repeated up to ${DISTURBED_RETRIES} times, ⚠ marks a cell with a run that stayed disturbed, ❗ one with an invalid run.`,
    );
    L.push('');
    for (const c of o.concurrency) {
      L.push(`#### ${c} connections`);
      L.push('');
      L.push(
        '| variant | msgs/s | cost | target | msg p50 | msg p99 | milter CPU | CPU µs/msg | Redis CPU | Redis CPU µs/msg | Redis calls/msg | Redis µs/call | loadgen CPU | rest of system | milter peak RSS | errors |',
      );
      L.push('|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
      for (const v of VARIANTS) {
        const x = cell(all, v, c);
        if (x === undefined) continue;
        const k = v === 'off' ? null : cost(all, v, c);
        const target = !isTargeted(v)
          ? v === 'off'
            ? ''
            : 'diagnostic'
          : c !== TARGET_CONCURRENCY
            ? '—'
            : `≤ ${TARGET_MAX_COST[v]} % ${k === null ? '' : k <= TARGET_MAX_COST[v] ? '✅' : '❌'}`;
        const tput =
          x.runs > 1 && x.min !== undefined && x.max !== undefined
            ? `${n0(x.msgsPerSec)} (${x.min.toFixed(0)}–${x.max.toFixed(0)})`
            : n0(x.msgsPerSec);
        L.push(
          `| ${VARIANT_LABEL[v]}${x.disturbed > 0 ? ' ⚠' : ''}${x.invalid > 0 ? ' ❗' : ''} | ${tput} | ${k === null ? '—' : `${k.toFixed(1)} %`} | ${target} | ${ms(x.p50)} | ${ms(x.p99)} | ${pct(x.milterCpu)} | ${n0(x.cpuPerMsg)} | ${pct(x.redisCpu)} | ${n0(x.redisCpuPerMsg)} | ${n0(x.callsPerMsg, 2)} | ${n0(x.redisUsecPerCall, 1)} | ${pct(x.loadgenCpu)} | ${pct(x.other)} | ${n0(x.rssMiB)} MiB | ${x.errors} |`,
        );
      }
      L.push('');
    }
    const proto = VARIANTS.map(
      (v) => [v, cell(all, v, o.concurrency[0] ?? TARGET_CONCURRENCY)?.protocol] as const,
    )
      .filter(([, p]) => p !== undefined)
      .map(([v, p]) => `${v} ${p}`);
    L.push(
      `CPU is % of one core over the measured window (the daemon's processes summed; Redis separately); "rest of system" is the machine's busy time minus the daemon, Redis and the load generator. ` +
        `All of them share the ${m.cores} cores. Negotiated milter protocol: ${proto.join(', ')} (0x1000 NR_CONN and 0x4000 NR_MAIL: no reply wanted at connect and MAIL). ` +
        `"Redis calls/msg" is Redis's own count of EVALSHA/EVAL in the window over the messages completed in it (${EXPECTED_STORE_CALLS} expected: 3 at connect, 1 at MAIL, 2 at the local recipient, 1 for the refused relayed one, 1 lease release); "Redis µs/call" is Redis's own time per script call.`,
    );
    L.push('');
    for (const c of o.concurrency) {
      const full = cost(all, 'memory', c);
      const rcpt = cost(all, 'memory-rcpt', c);
      const us = (v: Variant): string => `${n0(cell(all, v, c)?.cpuPerMsg)} µs`;
      const mem = cell(all, 'memory', c)?.cpuPerMsg;
      const red = cell(all, 'redis', c);
      const parts: string[] = [];
      if (full !== null && rcpt !== null)
        parts.push(
          `throughput cost of every limit ${full.toFixed(1)} %, of the RCPT-stage limits alone (same protocol as off) ${rcpt.toFixed(1)} %`,
        );
      parts.push(
        `daemon CPU per message off ${us('off')}, RCPT-stage limits only ${us('memory-rcpt')}, every limit in memory ${us('memory')}, in Redis ${us('redis')}`,
      );
      const tail =
        'The connect and MAIL limits add their own counting, and the messages limit one more milter round trip per message (the daemon wants a reply to MAIL)' +
        (mem !== undefined && red?.cpuPerMsg !== undefined
          ? `; with Redis each of the ${EXPECTED_STORE_CALLS} store calls costs the daemon about ${((red.cpuPerMsg - mem) / EXPECTED_STORE_CALLS).toFixed(0)} µs more than in memory (an ioredis command each: a socket write, a reply to parse, a promise, a timer), while Redis itself spends ${n0(red.redisUsecPerCall, 1)} µs on it`
          : '') +
        '. Differences of a few points are within the run-to-run spread on this shared machine (see min–max).';
      L.push(`Where the cost goes at ${c} connections: ${parts.join('; ')}. ${tail}`, '');
    }
    const invalid = all.filter((r) => r.problems.length > 0);
    L.push(
      invalid.length === 0
        ? `Every run checked: the load generator saw no tempfail or error, the decision log has one line per recipient and message with no refusal, tempfail or store error by \`rate_limit\` or \`bad_recipients\`, every line names one of the generator's ${poolAddresses(LOADGEN_CLIENTS).length} clients (${median(all.map((r) => r.log.clients)) ?? '?'} distinct per run), no \`redis_unavailable\`, and with Redis the script calls per message are Redis's own count. ${all.reduce((n, r) => n + r.discarded, 0)} disturbed run(s) were repeated.`
        : `❗ Invalid runs: ${invalid.map((r) => `${r.variant} at ${r.concurrency} #${r.repetition + 1}: ${r.problems.join('; ')}`).join(' | ')}`,
    );
    L.push('');
    L.push('#### The limits run');
    L.push('');
    L.push(
      `Sanity runs (${o.sanityDuration} s, no warm-up, ${TARGET_CONCURRENCY} connections, same configuration with one limit set low): each must see refusals from that limit in the daemon's decision lines.`,
    );
    L.push('');
    L.push(
      '| store | limit set low | clients | messages | tempfails seen by the generator | refused by that limit (decision lines) | first such decision |',
    );
    L.push('|---|---|---|--:|--:|--:|---|');
    for (const s of rep.sanity) {
      const reason = s.first ?? '';
      L.push(
        `| ${s.store} | \`${s.limit}\`: ${s.setting} | ${s.clients} | ${n0(s.messages)} | ${n0(s.generatorTempfails)} | ${s.byThisLimit} ${s.pass ? '✅' : '❌'} | ${reason === '' ? '—' : `\`${String(reason).replace(/`/g, "'")}\``} |`,
      );
    }
    L.push('');
  }
  if (rep.memory.length > 0) {
    L.push('### Memory at 1,000,000 distinct sources');
    L.push('');
    const first = rep.memory[0] as MemoryRun;
    L.push(
      `In a child process (\`node --expose-gc\`): the daemon's rule engine built from the \`memory\` configuration above (buildRuntime: every check, the limits' MemoryRateStore), fed one SMTP session per new source — connect, MAIL, a local and a relayed RCPT (refused by the relay guard, so the bad-recipient count runs too), close — with every source in its own /24 from 64.0.0.1 up (the worst case: no key shared), ` +
        `${fmtInt(first.bucketsPerSource)} buckets per source. The first ${fmtInt(first.aloneSessions)} sessions run one at a time, each closed before the next opens (a quiet gateway); for the rest one other connection stays open throughout (a busy one: under a flood many are). ` +
        `Heap, memory outside it (ArrayBuffers: lru-cache's index arrays, allocated at max_keys up front) and RSS after a forced GC at each checkpoint; "buckets" is the store's count of bucket entries (live, or expired and not yet evicted). The store's buckets sit in an lru-cache of \`max_keys\` entries, its lease sets in another.`,
    );
    L.push('');
    for (const r of rep.memory) {
      L.push(`#### max_keys ${fmtInt(r.maxKeys)} (${r.maxKeysSource})`);
      L.push('');
      L.push('| sources | buckets | lease sets | heap used | ArrayBuffers | RSS |');
      L.push('|--:|--:|--:|--:|--:|--:|');
      for (const p of [r.baseline, ...r.points])
        L.push(
          `| ${p.sources === 0 ? '0 (engine built)' : fmtInt(p.sources)} | ${fmtInt(p.buckets)} | ${fmtInt(p.leaseSets)} | ${mib(p.heapUsedMiB)} MiB | ${mib(p.arrayBuffersMiB)} MiB | ${mib(p.rssMiB)} MiB |`,
        );
      L.push('');
      L.push(
        `${r.bounded ? 'Bounded' : '❌ Not bounded'}: the bucket count stops at max_keys (${fmtInt(r.maxKeys)}) once the sources create more keys than that; lease sets (a released lease leaves its empty set to the LRU) are bounded the same way. ${r.exempt} stage(s) exempt, ${r.refused} refused. The engine spent ${r.usPerSession.toFixed(1)} µs per session during the feed (all checks, GC included), and ${r.usPerSessionAlone.toFixed(1)} µs per session when each connection was the only one open (an event-loop turn each included).${r.problem === null ? '' : ` ❗ ${r.problem}`}`,
      );
      L.push('');
    }
  }
  L.push('### Verdicts');
  L.push('');
  for (const v of verdicts(rep)) L.push(`- ${v.pass === null ? '⏳' : v.pass ? '✅' : '❌'} ${v.text}`);
  return L.join('\n');
}

async function writeReports(out: string, rep: RawReport): Promise<void> {
  await mkdir(out, { recursive: true });
  const jsonFile = path.join(out, 'benchmarks-rate-limit.json');
  await writeFile(jsonFile, await formatJson(jsonFile, { ...rep, verdicts: verdicts(rep) }));
  const mdFile = path.join(out, 'benchmarks.md');
  const doc = await readFile(mdFile, 'utf8').catch(() => '');
  await writeFile(mdFile, replaceSection(doc, 'rate-limit', markdownSection(rep)));
  say(`wrote ${path.relative(root, mdFile)} and ${path.relative(root, jsonFile)}`);
  for (const v of verdicts(rep)) say(`${v.pass === null ? 'n/a ' : v.pass ? 'PASS' : 'FAIL'} ${v.text}`);
}

function invalid(rep: RawReport): boolean {
  return (
    rep.throughput.some((r) => r.problems.length > 0) ||
    rep.sanity.some((s) => !s.pass) ||
    rep.memory.some((m) => !m.bounded || m.problem !== null)
  );
}

// ---- main ----

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--memory-child') {
    await memoryChild(argv[1] ?? '', (argv[2] ?? '').split(',').map(Number), Number(argv[3] ?? '0'));
    return 0;
  }
  const o = parseOptions(argv);
  if (o.fromJson !== null) {
    const raw = JSON.parse(await readFile(o.fromJson, 'utf8')) as RawReport;
    // The store-call check is judged again with this script's expectation (EXPECTED_STORE_CALLS):
    // a raw file measured with a daemon that makes another number of calls per message.
    const rep: RawReport = {
      ...raw,
      throughput: raw.throughput.map((m) => ({
        ...m,
        problems: [
          ...m.problems.filter((p) => !p.startsWith('Redis ran ')),
          ...runProblems(m.variant, m.result, m.log, m.redis).filter((p) => p.startsWith('Redis ran ')),
        ],
      })),
    };
    await writeReports(o.out, rep);
    return invalid(rep) ? 2 : 0;
  }
  const started = performance.now();
  if (!existsSync(daemonMain))
    fail(`${path.relative(root, daemonMain)} does not exist (run \`npm run build\`)`);
  const template = parseYaml(await readFile(configTemplate, 'utf8')) as Record<string, unknown>;
  if (template['workers'] !== 'auto')
    say(`note: ${path.relative(root, configTemplate)} has workers: ${String(template['workers'])}, not auto`);
  const trust = trustPlan(template);
  if (trust.removed.length > 0)
    say(`trusted_networks: dropped ${trust.removed.join(', ')} (would exempt the load generator's clients)`);
  const redisVersion = firstLine('redis-server', ['--version']);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'milter-rate-bench-'));
  const ctx: Ctx = { o, tmp, template, trust };
  const probe = stringifyYaml(
    derivedConfig(template, trust, {
      store: 'memory',
      redisUrl: null,
      listen: 'inet:1@127.0.0.1',
      logFile: path.join(tmp, 'probe.log'),
      lower: null,
      maxKeys: null,
    }),
  );
  const exempt = await exemptClients(probe, LOADGEN_CLIENTS);
  if (exempt.length > 0)
    fail(`the derived configuration exempts load generator clients: ${exempt.join(', ')}`);
  const throughput: ThroughputRun[] = [];
  const sanity: SanityRun[] = [];
  const memory: MemoryRun[] = [];
  try {
    if (o.parts.includes('throughput')) {
      if (redisVersion === 'unknown') fail('redis-server not found (apt-get install redis-server)');
      await buildCPrograms();
      for (const store of ['memory', 'redis'] as const) {
        for (const c of SANITY_CASES) {
          process.stderr.write(`rate-limit bench: sanity ${store}, ${c.limit} set low (${c.setting})... `);
          const s = await sanityRun(ctx, store, c);
          sanity.push(s);
          process.stderr.write(
            `${s.byThisLimit} refusals by it${s.pass ? '' : ' — FAILED'}${s.problem === null ? '' : ` (${s.problem})`}\n`,
          );
        }
      }
      for (let rep = 0; rep < o.repeat; rep++) {
        for (const c of o.concurrency) {
          for (const v of VARIANTS) {
            process.stderr.write(
              `rate-limit bench: ${VARIANT_LABEL[v]} at ${c} connections${o.repeat > 1 ? ` [${rep + 1}/${o.repeat}]` : ''}... `,
            );
            const m = await measureUndisturbed(ctx, v, c, rep);
            throughput.push(m);
            const r = m.result;
            process.stderr.write(
              r === null
                ? `no result: ${m.problems.join('; ')}\n`
                : `${r.messages_per_sec.toFixed(0)} msgs/s, p99 ${ms(r.latency_us.message?.p99)} ms, milter CPU ${pct(m.milterCpuPct)}${m.redis === null ? '' : `, Redis CPU ${pct(m.redis.cpuPct)}, ${m.redis.callsInWindow === null || r.messages === 0 ? '?' : (m.redis.callsInWindow / r.messages).toFixed(2)} calls/msg`}, rest ${pct(m.systemCpu?.otherPct)}${m.problems.length === 0 ? '' : ` — INVALID: ${m.problems.join('; ')}`}\n`,
            );
            await sleep(500);
          }
        }
      }
    }
    if (o.parts.includes('memory')) {
      for (const maxKeys of [null, o.smallMaxKeys]) {
        say(
          `memory: max_keys ${maxKeys === null ? 'default' : fmtInt(maxKeys)}, ${o.checkpoints.map(fmtInt).join(' / ')} sources...`,
        );
        const r = await measureMemory(ctx, maxKeys);
        memory.push(r);
        say(
          `  ${r.points.map((p) => `${fmtInt(p.sources)}: ${fmtInt(p.buckets)} buckets, heap ${mib(p.heapUsedMiB)} MiB, RSS ${mib(p.rssMiB)} MiB`).join('; ')}`,
        );
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const { out: _out, fromJson: _fromJson, ...options } = o;
  const rep: RawReport = {
    generatedBy: 'bench/rate-limit.ts',
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: reproduceCommand(o),
    machine: machine(),
    redisVersion,
    options,
    config: {
      template: path.relative(root, configTemplate),
      trust,
      exemptClients: exempt,
      rateLimits: rateLimitsYaml(null),
      redisArgs: REDIS_ARGS,
    },
    throughput,
    sanity,
    memory,
    elapsedS: (performance.now() - started) / 1000,
  };
  await writeReports(o.out, rep);
  return invalid(rep) ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    killAll();
    fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
  },
);
