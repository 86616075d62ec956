// Open-relay prevention, with sendmail's semantics (landscape.md §1.5.3): a recipient may be
// accepted when every host its address routes through is a local domain (class w) or a relay
// domain (class R), or when the client may relay: its IP is in trusted_networks (or in an IP
// prefix listed in relay-domains, as class R allows), it is a local-socket client or a Postfix
// local submission (loopback address, port 0), or it
// authenticated with SMTP AUTH ({auth_authen} set). Anything else is refused with sendmail's
// `550 5.7.1 Relaying denied` (the `<rcpt>... ` prefix is the MTA's business, see daemon/).
// Route forms are unfolded by ./recipient-route.ts, so `user%remote@local`, `remote!user@local`,
// `@local:user@remote` and `"user@remote"@local` are judged by their real destination.
// Runs at RCPT; pure and synchronous.

import type { SmtpReply } from '../milter/reply-text.js';
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
import { recipientRoute } from './recipient-route.js';

export interface RelayGuardOptions {
  readonly localDomains: DomainSet;
  readonly relayDomains: DomainSet;
  /** trusted_networks plus relay-domains IP prefixes. */
  readonly trustedNetworks: readonly Network[];
  readonly trustAuthenticated: boolean;
  readonly trustLocalSockets: boolean;
  readonly reply: SmtpReply;
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
}

/** Why a client may relay, or null. */
export function relayPermission(
  client: ClientFacts,
  authAuthen: string | undefined,
  options: Pick<RelayGuardOptions, 'trustedNetworks' | 'trustAuthenticated' | 'trustLocalSockets'>,
): string | null {
  if (client.ip !== null) {
    const net = findNetwork(client.ip, options.trustedNetworks);
    if (net !== null) return `client ${client.address} is in trusted network ${net.text}`;
    // Postfix's non_smtpd_milters see a simulated session from the loopback address with port 0,
    // which no SMTP client can have; refusing its recipients would leave local mail stuck.
    if (options.trustLocalSockets && client.port === 0 && client.ip.range() === 'loopback') {
      return 'local submission (loopback, port 0)';
    }
  } else if (options.trustLocalSockets && (client.kind === 'unix' || client.kind === 'unknown')) {
    return `local ${client.kind === 'unix' ? 'socket' : 'submission'} client`;
  }
  if (options.trustAuthenticated && authAuthen !== undefined && authAuthen !== '') {
    return `client authenticated as ${authAuthen}`;
  }
  return null;
}

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
  remoteHost(recipient: string): {
    remote: string | null;
    route: ReturnType<typeof recipientRoute>;
    via: string | null;
  } {
    const route = recipientRoute(recipient);
    if (route.address === '') return { remote: '', route, via: null };
    let via: string | null = null;
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
      return { remote: h, route, via };
    }
    return { remote: null, route, via: via ?? 'unqualified local recipient' };
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const recipient = input.recipient ?? '';
    const { remote, route, via } = this.remoteHost(recipient);
    if (remote === null) return { kind: 'pass', reason: via ?? 'local' };
    const permission = relayPermission(input.client, input.macro('auth_authen'), this.options);
    if (permission !== null) return { kind: 'pass', reason: `may relay: ${permission}` };
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
