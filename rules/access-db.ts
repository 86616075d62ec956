// sendmail's access_db checks (FEATURE(access_db), blocklist_recipients, delay_checks; landscape.md
// §1.5), as checks of the policy engine. Pure and synchronous: they read an immutable
// AccessSnapshot and remember per-connection and per-transaction lookups in the input's memo.
//
// With delay_checks (the default) everything is decided at RCPT, so each refusal names its
// recipient and per-recipient exceptions work; the order is sendmail's:
//   access_recipient  To: lookup of the recipient (blocklist_recipients): REJECT ->
//                     `550 5.2.1 <rcpt>... Mailbox disabled for this recipient`; DISCARD and
//                     QUARANTINE accept at once (no relay check, as sendmail)
//   relay_guard       (./relay-guard.ts, fed `To:` and `Connect:` RELAY entries from here)
//   delay_checks      authenticated clients skip the rest; with `spam: friend` a recipient
//                     whose `Spam:` entry is FRIEND skips it, with `spam: hater` only HATER
//                     recipients get it
//   access_sender     From: lookup (F, U, D; `<>` never): OK/RELAY accepts and skips the client
//                     checks, REJECT -> `550 5.7.1 <rcpt>... Access denied`
//   access_client     Connect: lookup (host name walk, then IP walk): OK/RELAY accepts (later
//                     DNSBL and rate checks skip this client), REJECT -> `550 5.7.1 Access denied`
// Without delay_checks the client and sender checks run at MAIL (a milter cannot give a reply
// text at connect under sendmail; sendmail itself reports a Connect: refusal at MAIL too).

import type { SmtpReply } from '../milter/reply-text.js';
import type { AccessAction } from '../access-db/rhs.js';
import type { AccessEntry, AccessSnapshot } from '../access-db/snapshot.js';
import type { AddressPart, WalkOptions, WalkResult, WalkStep } from '../access-db/walk.js';
import { addressWalk, hostWalk, ipWalk, NOT_FOUND } from '../access-db/walk.js';
import { normaliseIpv6Text } from '../access-db/keys.js';
import type {
  Check,
  CheckBudget,
  CheckMode,
  CheckResult,
  ClientFacts,
  OnError,
  PolicyInput,
  PolicyStage,
} from './check.js';
import { OK } from './check.js';
import type { DomainSet } from './domain-set.js';
import { bareAddress, recipientRoute } from './recipient-route.js';

export interface AccessDbOptions {
  readonly snapshot: AccessSnapshot;
  readonly localDomains: DomainSet;
  readonly blocklistRecipients: boolean;
  readonly delayChecks: boolean;
  readonly spam: 'none' | 'friend' | 'hater';
  readonly lookupdotdomain: boolean;
  readonly trustAuthenticated: boolean;
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
}

/** sendmail 8.18's default texts (confREJECT_MSG, confRCPTREJ_MSG). */
export const ACCESS_DENIED: SmtpReply = { code: 550, dsn: '5.7.1', text: 'Access denied' };
export const MAILBOX_DISABLED: SmtpReply = {
  code: 550,
  dsn: '5.2.1',
  text: 'Mailbox disabled for this recipient',
};

export interface LookupWithSteps extends WalkResult {
  readonly steps?: readonly WalkStep[];
}

function walkOptions(
  o: AccessDbOptions,
  input: PolicyInput,
  untagged: boolean,
  steps?: WalkStep[],
): WalkOptions {
  return steps === undefined || input.explain === undefined
    ? { lookupdotdomain: o.lookupdotdomain, untagged }
    : { lookupdotdomain: o.lookupdotdomain, untagged, steps };
}

function explainSteps(
  input: PolicyInput,
  check: string,
  what: string,
  steps: readonly WalkStep[],
  r: WalkResult,
): void {
  if (input.explain === undefined) return;
  const tried = steps.map((s) =>
    s.entry === null ? s.key : `${s.key} => ${s.entry.value} (${s.entry.where})`,
  );
  input.explain(check, `${what}: tried ${tried.length === 0 ? 'nothing' : tried.join(', ')}`);
  input.explain(
    check,
    r.entry === null
      ? `${what}: no entry`
      : `${what}: matched ${r.entry.key} ${r.entry.value} at ${r.entry.where}`,
  );
}

/** The host name to walk for a client: its verified name, or `[addr]` in sendmail's spelling. */
export function clientNameForWalk(client: ClientFacts): string {
  const h = client.hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) {
    const inner = h.slice(1, -1);
    if (inner.startsWith('ipv6:')) return `[ipv6:${normaliseIpv6Text(inner.slice(5)) ?? inner.slice(5)}]`;
    if (inner.includes(':')) return `[ipv6:${normaliseIpv6Text(inner) ?? inner}]`;
  }
  return h;
}

/** check_relay's lookup: `Connect:` host name walk, then the IP walk. Once per connection. */
export function clientAccess(o: AccessDbOptions, input: PolicyInput): LookupWithSteps {
  const compute = (): LookupWithSteps => {
    const steps: WalkStep[] = [];
    const byName = hostWalk(
      o.snapshot,
      'connect',
      clientNameForWalk(input.client),
      walkOptions(o, input, true, steps),
    );
    const r =
      byName.entry !== null || input.client.ip === null
        ? byName
        : ipWalk(o.snapshot, 'connect', input.client.ip, walkOptions(o, input, true, steps));
    explainSteps(input, 'access_client', `client ${input.client.hostname} ${input.client.address}`, steps, r);
    return r;
  };
  return input.explain === undefined ? input.memo.connection(`access_db.client`, compute) : compute();
}

/** sendmail canonifies `user@localhost` to its own name ($j) before the sender lookup. */
function canonicalSender(sender: string, j: string | undefined): string {
  const at = sender.lastIndexOf('@');
  if (at < 0 || j === undefined || j === '') return sender;
  const domain = sender
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '');
  return domain === 'localhost' ? `${sender.slice(0, at)}@${j}` : sender;
}

/** check_mail's lookup of the sender (F, U, D); the null sender is never looked up. */
export function senderAccess(o: AccessDbOptions, input: PolicyInput): LookupWithSteps {
  const compute = (): LookupWithSteps => {
    const sender = bareAddress(input.sender ?? '');
    if (sender === '') {
      input.explain?.('access_sender', 'null sender <>: never looked up (RFC 1123)');
      return NOT_FOUND;
    }
    const steps: WalkStep[] = [];
    const address = canonicalSender(sender, input.macro('j'));
    const r = addressWalk(o.snapshot, 'from', address, ['F', 'U', 'D'], walkOptions(o, input, true, steps));
    explainSteps(input, 'access_sender', `sender <${address}>`, steps, r);
    return r;
  };
  return input.explain === undefined ? input.memo.message(`access_db.sender`, compute) : compute();
}

/** A recipient as the access map sees it: its real destination, and whether that is local. */
export function recipientForLookup(
  o: AccessDbOptions,
  recipient: string,
): { address: string; local: boolean } {
  const route = recipientRoute(recipient);
  const dest = route.destination;
  return {
    address: dest === null ? route.localPart : `${route.localPart}@${dest}`,
    local: dest === null || o.localDomains.match(dest) !== null,
  };
}

/** A RELAY entry for the recipient domain (`To:` D walk): sendmail's relay-to test. */
export function relayTo(o: AccessDbOptions, host: string, input: PolicyInput): AccessEntry | null {
  const steps: WalkStep[] = [];
  const r = hostWalk(o.snapshot, 'to', host, walkOptions(o, input, true, steps));
  if (input.explain !== undefined) explainSteps(input, 'relay_guard', `relay to ${host}`, steps, r);
  return r.action?.kind === 'relay' ? r.entry : null;
}

/**
 * A `Connect:` RELAY entry for the client: by IP (always), by host name only when the name is
 * verified (sendmail: `Connect:[ip] RELAY` for an unresolved client does not allow relaying).
 */
export function relayFrom(o: AccessDbOptions, input: PolicyInput, byName: boolean): AccessEntry | null {
  const steps: WalkStep[] = [];
  let r: WalkResult = NOT_FOUND;
  if (byName) {
    const name = clientNameForWalk(input.client);
    if (!name.startsWith('[')) r = hostWalk(o.snapshot, 'connect', name, walkOptions(o, input, true, steps));
  } else if (input.client.ip !== null) {
    r = ipWalk(o.snapshot, 'connect', input.client.ip, walkOptions(o, input, true, steps));
  }
  if (input.explain !== undefined)
    explainSteps(input, 'relay_guard', `relay from client (${byName ? 'name' : 'address'})`, steps, r);
  return r.action?.kind === 'relay' ? r.entry : null;
}

/** An ERROR/unknown right-hand side as a reply; the enhanced code's class follows the code. */
function errorReply(a: Extract<AccessAction, { kind: 'error' }>, senderText = false): SmtpReply {
  const klass = String(a.code)[0] as string;
  const dsn = a.dsn[0] === klass ? a.dsn : `${klass}${a.dsn.slice(1)}`;
  return { code: a.code, dsn, text: senderText ? a.senderText : a.text };
}

/** What a Connect:/From: entry means for the stage: a final verdict or nothing. */
function decide(
  r: WalkResult,
  rejectReply: SmtpReply,
  what: string,
  options: {
    readonly quarantine: boolean;
    readonly noAddressPrefix?: boolean;
    /** A QUARANTINE entry also accepts (ends the delayed checks), as a sender's does in sendmail. */
    readonly quarantineAccepts?: boolean;
    /** Use the text as sendmail's check_mail sends it (unquoted text ends before a `>`). */
    readonly senderText?: boolean;
  },
): CheckResult {
  if (r.entry === null || r.action === null) return { kind: 'pass' };
  const entry = r.entry.where;
  const reason = `${what}: ${r.entry.key} ${r.entry.value.trim()}`;
  const np = options.noAddressPrefix === true ? { noAddressPrefix: true } : {};
  const a = r.action;
  switch (a.kind) {
    case 'ok':
    case 'relay':
      return { kind: 'hit', verdict: OK, reason, entry };
    case 'reject':
      return { kind: 'hit', verdict: { action: 'reject', reply: rejectReply, ...np }, reason, entry };
    case 'discard':
      return { kind: 'hit', verdict: { action: 'discard' }, reason, entry };
    case 'quarantine':
      if (!options.quarantine)
        return { kind: 'pass', reason: `${reason} (ignored without delay_checks)`, entry };
      return options.quarantineAccepts === true
        ? { kind: 'hit', verdict: OK, reason, entry, quarantine: a.reason }
        : { kind: 'pass', quarantine: a.reason, reason, entry };
    case 'error': {
      const reply = errorReply(a, options.senderText === true);
      return {
        kind: 'hit',
        verdict: { action: a.code >= 500 ? 'reject' : 'tempfail', reply, ...np },
        reason,
        entry,
      };
    }
    case 'number':
    case 'friend':
    case 'hater':
    case 'skip':
      // Not a keyword for this kind of entry: sendmail sends it as error text.
      return {
        kind: 'hit',
        verdict: { action: 'reject', reply: { code: 553, dsn: '5.3.0', text: r.entry.value.trim() }, ...np },
        reason,
        entry,
      };
  }
}

abstract class AccessCheck implements Check {
  abstract readonly name: string;
  readonly stages: readonly PolicyStage[];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  constructor(
    protected readonly o: AccessDbOptions,
    stage: PolicyStage,
  ) {
    this.stages = [stage];
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
    this.onError = o.onError;
  }
  abstract run(input: PolicyInput, budget: CheckBudget): CheckResult;
}

/** blocklist_recipients: the `To:` entry of the recipient. */
export class AccessRecipient extends AccessCheck {
  readonly name = 'access_recipient';
  constructor(o: AccessDbOptions) {
    super(o, 'rcpt');
  }
  run(input: PolicyInput): CheckResult {
    const rcpt = recipientForLookup(this.o, input.recipient ?? '');
    const order: AddressPart[] = rcpt.local ? ['F', 'U', 'D'] : ['F', 'D'];
    const steps: WalkStep[] = [];
    const r = addressWalk(
      this.o.snapshot,
      'to',
      rcpt.address,
      order,
      walkOptions(this.o, input, true, steps),
    );
    explainSteps(input, this.name, `recipient <${rcpt.address}>${rcpt.local ? ' (local)' : ''}`, steps, r);
    if (r.entry === null || r.action === null) return { kind: 'pass' };
    const entry = r.entry.where;
    const reason = `recipient: ${r.entry.key} ${r.entry.value.trim()}`;
    switch (r.action.kind) {
      case 'ok':
      case 'relay':
      case 'skip':
        return { kind: 'pass', reason: `${reason} (no decision for a recipient)`, entry };
      case 'discard':
        return { kind: 'hit', verdict: { action: 'discard' }, reason, entry };
      case 'quarantine':
        return { kind: 'hit', verdict: OK, reason, entry, quarantine: r.action.reason };
      default:
        return decide(r, MAILBOX_DISABLED, 'recipient', { quarantine: true });
    }
  }
}

/**
 * delay_checks gate: authenticated clients skip the delayed sender and client checks; with
 * `spam: friend` so do FRIEND recipients, with `spam: hater` everyone but HATER recipients.
 */
export class DelayChecksGate extends AccessCheck {
  readonly name = 'delay_checks';
  constructor(o: AccessDbOptions) {
    super(o, 'rcpt');
  }
  run(input: PolicyInput): CheckResult {
    const auth = input.macro('auth_authen');
    if (this.o.trustAuthenticated && auth !== undefined && auth !== '') {
      return {
        kind: 'hit',
        verdict: OK,
        reason: `authenticated as ${auth}: sender and client checks skipped`,
      };
    }
    if (this.o.spam === 'none') return { kind: 'pass' };
    const rcpt = recipientForLookup(this.o, input.recipient ?? '');
    const steps: WalkStep[] = [];
    const r = addressWalk(
      this.o.snapshot,
      'spam',
      rcpt.address,
      rcpt.local ? ['F', 'D', 'U'] : ['F', 'D'],
      walkOptions(this.o, input, false, steps),
    );
    explainSteps(input, this.name, `Spam: recipient <${rcpt.address}>`, steps, r);
    const kind = r.action?.kind;
    const entry = r.entry?.where;
    if (this.o.spam === 'friend' && kind === 'friend') {
      return {
        kind: 'hit',
        verdict: OK,
        reason: `Spam: FRIEND recipient: sender and client checks skipped`,
        ...(entry === undefined ? {} : { entry }),
      };
    }
    if (this.o.spam === 'hater' && kind !== 'hater') {
      return {
        kind: 'hit',
        verdict: OK,
        reason: 'recipient is not a Spam: HATER: sender and client checks skipped',
      };
    }
    return { kind: 'pass' };
  }
}

/** A client the MTA itself submits for (Postfix sendmail(1)/pickup, sendmail -bs). */
function localSubmission(c: ClientFacts): boolean {
  return c.ip === null
    ? c.kind === 'unix' || c.kind === 'unknown'
    : c.port === 0 && c.ip.range() === 'loopback';
}

/**
 * check_mail: the sender's From: entry. Like sendmail's check_mail it also refuses an unqualified
 * sender from a remote client (`553 5.5.4 Domain name required for sender address <s>`) when no
 * entry decides for it.
 */
export class AccessSender extends AccessCheck {
  readonly name = 'access_sender';
  constructor(o: AccessDbOptions) {
    super(o, o.delayChecks ? 'rcpt' : 'mail');
  }
  run(input: PolicyInput): CheckResult {
    const r = senderAccess(this.o, input);
    const decided = decide(r, ACCESS_DENIED, 'sender', {
      quarantine: true,
      quarantineAccepts: true,
      senderText: true,
    });
    if (r.entry !== null) return decided;
    const sender = bareAddress(input.sender ?? '');
    if (sender !== '' && !sender.includes('@') && !localSubmission(input.client)) {
      return {
        kind: 'hit',
        verdict: {
          action: 'reject',
          reply: { code: 553, dsn: '5.5.4', text: `Domain name required for sender address ${sender}` },
        },
        reason: 'unqualified sender from a remote client',
      };
    }
    return decided;
  }
}

/** check_relay: the client's Connect: entry. */
export class AccessClient extends AccessCheck {
  readonly name = 'access_client';
  constructor(o: AccessDbOptions) {
    super(o, o.delayChecks ? 'rcpt' : 'mail');
  }
  run(input: PolicyInput): CheckResult {
    return decide(clientAccess(this.o, input), ACCESS_DENIED, 'client', {
      quarantine: this.o.delayChecks,
      noAddressPrefix: !this.o.delayChecks,
    });
  }
}

/** The access_db checks in sendmail's order, for the stages they run at. */
export function accessDbChecks(o: AccessDbOptions): { beforeRelay: Check[]; afterRelay: Check[] } {
  const beforeRelay: Check[] = o.blocklistRecipients ? [new AccessRecipient(o)] : [];
  if (!o.delayChecks)
    return { beforeRelay: [new AccessClient(o), new AccessSender(o), ...beforeRelay], afterRelay: [] };
  return { beforeRelay, afterRelay: [new DelayChecksGate(o), new AccessSender(o), new AccessClient(o)] };
}
