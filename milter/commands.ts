// The typed vocabulary of the milter protocol: every MTA command (SMFIC_*) and every milter
// response (SMFIR_*) as a discriminated union, plus the typed ProtocolError the codec returns
// instead of throwing. Pure types; used by the codec, the session and the test/bench MTA side.
//
// Strings are "binary strings": each char is one byte of the wire (latin1 decoding), so 8-bit and
// UTF-8 data survive a round trip unchanged. Convert for display at the edge (see ./text.ts).

/** Address family byte of SMFIC_CONNECT. */
export type ClientFamily = 'inet4' | 'inet6' | 'unix' | 'unknown';

export interface ConnectInfo {
  /** Host name as the MTA sent it: verified name, `[addr]`, or `localhost` for local submissions. */
  readonly hostname: string;
  readonly family: ClientFamily;
  /** 0 for unix and unknown families. */
  readonly port: number;
  /** Normalised IP (compressed IPv6, no `IPv6:` tag, no brackets), socket path for unix, '' for unknown. */
  readonly address: string;
}

export type Command =
  | { readonly kind: 'optneg'; readonly version: number; readonly actions: number; readonly protocol: number } // SMFIC_OPTNEG 'O'
  | { readonly kind: 'macro'; readonly stage: number; readonly pairs: readonly string[] } // SMFIC_MACRO 'D', pairs = [name, value, ...]
  | ({ readonly kind: 'connect' } & ConnectInfo) // SMFIC_CONNECT 'C'
  | { readonly kind: 'helo'; readonly helo: string } // SMFIC_HELO 'H'
  | { readonly kind: 'mail'; readonly sender: string; readonly args: readonly string[] } // SMFIC_MAIL 'M'
  | { readonly kind: 'rcpt'; readonly recipient: string; readonly args: readonly string[] } // SMFIC_RCPT 'R'
  | { readonly kind: 'data' } // SMFIC_DATA 'T'
  | { readonly kind: 'header'; readonly name: string; readonly value: string } // SMFIC_HEADER 'L'
  | { readonly kind: 'eoh' } // SMFIC_EOH 'N'
  | { readonly kind: 'body'; readonly chunk: Buffer } // SMFIC_BODY 'B'
  | { readonly kind: 'eom'; readonly chunk: Buffer | null } // SMFIC_BODYEOB 'E' (libmilter tolerates a last chunk)
  | { readonly kind: 'unknown'; readonly line: string } // SMFIC_UNKNOWN 'U'
  | { readonly kind: 'abort' } // SMFIC_ABORT 'A'
  | { readonly kind: 'quit' } // SMFIC_QUIT 'Q'
  | { readonly kind: 'quitNc' }; // SMFIC_QUIT_NC 'K'

export type CommandKind = Command['kind'];

/** One header or envelope change sent before the final reply to SMFIC_BODYEOB. */
export type Modification =
  | { readonly kind: 'addHeader'; readonly name: string; readonly value: string } // SMFIR_ADDHEADER 'h'
  | { readonly kind: 'insertHeader'; readonly index: number; readonly name: string; readonly value: string } // SMFIR_INSHEADER 'i'
  | { readonly kind: 'changeHeader'; readonly index: number; readonly name: string; readonly value: string } // SMFIR_CHGHEADER 'm'
  | { readonly kind: 'addRecipient'; readonly recipient: string; readonly args?: string } // SMFIR_ADDRCPT '+' / SMFIR_ADDRCPT_PAR '2'
  | { readonly kind: 'deleteRecipient'; readonly recipient: string } // SMFIR_DELRCPT '-'
  | { readonly kind: 'changeFrom'; readonly sender: string; readonly args?: string } // SMFIR_CHGFROM 'e'
  | { readonly kind: 'replaceBody'; readonly chunk: Buffer } // SMFIR_REPLBODY 'b'
  | { readonly kind: 'quarantine'; readonly reason: string }; // SMFIR_QUARANTINE 'q'

/** Final replies (exactly one per reply-expecting command). */
export type FinalReply =
  | { readonly kind: 'continue' } // SMFIR_CONTINUE 'c'
  | { readonly kind: 'accept' } // SMFIR_ACCEPT 'a'
  | { readonly kind: 'reject' } // SMFIR_REJECT 'r'
  | { readonly kind: 'tempfail' } // SMFIR_TEMPFAIL 't'
  | { readonly kind: 'discard' } // SMFIR_DISCARD 'd'
  | { readonly kind: 'skip' } // SMFIR_SKIP 's'
  | { readonly kind: 'replycode'; readonly text: string }; // SMFIR_REPLYCODE 'y', text built by ./reply-text.ts

export interface OptnegReply {
  readonly kind: 'optneg'; // SMFIR_OPTNEG 'O'
  readonly version: number;
  readonly actions: number;
  readonly protocol: number;
  /** v6 macro request: SMFIM_* stage id -> space separated names. */
  readonly macros: ReadonlyMap<number, string>;
}

export type Response = FinalReply | Modification | OptnegReply | { readonly kind: 'progress' }; // SMFIR_PROGRESS 'p'

export type ProtocolErrorCode =
  | 'frame_empty'
  | 'frame_too_large'
  | 'unknown_command'
  | 'missing_nul'
  | 'trailing_bytes'
  | 'short_payload'
  | 'bad_family'
  | 'bad_address'
  | 'odd_macro_pairs'
  | 'bad_version'
  | 'out_of_order'
  | 'bad_response';

/** A malformed frame or an impossible exchange: closes that one connection, never thrown. */
export interface ProtocolError {
  readonly kind: 'protocol_error';
  readonly code: ProtocolErrorCode;
  readonly message: string;
  /** Command byte of the offending frame, when there was one. */
  readonly command?: number;
}

export function protocolError(code: ProtocolErrorCode, message: string, command?: number): ProtocolError {
  return command === undefined
    ? { kind: 'protocol_error', code, message }
    : { kind: 'protocol_error', code, message, command };
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return (
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'protocol_error'
  );
}

/** `0x52` -> `'R'` for log lines. */
export function commandName(code: number): string {
  return code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : `0x${code.toString(16).padStart(2, '0')}`;
}
