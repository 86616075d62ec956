// Spam traps: an address nobody legitimate writes to. A client that sends to one is refused for that
// recipient and then shut out — every recipient refused — for `ban` time, on this gateway and (with
// a shared BanStore) on every other; the ban is logged (event `client_banned`) by the daemon through
// onBan. Runs at RCPT after the postmaster exemption. Synchronous with the memory store.

import type { Check, CheckBudget, CheckMode, CheckResult, OnError, PolicyInput } from './check.js';
import type { Ban, BanStore } from './ban-store.js';
import { bareAddress } from './recipient-route.js';
import { expandReply } from './reply-template.js';

export interface SpamTrapOptions {
  readonly mode: CheckMode;
  readonly addresses: readonly string[];
  readonly banMs: number;
  readonly reply: string;
  readonly bannedReply: string;
  readonly store: BanStore;
  readonly onBan?: (client: string, reason: string, ms: number) => void;
}

function banKey(address: string): string {
  return `trap:${address}`;
}

export class SpamTrap implements Check {
  readonly name = 'spam_trap';
  readonly stages = ['rcpt'] as const;
  readonly budgetMs = 1000;
  readonly onError: OnError = 'continue';
  readonly mode: CheckMode;
  private readonly traps: ReadonlySet<string>;

  constructor(private readonly o: SpamTrapOptions) {
    this.mode = o.mode;
    this.traps = new Set(o.addresses.map((a) => bareAddress(a).toLowerCase()));
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const client = input.client.address;
    const decide = (ban: Ban | null): CheckResult => {
      const rcpt = bareAddress(input.recipient ?? '').toLowerCase();
      if (this.traps.has(rcpt)) {
        if (this.mode === 'enforce' && client !== '') {
          const reason = `sent to spam trap ${rcpt}`;
          void this.o.store.ban(banKey(client), reason, this.o.banMs);
          this.o.onBan?.(client, reason, this.o.banMs);
        }
        return {
          kind: 'hit',
          verdict: { action: 'reject', reply: expandReply(this.o.reply, { r: this.name }) },
          reason: `recipient ${rcpt} is a spam trap`,
        };
      }
      if (ban !== null) {
        return {
          kind: 'hit',
          verdict: { action: 'reject', reply: expandReply(this.o.bannedReply, { r: this.name }) },
          reason: `client ${client} is banned until ${new Date(ban.until).toISOString()}: ${ban.reason}`,
        };
      }
      return { kind: 'pass' };
    };
    const ban = client === '' ? null : this.o.store.banned(banKey(client));
    return ban instanceof Promise ? ban.then(decide) : decide(ban);
  }
}
