// A private redis-server for tests (Debian's binary, never a mock): started on a free loopback
// port with no persistence, restartable on the same port, killable (SIGKILL) and freezable
// (SIGSTOP) to play an outage. Used by the Redis store's and the rate limits' integration tests.
// Every server started is SIGKILLed when the test process exits.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const find = (name: string): string | undefined =>
  ['/usr/bin', '/usr/local/bin'].map((d) => path.join(d, name)).find((p) => existsSync(p));
export const REDIS_SERVER = find('redis-server');
export const REDIS_CLI = find('redis-cli');
export const MISSING =
  REDIS_SERVER === undefined || REDIS_CLI === undefined
    ? 'redis-server / redis-cli not installed (Debian: apt-get install redis-server)'
    : undefined;
/** node:test's skip option: false, or why (never under CI=true, where a missing server fails). */
export const SKIP =
  MISSING !== undefined && process.env['CI'] !== 'true' ? `${MISSING}; skipped (fails under CI=true)` : false;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free loopback port whose cluster bus port (+10000) is free too. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if ((await portFree(port)) && (await portFree(port + 10000))) return port;
  }
}

/** Sends one inline command and resolves with the first reply line. */
function ping(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.setTimeout(500);
    c.once('data', (d) => {
      resolve(d.toString().trim());
      c.destroy();
    });
    c.once('connect', () => c.write('PING\r\n'));
    c.once('error', () => resolve(''));
    c.once('timeout', () => {
      resolve('');
      c.destroy();
    });
  });
}

/** Every server started and not closed yet. */
export const servers = new Set<RedisServer>();
process.on('exit', () => {
  for (const s of servers) s.proc?.kill('SIGKILL');
});

export class RedisServer {
  proc: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly extra: readonly string[],
  ) {}

  static async start(extra: readonly string[] = [], run = true): Promise<RedisServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-redis-'));
    const s = new RedisServer(await freePort(), dir, extra);
    servers.add(s);
    if (run) await s.run();
    return s;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts on the same port and waits until it answers PING. */
  async run(): Promise<void> {
    const args = ['--bind', '127.0.0.1', '--port', String(this.port), '--save', '', '--appendonly', 'no'];
    const proc = spawn(REDIS_SERVER ?? 'redis-server', [...args, '--dir', this.dir, ...this.extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stdout.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (this.output += d.toString()));
    const end = Date.now() + 5000;
    while ((await ping(this.port)) !== '+PONG') {
      if (proc.exitCode !== null || Date.now() > end) {
        throw new Error(`redis-server on port ${this.port} did not start:\n${this.output}`);
      }
      await sleep(20);
    }
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    this.proc?.kill(sig);
  }

  async close(): Promise<void> {
    this.signal('SIGCONT');
    await this.kill();
    servers.delete(this);
    await rm(this.dir, { recursive: true, force: true });
  }
}
