// The daemon under test, as the admin runs it: `node dist/cli/main.js serve --config FILE` with a
// YAML configuration written into the testbed, its pino JSON log (stdout) parsed line by line so
// tests can wait for and assert on `decision`, `started`, `stopped`, ... events. Called by the
// e2e test files: start() in before(), stop() (SIGTERM, expects exit 0 and a `stopped` line) at
// the end or to simulate "daemon down". Fails loudly: a daemon that exits or does not log
// `started` within the timeout rejects with its stderr and last log lines.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Testbed } from './testbed.js';
import { DAEMON, isAlive, repoRoot, sleep } from './testbed.js';

/** One parsed log line. */
export type LogEntry = Record<string, unknown> & { event?: string };

/** A `decision` log line (fields as documented for the daemon). */
export interface Decision extends LogEntry {
  event: 'decision';
  /** 'rcpt' or 'eom' (other stages may appear as the daemon grows). */
  stage: string;
  action: 'accept' | 'reject' | 'tempfail' | 'discard';
  rule: string | null;
  reason?: string;
  reply: string | null;
  queue_id?: string | null;
  client_addr?: string;
  client_name?: string;
  helo?: string;
  sender?: string;
  recipient?: string;
  recipients?: string[];
  mta?: string;
  transaction?: number;
  observed?: unknown[];
}

export function isDecision(e: LogEntry): e is Decision {
  return e.event === 'decision';
}

export interface PolicyConfigOptions {
  inetPort?: number;
  unixPath?: string;
  /** Extra top-level YAML lines. */
  extra?: string[];
  relayGuardMode?: 'enforce' | 'observe';
  /** Default 127.0.0.1/32, ::1/128, 127.0.0.3/32 (the relay scenarios' trusted network). */
  trustedNetworks?: readonly string[];
}

export const HEADER_NAME = 'X-Milter-Policy';

/**
 * The configuration the scenarios run with (the brief's example): example.test local,
 * relay.example.test relayed, 127.0.0.1 and 127.0.0.3 trusted, AUTH trusted, the header added.
 * Values are JSON, which is YAML.
 */
export function policyConfig(opts: PolicyConfigOptions): string {
  const listen: string[] = [];
  if (opts.inetPort !== undefined) listen.push(`inet:${opts.inetPort}@127.0.0.1`);
  if (opts.unixPath !== undefined) listen.push(`unix:${opts.unixPath}`);
  const y = (v: unknown): string => JSON.stringify(v);
  return [
    '# Written by test/e2e/harness/daemon.ts',
    `listen: ${y(listen)}`,
    `socket: ${y({ mode: '0660', group: 'postfix' })}`,
    `domains: ${y({ local: ['example.test'], relay: ['relay.example.test'] })}`,
    `trusted_networks: ${y(opts.trustedNetworks ?? ['127.0.0.1/32', '::1/128', '127.0.0.3/32'])}`,
    `relay_guard: ${y({ mode: opts.relayGuardMode ?? 'enforce', trust_authenticated: true })}`,
    `add_header: ${y({ name: HEADER_NAME, value: 'milter-policy {version} on {mta_host} q={queue_id}' })}`,
    `log: ${y({ level: 'info', accepted: true })}`,
    ...(opts.extra ?? []),
    '',
  ].join('\n');
}

export class PolicyDaemon {
  readonly log: LogEntry[] = [];
  /** stdout lines that were not JSON (should stay empty). */
  readonly rawLines: string[] = [];
  private stderr = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly configFile: string,
    logFile: string,
  ) {
    const logStream = createWriteStream(logFile, { flags: 'a' });
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      logStream.write(chunk);
      buffer += chunk;
      for (let eol = buffer.indexOf('\n'); eol !== -1; eol = buffer.indexOf('\n')) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 1);
        if (line.trim() === '') continue;
        try {
          this.log.push(JSON.parse(line) as LogEntry);
        } catch {
          this.rawLines.push(line);
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      logStream.write(`[stderr] ${chunk}`);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Writes `configText` to DIR/milter/milter-policy.yaml and starts the daemon on it; resolves once
   * it logged `started`. Registers a teardown that stops it if it is still running.
   */
  static async start(tb: Testbed, configText: string, timeoutMs = 15_000): Promise<PolicyDaemon> {
    const dir = tb.path('milter');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const configFile = path.join(dir, 'milter-policy.yaml');
    writeFileSync(configFile, configText);
    const child = spawn(process.execPath, [DAEMON.path, 'serve', '--config', configFile], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new PolicyDaemon(child, configFile, path.join(dir, 'daemon.log'));
    tb.onTeardown(`daemon pid ${child.pid}`, () => daemon.kill());
    await daemon.waitForLog((e) => e.event === 'started', timeoutMs, 'the `started` event');
    return daemon;
  }

  /** The first log entry (already seen or arriving within `timeoutMs`) that satisfies `predicate`. */
  async waitForLog<T extends LogEntry = LogEntry>(
    predicate: (e: LogEntry) => boolean,
    timeoutMs = 10_000,
    what = 'a matching log line',
    from = 0,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.log.slice(from).find(predicate);
      if (found !== undefined) return found as T;
      if (this.exit !== undefined)
        throw new Error(`daemon exited (${JSON.stringify(this.exit)}) before ${what}\n${this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`);
      await sleep(20);
    }
  }

  /** Every decision line so far (optionally only those after log index `from`). */
  decisions(from = 0): Decision[] {
    return this.log.slice(from).filter(isDecision);
  }

  /** Waits until `count` decisions matching `predicate` were logged after `from`; returns them. */
  async waitForDecisions(
    predicate: (d: Decision) => boolean,
    count: number,
    timeoutMs = 10_000,
    from = 0,
  ): Promise<Decision[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.decisions(from).filter(predicate);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${count} decision(s), have ${found.length}\n${this.tail()}`);
      }
      await sleep(20);
    }
  }

  /** SIGTERM, then expects exit code 0 and a `stopped` log line. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exit === undefined) this.child.kill('SIGTERM');
    if (!(await this.waitExit(timeoutMs))) {
      this.child.kill('SIGKILL');
      throw new Error(`daemon did not exit within ${timeoutMs} ms of SIGTERM\n${this.tail()}`);
    }
    if (this.exit?.code !== 0)
      throw new Error(`daemon exited ${JSON.stringify(this.exit)} after SIGTERM\n${this.tail()}`);
    await this.waitForLog((e) => e.event === 'stopped', 1000, 'the `stopped` event');
  }

  /** Teardown: SIGTERM if still running, SIGKILL if it lingers; never throws. */
  async kill(): Promise<void> {
    if (this.exit !== undefined || !isAlive(this.pid)) return;
    this.child.kill('SIGTERM');
    if (!(await this.waitExit(5000))) this.child.kill('SIGKILL');
  }

  /** Resolves true once the process exited, false after `timeoutMs` (the timer never outlives it). */
  private async waitExit(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.exited.then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signals the daemon (e.g. SIGHUP for a reload). */
  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** The last log lines and stderr, for failure messages. */
  tail(lines = 15): string {
    const last = this.log.slice(-lines).map((e) => JSON.stringify(e));
    return `--- daemon log (last ${last.length})\n${last.join('\n')}\n--- daemon stderr\n${this.stderr.slice(-2000)}`;
  }
}
