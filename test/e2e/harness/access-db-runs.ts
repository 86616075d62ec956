// The machinery of the access_db differential test: one SMTP session per case against one MTA
// (recording every reply), the wait until that MTA's queue has settled, what reached the sink
// (and for which of the case's recipients) or was held in the queue (quarantine), the daemon's
// decision lines of the session, and the comparison of a run with the oracle run (real
// sendmail's own access_db). Called by access-db-differential.test.ts; knows nothing of the
// particular matrix. Fails loudly: a queue that does not settle throws; protocol surprises
// (a closed connection, a missing reply) are recorded as code 0 "connection closed", not thrown.

import type { Dirent } from 'node:fs';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { AccessCase } from '../access-db-matrix.js';
import { heloOf } from '../access-db-matrix.js';
import type { Decision, PolicyDaemon } from './daemon.js';
import type { SinkMessage, SmtpSink } from './sink.js';
import { headerValues } from './sink.js';
import type { SmtpReply } from './smtp-client.js';
import { SmtpClient, testMessage } from './smtp-client.js';
import { sleep, waitUntil } from './testbed.js';

export type RunName = 'A' | 'B' | 'C';

export const RUN_TITLES: Record<RunName, string> = {
  A: 'sendmail 8.17 access_db (oracle)',
  B: 'sendmail 8.17 + milter-policy',
  C: 'Postfix 3.7 + milter-policy',
};

/** One reply; code 0 = no reply (the connection was closed). */
export interface StepReply {
  code: number;
  text: string;
}

/** Where the message went. */
export interface Delivery {
  /**
   * delivered: reached the sink (for `rcpts`); held: in the MTA's queue as quarantined/held;
   * dropped: end of DATA said 2xx but nothing arrived or stayed (DISCARD); none: no 2xx at end of
   * DATA (or DATA never sent).
   */
  state: 'delivered' | 'held' | 'dropped' | 'none';
  /** Indices into the case's rcpts that the sink received (delivered only). */
  rcpts: number[];
  /** The addresses as the sink received them. */
  sinkRcpts: string[];
  /** sendmail's quarantine reason (Postfix keeps none). */
  reason?: string;
}

export interface CaseResult {
  id: string;
  run: RunName;
  client: string;
  helo: string;
  greeting: StepReply;
  heloReply: StepReply;
  mail: StepReply;
  rcpts: StepReply[];
  /** Final reply to the message (or the refusal of DATA itself); null = DATA not sent. */
  data: StepReply | null;
  delivery: Delivery;
  /** The daemon's decision lines for this session (runs B and C). */
  decisions: Decision[];
  ms: number;
}

const CLOSED: StepReply = { code: 0, text: 'connection closed' };

function reply(r: SmtpReply): StepReply {
  return { code: r.code, text: r.text };
}

/** The per-case token (Subject) that finds the message in the sink or the queue. */
export function tokenOf(run: RunName, c: AccessCase): string {
  return `adb-${run}-${c.id.replace(/[^A-Za-z0-9.+@-]/g, '_')}`;
}

/** One session for one case; every command is sent whatever the replies were. */
export async function runCase(run: RunName, port: number, c: AccessCase): Promise<CaseResult> {
  const started = Date.now();
  const helo = heloOf(c);
  const out: CaseResult = {
    id: c.id,
    run,
    client: c.client,
    helo,
    greeting: CLOSED,
    heloReply: CLOSED,
    mail: CLOSED,
    rcpts: c.rcpts.map(() => CLOSED),
    data: null,
    delivery: { state: 'none', rcpts: [], sinkRcpts: [] },
    decisions: [],
    ms: 0,
  };
  let client: SmtpClient;
  try {
    client = await SmtpClient.connect({ port, localAddress: c.client, timeoutMs: 20_000 });
  } catch (err) {
    throw new Error(`${run} ${c.id}: cannot connect from ${c.client}: ${String(err)}`, { cause: err });
  }
  let open = true;
  const step = async (send: () => Promise<SmtpReply>): Promise<StepReply> => {
    if (!open) return CLOSED;
    try {
      return reply(await send());
    } catch (err) {
      if (/connection closed|ECONNRESET|EPIPE/.test(String(err))) {
        open = false;
        return CLOSED;
      }
      throw err;
    }
  };
  try {
    out.greeting = reply(client.greeting);
    out.heloReply = await step(() => client.command(`${c.heloVerb ?? 'EHLO'} ${helo}`));
    out.mail = await step(() => client.command(`MAIL FROM:<${c.from}>`));
    for (const [i, r] of c.rcpts.entries()) out.rcpts[i] = await step(() => client.rcpt(r));
    if ((c.data ?? true) && out.rcpts.some((r) => r.code >= 200 && r.code < 300)) {
      const token = tokenOf(run, c);
      const message = testMessage({
        from: c.from || 'mailer-daemon@neutral.example',
        to: [...c.rcpts],
        token,
      });
      if (open) {
        try {
          const { start, final } = await client.data(message);
          out.data = reply(start.code === 354 ? final : start);
        } catch (err) {
          if (!/connection closed|ECONNRESET|EPIPE/.test(String(err))) throw err;
          open = false;
          out.data = CLOSED;
        }
      } else {
        out.data = CLOSED;
      }
    }
  } finally {
    if (open) await client.quit();
    else client.destroy();
  }
  out.ms = Date.now() - started;
  return out;
}

/** Runs `cases` with at most `parallel` sessions at a time; results in case order. */
export async function runCases(
  run: RunName,
  port: number,
  cases: readonly AccessCase[],
  parallel: number,
): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array<CaseResult>(cases.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      const c = cases[i];
      if (c === undefined) return;
      results[i] = await runCase(run, port, c);
    }
  };
  await Promise.all(Array.from({ length: parallel }, () => worker()));
  return results;
}

/** Files under a directory tree (empty when it does not exist). */
function filesUnder(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

/** A queue to inspect after a run: what is still in flight, and what is held. */
export interface QueueView {
  /** Files of messages still being delivered. */
  inFlight(): string[];
  /** Files of held (quarantined) messages, with the reason when the MTA keeps one. */
  held(): Array<{ file: string; reason?: string }>;
}

/** sendmail's queue directory: qf* = in flight, hf* = quarantined (line `q<reason>`). */
export function sendmailQueue(mqueue: string): QueueView {
  return {
    inFlight: () => filesUnder(mqueue).filter((f) => path.basename(f).startsWith('qf')),
    held: () =>
      filesUnder(mqueue)
        .filter((f) => path.basename(f).startsWith('hf'))
        .map((file) => {
          const q = readFileSync(file, 'latin1')
            .split('\n')
            .find((l) => l.startsWith('q'));
          return q === undefined ? { file } : { file, reason: q.slice(1) };
        }),
  };
}

/** Postfix's queue: incoming/active/deferred/maildrop = in flight, hold = held (no reason kept). */
export function postfixQueue(spool: string): QueueView {
  return {
    inFlight: () =>
      ['incoming', 'active', 'deferred', 'maildrop'].flatMap((d) => filesUnder(path.join(spool, d))),
    held: () => filesUnder(path.join(spool, 'hold')).map((file) => ({ file })),
  };
}

/** Waits until nothing is in flight in the queue and the sink has been quiet for `quietMs`. */
export async function waitSettled(queue: QueueView, sink: SmtpSink, quietMs = 1000): Promise<void> {
  let count = -1;
  let since = Date.now();
  await waitUntil(
    'the queue to settle',
    () => {
      if (sink.messages.length !== count) {
        count = sink.messages.length;
        since = Date.now();
      }
      return queue.inFlight().length === 0 && Date.now() - since >= quietMs ? true : undefined;
    },
    60_000,
    100,
  );
}

/** Maps a sink recipient back to the case's RCPT index (local recipients arrive rewritten). */
function rcptIndex(
  sinkRcpt: string,
  c: AccessCase,
  used: Set<number>,
  localDomains: readonly string[],
  rewrittenDomains: readonly string[],
): number {
  const lower = sinkRcpt.toLowerCase();
  for (const [i, r] of c.rcpts.entries()) if (!used.has(i) && r.toLowerCase() === lower) return i;
  const at = lower.lastIndexOf('@');
  const local = at === -1 ? lower : lower.slice(0, at);
  const domain = at === -1 ? '' : lower.slice(at + 1);
  if (!rewrittenDomains.includes(domain)) return -1;
  for (const [i, r] of c.rcpts.entries()) {
    if (used.has(i)) continue;
    const rl = r.toLowerCase();
    const rat = rl.lastIndexOf('@');
    const rlocal = rat === -1 ? rl : rl.slice(0, rat);
    const rdomain = rat === -1 ? '' : rl.slice(rat + 1);
    if (rlocal === local && (rdomain === '' || localDomains.includes(rdomain))) return i;
  }
  return -1;
}

/** Fills in `delivery` of every result from the sink and the queue (call after waitSettled). */
export function collectDeliveries(
  results: CaseResult[],
  cases: readonly AccessCase[],
  sink: SmtpSink,
  queue: QueueView,
  opts: { localDomains: readonly string[]; rewrittenDomains: readonly string[] },
): void {
  const held = queue.held().map((h) => ({ ...h, text: readFileSync(h.file, 'latin1') }));
  for (const [i, r] of results.entries()) {
    const c = cases[i];
    if (c === undefined) continue;
    if (r.data === null || r.data.code < 200 || r.data.code >= 300) {
      r.delivery = { state: 'none', rcpts: [], sinkRcpts: [] };
      continue;
    }
    const token = tokenOf(r.run, c);
    const subject = `e2e ${token}`;
    const arrived: SinkMessage[] = sink.messages.filter((m) => headerValues(m, 'Subject').includes(subject));
    if (arrived.length > 0) {
      const sinkRcpts = arrived.flatMap((m) => m.rcptTo);
      const used = new Set<number>();
      const idx = sinkRcpts.map((s) => {
        const k = rcptIndex(s, c, used, opts.localDomains, opts.rewrittenDomains);
        if (k >= 0) used.add(k);
        return k;
      });
      r.delivery = { state: 'delivered', rcpts: idx.sort((a, b) => a - b), sinkRcpts };
      continue;
    }
    const h = held.find((q) => q.text.includes(subject));
    if (h !== undefined) {
      r.delivery = {
        state: 'held',
        rcpts: [],
        sinkRcpts: [],
        ...(h.reason !== undefined ? { reason: h.reason } : {}),
      };
      continue;
    }
    r.delivery = { state: 'dropped', rcpts: [], sinkRcpts: [] };
  }
}

/** Attaches the daemon's decision lines to each result (matched by MTA, HELO and client address). */
export async function collectDecisions(
  results: CaseResult[],
  daemon: PolicyDaemon,
  mta: 'sendmail' | 'postfix',
  settleMs = 500,
): Promise<void> {
  await sleep(settleMs); // decision lines are written asynchronously
  const all = daemon.decisions().filter((d) => d.mta === mta);
  for (const r of results) {
    r.decisions = all.filter((d) => d.helo === r.helo && d.client_addr === r.client);
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison with the oracle.

export type Category = 'accept' | 'tempfail' | 'reject' | 'closed' | 'not sent';

export function categoryOf(r: StepReply | null): Category {
  if (r === null) return 'not sent';
  if (r.code === 0) return 'closed';
  if (r.code < 400) return 'accept';
  if (r.code < 500) return 'tempfail';
  return 'reject';
}

/** Reply text with the parts that differ between two runs of the same MTA taken out. */
export function normalizeText(text: string): string {
  return text
    .replace(/^(250 2\.0\.0 )\S+( Message accepted for delivery)$/, '$1<queue-id>$2')
    .replace(/^(250 2\.0\.0 Ok: queued as )\S+$/, '$1<queue-id>');
}

export interface Difference {
  id: string;
  run: RunName;
  /** mail, rcpt[0], ..., data, delivery */
  step: string;
  kind: 'decision' | 'text' | 'delivery';
  oracle: string;
  other: string;
}

/**
 * Differences between the oracle result `a` and `x` (run B or C). Decisions (accept/tempfail/
 * reject, DATA outcome) always; texts of refusals always; texts of acceptances only for the same
 * MTA (`sameMta`: Postfix's 250 texts are its own, no milter can change them).
 */
export function compareResults(a: CaseResult, x: CaseResult, sameMta: boolean): Difference[] {
  const diffs: Difference[] = [];
  const steps: Array<[string, StepReply | null, StepReply | null]> = [
    ['mail', a.mail, x.mail],
    ...a.rcpts.map((r, i): [string, StepReply | null, StepReply | null] => [
      `rcpt[${i}]`,
      r,
      x.rcpts[i] ?? null,
    ]),
    ['data', a.data, x.data],
  ];
  for (const [step, ra, rx] of steps) {
    const ca = categoryOf(ra);
    const cx = categoryOf(rx);
    const show = (r: StepReply | null): string => (r === null ? '(not sent)' : r.text);
    if (ca !== cx) {
      diffs.push({ id: a.id, run: x.run, step, kind: 'decision', oracle: show(ra), other: show(rx) });
      continue;
    }
    if (ra === null || rx === null) continue;
    if (ca === 'accept' && !sameMta) continue;
    if (normalizeText(ra.text) !== normalizeText(rx.text)) {
      diffs.push({ id: a.id, run: x.run, step, kind: 'text', oracle: ra.text, other: rx.text });
    }
  }
  const da = a.delivery;
  const dx = x.delivery;
  const describe = (d: Delivery): string =>
    d.state === 'delivered'
      ? `delivered to rcpt ${JSON.stringify(d.rcpts)}`
      : d.state === 'held'
        ? `held${d.reason !== undefined ? ` (${d.reason})` : ''}`
        : d.state;
  const sameDelivery =
    da.state === dx.state &&
    JSON.stringify(da.rcpts) === JSON.stringify(dx.rcpts) &&
    (!sameMta || da.reason === dx.reason);
  if (!sameDelivery) {
    diffs.push({
      id: a.id,
      run: x.run,
      step: 'delivery',
      kind: 'delivery',
      oracle: describe(da),
      other: describe(dx),
    });
  }
  return diffs;
}

/** An explained disagreement: which case(s), which run, which step, and why a milter cannot agree. */
export interface KnownDifference {
  /** Case id, or a pattern over case ids. */
  id: string | RegExp;
  run: 'B' | 'C' | 'B+C';
  /** Step prefix ('rcpt' matches every rcpt[i]); omitted = any step. */
  step?: string;
  /** Only this kind of difference (omitted = any). */
  kind?: Difference['kind'];
  /** And only when this holds for the difference, the oracle's result and the other run's. */
  when?: (d: Difference, oracle: CaseResult, other: CaseResult) => boolean;
  why: string;
}

export function explain(
  d: Difference,
  known: readonly KnownDifference[],
  oracle: CaseResult,
  other: CaseResult,
): KnownDifference | undefined {
  return known.find(
    (k) =>
      (typeof k.id === 'string' ? k.id === d.id : k.id.test(d.id)) &&
      (k.run === 'B+C' || k.run === d.run) &&
      (k.step === undefined || d.step.startsWith(k.step)) &&
      (k.kind === undefined || k.kind === d.kind) &&
      (k.when === undefined || k.when(d, oracle, other)),
  );
}

/** The replies of a result in step order: mail, rcpt[0..], data (null = not sent). */
export function stepReplies(r: CaseResult): Array<{ step: string; reply: StepReply | null }> {
  return [
    { step: 'mail', reply: r.mail },
    ...r.rcpts.map((reply, i) => ({ step: `rcpt[${i}]`, reply })),
    { step: 'data', reply: r.data },
  ];
}

/** One compact line of a run's replies: `MAIL 250 | RCPT 550 250 | DATA 250 -> delivered [1]`. */
export function compactLine(r: CaseResult): string {
  const d = r.delivery;
  const where =
    d.state === 'delivered' ? `delivered ${JSON.stringify(d.rcpts)}` : d.state === 'none' ? '-' : d.state;
  return `${r.mail.code} | ${r.rcpts.map((x) => x.code).join(' ')} | ${r.data?.code ?? '-'} ${where}`;
}
