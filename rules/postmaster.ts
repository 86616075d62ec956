// RFC 5321 §4.5.1: mail to postmaster of a local domain (and to a bare `<postmaster>`) must be
// accepted. This check runs first at RCPT and answers `ok`, so no later check of the stage can
// refuse it. Route forms count by their real destination (`postmaster%remote@local` is not local
// postmaster). Pure and synchronous.

import type { Check, CheckBudget, CheckResult, PolicyInput } from './check.js';
import { OK } from './check.js';
import type { DomainSet } from './domain-set.js';
import { recipientRoute } from './recipient-route.js';

export class PostmasterExemption implements Check {
  readonly name = 'postmaster';
  readonly stages = ['rcpt'] as const;
  readonly mode = 'enforce' as const;
  readonly budgetMs = 1000;
  readonly onError = 'continue' as const;

  constructor(private readonly localDomains: DomainSet) {}

  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const recipient = input.recipient;
    if (recipient === null || !/postmaster/i.test(recipient)) return { kind: 'pass' };
    const route = recipientRoute(recipient);
    if (route.localPart.toLowerCase() !== 'postmaster') return { kind: 'pass' };
    for (const h of route.hosts) if (this.localDomains.match(h) === null) return { kind: 'pass' };
    return { kind: 'hit', verdict: OK, reason: 'postmaster of a local domain is always accepted' };
  }
}
