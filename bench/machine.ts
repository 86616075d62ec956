// What machine the benchmarks run on, and how busy it is: the facts a report names (cores, CPU,
// kernel, Node, gcc, libmilter, socket limits, the measured git tree), CPU and memory samples of a
// process tree from /proc/PID/stat, one process's memory from /proc/PID/status, the machine's busy
// time from /proc/stat, and the shared-machine guard (waitQuiet: wait until other sessions' work
// has died down before measuring). Used by bench/run.ts and bench/access-db.ts. Nothing here
// throws: an unreadable /proc file gives null or "unknown".

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The repository root (this file runs as dist/bench/machine.js). */
export const root = path.resolve(import.meta.dirname, '..', '..');

export function firstLine(cmd: string, args: readonly string[]): string {
  try {
    return (
      execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')[0]
        ?.trim() ?? ''
    );
  } catch {
    return 'unknown';
  }
}

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export interface Machine {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly os: string;
  readonly gcc: string;
  readonly libmilter: string;
  readonly openFilesLimit: string;
  readonly somaxconn: string;
  readonly tcpTwReuse: string;
  readonly ephemeralPorts: string;
  /** The measured tree: HEAD and the files that differ from it (the build includes them). */
  readonly commit: string;
  readonly uncommitted: readonly string[];
}

/** Source files that differ from HEAD (modified or untracked), outside bench/ and docs/. */
export function gitDirty(): string[] {
  try {
    return execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=all'], {
      encoding: 'utf8',
    })
      .split('\n')
      .map((l) => l.slice(3).trim())
      .filter((f) => f !== '' && !f.startsWith('bench/') && !f.startsWith('docs/'));
  } catch {
    return [];
  }
}

export function machine(): Machine {
  const cpuinfo = readText('/proc/cpuinfo');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const limits = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readText('/proc/self/limits'));
  const osName = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readText('/etc/os-release'))?.[1] ?? os.type();
  return {
    cores: os.cpus().length,
    cpuModel: model.trim(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    os: osName,
    gcc: firstLine('gcc', ['--version']),
    libmilter: firstLine('dpkg-query', ['-W', '-f=${Version}', 'libmilter-dev']),
    openFilesLimit: limits === null ? 'unknown' : `${limits[1]} (hard ${limits[2]})`,
    somaxconn: readText('/proc/sys/net/core/somaxconn').trim(),
    tcpTwReuse: readText('/proc/sys/net/ipv4/tcp_tw_reuse').trim(),
    ephemeralPorts: readText('/proc/sys/net/ipv4/ip_local_port_range').trim().replace(/\s+/, '-'),
    commit: firstLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    uncommitted: gitDirty(),
  };
}

export const CLK_TCK = Number(firstLine('getconf', ['CLK_TCK'])) || 100;
export const PAGE_SIZE = Number(firstLine('getconf', ['PAGESIZE'])) || 4096;

// ---- samples ----

export interface ProcSample {
  readonly t: number;
  readonly ticks: number;
  readonly rssPages: number;
  readonly threads: number;
}

/** Fields of /proc/PID/stat after "pid (comm) ": field n of proc(5) is at index n - 3. */
export function statFields(pid: number | string): string[] | null {
  const s = readText(`/proc/${pid}/stat`);
  return s === '' ? null : s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** The process and its descendants (cluster workers), summed. */
export function procSample(pid: number): ProcSample | null {
  const own = statFields(pid);
  if (own === null) return null;
  const parent = new Map<number, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e));
  } catch {
    // no /proc listing: the process alone
  }
  const fields = new Map<number, string[]>([[pid, own]]);
  for (const e of entries) {
    const f = statFields(e);
    if (f === null) continue;
    parent.set(Number(e), Number(f[1]));
    fields.set(Number(e), f);
  }
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [child, ppid] of parent)
      if (!tree.has(child) && tree.has(ppid)) {
        tree.add(child);
        grew = true;
      }
  }
  let ticks = 0;
  let rssPages = 0;
  let threads = 0;
  for (const p of tree) {
    const f = fields.get(p);
    if (f === undefined) continue;
    ticks += Number(f[11]) + Number(f[12]);
    rssPages += Number(f[21]);
    threads += Number(f[17]);
  }
  return { t: performance.now(), ticks, rssPages, threads };
}

export interface StatSample {
  readonly t: number;
  readonly busy: number;
  readonly steal: number;
  readonly softirq: number;
}

/** The aggregate `cpu` line of /proc/stat, in clock ticks. */
export function statSample(): StatSample | null {
  const line = readText('/proc/stat').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
  const [user, nice, system, , , irq, softirq, steal] = f as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { t: performance.now(), busy: user + nice + system + irq + softirq + steal, steal, softirq };
}

export interface SystemCpu {
  /** Whole machine over the measured window, % of one core (the maximum is cores × 100). */
  readonly busyPct: number;
  /** Of that: time the hypervisor gave to someone else, and softirq (loopback networking). */
  readonly stealPct: number;
  readonly softirqPct: number;
  /** Busy time neither the milter nor the load generator accounts for: other processes,
   *  interrupts, kernel threads. A large value means the run was disturbed. */
  readonly otherPct: number | null;
}

/** "Rest of system" CPU (% of one core) above which a measurement counts as disturbed by other
 *  sessions' work, and how often a disturbed one is repeated. */
export const DISTURBED_PCT = 25;
export const DISTURBED_RETRIES = 2;

/** Before each measurement: wait until the machine is this idle (busy % of one core), at most QUIET_WAIT_S. */
export const QUIET_PCT = 20;
export const QUIET_WAIT_S = 180;

export function systemCpu(
  a: StatSample | null,
  b: StatSample | null,
  milterPct: number | null,
  loadgenPct: number | null,
): SystemCpu | null {
  if (a === null || b === null || b.t <= a.t) return null;
  const pct = (d: number): number => (d / CLK_TCK / ((b.t - a.t) / 1000)) * 100;
  const busyPct = pct(b.busy - a.busy);
  return {
    busyPct,
    stealPct: pct(b.steal - a.steal),
    softirqPct: pct(b.softirq - a.softirq),
    otherPct:
      milterPct === null || loadgenPct === null ? null : Math.max(0, busyPct - milterPct - loadgenPct),
  };
}

/** Benchmark programs (bench/c's load generator and null milter) that this process did not start:
 *  another session's benchmark is running. */
export function foreignBenchmarks(): string[] {
  const found: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e));
  } catch {
    return found;
  }
  for (const e of entries) {
    const comm = readText(`/proc/${e}/comm`).trim();
    if (comm !== 'loadgen' && comm !== 'null-milter') continue;
    const f = statFields(e);
    if (f !== null && Number(f[1]) === process.pid) continue;
    found.push(`${comm} (pid ${e})`);
  }
  return found;
}

/** Waits (bounded) until nothing else is keeping the CPUs busy and no other session's benchmark
 *  program is running; returns the busy % last seen. */
export async function waitQuiet(): Promise<number> {
  const deadline = performance.now() + QUIET_WAIT_S * 1000;
  let said = false;
  for (;;) {
    const a = statSample();
    await sleep(1000);
    const sys = systemCpu(a, statSample(), null, null);
    const busy = sys?.busyPct ?? 0;
    const others = foreignBenchmarks();
    if ((busy < QUIET_PCT && others.length === 0) || performance.now() > deadline) {
      if (said) process.stderr.write(`(${busy.toFixed(0)} % busy) `);
      return busy;
    }
    if (!said)
      process.stderr.write(
        `waiting for the machine to go quiet (${busy.toFixed(0)} % busy${others.length > 0 ? `; running: ${others.join(', ')}` : ''})... `,
      );
    said = true;
  }
}

/** Memory figures of one process from /proc/PID/status, in MiB (null when it is gone). */
export interface ProcMemory {
  /** Resident now, and its high-water mark. */
  readonly rssMiB: number;
  readonly hwmMiB: number;
  /** Of the resident set: anonymous memory (heap, the loaded map) and file-backed pages. */
  readonly anonMiB: number;
  readonly fileMiB: number;
}

export function procMemory(pid: number): ProcMemory | null {
  const s = readText(`/proc/${pid}/status`);
  if (s === '') return null;
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return {
    rssMiB: kib('VmRSS') / 1024,
    hwmMiB: kib('VmHWM') / 1024,
    anonMiB: kib('RssAnon') / 1024,
    fileMiB: kib('RssFile') / 1024,
  };
}

/** CPU clock ticks used so far by this process, its live descendants, and the children it has
 *  reaped (a makemap or daemon that has exited still counts): what "our" work cost the machine. */
export function ownCpuTicks(): number {
  const own = statFields(process.pid);
  const tree = procSample(process.pid);
  return (tree?.ticks ?? 0) + Number(own?.[13] ?? 0) + Number(own?.[14] ?? 0);
}
