// The access_db benchmark (issue 3), compiled to dist/bench/access-db.js and run as
//   npm run build && node dist/bench/access-db.js [options]
// It generates a deterministic 1,000,000-entry sendmail access file (./access-db-generate.ts) and
// measures, each on the real CLI and daemon (`node dist/cli/main.js`):
//   compile  `milter-policy makemap hash access < access`: wall time, the CLI's own time
//            (MILTER_POLICY_VERBOSE=1), peak RSS, the image size;
//   load     a fresh daemon (workers: 1) with no access_db, with the compiled image and with the
//            text source: spawn -> `started` wall time, `access_db_loaded.load_ms`, and VmRSS /
//            VmHWM / RssAnon from /proc/PID/status after a few idle seconds;
//   lookup   in this process, on the image: ns per hostWalk / ipWalk / addressWalk over samples of
//            keys that hit and that miss (after warm-up; mean over whole passes, p50/p99 of single
//            calls with the timer's own cost subtracted);
//   reload   the load generator (bench/c/loadgen.c, Postfix-like, 64 connections, --timeline) against
//            the daemon serving the compiled map, for each `workers` setting asked for; during the
//            run the source is edited and recompiled with makemap (the daemon swaps the map), the
//            daemon's configuration file is rewritten (relay_guard.reply gains CONFIG_V2_MARK) and
//            the daemon gets one SIGHUP, and a precompiled third version is renamed into place.
//            Proven from the generator's and the daemon's own output: no loadgen error, no
//            tempfail, every message finished, one decision line per recipient and message, the
//            decision lines' `access_db` version moving v1 -> v2 -> v3 with no transaction seeing
//            two, every decision of the load generator's clients the map affects equal to what
//            that version of the map says, every relay refusal carrying the reply of the
//            configuration its line's `config_generation` names; latency per second around each
//            swap. The daemon runs with `metrics` on: /metrics is scraped (plain fetch) before the
//            load, after each step and at the end, and checked: config_generation and
//            access_db_info/entries show what the daemon logged, the reload counters go up by one
//            per worker and step, decisions_total and connections_total account for every line
//            and connection (with workers: the primary's sum over them).
// Results: the `access-db` section of docs/benchmarks.md (between its markers; bench/run.ts keeps
// it when it rewrites the rest) and docs/benchmarks-access-db.json, written here, never by hand.
// The shared-machine guard of bench/run.ts applies: before each heavy step it waits until the
// machine is quiet and no other session's benchmark program runs.
//
// Options:
//   --entries N        map size (default 1000000)        --seed N       generator seed (default 1)
//   --repeat N         compile and load repetitions, median reported (default 3)
//   --lookups N        queries per lookup row (default 100000)
//   --concurrency N    reload test connections (default 64)
//   --duration SEC     reload test measured seconds (default 20)   --warmup SEC (default 2)
//   --workers L        reload test daemon settings, from 1,auto (default 1,auto)
//   --parts L          from load,lookup,reload (default all; the map is always generated and compiled);
//                      the parts left out are carried over from the raw file in --out when it was
//                      measured on the same map (same source sha256), with the date and tree they
//                      were measured on named in the section; otherwise the section lacks them
//   --out DIR          where the reports go (default docs)
//   --keep DIR         generate the files in DIR and keep them (default: a temporary directory)
//   --quick            --entries 100000 --repeat 1 --lookups 20000 --duration 8 (a smoke run)
//   --from-json FILE   measure nothing: re-render the section from a raw file written earlier
// Failure: exit 1 when something cannot run at all (build, generation, makemap, daemon start);
// exit 2 when everything ran but a reload check failed (the reports are written first, with the
// failures in them); 0 otherwise.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import ipaddr from 'ipaddr.js';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { readAccessImage } from '../access-db/load.js';
import { AccessSnapshot } from '../access-db/snapshot.js';
import type { WalkOptions, WalkResult } from '../access-db/walk.js';
import { addressWalk, hostWalk, ipWalk } from '../access-db/walk.js';
import type { EntryKind, FixedName } from './access-db-generate.js';
import { FIXED, FLIP_VALUES, generateAccess, prng, sourceText } from './access-db-generate.js';
import type { LoadgenResult, Timeline } from './loadgen-result.js';
import type { Machine, ProcMemory, ProcSample } from './machine.js';
import {
  CLK_TCK,
  DISTURBED_PCT,
  DISTURBED_RETRIES,
  PAGE_SIZE,
  machine,
  ownCpuTicks,
  procMemory,
  procSample,
  readText,
  root,
  statSample,
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
/** Seconds a freshly started daemon is left idle before its memory is read. */
const IDLE_S = 3;
/** The load generator's recipients: local, a relay attempt, one with a To: entry in the map. */
const RECIPIENTS = ['<user@example.test>', '<someone@elsewhere.example>', '<blocked@example.test>'] as const;
/** A transaction that began before a swap finishes on the old map: how long its lines may trail. */
const OVERLAP_MS = 1000;
const TIMELINE_MS = 1000;

type WorkersSetting = '1' | 'auto';
type Part = 'load' | 'lookup' | 'reload';
const ALL_PARTS: readonly Part[] = ['load', 'lookup', 'reload'];

interface Options {
  readonly entries: number;
  readonly seed: number;
  readonly repeat: number;
  readonly lookups: number;
  readonly concurrency: number;
  readonly duration: number;
  readonly warmup: number;
  readonly workers: readonly WorkersSetting[];
  readonly parts: readonly Part[];
  readonly out: string;
  readonly keep: string | null;
  readonly fromJson: string | null;
}

const DEFAULTS: Readonly<
  Record<'entries' | 'seed' | 'repeat' | 'lookups' | 'concurrency' | 'duration' | 'warmup', number>
> = {
  entries: 1_000_000,
  seed: 1,
  repeat: 3,
  lookups: 100_000,
  concurrency: 64,
  duration: 20,
  warmup: 2,
};

function parseOptions(argv: readonly string[]): Options {
  const o = {
    ...DEFAULTS,
    workers: ['1', 'auto'] as WorkersSetting[],
    parts: [...ALL_PARTS],
    out: 'docs',
    keep: null as string | null,
    fromJson: null as string | null,
  };
  const num = (name: string, v: string, min: number, max: number, int = true): number => {
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
      case '--entries':
        o.entries = num(a, value(), 1000, 20_000_000);
        break;
      case '--seed':
        o.seed = num(a, value(), 0, 2 ** 31);
        break;
      case '--repeat':
        o.repeat = num(a, value(), 1, 20);
        break;
      case '--lookups':
        o.lookups = num(a, value(), 100, 10_000_000);
        break;
      case '--concurrency':
        o.concurrency = num(a, value(), 1, 10000);
        break;
      case '--duration':
        o.duration = num(a, value(), 4, 3600, false);
        break;
      case '--warmup':
        o.warmup = num(a, value(), 0, 600, false);
        break;
      case '--workers':
        o.workers = value()
          .split(',')
          .map((s) => {
            const w = s.trim();
            if (w !== '1' && w !== 'auto') fail(`--workers ${JSON.stringify(w)}: expected 1 or auto`);
            return w;
          });
        break;
      case '--parts':
        o.parts = value()
          .split(',')
          .map((s) => {
            const p = s.trim();
            if (!(ALL_PARTS as readonly string[]).includes(p))
              fail(`--parts ${JSON.stringify(p)}: expected ${ALL_PARTS.join(', ')}`);
            return p as Part;
          });
        break;
      case '--out':
        o.out = value();
        break;
      case '--keep':
        o.keep = path.resolve(value());
        break;
      case '--quick':
        o.entries = 100_000;
        o.repeat = 1;
        o.lookups = 20_000;
        o.duration = 8;
        break;
      case '--from-json':
        o.fromJson = path.resolve(value());
        break;
      default:
        fail(`unknown option ${a} (see the header of bench/access-db.ts)`);
    }
  }
  return { ...o, out: path.resolve(root, o.out) };
}

function reproduceCommand(o: Options): string {
  const parts = ['npm run build && node dist/bench/access-db.js'];
  for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[])
    if (o[k] !== DEFAULTS[k]) parts.push(`--${k} ${o[k]}`);
  if (o.workers.join(',') !== '1,auto') parts.push(`--workers ${o.workers.join(',')}`);
  if (o.parts.join(',') !== ALL_PARTS.join(',')) parts.push(`--parts ${o.parts.join(',')}`);
  if (path.relative(root, o.out) !== 'docs') parts.push(`--out ${path.relative(root, o.out)}`);
  return parts.join(' ');
}

// ---- the map ----

interface SourceFacts {
  readonly entries: number;
  readonly lines: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly counts: Record<EntryKind, number>;
  readonly fixedLines: Record<FixedName, number>;
  readonly generateMs: number;
}

interface Files {
  readonly dir: string;
  /** The source the daemon's decisions name (`file:line`). */
  readonly source: string;
  /** What the daemon loads. */
  readonly image: string;
  /** Pristine first version, and the precompiled third one. */
  readonly imageV1: string;
  readonly imageV3: string;
}

/** The source text with the `flip` entry set to version `v` (0-based). */
function versionText(lines: readonly string[], flipLine: number, v: number): string {
  const copy = lines.slice();
  copy[flipLine - 1] = `${FIXED.flip.key}\t${FLIP_VALUES[v] as string}`;
  return sourceText(copy);
}

/** The version (`sha256:...`) in a compiled image's header, reading only the metadata. */
async function imageVersion(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(12);
    await fh.read(head, 0, 12, 0);
    const len = head.readUInt32LE(8);
    const meta = Buffer.alloc(len);
    await fh.read(meta, 0, len, 12);
    return (JSON.parse(meta.toString('utf8')) as { version: string }).version;
  } finally {
    await fh.close();
  }
}

// ---- the shared-machine guard ----

/** How much other sessions' work overlapped a measurement. */
interface Guard {
  /** Machine busy time minus ours (this process and its children), % of one core. */
  readonly otherPct: number | null;
  /** Measurements of this step thrown away because they were disturbed. */
  readonly discarded: number;
  /** Still disturbed after the retries. */
  readonly disturbed: boolean;
}

/** Runs `fn` on a quiet machine; repeats it (up to DISTURBED_RETRIES times) when other work took
 *  more than DISTURBED_PCT of a core while it ran, unless `keep` says the result must stand (a
 *  failed reload check is never thrown away). */
async function guarded<T extends object>(
  what: string,
  fn: () => Promise<T>,
  keep: (value: T) => boolean = () => false,
): Promise<T & Guard> {
  for (let attempt = 0; ; attempt++) {
    await waitQuiet();
    const a = statSample();
    const ours0 = ownCpuTicks();
    const value = await fn();
    const b = statSample();
    const ours1 = ownCpuTicks();
    const otherPct =
      a === null || b === null || b.t <= a.t
        ? null
        : Math.max(0, ((b.busy - a.busy - (ours1 - ours0)) / CLK_TCK / ((b.t - a.t) / 1000)) * 100);
    const disturbed = (otherPct ?? 0) > DISTURBED_PCT;
    if (!disturbed || attempt >= DISTURBED_RETRIES || keep(value))
      return { ...value, otherPct, discarded: attempt, disturbed };
    say(`${what}: disturbed (other work ${f0(otherPct)} % of a core), again`);
    await sleep(2000);
  }
}

// ---- compile ----

interface CompileRun {
  readonly wallMs: number;
  /** What the CLI reports for itself (parse, build, write; no process start, no stdin read). */
  readonly cliMs: number | null;
  readonly peakRssMiB: number | null;
  readonly exit: number | null;
}

async function makemap(args: readonly string[], stdinFile?: string): Promise<CompileRun> {
  const started = performance.now();
  const p = run(process.execPath, [daemonMain, 'makemap', ...args], {
    ...(stdinFile === undefined ? {} : { stdinFile }),
    env: { MILTER_POLICY_VERBOSE: '1' },
  });
  let peak: number | null = null;
  let done = false;
  const exited = p.exited.then((c) => {
    done = true;
    return c;
  });
  while (!done) {
    const pid = p.child.pid;
    const m = pid === undefined ? null : procMemory(pid);
    if (m !== null && Number.isFinite(m.hwmMiB)) peak = Math.max(peak ?? 0, m.hwmMiB);
    await Promise.race([exited, sleep(50)]);
  }
  const exit = await exited;
  const wallMs = performance.now() - started;
  const cli = /: (\d+) entries, (\d+) bytes, (\d+) ms/.exec(p.stderr());
  if (exit !== 0) fail(`makemap ${args.join(' ')} exited with ${String(exit)}:\n${p.stderr().slice(-3000)}`);
  return { wallMs, cliMs: cli === null ? null : Number(cli[3]), peakRssMiB: peak, exit };
}

// ---- daemon ----

interface Daemon {
  readonly proc: Captured;
  readonly pid: number;
  readonly listen: string;
  readonly logFile: string;
  readonly configFile: string;
  /** What configFile holds (the reload test rewrites it). */
  readonly config: Readonly<Record<string, unknown>>;
  /** `http://127.0.0.1:PORT/metrics` when started with metrics on. */
  readonly metricsUrl: string | null;
  /** spawn -> `started` line. */
  readonly startedMs: number;
}

async function startDaemon(
  dir: string,
  name: string,
  workers: WorkersSetting,
  accessFile: string | null,
  withMetrics = false,
): Promise<Daemon> {
  const config = parseYaml(await readFile(configTemplate, 'utf8')) as Record<string, unknown>;
  const port = await freePort();
  const listen = `inet:${port}@127.0.0.1`;
  let metricsUrl: string | null = null;
  if (withMetrics) {
    let mport = await freePort();
    while (mport === port) mport = await freePort();
    config['metrics'] = { enabled: true, listen: `127.0.0.1:${mport}` };
    metricsUrl = `http://127.0.0.1:${mport}/metrics`;
  }
  const logFile = path.join(dir, `${name}.log`);
  await rm(logFile, { force: true });
  config['listen'] = [listen];
  config['workers'] = workers === '1' ? 1 : 'auto';
  config['log'] = { ...((config['log'] ?? {}) as Record<string, unknown>), file: logFile };
  if (accessFile === null) delete config['access_db'];
  else
    config['access_db'] = {
      file: accessFile,
      check_interval: '1s',
      blocklist_recipients: true,
      delay_checks: true,
    };
  const configFile = path.join(dir, `${name}.yaml`);
  await writeFile(configFile, stringifyYaml(config));
  const t0 = performance.now();
  const proc = run(process.execPath, [daemonMain, 'serve', '--config', configFile]);
  let exit: number | null | undefined;
  void proc.exited.then((c) => {
    exit = c;
  });
  const deadline = t0 + 300_000;
  for (;;) {
    if (hasStarted(readText(logFile)) && proc.child.pid !== undefined) {
      return {
        proc,
        pid: proc.child.pid,
        listen,
        logFile,
        configFile,
        config,
        metricsUrl,
        startedMs: performance.now() - t0,
      };
    }
    if (exit !== undefined || performance.now() > deadline) break;
    await sleep(20);
  }
  proc.child.kill('SIGKILL');
  await proc.exited;
  fail(
    `the daemon (${name}) did not start: ${exit === undefined ? 'no "started" line within 300 s' : `exit ${String(exit)}`}\n${proc.stderr().slice(-2000)}\n${readText(logFile).slice(-2000)}`,
  );
}

async function stopDaemon(d: Daemon): Promise<number | null> {
  d.proc.child.kill('SIGTERM');
  const timer = setTimeout(() => d.proc.child.kill('SIGKILL'), 20_000);
  const code = await d.proc.exited;
  clearTimeout(timer);
  return code;
}

/** The first log line with this event (parsed), from a small log. */
function logEvent(logFile: string, event: string): Record<string, unknown> | null {
  for (const line of readText(logFile).split('\n')) {
    if (!line.includes(`"event":"${event}"`)) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
  }
  return null;
}

// ---- load and memory ----

type LoadVariant = 'none' | 'compiled' | 'text';

interface LoadRun {
  readonly variant: LoadVariant;
  readonly startedMs: number;
  readonly loadMs: number | null;
  readonly entries: number | null;
  readonly idle: ProcMemory | null;
}

async function measureLoad(files: Files, variant: LoadVariant): Promise<LoadRun> {
  const file = variant === 'none' ? null : variant === 'compiled' ? files.image : files.source;
  const d = await startDaemon(files.dir, `load-${variant}`, '1', file);
  await sleep(IDLE_S * 1000);
  const idle = procMemory(d.pid);
  const loaded = logEvent(d.logFile, 'access_db_loaded');
  await stopDaemon(d);
  return {
    variant,
    startedMs: d.startedMs,
    loadMs: typeof loaded?.['load_ms'] === 'number' ? loaded['load_ms'] : null,
    entries: typeof loaded?.['entries'] === 'number' ? loaded['entries'] : null,
    idle,
  };
}

// ---- lookups ----

interface LookupRow {
  readonly walk: string;
  readonly query: string;
  readonly expect: 'hit' | 'miss';
  readonly queries: number;
  readonly hits: number;
  readonly meanNs: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
}

interface LookupReport {
  /** readAccessImage: read the file, check structure and checksum (the daemon's loader worker). */
  readonly readMs: number;
  /** AccessSnapshot.fromImage without verify: what a swap costs the daemon's event loop; the
   *  first call in this process, and the median of three more. */
  readonly openMs: number;
  readonly openWarmMs: number;
  /** CIDR keys in the map, and the ipWalk miss row on the same map without them. */
  readonly cidrKeys: number;
  readonly imageBytes: number;
  readonly heapMiB: number;
  readonly timerNs: number;
  readonly rows: readonly LookupRow[];
}

function hrNow(): bigint {
  return process.hrtime.bigint();
}

function timerOverhead(): number {
  const n = 100_000;
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = hrNow();
    v[i] = Number(hrNow() - a);
  }
  v.sort();
  return v[n >> 1] as number;
}

function timeRow<Q>(
  walk: string,
  query: string,
  expect: 'hit' | 'miss',
  qs: readonly Q[],
  fn: (q: Q) => WalkResult,
  timerNs: number,
): LookupRow {
  let hits = 0;
  for (const q of qs) if (fn(q).entry !== null) hits++;
  for (const q of qs) fn(q);
  const means: number[] = [];
  let sink = 0;
  for (let pass = 0; pass < 3; pass++) {
    const a = hrNow();
    for (const q of qs) sink += fn(q).entry === null ? 0 : 1;
    means.push(Number(hrNow() - a) / qs.length);
  }
  const per = new Float64Array(qs.length);
  for (let i = 0; i < qs.length; i++) {
    const q = qs[i] as Q;
    const a = hrNow();
    const r = fn(q);
    per[i] = Number(hrNow() - a) - timerNs;
    sink += r.entry === null ? 0 : 1;
  }
  per.sort();
  if (sink < 0) process.stderr.write(''); // keeps the calls observable
  means.sort((x, y) => x - y);
  return {
    walk,
    query,
    expect,
    queries: qs.length,
    hits,
    meanNs: means[1] as number,
    p50Ns: Math.max(0, per[Math.floor(per.length * 0.5)] as number),
    p99Ns: Math.max(0, per[Math.floor(per.length * 0.99)] as number),
  };
}

function fill<T>(xs: readonly T[], n: number): T[] {
  if (xs.length === 0) return [];
  const out: T[] = [];
  for (let i = 0; out.length < n; i++) out.push(xs[i % xs.length] as T);
  return out;
}

async function lookupCosts(
  image: string,
  samples: ReturnType<typeof generateAccess>['samples'],
  lines: readonly string[],
  n: number,
  seed: number,
): Promise<LookupReport> {
  const t0 = performance.now();
  const r = await readAccessImage(image);
  const readMs = performance.now() - t0;
  if (!r.ok) fail(`readAccessImage ${image}: ${r.errors.join('; ')}`);
  const t1 = performance.now();
  const s = AccessSnapshot.fromImage(r.image, { skip: false }, false);
  const openMs = performance.now() - t1;
  if (!s.ok) fail(`AccessSnapshot.fromImage: ${s.problem}`);
  const warm: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    AccessSnapshot.fromImage(r.image, { skip: false }, false);
    warm.push(performance.now() - t);
  }
  const snap = s.snapshot;
  const o: WalkOptions = { lookupdotdomain: false, untagged: true };
  const rnd = prng(seed ^ 0x5eed);
  const int = (k: number): number => Math.floor(rnd() * k);
  const misses = (make: () => string): string[] => Array.from({ length: n }, make);
  const hex = (): string => int(0x10000).toString(16);
  const ip4Miss = misses(() => `198.${18 + int(2)}.${int(256)}.${1 + int(254)}`);
  const ip6Miss = misses(() => `3fff:${hex()}:${hex()}:${hex()}:0:0:0:${1 + int(255)}`);
  const hostMiss = misses(
    () =>
      `${['mail', 'mx', 'host'][int(3)] as string}${int(100)}.zz-miss-${int(100000)}.dyn.isp${int(1000)}.invalid`,
  );
  const fromMiss = misses(() => `zz-miss-${int(1000000)}@zz-miss-${int(100000)}.invalid`);
  const ip = (xs: readonly string[]): (ipaddr.IPv4 | ipaddr.IPv6)[] =>
    fill(xs, n).map((x) => ipaddr.parse(x));
  const byIp = (q: ipaddr.IPv4 | ipaddr.IPv6): WalkResult => ipWalk(snap, 'connect', q, o);
  const byHost = (q: string): WalkResult => hostWalk(snap, 'connect', q, o);
  const byFrom = (q: string): WalkResult => addressWalk(snap, 'from', q, ['F', 'U', 'D'], o);
  const timerNs = timerOverhead();
  const rows: LookupRow[] = [];
  const add = <Q>(
    walk: string,
    query: string,
    expect: 'hit' | 'miss',
    qs: Q[],
    fn: (q: Q) => WalkResult,
  ): void => {
    if (qs.length === 0) return;
    rows.push(timeRow(walk, query, expect, qs, fn, timerNs));
  };
  add('ipWalk Connect:', 'IPv4 with its own entry', 'hit', ip(samples.ip4Exact), byIp);
  add('ipWalk Connect:', 'IPv4 inside an octet prefix entry', 'hit', ip(samples.ip4Prefix), byIp);
  add('ipWalk Connect:', 'IPv4 inside a CIDR entry', 'hit', ip(samples.ip4Cidr), byIp);
  add('ipWalk Connect:', 'IPv4, no entry', 'miss', ip(ip4Miss), byIp);
  // The same miss walk on the map without its CIDR keys: what the CIDR extension costs a walk.
  const plain = AccessSnapshot.fromText(sourceText(lines.filter((l) => !/^\S*\/\d+\s/.test(l))), 'access', {
    skip: false,
  });
  if (plain.ok) {
    const p = plain.snapshot;
    add('ipWalk Connect:', 'IPv4, no entry — same map without its CIDR keys', 'miss', ip(ip4Miss), (q) =>
      ipWalk(p, 'connect', q, o),
    );
  }
  add('ipWalk Connect:', 'IPv6 with its own entry', 'hit', ip(samples.ip6Exact), byIp);
  add('ipWalk Connect:', 'IPv6, no entry', 'miss', ip(ip6Miss), byIp);
  add('hostWalk Connect:', 'host name with its own entry', 'hit', fill(samples.hostExact, n), byHost);
  add('hostWalk Connect:', 'host below a listed domain', 'hit', fill(samples.hostParent, n), byHost);
  add('hostWalk Connect:', 'host name, no entry (5 levels)', 'miss', hostMiss, byHost);
  add('addressWalk From: F,U,D', 'full address entry', 'hit', fill(samples.fromAddress, n), byFrom);
  add('addressWalk From: F,U,D', '`user@` entry', 'hit', fill(samples.fromUser, n), byFrom);
  add('addressWalk From: F,U,D', 'domain entry', 'hit', fill(samples.fromDomain, n), byFrom);
  add('addressWalk From: F,U,D', 'no entry', 'miss', fromMiss, byFrom);
  return {
    readMs,
    openMs,
    openWarmMs: median(warm) ?? openMs,
    cidrKeys: snap.meta.cidrs.length,
    imageBytes: r.image.length,
    heapMiB: process.memoryUsage().rss / 2 ** 20,
    timerNs,
    rows,
  };
}

// ---- reload under load ----

type Label = 'v1' | 'v2' | 'v3';
const LABELS: readonly Label[] = ['v1', 'v2', 'v3'];

/** The configuration change of the SIGHUP step: the relay guard's reply (its default text, which
 *  the benchmark configuration keeps) gains this mark; it shows in every relay refusal's decision
 *  line (`reply`) and in the reply the client gets, nothing else changes. */
const RELAY_REPLY = '550 5.7.1 Relaying denied';
const RELAY_TEXT = 'Relaying denied';
const CONFIG_V2_MARK = ' (bench config v2)';

interface ScheduledEvent {
  readonly name: 'makemap' | 'sighup' | 'rename';
  readonly what: string;
  /** ms after the load generator's t0. */
  readonly atMs: number;
  readonly endMs: number;
  readonly makemap?: CompileRun;
  /** Reload lines the daemon logged for it, and when (ms after t0). */
  readonly answers: readonly LoggedEvent[];
}

interface LoggedEvent {
  readonly tMs: number;
  readonly event: string;
  readonly worker: number | null;
  readonly ok: boolean | null;
  readonly label: Label | null;
  readonly loadMs: number | null;
  /** The configuration generation the line names (`reload`, `access_db_reload`; older raw files:
   *  absent). */
  readonly generation?: number | null;
  readonly entries?: number | null;
}

/** When /metrics was read: before the load, after each step (once the daemon logged its answers
 *  to it), after the load generator ended. */
type ScrapePoint = 'before' | 'makemap' | 'sighup' | 'rename' | 'end';
const SCRAPE_POINTS: readonly ScrapePoint[] = ['before', 'makemap', 'sighup', 'rename', 'end'];

/** The figures of one scrape (with workers: the primary's sum over them). Counters that have not
 *  counted yet are absent from the exposition text; they read 0 here. */
interface MetricsScrape {
  readonly at: ScrapePoint;
  /** ms after the load generator's t0 (negative: before it started). */
  readonly tMs: number;
  /** The request failed or did not answer 200 (the figures are then null). */
  readonly error: string | null;
  readonly generation: number | null;
  /** milter_policy_access_db_info: version label -> value (1), every series present. */
  readonly accessDbInfo: readonly { readonly version: string; readonly value: number }[];
  readonly entries: number | null;
  readonly accessReloads: { readonly ok: number; readonly refused: number } | null;
  readonly configReloads: { readonly ok: number; readonly refused: number } | null;
  /** milter_policy_decisions_total{mode="enforce"}: all, by stage, and the tempfails. */
  readonly decisions: {
    readonly all: number;
    readonly rcpt: number;
    readonly eom: number;
    readonly tempfail: number;
  } | null;
  readonly connectionsTotal: number | null;
  readonly connectionsOpen: number | null;
  /** milter_policy_cluster_workers{state="ready"} (with workers only). */
  readonly workersReady: number | null;
}

/** Decision lines per worker and configuration generation, and the relay refusals among them by
 *  the reply they carry (the v1 configuration's, or the v2 one's with CONFIG_V2_MARK). */
interface GenerationSpan {
  readonly worker: number | null;
  readonly generation: number | null;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly count: number;
  readonly relayOld: number;
  readonly relayNew: number;
}

interface Check {
  readonly name: string;
  readonly pass: boolean;
  readonly detail: string;
}

interface Span {
  readonly worker: number | null;
  readonly label: Label | 'other';
  readonly firstMs: number;
  readonly lastMs: number;
  readonly count: number;
}

interface ReloadRun {
  readonly workers: WorkersSetting;
  readonly workerCount: number;
  readonly loadgenCommand: string;
  readonly loadgenExit: number | null;
  readonly result: LoadgenResult | null;
  readonly versions: Record<Label, string>;
  readonly events: readonly ScheduledEvent[];
  readonly startup: readonly LoggedEvent[];
  readonly spans: readonly Span[];
  readonly decisions: {
    readonly rcpt: number;
    readonly eom: number;
    readonly other: number;
    readonly mixedTransactions: number;
    readonly mismatches: number;
    readonly mismatchSamples: readonly string[];
    /** Decisions that came from a fixed entry: entry -> version -> action -> count. */
    readonly fromMap: Record<string, Record<string, Record<string, number>>>;
    /** Per timeline bucket: decisions per version. */
    readonly perBucket: readonly Record<string, number>[];
  };
  readonly errorLines: Record<string, number>;
  readonly warnSamples: readonly string[];
  /** The configuration change of the SIGHUP step (older raw files: absent). */
  readonly configChange?: { readonly key: string; readonly before: string; readonly after: string };
  readonly generations?: readonly GenerationSpan[];
  /** The metrics endpoint and what it showed (older raw files: absent). */
  readonly metricsUrl?: string | null;
  readonly metrics?: readonly MetricsScrape[];
  /** Resident memory of the daemon's process tree: before the load, highest, per bucket. */
  readonly rss: {
    readonly beforeMiB: number | null;
    readonly peakMiB: number | null;
    readonly perBucketMiB: readonly (number | null)[];
  };
  readonly checks: readonly Check[];
  readonly problem: string | null;
}

/** Follows a growing log file, keeping only the reload-related lines. */
class LogTail {
  private offset = 0;
  private partial = '';
  readonly lines: Record<string, unknown>[] = [];
  constructor(private readonly file: string) {}

  async poll(): Promise<void> {
    let fh;
    try {
      fh = await open(this.file, 'r');
    } catch {
      return;
    }
    try {
      const size = (await fh.stat()).size;
      while (this.offset < size) {
        const n = Math.min(size - this.offset, 8 << 20);
        const buf = Buffer.alloc(n);
        const { bytesRead } = await fh.read(buf, 0, n, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const text = this.partial + buf.toString('utf8', 0, bytesRead);
        const parts = text.split('\n');
        this.partial = parts.pop() ?? '';
        for (const l of parts) {
          if (!l.includes('"event":"access_db_') && !l.includes('"event":"reload')) continue;
          try {
            this.lines.push(JSON.parse(l) as Record<string, unknown>);
          } catch {
            // not a whole JSON line: ignore
          }
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** Waits until `count` lines after index `from` satisfy `pred`, or the timeout. */
  async waitFor(
    from: number,
    pred: (l: Record<string, unknown>) => boolean,
    count: number,
    ms: number,
  ): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      await this.poll();
      if (this.lines.slice(from).filter(pred).length >= count) return;
      if (performance.now() > deadline) return;
      await sleep(100);
    }
  }
}

interface Expectation {
  readonly action: string;
  readonly entry: FixedName | null;
  readonly reply?: string;
}

/** What the map (version `v`) and the relay guard decide for one of the load generator's lines;
 *  null where no such line may exist. A DISCARD client's local recipient is logged as `discard`,
 *  its other recipients still get their own checks (as in sendmail), and the message is dropped
 *  at end of message (logged there as `discard`). */
function expected(client: string, stage: string, rcpt: string | null, v: number): Expectation | null {
  const last = Number(client.split('.')[3]);
  type ClientEntry = { name: FixedName; kind: 'ok' | 'relay' | 'reject' | 'discard'; reply?: string };
  let c: ClientEntry | null = null;
  if (last === 10)
    c = (
      [
        { name: 'flip', kind: 'reject', reply: 'Access denied' },
        { name: 'flip', kind: 'relay' },
        { name: 'flip', kind: 'reject', reply: 'bench map v3 refuses 192.0.2.10' },
      ] as const
    )[v] as ClientEntry;
  else if (last === 20) c = { name: 'relay', kind: 'relay' };
  else if (last >= 32 && last <= 47) c = { name: 'cidr', kind: 'reject', reply: 'bench CIDR block' };
  else if (last === 60) c = { name: 'discard', kind: 'discard' };
  else if (last === 70) c = { name: 'untagged', kind: 'reject', reply: 'Access denied' };
  else if (last === 80) c = { name: 'ok', kind: 'ok' };
  if (stage === 'eom')
    return c?.kind === 'discard' ? { action: 'discard', entry: c.name } : { action: 'accept', entry: null };
  if (c?.kind === 'discard' && rcpt === RECIPIENTS[0]) return { action: 'discard', entry: c.name };
  switch (rcpt) {
    case RECIPIENTS[2]:
      return { action: 'reject', entry: 'rcpt', reply: 'Mailbox disabled for this recipient' };
    case RECIPIENTS[1]:
      return c?.kind === 'relay'
        ? { action: 'accept', entry: c.name }
        : { action: 'reject', entry: null, reply: 'Relaying denied' };
    case RECIPIENTS[0]:
      if (c === null) return { action: 'accept', entry: null };
      return c.kind === 'reject'
        ? { action: 'reject', entry: c.name, ...(c.reply === undefined ? {} : { reply: c.reply }) }
        : { action: 'accept', entry: c.name };
    default:
      return null;
  }
}

function labelOf(versions: Record<Label, string>, v: unknown): Label | null {
  for (const l of LABELS) if (versions[l] === v) return l;
  return null;
}

function logged(l: Record<string, unknown>, t0Epoch: number, versions: Record<Label, string>): LoggedEvent {
  return {
    tMs: Date.parse(String(l['time'])) - t0Epoch,
    event: String(l['event']),
    worker: typeof l['worker'] === 'number' ? l['worker'] : null,
    ok: typeof l['ok'] === 'boolean' ? l['ok'] : null,
    label: labelOf(versions, l['version']),
    loadMs: typeof l['load_ms'] === 'number' ? l['load_ms'] : null,
    generation: typeof l['generation'] === 'number' ? l['generation'] : null,
    entries: typeof l['entries'] === 'number' ? l['entries'] : null,
  };
}

// ---- metrics scrapes ----

interface ExpositionSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The sample lines of a Prometheus text-format exposition (comments and blank lines skipped). */
function parseExposition(text: string): ExpositionSample[] {
  const out: ExpositionSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** GET /metrics and the figures the reload test checks. */
async function scrapeMetrics(url: string, at: ScrapePoint, t0Epoch: number): Promise<MetricsScrape> {
  const epoch = Date.now();
  const empty = {
    generation: null,
    accessDbInfo: [],
    entries: null,
    accessReloads: null,
    configReloads: null,
    decisions: null,
    connectionsTotal: null,
    connectionsOpen: null,
    workersReady: null,
  };
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    text = await res.text();
    if (res.status !== 200)
      return { at, tMs: epoch - t0Epoch, error: `HTTP ${res.status}: ${text.slice(0, 300)}`, ...empty };
  } catch (e) {
    return { at, tMs: epoch - t0Epoch, error: e instanceof Error ? e.message : String(e), ...empty };
  }
  const xs = parseExposition(text);
  const of = (name: string, where: Readonly<Record<string, string>> = {}): ExpositionSample[] =>
    xs.filter(
      (x) => x.name === `milter_policy_${name}` && Object.entries(where).every(([k, v]) => x.labels[k] === v),
    );
  const sum = (name: string, where?: Readonly<Record<string, string>>): number =>
    of(name, where).reduce((n, x) => n + x.value, 0);
  const one = (name: string, where?: Readonly<Record<string, string>>): number | null =>
    of(name, where)[0]?.value ?? null;
  const enforce = { mode: 'enforce' };
  return {
    at,
    tMs: epoch - t0Epoch,
    error: null,
    generation: one('config_generation'),
    accessDbInfo: of('access_db_info').map((x) => ({ version: x.labels['version'] ?? '', value: x.value })),
    entries: one('access_db_entries'),
    accessReloads: {
      ok: sum('access_db_reloads_total', { result: 'ok' }),
      refused: sum('access_db_reloads_total', { result: 'refused' }),
    },
    configReloads: {
      ok: sum('config_reloads_total', { result: 'ok' }),
      refused: sum('config_reloads_total', { result: 'refused' }),
    },
    decisions: {
      all: sum('decisions_total', enforce),
      rcpt: sum('decisions_total', { ...enforce, stage: 'rcpt' }),
      eom: sum('decisions_total', { ...enforce, stage: 'eom' }),
      tempfail: sum('decisions_total', { ...enforce, action: 'tempfail' }),
    },
    connectionsTotal: one('connections_total'),
    connectionsOpen: one('connections_open'),
    workersReady: one('cluster_workers', { state: 'ready' }),
  };
}

/** The configuration file replaced in one rename, as an admin's editor or deploy tool would. */
async function rewriteConfig(file: string, config: Readonly<Record<string, unknown>>): Promise<void> {
  const tmp = `${file}.new`;
  await writeFile(tmp, stringifyYaml(config));
  await rename(tmp, file);
}

async function reloadUnderLoad(
  o: Options,
  files: Files,
  lines: readonly string[],
  fixedLines: Record<FixedName, number>,
  workers: WorkersSetting,
  versionsKnown: { v1: string; v3: string },
): Promise<ReloadRun> {
  // Every run starts from version 1 of both the source and the image.
  await writeFile(files.source, versionText(lines, fixedLines.flip, 0));
  await copyFile(files.imageV1, files.image);
  const staged = path.join(files.dir, '.access.mpdb.v3');
  await copyFile(files.imageV3, staged);
  const d = await startDaemon(files.dir, `reload-w${workers}`, workers, files.image, true);
  const metricsUrl = d.metricsUrl as string;
  const relayGuard = (d.config['relay_guard'] ?? {}) as Record<string, unknown>;
  const configChange = {
    key: 'relay_guard.reply',
    before: typeof relayGuard['reply'] === 'string' ? relayGuard['reply'] : RELAY_REPLY,
    after: `${RELAY_REPLY}${CONFIG_V2_MARK}`,
  };
  const tail = new LogTail(d.logFile);
  await tail.poll();
  const workerCount = Math.max(1, tail.lines.filter((l) => l['event'] === 'access_db_loaded').length);
  await sleep(1000);
  const samples: { epoch: number; s: ProcSample }[] = [];
  const sample = (): void => {
    const s = procSample(d.pid);
    if (s !== null) samples.push({ epoch: Date.now(), s });
  };
  sample();
  const beforeMiB =
    samples.length > 0 ? ((samples[0] as { s: ProcSample }).s.rssPages * PAGE_SIZE) / 2 ** 20 : null;
  const scrapes: MetricsScrape[] = [];
  // before the load: t0 is not known yet, its tMs is made relative to t0 below
  scrapes.push(await scrapeMetrics(metricsUrl, 'before', 0));
  const args = [
    '--target',
    d.listen,
    '--concurrency',
    String(o.concurrency),
    '--duration',
    String(o.duration),
    '--warmup',
    String(o.warmup),
    '--timeline',
    String(TIMELINE_MS),
    ...RECIPIENTS.flatMap((r) => ['--rcpt', r]),
  ];
  const t0Epoch = Date.now();
  const lg = run(loadgenBin, args);
  scrapes[0] = { ...(scrapes[0] as MetricsScrape), tMs: (scrapes[0] as MetricsScrape).tMs - t0Epoch };
  const scrape = async (at: ScrapePoint): Promise<void> => {
    scrapes.push(await scrapeMetrics(metricsUrl, at, t0Epoch));
  };
  const tick = setInterval(sample, 250);
  const rel = (): number => Date.now() - t0Epoch;
  const at = async (ms: number): Promise<void> => {
    const wait = ms - rel();
    if (wait > 0) await sleep(wait);
  };
  const total = (o.warmup + o.duration) * 1000;
  const events: ScheduledEvent[] = [];
  const versions: Record<Label, string> = { v1: versionsKnown.v1, v2: '', v3: versionsKnown.v3 };
  let problem: string | null = null;
  const isReload = (l: Record<string, unknown>): boolean => l['event'] === 'access_db_reload';
  try {
    // 1. the admin edits one entry and runs makemap; the daemon notices the new file
    await at(o.warmup * 1000 + o.duration * 50);
    let from = tail.lines.length;
    let start = rel();
    await writeFile(files.source, versionText(lines, fixedLines.flip, 1));
    const mm = await makemap(['hash', files.source], files.source);
    versions.v2 = await imageVersion(files.image);
    const mmEnd = rel();
    await tail.waitFor(from, isReload, workerCount, 30_000);
    events.push({
      name: 'makemap',
      what: `edit ${path.basename(files.source)}:${fixedLines.flip} (\`${FIXED.flip.key} ${FLIP_VALUES[1]}\`), then \`makemap hash access < access\``,
      atMs: start,
      endMs: mmEnd,
      makemap: mm,
      answers: tail.lines.slice(from).map((l) => logged(l, t0Epoch, versions)),
    });
    await scrape('makemap');
    // 2. a configuration change (one rename of the rewritten file), then one SIGHUP; the map file
    //    is unchanged, the daemon keeps the map it has
    await at(Math.max(o.warmup * 1000 + o.duration * 500, rel() + 2000));
    from = tail.lines.length;
    start = rel();
    const relayV2 = { ...relayGuard, reply: configChange.after };
    await rewriteConfig(d.configFile, { ...d.config, relay_guard: relayV2 });
    d.proc.child.kill('SIGHUP');
    await tail.waitFor(from, (l) => l['event'] === 'reload', workerCount, 15_000);
    await sleep(300);
    await tail.poll();
    events.push({
      name: 'sighup',
      what: `the configuration file rewritten (\`${configChange.key}: "${configChange.after}"\`, was \`"${configChange.before}"\`), then SIGHUP to the daemon`,
      atMs: start,
      endMs: rel(),
      answers: tail.lines.slice(from).map((l) => logged(l, t0Epoch, versions)),
    });
    await scrape('sighup');
    // 3. a precompiled image renamed into place (the swap alone, no compile running beside it)
    await at(Math.max(o.warmup * 1000 + o.duration * 750, rel() + 2000));
    from = tail.lines.length;
    start = rel();
    await rename(staged, files.image);
    await tail.waitFor(from, isReload, workerCount, 30_000);
    events.push({
      name: 'rename',
      what: `\`mv\` of a precompiled image (\`${FIXED.flip.key} ${FLIP_VALUES[2]}\`) over the map`,
      atMs: start,
      endMs: rel(),
      answers: tail.lines.slice(from).map((l) => logged(l, t0Epoch, versions)),
    });
    await scrape('rename');
    if (rel() > total)
      problem = `the reload steps ran past the end of the load (${(rel() / 1000).toFixed(1)} s > ${total / 1000} s)`;
  } catch (e) {
    problem = `reload step failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  const loadgenExit = await lg.exited;
  clearInterval(tick);
  sample();
  await sleep(500);
  await scrape('end');
  await stopDaemon(d);
  let result: LoadgenResult | null = null;
  try {
    result = JSON.parse(lg.stdout()) as LoadgenResult;
  } catch {
    problem ??= `loadgen printed no JSON (exit ${String(loadgenExit)}): ${lg.stderr().slice(-1000)}`;
  }
  const timeline = result?.timeline;
  const buckets = timeline?.buckets.length ?? Math.ceil(total / TIMELINE_MS) + 1;
  const analysis = await analyseDecisions(d.logFile, t0Epoch, versions, files.source, fixedLines, buckets);
  const perBucketMiB: (number | null)[] = Array.from({ length: buckets }, () => null);
  let peakMiB: number | null = null;
  for (const x of samples) {
    const mib = (x.s.rssPages * PAGE_SIZE) / 2 ** 20;
    peakMiB = Math.max(peakMiB ?? 0, mib);
    const b = Math.floor((x.epoch - t0Epoch) / TIMELINE_MS);
    if (b >= 0 && b < buckets) perBucketMiB[b] = Math.max(perBucketMiB[b] ?? 0, mib);
  }
  const startup = (await startupLines(d.logFile)).map((l) => logged(l, t0Epoch, versions));
  const runResult = {
    workers,
    workerCount,
    loadgenCommand: [path.relative(root, loadgenBin), ...args].join(' '),
    loadgenExit,
    result,
    versions,
    events,
    startup,
    spans: analysis.spans,
    decisions: analysis.decisions,
    errorLines: analysis.errorLines,
    warnSamples: analysis.warnSamples,
    configChange,
    generations: analysis.generations,
    metricsUrl,
    metrics: scrapes,
    rss: { beforeMiB, peakMiB, perBucketMiB },
    checks: [] as Check[],
    problem,
  };
  runResult.checks = reloadChecks(runResult);
  await rm(d.logFile, { force: true });
  return runResult;
}

async function startupLines(logFile: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const rl = readline.createInterface({ input: createReadStream(logFile), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line.includes('"event":"started"')) break;
    if (!line.includes('"event":"access_db_loaded"')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // ignore
    }
  }
  rl.close();
  return out;
}

interface DecisionLine {
  time?: string;
  event?: string;
  level?: string;
  worker?: number;
  stage?: string;
  action?: string;
  entry?: string | null;
  reply?: string | null;
  queue_id?: string | null;
  client_addr?: string | null;
  recipient?: string | null;
  access_db?: string;
  config_generation?: number;
}

async function analyseDecisions(
  logFile: string,
  t0Epoch: number,
  versions: Record<Label, string>,
  source: string,
  fixedLines: Record<FixedName, number>,
  buckets: number,
): Promise<
  Pick<ReloadRun, 'spans' | 'decisions' | 'errorLines' | 'warnSamples'> & {
    generations: readonly GenerationSpan[];
  }
> {
  const spans = new Map<
    string,
    { worker: number | null; label: Label | 'other'; firstMs: number; lastMs: number; count: number }
  >();
  const generations = new Map<
    string,
    {
      worker: number | null;
      generation: number | null;
      firstMs: number;
      lastMs: number;
      count: number;
      relayOld: number;
      relayNew: number;
    }
  >();
  const txVersion = new Map<string, string>();
  const mixed = new Set<string>();
  const fromMap: Record<string, Record<string, Record<string, number>>> = {};
  const perBucket: Record<string, number>[] = Array.from({ length: buckets }, () => ({}));
  const errorLines: Record<string, number> = {};
  const warnSamples: string[] = [];
  const mismatchSamples: string[] = [];
  const entryName = new Map<string, FixedName>(
    (Object.keys(fixedLines) as FixedName[]).map((n) => [`${source}:${fixedLines[n]}`, n]),
  );
  let rcpt = 0;
  let eom = 0;
  let other = 0;
  let mismatches = 0;
  const rl = readline.createInterface({ input: createReadStream(logFile), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === '') continue;
    let r: DecisionLine;
    try {
      r = JSON.parse(line) as DecisionLine;
    } catch {
      errorLines['(not JSON)'] = (errorLines['(not JSON)'] ?? 0) + 1;
      continue;
    }
    if (r.level === 'warn' || r.level === 'error' || r.level === 'fatal') {
      errorLines[String(r.event)] = (errorLines[String(r.event)] ?? 0) + 1;
      if (warnSamples.length < 5) warnSamples.push(line.slice(0, 600));
    }
    if (r.event === 'protocol_error' || r.event === 'handler_error') continue;
    if (r.event !== 'decision') continue;
    if (r.stage === 'rcpt') rcpt++;
    else if (r.stage === 'eom') eom++;
    else other++;
    const tMs = Date.parse(String(r.time)) - t0Epoch;
    const label = labelOf(versions, r.access_db) ?? 'other';
    const key = `${r.worker ?? '-'}:${label}`;
    const s = spans.get(key);
    if (s === undefined)
      spans.set(key, { worker: r.worker ?? null, label, firstMs: tMs, lastMs: tMs, count: 1 });
    else {
      s.lastMs = Math.max(s.lastMs, tMs);
      s.firstMs = Math.min(s.firstMs, tMs);
      s.count++;
    }
    const gen = r.config_generation ?? null;
    const gKey = `${r.worker ?? '-'}:${gen ?? '-'}`;
    let g = generations.get(gKey);
    if (g === undefined) {
      g = {
        worker: r.worker ?? null,
        generation: gen,
        firstMs: tMs,
        lastMs: tMs,
        count: 0,
        relayOld: 0,
        relayNew: 0,
      };
      generations.set(gKey, g);
    }
    g.count++;
    g.firstMs = Math.min(g.firstMs, tMs);
    g.lastMs = Math.max(g.lastMs, tMs);
    // the reply as the client sees it: `550 5.7.1 <rcpt>... Relaying denied[ (bench config v2)]`
    if (r.action === 'reject' && (r.reply ?? '').includes(RELAY_TEXT)) {
      if ((r.reply ?? '').includes(CONFIG_V2_MARK)) g.relayNew++;
      else g.relayOld++;
    }
    const b = Math.floor(tMs / TIMELINE_MS);
    const pb = perBucket[b];
    if (pb !== undefined) pb[label] = (pb[label] ?? 0) + 1;
    const qid = r.queue_id ?? '';
    const seen = txVersion.get(qid);
    if (seen === undefined) txVersion.set(qid, String(r.access_db));
    else if (seen !== r.access_db) mixed.add(qid);
    const v = LABELS.indexOf(label as Label);
    const exp = v < 0 ? null : expected(r.client_addr ?? '', r.stage ?? '', r.recipient ?? null, v);
    const entry = r.entry ?? null;
    const name = entry === null ? null : (entryName.get(entry) ?? null);
    const ok =
      exp !== null &&
      exp.action === r.action &&
      (exp.entry === null ? entry === null : name === exp.entry) &&
      (exp.reply === undefined || (r.reply ?? '').includes(exp.reply));
    if (!ok) {
      mismatches++;
      if (mismatchSamples.length < 5)
        mismatchSamples.push(
          `${r.client_addr ?? '?'} ${r.stage ?? '?'} ${r.recipient ?? ''} [${label}]: got ${r.action ?? '?'} entry ${entry ?? 'none'} "${r.reply ?? ''}", expected ${exp === null ? 'no such line' : `${exp.action} entry ${exp.entry ?? 'none'}${exp.reply === undefined ? '' : ` "...${exp.reply}..."`}`}`,
        );
    }
    if (name !== null) {
      const byVersion = (fromMap[name] ??= {});
      const byAction = (byVersion[label] ??= {});
      const what = `${r.action ?? '?'}${r.stage === 'rcpt' ? ` ${r.recipient ?? ''}` : ''}`;
      byAction[what] = (byAction[what] ?? 0) + 1;
    }
  }
  rl.close();
  return {
    spans: [...spans.values()].sort((a, b) => (a.worker ?? 0) - (b.worker ?? 0) || a.firstMs - b.firstMs),
    decisions: {
      rcpt,
      eom,
      other,
      mixedTransactions: mixed.size,
      mismatches,
      mismatchSamples,
      fromMap,
      perBucket,
    },
    errorLines,
    warnSamples,
    generations: [...generations.values()].sort(
      (a, b) => (a.worker ?? 0) - (b.worker ?? 0) || (a.generation ?? 0) - (b.generation ?? 0),
    ),
  };
}

function tempfails(r: LoadgenResult): number {
  const fromTimeline = r.timeline?.buckets.reduce((n, b) => n + b.tempfail, 0) ?? 0;
  const t = Object.values(r.replies).reduce((n, codes) => n + (codes['t'] ?? 0), 0);
  return Math.max(fromTimeline, t);
}

function reloadChecks(x: Omit<ReloadRun, 'checks'>): Check[] {
  const out: Check[] = [];
  const r = x.result;
  if (r === null) return [{ name: 'load generator result', pass: false, detail: x.problem ?? 'none' }];
  const e = r.errors;
  out.push({
    name: 'no load generator error',
    pass: e.total === 0 && x.loadgenExit === 0,
    detail: `${e.total} (protocol ${e.protocol}, unexpected replies ${e.unexpected_reply}, connect ${e.connect_failed}, lost ${e.connection_lost}, timeouts ${e.timeout}); exit ${String(x.loadgenExit)}${e.first === null ? '' : `; first: ${e.first}`}`,
  });
  const tf = tempfails(r);
  out.push({
    name: 'no tempfail reply (`t` or `y 4xx`)',
    pass: tf === 0,
    detail: `${tf} over the whole run`,
  });
  out.push({
    name: 'every message got its final reply',
    pass: r.totals.messages === r.totals.connections && r.totals.unfinished_at_end === 0,
    detail: `${r.totals.connections} connections, ${r.totals.messages} messages finished, ${r.totals.unfinished_at_end} unfinished at the end`,
  });
  const d = x.decisions;
  const logErrors = Object.entries(x.errorLines).filter(([k]) => k !== 'reload_restart_needed');
  out.push({
    name: 'one decision line per recipient and per message, no error line',
    pass: d.rcpt === r.totals.sent.rcpt && d.eom === r.totals.sent.eom && logErrors.length === 0,
    detail: `rcpt lines ${d.rcpt} / RCPT sent ${r.totals.sent.rcpt}; eom lines ${d.eom} / EOM sent ${r.totals.sent.eom}; warn/error lines: ${logErrors.length === 0 ? 'none' : logErrors.map(([k, v]) => `${k}×${v}`).join(', ')}`,
  });
  const workers = [...new Set(x.spans.map((s) => s.worker))];
  const order: string[] = [];
  let ordered = true;
  for (const w of workers) {
    const mine = x.spans.filter((s) => s.worker === w);
    const labels = mine.map((s) => s.label);
    const sequenceOk = labels.join(',') === 'v1,v2,v3';
    let overlap = 0;
    for (let i = 1; i < mine.length; i++) {
      const prev = mine[i - 1] as Span;
      overlap = Math.max(overlap, prev.lastMs - (mine[i] as Span).firstMs);
    }
    if (!sequenceOk || overlap > OVERLAP_MS) ordered = false;
    order.push(
      `${w === null ? 'daemon' : `worker ${w}`}: ${labels.join(' → ')} (old lines trail the first new one by ≤ ${Math.max(0, overlap)} ms)`,
    );
  }
  out.push({
    name: 'the decisions’ access_db version goes v1 → v2 → v3',
    pass: ordered && workers.length === x.workerCount,
    detail: order.join('; '),
  });
  out.push({
    name: 'no transaction decided with two versions',
    pass: d.mixedTransactions === 0,
    detail: `${d.mixedTransactions} transactions with lines of two versions`,
  });
  const missing = (Object.keys(FIXED) as FixedName[]).filter((n) => d.fromMap[n] === undefined);
  const flip = d.fromMap['flip'] ?? {};
  const flipAll = LABELS.every((l) => flip[l] !== undefined);
  out.push({
    name: 'every decision is what its version of the map says',
    pass: d.mismatches === 0 && missing.length === 0 && flipAll,
    detail: `${d.mismatches} mismatches${d.mismatchSamples.length > 0 ? ` (first: ${d.mismatchSamples[0] ?? ''})` : ''}; map-driven decisions for every fixed entry: ${missing.length === 0 ? 'yes' : `missing ${missing.join(', ')}`}; the changed entry seen in all three versions: ${flipAll ? 'yes' : 'no'}`,
  });
  const reloads = x.events.flatMap((ev) => ev.answers).filter((a) => a.event === 'access_db_reload');
  const sighup =
    x.events.find((ev) => ev.name === 'sighup')?.answers.filter((a) => a.event === 'reload') ?? [];
  out.push({
    name: 'the daemon swapped the map twice, and the SIGHUP reloaded the configuration',
    pass:
      reloads.filter((a) => a.ok === true).length >= 2 * x.workerCount &&
      reloads.every((a) => a.ok === true) &&
      sighup.length === x.workerCount &&
      sighup.every((a) => a.ok === true),
    detail: x.events
      .map(
        (ev) =>
          `${ev.name}: ${ev.answers.length === 0 ? 'no log line' : ev.answers.map((a) => `${a.worker === null ? '' : `w${a.worker} `}${a.event}${a.ok === true ? ' ok: true' : a.ok === false ? ' FAILED' : ''}${a.label === null ? '' : ` ${a.label}`}${a.generation === undefined || a.generation === null ? '' : ` generation ${a.generation}`}${a.loadMs === null ? '' : ` load_ms ${a.loadMs}`}`).join(', ')}`,
      )
      .join('; '),
  });
  out.push(...configChangeChecks(x), ...metricsChecks(x));
  if (x.problem !== null) out.push({ name: 'the run itself', pass: false, detail: x.problem });
  return out;
}

/** The generation each worker's `reload` line (of the SIGHUP step) names. */
function reloadGenerations(x: Omit<ReloadRun, 'checks'>): Map<number | null, number | null> {
  const out = new Map<number | null, number | null>();
  for (const a of x.events.find((ev) => ev.name === 'sighup')?.answers ?? [])
    if (a.event === 'reload' && a.ok === true) out.set(a.worker, a.generation ?? null);
  return out;
}

/** The SIGHUP's configuration change: in force from the generation each worker's `reload` line
 *  names, never before it, with every decision line saying which generation decided it. */
function configChangeChecks(x: Omit<ReloadRun, 'checks'>): Check[] {
  const c = x.configChange;
  const gens = x.generations;
  if (c === undefined || gens === undefined) return [];
  const reloadGen = reloadGenerations(x);
  const workers = [...new Set(x.spans.map((s) => s.worker))];
  let pass = workers.length === x.workerCount && workers.length > 0;
  const detail: string[] = [];
  for (const w of workers) {
    const g = reloadGen.get(w) ?? null;
    const mine = gens.filter((s) => s.worker === w);
    const sum = (xs: readonly GenerationSpan[], k: 'relayOld' | 'relayNew'): number =>
      xs.reduce((n, s) => n + s[k], 0);
    const before = mine.filter((s) => g !== null && (s.generation ?? 0) < g);
    const after = mine.filter((s) => g !== null && (s.generation ?? 0) >= g);
    const noGen = mine.filter((s) => s.generation === null).reduce((n, s) => n + s.count, 0);
    const ok =
      g !== null &&
      noGen === 0 &&
      sum(before, 'relayNew') === 0 &&
      sum(after, 'relayOld') === 0 &&
      sum(before, 'relayOld') > 0 &&
      sum(after, 'relayNew') > 0;
    if (!ok) pass = false;
    const gensSeen = mine.map((s) => s.generation ?? '?').join(', ');
    detail.push(
      `${w === null ? 'daemon' : `worker ${w}`}: \`reload ok: true\` ${g === null ? 'missing' : `generation ${g}`}; decision lines of generations ${gensSeen}${noGen > 0 ? ` (${noGen} without config_generation)` : ''}; relay refusals before it ${sum(before, 'relayOld')} old reply / ${sum(before, 'relayNew')} new, from it on ${sum(after, 'relayOld')} old / ${sum(after, 'relayNew')} new`,
    );
  }
  return [
    {
      name: `the configuration change (\`${c.key}\` + \`${CONFIG_V2_MARK.trim()}\`) decides from the reload's generation on, never before`,
      pass,
      detail: detail.join('; '),
    },
  ];
}

/** What the metrics endpoint must show at each scrape, from what the daemon logged. With workers
 *  the primary serves the sum over its workers: counters add up (each worker swaps the map and
 *  reloads the configuration itself, so one swap or SIGHUP adds one per worker), the generation and
 *  access_db gauges are the highest worker's value. */
function metricsChecks(x: Omit<ReloadRun, 'checks'>): Check[] {
  const ms = x.metrics;
  if (ms === undefined || x.metricsUrl === undefined || x.metricsUrl === null) return [];
  const out: Check[] = [];
  const w = x.workerCount;
  const by = (at: ScrapePoint): MetricsScrape | undefined => ms.find((s) => s.at === at);
  const failed = ms.filter((s) => s.error !== null);
  const missing = SCRAPE_POINTS.filter((p) => by(p) === undefined);
  out.push({
    name: 'the metrics endpoint answered every scrape',
    pass: failed.length === 0 && missing.length === 0,
    detail: `${ms.length} scrapes (${ms.map((s) => s.at).join(', ')})${missing.length === 0 ? '' : `; missing: ${missing.join(', ')}`}${failed.length === 0 ? '' : `; failed: ${failed.map((s) => `${s.at}: ${s.error ?? ''}`).join('; ')}`}${w > 1 ? `; cluster_workers{state="ready"}: ${ms.map((s) => s.workersReady ?? '—').join(', ')}` : ''}`,
  });
  const stepGen = (name: ScheduledEvent['name']): number | null => {
    const gs = (x.events.find((ev) => ev.name === name)?.answers ?? [])
      .filter((a) => a.ok === true && (a.event === 'reload' || a.event === 'access_db_reload'))
      .map((a) => a.generation ?? null);
    return gs.length === 0 || gs.some((g) => g === null) ? null : Math.max(...(gs as number[]));
  };
  const entries = x.startup.find((a) => a.entries !== undefined && a.entries !== null)?.entries ?? null;
  const expect: Record<
    ScrapePoint,
    { label: Label; generation: number | null; access: number; config: number }
  > = {
    before: { label: 'v1', generation: 1, access: 0, config: 0 },
    makemap: { label: 'v2', generation: stepGen('makemap'), access: w, config: 0 },
    sighup: { label: 'v2', generation: stepGen('sighup'), access: w, config: w },
    rename: { label: 'v3', generation: stepGen('rename'), access: 2 * w, config: w },
    end: { label: 'v3', generation: stepGen('rename'), access: 2 * w, config: w },
  };
  const versionOk: string[] = [];
  const countersOk: string[] = [];
  let vPass = missing.length === 0;
  let cPass = missing.length === 0;
  let prevGen: number | null = null;
  for (const p of SCRAPE_POINTS) {
    const s = by(p);
    if (s === undefined) continue;
    const e = expect[p];
    const info = s.accessDbInfo.filter((i) => i.value > 0);
    const infoLabels = info.map((i) => labelOf(x.versions, i.version) ?? `other ${i.version.slice(0, 15)}…`);
    // one version in force, the expected one; the generation the daemon logged for the step, one
    // more than at the scrape before (the end scrape: no step since the last one)
    const genOk =
      s.generation !== null &&
      s.generation === e.generation &&
      (prevGen === null || s.generation === prevGen + (p === 'end' ? 0 : 1));
    const ok =
      s.error === null &&
      info.length === 1 &&
      infoLabels[0] === e.label &&
      genOk &&
      entries !== null &&
      s.entries === entries;
    if (!ok) vPass = false;
    versionOk.push(
      `${p}: generation ${s.generation ?? '—'} (expected ${e.generation ?? 'no logged generation'}), version ${infoLabels.join(' + ') || 'none'} (expected ${e.label}), entries ${s.entries?.toLocaleString('en-US') ?? '—'}`,
    );
    prevGen = s.generation;
    const a = s.accessReloads;
    const c = s.configReloads;
    const cOk =
      a !== null &&
      c !== null &&
      a.ok === e.access &&
      a.refused === 0 &&
      c.ok === e.config &&
      c.refused === 0;
    if (!cOk) cPass = false;
    countersOk.push(
      `${p}: access_db ${a?.ok ?? '—'}${a !== null && a.refused > 0 ? ` (refused ${a.refused})` : ''} (expected ${e.access}), config ${c?.ok ?? '—'}${c !== null && c.refused > 0 ? ` (refused ${c.refused})` : ''} (expected ${e.config})`,
    );
  }
  out.push({
    name: 'after each step the metrics show the generation and map version the daemon logged',
    pass: vPass,
    detail: `${versionOk.join('; ')}; the map's entries as logged at start: ${entries?.toLocaleString('en-US') ?? '—'}`,
  });
  out.push({
    name: `the reload counters (\`result="ok"\`) went up by ${w === 1 ? 'one' : `${w}, one per worker,`} per swap and per SIGHUP, nothing refused`,
    pass: cPass,
    detail: countersOk.join('; '),
  });
  const end = by('end');
  const r = x.result;
  const d = x.decisions;
  if (end !== undefined && r !== null) {
    const dm = end.decisions;
    out.push({
      name: 'at the end the metrics count every decision line and connection, no tempfail',
      pass:
        dm !== null &&
        dm.rcpt === d.rcpt &&
        dm.eom === d.eom &&
        dm.all === d.rcpt + d.eom + d.other &&
        dm.tempfail === 0 &&
        end.connectionsTotal === r.totals.connections &&
        end.connectionsOpen === 0,
      detail: `decisions_total{mode="enforce"} ${dm?.all ?? '—'} / decision lines ${d.rcpt + d.eom + d.other} (rcpt ${dm?.rcpt ?? '—'} / ${d.rcpt}, eom ${dm?.eom ?? '—'} / ${d.eom}), action="tempfail" ${dm?.tempfail ?? '—'}; connections_total ${end.connectionsTotal ?? '—'} / loadgen connections ${r.totals.connections}; connections_open ${end.connectionsOpen ?? '—'}`,
    });
  }
  return out;
}

// ---- report ----

interface RawReport {
  readonly generatedBy: 'bench/access-db.ts';
  readonly date: string;
  readonly command: string;
  readonly machine: Machine;
  readonly options: Omit<Options, 'out' | 'fromJson' | 'keep'>;
  readonly source: SourceFacts;
  readonly image: { readonly bytes: number; readonly version: string } | null;
  readonly compile: readonly (CompileRun & Partial<Guard>)[];
  readonly load: readonly (LoadRun & Partial<Guard>)[];
  readonly lookups: (LookupReport & Partial<Guard>) | null;
  readonly reload: readonly (ReloadRun & Partial<Guard>)[];
  /** Parts this run did not measure (`--parts`), carried over from the raw file of an earlier run
   *  on the same map: when and on what tree they were measured. */
  readonly carried?: Partial<Record<Part, PartOrigin>>;
}

interface PartOrigin {
  readonly date: string;
  readonly tree: string;
  readonly command: string;
}

function treeOf(m: Machine): string {
  return `${m.commit}${m.uncommitted.length === 0 ? ' (clean)' : ` plus uncommitted changes to ${m.uncommitted.map((f) => `\`${f}\``).join(', ')}`}`;
}

/** The parts `o.parts` leaves out, from the previous raw file in `o.out` when it was measured on
 *  the same map (same source bytes); nothing when there is none or it is of another map. */
async function carryOver(
  o: Options,
  source: SourceFacts,
): Promise<Pick<RawReport, 'load' | 'lookups' | 'reload' | 'carried'> | null> {
  const left = ALL_PARTS.filter((p) => !o.parts.includes(p));
  if (left.length === 0) return null;
  const file = path.join(o.out, 'benchmarks-access-db.json');
  let prev: RawReport;
  try {
    prev = JSON.parse(await readFile(file, 'utf8')) as RawReport;
  } catch {
    say(`no earlier raw file ${path.relative(root, file)}: the section will lack ${left.join(', ')}`);
    return null;
  }
  if (prev.source?.sha256 !== source.sha256) {
    say(
      `${path.relative(root, file)} was measured on another map (sha256 ${String(prev.source?.sha256).slice(0, 16)}…, this run ${source.sha256.slice(0, 16)}…): ${left.join(', ')} not carried over`,
    );
    return null;
  }
  const origin = (p: Part): PartOrigin =>
    prev.carried?.[p] ?? { date: prev.date, tree: treeOf(prev.machine), command: prev.command };
  const carried: Partial<Record<Part, PartOrigin>> = {};
  const has: Record<Part, boolean> = {
    load: prev.load.length > 0,
    lookup: prev.lookups !== null,
    reload: prev.reload.length > 0,
  };
  for (const p of left) if (has[p]) carried[p] = origin(p);
  say(
    `carried over from ${path.relative(root, file)}: ${
      Object.entries(carried)
        .map(([p, x]) => `${p} (${x.date})`)
        .join(', ') || 'nothing'
    }`,
  );
  return {
    load: carried.load === undefined ? [] : prev.load,
    lookups: carried.lookup === undefined ? null : prev.lookups,
    reload: carried.reload === undefined ? [] : prev.reload,
    carried,
  };
}

function median(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const f0 = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : x.toFixed(0));
const secs = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '—' : (ms / 1000).toFixed(2);
const usToMs = (us: number | null | undefined): string =>
  us === null || us === undefined ? '—' : us >= 10000 ? (us / 1000).toFixed(0) : (us / 1000).toFixed(1);
const range = (xs: readonly (number | null | undefined)[], f: (x: number) => string): string => {
  const v = xs.filter((x): x is number => typeof x === 'number');
  return v.length < 2 ? '' : ` (${f(Math.min(...v))}–${f(Math.max(...v))})`;
};

/** Median "rest of system" of some steps, ⚠ when one stayed disturbed. */
function rest(xs: readonly Partial<Guard>[]): string {
  return `${f0(median(xs.map((x) => x.otherPct)))}${xs.some((x) => x.disturbed === true) ? ' ⚠' : ''}`;
}

const KIND_LABEL: Record<EntryKind, string> = {
  'connect-ipv4': '`Connect:` IPv4 address',
  'connect-ipv4-prefix': '`Connect:` IPv4 octet prefix (`a.b.c`, some `a.b`)',
  'connect-ipv6': '`Connect:IPv6:` address or group prefix, sendmail form',
  'connect-host': '`Connect:` host name',
  'connect-domain': '`Connect:` domain',
  'from-address': '`From:` full address',
  'from-user': '`From:user@`',
  'from-domain': '`From:` domain',
  'to-address': '`To:` address',
  'to-domain': '`To:` domain',
  cidr: 'CIDR (`Connect:a.b.c.d/n`, `IPv6:…/n`; 10 % untagged)',
  untagged: 'untagged (addresses, prefixes, domains, user@domain)',
  fixed: 'fixed entries for the load generator (below)',
};

function timelineTable(x: ReloadRun, t: Timeline): string[] {
  const L: string[] = [];
  L.push(
    '| s | msgs | p50 ms | p99 ms | max ms | tempfail | errors | decisions v1 / v2 / v3 | daemon RSS MiB | what happened |',
  );
  L.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|');
  const notes = new Map<number, string[]>();
  const note = (ms: number, text: string): void => {
    const b = Math.floor(ms / t.bucket_ms);
    notes.set(b, [...(notes.get(b) ?? []), text]);
  };
  note(t.warmup_end_ms, 'measured window starts');
  for (const ev of x.events) {
    note(
      ev.atMs,
      ev.name === 'makemap'
        ? 'makemap starts'
        : ev.name === 'sighup'
          ? `${x.configChange === undefined ? '' : 'configuration rewritten, '}SIGHUP`
          : 'image renamed into place',
    );
    if (ev.name === 'makemap') note(ev.endMs, `makemap done (${secs(ev.makemap?.wallMs)} s)`);
    for (const a of ev.answers)
      note(
        a.tMs,
        `${a.worker === null ? '' : `w${a.worker} `}${a.event}${a.ok === false ? ' FAILED' : ''}${a.label === null ? '' : ` ${a.label}`}${a.generation === undefined || a.generation === null ? '' : ` gen ${a.generation}`}${a.loadMs === null ? '' : ` (load ${a.loadMs} ms)`}`,
      );
  }
  for (const m of x.metrics ?? []) if (m.at !== 'before') note(m.tMs, `metrics scraped (${m.at})`);
  t.buckets.forEach((b, i) => {
    const d = x.decisions.perBucket[i] ?? {};
    L.push(
      `| ${((i * t.bucket_ms) / 1000).toFixed(0)} | ${b.messages} | ${usToMs(b.p50_us)} | ${usToMs(b.p99_us)} | ${usToMs(b.max_us)} | ${b.tempfail} | ${b.errors} | ${d['v1'] ?? 0} / ${d['v2'] ?? 0} / ${d['v3'] ?? 0} | ${f0(x.rss.perBucketMiB[i])} | ${(notes.get(i) ?? []).join('; ')} |`,
    );
  });
  return L;
}

/** The scrapes of the metrics endpoint, one row each. */
function metricsTable(x: ReloadRun, ms: readonly MetricsScrape[]): string[] {
  const L: string[] = [];
  const w = x.workerCount;
  L.push(
    `Metrics (\`GET ${(x.metricsUrl ?? '').replace(/:\d+\//, ':PORT/')}\`, plain \`fetch\`), read before the load, after each step once the daemon had logged its answer${w > 1 ? 's' : ''} to it, and at the end. ` +
      (w > 1
        ? `With \`workers: ${x.workers}\` the primary serves the sum over its ${w} workers: each worker swaps the map and reloads the configuration itself, so a swap adds ${w} to \`access_db_reloads_total\` and a SIGHUP ${w} to \`config_reloads_total\` (reloads performed by worker processes, not reload events); \`config_generation\`, \`access_db_info\` and \`access_db_entries\` are the highest worker's value (\`max\`), so \`access_db_info\` shows one series once every worker has swapped (two for the moment between their swaps); \`decisions_total\` and \`connections_total\` add up to the whole daemon's.`
        : "With `workers: 1` the daemon itself serves: every figure is the one process's.") +
      ' The generation goes up by one for every map swap and every configuration reload.',
  );
  L.push('');
  L.push(
    '| scrape | at s | `config_generation` | `access_db_info{version}` | `access_db_entries` | `access_db_reloads_total{result="ok"}` | `config_reloads_total{result="ok"}` | `decisions_total{mode="enforce"}` | tempfail decisions | `connections_total` / open |',
  );
  L.push('|---|--:|--:|---|--:|--:|--:|--:|--:|--:|');
  const label: Record<ScrapePoint, string> = {
    before: 'before the load',
    makemap: 'after makemap (v2 swapped in)',
    sighup: 'after the configuration change + SIGHUP',
    rename: 'after the rename (v3 swapped in)',
    end: 'end (load generator done)',
  };
  for (const m of ms) {
    if (m.error !== null) {
      L.push(
        `| ${label[m.at]} | ${secs(m.tMs)} | scrape failed: ${m.error.replace(/\|/g, '\\|')} | ${Array(7).fill('—').join(' | ')} |`,
      );
      continue;
    }
    const info =
      m.accessDbInfo
        .map(
          (i) =>
            `${labelOf(x.versions, i.version) ?? 'other'} \`${i.version.slice(0, 15)}…\`${i.value === 1 ? '' : ` = ${i.value}`}`,
        )
        .join('<br>') || '—';
    const refused = (c: { ok: number; refused: number } | null): string =>
      c === null ? '—' : `${c.ok}${c.refused > 0 ? ` (refused ${c.refused})` : ''}`;
    L.push(
      `| ${label[m.at]} | ${secs(m.tMs)} | ${m.generation ?? '—'} | ${info} | ${m.entries?.toLocaleString('en-US') ?? '—'} | ${refused(m.accessReloads)} | ${refused(m.configReloads)} | ${m.decisions?.all.toLocaleString('en-US') ?? '—'} | ${m.decisions?.tempfail ?? '—'} | ${m.connectionsTotal?.toLocaleString('en-US') ?? '—'} / ${m.connectionsOpen ?? '—'} |`,
    );
  }
  L.push('');
  const gens = x.generations;
  if (gens !== undefined && x.configChange !== undefined) {
    L.push(
      `Decision lines by the \`config_generation\` they name, and the relay refusals among them by their reply (old: \`${x.configChange.before}\`; new: \`${x.configChange.after}\`):`,
    );
    L.push('');
    L.push(
      '| worker | generation | decision lines | first – last s | relay refusals, old reply | new reply |',
    );
    L.push('|---|--:|--:|---|--:|--:|');
    for (const g of gens)
      L.push(
        `| ${g.worker ?? 'daemon'} | ${g.generation ?? '—'} | ${g.count.toLocaleString('en-US')} | ${secs(g.firstMs)} – ${secs(g.lastMs)} | ${g.relayOld.toLocaleString('en-US')} | ${g.relayNew.toLocaleString('en-US')} |`,
      );
    L.push('');
  }
  return L;
}

/** p99/max in the seconds holding a swap vs the other seconds of the measured window. */
function swapImpact(x: ReloadRun, t: Timeline): string[] {
  const first = Math.ceil(t.warmup_end_ms / t.bucket_ms);
  const busy = new Set<number>();
  const mark = (ms: number, ms2 = ms): void => {
    for (let b = Math.floor(ms / t.bucket_ms); b <= Math.floor(ms2 / t.bucket_ms) + 1; b++) busy.add(b);
  };
  for (const ev of x.events) {
    mark(ev.atMs, ev.endMs);
    for (const a of ev.answers) mark(a.tMs);
  }
  const last = first + Math.floor(x.result === null ? 0 : (x.result.window_s * 1000) / t.bucket_ms) - 1;
  const quiet = t.buckets.filter((_, i) => i >= first && i <= last && !busy.has(i));
  const qP99 = median(quiet.map((b) => b.p99_us));
  const qMax = median(quiet.map((b) => b.max_us));
  const qMsgs = median(quiet.map((b) => b.messages));
  const out: string[] = [
    `- quiet seconds (no event in or next to them): median ${f0(qMsgs)} msgs/s, p99 ${usToMs(qP99)} ms, max ${usToMs(qMax)} ms`,
  ];
  for (const ev of x.events) {
    const swaps = ev.answers.filter((a) => a.event === 'access_db_reload' || a.event === 'reload');
    const from = Math.floor(ev.atMs / t.bucket_ms);
    const to = Math.max(from, ...swaps.map((a) => Math.floor(a.tMs / t.bucket_ms))) + 1;
    const bs = t.buckets.slice(from, to + 1);
    const p99 = Math.max(...bs.map((b) => b.p99_us ?? 0));
    const max = Math.max(...bs.map((b) => b.max_us ?? 0));
    const msgs = Math.min(...bs.map((b) => b.messages));
    out.push(
      `- ${ev.name} (seconds ${from}–${to}): worst p99 ${usToMs(p99)} ms, worst max ${usToMs(max)} ms, fewest ${msgs} msgs/s` +
        (qP99 === null ? '' : ` — p99 ${(p99 / qP99).toFixed(1)}× the quiet median`),
    );
  }
  return out;
}

function markdownSection(rep: RawReport): string {
  const L: string[] = [];
  const m = rep.machine;
  const s = rep.source;
  L.push(`## access_db: a ${s.entries.toLocaleString('en-US')}-entry access map`);
  L.push('');
  L.push(
    '<!-- Written by bench/access-db.ts (`node dist/bench/access-db.js`); do not edit by hand. Raw data: benchmarks-access-db.json. -->',
  );
  L.push('');
  L.push(
    `Measured ${rep.date} on ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB RAM, Node ${m.node}, tree ${treeOf(m)}.`,
  );
  L.push('');
  const carried = rep.carried ?? {};
  const carriedNote = (p: Part): string => {
    const c = carried[p];
    return c === undefined
      ? ''
      : `Carried over from an earlier run on the same map (this run measured only ${rep.options.parts.join(', ')}): measured ${c.date} on tree ${c.tree}, by \`${c.command}\`. `;
  };
  if (Object.keys(carried).length > 0) {
    L.push(
      `This run (\`--parts ${rep.options.parts.join(',')}\`) measured the compile step and ${rep.options.parts.join(', ')}; ${(Object.keys(carried) as Part[]).join(', ')} ${Object.keys(carried).length === 1 ? 'is' : 'are'} carried over from the raw file of an earlier run on the same map (same source bytes), as noted where ${Object.keys(carried).length === 1 ? 'it appears' : 'they appear'}.`,
    );
    L.push('');
  }
  L.push('Reproduce (from the repository root):');
  L.push('');
  L.push('```sh');
  L.push(rep.command);
  L.push('```');
  L.push('');
  L.push('### The map');
  L.push('');
  L.push(
    `bench/access-db-generate.ts writes ${s.entries.toLocaleString('en-US')} entries (seed ${rep.options.seed}) in ${s.lines.toLocaleString('en-US')} lines, ${mib(s.bytes)} MiB of makemap source (sha256 \`${s.sha256.slice(0, 16)}…\`, the same bytes on every run), with comment blocks every 5,000 entries and no duplicate key. Right-hand sides: OK, RELAY, REJECT, DISCARD, \`ERROR:5.7.1:"550 …"\` (300 distinct texts), a few \`ERROR:4.7.1:"451 …"\` and \`QUARANTINE:\`.`,
  );
  L.push('');
  L.push('| kind | entries | share |');
  L.push('|---|--:|--:|');
  for (const [k, n] of Object.entries(s.counts) as [EntryKind, number][])
    L.push(`| ${KIND_LABEL[k]} | ${n.toLocaleString('en-US')} | ${((n / s.entries) * 100).toFixed(1)} % |`);
  L.push('');
  L.push(
    `The fixed entries decide for some of the load generator's clients (192.0.2.1–254, cycling) and one of its recipients, and sit at lines ${Object.values(s.fixedLines).join(', ')}: ` +
      (Object.keys(FIXED) as FixedName[])
        .map((n) => `\`${FIXED[n].key} ${n === 'flip' ? '…' : FIXED[n].value}\``)
        .join(', ') +
      `. The reload test changes the first one: v1 \`${FLIP_VALUES[0]}\`, v2 \`${FLIP_VALUES[1]}\`, v3 \`${FLIP_VALUES[2]}\`.`,
  );
  L.push('');
  L.push('### Compile, load and memory');
  L.push('');
  const c = rep.compile;
  const loads = (v: LoadVariant): (LoadRun & Partial<Guard>)[] => rep.load.filter((x) => x.variant === v);
  const none = loads('none');
  const baseRss = median(none.map((x) => x.idle?.rssMiB));
  // the steps this run measured (carried-over parts were counted by their own run)
  const steps: Partial<Guard>[] = [
    ...rep.compile,
    ...(carried.load === undefined ? rep.load : []),
    ...(carried.lookup === undefined && rep.lookups !== null ? [rep.lookups] : []),
    ...(carried.reload === undefined ? rep.reload : []),
  ];
  L.push(
    `Each figure is the median of ${rep.options.repeat} run(s), range in brackets. Before each step the script waits for the machine to be idle and for no other session's loadgen/null-milter to run; ` +
      `a step during which other work (the machine's busy time minus this script and its children) took more than ${DISTURBED_PCT} % of a core is repeated, up to ${DISTURBED_RETRIES} times ("rest" columns: that other work; ⚠: still disturbed). ` +
      `This time ${steps.reduce((n, x) => n + (x.discarded ?? 0), 0)} step(s) were repeated.`,
  );
  L.push('');
  L.push('| step | wall s | own time s | peak RSS MiB | rest % |');
  L.push('|---|--:|--:|--:|--:|');
  L.push(
    `| \`milter-policy makemap hash access < access\` (node start, read, parse, build, fsync, rename) | ${secs(median(c.map((x) => x.wallMs)))}${range(
      c.map((x) => x.wallMs),
      (v) => secs(v),
    )} | ${secs(median(c.map((x) => x.cliMs)))} | ${f0(median(c.map((x) => x.peakRssMiB)))} | ${rest(c)} |`,
  );
  L.push('');
  if (rep.image !== null)
    L.push(
      `Image: ${mib(rep.image.bytes)} MiB (${(rep.image.bytes / s.entries).toFixed(1)} bytes per entry; the source is ${mib(s.bytes)} MiB).`,
    );
  L.push('');
  if (rep.load.length > 0) {
    L.push(
      `${carriedNote('load')}Daemon (\`workers: 1\`, the benchmark configuration) started fresh each time; memory read from /proc/PID/status after ${IDLE_S} s idle.`,
    );
    L.push('');
    L.push(
      '| access_db | spawn → `started` s | `access_db_loaded.load_ms` | VmRSS MiB | − no map | RssAnon MiB | VmHWM (peak) MiB | rest % |',
    );
    L.push('|---|--:|--:|--:|--:|--:|--:|--:|');
    const label: Record<LoadVariant, string> = {
      none: 'none',
      compiled: 'compiled image (`file: access.mpdb`)',
      text: 'text source (`file: access`)',
    };
    for (const v of ['none', 'compiled', 'text'] as const) {
      const xs = loads(v);
      if (xs.length === 0) continue;
      const rss = median(xs.map((x) => x.idle?.rssMiB));
      L.push(
        `| ${label[v]} | ${secs(median(xs.map((x) => x.startedMs)))}${range(
          xs.map((x) => x.startedMs),
          (y) => secs(y),
        )} | ${v === 'none' ? '—' : f0(median(xs.map((x) => x.loadMs)))}${
          v === 'none'
            ? ''
            : range(
                xs.map((x) => x.loadMs),
                (y) => f0(y),
              )
        } | ${f0(rss)} | ${v === 'none' || rss === null || baseRss === null ? '—' : `+${f0(rss - baseRss)}`} | ${f0(median(xs.map((x) => x.idle?.anonMiB)))} | ${f0(median(xs.map((x) => x.idle?.hwmMiB)))} | ${rest(xs)} |`,
      );
    }
    L.push('');
    const comp = median(loads('compiled').map((x) => x.idle?.rssMiB));
    if (comp !== null && baseRss !== null && rep.image !== null)
      L.push(
        `Resident cost of the loaded map: ${f0(comp - baseRss)} MiB for a ${mib(rep.image.bytes)} MiB image (${((comp - baseRss) / (rep.image.bytes / 2 ** 20)).toFixed(2)}×).`,
      );
    L.push('');
  }
  const lk = rep.lookups;
  if (lk !== null) {
    L.push('### Lookup cost');
    L.push('');
    L.push(
      `${carriedNote('lookup')}In one process, on the compiled image: \`readAccessImage\` (read and checksum, what the daemon's loader thread does) ${f0(lk.readMs)} ms; \`AccessSnapshot.fromImage\` (metadata JSON, the tables of the ${lk.cidrKeys.toLocaleString('en-US')} CIDR keys: what a swap costs the daemon's event loop) ${f0(lk.openMs)} ms on its first call, ${f0(lk.openWarmMs)} ms warm. ` +
        `Walks as the daemon calls them (tagged, then untagged at each step; no lookupdotdomain), ${lk.rows[0]?.queries.toLocaleString('en-US') ?? 0} queries per row, after two warm-up passes: mean over whole passes (median of 3); p50 and p99 of single calls timed with process.hrtime.bigint, its own ${f0(lk.timerNs)} ns subtracted. Other work on the machine meanwhile: ${rest([lk])} % of a core.`,
    );
    L.push('');
    L.push('| walk | query | expected | found | p50 ns | mean ns | p99 ns |');
    L.push('|---|---|---|--:|--:|--:|--:|');
    for (const r of lk.rows)
      L.push(
        `| ${r.walk} | ${r.query} | ${r.expect} | ${((r.hits / r.queries) * 100).toFixed(1)} % | ${f0(r.p50Ns)} | ${f0(r.meanNs)} | ${f0(r.p99Ns)} |`,
      );
    L.push('');
  }
  for (const x of rep.reload) {
    const r = x.result;
    L.push(
      `### Reload under load: \`workers: ${x.workers}\`${x.workerCount > 1 ? ` (${x.workerCount} worker processes)` : ''}`,
    );
    L.push('');
    L.push(
      `${carriedNote('reload')}\`${x.loadgenCommand.replace(/inet:\d+@/, 'inet:PORT@')}\` against the daemon on the benchmark configuration plus \`access_db: {file: access.mpdb, check_interval: 1s, blocklist_recipients: true, delay_checks: true}\`${x.metrics === undefined ? '' : ' and `metrics: {enabled: true, listen: "127.0.0.1:PORT"}`'}. ` +
        `During the measured window: ${x.events.map((ev) => `at ${secs(ev.atMs)} s ${ev.what}`).join('; ')}.` +
        (r === null
          ? ''
          : ` Result: ${r.messages_per_sec.toFixed(0)} msgs/s over the window, whole-message p50 ${usToMs(r.latency_us.message?.p50)} ms, p99 ${usToMs(r.latency_us.message?.p99)} ms, max ${usToMs(r.latency_us.message?.max)} ms.`),
    );
    L.push('');
    for (const ch of x.checks) L.push(`- ${ch.pass ? '✅' : '❌'} ${ch.name}: ${ch.detail}`);
    L.push(`- other work on the machine during the run: ${rest([x])} % of a core`);
    L.push('');
    if (x.metrics !== undefined) L.push(...metricsTable(x, x.metrics));
    L.push(
      'Decisions that came from the fixed entries (from the decision log, by the version the line names):',
    );
    L.push('');
    L.push('| entry | line | v1 | v2 | v3 |');
    L.push('|---|--:|---|---|---|');
    for (const n of Object.keys(FIXED) as FixedName[]) {
      const byV = x.decisions.fromMap[n] ?? {};
      const cellOf = (l: Label): string =>
        Object.entries(byV[l] ?? {})
          .map(([k, v]) => `${k.replace(/[<>]/g, '')} ×${v}`)
          .join('<br>') || '—';
      L.push(
        `| \`${FIXED[n].key}\` | ${s.fixedLines[n]} | ${cellOf('v1')} | ${cellOf('v2')} | ${cellOf('v3')} |`,
      );
    }
    L.push('');
    if (r?.timeline !== undefined) {
      L.push('Latency around the swaps:');
      L.push('');
      L.push(...swapImpact(x, r.timeline));
      L.push('');
      L.push(
        `Per second of the run (messages by the second they ended in; decisions by the \`access_db\` version on their line; RSS of the daemon's process tree${x.rss.beforeMiB === null ? '' : `, ${f0(x.rss.beforeMiB)} MiB before the load`}):`,
      );
      L.push('');
      L.push(...timelineTable(x, r.timeline));
      L.push('');
    }
  }
  return L.join('\n');
}

async function writeReports(out: string, rep: RawReport): Promise<void> {
  await mkdir(out, { recursive: true });
  const mdFile = path.join(out, 'benchmarks.md');
  const jsonFile = path.join(out, 'benchmarks-access-db.json');
  let doc = await readFile(mdFile, 'utf8').catch(() => '');
  if (doc.trim() === '')
    doc = '# Benchmarks\n\n<!-- bench/run.ts (`npm run bench`) writes the rest of this file. -->\n';
  await writeFile(mdFile, replaceSection(doc, 'access-db', markdownSection(rep)));
  await writeFile(jsonFile, await formatJson(jsonFile, rep));
  process.stderr.write(
    `access-db: wrote ${path.relative(root, mdFile)} (its access-db section) and ${path.relative(root, jsonFile)}\n`,
  );
}

// ---- main ----

function say(text: string): void {
  process.stderr.write(`access-db: ${text}\n`);
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (o.fromJson !== null) {
    const rep = JSON.parse(await readFile(o.fromJson, 'utf8')) as RawReport;
    await writeReports(o.out, rep);
    return 0;
  }
  if (!existsSync(daemonMain))
    fail(`${path.relative(root, daemonMain)} does not exist (run \`npm run build\`)`);
  const mach = machine();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await buildCPrograms();
  const dir = o.keep ?? (await mkdtemp(path.join(os.tmpdir(), 'milter-bench-access-db-')));
  await mkdir(dir, { recursive: true });
  const files: Files = {
    dir,
    source: path.join(dir, 'access'),
    image: path.join(dir, 'access.mpdb'),
    imageV1: path.join(dir, 'access-v1.mpdb'),
    imageV3: path.join(dir, 'access-v3.mpdb'),
  };
  try {
    say(`generating ${o.entries} entries in ${dir}...`);
    const g0 = performance.now();
    const gen = generateAccess(o.entries, o.seed, o.lookups);
    const text = sourceText(gen.lines);
    const generateMs = performance.now() - g0;
    await writeFile(files.source, text, 'latin1');
    const source: SourceFacts = {
      entries: gen.entries,
      lines: gen.lines.length,
      bytes: Buffer.byteLength(text, 'latin1'),
      sha256: createHash('sha256').update(text, 'latin1').digest('hex'),
      counts: gen.counts,
      fixedLines: gen.fixedLines,
      generateMs,
    };
    say(`${mib(source.bytes)} MiB, ${source.lines} lines in ${(generateMs / 1000).toFixed(1)} s`);

    const compile: (CompileRun & Guard)[] = [];
    for (let i = 0; i < o.repeat; i++) {
      const c = await guarded('makemap', () => makemap(['hash', files.source], files.source));
      compile.push(c);
      say(
        `makemap ${i + 1}/${o.repeat}: ${secs(c.wallMs)} s wall, CLI ${String(c.cliMs)} ms, peak RSS ${f0(c.peakRssMiB)} MiB, rest ${f0(c.otherPct)} %`,
      );
    }
    const imageBytes = (await stat(files.image)).size;
    const v1 = await imageVersion(files.image);
    await copyFile(files.image, files.imageV1);

    const load: (LoadRun & Guard)[] = [];
    if (o.parts.includes('load'))
      for (let i = 0; i < o.repeat; i++)
        for (const v of ['none', 'compiled', 'text'] as const) {
          const l = await guarded(`load ${v}`, () => measureLoad(files, v));
          load.push(l);
          say(
            `load ${v} ${i + 1}/${o.repeat}: started after ${secs(l.startedMs)} s, load_ms ${String(l.loadMs)}, RSS ${f0(l.idle?.rssMiB)} MiB (HWM ${f0(l.idle?.hwmMiB)}), rest ${f0(l.otherPct)} %`,
          );
        }

    let lookups: (LookupReport & Guard) | null = null;
    if (o.parts.includes('lookup')) {
      lookups = await guarded('lookups', () =>
        lookupCosts(files.image, gen.samples, gen.lines, o.lookups, o.seed),
      );
      for (const r of lookups.rows)
        say(
          `lookup ${r.walk} ${r.query}: p50 ${f0(r.p50Ns)} ns, mean ${f0(r.meanNs)} ns, found ${r.hits}/${r.queries}`,
        );
    }

    const reload: (ReloadRun & Guard)[] = [];
    if (o.parts.includes('reload')) {
      await writeFile(files.source, versionText(gen.lines, gen.fixedLines.flip, 2), 'latin1');
      await makemap(['-o', files.imageV3, files.source]);
      const v3 = await imageVersion(files.imageV3);
      for (const w of o.workers) {
        say(`reload under load, workers: ${w} (${o.warmup + o.duration} s)...`);
        const x = await guarded(
          `reload workers: ${w}`,
          () => reloadUnderLoad(o, files, gen.lines, gen.fixedLines, w, { v1, v3 }),
          (r) => r.checks.some((c) => !c.pass),
        );
        reload.push(x);
        say(`  other work on the machine: ${f0(x.otherPct)} % of a core (${x.discarded} run(s) repeated)`);
        for (const ch of x.checks) say(`  ${ch.pass ? 'PASS' : 'FAIL'} ${ch.name}: ${ch.detail}`);
      }
    }
    const { out: _out, fromJson: _fj, keep: _keep, ...options } = o;
    const prev = await carryOver(o, source);
    const rep: RawReport = {
      generatedBy: 'bench/access-db.ts',
      date,
      command: reproduceCommand(o),
      machine: mach,
      options,
      source,
      image: { bytes: imageBytes, version: v1 },
      compile,
      load: o.parts.includes('load') ? load : (prev?.load ?? []),
      lookups: o.parts.includes('lookup') ? lookups : (prev?.lookups ?? null),
      reload: o.parts.includes('reload') ? reload : (prev?.reload ?? []),
      ...(prev === null || Object.keys(prev.carried ?? {}).length === 0 ? {} : { carried: prev.carried }),
    };
    await writeReports(o.out, rep);
    return reload.some((x) => x.checks.some((c) => !c.pass)) ? 2 : 0;
  } finally {
    if (o.keep === null) await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    killAll();
    fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
  },
);
