// The process-lifetime runtime: one immutable snapshot of everything a decision needs (validated
// configuration, compiled check pipelines, what to negotiate with the MTA), built off to the side
// from a Config and swapped whole on reload. Called by the daemon at start and on SIGHUP; pure
// apart from reading nothing (the Config already holds the files' contents).

import { SMFIF } from '../milter/constants.js';
import type { Decision } from '../milter/handler.js';
import type { EventStage, MacroStage, PolicyNeeds } from '../milter/negotiate.js';
import { AddHeader } from '../rules/add-header.js';
import type { Check, PolicyInput, PolicyStage } from '../rules/check.js';
import { DomainSet } from '../rules/domain-set.js';
import type { EngineOptions, StageOutcome } from '../rules/engine.js';
import { PolicyEngine } from '../rules/engine.js';
import type { Network } from '../rules/networks.js';
import { PostmasterExemption } from '../rules/postmaster.js';
import type { AccessDbOptions } from '../rules/access-db.js';
import { accessDbChecks } from '../rules/access-db.js';
import type { AccessSnapshot } from '../access-db/snapshot.js';
import type { BodyScanner } from '../rules/check.js';
import type { ContentLimits } from './message-content.js';
import type { BanStore } from '../rules/ban-store.js';
import { MemoryBanStore } from '../rules/ban-store.js';
import { AdvertisementSubject, MessageIdCheck, SpacePatrol } from '../rules/content-filters.js';
import type { DnsCacheObserver, DnsLookup } from '../rules/dns-cache.js';
import { DnsCache } from '../rules/dns-cache.js';
import type { DnsblObserver, ZoneSpec } from '../rules/dnsbl.js';
import { DnsblCheck, RhsblCheck, ZoneHealth } from '../rules/dnsbl.js';
import { MessageSize, RouteAddress } from '../rules/envelope-filters.js';
import { HeaderRules } from '../rules/header-rules.js';
import { AttachmentFilter } from '../rules/attachment-filter.js';
import { AttachmentScanner, DEFAULT_DANGEROUS_EXTENSIONS, extensionSet } from '../rules/attachments.js';
import { SpamTrap } from '../rules/spam-trap.js';
import { NodeDnsLookup } from './dns-resolver.js';
import { RelayGuard } from '../rules/relay-guard.js';
import type { RateLimitSpec } from '../rules/rate-limit.js';
import { BadRecipientThrottle, RateLimit } from '../rules/rate-limit.js';
import type { RateStore } from '../rules/rate-store.js';
import { MemoryRateStore } from '../rules/rate-store.js';
import { RedisRateStore } from './redis-store.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { RATE_LIMIT_REPLIES } from './config.js';
import type { Config } from './config.js';
import { VERSION } from './version.js';

export interface Runtime {
  readonly config: Config;
  /** The access map in force (null without access_db.file). */
  readonly accessDb: AccessSnapshot | null;
  readonly engine: PolicyEngine;
  readonly needs: PolicyNeeds;
  /** Limits on what is kept of a message's header for content checks. */
  readonly contentLimits: ContentLimits;
  /** A new MIME walker for one message (when a check wants the body). */
  bodyScanner(): BodyScanner;
  readonly services: Services;
  /** 1 at start, +1 per successful reload; named in decision lines. */
  readonly generation: number;
  readonly version: string;
}

/**
 * Macros asked for through the v6 symlist. Each list replaces the MTA's configured list for this
 * milter, so it covers everything the README snippets configure.
 */
const MACROS: Partial<Record<MacroStage, readonly string[]>> = {
  connect: [
    'j',
    '_',
    'v',
    '{daemon_name}',
    '{daemon_addr}',
    '{client_addr}',
    '{client_name}',
    '{client_ptr}',
    '{client_resolve}',
  ],
  mail: ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}'],
  rcpt: ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}'],
  data: ['i'],
  eoh: ['i'],
  eom: ['i', '{msg_id}'],
};

/** Events recorded for every connection (context for checks and logs) without a reply. */
const OBSERVED: ReadonlySet<EventStage> = new Set<EventStage>(['connect', 'helo', 'mail']);

/**
 * Process-lifetime services the checks share across reloads: the DNS cache (and its resolver), the
 * blocklist zones' health, the ban store.
 */
export interface Services {
  readonly dns: DnsLookup;
  readonly health: ZoneHealth;
  readonly bans: BanStore;
  /** Rate-limit buckets and connection leases (memory, or Redis shared by several gateways). */
  readonly rates: RateStore;
  /** This process, unique across gateways (rate-limit lease ids). */
  readonly instance: string;
  /** Told when a client is banned (the daemon logs it). */
  readonly onBan?: (client: string, reason: string, ms: number) => void;
  /** The daemon's metrics, when they are on. */
  readonly observer?: RuntimeObserver;
  /** Releases what the services hold (the Redis connection); the daemon calls it at exit and
   *  when a reload replaces the stores. */
  close(): Promise<void>;
}

/** What the daemon wants to hear from the services. */
export interface ServiceEvents {
  readonly onBan?: (client: string, reason: string, ms: number) => void;
  /** The shared store went away or came back (the store's own failure policy applies meanwhile). */
  readonly onStoreState?: (state: 'up' | 'down', detail: string) => void;
  /** A shared-store call failed (counted; the failure policy answered it). */
  readonly onStoreError?: (kind: 'reply' | 'unavailable') => void;
  /** Metrics: handed to the DNS cache, the blocklist checks, the engine and the policy adapter. */
  readonly observer?: RuntimeObserver;
}

/** What the metrics (daemon/metrics.ts) want to hear from the runtime; every part optional. */
export interface RuntimeObserver {
  readonly dnsCache?: DnsCacheObserver;
  readonly dnsbl?: DnsblObserver;
  /** The engine took `ms` to decide a stage. */
  stage?(stage: PolicyStage, ms: number): void;
  /** One decision line (the policy adapter's logDecision): `rule` as the line names it. */
  decision?(
    stage: PolicyStage,
    decision: Decision,
    rule: string | null,
    outcome: StageOutcome,
    reply: string | null,
  ): void;
}

interface StoreServices {
  readonly bans: BanStore;
  readonly rates: RateStore;
  close(): Promise<void>;
}

function createStores(config: Config, events: ServiceEvents): StoreServices {
  const s = config.store;
  const local = { rates: new MemoryRateStore({ maxKeys: s.max_keys }), bans: new MemoryBanStore(s.max_keys) };
  // lru-cache allocates for max_keys up front (about 0.3 s for a million): at start, not in the
  // first session (or the first call of an outage, for the Redis store's fallback).
  const r = config.rateLimits;
  if (r.limits.length > 0 || r.access_db || r.bad_recipients.enabled || s.type === 'redis')
    local.rates.warm();
  if (r.bad_recipients.enabled || config.filters.spam_trap.enabled || s.type === 'redis') local.bans.warm();
  if (s.type === 'memory') return { ...local, close: () => Promise.resolve() };
  const redis = new RedisRateStore({
    url: s.redis.url,
    ...(s.redis.cluster === undefined ? {} : { cluster: s.redis.cluster }),
    prefix: s.redis.prefix,
    timeoutMs: s.redis.timeout,
    onFailure: s.redis.on_failure,
    local,
    ...(events.onStoreState === undefined ? {} : { onState: events.onStoreState }),
    ...(events.onStoreError === undefined ? {} : { onCallError: events.onStoreError }),
  });
  return { rates: redis, bans: redis, close: () => redis.close() };
}

const INSTANCE = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/**
 * Services for a configuration: a caching resolver with its dnsbl settings, the stores. Parts
 * whose settings did not change are taken over from `previous` (a reload keeps the DNS cache, the
 * rate-limit buckets and the bans); the caller closes the previous services' replaced stores with
 * `retire`.
 */
export function createServices(
  config: Config,
  events: ServiceEvents = {},
  previous?: { readonly services: Services; readonly config: Config },
): Services {
  const keepDns = previous !== undefined && dnsKey(previous.config) === dnsKey(config);
  const keepStores = previous !== undefined && storeKey(previous.config) === storeKey(config);
  const dnsParts = keepDns
    ? { dns: previous.services.dns, health: previous.services.health }
    : createDns(config, events.observer?.dnsCache);
  const stores: StoreServices = keepStores ? previous.services : createStores(config, events);
  return {
    ...dnsParts,
    bans: stores.bans,
    rates: stores.rates,
    instance: INSTANCE,
    ...(events.onBan === undefined ? {} : { onBan: events.onBan }),
    ...(events.observer === undefined ? {} : { observer: events.observer }),
    close: () => stores.close(),
  };
}

/** The previous services' stores, when `next` no longer uses them: closed. */
export async function retireServices(previous: Services, next: Services): Promise<void> {
  if (previous.rates !== next.rates) await previous.close();
}

function dnsKey(config: Config): string {
  const d = config.dnsbl;
  return JSON.stringify([d.servers, d.timeout, d.tries, d.cache]);
}

function storeKey(config: Config): string {
  return JSON.stringify(config.store);
}

function createDns(
  config: Config,
  observer: DnsCacheObserver | undefined,
): { dns: DnsLookup; health: ZoneHealth } {
  const d = config.dnsbl;
  const upstream = new NodeDnsLookup({
    ...(d.servers === undefined ? {} : { servers: d.servers }),
    timeoutMs: d.timeout,
    tries: d.tries,
  });
  const dns = new DnsCache(upstream, {
    maxEntries: d.cache.max_entries,
    minTtlMs: d.cache.min_ttl,
    maxTtlMs: d.cache.max_ttl,
    negativeTtlMs: d.cache.negative_ttl,
    ...(observer === undefined ? {} : { observer }),
  });
  return { dns, health: new ZoneHealth() };
}

function zoneSpec(z: Config['dnsbl']['zones'][number]): ZoneSpec {
  return {
    zone: z.zone,
    answers: z.answers,
    weight: z.weight,
    action: z.action,
    reply: z.reply,
    onError: z.on_error,
    tempfailReply: z.tempfail_reply,
  };
}

function filterChecks(
  config: Config,
  services: Services,
  trustedNetworks: readonly Network[],
  access: AccessDbOptions | undefined,
): { rcpt: Check[]; mail: Check[]; eom: Check[] } {
  const f = config.filters;
  const d = config.dnsbl;
  const rcpt: Check[] = [];
  const eom: Check[] = [];
  if (f.spam_trap.enabled) {
    rcpt.push(
      new SpamTrap({
        mode: f.spam_trap.mode,
        addresses: f.spam_trap.addresses,
        banMs: f.spam_trap.ban,
        reply: f.spam_trap.reply,
        bannedReply: f.spam_trap.banned_reply,
        store: services.bans,
        ...(services.onBan === undefined ? {} : { onBan: services.onBan }),
      }),
    );
  }
  const dnsblObserver = services.observer?.dnsbl;
  const exemptions = {
    trustedNetworks,
    trustAuthenticated: config.relayGuard.trustAuthenticated,
    ...(access === undefined ? {} : { access }),
    ...(dnsblObserver === undefined ? {} : { observer: dnsblObserver }),
  };
  if (d.zones.length > 0) {
    rcpt.push(
      new DnsblCheck({
        dns: services.dns,
        zones: d.zones.map(zoneSpec),
        threshold: d.threshold,
        stage: d.stage,
        mode: d.mode,
        budgetMs: d.budget,
        health: services.health,
        ...exemptions,
      }),
    );
  }
  if (d.rhsbl.length > 0) {
    rcpt.push(
      new RhsblCheck({
        dns: services.dns,
        zones: d.rhsbl.map((z) => ({ ...zoneSpec({ ...z, weight: 1, probe: false }), targets: z.targets })),
        stage: d.stage,
        mode: d.mode,
        budgetMs: d.budget,
        ...exemptions,
      }),
    );
  }
  if (f.route_address.enabled) rcpt.push(new RouteAddress(f.route_address.mode, f.route_address.reply));
  if (f.message_size.enabled)
    eom.push(new MessageSize(f.message_size.mode, f.message_size.max, f.message_size.reply));
  if (f.advertisement.enabled)
    eom.push(new AdvertisementSubject(f.advertisement.mode, f.advertisement.reply, f.advertisement.prefixes));
  if (f.space_patrol.enabled)
    eom.push(new SpacePatrol(f.space_patrol.mode, f.space_patrol.reply, f.space_patrol.spaces));
  if (f.message_id.enabled) {
    eom.push(
      new MessageIdCheck(f.message_id.mode, f.message_id.reply, {
        missing: f.message_id.missing,
        noAt: f.message_id.no_at,
        malformed: f.message_id.malformed,
      }),
    );
  }
  if (f.attachments.enabled) {
    eom.push(
      new AttachmentFilter({
        mode: f.attachments.mode,
        extensions: extensionSet(f.attachments.extensions ?? DEFAULT_DANGEROUS_EXTENSIONS),
        overLimit: f.attachments.over_limit,
        reply: f.attachments.reply,
        overLimitReply: f.attachments.over_limit_reply,
        budgetMs: 4000,
      }),
    );
  }
  if (f.header_rules.length > 0) {
    eom.push(
      new HeaderRules(
        'enforce',
        f.header_rules.map((r, i) => ({ ...r, name: r.name ?? `rule${i + 1}` })),
        f.header_rule_max_input,
      ),
    );
  }
  return { rcpt, mail: [], eom };
}

export function buildChecks(
  config: Config,
  accessDb: AccessSnapshot | null = null,
  services: Services = createServices(config),
): Check[] {
  const local = new DomainSet(
    config.localDomains.flatMap((e) => (e.kind === 'domain' ? [e.name] : [])),
    false,
  );
  const relay = new DomainSet(
    config.relayDomains.flatMap((e) => (e.kind === 'domain' ? [e.name] : [])),
    !config.relayHostsOnly,
  );
  const relayFrom: Network[] = config.relayDomains.flatMap((e) => (e.kind === 'network' ? [e.network] : []));
  const checks: Check[] = [];
  const a = config.accessDb;
  const access: AccessDbOptions | undefined =
    a === null || accessDb === null
      ? undefined
      : {
          snapshot: accessDb,
          localDomains: local,
          blocklistRecipients: a.blocklistRecipients,
          delayChecks: a.delayChecks,
          spam: a.spam,
          lookupdotdomain: a.lookupdotdomain,
          trustAuthenticated: config.relayGuard.trustAuthenticated,
          mode: a.mode,
          budgetMs: 1000,
          onError: a.onError ?? config.policy.on_error,
        };
  const accessChecks = access === undefined ? { beforeRelay: [], afterRelay: [] } : accessDbChecks(access);
  const rate = rateLimitChecks(config, services, [...config.trustedNetworks, ...relayFrom], access);
  // The dictionary-attack throttle first: a client probing names gets 4xx, not the map's 550s.
  if (rate.throttle !== null) checks.push(rate.throttle);
  // sendmail's order: recipient entry, relaying, then (delay_checks) sender and client entries;
  // postmaster is exempt from the automatic checks that follow, not from explicit entries.
  checks.push(...accessChecks.beforeRelay);
  if (config.relayGuard.enabled) {
    checks.push(
      new RelayGuard({
        localDomains: local,
        relayDomains: relay,
        trustedNetworks: [...config.trustedNetworks, ...relayFrom],
        trustAuthenticated: config.relayGuard.trustAuthenticated,
        trustLocalSockets: config.relayGuard.trustLocalSockets,
        reply: config.relayGuard.reply,
        checkClientResolve: config.relayGuard.checkClientResolve,
        ...(access === undefined ? {} : { access }),
        mode: config.relayGuard.mode,
        budgetMs: config.relayGuard.budgetMs,
        onError: config.relayGuard.onError ?? config.policy.on_error,
      }),
    );
  }
  checks.push(...accessChecks.afterRelay);
  if (config.postmasterAlwaysAccept) checks.push(new PostmasterExemption(local));
  // The automatic checks, after the postmaster exemption and after every access entry: an access
  // OK/RELAY (or FRIEND) ends the stage before them, as sendmail skips its DNSBLs for such clients.
  // Rate and connection control, then the DNSBLs: sendmail's check_relay order.
  if (rate.limits !== null) checks.push(rate.limits);
  const filters = filterChecks(config, services, [...config.trustedNetworks, ...relayFrom], access);
  checks.push(...filters.rcpt, ...filters.eom);
  if (config.addHeader.enabled)
    checks.push(new AddHeader(config.addHeader.name, config.addHeader.value, VERSION));
  return checks;
}

/** rate_limits: the limits check (null when nothing is limited) and the bad-recipient throttle. */
function rateLimitChecks(
  config: Config,
  services: Services,
  trustedNetworks: readonly Network[],
  access: AccessDbOptions | undefined,
): { limits: RateLimit | null; throttle: BadRecipientThrottle | null } {
  const r = config.rateLimits;
  const common = {
    store: services.rates,
    bans: services.bans,
    terminate: r.terminate,
    allow: r.allow,
    trustedNetworks,
    trustAuthenticated: config.relayGuard.trustAuthenticated,
    ...(access === undefined ? {} : { access }),
    mode: r.mode,
    budgetMs: r.budget,
    onError: r.on_error ?? config.policy.on_error,
    ...(services.onBan === undefined ? {} : { onBan: services.onBan }),
  };
  const limits: RateLimitSpec[] = r.limits.map((l) => ({
    name: l.name,
    counts: l.counts,
    by: l.by,
    ipv4Prefixes: l.ipv4_prefixes,
    ipv6Prefixes: l.ipv6_prefixes,
    limit: { rate: l.rate, perMs: l.per, burst: l.burst ?? l.rate },
    countRefused: l.count_refused,
    reply: l.reply ?? RATE_LIMIT_REPLIES[l.counts],
  }));
  const accessLimits =
    r.access_db && access !== undefined
      ? { access, windowMs: r.window, rateReply: r.client_rate_reply, connReply: r.client_conn_reply }
      : null;
  const b = r.bad_recipients;
  return {
    limits:
      limits.length > 0 || accessLimits !== null
        ? new RateLimit({
            ...common,
            limits,
            accessLimits,
            reportAt: r.report_at,
            leaseMs: r.lease,
            instance: services.instance,
          })
        : null,
    throttle:
      b.enabled && (b.per_connection > 0 || b.per_source > 0)
        ? new BadRecipientThrottle({
            ...common,
            spec: {
              perConnection: b.per_connection,
              perSource: b.per_source,
              windowMs: b.window,
              ipv4Prefix: b.ipv4_prefix,
              ipv6Prefix: b.ipv6_prefix,
              reply: b.reply,
              banMs: b.ban,
              bannedReply: b.banned_reply,
            },
          })
        : null,
  };
}

/** The MIME walker for one message (filters.attachments). */
function newBodyScanner(config: Config): BodyScanner {
  const a = config.filters.attachments;
  const scanner = new AttachmentScanner({
    maxDepth: a.max_depth,
    maxParts: a.max_parts,
    maxBytes: a.max_bytes,
  });
  return {
    writeHeaders: (headers) => scanner.writeHeaders(headers),
    writeBody: (chunk) => {
      scanner.writeBody(chunk);
    },
    end: () => scanner.end(),
  };
}

/** The engine with each stage's evaluation time told to the metrics. */
class TimedPolicyEngine extends PolicyEngine {
  constructor(
    checks: readonly Check[],
    options: EngineOptions,
    private readonly observer: RuntimeObserver,
  ) {
    super(checks, options);
  }

  override evaluate(stage: PolicyStage, input: PolicyInput): StageOutcome | Promise<StageOutcome> {
    if (!this.stages.has(stage)) return super.evaluate(stage, input);
    const started = performance.now();
    const r = super.evaluate(stage, input);
    if (!(r instanceof Promise)) {
      this.observer.stage?.(stage, performance.now() - started);
      return r;
    }
    return r.then((o) => {
      this.observer.stage?.(stage, performance.now() - started);
      return o;
    });
  }
}

export function buildRuntime(
  config: Config,
  generation: number,
  accessDb: AccessSnapshot | null = null,
  services: Services = createServices(config),
): Runtime {
  const checks = buildChecks(config, accessDb, services);
  const engineOptions: EngineOptions = {
    observe: config.policy.observe,
    stageBudgetMs: config.policy.stage_budget,
  };
  const observer = services.observer;
  const engine =
    observer?.stage === undefined
      ? new PolicyEngine(checks, engineOptions)
      : new TimedPolicyEngine(checks, engineOptions, observer);
  const decideAt = new Set<EventStage>();
  for (const s of engine.stages) if (s !== 'eom') decideAt.add(s);
  const observed = new Set<EventStage>(OBSERVED);
  for (const s of engine.watched) if (s !== 'eom') observed.add(s);
  if (engine.content !== 'none') observed.add('header');
  if (engine.content === 'body') observed.add('body');
  const needs: PolicyNeeds = {
    decideAt,
    observe: new Set([...observed].filter((s) => !decideAt.has(s))),
    // Tag mode adds headers too, so ADDHDRS is asked for whenever something may add one.
    actions: SMFIF.ADDHDRS | (accessDb !== null ? SMFIF.QUARANTINE : 0),
    macros: MACROS,
  };
  return {
    config,
    accessDb,
    engine,
    needs,
    generation,
    version: VERSION,
    contentLimits: { maxHeaders: config.limits.max_headers, maxHeaderBytes: config.limits.max_header_bytes },
    bodyScanner: () => newBodyScanner(config),
    services,
  };
}
