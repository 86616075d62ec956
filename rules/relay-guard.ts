// Open-relay prevention, with sendmail's semantics (landscape.md §1.5.3 Rcpt_ok / Relay_ok). Runs at
// RCPT; pure and synchronous.
// A recipient is accepted when every host its address routes through is a local domain (class w),
// a relay domain (class R, with subdomains) or has a `To:` RELAY entry in the access map. Route
// forms are unfolded by ./recipient-route.ts, so `user%remote@local`, `remote!user@local`,
// `@local:user@remote` and `"user@remote"@local` are judged by their real destination.
// Otherwise the client must be allowed to relay, tried in sendmail's order:
//   1. SMTP AUTH ({auth_authen} set), a local-socket client, or a Postfix local submission;
//   2. its address: trusted_networks, an IP prefix listed in relay-domains, a `Connect:` RELAY
//      entry found by the IP walk;
//   3. with check_client_resolve, the MTA's {client_resolve}: TEMP ->
//      `450 4.4.0 Relaying temporarily denied. Cannot resolve PTR record for <ip>`, FORGED ->
//      `550 5.7.1 Relaying denied. IP name possibly forged <name>`, FAIL ->
//      `550 5.7.1 Relaying denied. IP name lookup failed <name>` (the name cannot be trusted);
//   4. its verified host name: a local or relay domain, or a `Connect:` RELAY entry (name walk).
// Anything else: `550 5.7.1 Relaying denied` (the `<rcpt>... ` prefix is the MTA's or the
// daemon's business, see daemon/policy-handler.ts).

import type { SmtpReply } from '../milter/reply-text.js';
import type { AccessDbOptions } from './access-db.js';
import { relayFrom, relayTo } from './access-db.js';
import type {
  Check,
  CheckBudget,
  CheckMode,
  CheckResult,
  ClientFacts,
  OnError,
  PolicyInput,
} from './check.js';
import type { DomainSet } from './domain-set.js';
import type { Network } from './networks.js';
import { findNetwork } from './networks.js';
import type { RecipientRoute } from './recipient-route.js';
import { recipientRoute } from './recipient-route.js';

export interface RelayGuardOptions {
  readonly localDomains: DomainSet;
  readonly relayDomains: DomainSet;
  /** trusted_networks plus relay-domains IP prefixes. */
  readonly trustedNetworks: readonly Network[];
  readonly trustAuthenticated: boolean;
  readonly trustLocalSockets: boolean;
  /** Refuse (450/550) when the MTA says the client's PTR name is unresolvable or forged. */
  readonly checkClientResolve: boolean;
  readonly reply: SmtpReply;
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  /** The access map, for `To:` and `Connect:` RELAY entries. */
  readonly access?: AccessDbOptions;
}

/** Why a client may relay whatever its address or name: AUTH, local sockets and submissions. */
function sessionPermission(
  client: ClientFacts,
  authAuthen: string | undefined,
  options: Pick<RelayGuardOptions, 'trustAuthenticated' | 'trustLocalSockets'>,
): string | null {
  if (options.trustAuthenticated && authAuthen !== undefined && authAuthen !== '') {
    return `client authenticated as ${authAuthen}`;
  }
  if (!options.trustLocalSockets) return null;
  if (client.ip === null) {
    return client.kind === 'unix' || client.kind === 'unknown'
      ? `local ${client.kind === 'unix' ? 'socket' : 'submission'} client`
      : null;
  }
  // Postfix's non_smtpd_milters see a simulated session from the loopback address with port 0,
  // which no SMTP client can have; refusing its recipients would leave local mail stuck.
  if (client.port === 0 && client.ip.range() === 'loopback') return 'local submission (loopback, port 0)';
  return null;
}

/** Why a client may relay, or null (without the access map or the PTR status: a pure helper). */
export function relayPermission(
  client: ClientFacts,
  authAuthen: string | undefined,
  options: Pick<RelayGuardOptions, 'trustedNetworks' | 'trustAuthenticated' | 'trustLocalSockets'>,
): string | null {
  const s = sessionPermission(client, authAuthen, options);
  if (s !== null) return s;
  if (client.ip !== null) {
    const net = findNetwork(client.ip, options.trustedNetworks);
    if (net !== null) return `client ${client.address} is in trusted network ${net.text}`;
  }
  return null;
}

type Judgement = {
  readonly remote: string | null;
  readonly route: RecipientRoute;
  readonly via: string | null;
  readonly entry?: string;
};

export class RelayGuard implements Check {
  readonly name = 'relay_guard';
  readonly stages = ['rcpt'] as const;
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;

  constructor(private readonly options: RelayGuardOptions) {
    this.mode = options.mode;
    this.budgetMs = options.budgetMs;
    this.onError = options.onError;
  }

  /** The first host of the route that is neither local nor relayable, or null if all are. */
  judge(recipient: string, input?: PolicyInput): Judgement {
    const route = recipientRoute(recipient);
    if (route.address === '') return { remote: '', route, via: null };
    let via: string | null = null;
    let entry: string | undefined;
    for (const h of route.hosts) {
      const local = this.options.localDomains.match(h);
      if (local !== null) {
        via ??= `local domain ${local}`;
        continue;
      }
      const relay = this.options.relayDomains.match(h);
      if (relay !== null) {
        via = `relay domain ${relay}`;
        continue;
      }
      const access = this.options.access;
      const e = access !== undefined && input !== undefined ? relayTo(access, h, input) : null;
      if (e !== null) {
        via = `${e.key} RELAY`;
        entry = e.where;
        continue;
      }
      return { remote: h, route, via };
    }
    return {
      remote: null,
      route,
      via: via ?? 'unqualified local recipient',
      ...(entry === undefined ? {} : { entry }),
    };
  }

  /** Steps 2-4 of the client's permission; a CheckResult when it decides, null when it may not relay. */
  private clientMay(input: PolicyInput): CheckResult | null {
    const o = this.options;
    const c = input.client;
    const s = sessionPermission(c, input.macro('auth_authen'), o);
    if (s !== null) return { kind: 'pass', reason: `may relay: ${s}` };
    if (c.ip !== null) {
      const net = findNetwork(c.ip, o.trustedNetworks);
      if (net !== null)
        return { kind: 'pass', reason: `may relay: client ${c.address} is in trusted network ${net.text}` };
      const byIp = o.access === undefined ? null : relayFrom(o.access, input, false);
      if (byIp !== null) return { kind: 'pass', reason: `may relay: ${byIp.key} RELAY`, entry: byIp.where };
    }
    if (o.checkClientResolve) {
      const resolve = input.macro('client_resolve')?.toUpperCase();
      const name = c.hostname;
      if (resolve === 'TEMP') {
        return tempfail(
          `Relaying temporarily denied. Cannot resolve PTR record for ${c.address}`,
          `PTR lookup of ${c.address} failed temporarily`,
        );
      }
      if (resolve === 'FORGED')
        return reject(
          `Relaying denied. IP name possibly forged ${name}`,
          `client name ${name} is possibly forged`,
        );
      if (resolve === 'FAIL')
        return reject(`Relaying denied. IP name lookup failed ${name}`, `client name lookup failed`);
    }
    const host = c.hostname.toLowerCase().replace(/\.$/, '');
    if (host.length > 0 && !host.startsWith('[')) {
      const local = o.localDomains.match(host);
      if (local !== null) return { kind: 'pass', reason: `may relay: client name ${host} is a local domain` };
      const relay = o.relayDomains.match(host);
      if (relay !== null)
        return { kind: 'pass', reason: `may relay: client name ${host} is in relay domain ${relay}` };
      const byName = o.access === undefined ? null : relayFrom(o.access, input, true);
      if (byName !== null)
        return { kind: 'pass', reason: `may relay: ${byName.key} RELAY`, entry: byName.where };
    }
    return null;
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const recipient = input.recipient ?? '';
    const { remote, route, via, entry } = this.judge(recipient, input);
    if (remote === null)
      return { kind: 'pass', reason: via ?? 'local', ...(entry === undefined ? {} : { entry }) };
    const may = this.clientMay(input);
    if (may !== null) return may;
    const what =
      remote === '' ? 'empty recipient address' : `${JSON.stringify(remote)} is not a local or relay domain`;
    const dest =
      route.destination !== null && route.destination !== remote
        ? ` (final destination ${route.destination})`
        : '';
    return {
      kind: 'hit',
      verdict: { action: 'reject', reply: this.options.reply },
      reason: `${what}${dest}`,
    };
  }
}

function tempfail(text: string, reason: string): CheckResult {
  return { kind: 'hit', verdict: { action: 'tempfail', reply: { code: 450, dsn: '4.4.0', text } }, reason };
}

function reject(text: string, reason: string): CheckResult {
  return { kind: 'hit', verdict: { action: 'reject', reply: { code: 550, dsn: '5.7.1', text } }, reason };
}
