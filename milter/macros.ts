// Stage-scoped macro store with libmilter's scoping rules (milter-protocol.md §5.3). Pure; one per
// connection, owned by the session.
//   - one bucket per stage: connect, helo, mail, rcpt, data, eoh, eom (Postfix's per-header `L`
//     list goes with eoh, its per-body-chunk `B` list with eom, `U` to a bucket of its own);
//   - a SMFIC_MACRO for stage S replaces S's bucket and clears every later stage, and so does the
//     arrival of a stage-S command (the D packet still arrives when the command is suppressed);
//   - ABORT clears nothing, QUIT and QUIT_NC clear everything;
//   - lookup searches from the latest stage back to connect, and `x` and `{x}` are the same name.
// Unknown stage bytes are ignored, as libmilter ignores them.

import { SMFIC } from './constants.js';

const CONNECT = 0;
const HELO = 1;
const MAIL = 2;
const RCPT = 3;
const DATA = 4;
const EOH = 5;
const EOM = 6;
const UNKNOWN = 7;
const BUCKETS = 8;

/** Bucket of a D packet's stage byte or of a command byte; -1 if it has none. */
export function macroBucket(code: number): number {
  switch (code) {
    case SMFIC.CONNECT:
      return CONNECT;
    case SMFIC.HELO:
      return HELO;
    case SMFIC.MAIL:
      return MAIL;
    case SMFIC.RCPT:
      return RCPT;
    case SMFIC.DATA:
      return DATA;
    case SMFIC.EOH:
    case SMFIC.HEADER:
      return EOH;
    case SMFIC.BODYEOB:
    case SMFIC.BODY:
      return EOM;
    case SMFIC.UNKNOWN:
      return UNKNOWN;
    default:
      return -1;
  }
}

export function bareMacroName(name: string): string {
  return name.length > 2 &&
    name.charCodeAt(0) === 0x7b /* { */ &&
    name.charCodeAt(name.length - 1) === 0x7d /* } */
    ? name.slice(1, -1)
    : name;
}

export class MacroStore {
  /** Per bucket: [name, value, name, value, ...] exactly as received. */
  private readonly buckets: (readonly string[] | null)[] = new Array<readonly string[] | null>(BUCKETS).fill(
    null,
  );

  /** A SMFIC_MACRO packet arrived. */
  define(stageByte: number, pairs: readonly string[]): void {
    const b = macroBucket(stageByte);
    if (b < 0) return;
    this.buckets[b] = pairs;
    if (b !== UNKNOWN) this.clearAfter(b);
  }

  /** A command of this stage arrived: later stages' macros no longer apply. */
  enterStage(commandByte: number): void {
    const b = macroBucket(commandByte);
    // Headers and body chunks sit inside the eoh/eom buckets they also fill; only the first-class
    // commands re-base the later stages.
    if (b < 0 || b === UNKNOWN || commandByte === SMFIC.HEADER || commandByte === SMFIC.BODY) return;
    this.clearAfter(b);
  }

  /** QUIT / QUIT_NC. */
  clear(): void {
    this.buckets.fill(null);
  }

  /** Clears the stages after `bucket`, and the transient unknown-command bucket. */
  private clearAfter(bucket: number): void {
    for (let i = bucket + 1; i < BUCKETS; i++) this.buckets[i] = null;
  }

  /** The value of a macro, searching the latest stage first; `x` and `{x}` are the same name. */
  get(name: string): string | undefined {
    const want = bareMacroName(name);
    for (let b = BUCKETS - 1; b >= 0; b--) {
      const pairs = this.buckets[b];
      if (pairs === null || pairs === undefined) continue;
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        if (bareMacroName(pairs[i] as string) === want) return pairs[i + 1];
      }
    }
    return undefined;
  }

  /** Every defined macro (latest stage wins), for debugging and the explain tool. */
  all(): Record<string, string> {
    const out: Record<string, string> = {};
    for (let b = 0; b < BUCKETS; b++) {
      const pairs = this.buckets[b];
      if (pairs === null || pairs === undefined) continue;
      for (let i = 0; i + 1 < pairs.length; i += 2)
        out[bareMacroName(pairs[i] as string)] = pairs[i + 1] as string;
    }
    return out;
  }
}
