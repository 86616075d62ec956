// Rate limits and connection control per source: the gateway's own defence against dictionary
// ("Rumpelstiltskin") attacks, bombing and bursts. Token buckets (./token-bucket.ts) in a RateStore
// (memory, or Redis shared by several gateways) count, per configured limit:
//   connections  per client address (cut to prefixes: /32 and /24, /64 ...), at connect;
//   concurrent   open connections per source, as leases that expire (a crashed daemon never
//                leaves a client locked out longer than `leaseMs`), released when the session ends;
//   messages     per client, envelope sender or authenticated user, at MAIL;
//   recipients   likewise, at each RCPT;
// plus sendmail's access-file limits (`ClientRate:` per exact address per window, `ClientConn:`
// concurrent, found by the IP walk then the bare default entry; 0 = unlimited). A second check
// here, BadRecipientThrottle, is the dictionary-attack throttle: after N refused recipients in one
// connection, or M from one source in a window, further RCPTs are tempfailed (and optionally the
// source is banned in the shared ban store). Connection-level refusals are reported at RCPT by default (sendmail's delay_checks: the
// client sees the text, the recipients are logged), or at connect (`reportAt: 'connect'`; sendmail
// ignores a milter's text there). Exempt: trusted networks, the allow list, authenticated clients,
// access_db `Connect:` OK/RELAY. A store failure is an error result (the check's on_error), never
// a hang: the store answers within its own budget.

import type { SmtpReply } from '../milter/reply-text.js';
import type { AccessDbOptions } from './access-db.js';
import type { Ban, BanStore } from './ban-store.js';
import type {
  Check,
  CheckBudget,
  CheckMode,
  CheckResult,
  OnError,
  PolicyInput,
  PolicyStage,
  SessionHooks,
  SettledOutcome,
} from './check.js';
import { dnsblExemption } from './dnsbl.js';
import type { Network } from './networks.js';
import { findNetwork } from './networks.js';
import { ipWalk } from '../access-db/walk.js';
import type { LeaseResult, MaybePromise, RateStore } from './rate-store.js';
import { senderKey, sourceKeys } from './rate-keys.js';
import { expandReply } from './reply-template.js';
import type { BucketLimit, TakeResult } from './token-bucket.js';

export type RateCounts = 'connections' | 'concurrent' | 'messages' | 'recipients';
export type RateBy = 'client' | 'sender' | 'user';

export interface RateLimitSpec {
  /** Unique; in store keys, logs and replies (%r). */
  readonly name: string;
  readonly counts: RateCounts;
  readonly by: RateBy;
  readonly ipv4Prefixes: readonly number[];
  readonly ipv6Prefixes: readonly number[];
  /** For `concurrent`: burst is the most open connections; rate and perMs are unused. */
  readonly limit: BucketLimit;
  readonly countRefused: boolean;
  /** Reply template (%i client address, %r limit name). */
  readonly reply: string;
}

export interface BadRecipientSpec {
  /** Refused recipients allowed in one connection before further RCPTs are tempfailed (0 = off). */
  readonly perConnection: number;
  /** Refused recipients allowed from one source per window (0 = off). */
  readonly perSource: number;
  readonly windowMs: number;
  readonly ipv4Prefix: number;
  readonly ipv6Prefix: number;
  readonly reply: string;
  /** > 0: a source over perSource is banned this long (shared ban store). */
  readonly banMs: number;
  readonly bannedReply: string;
}

export interface AccessLimits {
  readonly access: AccessDbOptions;
  /** sendmail's ConnectionRateWindowSize: `ClientRate: N` = N connections per this window. */
  readonly windowMs: number;
  readonly rateReply: string;
  readonly connReply: string;
}

/** What both checks of this module are given: the stores, the exemptions, the reply form. */
export interface RateCheckOptions {
  readonly store: RateStore;
  readonly bans: BanStore;
  /** sendmail's `terminate`: 421 (and the MTA closes the connection) instead of the reply's code. */
  readonly terminate: boolean;
  readonly allow: readonly Network[];
  readonly trustedNetworks: readonly Network[];
  readonly trustAuthenticated: boolean;
  readonly access?: AccessDbOptions;
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  readonly onBan?: (client: string, reason: string, ms: number) => void;
}

export interface RateLimitOptions extends RateCheckOptions {
  readonly limits: readonly RateLimitSpec[];
  /** ClientRate:/ClientConn: entries of the access file (null: not used). */
  readonly accessLimits: AccessLimits | null;
  readonly reportAt: 'connect' | 'rcpt';
  readonly leaseMs: number;
  /** A unique name for this process (lease ids must not collide across gateways). */
  readonly instance: string;
}

/** What the connect-time counting found, kept for the session. */
interface ConnectFinding {
  readonly refusal: { readonly reply: SmtpReply; readonly reason: string } | null;
  readonly error: string | null;
}

interface Attempt {
  readonly result: TakeResult | LeaseResult;
  readonly spec: { readonly name: string; readonly reply: string };
  readonly key: string;
  readonly what: string;
}

const EXEMPT_KEY = 'rate_limit.exempt';
const CONNECT_KEY = 'rate_limit.connect';
const BAD_KEY = 'rate_limit.bad';
const SOURCE_KEY = 'rate_limit.bad_source';
/** The transaction's message-limit verdict (PolicyMemo.message), counted at MAIL. */
const MAIL_KEY = 'rate_limit.mail';

/** What the bad-recipient throttle last read of the source (null: read it again). */
interface SourceState {
  ban: MaybePromise<Ban | null> | null;
  tokens: MaybePromise<number> | null;
}
let leaseSerial = 0;

/** The leases this session holds (released when it ends). */
function leasesOf(session: SessionHooks): { key: string; lease: string }[] {
  return session.keep('rate_limit.leases', () => [] as { key: string; lease: string }[]);
}

function settleAll<T>(items: readonly MaybePromise<T>[]): MaybePromise<T[]> {
  return items.some((i) => i instanceof Promise) ? Promise.all(items) : (items as T[]);
}

function then<T, U>(v: MaybePromise<T>, f: (t: T) => MaybePromise<U>): MaybePromise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export class RateLimit implements Check {
  readonly name = 'rate_limit';
  readonly stages: readonly PolicyStage[];
  readonly watches: readonly PolicyStage[];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  private readonly connectionLimits: readonly RateLimitSpec[];
  private readonly concurrentLimits: readonly RateLimitSpec[];
  private readonly messageLimits: readonly RateLimitSpec[];
  private readonly recipientLimits: readonly RateLimitSpec[];
  private readonly counting: boolean;
  private readonly userLimits: boolean;

  constructor(private readonly o: RateLimitOptions) {
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
    this.onError = o.onError;
    const of = (c: RateCounts): RateLimitSpec[] => o.limits.filter((l) => l.counts === c);
    this.connectionLimits = of('connections');
    this.concurrentLimits = of('concurrent');
    this.messageLimits = of('messages');
    this.recipientLimits = of('recipients');
    this.userLimits = o.limits.some((l) => l.by === 'user');
    this.counting =
      this.connectionLimits.length > 0 || this.concurrentLimits.length > 0 || o.accessLimits !== null;
    // Only stages that can refuse make the MTA wait for a reply: with report_at rcpt the
    // connection is counted (and its lease renewed at MAIL) by watching, without one.
    const stages: PolicyStage[] = [];
    const watches: PolicyStage[] = [];
    if (this.counting) (o.reportAt === 'connect' ? stages : watches).push('connect');
    // messages are counted at MAIL; like the connection limits they are reported at RCPT
    // (report_at rcpt), or refused at MAIL itself (report_at connect: as early as possible)
    if (this.messageLimits.length > 0 && o.reportAt === 'connect') stages.push('mail');
    else if (this.messageLimits.length > 0 || this.concurrentLimits.length > 0 || o.accessLimits !== null)
      watches.push('mail');
    stages.push('rcpt');
    this.stages = stages;
    this.watches = watches;
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const session = input.session;
    if (session === undefined) return { kind: 'skip', reason: 'rate limits count real sessions only' };
    const exempt = rateExemption(this.o, input, session);
    if (exempt !== null) {
      // Per-user limits are for authenticated clients (a stolen password): they still apply.
      if (exempt.startsWith('authenticated') && this.userLimits && input.stage !== 'connect')
        return input.stage === 'mail' ? this.atMail(input, session, true) : this.atRcpt(input, session, true);
      // said once per recipient (the RCPT decision line), not in a line of its own at connect/MAIL
      return input.stage === 'rcpt' ? { kind: 'skip', reason: `exempt: ${exempt}` } : { kind: 'pass' };
    }
    switch (input.stage) {
      case 'connect': // decided here only with report_at connect (otherwise watched)
        return then(this.connectFinding(input, session), (f) => this.report(f));
      case 'mail':
        return this.atMail(input, session);
      case 'rcpt':
        return this.atRcpt(input, session);
      default:
        return { kind: 'pass' };
    }
  }

  watch(input: PolicyInput): void {
    const session = input.session;
    if (session === undefined) return;
    const exempt = rateExemption(this.o, input, session);
    const usersOnly = exempt !== null && exempt.startsWith('authenticated') && this.userLimits;
    if (exempt !== null && !usersOnly) return;
    let done: MaybePromise<unknown>;
    if (input.stage === 'connect') done = usersOnly ? null : this.connectFinding(input, session);
    else if (input.stage === 'mail') {
      // the message counted now, its verdict kept for the RCPTs of this transaction
      done = input.memo.message(MAIL_KEY, () => this.atMail(input, session, usersOnly));
    } else done = null;
    if (done instanceof Promise) done.catch(() => undefined);
  }

  private reply(template: string, input: PolicyInput, name: string): SmtpReply {
    return replyFor(template, input, name, this.o.terminate);
  }

  private hit(reply: SmtpReply, reason: string): CheckResult {
    return { kind: 'hit', verdict: { action: 'tempfail', reply }, reason };
  }

  private report(f: ConnectFinding): CheckResult {
    if (f.error !== null) return { kind: 'error', error: f.error };
    if (f.refusal !== null) return this.hit(f.refusal.reply, f.refusal.reason);
    return { kind: 'pass' };
  }

  /** Pass, or a hit for the first refused attempt. */
  private judge(input: PolicyInput, attempts: readonly Attempt[]): CheckResult {
    const refusal = this.firstRefusal(input, attempts);
    return refusal === null ? { kind: 'pass' } : this.hit(refusal.reply, refusal.reason);
  }

  /** The first refused attempt as a finding, or null. */
  private firstRefusal(input: PolicyInput, attempts: readonly Attempt[]): ConnectFinding['refusal'] {
    const refused = attempts.find((a) => !a.result.allowed);
    if (refused === undefined) return null;
    return {
      reply: this.reply(refused.spec.reply, input, refused.spec.name),
      reason: `${refused.spec.name}: ${refused.what} for ${refused.key}`,
    };
  }

  /** Counts this connection once (kept for the session across reloads). */
  private connectFinding(input: PolicyInput, session: SessionHooks): MaybePromise<ConnectFinding> {
    return session.keep(CONNECT_KEY, () => {
      const ip = input.client.ip;
      if (ip === null) return { refusal: null, error: null };
      const attempts: MaybePromise<Attempt>[] = [];
      const lease = `${this.o.instance}:${++leaseSerial}`;
      for (const spec of this.connectionLimits) {
        for (const key of sourceKeys(ip, spec.ipv4Prefixes, spec.ipv6Prefixes)) {
          attempts.push(this.take(spec, key, `more than ${count(spec.limit.burst, 'connection')}`));
        }
      }
      for (const spec of this.concurrentLimits) {
        for (const key of sourceKeys(ip, spec.ipv4Prefixes, spec.ipv6Prefixes)) {
          attempts.push(this.acquire(session, `cc:${spec.name}:${key}`, lease, spec.limit.burst, spec, key));
        }
      }
      const a = this.o.accessLimits;
      if (a !== null) {
        const rate = this.accessValue(a, 'clientrate', input);
        const key = ip.toString();
        if (rate !== null && rate > 0) {
          const spec = { name: 'ClientRate', reply: a.rateReply };
          const limit = { rate, perMs: a.windowMs, burst: rate };
          const what = `more than ${count(rate, 'connection')} in ${a.windowMs / 1000} s`;
          attempts.push(this.attempt(`clientrate:${key}`, limit, false, spec, key, what));
        }
        const conn = this.accessValue(a, 'clientconn', input);
        if (conn !== null && conn > 0) {
          const spec = { name: 'ClientConn', reply: a.connReply };
          attempts.push(this.acquire(session, `clientconn:${key}`, lease, conn, spec, key));
        }
      }
      const all = settleAll(attempts);
      const found = (list: Attempt[]): ConnectFinding => ({
        refusal: this.firstRefusal(input, list),
        error: null,
      });
      return all instanceof Promise
        ? all.then(found, (e: unknown) => ({ refusal: null, error: errorText(e) }))
        : found(all);
    });
  }

  /** The `ClientRate:`/`ClientConn:` value for this client: IP walk, then the bare default. */
  private accessValue(a: AccessLimits, tag: string, input: PolicyInput): number | null {
    const ip = input.client.ip;
    if (ip === null) return null;
    const snap = a.access.snapshot;
    const walked = ipWalk(snap, tag, ip, { lookupdotdomain: false, untagged: false });
    const entry = walked.entry ?? snap.get(`${tag}:`);
    if (entry === null) return null;
    const action = walked.entry === null ? snap.action(entry) : walked.action;
    return action?.kind === 'number' ? action.value : null;
  }

  private acquire(
    session: SessionHooks,
    storeKey: string,
    lease: string,
    max: number,
    spec: Attempt['spec'],
    key: string,
  ): MaybePromise<Attempt> {
    const store = this.o.store;
    const leases = leasesOf(session);
    return then(store.acquire(storeKey, lease, max, this.o.leaseMs), (result) => {
      if (result.allowed) {
        if (leases.length === 0) {
          session.atClose(() =>
            Promise.all(leases.map((l) => Promise.resolve(store.release(l.key, l.lease)))).catch(
              () => undefined,
            ),
          );
        }
        leases.push({ key: storeKey, lease });
      }
      return { result, spec, key, what: `more than ${count(max, 'open connection')} (${result.count} open)` };
    });
  }

  /** The leases of this session renewed (a long session keeps its place). */
  private renew(session: SessionHooks): MaybePromise<unknown> {
    const leases = leasesOf(session);
    if (leases.length === 0) return null;
    // renewed once half the lease is gone: most sessions end long before
    const renewed = session.keep('rate_limit.renewed', () => ({ at: Date.now() }));
    if (Date.now() - renewed.at < this.o.leaseMs / 2) return null;
    renewed.at = Date.now();
    return settleAll(
      leases.map((l) => this.o.store.acquire(l.key, l.lease, Number.MAX_SAFE_INTEGER, this.o.leaseMs)),
    );
  }

  private atMail(
    input: PolicyInput,
    session: SessionHooks,
    usersOnly = false,
  ): CheckResult | Promise<CheckResult> {
    const steps: MaybePromise<unknown>[] = [this.renew(session)];
    for (const spec of this.messageLimits)
      if (!usersOnly || spec.by === 'user') steps.push(...this.takeFor(spec, input));
    const all = settleAll(steps);
    const decide = (results: unknown[]): CheckResult => this.judge(input, results.filter(isAttempt));
    return all instanceof Promise
      ? all.then(decide, (e: unknown) => ({ kind: 'error', error: errorText(e) }))
      : decide(all);
  }

  private atRcpt(
    input: PolicyInput,
    session: SessionHooks,
    usersOnly = false,
  ): CheckResult | Promise<CheckResult> {
    const recipients = (): MaybePromise<CheckResult> => {
      const specs = usersOnly ? this.recipientLimits.filter((l) => l.by === 'user') : this.recipientLimits;
      if (specs.length === 0) return { kind: 'pass' };
      return then(settleAll(specs.flatMap((spec) => this.takeFor(spec, input))), (list) =>
        this.judge(input, list),
      );
    };
    const fail = (e: unknown): CheckResult => ({ kind: 'error', error: errorText(e) });
    // the message's own verdict (counted at MAIL, reported here), then the connection's
    const atMail = input.memo.message<MaybePromise<CheckResult> | null>(MAIL_KEY, () => null);
    const afterMail = (next: () => MaybePromise<CheckResult>): MaybePromise<CheckResult> =>
      atMail === null ? next() : then(atMail, (m) => (m.kind === 'pass' ? next() : m));
    try {
      const r =
        this.counting && !usersOnly
          ? then(this.connectFinding(input, session), (f) =>
              f.error !== null || f.refusal !== null ? this.report(f) : afterMail(recipients),
            )
          : afterMail(recipients);
      return r instanceof Promise ? r.catch(fail) : r;
    } catch (e) {
      return fail(e);
    }
  }

  /** One bucket attempt per key of a message/recipient limit (none when the key is absent). */
  private takeFor(spec: RateLimitSpec, input: PolicyInput): MaybePromise<Attempt>[] {
    const keys: string[] = [];
    if (spec.by === 'client') {
      if (input.client.ip !== null)
        keys.push(...sourceKeys(input.client.ip, spec.ipv4Prefixes, spec.ipv6Prefixes));
    } else if (spec.by === 'sender') {
      const s = senderKey(input.sender);
      if (s !== null) keys.push(s);
    } else {
      const u = input.macro('auth_authen');
      if (u !== undefined && u !== '') keys.push(u.toLowerCase());
    }
    const what = `more than ${count(spec.limit.burst, spec.counts === 'messages' ? 'message' : 'recipient')}`;
    return keys.map((key) => this.take(spec, key, what));
  }

  /** One attempt at a configured limit's bucket for one key. */
  private take(spec: RateLimitSpec, key: string, what: string): MaybePromise<Attempt> {
    return this.attempt(`rl:${spec.name}:${key}`, spec.limit, spec.countRefused, spec, key, what);
  }

  private attempt(
    storeKey: string,
    limit: BucketLimit,
    countRefused: boolean,
    spec: Attempt['spec'],
    key: string,
    what: string,
  ): MaybePromise<Attempt> {
    return then(this.o.store.take(storeKey, limit, 1, countRefused), (result) => ({
      result,
      spec,
      key,
      what,
    }));
  }
}

function isAttempt(v: unknown): v is Attempt {
  return typeof v === 'object' && v !== null && 'result' in v && 'spec' in v;
}

/** `1 connection`, `3 connections`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function errorText(e: unknown): string {
  return `rate-limit store: ${e instanceof Error ? e.message : String(e)}`;
}

export interface BadRecipientOptions extends RateCheckOptions {
  readonly spec: BadRecipientSpec;
}

/**
 * The dictionary-attack throttle. First in the RCPT pipeline (a client probing names gets 4xx for
 * every further RCPT, not the access map's 550s), it counts the recipients the stage refused with
 * a 5xx (Check.settled): per connection, and per source (the client cut to a prefix) in a shared
 * bucket; over either limit further RCPTs are tempfailed; with banMs the source is also banned.
 */
export class BadRecipientThrottle implements Check {
  readonly name = 'bad_recipients';
  readonly stages: readonly PolicyStage[] = ['rcpt'];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  private readonly bucket: BucketLimit;

  constructor(private readonly o: BadRecipientOptions) {
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
    this.onError = o.onError;
    this.bucket = { rate: o.spec.perSource, perMs: o.spec.windowMs, burst: o.spec.perSource };
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const session = input.session;
    if (session === undefined) return { kind: 'skip', reason: 'counts real sessions only' };
    const exempt = rateExemption(this.o, input, session);
    if (exempt !== null) return { kind: 'skip', reason: `exempt: ${exempt}` };
    const spec = this.o.spec;
    const refused = session.keep(BAD_KEY, () => ({ refused: 0 })).refused;
    if (spec.perConnection > 0 && refused >= spec.perConnection) {
      return this.hit(
        spec.reply,
        input,
        `${refused} recipients refused in this connection (limit ${spec.perConnection})`,
      );
    }
    const key = this.key(input);
    if (key === null) return { kind: 'pass' };
    // The source's ban and bucket are read once per connection, and again after each refusal it
    // makes (settled): not one store round trip per RCPT.
    const seen = session.keep(SOURCE_KEY, (): SourceState => ({ ban: null, tokens: null }));
    seen.ban ??= spec.banMs > 0 ? this.o.bans.banned(`dictionary:${key}`) : null;
    seen.tokens ??=
      spec.perSource > 0 ? this.o.store.peek(`bad:${key}`, this.bucket) : Number.POSITIVE_INFINITY;
    const steps: MaybePromise<unknown>[] = [seen.ban, seen.tokens];
    const decide = ([ban, tokens]: unknown[]): CheckResult => {
      const b = ban as Ban | null;
      if (b !== null) {
        return this.hit(
          spec.bannedReply,
          input,
          `${key} is banned until ${new Date(b.until).toISOString()}: ${b.reason}`,
        );
      }
      if ((tokens as number) < 1) {
        return this.hit(
          spec.reply,
          input,
          `more than ${count(spec.perSource, 'refused recipient')} from ${key} in ${spec.windowMs / 1000} s`,
        );
      }
      return { kind: 'pass' };
    };
    const all = settleAll(steps);
    return all instanceof Promise
      ? all.then(decide, (e: unknown) => ({ kind: 'error', error: errorText(e) }))
      : decide(all);
  }

  settled(input: PolicyInput, outcome: SettledOutcome): void {
    const session = input.session;
    if (input.stage !== 'rcpt' || outcome.action !== 'reject' || session === undefined) return;
    if (rateExemption(this.o, input, session) !== null) return;
    session.keep(BAD_KEY, () => ({ refused: 0 })).refused++;
    const seen = session.keep(SOURCE_KEY, (): SourceState => ({ ban: null, tokens: null }));
    seen.ban = null;
    seen.tokens = null;
    const spec = this.o.spec;
    const key = this.key(input);
    if (spec.perSource <= 0 || key === null) return;
    const after = (t: TakeResult): void => {
      // the refusal that empties the bucket bans: the next RCPT is tempfailed before any check
      // that could refuse it again
      if (spec.banMs <= 0 || t.remaining >= 1) return;
      const reason = `${count(spec.perSource, 'refused recipient')} from ${key} in ${spec.windowMs / 1000} s`;
      void Promise.resolve(this.o.bans.ban(`dictionary:${key}`, reason, spec.banMs)).catch(() => undefined);
      this.o.onBan?.(key, reason, spec.banMs);
    };
    try {
      const r = this.o.store.take(`bad:${key}`, this.bucket, 1, false);
      if (r instanceof Promise) r.then(after, () => undefined);
      else after(r);
    } catch {
      // counting is best effort
    }
  }

  private hit(template: string, input: PolicyInput, reason: string): CheckResult {
    return {
      kind: 'hit',
      verdict: { action: 'tempfail', reply: replyFor(template, input, this.name, this.o.terminate) },
      reason,
    };
  }

  /** The source: the client cut to the configured prefix; null for non-IP clients. */
  private key(input: PolicyInput): string | null {
    const ip = input.client.ip;
    if (ip === null) return null;
    return sourceKeys(ip, [this.o.spec.ipv4Prefix], [this.o.spec.ipv6Prefix])[0] ?? null;
  }
}

/**
 * Clients no rate limit applies to, and why (null: none). The address-based part is decided once
 * per session; authentication is looked at each time (it happens after connect).
 */
function rateExemption(
  o: Pick<RateCheckOptions, 'allow' | 'trustedNetworks' | 'trustAuthenticated' | 'access'>,
  input: PolicyInput,
  session: SessionHooks,
): string | null {
  const auth = input.macro('auth_authen');
  if (o.trustAuthenticated && auth !== undefined && auth !== '') return `authenticated as ${auth}`;
  return session.keep(EXEMPT_KEY, () => {
    const ip = input.client.ip;
    if (ip !== null) {
      const net = findNetwork(ip, o.allow);
      if (net !== null) return `allowed network ${net.text}`;
    }
    return dnsblExemption({ ...o, trustAuthenticated: false }, input);
  });
}

function replyFor(template: string, input: PolicyInput, name: string, terminate: boolean): SmtpReply {
  const r = expandReply(template, { i: input.client.address, r: name });
  if (!terminate) return r;
  return { ...r, code: 421, ...(r.dsn === undefined ? {} : { dsn: `4${r.dsn.slice(1)}` }) };
}
