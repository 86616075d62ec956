// The process-lifetime runtime: one immutable snapshot of everything a decision needs (validated
// configuration, compiled check pipelines, what to negotiate with the MTA), built off to the side
// from a Config and swapped whole on reload. Called by the daemon at start and on SIGHUP; pure
// apart from reading nothing (the Config already holds the files' contents).

import { SMFIF } from '../milter/constants.js';
import type { EventStage, MacroStage, PolicyNeeds } from '../milter/negotiate.js';
import { AddHeader } from '../rules/add-header.js';
import type { Check } from '../rules/check.js';
import { DomainSet } from '../rules/domain-set.js';
import { PolicyEngine } from '../rules/engine.js';
import type { Network } from '../rules/networks.js';
import { PostmasterExemption } from '../rules/postmaster.js';
import type { AccessDbOptions } from '../rules/access-db.js';
import { accessDbChecks } from '../rules/access-db.js';
import type { AccessSnapshot } from '../access-db/snapshot.js';
import { RelayGuard } from '../rules/relay-guard.js';
import type { Config } from './config.js';
import { VERSION } from './version.js';

export interface Runtime {
  readonly config: Config;
  /** The access map in force (null without access_db.file). */
  readonly accessDb: AccessSnapshot | null;
  readonly engine: PolicyEngine;
  readonly needs: PolicyNeeds;
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

export function buildChecks(config: Config, accessDb: AccessSnapshot | null = null): Check[] {
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
  if (config.addHeader.enabled)
    checks.push(new AddHeader(config.addHeader.name, config.addHeader.value, VERSION));
  return checks;
}

export function buildRuntime(
  config: Config,
  generation: number,
  accessDb: AccessSnapshot | null = null,
): Runtime {
  const engine = new PolicyEngine(buildChecks(config, accessDb), {
    observe: config.policy.observe,
    stageBudgetMs: config.policy.stage_budget,
  });
  const decideAt = new Set<EventStage>();
  for (const s of engine.stages) if (s !== 'eom') decideAt.add(s);
  const needs: PolicyNeeds = {
    decideAt,
    observe: new Set([...OBSERVED].filter((s) => !decideAt.has(s))),
    actions: (config.addHeader.enabled ? SMFIF.ADDHDRS : 0) | (accessDb !== null ? SMFIF.QUARANTINE : 0),
    macros: MACROS,
  };
  return { config, accessDb, engine, needs, generation, version: VERSION };
}
