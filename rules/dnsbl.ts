// DNS blocklists (sendmail's FEATURE(dnsbl)/FEATURE(enhdnsbl), postscreen's weighted
// postscreen_dnsbl_sites): the client's address looked up in every configured zone in parallel,
// once per SMTP session, within the check's time budget; optionally the sender's domain and the
// HELO name in domain lists (RHSBL), once per transaction.
//   - a zone's answers count when they are listing answers (./dnsbl-query.ts) accepted by its
//     `answers` selector; each counting zone adds its weight, and the client is refused when the sum
//     reaches the threshold (weight 1, threshold 1 = any listing refuses; negative weights are allow
//     lists); the reply is that of the first counting zone, `%i`, `%z`, `%t` filled in;
//   - a zone with action observe only logs its listing, one with action tag adds a header;
//   - a lookup that fails or times out is ignored (sendmail's default) or, per zone, tempfails
//     (`451 4.4.3 Temporary lookup failure of <ip> at <zone>`) unless another zone already refused;
//   - clients that may relay (trusted networks, SMTP AUTH) and access_db `Connect:` OK/RELAY
//     clients are never looked up;
//   - a zone whose RFC 5782 probe fails (checked by the daemon) is skipped until it passes again.
// Asynchronous (DNS); lookups go through the shared DnsCache.

import type ipaddr from 'ipaddr.js';
import type { SmtpReply } from '../milter/reply-text.js';
import type { AccessDbOptions } from './access-db.js';
import { clientAccess } from './access-db.js';
import type {
  Check,
  CheckBudget,
  CheckMode,
  CheckResult,
  OnError,
  PolicyInput,
  PolicyStage,
  Verdict,
} from './check.js';
import type { DnsLookup } from './dns-cache.js';
import type { AnswerMatcher } from './dnsbl-query.js';
import { answerMatcher, classifyAnswer, queryName, rhsblDomain } from './dnsbl-query.js';
import type { Network } from './networks.js';
import { findNetwork } from './networks.js';
import { bareAddress } from './recipient-route.js';
import { expandReply } from './reply-template.js';

export type ZoneAction = 'reject' | 'tempfail' | 'observe' | 'tag';

export interface ZoneSpec {
  readonly zone: string;
  readonly answers: readonly string[];
  readonly weight: number;
  readonly action: ZoneAction;
  readonly reply: string;
  readonly onError: 'ignore' | 'tempfail';
  readonly tempfailReply: string;
}

interface Zone extends ZoneSpec {
  readonly matches: AnswerMatcher;
}

/** What one zone said about one name. */
export type ZoneResult =
  | { readonly kind: 'listed'; readonly zone: Zone; readonly answers: readonly string[] }
  | { readonly kind: 'clean'; readonly zone: Zone }
  | { readonly kind: 'error'; readonly zone: Zone; readonly error: string }
  | { readonly kind: 'disabled'; readonly zone: Zone };

/** Zones the health probe took out of service (shared with the daemon's prober). */
export class ZoneHealth {
  private readonly down = new Map<string, string>();
  isDown(zone: string): boolean {
    return this.down.has(zone);
  }
  reason(zone: string): string | undefined {
    return this.down.get(zone);
  }
  set(zone: string, reason: string | null): boolean {
    const was = this.down.has(zone);
    if (reason === null) this.down.delete(zone);
    else this.down.set(zone, reason);
    return was !== (reason !== null);
  }
  get disabled(): readonly string[] {
    return [...this.down.keys()];
  }
}

/** Looks up `name` in a zone; listed answers filtered by the zone's selector, bad answers are errors. */
export async function lookupZone(
  dns: DnsLookup,
  zone: Zone,
  name: string,
  health?: ZoneHealth,
): Promise<ZoneResult> {
  if (health?.isDown(zone.zone) === true) return { kind: 'disabled', zone };
  const a = await dns.lookup(name, 'A');
  if (a.kind === 'nxdomain') return { kind: 'clean', zone };
  if (a.kind === 'error') return { kind: 'error', zone, error: a.error };
  const listed: string[] = [];
  for (const r of a.records) {
    const c = classifyAnswer(r);
    if (c.kind === 'error') return { kind: 'error', zone, error: c.reason };
    listed.push(r);
  }
  const counting = listed.filter((x) => zone.matches(x));
  return counting.length > 0 ? { kind: 'listed', zone, answers: counting } : { kind: 'clean', zone };
}

/** Told about every zone lookup of the checks (the daemon's metrics); must not throw. */
export interface DnsblObserver {
  /** A zone answered (`seconds` from the lookup's start; a cached answer is fast). */
  zoneLookup(zone: string, result: 'listed' | 'clean' | 'error', seconds: number): void;
}

/** lookupZone, its answer and time told to the observer when there is one. */
function observedLookup(
  dns: DnsLookup,
  zone: Zone,
  name: string,
  observer: DnsblObserver | undefined,
  health?: ZoneHealth,
): Promise<ZoneResult> {
  if (observer === undefined) return lookupZone(dns, zone, name, health);
  const started = performance.now();
  return lookupZone(dns, zone, name, health).then((r) => {
    if (r.kind !== 'disabled') {
      try {
        observer.zoneLookup(zone.zone, r.kind, (performance.now() - started) / 1000);
      } catch {
        // counting must never change a decision
      }
    }
    return r;
  });
}

/**
 * The zones' lookups, each ended as an error when the check's own deadline passes — a little
 * before the engine's budget, so a silent server is one zone's failure (ignored or tempfail, as
 * the zone says), not the whole check's.
 */
function withDeadline(
  jobs: readonly Promise<ZoneResult>[],
  zones: readonly Zone[],
  budgetMs: number,
): Promise<ZoneResult[]> {
  const ms = Math.max(1, Math.min(budgetMs - 100, Math.floor(budgetMs * 0.9)));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), ms);
  });
  return Promise.all(
    jobs.map((job, i) =>
      Promise.race([job, deadline]).then((r): ZoneResult =>
        r === 'deadline' ? { kind: 'error', zone: zones[i] as Zone, error: `no answer within ${ms} ms` } : r,
      ),
    ),
  ).finally(() => clearTimeout(timer));
}

function prepare(zones: readonly ZoneSpec[]): Zone[] {
  return zones.map((z) => ({
    ...z,
    zone: z.zone.toLowerCase().replace(/\.$/, ''),
    matches: answerMatcher(z.answers),
  }));
}

async function txtOf(dns: DnsLookup, name: string): Promise<string> {
  const t = await dns.lookup(name, 'TXT');
  return t.kind === 'records' ? (t.records[0] ?? '') : '';
}

interface Combined {
  readonly verdict: Verdict | null;
  readonly reason: string;
  readonly tags: readonly string[];
  readonly notes: readonly string[];
  readonly observed: readonly string[];
}

/** Weights, threshold, observe/tag zones and failures, into one answer. */
async function combine(
  results: readonly ZoneResult[],
  threshold: number,
  subject: { readonly values: Record<string, string>; readonly name: (zone: Zone) => string },
  dns: DnsLookup,
  label: string,
): Promise<Combined> {
  const tags: string[] = [];
  const notes: string[] = [];
  const observed: string[] = [];
  let score = 0;
  let first: Extract<ZoneResult, { kind: 'listed' }> | null = null;
  let tempfail: Extract<ZoneResult, { kind: 'error' }> | null = null;
  for (const r of results) {
    const z = r.zone;
    if (r.kind === 'listed') {
      const what = `${z.zone} (${r.answers.join(', ')})`;
      if (z.action === 'observe') {
        notes.push(`observed: listed in ${what}`);
        observed.push(`${label}: listed in ${what}`);
      } else if (z.action === 'tag') tags.push(`${label}: listed in ${what}`);
      else {
        score += z.weight;
        notes.push(`listed in ${what}, weight ${z.weight}`);
        if (first === null && z.weight > 0) first = r;
      }
    } else if (r.kind === 'error') {
      notes.push(`${z.zone}: lookup failed: ${r.error}`);
      if (z.onError === 'tempfail') tempfail ??= r;
    } else if (r.kind === 'disabled') {
      notes.push(`${z.zone}: skipped (failed its health probe)`);
    }
  }
  if (first !== null && score >= threshold) {
    const z = first.zone;
    const values = {
      ...subject.values,
      z: z.zone,
      ...(z.reply.includes('%t') ? { t: await txtOf(dns, subject.name(z)) } : {}),
    };
    const reply: SmtpReply = expandReply(z.reply, values);
    const verdict: Verdict = { action: z.action === 'tempfail' ? 'tempfail' : 'reject', reply };
    return { verdict, reason: `${notes.join('; ')}; score ${score} >= ${threshold}`, tags, notes, observed };
  }
  if (tempfail !== null) {
    const reply = expandReply(tempfail.zone.tempfailReply, { ...subject.values, z: tempfail.zone.zone });
    return { verdict: { action: 'tempfail', reply }, reason: notes.join('; '), tags, notes, observed };
  }
  return { verdict: null, reason: notes.join('; '), tags, notes, observed };
}

export interface DnsblOptions {
  readonly dns: DnsLookup;
  readonly zones: readonly ZoneSpec[];
  readonly threshold: number;
  readonly stage: 'rcpt' | 'mail';
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly health: ZoneHealth;
  readonly trustedNetworks: readonly Network[];
  readonly trustAuthenticated: boolean;
  readonly access?: AccessDbOptions;
  readonly observer?: DnsblObserver;
}

/** Clients the blocklists never apply to, and why. */
export function dnsblExemption(
  o: Pick<DnsblOptions, 'trustedNetworks' | 'trustAuthenticated' | 'access'>,
  input: PolicyInput,
): string | null {
  const c = input.client;
  if (c.ip === null) return 'not an IP client';
  const net = findNetwork(c.ip, o.trustedNetworks);
  if (net !== null) return `trusted network ${net.text}`;
  const auth = input.macro('auth_authen');
  if (o.trustAuthenticated && auth !== undefined && auth !== '') return `authenticated as ${auth}`;
  if (o.access !== undefined) {
    const a = clientAccess(o.access, input);
    if (a.action?.kind === 'ok' || a.action?.kind === 'relay')
      return `access_db ${a.entry?.key ?? ''} ${a.action.kind.toUpperCase()}`;
  }
  return null;
}

export class DnsblCheck implements Check {
  readonly name = 'dnsbl';
  readonly stages: readonly PolicyStage[];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError = 'continue';
  private readonly zones: Zone[];

  constructor(private readonly o: DnsblOptions) {
    this.stages = [o.stage];
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
    this.zones = prepare(o.zones);
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const exempt = dnsblExemption(this.o, input);
    if (exempt !== null) return { kind: 'skip', reason: `exempt: ${exempt}` };
    const ip = input.client.ip as ipaddr.IPv4 | ipaddr.IPv6;
    const lookups = input.memo.connection('dnsbl.client', () =>
      withDeadline(
        this.zones.map((z) =>
          observedLookup(this.o.dns, z, queryName(ip, z.zone), this.o.observer, this.o.health),
        ),
        this.zones,
        this.budgetMs,
      ),
    );
    return lookups.then(async (results) => {
      const c = await combine(
        results,
        this.o.threshold,
        { values: { i: input.client.address }, name: (z) => queryName(ip, z.zone) },
        this.o.dns,
        'dnsbl',
      );
      input.explain?.('dnsbl', c.reason === '' ? 'not listed' : c.reason);
      if (c.verdict !== null) return { kind: 'hit', verdict: c.verdict, reason: c.reason };
      return {
        kind: 'pass',
        ...(c.reason === '' ? {} : { reason: c.reason }),
        ...(c.tags.length > 0 ? { tags: c.tags } : {}),
        ...(c.observed.length > 0 ? { observed: c.observed } : {}),
      };
    });
  }
}

export interface RhsblOptions {
  readonly dns: DnsLookup;
  readonly zones: readonly (ZoneSpec & { readonly targets: readonly ('sender' | 'helo')[] })[];
  readonly stage: 'rcpt' | 'mail';
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly trustedNetworks: readonly Network[];
  readonly trustAuthenticated: boolean;
  readonly access?: AccessDbOptions;
  readonly observer?: DnsblObserver;
}

/** Domain blocklists for the sender's domain and the HELO name. */
export class RhsblCheck implements Check {
  readonly name = 'rhsbl';
  readonly stages: readonly PolicyStage[];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError = 'continue';
  private readonly zones: (Zone & { readonly targets: readonly ('sender' | 'helo')[] })[];

  constructor(private readonly o: RhsblOptions) {
    this.stages = [o.stage];
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
    this.zones = o.zones.map((z) => ({ ...(prepare([z])[0] as Zone), targets: z.targets }));
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const exempt = dnsblExemption(this.o, input);
    if (exempt !== null) return { kind: 'skip', reason: `exempt: ${exempt}` };
    const sender = bareAddress(input.sender ?? '');
    const at = sender.lastIndexOf('@');
    const senderDomain = at < 0 ? null : rhsblDomain(sender.slice(at + 1));
    const helo = input.helo === null ? null : rhsblDomain(input.helo);
    const jobs: { zone: Zone; domain: string; target: 'sender' | 'helo' }[] = [];
    for (const z of this.zones) {
      if (z.targets.includes('sender') && senderDomain !== null)
        jobs.push({ zone: z, domain: senderDomain, target: 'sender' });
      if (z.targets.includes('helo') && helo !== null) jobs.push({ zone: z, domain: helo, target: 'helo' });
    }
    if (jobs.length === 0) return { kind: 'pass' };
    return input.memo
      .message(`rhsbl.${senderDomain ?? ''}.${helo ?? ''}`, () =>
        Promise.all(
          jobs.map((j) => {
            const name = `${j.domain}.${j.zone.zone}`;
            return observedLookup(this.o.dns, j.zone, name, this.o.observer).then((r) => ({ r, j }));
          }),
        ),
      )
      .then(async (done) => {
        for (const { r, j } of done) {
          if (r.kind !== 'listed' && !(r.kind === 'error' && r.zone.onError === 'tempfail')) continue;
          const c = await combine(
            [r],
            1,
            { values: { d: j.domain, i: input.client.address }, name: () => `${j.domain}.${j.zone.zone}` },
            this.o.dns,
            `rhsbl ${j.target} ${j.domain}`,
          );
          const reason = `${j.target} ${j.domain}: ${c.reason}`;
          if (c.verdict !== null) return { kind: 'hit', verdict: c.verdict, reason };
          return {
            kind: 'pass',
            reason,
            ...(c.tags.length > 0 ? { tags: c.tags } : {}),
            ...(c.observed.length > 0 ? { observed: c.observed } : {}),
          };
        }
        return { kind: 'pass' };
      });
  }
}

/** RFC 5782 §5: 127.0.0.2 must be listed, 127.0.0.1 must not. null = healthy, else why not. */
export async function probeZone(dns: DnsLookup, zone: string): Promise<string | null> {
  const z = zone.toLowerCase().replace(/\.$/, '');
  const [listed, clean] = await Promise.all([
    dns.lookup(`2.0.0.127.${z}`, 'A'),
    dns.lookup(`1.0.0.127.${z}`, 'A'),
  ]);
  if (listed.kind !== 'records')
    return `127.0.0.2 is not listed (${listed.kind === 'error' ? listed.error : 'NXDOMAIN'})`;
  if (listed.records.some((r) => classifyAnswer(r).kind === 'error'))
    return `127.0.0.2 answered with an error code (${listed.records.join(', ')})`;
  if (clean.kind === 'records')
    return `127.0.0.1 is listed (${clean.records.join(', ')}): the zone lists everything`;
  if (clean.kind === 'error') return `127.0.0.1 lookup failed: ${clean.error}`;
  return null;
}
