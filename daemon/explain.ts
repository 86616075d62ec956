// Runs one SMTP transaction through a runtime without an MTA: what `milter-policy query` prints and
// what the golden tests compare. The same engine, checks and reply wording as a real session
// (daemon/policy-handler.ts, daemon/client-reply.ts), fed from a description instead of packets;
// every key the checks try is collected through PolicyInput.explain. Pure apart from the runtime.

import type { MtaFlavour } from '../milter/handler.js';
import type {
  ClientFacts,
  ClientKind,
  PolicyInput,
  PolicyMemo,
  PolicyStage,
  Verdict,
} from '../rules/check.js';
import type { StageOutcome } from '../rules/engine.js';
import { clientIp } from '../rules/networks.js';
import { clientReply } from './client-reply.js';
import type { Runtime } from './runtime.js';

export interface TransactionSpec {
  readonly clientAddress: string;
  /** Verified PTR name; default `[address]` (unresolved). */
  readonly clientName?: string;
  readonly helo?: string;
  /** As in MAIL FROM, with or without angle brackets; `<>` for the null sender. */
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly mta?: MtaFlavour;
  /** The MTA's own host name (macro j). */
  readonly mtaHost?: string;
  /** {auth_authen}. */
  readonly auth?: string;
  /** {client_resolve}: OK, FAIL, FORGED, TEMP; absent = the MTA did not say. */
  readonly resolve?: string;
}

export type Outcome = 'accept' | 'reject' | 'tempfail' | 'discard';

export interface StageExplanation {
  readonly stage: PolicyStage;
  /** The sender or recipient the stage is about. */
  readonly subject: string | null;
  readonly outcome: Outcome;
  /** The reply the SMTP client sees, or null for the MTA's own (250, or its default text). */
  readonly reply: string | null;
  readonly decidedBy: string | null;
  readonly entry: string | null;
  readonly reason: string | null;
  readonly quarantine: string | null;
  /** Every line the checks explained, `check: text`. */
  readonly lines: readonly string[];
}

export interface TransactionExplanation {
  readonly stages: readonly StageExplanation[];
  /** What happens to the message: delivered to these recipients, discarded, or refused. */
  readonly message: {
    readonly outcome: 'delivered' | 'discarded' | 'refused';
    readonly recipients: readonly string[];
    readonly quarantine: string | null;
  };
}

function outcomeOf(v: Verdict | null): Outcome {
  if (v === null || v.action === 'ok') return 'accept';
  return v.action;
}

function bracket(a: string): string {
  const t = a.trim();
  return t.startsWith('<') ? t : `<${t}>`;
}

export function explainTransaction(runtime: Runtime, spec: TransactionSpec): TransactionExplanation {
  const ip = clientIp(spec.clientAddress);
  const kind: ClientKind = ip === null ? 'unknown' : ip.kind() === 'ipv4' ? 'inet4' : 'inet6';
  const client: ClientFacts = {
    address: ip === null ? spec.clientAddress : ip.toString(),
    ip,
    hostname: spec.clientName ?? (ip === null ? '' : `[${ip.toString()}]`),
    port: 25,
    kind,
  };
  const mta = spec.mta ?? 'sendmail';
  const macros: Record<string, string> = { j: spec.mtaHost ?? 'mx.example', i: 'QUERY1' };
  if (mta === 'postfix') macros['v'] = 'Postfix 3.7.11';
  if (spec.auth !== undefined) macros['auth_authen'] = spec.auth;
  if (spec.resolve !== undefined) macros['client_resolve'] = spec.resolve;
  const conn = new Map<string, unknown>();
  const msg = new Map<string, unknown>();
  const remember = <T>(m: Map<string, unknown>, key: string, compute: () => T): T => {
    if (m.has(key)) return m.get(key) as T;
    const v = compute();
    m.set(key, v);
    return v;
  };
  const memo: PolicyMemo = {
    connection: (key, compute) => remember(conn, key, compute),
    message: (key, compute) => remember(msg, key, compute),
  };
  const stages: StageExplanation[] = [];
  const accepted: string[] = [];
  let quarantine: string | null = null;
  let discarded = false;
  const sender = bracket(spec.sender);

  const run = (stage: PolicyStage, recipient: string | null, subject: string | null): StageExplanation => {
    const lines: string[] = [];
    const input: PolicyInput = {
      stage,
      client,
      helo: spec.helo ?? null,
      sender,
      senderArgs: [],
      recipient,
      recipients: accepted,
      macro: (name) => macros[name.replace(/^\{(.*)\}$/, '$1')],
      memo,
      explain: (check, line) => lines.push(`${check}: ${line}`),
    };
    const o = runtime.engine.evaluate(stage, input);
    if (o instanceof Promise) throw new Error('explain: asynchronous checks are not supported here');
    for (const t of o.trace) {
      if (t.result !== 'pass' || t.reason !== undefined)
        lines.push(
          `${t.check}: ${t.result}${t.reason === undefined ? '' : `: ${t.reason}`}${t.entry === undefined ? '' : ` (${t.entry})`}`,
        );
    }
    return describe(stage, o, subject, mta, lines);
  };

  for (const stage of ['connect', 'helo'] as const) {
    if (runtime.engine.stages.has(stage)) stages.push(run(stage, null, null));
  }
  const mail = run('mail', null, sender);
  stages.push(mail);
  if (mail.outcome === 'discard') discarded = true;
  if (mail.quarantine !== null) quarantine = mail.quarantine;
  if (mail.outcome === 'reject' || mail.outcome === 'tempfail') {
    return { stages, message: { outcome: 'refused', recipients: [], quarantine: null } };
  }
  for (const r of spec.recipients) {
    const rcpt = bracket(r);
    const e = run('rcpt', rcpt, rcpt);
    stages.push(e);
    if (e.outcome === 'accept' || e.outcome === 'discard') accepted.push(rcpt);
    if (e.outcome === 'discard') discarded = true;
    if (e.quarantine !== null && e.outcome === 'accept') quarantine = e.quarantine;
  }
  if (accepted.length === 0)
    return { stages, message: { outcome: 'refused', recipients: [], quarantine: null } };
  const eom = run('eom', null, null);
  stages.push(eom);
  if (eom.quarantine !== null) quarantine = eom.quarantine;
  if (discarded || eom.outcome === 'discard')
    return { stages, message: { outcome: 'discarded', recipients: accepted, quarantine: null } };
  if (eom.outcome !== 'accept')
    return { stages, message: { outcome: 'refused', recipients: [], quarantine: null } };
  return { stages, message: { outcome: 'delivered', recipients: accepted, quarantine } };
}

function describe(
  stage: PolicyStage,
  o: StageOutcome,
  subject: string | null,
  mta: MtaFlavour,
  lines: string[],
): StageExplanation {
  const r = clientReply(stage, o.verdict, subject, mta);
  return {
    stage,
    subject,
    outcome: outcomeOf(o.verdict),
    reply: r.seen,
    decidedBy: o.decidedBy,
    entry: o.entry,
    reason: o.reason,
    quarantine: o.quarantine,
    lines,
  };
}

/** Human-readable form for `milter-policy query`. */
export function formatExplanation(spec: TransactionSpec, x: TransactionExplanation): string {
  const out: string[] = [];
  out.push(
    `client ${spec.clientAddress} ${spec.clientName ?? `[${spec.clientAddress}]`}${spec.helo === undefined ? '' : `, HELO ${spec.helo}`}${spec.auth === undefined ? '' : `, AUTH ${spec.auth}`}`,
  );
  for (const s of x.stages) {
    out.push(`${s.stage.toUpperCase()}${s.subject === null ? '' : ` ${s.subject}`}`);
    for (const l of s.lines) out.push(`  ${l}`);
    const who = s.decidedBy === null ? '' : `   [${s.decidedBy}${s.entry === null ? '' : `, ${s.entry}`}]`;
    const reply =
      s.reply ??
      (s.outcome === 'accept'
        ? '250 (accepted)'
        : s.outcome === 'discard'
          ? '250 (accepted, message will be discarded)'
          : `(${s.outcome}, the MTA's default text)`);
    out.push(`  => ${reply}${who}${s.quarantine === null ? '' : `   quarantine: ${s.quarantine}`}`);
  }
  const m = x.message;
  out.push(
    `message: ${m.outcome}${m.recipients.length > 0 ? ` for ${m.recipients.join(', ')}` : ''}${m.quarantine === null ? '' : ` (held: ${m.quarantine})`}`,
  );
  return `${out.join('\n')}\n`;
}
