// The benchmark driver behind `npm run bench` (compiled to dist/bench/run.js). It builds the C
// reference milter and the load generator (bench/c/*.c -> bench/c/build/, gcc + Debian's
// libmilter), then for each concurrency level measures, one fresh process at a time:
//   lean  libmilter null milter asking for the same protocol bits as milter-policy,
//   full  libmilter null milter with every callback and no NO/NR bits,
//   ours     `node dist/cli/main.js serve` on bench/milter-policy-bench.yaml (relay guard
//            enforcing, decisions logged to a file, workers: auto),
//   ours-w1  the same as one process (workers: 1),
//   ours-all the same file (workers: auto) plus bench/milter-policy-bench-all.yaml: every check of
//            issue 4 on (DNSBL and RHSBL answered by a private rbldnsd started for the run,
//            ./dnsbl-server.ts, and cached by the daemon; the classic filters, the MIME walk),
// samples each milter's CPU (and the DNS server's) from /proc/PID/stat, cross-checks the milter's
// own counters against what the load generator sent, and writes docs/benchmarks.md and
// docs/benchmarks.json itself: those two files are never edited by hand. The load generator sends
// the same message to every target: --mime (a multipart/mixed 10 KiB body with a text part and a
// base64 report.pdf attachment; a milter that does not ask for headers and body never gets them).
// The sections of benchmarks.md owned by other scripts (between `<!-- NAME:begin -->` and
// `<!-- NAME:end -->`: access-db from bench/access-db.ts, attachments from bench/attachments.ts)
// are carried over unchanged (./report-sections.ts).
//
// Options (flags win over environment variables):
//   --duration SEC   BENCH_DURATION     measured seconds per run (default 10)
//   --warmup SEC     BENCH_WARMUP       warm-up seconds before that (default 2)
//   --concurrency L  BENCH_CONCURRENCY  comma-separated levels (default 1,8,64,256)
//   --targets L      BENCH_TARGETS      comma-separated, from lean,full,ours,ours-w1,ours-all
//                                       (default: all; ours = the YAML as written, ours-w1 = it
//                                       with workers: 1, ours-all = it with every check on)
//   --out DIR        BENCH_OUT          where the two reports go (default docs)
//   --repeat N       BENCH_REPEAT       run the whole matrix N times, interleaved; tables and
//                                       verdicts show the median of each figure (default 1)
//   --quick                             --duration 2 --warmup 1 (a smoke run)
//   --from-json FILE                    measure nothing: re-render the reports from a raw file
//                                       written earlier (after a change to the report format)
//   -- ARGS...                          passed to every loadgen run after --mime
//                                       (e.g. --messages-per-connection 5)
// Failure: exit 1 when the C programs do not build, a milter does not start, or the load generator
// produces no result; exit 2 when everything ran but a milter committed protocol errors (the
// reports are written first, with the errors in them); 0 otherwise.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { Latency, LoadgenResult, Stage } from './loadgen-result.js';
import type { Machine, ProcSample, StatSample, SystemCpu } from './machine.js';
import {
  CLK_TCK,
  DISTURBED_PCT,
  DISTURBED_RETRIES,
  PAGE_SIZE,
  QUIET_PCT,
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
  nullMilterBin,
  run,
} from './processes.js';
import { DnsblServer } from './dnsbl-server.js';
import { BL_OCTETS, PBL_OCTETS } from './dnsbl-server.js';
import { formatJson, keepSections } from './report-sections.js';

const configTemplate = path.join(root, 'bench', 'milter-policy-bench.yaml');
/** Merged (top-level keys) into configTemplate for `ours-all`. */
const allChecksOverlay = path.join(root, 'bench', 'milter-policy-bench-all.yaml');
/** Given to every loadgen run, before the user's own arguments. */
const LOADGEN_WORKLOAD: readonly string[] = ['--mime'];

type TargetName = 'lean' | 'full' | 'ours' | 'ours-w1' | 'ours-all';
const ALL_TARGETS: readonly TargetName[] = ['lean', 'full', 'ours', 'ours-w1', 'ours-all'];
/** Measured unless --targets says otherwise. */
const DEFAULT_TARGETS: readonly TargetName[] = ALL_TARGETS;
const TARGET_LABEL: Record<TargetName, string> = {
  lean: 'libmilter null (lean)',
  full: 'libmilter null (full)',
  ours: 'milter-policy',
  'ours-w1': 'milter-policy, workers: 1',
  'ours-all': 'milter-policy, all checks',
};
/** Our daemon's variants: the configuration file as written, as one process (`workers: 1`), and
 *  with every check on. */
const OUR_TARGETS: readonly TargetName[] = ['ours', 'ours-w1', 'ours-all'];
const isOurs = (t: TargetName): boolean => OUR_TARGETS.includes(t);
/** The variants with the relay guard alone, compared with the libmilter reference. */
const RELAY_ONLY_TARGETS: readonly TargetName[] = ['ours', 'ours-w1'];
/** The issue 4 target: all checks on keep at least this share of the relay-guard-only throughput. */
const ALL_CHECKS_MIN_RATIO = 0.8;

interface Options {
  readonly duration: number;
  readonly warmup: number;
  readonly concurrency: readonly number[];
  readonly targets: readonly TargetName[];
  readonly out: string;
  readonly repeat: number;
  readonly loadgenArgs: readonly string[];
  /** Re-render the reports from this raw file instead of measuring. */
  readonly fromJson: string | null;
}

// ---- one measurement ----

interface CpuUse {
  /** Average over the measured window, % of one core. */
  readonly windowPct: number | null;
  /** Highest 1-second average seen during the run. */
  readonly peakPct: number | null;
  readonly peakRssMiB: number | null;
  readonly peakThreads: number | null;
}

/** The private DNS server of an `ours-all` run (rbldnsd). */
interface DnsUse {
  readonly command: string;
  /** CPU over the measured window and over the whole run (warm-up, where the misses are, included). */
  readonly windowPct: number | null;
  readonly runCpuS: number | null;
  /** Queries rbldnsd counted: whole run, and inside the measured window (its counters are
   *  written once a second: from 1-2 s after the window's start to 1-2 s before its end). */
  readonly queriesTotal: number | null;
  readonly queriesInWindow: number | null;
  readonly queriesByZone: Readonly<Record<string, number>> | null;
}

interface Measurement {
  readonly target: TargetName;
  readonly concurrency: number;
  readonly repetition: number;
  readonly command: string;
  readonly listen: string;
  readonly loadgenCommand: string;
  readonly loadgenExit: number | null;
  readonly result: LoadgenResult | null;
  readonly milterCpu: CpuUse;
  /** Only for `ours-all` (absent in raw files written before it existed). */
  readonly dns?: DnsUse | null;
  readonly systemCpu: SystemCpu | null;
  /** The milter's own view: C counters, or event counts from our daemon's log. */
  readonly milterCounters: Record<string, number> | null;
  readonly counterCheck: string;
  readonly logBytes: number | null;
  readonly logSamples: readonly string[];
  readonly milterStderr: string;
  readonly problem: string | null;
  /** Other work took more than DISTURBED_PCT of a core during the window (after the retries). */
  readonly disturbed: boolean;
  /** Measurements of this cell thrown away because they were disturbed. */
  readonly discarded: number;
}

// ---- options ----

function positiveNumber(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`${name} ${JSON.stringify(v)}: expected a number of seconds`);
  return n;
}

function parseOptions(argv: readonly string[]): Options {
  const env = process.env;
  let duration =
    env['BENCH_DURATION'] === undefined ? 10 : positiveNumber('BENCH_DURATION', env['BENCH_DURATION']);
  let warmup = env['BENCH_WARMUP'] === undefined ? 2 : positiveNumber('BENCH_WARMUP', env['BENCH_WARMUP']);
  let concurrency = env['BENCH_CONCURRENCY'] ?? '1,8,64,256';
  let targets = env['BENCH_TARGETS'] ?? DEFAULT_TARGETS.join(',');
  let out = env['BENCH_OUT'] ?? 'docs';
  let repeat = env['BENCH_REPEAT'] ?? '1';
  let fromJson: string | null = null;
  const loadgenArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--duration':
        duration = positiveNumber(a, value());
        break;
      case '--warmup':
        warmup = positiveNumber(a, value());
        break;
      case '--concurrency':
        concurrency = value();
        break;
      case '--targets':
        targets = value();
        break;
      case '--out':
        out = value();
        break;
      case '--repeat':
        repeat = value();
        break;
      case '--from-json':
        fromJson = path.resolve(value());
        break;
      case '--quick':
        duration = 2;
        warmup = 1;
        break;
      case '--':
        loadgenArgs.push(...argv.slice(i + 1));
        i = argv.length;
        break;
      default:
        fail(`unknown option ${a} (see the header of bench/run.ts)`);
    }
  }
  if (duration < 0.1) fail('--duration must be at least 0.1 s');
  const levels = concurrency.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 10000)
      fail(`concurrency ${JSON.stringify(s)}: expected 1..10000`);
    return n;
  });
  const names = targets.split(',').map((s) => {
    const t = s.trim();
    if (!(ALL_TARGETS as readonly string[]).includes(t))
      fail(`target ${JSON.stringify(t)}: expected ${ALL_TARGETS.join(', ')}`);
    return t as TargetName;
  });
  const repeats = Number(repeat);
  if (!Number.isInteger(repeats) || repeats < 1 || repeats > 100)
    fail(`repeat ${JSON.stringify(repeat)}: expected 1..100`);
  return {
    duration,
    warmup,
    concurrency: levels,
    targets: names,
    out: path.resolve(root, out),
    repeat: repeats,
    loadgenArgs,
    fromJson,
  };
}

/** The command line that reproduces this run. */
function reproduceCommand(o: Options): string {
  const parts = [
    'npm run bench --',
    `--duration ${o.duration}`,
    `--warmup ${o.warmup}`,
    `--concurrency ${o.concurrency.join(',')}`,
  ];
  if (o.targets.join(',') !== DEFAULT_TARGETS.join(',')) parts.push(`--targets ${o.targets.join(',')}`);
  if (o.repeat !== 1) parts.push(`--repeat ${o.repeat}`);
  if (path.relative(root, o.out) !== 'docs') parts.push(`--out ${path.relative(root, o.out)}`);
  if (o.loadgenArgs.length > 0) parts.push('--', ...o.loadgenArgs);
  return parts.join(' ');
}

interface StartedMilter {
  readonly proc: Captured;
  readonly pid: number;
  readonly listen: string;
  readonly command: string;
  readonly logFile: string | null;
}

async function startMilter(target: TargetName, tmp: string, dns: DnsblServer | null): Promise<StartedMilter> {
  let lastProblem = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const listen = `inet:${port}@127.0.0.1`;
    let cmd: string;
    let args: string[];
    let logFile: string | null = null;
    if (isOurs(target)) {
      let config = parseYaml(await readFile(configTemplate, 'utf8')) as Record<string, unknown>;
      if (target === 'ours-w1') config['workers'] = 1;
      if (target === 'ours-all') {
        if (dns === null) fail('ours-all needs its DNS server');
        const overlay = parseYaml(await readFile(allChecksOverlay, 'utf8')) as Record<string, unknown>;
        const dnsbl = (overlay['dnsbl'] ?? {}) as Record<string, unknown>;
        config = { ...config, ...overlay, dnsbl: { ...dnsbl, servers: [dns.server] } };
      }
      logFile = path.join(tmp, `milter-policy-${port}.log`);
      const log = (config['log'] ?? {}) as Record<string, unknown>;
      config['listen'] = [listen];
      config['log'] = { ...log, file: logFile };
      const configFile = path.join(tmp, 'milter-policy-bench.yaml');
      await writeFile(configFile, stringifyYaml(config));
      cmd = process.execPath;
      args = [path.relative(root, daemonMain), 'serve', '--config', configFile];
    } else {
      cmd = nullMilterBin;
      args = target === 'full' ? ['-f', '-p', listen] : ['-p', listen];
    }
    const shown = isOurs(target)
      ? [
          ...args.slice(0, -1),
          `<copy of ${path.relative(root, configTemplate)}${target === 'ours-w1' ? ' + workers: 1' : target === 'ours-all' ? ` + ${path.relative(root, allChecksOverlay)}, dnsbl.servers: the run's rbldnsd` : ''}>`,
        ]
      : args;
    const command = [cmd === process.execPath ? 'node' : path.relative(root, cmd), ...shown].join(' ');
    const proc = run(cmd, args);
    const deadline = performance.now() + 20_000;
    let exitCode: number | null | undefined;
    void proc.exited.then((c) => {
      exitCode = c;
    });
    for (;;) {
      if (hasStarted(proc.stdout()) || (logFile !== null && hasStarted(readText(logFile)))) {
        const pid = proc.child.pid;
        if (pid === undefined) break;
        return { proc, pid, listen, command, logFile };
      }
      if (exitCode !== undefined || performance.now() > deadline) break;
      await sleep(50);
    }
    proc.child.kill('SIGKILL');
    await proc.exited;
    lastProblem = `${command}: ${exitCode === undefined ? 'no "started" event within 20 s' : `exited with ${String(exitCode)}`}\n${proc.stderr().slice(-2000)}`;
    if (!/EADDRINUSE|in use|cannot listen/i.test(lastProblem)) break;
  }
  fail(`cannot start the ${TARGET_LABEL[target]} milter: ${lastProblem}`);
}

async function stopMilter(m: StartedMilter): Promise<number | null> {
  m.proc.child.kill('SIGTERM');
  const timer = setTimeout(() => m.proc.child.kill('SIGKILL'), 15_000);
  const code = await m.proc.exited;
  clearTimeout(timer);
  return code;
}

/** Counts log lines by `event`, and keeps the first warnings and errors. */
async function analyseLog(
  file: string,
): Promise<{ counts: Record<string, number>; bytes: number; samples: string[] }> {
  const counts: Record<string, number> = {};
  const samples: string[] = [];
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { counts, bytes: 0, samples };
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let rec: { event?: unknown; level?: unknown };
    try {
      rec = JSON.parse(line) as { event?: unknown; level?: unknown };
    } catch {
      counts['(not JSON)'] = (counts['(not JSON)'] ?? 0) + 1;
      continue;
    }
    const ev = typeof rec.event === 'string' ? rec.event : '(no event)';
    counts[ev] = (counts[ev] ?? 0) + 1;
    const level = typeof rec.level === 'string' ? rec.level : '';
    if ((level === 'warn' || level === 'error' || level === 'fatal') && samples.length < 5)
      samples.push(line.slice(0, 600));
  }
  return { counts, bytes: Buffer.byteLength(text), samples };
}

function cpuUse(
  samples: readonly ProcSample[],
  windowStart: ProcSample | null,
  windowEnd: ProcSample | null,
): CpuUse {
  const pct = (a: ProcSample, b: ProcSample): number =>
    ((b.ticks - a.ticks) / CLK_TCK / ((b.t - a.t) / 1000)) * 100;
  let peak: number | null = null;
  for (let i = 0, j = 0; i < samples.length; i++) {
    const b = samples[i] as ProcSample;
    while (j < i && b.t - (samples[j] as ProcSample).t > 1000) j++;
    const a = samples[j > 0 ? j - 1 : 0] as ProcSample;
    if (b.t - a.t >= 900) peak = Math.max(peak ?? 0, pct(a, b));
  }
  return {
    windowPct:
      windowStart !== null && windowEnd !== null && windowEnd.t > windowStart.t
        ? pct(windowStart, windowEnd)
        : null,
    peakPct: peak,
    peakRssMiB:
      samples.length === 0 ? null : (Math.max(...samples.map((s) => s.rssPages)) * PAGE_SIZE) / 2 ** 20,
    peakThreads: samples.length === 0 ? null : Math.max(...samples.map((s) => s.threads)),
  };
}

function counterCheck(
  target: TargetName,
  r: LoadgenResult | null,
  counters: Record<string, number> | null,
): string {
  if (r === null) return 'no load generator result';
  if (counters === null) return isOurs(target) ? 'no log' : 'no counters printed at exit';
  const sent = r.totals.sent;
  if (isOurs(target)) {
    const decisions = counters['decision'] ?? 0;
    const errors = (counters['protocol_error'] ?? 0) + (counters['handler_error'] ?? 0);
    return `${decisions} decision log lines for ${r.totals.messages} messages (${sent.eom} reaching end of message) / ${sent.rcpt} recipients; ${errors} protocol/handler error lines`;
  }
  const pairs: [string, number][] = [
    ['negotiate', r.totals.negotiated],
    ['connect', sent.connect],
    ['envrcpt', sent.rcpt],
    ['eom', sent.eom],
  ];
  const bad = pairs
    .filter(([k, v]) => counters[k] !== v)
    .map(([k, v]) => `${k}: milter ${counters[k] ?? '?'} vs sent ${v}`);
  return bad.length === 0 ? `ok (milter saw ${sent.eom} EOMs = sent)` : `MISMATCH ${bad.join(', ')}`;
}

async function measure(
  target: TargetName,
  concurrency: number,
  repetition: number,
  o: Options,
  tmp: string,
): Promise<Measurement> {
  const dns = target === 'ours-all' ? await DnsblServer.start() : null;
  try {
    return await measureWith(target, concurrency, repetition, o, tmp, dns);
  } finally {
    await dns?.stop();
  }
}

async function measureWith(
  target: TargetName,
  concurrency: number,
  repetition: number,
  o: Options,
  tmp: string,
  dns: DnsblServer | null,
): Promise<Measurement> {
  const m = await startMilter(target, tmp, dns);
  const args = [
    '--target',
    m.listen,
    '--concurrency',
    String(concurrency),
    '--duration',
    String(o.duration),
    '--warmup',
    String(o.warmup),
    ...LOADGEN_WORKLOAD,
    ...o.loadgenArgs,
  ];
  const samples: ProcSample[] = [];
  const sample = (): ProcSample | null => {
    const s = procSample(m.pid);
    if (s !== null) samples.push(s);
    return s;
  };
  sample();
  const dnsRunStart = dns === null ? null : procSample(dns.pid);
  const lg = run(loadgenBin, args);
  let windowStart: ProcSample | null = null;
  let windowEnd: ProcSample | null = null;
  let statStart: StatSample | null = null;
  let statEnd: StatSample | null = null;
  let dnsStart: ProcSample | null = null;
  let dnsEnd: ProcSample | null = null;
  let windowStartUnix: number | null = null;
  let windowEndUnix: number | null = null;
  const t1 = setTimeout(() => {
    windowStart = sample();
    statStart = statSample();
    if (dns !== null) {
      dnsStart = procSample(dns.pid);
      windowStartUnix = Date.now() / 1000;
    }
  }, o.warmup * 1000);
  const t2 = setTimeout(
    () => {
      windowEnd = sample();
      statEnd = statSample();
      if (dns !== null) {
        dnsEnd = procSample(dns.pid);
        windowEndUnix = Date.now() / 1000;
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
  const dnsUse =
    dns === null
      ? null
      : await dnsUsage(
          dns,
          dnsRunStart,
          procSample(dns.pid),
          dnsStart,
          dnsEnd,
          windowStartUnix,
          windowEndUnix,
        );

  let result: LoadgenResult | null = null;
  let problem: string | null = null;
  try {
    result = JSON.parse(lg.stdout()) as LoadgenResult;
  } catch {
    problem = `loadgen printed no JSON (exit ${String(loadgenExit)}): ${lg.stderr().slice(-1000)}`;
  }
  if (problem === null && loadgenExit !== 0)
    problem = `loadgen exit ${String(loadgenExit)}: ${result?.errors.first ?? lg.stderr().slice(-500)}`;

  const exit = await stopMilter(m);
  let counters: Record<string, number> | null = null;
  let logBytes: number | null = null;
  let logSamples: string[] = [];
  if (m.logFile !== null) {
    const a = await analyseLog(m.logFile);
    counters = a.counts;
    logBytes = a.bytes;
    logSamples = a.samples;
    await rm(m.logFile, { force: true });
  } else {
    const line = m.proc
      .stdout()
      .split('\n')
      .find((l) => /"event":"stopped"/.test(l));
    if (line !== undefined) counters = (JSON.parse(line) as { counters: Record<string, number> }).counters;
  }
  if (exit !== 0 && problem === null) problem = `milter exited with ${String(exit)} after SIGTERM`;
  const milterCpu = cpuUse(samples, windowStart, windowEnd);
  return {
    target,
    concurrency,
    repetition,
    command: m.command,
    listen: m.listen,
    loadgenCommand: [path.relative(root, loadgenBin), ...args].join(' '),
    loadgenExit,
    result,
    milterCpu,
    dns: dnsUse,
    systemCpu: systemCpu(
      statStart,
      statEnd,
      milterCpu.windowPct === null ? null : milterCpu.windowPct + (dnsUse?.windowPct ?? 0),
      result?.loadgen_cpu_pct ?? null,
    ),
    milterCounters: counters,
    counterCheck: counterCheck(target, result, counters),
    logBytes,
    logSamples,
    milterStderr: m.proc.stderr().slice(-2000),
    problem,
    disturbed: false,
    discarded: 0,
  };
}

async function dnsUsage(
  dns: DnsblServer,
  runStart: ProcSample | null,
  runEnd: ProcSample | null,
  windowStart: ProcSample | null,
  windowEnd: ProcSample | null,
  windowStartUnix: number | null,
  windowEndUnix: number | null,
): Promise<DnsUse> {
  const final = await dns.freshCounts(Date.now() / 1000);
  const pct = (a: ProcSample | null, b: ProcSample | null): number | null =>
    a === null || b === null || b.t <= a.t
      ? null
      : ((b.ticks - a.ticks) / CLK_TCK / ((b.t - a.t) / 1000)) * 100;
  return {
    command: dns.command,
    windowPct: pct(windowStart, windowEnd),
    runCpuS: runStart === null || runEnd === null ? null : (runEnd.ticks - runStart.ticks) / CLK_TCK,
    queriesTotal: final?.total ?? null,
    queriesInWindow:
      windowStartUnix === null || windowEndUnix === null
        ? null
        : dns.queriesBetween(windowStartUnix, windowEndUnix),
    queriesByZone: final?.zones ?? null,
  };
}

function isDisturbed(m: Measurement): boolean {
  return (m.systemCpu?.otherPct ?? 0) > DISTURBED_PCT;
}

/** measure(), waiting for a quiet machine first and repeating a run that other work disturbed. */
async function measureUndisturbed(
  target: TargetName,
  concurrency: number,
  repetition: number,
  o: Options,
  tmp: string,
): Promise<Measurement> {
  for (let attempt = 0; ; attempt++) {
    await waitQuiet();
    const m = await measure(target, concurrency, repetition, o, tmp);
    if (!isDisturbed(m)) return { ...m, discarded: attempt };
    if (attempt >= DISTURBED_RETRIES) return { ...m, disturbed: true, discarded: attempt };
    process.stderr.write(`disturbed (rest of system ${pctText(m.systemCpu?.otherPct)}), again... `);
    await sleep(2000);
  }
}

// ---- reports ----

function ms(us: number | undefined): string {
  if (us === undefined) return '—';
  const v = us / 1000;
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function pair(c: Cell, stage: Stage): string {
  const p50 = c.lat(stage, 'p50');
  return p50 === undefined ? '—' : `${ms(p50)} / ${ms(c.lat(stage, 'p99'))}`;
}

function pctText(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : `${v.toFixed(0)} %`;
}

function runsOf(all: readonly Measurement[], target: TargetName, c: number): Measurement[] {
  return all.filter((m) => m.target === target && m.concurrency === c);
}

function median(values: readonly (number | null | undefined)[]): number | undefined {
  const v = values
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** One table cell: every figure is the median over the repetitions of that (target, level). */
interface Cell {
  readonly runs: number;
  readonly withResult: number;
  readonly msgsPerSec: number | undefined;
  readonly msgsPerSecMin: number | undefined;
  readonly msgsPerSecMax: number | undefined;
  lat(stage: 'message' | Stage, field: keyof Latency): number | undefined;
  readonly milterCpu: number | undefined;
  /** Milter CPU time per message, µs. */
  readonly cpuPerMessage: number | undefined;
  readonly loadgenCpu: number | undefined;
  readonly otherCpu: number | undefined;
  readonly errors: number;
  readonly problems: readonly string[];
  readonly disturbed: number;
  /** ours-all: the DNS server's CPU over the window (% of one core) and its query counts. */
  readonly dnsCpu: number | undefined;
  readonly dnsRunCpuS: number | undefined;
  readonly dnsQueriesTotal: number | undefined;
  readonly dnsQueriesInWindow: number | undefined;
}

function cell(all: readonly Measurement[], target: TargetName, c: number): Cell | undefined {
  const runs = runsOf(all, target, c);
  if (runs.length === 0) return undefined;
  const results = runs.map((m) => m.result).filter((r): r is LoadgenResult => r !== null);
  const tput = results.map((r) => r.messages_per_sec);
  return {
    runs: runs.length,
    withResult: results.length,
    msgsPerSec: median(tput),
    msgsPerSecMin: tput.length === 0 ? undefined : Math.min(...tput),
    msgsPerSecMax: tput.length === 0 ? undefined : Math.max(...tput),
    lat: (stage, field) => median(results.map((r) => r.latency_us[stage]?.[field])),
    milterCpu: median(runs.map((m) => m.milterCpu.windowPct)),
    cpuPerMessage: median(
      runs.map((m) =>
        m.milterCpu.windowPct === null || m.result === null || m.result.messages_per_sec === 0
          ? undefined
          : (m.milterCpu.windowPct / 100 / m.result.messages_per_sec) * 1e6,
      ),
    ),
    loadgenCpu: median(results.map((r) => r.loadgen_cpu_pct)),
    otherCpu: median(runs.map((m) => m.systemCpu?.otherPct)),
    errors: results.reduce((n, r) => n + r.errors.total, 0),
    problems: runs.flatMap((m) => (m.problem === null ? [] : [m.problem])),
    disturbed: runs.filter((m) => m.disturbed).length,
    dnsCpu: median(runs.map((m) => m.dns?.windowPct)),
    dnsRunCpuS: median(runs.map((m) => m.dns?.runCpuS)),
    dnsQueriesTotal: median(runs.map((m) => m.dns?.queriesTotal)),
    dnsQueriesInWindow: median(runs.map((m) => m.dns?.queriesInWindow)),
  };
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

/** One line on whether the milter saw what the load generator sent, over every run. */
function ownCountSummary(t: TargetName, runs: readonly Measurement[], o: Options): string {
  const label = (m: Measurement): string => `${m.concurrency}${o.repeat > 1 ? ` #${m.repetition + 1}` : ''}`;
  if (isOurs(t)) {
    const fit = runs.filter((m) => {
      const r = m.result;
      const c = m.milterCounters;
      return (
        r !== null &&
        c !== null &&
        // a message refused at RCPT (every recipient) gets no end-of-message decision line
        c['decision'] === r.totals.sent.eom + r.totals.sent.rcpt &&
        (c['protocol_error'] ?? 0) + (c['handler_error'] ?? 0) === 0
      );
    });
    if (fit.length === runs.length)
      return `its log has exactly one \`decision\` line per recipient and one per message that reached end of message, and no protocol_error/handler_error line, in all ${runs.length} runs`;
    return `its log vs what was sent: ${runs.map((m) => `at ${label(m)}: ${m.counterCheck}`).join('; ')}`;
  }
  const bad = runs.filter((m) => !m.counterCheck.startsWith('ok'));
  if (bad.length === 0)
    return `its own callback counters (negotiate, connect, envrcpt, eom) equal what the load generator sent, in all ${runs.length} runs`;
  return `counter mismatches: ${bad.map((m) => `at ${label(m)}: ${m.counterCheck}`).join('; ')}`;
}

interface Verdict {
  readonly text: string;
  readonly pass: boolean | null;
}

function verdicts(all: readonly Measurement[]): Verdict[] {
  const out: Verdict[] = [];
  const variants = RELAY_ONLY_TARGETS.filter((t) => all.some((m) => m.target === t));
  for (const t of variants.length === 0 ? (['ours'] as const) : variants) {
    const who = t === 'ours' ? '' : ` [${TARGET_LABEL[t]}]`;
    const tput = [64, 256].map((c) => ({
      c,
      r: ratio(cell(all, t, c)?.msgsPerSec, cell(all, 'lean', c)?.msgsPerSec),
    }));
    const measured = tput.filter((x) => x.r !== null);
    out.push({
      text:
        `Target "at 64 and 256 connections our throughput ≥ 1.0× the reference"${who}: ` +
        (measured.length === 0
          ? 'not measured'
          : tput.map((x) => `${x.c}: ${x.r === null ? 'not measured' : `${x.r.toFixed(2)}×`}`).join(', ')),
      pass: measured.length < 2 ? null : measured.every((x) => (x.r as number) >= 1.0),
    });
    const ours = cell(all, t, 256)?.lat('message', 'p99');
    const ref = cell(all, 'lean', 256)?.lat('message', 'p99');
    out.push({
      text:
        `Target "our p99 whole-message latency at 256 < the reference's"${who}: ` +
        (ours === undefined || ref === undefined ? 'not measured' : `${ms(ours)} ms vs ${ms(ref)} ms`),
      pass: ours === undefined || ref === undefined ? null : ours < ref,
    });
  }
  if (all.some((m) => m.target === 'ours-all')) {
    const r = [64, 256].map((c) => ({ c, r: allChecksRatio(all, c) }));
    const measured = r.filter((x) => x.r !== null);
    out.push({
      text:
        `Target "all checks on ≥ ${ALL_CHECKS_MIN_RATIO}× relay guard only" (msgs/s of ${TARGET_LABEL['ours-all']} ÷ ${TARGET_LABEL.ours}, at 64 and 256 connections): ` +
        r.map((x) => `${x.c}: ${x.r === null ? 'not measured' : `${x.r.toFixed(2)}×`}`).join(', '),
      pass: measured.length < 2 ? null : measured.every((x) => (x.r as number) >= ALL_CHECKS_MIN_RATIO),
    });
  }
  return out;
}

function allChecksRatio(all: readonly Measurement[], c: number): number | null {
  return ratio(cell(all, 'ours-all', c)?.msgsPerSec, cell(all, 'ours', c)?.msgsPerSec);
}

/** The `ours-all` section: all checks vs the relay guard alone, per level, and the DNS server. */
function allChecksSection(o: Options, all: readonly Measurement[]): string[] {
  const L: string[] = [];
  if (!all.some((m) => m.target === 'ours-all')) return L;
  L.push('## All checks on vs the relay guard alone');
  L.push('');
  const listed = (n: number): string => `${n} of 254 (${((n / 254) * 100).toFixed(1)} %)`;
  L.push(
    `Both are \`workers: auto\` and see the same load generator traffic. With all checks the daemon also asks for the MAIL reply, the headers and the body (no-reply), walks the MIME body, runs the classic filters at end of message, and looks each client up in bl.bench and pbl.bench and the sender and HELO domains in dbl.bench. Of the load generator's clients, ${listed(BL_OCTETS.length)} are listed in bl.bench (their messages end at RCPT: both recipients refused) and ${listed(PBL_OCTETS.length)} in pbl.bench (tagged); the rest are listed nowhere. The DNS server is a private rbldnsd on 127.0.0.1; every worker caches its answers (NXDOMAIN 5 min, listings at least 60 s), so after the first lookup of each of the 254 clients per worker no query leaves the daemon.`,
  );
  L.push('');
  L.push(
    '| connections | relay guard only msgs/s | all checks msgs/s | ratio | relay guard CPU µs/msg | all checks CPU µs/msg | all checks msg p99 | DNS server CPU (window) | DNS server CPU s (whole run) | DNS queries (whole run / in window) |',
  );
  L.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const c of o.concurrency) {
    const a = cell(all, 'ours', c);
    const b = cell(all, 'ours-all', c);
    if (b === undefined) continue;
    const r = allChecksRatio(all, c);
    const n = (v: number | undefined, d = 0): string => (v === undefined ? '—' : v.toFixed(d));
    L.push(
      `| ${c} | ${n(a?.msgsPerSec)} | ${n(b.msgsPerSec)} | ${r === null ? '—' : `${r.toFixed(2)}×${r >= ALL_CHECKS_MIN_RATIO ? '' : ' ❌'}`} | ${n(a?.cpuPerMessage)} | ${n(b.cpuPerMessage)} | ${ms(b.lat('message', 'p99'))} | ${pctText(b.dnsCpu)} | ${n(b.dnsRunCpuS, 2)} | ${n(b.dnsQueriesTotal)} / ${n(b.dnsQueriesInWindow)} |`,
    );
  }
  L.push('');
  L.push(
    'DNS queries are rbldnsd\'s own counters (all zones). It writes them once a second, so "in window" counts from 1–2 s after the window\'s start to 1–2 s before its end. With two workers the cold caches cost about 2 × (254 × 2 + 2) = 1020 queries, all in the warm-up.',
  );
  L.push('');
  return L;
}

function markdown(
  o: Options,
  mach: Machine,
  date: string,
  all: readonly Measurement[],
  skipped: readonly string[],
): string {
  const L: string[] = [];
  const lean = all.find((m) => m.target === 'lean' && m.result?.negotiated !== null)?.result?.negotiated;
  L.push('# Benchmarks');
  L.push('');
  L.push(
    '<!-- Written by bench/run.ts (`npm run bench`); do not edit by hand. Raw data: benchmarks.json. -->',
  );
  L.push('');
  L.push(`Measured ${date}.`);
  L.push('');
  L.push('Reproduce (from the repository root):');
  L.push('');
  L.push('```sh');
  L.push(reproduceCommand(o));
  L.push('```');
  L.push('');
  L.push('## Machine');
  L.push('');
  L.push(`- ${mach.cores} cores, ${mach.cpuModel}, ${mach.memoryGiB} GiB RAM`);
  L.push(`- ${mach.os}, ${mach.kernel}`);
  L.push(`- Node ${mach.node}; ${mach.gcc}; libmilter ${mach.libmilter} (Debian)`);
  L.push(
    `- open files ${mach.openFilesLimit}, somaxconn ${mach.somaxconn}, tcp_tw_reuse ${mach.tcpTwReuse}, ephemeral ports ${mach.ephemeralPorts}`,
  );
  L.push('- the load generator and the milter share these cores (nothing is pinned)');
  L.push(
    `- measured tree: ${mach.commit}${mach.uncommitted.length === 0 ? ' (clean)' : ` plus uncommitted changes to ${mach.uncommitted.map((f) => `\`${f}\``).join(', ')}`}`,
  );
  L.push('');
  L.push('## Workload');
  L.push('');
  const w = all.find((m) => m.result !== null)?.result ?? undefined;
  const perConn = w?.messages_per_connection ?? 1;
  L.push(
    `bench/c/loadgen.c plays Postfix: ${perConn === 1 ? 'one milter connection per message' : `${perConn} messages per milter connection`} ` +
      `(OPTNEG v6 offering actions 0x1FF and protocol 0x1FFFFF, then the commands the milter did not switch off, each preceded by its \`D\` ` +
      `macro packet, with the macro lists the milter asked for; ABORT after each message, QUIT), ` +
      (w === undefined
        ? ''
        : `client IPs cycling through ${w.clients} (not a trusted network), recipients ${w.recipients.map((r) => `\`${r}\``).join(', ')}, ` +
          `${w.headers} headers, ` +
          (w.mime === true
            ? `a ${w.body_bytes}-byte multipart/mixed body (a short text/plain part and a base64 \`report.pdf\` attachment, about 80 % of the body: \`--mime\`), sent only to a milter that asks for headers and body. `
            : `a ${w.body_bytes}-byte body. `)) +
      `It keeps N connections busy (closed loop) for ${o.warmup} s of warm-up and ${o.duration} s of measurement per run; ` +
      `each target runs in a fresh process, one after the other.`,
  );
  L.push('');
  L.push(
    `- **libmilter null (lean)**: bench/c/null-milter.c, libmilter's thread per connection, continue everything, ` +
      `asking for the same protocol bits as milter-policy${lean === undefined || lean === null ? '' : ` (negotiated protocol ${lean.protocol})`}: the reference.`,
  );
  L.push(
    '- **libmilter null (full)**: the same with `-f`: every callback, no NO/NR bits, so every command is sent and answered.',
  );
  L.push(
    '- **milter-policy**: `node dist/cli/main.js serve` on bench/milter-policy-bench.yaml: relay guard enforcing, `info` log (one decision line per recipient and per message) written to a file, `workers: auto` (a primary and one worker per core, node:cluster, each worker accepting on the shared socket; CPU summed over the processes).',
  );
  if (o.targets.includes('ours-w1'))
    L.push(
      '- **milter-policy, workers: 1**: the same file with `workers: 1`: one process, one event loop (the default, and what in-memory shared state needs).',
    );
  if (o.targets.includes('ours-all'))
    L.push(
      '- **milter-policy, all checks**: the same file (`workers: auto`) plus bench/milter-policy-bench-all.yaml: DNSBL zones bl.bench (reject) and pbl.bench (tag), RHSBL dbl.bench on the sender and HELO domains, answered by a private rbldnsd started for each run (bench/dnsbl-server.ts) and cached by the daemon; advertisement, Space Patrol, Message-ID, route address, attachments (the MIME walk), message size, two header rules, spam trap.',
    );
  for (const s of skipped) L.push(`- not measured: ${s}`);
  L.push('');
  L.push(
    'Latencies are in milliseconds: whole message = socket connect start → final EOM reply; a stage = write of the batch holding the command → its reply (NR stages have none). ' +
      'CPU % is of one core: the milter from /proc/PID/stat over the measured window, the load generator from getrusage; ' +
      '"rest of system" is the machine\'s busy time (/proc/stat) minus both: softirq, other processes — a large value means the run was disturbed.',
  );
  L.push('');
  L.push(
    `Before each run the driver waits for the machine to be idle (< ${QUIET_PCT} % of a core busy); a run during which other work took more than ${DISTURBED_PCT} % of a core ("rest of system") is discarded and repeated, up to ${DISTURBED_RETRIES} times; ⚠ marks a cell that stayed disturbed.` +
      ` This time ${all.reduce((n, m) => n + m.discarded, 0)} run(s) were discarded.`,
  );
  L.push('');
  if (o.repeat > 1)
    L.push(
      `Each run was repeated ${o.repeat} times (interleaved); every figure below is the median of the repetitions, the msgs/s range is min–max.`,
    );
  L.push('');
  for (const c of o.concurrency) {
    L.push(`## ${c} concurrent connection${c === 1 ? '' : 's'}`);
    L.push('');
    L.push(
      '| target | msgs/s | ÷ lean | msg p50 | msg p99 | msg max | optneg p50 / p99 | connect p50 / p99 | rcpt p50 / p99 | eom p50 / p99 | milter CPU | CPU µs/msg | loadgen CPU | rest of system | errors |',
    );
    L.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
    const ref = cell(all, 'lean', c)?.msgsPerSec;
    for (const t of o.targets) {
      const x = cell(all, t, c);
      if (x === undefined) continue;
      if (x.withResult === 0) {
        L.push(
          `| ${TARGET_LABEL[t]} | — | — | — | — | — | — | — | — | — | — | — | — | — | ${x.problems[0] ?? 'no result'} |`,
        );
        continue;
      }
      const q = ratio(x.msgsPerSec, ref);
      const tput =
        x.runs > 1 && x.msgsPerSecMin !== undefined && x.msgsPerSecMax !== undefined
          ? `${(x.msgsPerSec ?? 0).toFixed(0)} (${x.msgsPerSecMin.toFixed(0)}–${x.msgsPerSecMax.toFixed(0)})`
          : (x.msgsPerSec ?? 0).toFixed(0);
      L.push(
        `| ${TARGET_LABEL[t]}${x.disturbed > 0 ? ' ⚠' : ''} | ${tput} | ${q === null ? '—' : `${q.toFixed(2)}×`} | ${ms(x.lat('message', 'p50'))} | ${ms(x.lat('message', 'p99'))} | ${ms(x.lat('message', 'max'))} | ${pair(x, 'optneg')} | ${pair(x, 'connect')} | ${pair(x, 'rcpt')} | ${pair(x, 'eom')} | ${pctText(x.milterCpu)} | ${x.cpuPerMessage === undefined ? '—' : x.cpuPerMessage.toFixed(0)} | ${pctText(x.loadgenCpu)} | ${pctText(x.otherCpu)} | ${x.errors} |`,
      );
    }
    L.push('');
  }
  L.push(...allChecksSection(o, all));
  L.push('## Verdicts');
  L.push('');
  for (const v of verdicts(all)) L.push(`- ${v.pass === null ? '⏳' : v.pass ? '✅' : '❌'} ${v.text}`);
  L.push('');
  L.push('## On the wire');
  L.push('');
  for (const t of o.targets) {
    const ms_ = all.filter((m) => m.target === t);
    const firstRun = ms_.find((m) => m.result !== null);
    const first = firstRun?.result;
    if (firstRun === undefined || first === undefined || first === null) continue;
    L.push(`### ${TARGET_LABEL[t]}`);
    L.push('');
    L.push(`- command: \`${ms_[0]?.command ?? ''}\``);
    const dnsCmd = ms_.find((m) => m.dns !== undefined && m.dns !== null)?.dns?.command;
    if (dnsCmd !== undefined) L.push(`- DNS server: \`${dnsCmd.replace(/^\/usr\/sbin\//, '')}\``);
    const n = first.negotiated;
    if (n !== null) {
      const lists = Object.entries(n.macro_lists).map(([k, v]) => `${k}: \`${v}\``);
      L.push(
        `- negotiated: version ${n.version}, actions ${n.actions}, protocol ${n.protocol}${lists.length > 0 ? `, macro lists ${lists.join('; ')}` : ''}`,
      );
    }
    const replies = Object.entries(first.replies)
      .map(
        ([stage, codes]) =>
          `${stage} ${Object.entries(codes)
            .map(([k, v]) => `${k}×${v}`)
            .join(' ')}`,
      )
      .join('; ');
    L.push(`- replies at ${firstRun.concurrency} connection(s): ${replies === '' ? 'none' : replies}`);
    for (const [k, v] of Object.entries(first.reply_samples)) L.push(`- reply text at ${k}: \`${v}\``);
    for (const [k, v] of Object.entries(first.modification_samples))
      L.push(
        `- end-of-message modification \`${k}\`: \`${v}\` (${first.modifications[k] ?? 0} in the window)`,
      );
    const errs = ms_.filter((m) => (m.result?.errors.total ?? 0) > 0 || m.problem !== null);
    for (const m of errs)
      L.push(
        `- at ${m.concurrency}${o.repeat > 1 ? ` (#${m.repetition + 1})` : ''}: ${m.result === null ? '' : `${m.result.errors.total} error(s) (${m.result.errors.protocol} protocol, ${m.result.errors.unexpected_reply} unexpected replies, ${m.result.errors.connect_failed} connect failures, ${m.result.errors.connection_lost} lost, ${m.result.errors.timeout} timeouts); first: ${m.result.errors.first ?? '—'}`}${m.problem === null ? '' : ` — ${m.problem}`}`,
      );
    L.push(`- ${ownCountSummary(t, ms_, o)}`);
    const withLog = ms_.find((m) => m.logBytes !== null && (m.result?.totals.messages ?? 0) > 0);
    if (withLog?.logBytes !== null && withLog?.logBytes !== undefined && withLog.result !== null)
      L.push(
        `- log volume: ${(withLog.logBytes / withLog.result.totals.messages).toFixed(0)} bytes per message`,
      );
    const warnLines = ms_.flatMap((m) => m.logSamples).slice(0, 3);
    for (const w of warnLines) L.push(`- log warning/error: \`${w.replace(/`/g, "'")}\``);
    L.push('');
  }
  return `${L.join('\n')}\n`;
}

// ---- main ----

interface RawReport {
  readonly date: string;
  readonly machine: Machine;
  readonly options: Omit<Options, 'out' | 'fromJson'>;
  readonly skipped: readonly string[];
  readonly measurements: readonly Measurement[];
}

async function writeReports(
  o: Options,
  mach: Machine,
  date: string,
  all: readonly Measurement[],
  skipped: readonly string[],
): Promise<void> {
  await mkdir(o.out, { recursive: true });
  const mdFile = path.join(o.out, 'benchmarks.md');
  const jsonFile = path.join(o.out, 'benchmarks.json');
  const v = verdicts(all);
  const previous = await readFile(mdFile, 'utf8').catch(() => '');
  await writeFile(mdFile, keepSections(previous, markdown(o, mach, date, all, skipped)));
  const { fromJson: _fromJson, ...measured } = o;
  const options = { ...measured, out: path.relative(root, o.out) };
  await writeFile(
    jsonFile,
    await formatJson(jsonFile, {
      generatedBy: 'bench/run.ts',
      date,
      command: reproduceCommand(o),
      machine: mach,
      options,
      skipped,
      verdicts: v,
      measurements: all,
    }),
  );
  const size = (await stat(mdFile)).size;
  process.stderr.write(
    `bench: wrote ${path.relative(root, mdFile)} (${size} bytes) and ${path.relative(root, jsonFile)}\n`,
  );
  for (const x of v)
    process.stderr.write(`bench: ${x.pass === null ? 'n/a ' : x.pass ? 'PASS' : 'FAIL'} ${x.text}\n`);
}

async function main(): Promise<number> {
  const cli = parseOptions(process.argv.slice(2));
  if (cli.fromJson !== null) {
    const raw = JSON.parse(await readFile(cli.fromJson, 'utf8')) as RawReport;
    const o: Options = { ...raw.options, out: cli.out, fromJson: cli.fromJson };
    await writeReports(o, raw.machine, raw.date, raw.measurements, raw.skipped);
    return 0;
  }
  const o = cli;
  const mach = machine();
  await buildCPrograms();
  const skipped: string[] = [];
  let targets = o.targets;
  if (targets.some(isOurs) && !existsSync(daemonMain)) {
    skipped.push(`milter-policy: ${path.relative(root, daemonMain)} does not exist (run \`npm run build\`)`);
    targets = targets.filter((t) => !isOurs(t));
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'milter-bench-'));
  const all: Measurement[] = [];
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  try {
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const c of o.concurrency) {
        for (const t of targets) {
          process.stderr.write(
            `bench: ${TARGET_LABEL[t]} at ${c} connection(s)${o.repeat > 1 ? ` [${rep + 1}/${o.repeat}]` : ''}... `,
          );
          const m = await measureUndisturbed(t, c, rep, o, tmp);
          all.push(m);
          const r = m.result;
          process.stderr.write(
            r === null
              ? `no result: ${m.problem ?? ''}\n`
              : `${r.messages_per_sec.toFixed(0)} msgs/s, p99 ${ms(r.latency_us.message?.p99)} ms, milter CPU ${pctText(m.milterCpu.windowPct)}, loadgen CPU ${pctText(r.loadgen_cpu_pct)}, rest ${pctText(m.systemCpu?.otherPct)}, errors ${r.errors.total}${m.problem === null ? '' : ` (${m.problem})`}\n`,
          );
          await sleep(500); // let the previous run's sockets settle
        }
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  await writeReports(o, mach, date, all, skipped);
  return all.some((m) => (m.result?.errors.protocol ?? 0) > 0) ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    killAll();
    fail(e instanceof Error ? (e.stack ?? e.message) : String(e));
  },
);
