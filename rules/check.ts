// The policy vocabulary: what a check sees (PolicyInput), what it answers (CheckResult) and the
// verdicts a stage can end in. Pure types plus tiny constructors. Every check in rules/ implements
// Check; the engine (./engine.ts) runs them; the daemon turns verdicts into milter replies.
// Decisions are data: a result says what matched and why, so logging, observe mode and the
// explain tool need no extra hooks.

import type { SmtpReply } from '../milter/reply-text.js';
import type { IpAddress } from './networks.js';

/** SMTP stages a check can run at (end of message = 'eom'). */
export type PolicyStage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'eom';
export const POLICY_STAGES: readonly PolicyStage[] = ['connect', 'helo', 'mail', 'rcpt', 'eom'];

export type ClientKind = 'inet4' | 'inet6' | 'unix' | 'unknown';

/** Connection facts, computed once per SMTP session. */
export interface ClientFacts {
  /** Client IP as text (compressed IPv6), socket path for unix clients, '' when unknown. */
  readonly address: string;
  /** Parsed IP (IPv4-mapped IPv6 as IPv4); null for unix/unknown clients. */
  readonly ip: IpAddress | null;
  /** Host name the MTA reports: verified PTR name or `[addr]`. */
  readonly hostname: string;
  readonly port: number;
  readonly kind: ClientKind;
}

/**
 * Values a check computes once and reuses: per SMTP session (`connection`, e.g. the client's
 * access entry) or per transaction (`message`, e.g. the sender's). Owned by the session adapter,
 * which drops them when their lifetime ends.
 */
export interface PolicyMemo {
  connection<T>(key: string, compute: () => T): T;
  message<T>(key: string, compute: () => T): T;
}

/**
 * The SMTP session's own lifetime, for checks that hold something for it (a rate-limit lease, a
 * connection counted once): unlike PolicyMemo.connection, kept across reloads. Absent where there
 * is no real session (the explain tool): such a check must then change no shared state.
 */
export interface SessionHooks {
  keep<T>(key: string, compute: () => T): T;
  /** Run once when the SMTP session ends (QUIT, QUIT_NC, EOF, protocol error, shutdown). */
  atClose(release: () => unknown): void;
}

/** Where the explain tool (`milter-policy query`) collects what checks looked at. */
export type ExplainSink = (check: string, line: string) => void;

export interface HeaderField {
  /** As received; binary strings (one char per byte). */
  readonly name: string;
  /** Folded with bare LF, the MTA's one leading space removed. */
  readonly value: string;
}

/** What a MIME walk of the body found (rules/attachments.ts). */
export interface AttachmentSummary {
  readonly names: readonly string[];
  readonly parts: number;
  readonly depth: number;
  readonly bytes: number;
  readonly overLimit: null | 'depth' | 'parts' | 'bytes';
  readonly problems: readonly string[];
}

/** Walks a message as it streams in (rules/attachments.ts implements it). */
export interface BodyScanner {
  writeHeaders(headers: readonly HeaderField[]): void;
  writeBody(chunk: Buffer): void;
  end(): Promise<AttachmentSummary>;
}

/** The message itself, at end of message, for checks that declared they want it. */
export interface MessageContent {
  readonly headers: readonly HeaderField[];
  /** The first header of that name (case-insensitive). */
  header(name: string): string | undefined;
  /** Every header of that name, in order. */
  headersNamed(name: string): readonly string[];
  /** Headers kept (limits.max_headers, limits.max_header_bytes) and their byte size as received. */
  readonly headerBytes: number;
  readonly headersTruncated: boolean;
  readonly bodyBytes: number;
  /** The MIME walk's result, when a check asked for the body; never rejects. */
  attachments(): Promise<AttachmentSummary> | null;
}

export interface PolicyInput {
  readonly stage: PolicyStage;
  readonly client: ClientFacts;
  readonly helo: string | null;
  /** Envelope sender as sent (`<a@b>`, `<>`; unbracketed for Postfix local submissions). */
  readonly sender: string | null;
  /** ESMTP parameters of MAIL FROM (`SIZE=1234`, `BODY=8BITMIME`). */
  readonly senderArgs: readonly string[];
  /** Set at end of message when a check of the stage wants the content. */
  readonly content?: MessageContent;
  /** The recipient being decided (rcpt stage). */
  readonly recipient: string | null;
  /** Recipients accepted so far (all of them at eom). */
  readonly recipients: readonly string[];
  /** MTA macro lookup; `x` and `{x}` are the same name. */
  macro(name: string): string | undefined;
  readonly memo: PolicyMemo;
  /** Set by the daemon's session adapter (not by the explain tool). */
  readonly session?: SessionHooks;
  /** Set by the explain tool only. */
  readonly explain?: ExplainSink;
}

export type Verdict =
  | { readonly action: 'ok' } // final and positive for this subject: later checks of the stage are skipped
  | { readonly action: 'reject'; readonly reply: SmtpReply; readonly noAddressPrefix?: boolean }
  | { readonly action: 'tempfail'; readonly reply: SmtpReply; readonly noAddressPrefix?: boolean }
  | { readonly action: 'discard' };

export interface HeaderAddition {
  readonly name: string;
  readonly value: string;
}

export type CheckResult =
  | {
      readonly kind: 'pass';
      readonly reason?: string;
      readonly addHeaders?: readonly HeaderAddition[];
      /** Hold the message with this reason (sent at end of message; the last one wins). */
      readonly quarantine?: string;
      /** The rule that matched, e.g. `/etc/mail/access:12`. */
      readonly entry?: string;
      /** Tags to add to the message (a check's own tag-mode findings, e.g. one DNSBL zone's). */
      readonly tags?: readonly string[];
      /** What parts of the check in observe mode would have done (e.g. one DNSBL zone's listing). */
      readonly observed?: readonly string[];
    }
  | {
      readonly kind: 'hit';
      readonly verdict: Verdict;
      readonly reason: string;
      readonly entry?: string;
      /** With an `ok` verdict: accept, but hold the message with this reason. */
      readonly quarantine?: string;
    }
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'error'; readonly error: string };

/** What a check that errors (DNS timeout, store down) does to the stage. */
export type OnError = 'defer_if_permit' | 'tempfail' | 'continue';
/** enforce: reply to the client; observe: decide and log only; tag: accept and add a header naming the rule. */
export type CheckMode = 'enforce' | 'observe' | 'tag';

/** Given to each run: the check's own time budget, as an AbortSignal created on first use. */
export interface CheckBudget {
  readonly ms: number;
  readonly signal: AbortSignal;
}

export interface Check {
  /** Stable name used in logs and configuration (`relay_guard`). */
  readonly name: string;
  readonly stages: readonly PolicyStage[];
  readonly mode: CheckMode;
  readonly budgetMs: number;
  readonly onError: OnError;
  /** What of the message the check needs at end of message (headers, or headers and the body walk). */
  readonly wants?: 'headers' | 'body';
  run(input: PolicyInput, budget: CheckBudget): CheckResult | Promise<CheckResult>;
  /** Stages the check only watches: it hears of them (watch) but never answers, so the MTA is not
   *  kept waiting (the stage stays a no-reply one unless another check decides there). */
  readonly watches?: readonly PolicyStage[];
  /** A watched stage happened. Must not throw; its promise, if any, is not awaited. */
  watch?(input: PolicyInput): void;
  /** Told how the stage ended for the client (after every check of it ran), e.g. to count
   *  refused recipients. Must not throw; its promise, if any, is not awaited. */
  settled?(input: PolicyInput, outcome: SettledOutcome): void;
}

/** How a stage ended as the SMTP client sees it. */
export interface SettledOutcome {
  readonly action: 'accept' | 'reject' | 'tempfail' | 'discard';
  /** The check that decided, when one did. */
  readonly decidedBy: string | null;
}

export const PASS: CheckResult = Object.freeze({ kind: 'pass' });

/** A memo that remembers nothing (tests, one-off evaluations). */
export const NO_MEMO: PolicyMemo = {
  connection: (_key, compute) => compute(),
  message: (_key, compute) => compute(),
};
export const OK: Verdict = Object.freeze({ action: 'ok' });
