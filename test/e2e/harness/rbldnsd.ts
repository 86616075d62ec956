// A private rbldnsd (the test DNSBL of docs/real-mta-testbed.md §4) for one testbed: the committed
// zone data (test/e2e/dnsbl-zones/, copies of shared/testbed-data/dnsbl/) plus any zone files a test
// generates, copied into DIR/dnsbl/ and served on a free 127.0.0.1 UDP port (rbldnsd speaks UDP
// only). Called by the DNSBL e2e file, which points the daemon's `dnsbl.servers` at `server`.
// Readiness: rbldnsd's own "started" line, then a node:dns query of a name that must be listed
// (never the system resolver: a dedicated Resolver on this server only). Stopped by its pid (it
// runs in the foreground, -n). Fails loudly: an exit before "started", a probe that gets no
// answer, or a port lost to a race three times in a row all throw with rbldnsd's output.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Testbed } from './testbed.js';
import { assetPath, isAlive, stopPid, waitUntil } from './testbed.js';

/** The committed zone data (copies of shared/testbed-data/dnsbl/). */
export const ZONE_DATA_DIR = assetPath('dnsbl-zones');

export const RBLDNSD_BIN = '/usr/sbin/rbldnsd';

/** One rbldnsd zone spec `name:type:file` (repeated names make one zone from several files). */
export interface RbldnsdZone {
  name: string;
  type: 'ip4set' | 'ip4tset' | 'ip4trie' | 'ip6trie' | 'ip6tset' | 'dnset' | 'generic';
  /** File name inside the served directory (a committed file or one of `files`). */
  file: string;
}

/** The zones of the committed data, as docs/real-mta-testbed.md §4 serves them. */
export const STANDARD_ZONES: readonly RbldnsdZone[] = [
  { name: 'bl.test', type: 'ip4set', file: 'bl.test.ip4' },
  { name: 'bl.test', type: 'ip6trie', file: 'bl.test.ip6' },
  { name: 'dbl.test', type: 'dnset', file: 'dbl.test.dom' },
];

export interface RbldnsdOptions {
  tb: Testbed;
  /** Default: STANDARD_ZONES. */
  zones?: readonly RbldnsdZone[];
  /** Generated zone files: name -> content (written beside the committed ones). */
  files?: Readonly<Record<string, string>>;
  /** A name that must resolve to an A record once the zones are loaded (default 2.0.0.127.bl.test). */
  probe?: string;
}

/** A free UDP port on 127.0.0.1 (bind to 0, read it back, close). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, resolve);
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export class Rbldnsd {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly dir: string,
    private readonly output: () => string,
  ) {}

  /** `127.0.0.1:PORT`, the form `dnsbl.servers` and Resolver.setServers take. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** What rbldnsd printed (zone load lines, warnings). */
  log(): string {
    return this.output();
  }

  static async start(opts: RbldnsdOptions): Promise<Rbldnsd> {
    const dir = opts.tb.path('dnsbl');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    // rbldnsd drops to user rbldns: every file must be readable by it.
    for (const name of readdirSync(ZONE_DATA_DIR).filter((n) => !n.endsWith('.md'))) {
      copyFileSync(path.join(ZONE_DATA_DIR, name), path.join(dir, name));
      chmodSync(path.join(dir, name), 0o644);
    }
    for (const [name, content] of Object.entries(opts.files ?? {})) {
      writeFileSync(path.join(dir, name), content, { mode: 0o644 });
      chmodSync(path.join(dir, name), 0o644);
    }
    const zones = opts.zones ?? STANDARD_ZONES;
    const probe = opts.probe ?? '2.0.0.127.bl.test';
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freeUdpPort();
      try {
        const server = await Rbldnsd.launch(opts.tb, dir, port, zones);
        await server.waitAnswers(probe);
        return server;
      } catch (err) {
        lastError = err instanceof Error ? err : new Error(String(err));
        // Only a lost port race is retried; anything else is reported at once.
        if (!/Address already in use/i.test(lastError.message)) throw lastError;
      }
    }
    throw lastError ?? new Error('rbldnsd did not start');
  }

  private static async launch(
    tb: Testbed,
    dir: string,
    port: number,
    zones: readonly RbldnsdZone[],
  ): Promise<Rbldnsd> {
    const args = [
      '-n', // foreground: the pid we hold is rbldnsd's own
      '-b',
      `127.0.0.1/${port}`,
      '-w',
      dir,
      '-t',
      '60', // default TTL 60 s (the daemon clamps to its own min/max)
      '-c',
      '2', // re-read changed files every 2 s (tests may edit the copies)
      ...zones.map((z) => `${z.name}:${z.type}:${z.file}`),
    ];
    const child = spawn(RBLDNSD_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `rbldnsd exited (code ${code}, signal ${signal})`));
    child.once('error', (err) => (exited = `rbldnsd could not be started: ${err.message}`));
    const server = new Rbldnsd(child, port, dir, () => output);
    tb.onTeardown(`rbldnsd pid ${child.pid}`, () => server.stop());
    await waitUntil(
      `rbldnsd on 127.0.0.1:${port} to say "started"`,
      () => {
        if (exited !== undefined) throw new Error(`${exited}\n${args.join(' ')}\n${output}`);
        return /\bstarted\b/.test(output) ? true : undefined;
      },
      10_000,
    );
    return server;
  }

  /** Waits until `name` has an A record on this server (a node:dns Resolver aimed here only). */
  async waitAnswers(name: string, timeoutMs = 5000): Promise<string[]> {
    const resolver = new Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([this.server]);
    let last = '';
    try {
      return await waitUntil(
        `rbldnsd on ${this.server} to answer ${name}`,
        async () => {
          if (!isAlive(this.pid)) throw new Error(`rbldnsd exited\n${this.output()}`);
          try {
            return await resolver.resolve4(name);
          } catch (err) {
            last = err instanceof Error ? err.message : String(err);
            return undefined;
          }
        },
        timeoutMs,
        50,
      );
    } catch (err) {
      throw new Error(
        `${err instanceof Error ? err.message : String(err)} (last: ${last})\n${this.output()}`,
        {
          cause: err,
        },
      );
    }
  }

  async stop(): Promise<void> {
    if (this.child.pid !== undefined) await stopPid(this.child.pid);
  }
}
