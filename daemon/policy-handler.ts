// The bridge between one milter session and the policy engine: builds the PolicyInput for each
// stage event, runs the engine, turns the combined verdict into a milter Decision with the reply
// text, and writes one `decision` log line per recipient and per message. Created per SMTP session
// by the daemon's HandlerFactory; it never throws into the session (the session would tempfail).
//
// Reply text: sendmail prefixes `<addr>... ` to 250/450/550/553 replies at MAIL and RCPT itself,
// Postfix passes milter text unchanged; so the prefix is added here only when the MTA is Postfix,
// and the SMTP client sees the same text through both (landscape.md §7).
// Reload: the runtime is taken anew at the start of every transaction, never in the middle of one.

import type {
  Decision,
  EomResult,
  HandlerEvent,
  HandlerFactory,
  MilterHandler,
  SessionView,
} from '../milter/handler.js';
import type { Modification } from '../milter/commands.js';
import type { SessionLog } from '../milter/session.js';
import { buildReplyText } from '../milter/reply-text.js';
import { clientReply } from './client-reply.js';
import { logAddress } from './log-address.js';
import { MessageContentCollector } from './message-content.js';
import { displayText } from '../milter/text.js';
import type {
  ClientFacts,
  PolicyInput,
  PolicyMemo,
  PolicyStage,
  SessionHooks,
  SettledOutcome,
  Verdict,
} from '../rules/check.js';
import type { StageOutcome, TraceEntry } from '../rules/engine.js';
import { clientIp } from '../rules/networks.js';
import type { Runtime } from './runtime.js';

export interface RuntimeSource {
  readonly current: Runtime;
}

/** What the server needs: negotiation from the current runtime, a PolicyHandler per SMTP session. */
export function policyHandlerFactory(source: RuntimeSource): HandlerFactory {
  return {
    needs: () => source.current.needs,
    open: (_id, sessionLog) => new PolicyHandler(source, sessionLog),
  };
}

const CONTINUE: Decision = Object.freeze({ kind: 'continue' });

export class PolicyHandler implements MilterHandler {
  private runtime: Runtime;
  private boundTransaction = -1;
  private facts: ClientFacts | null = null;
  private readonly connectionNotes = new Map<string, unknown>();
  private readonly messageNotes = new Map<string, unknown>();
  /** The last quarantine reason of this transaction (sent at end of message). */
  private quarantine: string | null = null;
  /** The message as it streams in, when end-of-message checks want it (one per transaction). */
  private content: MessageContentCollector | null = null;
  /** Tag-mode findings of this transaction, added as headers at end of message. */
  private tags: string[] = [];
  /** A DISCARD verdict before end of message: carried out there (see conclude). */
  private discard: { rule: string | null; entry: string | null; reason: string | null } | null = null;
  private readonly memo: PolicyMemo = {
    connection: <T>(key: string, compute: () => T): T => remember(this.connectionNotes, key, compute),
    message: <T>(key: string, compute: () => T): T => remember(this.messageNotes, key, compute),
  };
  /** Kept for the whole SMTP session, across reloads (rate-limit leases, connections counted). */
  private readonly sessionNotes = new Map<string, unknown>();
  private atClose: (() => unknown)[] = [];
  private readonly sessionHooks: SessionHooks = {
    keep: <T>(key: string, compute: () => T): T => remember(this.sessionNotes, key, compute),
    atClose: (release) => {
      this.atClose.push(release);
    },
  };

  constructor(
    private readonly source: RuntimeSource,
    private readonly log: SessionLog,
  ) {
    this.runtime = source.current;
  }

  private bind(session: SessionView): Runtime {
    if (session.transaction !== this.boundTransaction) {
      this.boundTransaction = session.transaction;
      this.messageNotes.clear();
      this.quarantine = null;
      this.discard = null;
      this.content = null;
      this.tags = [];
      const next = this.source.current;
      // Values remembered for the connection were computed from the old rules.
      if (next !== this.runtime) this.connectionNotes.clear();
      this.runtime = next;
    }
    return this.runtime;
  }

  private client(session: SessionView): ClientFacts {
    if (this.facts !== null) return this.facts;
    const c = session.client;
    const facts: ClientFacts =
      c === null
        ? { address: '', ip: null, hostname: '', port: 0, kind: 'unknown' }
        : {
            address: c.address,
            ip: c.family === 'inet4' || c.family === 'inet6' ? clientIp(c.address) : null,
            hostname: c.hostname,
            port: c.port,
            kind: c.family,
          };
    if (c !== null) this.facts = facts;
    return facts;
  }

  private input(stage: PolicyStage, session: SessionView, recipient: string | null): PolicyInput {
    const macros = session.macros;
    return {
      stage,
      client: this.client(session),
      helo: session.helo,
      sender: session.message?.sender ?? null,
      senderArgs: session.message?.senderArgs ?? [],
      recipient,
      recipients: session.message?.recipients ?? [],
      macro: (name) => macros.get(name),
      memo: this.memo,
      session: this.sessionHooks,
      ...(stage === 'eom' && this.content !== null ? { content: this.content } : {}),
    };
  }

  decide(event: HandlerEvent, session: SessionView): Decision | Promise<Decision> {
    const runtime = this.bind(session);
    switch (event.stage) {
      case 'connect':
      case 'helo':
      case 'mail':
      case 'rcpt': {
        const recipient = event.stage === 'rcpt' ? event.recipient : null;
        const input = this.input(event.stage, session, recipient);
        const outcome = runtime.engine.evaluate(event.stage, input);
        if (outcome instanceof Promise) {
          return outcome.then(
            (o) => this.settle(input, o, this.conclude(event.stage, o, session, runtime, recipient), runtime),
            (e: unknown) => this.failed(event.stage, e),
          );
        }
        return this.settle(
          input,
          outcome,
          this.conclude(event.stage, outcome, session, runtime, recipient),
          runtime,
        );
      }
      case 'data':
      case 'header':
      case 'eoh':
      case 'body':
      case 'unknown':
        return CONTINUE;
    }
  }

  observe(event: HandlerEvent, session: SessionView): void {
    if (
      event.stage === 'connect' ||
      event.stage === 'helo' ||
      event.stage === 'mail' ||
      event.stage === 'rcpt'
    ) {
      // watched without a reply (e.g. a rate limit counting the connection)
      const runtime = this.bind(session);
      if (runtime.engine.watched.has(event.stage)) {
        const recipient = event.stage === 'rcpt' ? event.recipient : null;
        runtime.engine.watch(event.stage, this.input(event.stage, session, recipient));
      }
      return;
    }
    if (event.stage !== 'header' && event.stage !== 'body') return;
    const runtime = this.bind(session);
    if (runtime.engine.content === 'none') return;
    this.content ??= new MessageContentCollector(
      runtime.contentLimits,
      runtime.engine.content === 'body' ? runtime.bodyScanner() : null,
    );
    if (event.stage === 'header') this.content.addHeader(event.name, event.value);
    else this.content.addBody(event.chunk);
  }

  /** Tells the stage's checks how it ended for the client (e.g. the bad-recipient counter). */
  private settle(input: PolicyInput, o: StageOutcome, decision: Decision, runtime: Runtime): Decision {
    const action: SettledOutcome['action'] =
      decision.kind === 'continue' || decision.kind === 'accept' ? 'accept' : decision.kind;
    runtime.engine.settle(input.stage, input, { action, decidedBy: o.decidedBy });
    return decision;
  }

  private failed(stage: string, e: unknown): Decision {
    this.log.error({ event: 'handler_error', stage, err: e }, 'policy evaluation failed; tempfailing');
    return { kind: 'tempfail' };
  }

  /** Verdict -> Decision (with the reply text), plus the decision log line. */
  private conclude(
    stage: PolicyStage,
    o: StageOutcome,
    session: SessionView,
    runtime: Runtime,
    recipient: string | null,
  ): Decision {
    const subject =
      stage === 'rcpt' ? recipient : stage === 'mail' ? (session.message?.sender ?? null) : null;
    const { decision, reply } = this.toDecision(stage, o.verdict, session, subject);
    if (o.quarantine !== null && (decision.kind === 'continue' || decision.kind === 'accept')) {
      this.quarantine = o.quarantine;
    }
    if (o.tags.length > 0 && (decision.kind === 'continue' || decision.kind === 'accept'))
      this.tags.push(...o.tags);
    if (stage === 'rcpt' || o.verdict !== null || o.trace.length > 0) {
      this.logDecision(stage, o, session, runtime, decision, reply, recipient);
    }
    if (decision.kind === 'discard' && (stage === 'mail' || stage === 'rcpt')) {
      // A milter's DISCARD before the end of the message makes the MTA stop asking about this
      // message, so later recipients would escape their checks (a relay attempt after a DISCARD
      // recipient would be accepted). sendmail keeps checking every RCPT and drops the message at
      // the end: accept now, discard at end of message.
      this.discard ??= { rule: o.decidedBy, entry: o.entry, reason: o.reason };
      return CONTINUE;
    }
    return decision;
  }

  private toDecision(
    stage: PolicyStage,
    verdict: Verdict | null,
    session: SessionView,
    subject: string | null,
  ): { decision: Decision; reply: string | null } {
    const r = clientReply(stage, verdict, subject, session.mta);
    if (r.problem !== undefined) {
      // The address came from the client: a text that cannot be sent falls back to the plain reply.
      this.log.warn(
        { event: 'reply_invalid', problem: r.problem },
        'reply text not sendable; using the MTA default',
      );
    }
    return { decision: r.decision, reply: r.seen };
  }

  private logDecision(
    stage: PolicyStage,
    o: StageOutcome,
    session: SessionView,
    runtime: Runtime,
    decision: Decision,
    reply: string | null,
    recipient: string | null,
    quarantine: string | null = null,
  ): void {
    const c = session.client;
    const m = session.message;
    const passes = o.trace.filter((t) => t.result === 'pass');
    const rule = o.decidedBy ?? passes[passes.length - 1]?.check ?? null;
    // counted whether or not the line is written (log.level, log.accepted)
    runtime.services.observer?.decision?.(stage, decision, rule, o, reply);
    const observed = [
      ...o.trace.filter((t) => t.result === 'observed').map(observedEntry),
      ...o.trace.flatMap((t) =>
        (t.observed ?? []).map((note) => ({ check: t.check, would: 'reject', reason: note })),
      ),
    ];
    const errors = o.trace
      .filter((t) => t.result === 'error')
      .map((t) => ({ check: t.check, error: t.reason }));
    const accepted = decision.kind === 'continue' || decision.kind === 'accept';
    const notable =
      !accepted ||
      (o.verdict !== null && o.verdict.action !== 'ok') ||
      quarantine !== null ||
      o.quarantine !== null ||
      o.tags.length > 0 ||
      observed.length > 0 ||
      errors.length > 0;
    const logConfig = runtime.config.log;
    // accepted mail at info only when configured (log.accepted); otherwise at debug
    if (!notable && !logConfig.accepted && this.log.isLevelEnabled?.('debug') === false) return;
    const address = (a: string): string => logAddress(a, logConfig.addresses, logConfig.hashKey);
    // what the line reports: an enforced verdict, observe-mode findings, or tag-mode findings
    const mode =
      o.verdict !== null && o.verdict.action !== 'ok'
        ? 'enforce'
        : observed.length > 0
          ? 'observe'
          : o.tags.length > 0
            ? 'tag'
            : null;
    const line = {
      event: 'decision',
      stage,
      action: decision.kind === 'continue' ? 'accept' : decision.kind,
      rule,
      entry: o.entry ?? passes.findLast((t) => t.entry !== undefined)?.entry ?? null,
      reason: o.reason ?? (passes.length > 0 ? passes.map((t) => t.reason).join('; ') : null),
      reply,
      ...(mode === null ? {} : { mode }),
      queue_id: session.macros.get('i') ?? null,
      client_addr: c?.address ?? null,
      client_name: c === null ? null : displayText(c.hostname),
      helo: session.helo === null ? null : displayText(session.helo),
      sender: m?.sender === null || m === null ? null : address(m.sender),
      ...(stage === 'rcpt'
        ? { recipient: recipient === null ? null : address(recipient) }
        : { recipients: (m?.recipients ?? []).map(address) }),
      mta: session.mta,
      transaction: session.transaction,
      config_generation: runtime.generation,
      ...(observed.length > 0 ? { observed } : {}),
      ...(errors.length > 0 ? { errors } : {}),
      ...(quarantine === null ? {} : { quarantine }),
      ...(o.tags.length > 0 ? { tags: o.tags } : {}),
      ...(runtime.accessDb === null ? {} : { access_db: runtime.accessDb.version }),
    };
    if (notable || logConfig.accepted) this.log.info(line);
    else this.log.debug(line);
  }

  endOfMessage(session: SessionView): EomResult | Promise<EomResult> {
    const runtime = this.bind(session);
    const outcome = runtime.engine.evaluate('eom', this.input('eom', session, null));
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.concludeEom(o, session, runtime),
        (e: unknown) => ({ decision: this.failed('eom', e), modifications: [] }),
      );
    }
    return this.concludeEom(outcome, session, runtime);
  }

  private concludeEom(o: StageOutcome, session: SessionView, runtime: Runtime): EomResult {
    const pending = this.discard;
    if (pending !== null && (o.verdict === null || o.verdict.action === 'ok')) {
      const discarded: StageOutcome = {
        ...o,
        verdict: { action: 'discard' },
        decidedBy: pending.rule,
        entry: pending.entry,
        reason: pending.reason,
      };
      const decision: Decision = { kind: 'discard' };
      this.logDecision('eom', discarded, session, runtime, decision, null, null);
      return { decision, modifications: [] };
    }
    const { decision, reply } = this.toDecision('eom', o.verdict, session, null);
    const accepted = decision.kind === 'continue' || decision.kind === 'accept';
    const modifications: Modification[] = accepted
      ? o.addHeaders.map((h) => ({ kind: 'addHeader', name: h.name, value: h.value }))
      : [];
    if (accepted) {
      for (const tag of [...new Set([...this.tags, ...o.tags])]) {
        modifications.push({ kind: 'addHeader', name: runtime.config.tagHeader, value: tagValue(tag) });
      }
    }
    const quarantine = o.quarantine ?? this.quarantine;
    if (accepted && quarantine !== null) modifications.push({ kind: 'quarantine', reason: quarantine });
    this.logDecision('eom', o, session, runtime, decision, reply, null, accepted ? quarantine : null);
    return { decision, modifications };
  }

  abortMessage(_session: SessionView): void {
    this.quarantine = null;
    this.discard = null;
    this.content = null;
    this.tags = [];
    this.messageNotes.clear();
  }

  close(_session: SessionView): void {
    const releases = this.atClose;
    this.atClose = [];
    for (const release of releases) {
      try {
        const r = release();
        if (r instanceof Promise) r.catch(() => undefined);
      } catch {
        // releasing is best effort: a lease that is not released expires
      }
    }
    this.sessionNotes.clear();
    this.facts = null;
    this.connectionNotes.clear();
    this.messageNotes.clear();
  }
}

/** A tag as a header value: one line, printable, bounded. */
function tagValue(tag: string): string {
  // eslint-disable-next-line no-control-regex
  const t = tag.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return t.length > 900 ? `${t.slice(0, 897)}...` : t;
}

function remember<T>(notes: Map<string, unknown>, key: string, compute: () => T): T {
  if (notes.has(key)) return notes.get(key) as T;
  const v = compute();
  notes.set(key, v);
  return v;
}

function observedEntry(t: TraceEntry): Record<string, unknown> {
  const reply = t.reply === undefined ? undefined : buildReplyText(t.reply);
  return {
    check: t.check,
    would: t.action,
    reason: t.reason,
    ...(reply?.ok === true ? { reply: reply.text } : {}),
  };
}
