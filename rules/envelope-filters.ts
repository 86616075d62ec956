// Envelope filters: route addresses and message size. Pure and synchronous.
//   route_address  a sender or recipient with `%` or `!` in it, or starting with `@` (a source
//                  route): sendmail-era relay tricks no legitimate mail needs today. The sender is
//                  judged at MAIL, each recipient at RCPT; the null sender is never refused for it.
//   message_size   `SIZE=` of MAIL FROM over the limit is refused at MAIL (RFC 1870: before the data
//                  is sent); the counted message (header and body as received) at end of message.

import type {
  Check,
  CheckBudget,
  CheckMode,
  CheckResult,
  OnError,
  PolicyInput,
  PolicyStage,
} from './check.js';
import { bareAddress } from './recipient-route.js';
import { expandReply } from './reply-template.js';

/** Why an address is a route address, or null. */
export function routeForm(address: string): string | null {
  const a = bareAddress(address);
  if (a === '') return null;
  if (a.startsWith('@')) return 'source route (starts with @)';
  if (a.includes('%')) return '% in the address';
  if (a.includes('!')) return '! in the address';
  return null;
}

export class RouteAddress implements Check {
  readonly name = 'route_address';
  readonly stages: readonly PolicyStage[] = ['mail', 'rcpt'];
  readonly budgetMs = 1000;
  readonly onError: OnError = 'continue';
  constructor(
    readonly mode: CheckMode,
    private readonly reply: string,
  ) {}
  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const subject = input.stage === 'mail' ? input.sender : input.recipient;
    if (subject === null) return { kind: 'pass' };
    const why = routeForm(subject);
    if (why === null) return { kind: 'pass' };
    const who = input.stage === 'mail' ? 'sender' : 'recipient';
    return {
      kind: 'hit',
      verdict: { action: 'reject', reply: expandReply(this.reply, { r: this.name }) },
      reason: `${who} ${subject}: ${why}`,
    };
  }
}

/** The SIZE= value of MAIL FROM, or null. */
export function declaredSize(args: readonly string[]): number | null {
  for (const a of args) {
    const m = /^SIZE=([0-9]{1,15})$/i.exec(a);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

export class MessageSize implements Check {
  readonly name = 'message_size';
  readonly stages: readonly PolicyStage[] = ['mail', 'eom'];
  readonly budgetMs = 1000;
  readonly onError: OnError = 'continue';
  readonly wants = 'headers' as const;
  constructor(
    readonly mode: CheckMode,
    private readonly max: number,
    private readonly reply: string,
  ) {}
  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const size =
      input.stage === 'mail'
        ? declaredSize(input.senderArgs)
        : input.content === undefined
          ? null
          : input.content.headerBytes + input.content.bodyBytes;
    if (size === null || size <= this.max) return { kind: 'pass' };
    const what = input.stage === 'mail' ? `SIZE=${size} declared` : `${size} bytes received`;
    return {
      kind: 'hit',
      verdict: { action: 'reject', reply: expandReply(this.reply, { r: this.name }) },
      reason: `${what}, limit ${this.max}`,
    };
  }
}
