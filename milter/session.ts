// One milter connection: frames in, replies out, with the protocol's state machine in between.
// Socket-free: the server gives it a SessionIo (write, close, pause/resume) and feeds it bytes.
//
// What it guarantees (milter-protocol.md §6):
//   - OPTNEG first, negotiated from the handler factory's needs (./negotiate.ts);
//   - commands are processed strictly in order; while an asynchronous decision is pending, later
//     frames are queued (and the socket paused past a high-water mark), so replies stay in order
//     even when the MTA pipelines commands it negotiated NR_* for;
//   - exactly one final reply to each command that is owed one, never a reply where the NR_* bit
//     was negotiated, modifications only at end of message and only those the actions allow;
//   - connection state (client, HELO, macros) survives ABORT; message state is reset on ABORT,
//     MAIL, HELO and after end of message; QUIT_NC starts a new SMTP session on the same socket;
//     EOF is treated as QUIT;
//   - a malformed frame (./decode.ts, ./frame-reader.ts) closes this one connection after the
//     error is reported; a handler that throws or rejects gets the message tempfailed, logged as
//     `handler_error`. Nothing is ever thrown out of feed().

import type { Command, ConnectInfo, Modification, ProtocolError, Response } from './commands.js';
import { commandName, protocolError } from './commands.js';
import { SMFIF, SMFIC } from './constants.js';
import { decodeCommand } from './decode.js';
import { EncodeError, encodeResponse } from './encode.js';
import { FrameReader } from './frame-reader.js';
import type {
  Decision,
  EomResult,
  HandlerEvent,
  HandlerFactory,
  MessageState,
  MilterHandler,
  MtaFlavour,
  SessionView,
} from './handler.js';
import { MacroStore } from './macros.js';
import type { EventStage, PolicyNeeds } from './negotiate.js';
import { EVENT_BITS, negotiate } from './negotiate.js';

export interface SessionIo {
  /** Writes one or more complete packets (each Buffer is one packet). */
  write(packets: Buffer | readonly Buffer[]): void;
  /** Ends the connection (after flushing what was written). */
  close(): void;
  pause(): void;
  resume(): void;
}

/** The subset of a pino logger the session uses. */
export interface SessionLog {
  /** pino's: lets a caller skip building a line nobody will see. */
  isLevelEnabled?(level: string): boolean;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SessionOptions {
  readonly id: number;
  readonly maxPayload: number;
  /** Queued frames beyond which the socket is paused while a decision is pending. */
  readonly queueHighWater?: number;
}

const STAGE_OF_COMMAND: Partial<Record<Command['kind'], EventStage>> = {
  connect: 'connect',
  helo: 'helo',
  mail: 'mail',
  rcpt: 'rcpt',
  data: 'data',
  header: 'header',
  eoh: 'eoh',
  body: 'body',
  unknown: 'unknown',
};

const REQUIRED_ACTION: Record<Modification['kind'], number> = {
  addHeader: SMFIF.ADDHDRS,
  insertHeader: SMFIF.ADDHDRS,
  changeHeader: SMFIF.CHGHDRS,
  addRecipient: SMFIF.ADDRCPT,
  deleteRecipient: SMFIF.DELRCPT,
  changeFrom: SMFIF.CHGFROM,
  replaceBody: SMFIF.CHGBODY,
  quarantine: SMFIF.QUARANTINE,
};

function newMessage(): MessageState {
  return { sender: null, senderArgs: [], recipients: [], rejectedRecipients: 0, headers: 0, bodyBytes: 0 };
}

export function mtaFlavour(v: string | undefined): MtaFlavour {
  if (v === undefined) return 'unknown';
  return v.startsWith('Postfix') ? 'postfix' : 'sendmail';
}

type Phase = 'start' | 'ready' | 'closed';

export class MilterSession implements SessionView {
  readonly id: number;
  readonly macros = new MacroStore();
  client: ConnectInfo | null = null;
  helo: string | null = null;
  message: MessageState | null = null;
  actions = 0;
  transaction = 0;

  private phase: Phase = 'start';
  private protocol = 0;
  private needs: PolicyNeeds | null = null;
  private handler: MilterHandler | null = null;
  private readonly reader: FrameReader;
  private busy = false;
  private readonly queue: [number, Buffer][] = [];
  private readonly highWater: number;
  private paused = false;
  private mtaCache: MtaFlavour | null = null;

  constructor(
    options: SessionOptions,
    private readonly factory: HandlerFactory,
    private readonly io: SessionIo,
    private readonly log: SessionLog,
  ) {
    this.id = options.id;
    this.reader = new FrameReader(options.maxPayload);
    this.highWater = options.queueHighWater ?? 64;
  }

  get mta(): MtaFlavour {
    if (this.mtaCache === null) {
      const v = this.macros.get('v');
      if (v === undefined) return 'unknown';
      this.mtaCache = mtaFlavour(v);
    }
    return this.mtaCache;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Bytes from the socket. */
  feed(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    const err = this.reader.push(chunk, this.onFrame);
    if (err !== null) this.protocolFailure(err);
  }

  /** The peer closed its end (EOF) or the socket failed: same as QUIT. */
  end(reason: 'eof' | 'error' | 'timeout' | 'shutdown'): void {
    if (this.phase === 'closed') return;
    if (reason !== 'eof') this.log.debug({ event: 'session_end', reason });
    this.finish();
  }

  private readonly onFrame = (code: number, payload: Buffer): void => {
    if (this.phase === 'closed') return;
    if (this.busy) {
      this.queue.push([code, payload]);
      if (!this.paused && this.queue.length >= this.highWater) {
        this.paused = true;
        this.io.pause();
      }
      return;
    }
    this.handleFrame(code, payload);
  };

  private drain(): void {
    while (!this.busy && this.phase !== 'closed') {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.handleFrame(next[0], next[1]);
    }
    if (this.paused && !this.busy && this.queue.length === 0 && this.phase !== 'closed') {
      this.paused = false;
      this.io.resume();
    }
  }

  private handleFrame(code: number, payload: Buffer): void {
    const cmd = decodeCommand(code, payload);
    if (cmd.kind === 'protocol_error') {
      this.protocolFailure(cmd);
      return;
    }
    if (this.phase === 'start' && cmd.kind !== 'optneg') {
      this.protocolFailure(
        protocolError('out_of_order', `${commandName(code)} before option negotiation`, code),
      );
      return;
    }
    this.dispatch(cmd);
  }

  private protocolFailure(err: ProtocolError): void {
    if (this.phase === 'closed') return;
    this.log.warn(
      {
        event: 'protocol_error',
        code: err.code,
        command: err.command === undefined ? undefined : commandName(err.command),
      },
      err.message,
    );
    this.finish();
  }

  /** Ends the connection: handler closed, socket closed, nothing more processed. */
  private finish(): void {
    if (this.phase === 'closed') return;
    const wasReady = this.phase === 'ready';
    this.phase = 'closed';
    this.queue.length = 0;
    if (wasReady) this.closeHandler();
    this.io.close();
  }

  private closeHandler(): void {
    const h = this.handler;
    this.handler = null;
    if (h === null) return;
    if (this.message !== null) this.safely('abortMessage', () => h.abortMessage(this));
    this.message = null;
    this.safely('close', () => h.close(this));
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ event: 'handler_error', callback: what, err: e }, 'handler threw');
    }
  }

  private owesReply(stage: EventStage): boolean {
    return (this.protocol & EVENT_BITS[stage].nr) === 0;
  }

  private send(r: Response): void {
    this.io.write(encodeResponse(r));
  }

  private dispatch(cmd: Command): void {
    switch (cmd.kind) {
      case 'optneg':
        this.optneg(cmd);
        return;
      case 'macro':
        this.macros.define(cmd.stage, cmd.pairs);
        return;
      case 'abort':
        this.resetMessage();
        return;
      case 'quit':
        this.finish();
        return;
      case 'quitNc':
        // A new SMTP session follows on this socket: forget the old one, keep the negotiation.
        this.closeHandler();
        this.macros.clear();
        this.client = null;
        this.helo = null;
        this.mtaCache = null;
        this.transaction = 0;
        this.handler = this.factory.open(this.id, this.log);
        return;
      case 'eom':
        this.endOfMessage(cmd.chunk);
        return;
      case 'connect':
      case 'helo':
      case 'mail':
      case 'rcpt':
      case 'data':
      case 'header':
      case 'eoh':
      case 'body':
      case 'unknown':
        this.event(cmd);
        return;
    }
  }

  private optneg(cmd: Extract<Command, { kind: 'optneg' }>): void {
    if (this.phase !== 'start') {
      this.protocolFailure(
        protocolError('out_of_order', 'second option negotiation on one connection', SMFIC.OPTNEG),
      );
      return;
    }
    const needs = this.factory.needs();
    const result = negotiate(cmd, needs);
    if (result.kind === 'protocol_error') {
      this.protocolFailure(result);
      return;
    }
    this.needs = needs;
    this.actions = result.actions;
    this.protocol = result.protocol;
    this.phase = 'ready';
    this.handler = this.factory.open(this.id, this.log);
    this.log.debug({
      event: 'negotiated',
      offer: { version: cmd.version, actions: hex(cmd.actions), protocol: hex(cmd.protocol) },
      version: result.version,
      actions: hex(result.actions),
      protocol: hex(result.protocol),
    });
    this.send(result.reply);
  }

  private resetMessage(): void {
    if (this.message === null) return;
    const h = this.handler;
    if (h !== null) this.safely('abortMessage', () => h.abortMessage(this));
    this.message = null;
  }

  /** Records what the session keeps of an event; returns the handler's view of it. */
  private record(
    cmd: Extract<
      Command,
      { kind: 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'unknown' }
    >,
  ): HandlerEvent {
    if (cmd.kind !== 'header' && cmd.kind !== 'body' && cmd.kind !== 'unknown') {
      this.macros.enterStage(EVENT_BITS[cmd.kind].command);
    }
    switch (cmd.kind) {
      case 'connect':
        this.resetMessage();
        this.client = { hostname: cmd.hostname, family: cmd.family, port: cmd.port, address: cmd.address };
        this.mtaCache = null;
        return { stage: 'connect' };
      case 'helo':
        this.resetMessage();
        this.helo = cmd.helo;
        return { stage: 'helo', helo: cmd.helo };
      case 'mail': {
        this.resetMessage();
        const m = newMessage();
        m.sender = cmd.sender;
        m.senderArgs = cmd.args;
        this.message = m;
        this.transaction += 1;
        return { stage: 'mail', sender: cmd.sender, args: cmd.args };
      }
      case 'rcpt':
        this.ensureMessage();
        return { stage: 'rcpt', recipient: cmd.recipient, args: cmd.args };
      case 'data':
        this.ensureMessage();
        return { stage: 'data' };
      case 'header':
        this.ensureMessage().headers += 1;
        return { stage: 'header', name: cmd.name, value: cmd.value };
      case 'eoh':
        this.ensureMessage();
        return { stage: 'eoh' };
      case 'body':
        this.ensureMessage().bodyBytes += cmd.chunk.length;
        return { stage: 'body', chunk: cmd.chunk };
      case 'unknown':
        return { stage: 'unknown', line: cmd.line };
    }
  }

  /** Tolerate an MTA that skips MAIL (the state table is liberal, as libmilter's fallback is). */
  private ensureMessage(): MessageState {
    if (this.message === null) {
      this.message = newMessage();
      this.transaction += 1;
    }
    return this.message;
  }

  private event(
    cmd: Extract<
      Command,
      { kind: 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'unknown' }
    >,
  ): void {
    const stage = STAGE_OF_COMMAND[cmd.kind] as EventStage;
    const ev = this.record(cmd);
    const owed = this.owesReply(stage);
    const needs = this.needs as PolicyNeeds;
    const handler = this.handler;
    if (handler === null || !needs.decideAt.has(stage)) {
      // Observed or unexpected (suppressed but sent anyway): recorded above, answered with continue.
      if (cmd.kind === 'rcpt') this.message?.recipients.push(cmd.recipient);
      if (handler !== null && handler.observe !== undefined && needs.observe.has(stage)) {
        const observe = handler.observe.bind(handler);
        this.safely('observe', () => observe(ev, this));
      }
      if (owed) this.send({ kind: 'continue' });
      return;
    }
    let result: Decision | Promise<Decision>;
    try {
      result = handler.decide(ev, this);
    } catch (e) {
      this.handlerFailed(stage, e, owed);
      return;
    }
    if (result instanceof Promise) {
      this.busy = true;
      result.then(
        (d) => this.afterDecision(stage, cmd, d, owed),
        (e: unknown) => this.handlerFailed(stage, e, owed),
      );
      return;
    }
    this.afterDecision(stage, cmd, result, owed);
  }

  private handlerFailed(stage: EventStage | 'eom', e: unknown, owed: boolean): void {
    this.log.error({ event: 'handler_error', stage, err: e }, 'policy handler failed; tempfailing');
    if (this.phase === 'closed') return;
    if (owed) this.send({ kind: 'tempfail' });
    this.continueAfterAsync();
  }

  private continueAfterAsync(): void {
    if (this.busy) {
      this.busy = false;
      this.drain();
    }
  }

  private afterDecision(stage: EventStage, cmd: Command, d: Decision, owed: boolean): void {
    if (this.phase === 'closed') return;
    if (cmd.kind === 'rcpt' && this.message !== null) {
      if (d.kind === 'continue' || d.kind === 'accept') this.message.recipients.push(cmd.recipient);
      else if (d.kind === 'reject' || d.kind === 'tempfail') this.message.rejectedRecipients += 1;
    }
    if (owed) {
      this.send(this.replyFor(stage, d));
      // A message-level final verdict before end of message ends the transaction for this milter.
      if (
        this.message !== null &&
        stage !== 'rcpt' &&
        stage !== 'connect' &&
        stage !== 'helo' &&
        d.kind !== 'continue'
      ) {
        this.resetMessage();
      }
    }
    this.continueAfterAsync();
  }

  private replyFor(stage: EventStage | 'eom', d: Decision): Response {
    switch (d.kind) {
      case 'continue':
        return { kind: 'continue' };
      case 'accept':
        return { kind: 'accept' };
      case 'discard':
        // Not allowed at connect/helo (Postfix ignores it, sendmail errors): tempfail is the safe reading.
        return stage === 'connect' || stage === 'helo' ? { kind: 'tempfail' } : { kind: 'discard' };
      case 'reject':
        // libmilter sends 'y' only when the code's class matches the action, else the plain reply.
        return d.text?.startsWith('5') === true ? { kind: 'replycode', text: d.text } : { kind: 'reject' };
      case 'tempfail':
        return d.text?.startsWith('4') === true ? { kind: 'replycode', text: d.text } : { kind: 'tempfail' };
    }
  }

  private endOfMessage(chunk: Buffer | null): void {
    this.ensureMessage();
    if (chunk !== null && this.message !== null) this.message.bodyBytes += chunk.length;
    this.macros.enterStage(SMFIC.BODYEOB);
    const handler = this.handler;
    if (handler === null) {
      this.send({ kind: 'continue' });
      return;
    }
    let result: EomResult | Promise<EomResult>;
    try {
      result = handler.endOfMessage(this);
    } catch (e) {
      this.handlerFailed('eom', e, true);
      this.message = null;
      return;
    }
    if (result instanceof Promise) {
      this.busy = true;
      result.then(
        (r) => this.afterEom(r),
        (e: unknown) => {
          this.message = null;
          this.handlerFailed('eom', e, true);
        },
      );
      return;
    }
    this.afterEom(result);
  }

  private afterEom(r: EomResult): void {
    if (this.phase === 'closed') return;
    const packets: Buffer[] = [];
    try {
      for (const m of r.modifications) {
        if ((this.actions & REQUIRED_ACTION[m.kind]) === 0) {
          this.log.debug({ event: 'modification_skipped', modification: m.kind, reason: 'not negotiated' });
          continue;
        }
        packets.push(encodeResponse(m));
      }
      packets.push(encodeResponse(this.replyFor('eom', r.decision)));
    } catch (e) {
      const what = e instanceof EncodeError ? 'invalid modification' : 'could not encode the reply';
      this.log.error({ event: 'handler_error', stage: 'eom', err: e }, `${what}; tempfailing`);
      packets.length = 0;
      packets.push(encodeResponse({ kind: 'tempfail' }));
    }
    this.io.write(packets);
    // The message is over once answered (sendmail sends no ABORT after it; Postfix does, harmlessly).
    this.message = null;
    this.continueAfterAsync();
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
