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
import type { SmtpReply } from '../milter/reply-text.js';
import { buildReplyText } from '../milter/reply-text.js';
import { displayText } from '../milter/text.js';
import type { ClientFacts, PolicyInput, PolicyStage, Verdict } from '../rules/check.js';
import type { StageOutcome, TraceEntry } from '../rules/engine.js';
import { clientIp } from '../rules/networks.js';
import { bareAddress } from '../rules/recipient-route.js';
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
const PREFIXED_CODES = new Set([250, 450, 550, 553]);

/** `<addr>... text` as sendmail words its MAIL/RCPT replies. */
function withAddressPrefix(reply: SmtpReply, address: string): SmtpReply {
  const lines = typeof reply.text === 'string' ? [reply.text] : [...reply.text];
  lines[0] = `<${address}>... ${lines[0] ?? ''}`;
  return { ...reply, text: lines };
}

export class PolicyHandler implements MilterHandler {
  private runtime: Runtime;
  private boundTransaction = -1;
  private facts: ClientFacts | null = null;

  constructor(
    private readonly source: RuntimeSource,
    private readonly log: SessionLog,
  ) {
    this.runtime = source.current;
  }

  private bind(session: SessionView): Runtime {
    if (session.transaction !== this.boundTransaction) {
      this.boundTransaction = session.transaction;
      this.runtime = this.source.current;
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
      recipient,
      recipients: session.message?.recipients ?? [],
      macro: (name) => macros.get(name),
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
        const outcome = runtime.engine.evaluate(event.stage, this.input(event.stage, session, recipient));
        if (outcome instanceof Promise) {
          return outcome.then(
            (o) => this.conclude(event.stage, o, session, runtime, recipient),
            (e: unknown) => this.failed(event.stage, e),
          );
        }
        return this.conclude(event.stage, outcome, session, runtime, recipient);
      }
      case 'data':
      case 'header':
      case 'eoh':
      case 'body':
      case 'unknown':
        return CONTINUE;
    }
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
    if (stage === 'rcpt' || o.verdict !== null || o.trace.length > 0) {
      this.logDecision(stage, o, session, runtime, decision, reply, recipient);
    }
    return decision;
  }

  /**
   * The Decision with its reply text, and the reply as the SMTP client sees it (for the log): with
   * the `<addr>... ` prefix whichever MTA adds it, and `%%` back to `%`.
   */
  private toDecision(
    stage: PolicyStage,
    verdict: Verdict | null,
    session: SessionView,
    subject: string | null,
  ): { decision: Decision; reply: string | null } {
    if (verdict === null || verdict.action === 'ok') return { decision: CONTINUE, reply: null };
    if (verdict.action === 'discard') return { decision: { kind: 'discard' }, reply: null };
    const prefixed =
      subject !== null && (stage === 'mail' || stage === 'rcpt') && PREFIXED_CODES.has(verdict.reply.code)
        ? withAddressPrefix(verdict.reply, bareAddress(subject))
        : verdict.reply;
    // Postfix passes the text through as it is; sendmail (and an MTA that does not say) adds the prefix.
    const built = buildReplyText(session.mta === 'postfix' ? prefixed : verdict.reply);
    if (!built.ok) {
      // The address came from the client: a text that cannot be sent falls back to the plain reply.
      this.log.warn(
        { event: 'reply_invalid', problem: built.problem },
        'reply text not sendable; using the MTA default',
      );
      return { decision: { kind: verdict.action }, reply: null };
    }
    const seen = session.mta === 'postfix' ? built : buildReplyText(prefixed);
    const reply = (seen.ok ? seen.text : built.text).replace(/%%/g, '%');
    return { decision: { kind: verdict.action, text: built.text }, reply };
  }

  private logDecision(
    stage: PolicyStage,
    o: StageOutcome,
    session: SessionView,
    runtime: Runtime,
    decision: Decision,
    reply: string | null,
    recipient: string | null,
  ): void {
    const c = session.client;
    const m = session.message;
    const passes = o.trace.filter((t) => t.result === 'pass');
    const observed = o.trace.filter((t) => t.result === 'observed').map(observedEntry);
    const errors = o.trace
      .filter((t) => t.result === 'error')
      .map((t) => ({ check: t.check, error: t.reason }));
    this.log.info({
      event: 'decision',
      stage,
      action: decision.kind === 'continue' ? 'accept' : decision.kind,
      rule: o.decidedBy ?? passes[passes.length - 1]?.check ?? null,
      reason: o.reason ?? (passes.length > 0 ? passes.map((t) => t.reason).join('; ') : null),
      reply,
      queue_id: session.macros.get('i') ?? null,
      client_addr: c?.address ?? null,
      client_name: c === null ? null : displayText(c.hostname),
      helo: session.helo === null ? null : displayText(session.helo),
      sender: m?.sender === null || m === null ? null : logAddress(m.sender),
      ...(stage === 'rcpt'
        ? { recipient: recipient === null ? null : logAddress(recipient) }
        : { recipients: (m?.recipients ?? []).map(logAddress) }),
      mta: session.mta,
      transaction: session.transaction,
      config_generation: runtime.generation,
      ...(observed.length > 0 ? { observed } : {}),
      ...(errors.length > 0 ? { errors } : {}),
    });
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
    const { decision, reply } = this.toDecision('eom', o.verdict, session, null);
    const modifications: Modification[] =
      decision.kind === 'continue' || decision.kind === 'accept'
        ? o.addHeaders.map((h) => ({ kind: 'addHeader', name: h.name, value: h.value }))
        : [];
    this.logDecision('eom', o, session, runtime, decision, reply, null);
    return { decision, modifications };
  }

  abortMessage(_session: SessionView): void {
    // No per-message state is kept here: the session owns it and resets it.
  }

  close(_session: SessionView): void {
    this.facts = null;
  }
}

/** Envelope addresses as `<addr>` in logs, also where Postfix's local submissions send them bare. */
function logAddress(a: string): string {
  const t = displayText(a.trim());
  return t.startsWith('<') && t.endsWith('>') ? t : `<${t}>`;
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
