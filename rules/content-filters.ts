// The classic header filters that run at end of message on the header alone (rules of thumb every
// gateway admin knows; landscape.md §1.9): an advertisement Subject, "Space Patrol" (a Subject with
// a long run of spaces, a mass-mailer tell), and a missing or malformed Message-ID. Each is its own
// check with its own mode (enforce / observe / tag) and reply. Pure and synchronous.

import type { Check, CheckBudget, CheckMode, CheckResult, OnError, PolicyInput } from './check.js';
import { decodeHeader } from './header-text.js';
import { expandReply } from './reply-template.js';

abstract class HeaderFilter implements Check {
  abstract readonly name: string;
  readonly stages = ['eom'] as const;
  readonly budgetMs = 1000;
  readonly onError: OnError = 'continue';
  readonly wants = 'headers' as const;
  constructor(
    readonly mode: CheckMode,
    protected readonly reply: string,
  ) {}
  abstract run(input: PolicyInput, budget: CheckBudget): CheckResult;
  protected refuse(reason: string): CheckResult {
    return {
      kind: 'hit',
      verdict: { action: 'reject', reply: expandReply(this.reply, { r: this.name }) },
      reason,
    };
  }
}

/** Subject starting with ADV:, AD:, ADVERTISEMENT (after decoding, leading spaces ignored). */
export class AdvertisementSubject extends HeaderFilter {
  readonly name = 'advertisement';
  private readonly prefixes: readonly string[];
  constructor(mode: CheckMode, reply: string, prefixes: readonly string[]) {
    super(mode, reply);
    this.prefixes = prefixes.map((p) => p.toUpperCase());
  }
  run(input: PolicyInput): CheckResult {
    const raw = input.content?.header('subject');
    if (raw === undefined) return { kind: 'pass' };
    const subject = decodeHeader(raw).trimStart().toUpperCase();
    const hit = this.prefixes.find((p) => subject.startsWith(p));
    return hit === undefined ? { kind: 'pass' } : this.refuse(`Subject starts with ${JSON.stringify(hit)}`);
  }
}

/** A Subject with `spaces` or more consecutive spaces. */
export class SpacePatrol extends HeaderFilter {
  readonly name = 'space_patrol';
  private readonly run_: RegExp;
  constructor(
    mode: CheckMode,
    reply: string,
    private readonly spaces: number,
  ) {
    super(mode, reply);
    this.run_ = new RegExp(` {${spaces},}`);
  }
  run(input: PolicyInput): CheckResult {
    const raw = input.content?.header('subject');
    if (raw === undefined) return { kind: 'pass' };
    return this.run_.test(decodeHeader(raw))
      ? this.refuse(`Subject has ${this.spaces} or more consecutive spaces`)
      : { kind: 'pass' };
  }
}

export interface MessageIdRules {
  readonly missing: boolean;
  readonly noAt: boolean;
  readonly malformed: boolean;
}

/** RFC 5322 msg-id: `<` id-left `@` id-right `>`, no spaces inside. */
const MSG_ID = /^<[^<>@\s]+@[^<>@\s]+>$/;

export class MessageIdCheck extends HeaderFilter {
  readonly name = 'message_id';
  constructor(
    mode: CheckMode,
    reply: string,
    private readonly rules: MessageIdRules,
  ) {
    super(mode, reply);
  }
  run(input: PolicyInput): CheckResult {
    const raw = input.content?.header('message-id');
    if (raw === undefined) return this.rules.missing ? this.refuse('no Message-ID header') : { kind: 'pass' };
    const id = decodeHeader(raw).trim();
    if (this.rules.noAt && !id.includes('@')) return this.refuse(`Message-ID ${JSON.stringify(id)} has no @`);
    if (this.rules.malformed && !MSG_ID.test(id))
      return this.refuse(`Message-ID ${JSON.stringify(id)} is not <left@right>`);
    return { kind: 'pass' };
  }
}
