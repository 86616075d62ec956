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
const mode = z.enum(['enforce', 'observe']);
const onError = z.enum(['defer_if_permit', 'tempfail', 'continue']);

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
      idle_timeout: duration.prefault('2h'),
    })
    .prefault({}),
  shutdown: z.strictObject({ drain_timeout: duration.prefault('30s') }).prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      file: z.string().min(1).optional(),
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
  readonly log: { readonly level: FileConfig['log']['level']; readonly file?: string };
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
}

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
    log: { level: c.log.level, ...(c.log.file === undefined ? {} : { file: resolve(c.log.file) }) },
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
