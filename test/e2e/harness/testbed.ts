// The testbed: one private directory under /tmp per e2e test file, free loopback ports, the
// processes started for it, and the checks that decide whether a test may run at all.
// Called by every e2e test file (createTestbed in before(), tb.teardown() in after()) and by the
// MTA/daemon runners in this folder. Fails loudly: a directory that user postfix cannot reach, a
// missing tool under CI=true, or a wait that times out all throw with the reason in the message.
// Processes are only ever stopped by the pid this harness recorded (never by name), and a zombie
// counts as exited (PID 1 reaps orphans late on these machines).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding package.json: found by walking up from this compiled module. */
export const repoRoot: string = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

/** A non-TypeScript asset of the e2e suite (lua scripts, ...), by its path in the source tree. */
export function assetPath(...parts: string[]): string {
  return path.join(repoRoot, 'test', 'e2e', ...parts);
}

export const inCi: boolean = process.env['CI'] === 'true';

/** Where libsasl2 keeps a plugin on this machine (/usr/lib/<multiarch>/sasl2/...), if anywhere. */
function findSaslPlugin(name: string): string | undefined {
  try {
    for (const dir of readdirSync('/usr/lib')) {
      const candidate = path.join('/usr/lib', dir, 'sasl2', name);
      if (existsSync(candidate)) return candidate;
    }
  } catch {
    // no /usr/lib: reported as missing
  }
  return undefined;
}

/** A tool an e2e file needs, and where it must be. */
export interface Prerequisite {
  what: string;
  path: string;
}

export const POSTFIX: Prerequisite = { what: 'Postfix', path: '/usr/sbin/postfix' };
export const SENDMAIL: Prerequisite = {
  what: 'sendmail (unpacked with dpkg -x)',
  path: '/opt/sendmail-x/usr/libexec/sendmail/sendmail',
};
export const MILTERTEST: Prerequisite = { what: 'miltertest', path: '/usr/bin/miltertest' };
export const SASLPASSWD2: Prerequisite = { what: 'saslpasswd2 (sasl2-bin)', path: '/usr/sbin/saslpasswd2' };
export const SASL_PLAIN: Prerequisite = {
  what: 'Cyrus SASL PLAIN plugin (libsasl2-modules)',
  path: findSaslPlugin('libplain.so.2') ?? '/usr/lib/<arch>/sasl2/libplain.so.2',
};
export const SENDMAIL_CF: Prerequisite = {
  what: 'sendmail cf tree (sendmail-cf, unpacked)',
  path: '/opt/sendmail-x/usr/share/sendmail/cf/m4/cf.m4',
};
export const UNSHARE: Prerequisite = { what: 'unshare (util-linux)', path: '/usr/bin/unshare' };
export const M4: Prerequisite = { what: 'm4', path: '/usr/bin/m4' };
export const RBLDNSD: Prerequisite = { what: 'rbldnsd', path: '/usr/sbin/rbldnsd' };
export const DAEMON: Prerequisite = {
  what: 'the compiled daemon (npm run build)',
  path: path.join(repoRoot, 'dist', 'cli', 'main.js'),
};

/**
 * What node:test's `skip` option should get for a file that needs these tools: false when all
 * are present, else the reason. Under CI=true a missing tool is an error, not a skip.
 */
export function skipUnless(...needs: Prerequisite[]): string | false {
  const missing = needs.filter((n) => !existsSync(n.path));
  if (missing.length === 0) {
    if (process.getuid?.() !== 0) {
      if (inCi) throw new Error('e2e tests must run as root (private MTA instances, namespaces)');
      return 'e2e tests need root (private MTA instances, namespaces)';
    }
    return false;
  }
  const reason = `missing: ${missing.map((m) => `${m.what} at ${m.path}`).join(', ')}`;
  if (inCi) throw new Error(`CI=true and an e2e prerequisite is missing: ${reason}`);
  return reason;
}

/** Free TCP port on 127.0.0.1, chosen by the kernel (bind to 0, read it back, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error('no port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every `everyMs` until it returns a value other than undefined, or throws. */
export async function waitUntil<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Alive = exists and is not a zombie (gotcha 14: a zombie has exited, it is just not reaped). */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** SIGTERM to one recorded pid, then wait until it is gone (SIGKILL after `graceMs`). */
export async function stopPid(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      await waitUntil(`pid ${pid} to die after SIGKILL`, () => (isAlive(pid) ? undefined : true), 2000);
      return;
    }
    await sleep(20);
  }
}

/** True when some socket is LISTENING on host:port (read from /proc/net/tcp, no connect: gotcha 4). */
export function isListening(port: number, host = '127.0.0.1'): boolean {
  const hexHost = host
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  const wanted = [
    `${hexHost}:${port.toString(16).toUpperCase().padStart(4, '0')}`,
    `00000000:${port.toString(16).toUpperCase().padStart(4, '0')}`,
  ];
  const table = readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1);
  return table.some((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[3] === '0A' && cols[1] !== undefined && wanted.includes(cols[1]);
  });
}

export async function waitListening(what: string, port: number, timeoutMs = 15_000): Promise<void> {
  await waitUntil(
    `${what} to listen on 127.0.0.1:${port}`,
    () => (isListening(port) ? true : undefined),
    timeoutMs,
  );
}

/** Result of running a helper command to completion. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (no shell), feeding `input` on stdin. Never rejects on exit code. */
export function run(
  file: string,
  args: readonly string[],
  opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd ?? repoRoot,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Throws unless the command exited 0; returns its stdout. */
export async function runOk(
  file: string,
  args: readonly string[],
  opts: Parameters<typeof run>[2] = {},
): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  }
  return r.stdout;
}

/** One private directory with everything an e2e file started, torn down in after(). */
export class Testbed {
  private readonly cleanups: Array<{ what: string; fn: () => Promise<void> }> = [];

  private constructor(readonly dir: string) {}

  /** A fresh 0755 directory /tmp/tb-LABEL-XXXXXX that user postfix can traverse. */
  static async create(label: string): Promise<Testbed> {
    const dir = await mkdtemp(`/tmp/tb-${label}-`);
    await chmod(dir, 0o755);
    try {
      execFileSync('runuser', ['-u', 'postfix', '--', 'test', '-x', dir], { stdio: 'ignore' });
    } catch {
      throw new Error(`user postfix cannot reach ${dir} (mode 0755 on it and every parent needed)`);
    }
    return new Testbed(dir);
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Registers a teardown step; steps run in reverse order of registration. */
  onTeardown(what: string, fn: () => Promise<void>): void {
    this.cleanups.push({ what, fn });
  }

  /**
   * Runs every teardown step (all of them, even after a failure), then removes the directory
   * unless E2E_KEEP=1. Throws the first failure after everything is done.
   */
  async teardown(): Promise<void> {
    const errors: string[] = [];
    for (const { what, fn } of this.cleanups.reverse()) {
      const started = Date.now();
      try {
        await fn();
        if (process.env['E2E_TIMING'] === '1') console.log(`# teardown ${what}: ${Date.now() - started} ms`);
      } catch (err) {
        errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.cleanups.length = 0;
    if (process.env['E2E_KEEP'] === '1') {
      console.log(`# E2E_KEEP=1: testbed kept in ${this.dir}`);
    } else {
      await rm(this.dir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw new Error(`teardown of ${this.dir} failed: ${errors.join('; ')}`);
  }
}

/** Reads a file, or '' when it does not exist (logs that were never written). */
export async function readIfExists(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

/** The package version (what the daemon puts in its header as {version}). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
