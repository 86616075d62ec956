// The child processes the benchmarks start: spawning with captured output (every child is killed
// if the benchmark itself is interrupted), building the C programs under bench/c/ (gcc and
// Debian's libmilter) into bench/c/build/, finding a free TCP port, and recognising the daemon's
// `started` log line. Used by bench/run.ts and bench/access-db.ts. Failure: `fail` prints
// `bench: message` and exits 1; a gcc error or missing libmilter headers end the run that way.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { root } from './machine.js';

export const cDir = path.join(root, 'bench', 'c');
export const buildDir = path.join(cDir, 'build');
export const nullMilterBin = path.join(buildDir, 'null-milter');
export const loadgenBin = path.join(buildDir, 'loadgen');
export const daemonMain = path.join(root, 'dist', 'cli', 'main.js');

const live = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** Kills every child still running (the benchmark is ending abnormally). */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

export function fail(message: string): never {
  killAll();
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

export interface Captured {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

const CAPTURE_LIMIT = 1 << 20;

export interface RunOptions {
  /** Standard input from this file (default: none). */
  readonly stdinFile?: string;
  /** Added to the environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Captured {
  const stdin = options.stdinFile === undefined ? 'ignore' : openSync(options.stdinFile, 'r');
  const child = spawn(cmd, args, {
    cwd: root,
    stdio: [stdin, 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
  });
  if (typeof stdin === 'number') closeSync(stdin);
  live.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (out.length < CAPTURE_LIMIT) out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-CAPTURE_LIMIT);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (e) => {
      err += `\n${e.message}`;
      live.delete(child);
      resolve(null);
    });
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal === null ? null : 128 + (os.constants.signals[signal] ?? 0)));
    });
  });
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Builds the reference milter and the load generator. */
export async function buildCPrograms(): Promise<void> {
  if (!existsSync('/usr/include/libmilter/mfapi.h'))
    fail('libmilter headers missing: apt-get install libmilter-dev');
  await mkdir(buildDir, { recursive: true });
  const jobs: [string, string[]][] = [
    [nullMilterBin, [path.join(cDir, 'null-milter.c'), '-lmilter', '-lpthread']],
    [loadgenBin, [path.join(cDir, 'loadgen.c')]],
  ];
  for (const [bin, rest] of jobs) {
    const p = run('gcc', ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', bin, ...rest]);
    const code = await p.exited;
    if (code !== 0) fail(`gcc failed for ${path.basename(bin)}:\n${p.stderr()}`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => {
        if (a !== null && typeof a === 'object') resolve(a.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** A `started` event of the whole daemon: in cluster mode the primary's (worker 0), which it logs
 *  once every worker listens; a worker's own `started` line comes earlier. */
export function hasStarted(text: string): boolean {
  for (const line of text.split('\n')) {
    if (!/"event"\s*:\s*"started"/.test(line)) continue;
    try {
      const rec = JSON.parse(line) as { worker?: unknown };
      if (rec.worker === undefined || rec.worker === 0) return true;
    } catch {
      // a partly written line: look again later
    }
  }
  return false;
}
