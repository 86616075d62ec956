// The YAML configuration file: schema, defaults and validation. Called by the daemon at start and
// on SIGHUP, and by `milter-policy check-config`. Returns every problem at once, each as
// `file:line: path: problem`; never throws for a bad file. Domain and network files named by the
// configuration are read here too (relative paths are relative to the configuration file), so a
// configuration that loads is complete and the runtime can be built from it without more I/O.
// Reference of every key: docs/configuration.md.

import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import type { ListenSpec } from '../milter/listen-spec.js';
import { parseListenSpec } from '../milter/listen-spec.js';
import type { SmtpReply } from '../milter/reply-text.js';
import { parseReplySpec } from '../milter/reply-text.js';
import type { DomainEntry } from '../rules/domain-list.js';
import { parseDomainList } from '../rules/domain-list.js';
import type { Network } from '../rules/networks.js';
import { parseNetwork } from '../rules/networks.js';
import { compileRulePattern } from '../rules/header-rules.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `250ms`, `2h`, or a bare number of seconds (as Postfix time parameters). */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v >= 0 && Number.isFinite(v)) return Math.round(v * 1000);
  } else {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)$/.exec(v.trim());
    if (m !== null) return Math.round(Number(m[1]) * (UNITS[m[2] as string] as number));
  }
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration like 30s, 250ms, 2h` });
  return z.NEVER;
});

/** `65536`, `64k`, `1m` bytes. */
const size = z.union([z.number().int(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (v > 0) return v;
  } else {
    const m = /^([0-9]+)\s*([kKmM]?)$/.exec(v.trim());
    if (m !== null)
      return Number(m[1]) * (m[2] === '' ? 1 : m[2]?.toLowerCase() === 'k' ? 1024 : 1024 * 1024);
  }
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a size like 65536, 64k, 1m` });
  return z.NEVER;
});

const listenSpec = z.string().transform((v, ctx) => {
  const r = parseListenSpec(v);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: r.problem });
  return z.NEVER;
});

/** `HOST:PORT`, `[IPv6]:PORT` (the metrics listener). */
const httpListen = z.string().transform((v, ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):([0-9]{1,5})$/.exec(v.trim());
  const port = Number(m?.[3]);
  if (m !== null && port <= 65535) return { host: (m[1] ?? m[2]) as string, port };
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not HOST:PORT or [IPv6]:PORT` });
  return z.NEVER;
});

/** Loopback: 127.0.0.0/8, ::1, localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(host);
}

const replySpec = z.string().transform((v, ctx) => {
  const r = parseReplySpec(v);
  if (r.ok) return r.reply;
  ctx.addIssue({ code: 'custom', message: r.problem });
  return z.NEVER;
});

const network = z.string().transform((v, ctx) => {
  const r = parseNetwork(v);
  if (r.ok) return r.network;
  ctx.addIssue({ code: 'custom', message: r.problem });
  return z.NEVER;
});

const domainName = z.string().min(1);

/** A reply template with %-placeholders (%i address, %z zone, %t TXT, %d domain, %n name, %e extension, %r rule). */
const replyTemplate = z.string().transform((v, ctx) => {
  const sample = v.replace(/%([%izdtner])/g, (_m, c: string) => (c === '%' ? '%%' : 'x'));
  if (/%(?!%)/.test(sample.replace(/%%/g, ''))) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)}: unknown placeholder (use %i %z %t %d %n %e %r, %% for a literal %)`,
    });
    return z.NEVER;
  }
  const r = parseReplySpec(sample.replace(/%%/g, '%'));
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.problem });
    return z.NEVER;
  }
  return v;
});
const checkMode = z.enum(['enforce', 'observe', 'tag']);
const headerName = z
  .string()
  .regex(/^[!-9;-~]+$/, 'must be a header field name (printable ASCII, no colon or space)');
const filterBase = { enabled: z.boolean().default(false), mode: checkMode.default('enforce') };
const answerSpec = z
  .string()
  .regex(
    /^(127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})?|&(0x[0-9a-fA-F]+|[0-9]+))$/,
    'must be 127.x.y.z, a range 127.0.0.2-127.0.0.11, or a bit mask &0x04',
  );
const dnsblZone = z.strictObject({
  zone: domainName,
  answers: z.array(answerSpec).default([]),
  weight: z.number().default(1),
  action: z.enum(['reject', 'tempfail', 'observe', 'tag']).default('reject'),
  reply: replyTemplate.default('550 5.7.1 Rejected: %i listed at %z'),
  on_error: z.enum(['ignore', 'tempfail']).default('ignore'),
  tempfail_reply: replyTemplate.default('451 4.4.3 Temporary lookup failure of %i at %z'),
  probe: z.boolean().default(false),
});
const rhsblZone = z.strictObject({
  zone: domainName,
  targets: z
    .array(z.enum(['sender', 'helo']))
    .min(1)
    .default(['sender']),
  answers: z.array(answerSpec).default([]),
  action: z.enum(['reject', 'tempfail', 'observe', 'tag']).default('reject'),
  reply: replyTemplate.default('550 5.7.1 Mail from %d refused by blackhole site %z'),
  on_error: z.enum(['ignore', 'tempfail']).default('ignore'),
  tempfail_reply: replyTemplate.default('451 4.4.3 Temporary lookup failure of %d at %z'),
});
const mode = z.enum(['enforce', 'observe']);
const onError = z.enum(['defer_if_permit', 'tempfail', 'continue']);
const ipv4Prefixes = z.array(z.number().int().min(1).max(32)).min(1);
const ipv6Prefixes = z.array(z.number().int().min(1).max(128)).min(1);
/** The reply of each kind of rate limit, sendmail's where sendmail has one. */
export const RATE_LIMIT_REPLIES = {
  connections: '452 4.3.2 Connection rate limit exceeded.',
  concurrent: '452 4.3.2 Too many open connections.',
  messages: '452 4.3.2 Message rate limit exceeded.',
  recipients: '452 4.3.2 Recipient rate limit exceeded.',
} as const;
const rateLimit = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9_-]+$/i, 'a limit name: letters, digits, - and _'),
    counts: z.enum(['connections', 'concurrent', 'messages', 'recipients']),
    by: z.enum(['client', 'sender', 'user']).default('client'),
    ipv4_prefixes: ipv4Prefixes.default([32]),
    ipv6_prefixes: ipv6Prefixes.default([64]),
    rate: z.number().positive(),
    per: duration.prefault('60s'),
    burst: z.number().positive().optional(),
    count_refused: z.boolean().default(false),
    reply: replyTemplate.optional(),
  })
  .superRefine((l, ctx) => {
    if (l.by !== 'client' && (l.counts === 'connections' || l.counts === 'concurrent'))
      ctx.addIssue({ code: 'custom', path: ['by'], message: `${l.counts} are counted by client only` });
    if (l.per <= 0) ctx.addIssue({ code: 'custom', path: ['per'], message: 'must be more than 0' });
  });

const fileSchema = z.strictObject({
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default(1),
  listen: z.array(listenSpec).min(1).prefault(['unix:/run/milter-policy/milter.sock']),
  socket: z
    .strictObject({
      mode: z
        .string()
        .regex(/^0?[0-7]{3}$/, 'must be an octal mode like "0660"')
        .default('0660'),
      group: z.string().min(1).optional(),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_packet_bytes: size.prefault(1024 * 1024),
      max_connections: z.number().int().positive().default(1000),
      max_queued_commands: z.number().int().positive().default(64),
      max_headers: z.number().int().positive().default(1000),
      max_header_bytes: size.prefault('256k'),
      idle_timeout: duration.prefault('2h'),
    })
    .prefault({}),
  shutdown: z.strictObject({ drain_timeout: duration.prefault('30s') }).prefault({}),
  metrics: z
    .strictObject({
      enabled: z.boolean().default(false),
      listen: httpListen.prefault('127.0.0.1:9464'),
      path: z
        .string()
        .regex(/^\/[!-~]*$/, 'must be a URL path like /metrics')
        .refine((p) => p !== '/healthz', '/healthz is the health check')
        .default('/metrics'),
      allow_remote: z.boolean().default(false),
    })
    .superRefine((m, ctx) => {
      if (!m.allow_remote && !isLoopback(m.listen.host))
        ctx.addIssue({
          code: 'custom',
          path: ['listen'],
          message: `${m.listen.host} is not a loopback address (the endpoint has no authentication; set allow_remote: true to serve other hosts)`,
        });
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      file: z.string().min(1).optional(),
      accepted: z.boolean().default(false),
      addresses: z.enum(['plain', 'redact', 'hash']).default('plain'),
      hash_key: z.string().default(''),
    })
    .prefault({}),
  policy: z
    .strictObject({
      observe: z.boolean().default(false),
      on_error: onError.default('defer_if_permit'),
      stage_budget: duration.prefault('5s'),
    })
    .prefault({}),
  domains: z
    .strictObject({
      local: z.array(domainName).default([]),
      local_file: z.string().min(1).optional(),
      relay: z.array(domainName).default([]),
      relay_file: z.string().min(1).optional(),
      relay_hosts_only: z.boolean().default(false),
    })
    .prefault({}),
  trusted_networks: z.array(network).prefault(['127.0.0.1/32', '::1/128']),
  relay_guard: z
    .strictObject({
      enabled: z.boolean().default(true),
      mode: mode.default('enforce'),
      trust_authenticated: z.boolean().default(true),
      trust_local_sockets: z.boolean().default(true),
      reply: replySpec.prefault('550 5.7.1 Relaying denied'),
      check_client_resolve: z.boolean().default(true),
      budget: duration.prefault('1s'),
      on_error: onError.optional(),
    })
    .prefault({}),
  postmaster: z.strictObject({ always_accept: z.boolean().default(true) }).prefault({}),
  access_db: z
    .strictObject({
      file: z.string().min(1).optional(),
      blocklist_recipients: z.boolean().default(true),
      delay_checks: z.boolean().default(true),
      spam: z.enum(['none', 'friend', 'hater']).default('friend'),
      lookupdotdomain: z.boolean().default(false),
      skip: z.boolean().default(false),
      replace_duplicates: z.boolean().default(false),
      check_interval: duration.prefault('5s'),
      mode: mode.default('enforce'),
      on_error: onError.optional(),
    })
    .prefault({}),
  tag_header: headerName.default('X-Milter-Policy-Tag'),
  rate_limits: z
    .strictObject({
      mode: mode.default('enforce'),
      report_at: z.enum(['rcpt', 'connect']).default('rcpt'),
      terminate: z.boolean().default(false),
      allow: z.array(network).default([]),
      lease: duration.prefault('10m'),
      budget: duration.prefault('1s'),
      on_error: onError.optional(),
      access_db: z.boolean().default(false),
      window: duration.prefault('60s'),
      client_rate_reply: replyTemplate.default(RATE_LIMIT_REPLIES.connections),
      client_conn_reply: replyTemplate.default(RATE_LIMIT_REPLIES.concurrent),
      limits: z
        .array(rateLimit)
        .default([])
        .superRefine((list, ctx) => {
          const seen = new Set<string>();
          list.forEach((l, i) => {
            if (seen.has(l.name))
              ctx.addIssue({
                code: 'custom',
                path: [i, 'name'],
                message: `limit ${l.name} is defined twice`,
              });
            seen.add(l.name);
          });
        }),
      bad_recipients: z
        .strictObject({
          enabled: z.boolean().default(false),
          per_connection: z.number().int().min(0).default(10),
          per_source: z.number().int().min(0).default(50),
          window: duration.prefault('10m'),
          ipv4_prefix: z.number().int().min(1).max(32).default(32),
          ipv6_prefix: z.number().int().min(1).max(128).default(64),
          ban: duration.prefault('0s'),
          reply: replyTemplate.default('452 4.3.2 Too many refused recipients, try again later'),
          banned_reply: replyTemplate.default(
            '450 4.7.1 Too many refused recipients from %i, try again later',
          ),
        })
        .prefault({}),
    })
    .prefault({}),
  store: z
    .strictObject({
      type: z.enum(['memory', 'redis']).default('memory'),
      max_keys: z.number().int().positive().default(1_000_000),
      redis: z
        .strictObject({
          url: z.string().min(1).default('redis://127.0.0.1:6379'),
          cluster: z
            .array(z.string().regex(/^([^\s:[\]]+|\[[0-9a-fA-F:.]+\]):[0-9]+$/, 'host:port or [v6]:port'))
            .optional(),
          prefix: z.string().default('mp:'),
          timeout: duration.prefault('50ms'),
          on_failure: z.enum(['fallback', 'allow', 'tempfail']).default('fallback'),
        })
        .prefault({}),
    })
    .prefault({}),
  dnsbl: z
    .strictObject({
      servers: z.array(z.string().min(1)).optional(),
      timeout: duration.prefault('2s'),
      tries: z.number().int().min(1).max(5).default(2),
      budget: duration.prefault('4s'),
      stage: z.enum(['rcpt', 'mail']).default('rcpt'),
      mode: checkMode.default('enforce'),
      threshold: z.number().default(1),
      probe_interval: duration.prefault('5m'),
      cache: z
        .strictObject({
          max_entries: z.number().int().positive().default(100_000),
          min_ttl: duration.prefault('60s'),
          max_ttl: duration.prefault('1h'),
          negative_ttl: duration.prefault('5m'),
        })
        .prefault({}),
      zones: z.array(dnsblZone).default([]),
      rhsbl: z.array(rhsblZone).default([]),
    })
    .prefault({}),
  filters: z
    .strictObject({
      advertisement: z
        .strictObject({
          ...filterBase,
          prefixes: z.array(z.string().min(1)).default(['ADV:', 'AD:', 'ADVERTISEMENT']),
          reply: replyTemplate.default('550 5.7.1 Advertisements are not accepted here'),
        })
        .prefault({}),
      space_patrol: z
        .strictObject({
          ...filterBase,
          spaces: z.number().int().min(2).default(8),
          reply: replyTemplate.default('550 5.7.1 Subject with a run of spaces is not accepted here'),
        })
        .prefault({}),
      message_id: z
        .strictObject({
          ...filterBase,
          missing: z.boolean().default(true),
          no_at: z.boolean().default(true),
          malformed: z.boolean().default(true),
          reply: replyTemplate.default('550 5.7.1 Message-ID header missing or malformed'),
        })
        .prefault({}),
      route_address: z
        .strictObject({
          ...filterBase,
          reply: replyTemplate.default('553 5.1.3 Route and %% or ! addresses are not accepted'),
        })
        .prefault({}),
      attachments: z
        .strictObject({
          ...filterBase,
          extensions: z
            .array(z.string().regex(/^[A-Za-z0-9_-]+$/, 'an extension without the dot'))
            .optional(),
          max_depth: z.number().int().positive().default(20),
          max_parts: z.number().int().positive().default(1000),
          max_bytes: size.prefault('50m'),
          max_part_header_bytes: size.prefault('100k'),
          max_name_length: z.number().int().min(16).default(1024),
          over_limit: z.enum(['reject', 'tempfail', 'accept']).default('reject'),
          reply: replyTemplate.default('550 5.7.1 Attachment %n is not accepted here (.%e)'),
          over_limit_reply: replyTemplate.default(
            '552 5.3.4 Message structure exceeds the limits of this server',
          ),
        })
        .prefault({}),
      message_size: z
        .strictObject({
          ...filterBase,
          max: size.prefault('10m'),
          reply: replyTemplate.default('552 5.3.4 Message size exceeds fixed maximum message size'),
        })
        .prefault({}),
      header_rules: z
        .array(
          z.strictObject({
            name: z
              .string()
              .regex(/^[a-z0-9_-]+$/i, 'a rule name: letters, digits, - and _')
              .optional(),
            header: headerName,
            pattern: z
              .string()
              .min(1)
              .superRefine((v, ctx) => {
                const c = compileRulePattern(v, '');
                if (!c.ok)
                  ctx.addIssue({
                    code: 'custom',
                    message: `not a pattern RE2 accepts (no backreferences or lookaround): ${c.problem}`,
                  });
              }),
            flags: z
              .string()
              .regex(/^[ims]*$/, 'flags from i, m, s')
              .default('i'),
            action: z.enum(['reject', 'tempfail', 'discard', 'tag', 'observe']).default('reject'),
            reply: replyTemplate.default('550 5.7.1 Message refused by rule %r'),
          }),
        )
        .default([]),
      header_rule_max_input: z.number().int().positive().default(4096),
      spam_trap: z
        .strictObject({
          ...filterBase,
          addresses: z.array(z.string().min(1)).default([]),
          ban: duration.prefault('1h'),
          reply: replyTemplate.default('550 5.7.1 Mail sent to spam lists is not accepted here'),
          banned_reply: replyTemplate.default('550 5.7.1 Access denied'),
        })
        .prefault({}),
    })
    .prefault({}),
  add_header: z
    .strictObject({
      enabled: z.boolean().default(true),
      name: z
        .string()
        .regex(/^[!-9;-~]+$/, 'must be a header field name (printable ASCII, no colon or space)')
        .default('X-Milter-Policy'),
      value: z
        .string()
        .refine((s) => !/[\r\n\0]/.test(s), 'must not contain CR, LF or NUL')
        .default('milter-policy {version} on {mta_host}'),
    })
    .prefault({}),
});

/**
 * The schema of the file, read only by test/unit/configuration-doc.test.ts, which walks it to prove
 * that docs/configuration.md and examples/milter-policy-annotated.yaml name every key and default.
 */
export const CONFIG_FILE_SCHEMA = fileSchema;

type FileConfig = z.output<typeof fileSchema>;

/** A fully validated configuration, with the files it names already read. */
export interface Config {
  readonly source: string;
  /** Worker processes sharing the listeners (1 = the daemon itself serves). */
  readonly workers: number;
  readonly listen: readonly ListenSpec[];
  readonly socket: { readonly mode: number; readonly group?: string };
  readonly limits: FileConfig['limits'];
  readonly shutdown: FileConfig['shutdown'];
  /** The Prometheus endpoint; listen is null when metrics are off. */
  readonly metrics: {
    readonly listen: { readonly host: string; readonly port: number } | null;
    readonly path: string;
  };
  readonly log: {
    readonly level: FileConfig['log']['level'];
    readonly file?: string;
    /** Decision lines of accepted recipients and messages at info (else at debug). */
    readonly accepted: boolean;
    /** Envelope addresses in decision lines: as sent, local part redacted, or local part hashed. */
    readonly addresses: 'plain' | 'redact' | 'hash';
    readonly hashKey: string;
  };
  readonly policy: FileConfig['policy'];
  readonly localDomains: readonly DomainEntry[];
  readonly relayDomains: readonly DomainEntry[];
  readonly relayHostsOnly: boolean;
  readonly trustedNetworks: readonly Network[];
  readonly relayGuard: {
    readonly enabled: boolean;
    readonly mode: 'enforce' | 'observe';
    readonly trustAuthenticated: boolean;
    readonly trustLocalSockets: boolean;
    readonly reply: SmtpReply;
    readonly checkClientResolve: boolean;
    readonly budgetMs: number;
    readonly onError?: 'defer_if_permit' | 'tempfail' | 'continue';
  };
  readonly postmasterAlwaysAccept: boolean;
  /** null when no access file is configured. */
  readonly accessDb: {
    readonly file: string;
    readonly blocklistRecipients: boolean;
    readonly delayChecks: boolean;
    readonly spam: 'none' | 'friend' | 'hater';
    readonly lookupdotdomain: boolean;
    readonly skip: boolean;
    readonly replaceDuplicates: boolean;
    readonly checkIntervalMs: number;
    readonly mode: 'enforce' | 'observe';
    readonly onError?: 'defer_if_permit' | 'tempfail' | 'continue';
  } | null;
  readonly addHeader: { readonly enabled: boolean; readonly name: string; readonly value: string };
  readonly tagHeader: string;
  readonly dnsbl: DnsblConfig;
  readonly filters: FiltersConfig;
  readonly rateLimits: RateLimitsConfig;
  readonly store: StoreConfig;
}

export type RateLimitsConfig = FileConfig['rate_limits'];
export type StoreConfig = FileConfig['store'];
export type DnsblConfig = FileConfig['dnsbl'];
export type FiltersConfig = FileConfig['filters'];

export type ConfigResult =
  { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly errors: readonly string[] };

function formatPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : `${out === '' ? '' : '.'}${String(k)}`;
  return out === '' ? '(top level)' : out;
}

/** Validates configuration text; `file` is used for messages and to resolve relative paths. */
export async function parseConfig(text: string, file: string): Promise<ConfigResult> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined): string =>
    offset === undefined ? file : `${file}:${lines.linePos(offset).line}`;
  if (doc.errors.length > 0)
    return { ok: false, errors: doc.errors.map((e) => `${lineOf(e.pos[0])}: ${e.message.split('\n')[0]}`) };
  const raw: unknown = doc.toJS() ?? {};
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => {
      let p = issue.path;
      if (issue.code === 'unrecognized_keys') p = [...p, ...issue.keys];
      let node: unknown = doc.getIn(p as unknown[], true);
      for (let q = p.slice(); !isNode(node) && q.length > 0; q = q.slice(0, -1))
        node = doc.getIn(q as unknown[], true);
      const where = isNode(node) ? lineOf(node.range?.[0]) : file;
      const message =
        issue.code === 'unrecognized_keys'
          ? 'unknown setting'
          : issue.message.replace(/^Invalid input: /, '');
      return {
        line: isNode(node) ? lines.linePos(node.range?.[0] ?? 0).line : 0,
        text: `${where}: ${formatPath(p)}: ${message}`,
      };
    });
    return { ok: false, errors: errors.sort((a, b) => a.line - b.line).map((e) => e.text) };
  }
  const c = parsed.data;
  const base = path.dirname(path.resolve(file));
  const resolve = (p: string): string => path.resolve(base, p);
  const errors: string[] = [];

  const domainList = async (
    inline: readonly string[],
    key: string,
    fileKey?: string,
  ): Promise<DomainEntry[]> => {
    const out: DomainEntry[] = [];
    const fromInline = parseDomainList(inline.join('\n'), `${file}: domains.${key}`, { lineLabel: 'entry' });
    errors.push(...fromInline.errors);
    out.push(...fromInline.entries);
    if (fileKey !== undefined) {
      const f = resolve(fileKey);
      let body: string;
      try {
        body = await readFile(f, 'latin1');
      } catch (e) {
        errors.push(
          `${file}: domains.${key}_file: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        );
        return out;
      }
      const fromFile = parseDomainList(body, f);
      errors.push(...fromFile.errors);
      out.push(...fromFile.entries);
    }
    return out;
  };
  const localDomains = await domainList(c.domains.local, 'local', c.domains.local_file);
  const relayDomains = await domainList(c.domains.relay, 'relay', c.domains.relay_file);
  if (errors.length > 0) return { ok: false, errors };

  const listen = c.listen.map((l) => (l.kind === 'unix' ? { ...l, path: resolve(l.path) } : l));
  const config: Config = {
    source: path.resolve(file),
    workers: c.workers === 'auto' ? os.availableParallelism() : c.workers,
    listen,
    socket: {
      mode: parseInt(c.socket.mode, 8),
      ...(c.socket.group === undefined ? {} : { group: c.socket.group }),
    },
    limits: c.limits,
    shutdown: c.shutdown,
    metrics: { listen: c.metrics.enabled ? c.metrics.listen : null, path: c.metrics.path },
    log: {
      level: c.log.level,
      ...(c.log.file === undefined ? {} : { file: resolve(c.log.file) }),
      accepted: c.log.accepted,
      addresses: c.log.addresses,
      hashKey: c.log.hash_key,
    },
    policy: c.policy,
    localDomains,
    relayDomains,
    relayHostsOnly: c.domains.relay_hosts_only,
    trustedNetworks: c.trusted_networks,
    relayGuard: {
      enabled: c.relay_guard.enabled,
      mode: c.relay_guard.mode,
      trustAuthenticated: c.relay_guard.trust_authenticated,
      trustLocalSockets: c.relay_guard.trust_local_sockets,
      reply: c.relay_guard.reply,
      checkClientResolve: c.relay_guard.check_client_resolve,
      budgetMs: c.relay_guard.budget,
      ...(c.relay_guard.on_error === undefined ? {} : { onError: c.relay_guard.on_error }),
    },
    postmasterAlwaysAccept: c.postmaster.always_accept,
    accessDb:
      c.access_db.file === undefined
        ? null
        : {
            file: resolve(c.access_db.file),
            blocklistRecipients: c.access_db.blocklist_recipients,
            delayChecks: c.access_db.delay_checks,
            spam: c.access_db.spam,
            lookupdotdomain: c.access_db.lookupdotdomain,
            skip: c.access_db.skip,
            replaceDuplicates: c.access_db.replace_duplicates,
            checkIntervalMs: c.access_db.check_interval,
            mode: c.access_db.mode,
            ...(c.access_db.on_error === undefined ? {} : { onError: c.access_db.on_error }),
          },
    addHeader: c.add_header,
    tagHeader: c.tag_header,
    dnsbl: c.dnsbl,
    filters: c.filters,
    rateLimits: c.rate_limits,
    store: c.store,
  };
  return { ok: true, config };
}

export async function loadConfig(file: string): Promise<ConfigResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, errors: [`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`] };
  }
  return parseConfig(text, file);
}
