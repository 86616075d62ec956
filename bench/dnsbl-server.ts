// The benchmark's own DNS blocklist server: a private rbldnsd (/usr/sbin/rbldnsd, Debian package
// rbldnsd) on a free 127.0.0.1 UDP port, serving three generated zones for the `ours-all` target of
// bench/run.ts, so that the daemon's DNSBL and RHSBL lookups are answered locally (never by public
// DNS) and their cost can be measured:
//   bl.bench   ip4set: 5 % of the load generator's client pool 192.0.2.0/24 (the 13 addresses
//              whose last octet is 7 mod 20) and the RFC 5782 test address 127.0.0.2;
//   pbl.bench  ip4set: 10 % of the pool (the 26 addresses whose last octet is 3 mod 10; the
//              configuration tags these, it does not refuse them);
//   dbl.bench  dnset: a few domains, none of them the load generator's sender or HELO domain.
// rbldnsd runs in the foreground (-n, so the pid held is its own) as its user rbldns, which is why
// the data directory is world-readable; it writes its query counters (-s) every second (-c 1),
// which queryCounts() reads. Stopped by its pid. Failure: start() throws with rbldnsd's output when
// it exits before answering, or when a probe query gets no answer within 5 s.

import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readText } from './machine.js';
import type { Captured } from './processes.js';
import { run } from './processes.js';

export const RBLDNSD_BIN = '/usr/sbin/rbldnsd';

/** Last octets of 192.0.2.x listed in bl.bench (refused) and pbl.bench (tagged). */
export const BL_OCTETS: readonly number[] = Array.from({ length: 254 }, (_, i) => i + 1).filter(
  (o) => o % 20 === 7,
);
export const PBL_OCTETS: readonly number[] = Array.from({ length: 254 }, (_, i) => i + 1).filter(
  (o) => o % 10 === 3,
);

const ZONE_FILES: Record<string, string> = {
  'bl.bench.ip4': [
    '# bl.bench: 5 % of the load generator pool 192.0.2.0/24, refused by the ours-all configuration',
    '$SOA 3600 ns.bench hostmaster.bench 1 600 300 86400 300',
    '$NS 3600 ns.bench',
    ':127.0.0.2:Listed in bl.bench: $',
    '127.0.0.2',
    ...BL_OCTETS.map((o) => `192.0.2.${o}`),
    '',
  ].join('\n'),
  'pbl.bench.ip4': [
    '# pbl.bench: 10 % of the load generator pool, tagged by the ours-all configuration',
    '$SOA 3600 ns.bench hostmaster.bench 1 600 300 86400 300',
    '$NS 3600 ns.bench',
    ':127.0.0.10:Dynamic address $',
    '127.0.0.2',
    ...PBL_OCTETS.map((o) => `192.0.2.${o}`),
    '',
  ].join('\n'),
  'dbl.bench.dom': [
    '# dbl.bench: a domain list; the load generator sender (client.example) is not on it',
    '$SOA 3600 ns.bench hostmaster.bench 1 600 300 86400 300',
    '$NS 3600 ns.bench',
    ':127.0.1.2:Domain $ is listed in dbl.bench',
    'test',
    'spam.example',
    '.bad.example',
    '',
  ].join('\n'),
};

const ZONE_SPECS = [
  'bl.bench:ip4set:bl.bench.ip4',
  'pbl.bench:ip4set:pbl.bench.ip4',
  'dbl.bench:dnset:dbl.bench.dom',
];

/** rbldnsd's counters: queries received in total (every zone) and per zone. */
export interface QueryCounts {
  /** Unix time of the line the counts come from. */
  readonly at: number;
  readonly total: number;
  readonly zones: Readonly<Record<string, number>>;
}

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

export class DnsblServer {
  private constructor(
    private readonly proc: Captured,
    readonly port: number,
    private readonly dir: string,
    private readonly statsFile: string,
    /** The command line, for the report. */
    readonly command: string,
  ) {}

  /** `127.0.0.1:PORT`, the form `dnsbl.servers` takes. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.child.pid ?? -1;
  }

  static async start(): Promise<DnsblServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'milter-bench-dns-'));
    await chmod(dir, 0o755); // rbldnsd reads the zones as user rbldns
    for (const [name, text] of Object.entries(ZONE_FILES)) {
      await writeFile(path.join(dir, name), text);
      await chmod(path.join(dir, name), 0o644);
    }
    const statsFile = path.join(dir, 'stats');
    await writeFile(statsFile, '');
    await chmod(statsFile, 0o666); // written by user rbldns
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freeUdpPort();
      const args = [
        '-n',
        '-q',
        '-b',
        `127.0.0.1/${port}`,
        '-w',
        dir,
        '-t',
        '3600',
        '-c',
        '1',
        '-s',
        statsFile,
        ...ZONE_SPECS,
      ];
      const proc = run(RBLDNSD_BIN, args);
      const command = [
        RBLDNSD_BIN,
        ...args.map((a) => (a === dir ? '<tmp>' : a === statsFile ? '<tmp>/stats' : a)),
      ].join(' ');
      const server = new DnsblServer(proc, port, dir, statsFile, command);
      try {
        await server.waitAnswers('2.0.0.127.bl.bench');
        return server;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        proc.child.kill('SIGKILL');
        await proc.exited;
        if (!/in use/i.test(last)) break;
      }
    }
    await rm(dir, { recursive: true, force: true });
    throw new Error(`rbldnsd did not start: ${last}`);
  }

  private async waitAnswers(name: string): Promise<void> {
    const resolver = new Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([this.server]);
    let exitCode: number | null | undefined;
    void this.proc.exited.then((c) => {
      exitCode = c;
    });
    const deadline = performance.now() + 5000;
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(
          `rbldnsd exited with ${String(exitCode)}: ${this.proc.stderr()}${this.proc.stdout()}`,
        );
      let last: string;
      try {
        await resolver.resolve4(name);
        return;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      if (performance.now() > deadline)
        throw new Error(`no answer to ${name} from ${this.server} (${last}): ${this.proc.stderr()}`);
      await sleep(50);
    }
  }

  /** Every line of counters rbldnsd has written, oldest first (one a second; a line stamped T
   *  was written during second T). */
  countsLines(): QueryCounts[] {
    const out: QueryCounts[] = [];
    for (const line of readText(this.statsFile).split('\n')) {
      if (!line.includes(':')) continue; // start/stop lines carry only a timestamp
      const [ts, ...tuples] = line.trim().split(/\s+/);
      const zones: Record<string, number> = {};
      let total = 0;
      for (const t of tuples) {
        const f = t.split(':');
        const q = Number(f[1]);
        if (f[0] === '*') total = q;
        else if (f[0] !== undefined) zones[f[0]] = q;
      }
      out.push({ at: Number(ts), total, zones });
    }
    return out;
  }

  /** The newest counters rbldnsd wrote (at most about a second old), or null before the first. */
  queryCounts(): QueryCounts | null {
    return this.countsLines().at(-1) ?? null;
  }

  /** Queries counted strictly inside [fromUnixS, toUnixS]: between the first counter line written
   *  after the start and the last one written before the end (so up to 2 s short at each end);
   *  null when the interval holds fewer than two lines. */
  queriesBetween(fromUnixS: number, toUnixS: number): number | null {
    const lines = this.countsLines();
    const a = lines.find((l) => l.at >= Math.ceil(fromUnixS) + 1);
    const b = lines.findLast((l) => l.at <= Math.floor(toUnixS) - 1);
    return a === undefined || b === undefined || b.at <= a.at ? null : b.total - a.total;
  }

  /** Waits until rbldnsd has written counters newer than `afterUnixS` (at most 3 s). */
  async freshCounts(afterUnixS: number): Promise<QueryCounts | null> {
    const deadline = performance.now() + 3000;
    for (;;) {
      const c = this.queryCounts();
      if ((c !== null && c.at > afterUnixS) || performance.now() > deadline) return c;
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    this.proc.child.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.child.kill('SIGKILL'), 5000);
    await this.proc.exited;
    clearTimeout(timer);
    await rm(this.dir, { recursive: true, force: true });
  }
}
