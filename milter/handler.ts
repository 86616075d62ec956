// The contract between the protocol session (milter/) and whatever decides (the daemon's policy
// adapter). milter/ never imports rules/: the session hands events and its recorded state to a
// MilterHandler and turns the Decision it returns into protocol replies.

import type { ConnectInfo, Modification } from './commands.js';
import type { MacroStore } from './macros.js';
import type { EventStage, PolicyNeeds } from './negotiate.js';
import type { SessionLog } from './session.js';

export type MaybePromise<T> = T | Promise<T>;

/**
 * What to answer a reply-expecting command with. `text` is a complete reply built by
 * buildReplyText (./reply-text.ts); without it the MTA uses its default text.
 */
export type Decision =
  | { readonly kind: 'continue' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'discard' }
  | { readonly kind: 'reject'; readonly text?: string }
  | { readonly kind: 'tempfail'; readonly text?: string };

export interface EomResult {
  readonly decision: Decision;
  /** Sent before the final reply; each must be allowed by the negotiated actions. */
  readonly modifications: readonly Modification[];
}

/** Which MTA is on the other end, from macro `v` (Postfix sends `Postfix 3.7.11`). */
export type MtaFlavour = 'postfix' | 'sendmail' | 'unknown';

/** Per-message facts the session records (reset on ABORT, new MAIL, HELO, after end of message). */
export interface MessageState {
  /** Envelope sender as sent (`<a@b>`, `<>`, or unbracketed from Postfix's non-SMTP submissions). */
  sender: string | null;
  senderArgs: readonly string[];
  /** Recipients the policy let through so far (replies continue, or not owed). */
  readonly recipients: string[];
  rejectedRecipients: number;
  headers: number;
  bodyBytes: number;
}

/** Read-only view of a connection the handler is given with every event. */
export interface SessionView {
  readonly id: number;
  readonly client: ConnectInfo | null;
  /** Latest HELO/EHLO argument. */
  readonly helo: string | null;
  readonly macros: MacroStore;
  readonly message: MessageState | null;
  readonly mta: MtaFlavour;
  /** Negotiated SMFIF_* actions (what modifications are allowed at end of message). */
  readonly actions: number;
  /** Number of the current transaction on this connection, from 1. */
  readonly transaction: number;
}

export type HandlerEvent =
  | { readonly stage: 'connect' }
  | { readonly stage: 'helo'; readonly helo: string }
  | { readonly stage: 'mail'; readonly sender: string; readonly args: readonly string[] }
  | { readonly stage: 'rcpt'; readonly recipient: string; readonly args: readonly string[] }
  | { readonly stage: 'data' }
  | { readonly stage: 'header'; readonly name: string; readonly value: string }
  | { readonly stage: 'eoh' }
  | { readonly stage: 'body'; readonly chunk: Buffer }
  | { readonly stage: 'unknown'; readonly line: string };

/** One per SMTP session (a new one after QUIT_NC). */
export interface MilterHandler {
  /** An event at a stage in `needs.decideAt` (a reply is owed unless the MTA lacks NR bits). */
  decide(event: HandlerEvent, session: SessionView): MaybePromise<Decision>;
  /**
   * An event at a stage in `needs.observe` (headers and body chunks for content checks): seen, never
   * answered by the handler. Synchronous; the session answers continue where a reply is owed.
   */
  observe?(event: HandlerEvent, session: SessionView): void;
  /** End of message: modifications and the final reply. */
  endOfMessage(session: SessionView): MaybePromise<EomResult>;
  /** The current message is over without an end-of-message verdict (ABORT, new MAIL, HELO). */
  abortMessage(session: SessionView): void;
  /** The SMTP session is over (QUIT, QUIT_NC, EOF, protocol error). */
  close(session: SessionView): void;
}

export interface HandlerFactory {
  /** What the policy needs from the MTA; read once per milter connection, for negotiation. */
  needs(): PolicyNeeds;
  /** A handler for a new SMTP session on connection `id`, logging through the session's logger. */
  open(id: number, log: SessionLog): MilterHandler;
}

export type { EventStage };
