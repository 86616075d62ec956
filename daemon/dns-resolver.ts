// The real DNS behind the blocklist checks: a dedicated node:dns Resolver (never dns.lookup, which
// goes through getaddrinfo and the system's cache), with the configured servers, per-try timeout
// and tries. Called through rules/dns-cache.ts. Never rejects: NXDOMAIN and "no such record" are
// `nxdomain` (not listed), everything else (timeout, refused, SERVFAIL) is an `error`.

import { Resolver } from 'node:dns/promises';
import type { DnsAnswer, DnsLookup, DnsRecordType } from '../rules/dns-cache.js';

export interface ResolverOptions {
  /** `host:port` or `[v6]:port` entries; default: the system's resolvers. */
  readonly servers?: readonly string[];
  readonly timeoutMs: number;
  readonly tries: number;
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

export class NodeDnsLookup implements DnsLookup {
  private readonly resolver: Resolver;

  private readonly limitMs: number;

  constructor(options: ResolverOptions) {
    // c-ares backs off between rounds, so an attempt can wait up to about twice `timeout`
    // (measured: 1 s, 1 try -> ~2 s); a hard limit of timeout x tries on the whole lookup keeps the
    // configured numbers true.
    this.resolver = new Resolver({
      timeout: options.timeoutMs,
      tries: options.tries,
    });
    if (options.servers !== undefined && options.servers.length > 0)
      this.resolver.setServers([...options.servers]);
    this.limitMs = options.timeoutMs * options.tries;
  }

  lookup(name: string, type: DnsRecordType): Promise<DnsAnswer> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<DnsAnswer>((resolve) => {
      timer = setTimeout(
        () => resolve({ kind: 'error', error: `${type} ${name}: no answer within ${this.limitMs} ms` }),
        this.limitMs,
      );
    });
    return Promise.race([this.query(name, type), limit]).finally(() => clearTimeout(timer));
  }

  private async query(name: string, type: DnsRecordType): Promise<DnsAnswer> {
    try {
      if (type === 'A') {
        const records = await this.resolver.resolve4(name, { ttl: true });
        const ttl = records.reduce((m, r) => Math.min(m, r.ttl), Number.POSITIVE_INFINITY);
        return {
          kind: 'records',
          records: records.map((r) => r.address),
          ttlSeconds: Number.isFinite(ttl) ? ttl : 0,
        };
      }
      const txt = await this.resolver.resolveTxt(name);
      // TXT has no TTL in node's API: cached for the minimum TTL.
      return { kind: 'records', records: txt.map((chunks) => chunks.join('')), ttlSeconds: 0 };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (NOT_FOUND.has(code)) return { kind: 'nxdomain' };
      return {
        kind: 'error',
        error: `${type} ${name}: ${code || (e instanceof Error ? e.message : String(e))}`,
      };
    }
  }
}
