// Option negotiation (SMFIC_OPTNEG): from the MTA's offer and what the policy needs, the reply and
// the options this connection runs with. Pure. Called by the session for the first packet.
//
// The algorithm is the one milter-protocol.md §4.4 recommends:
//   version  = min(MTA's, 6); an MTA below 2 is refused (typed error, connection closed);
//   actions  = wanted ∩ offered (an offer of 0 means the v1 set 0x0F, as libmilter assumes), so an
//              MTA that does not allow header changes just gets none (the policy degrades, it is
//              not refused);
//   protocol = NO* for events the policy neither decides at nor observes, NR_* for events it only
//              observes (never replies to), ∩ offered, internal bits cleared: sendmail kills a filter
//              that asks for a bit it did not offer;
//   macros   = the v6 per-stage request lists, only when the MTA offered SMFIF_SETSYMLIST.

import type { OptnegReply, ProtocolError } from './commands.js';
import { protocolError } from './commands.js';
import {
  SMFI_INTERNAL,
  SMFI_MIN_VERSION,
  SMFI_V1_ACTS,
  SMFI_VERSION,
  SMFIC,
  SMFIF,
  SMFIM,
  SMFIP,
} from './constants.js';

/** The events the MTA can send before end-of-message; end-of-message itself is always sent. */
export type EventStage =
  'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'unknown';
export const EVENT_STAGES: readonly EventStage[] = [
  'connect',
  'helo',
  'mail',
  'rcpt',
  'data',
  'header',
  'eoh',
  'body',
  'unknown',
];

/** Macro stages of the v6 symlist request. */
export type MacroStage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'eoh' | 'eom';

export interface PolicyNeeds {
  /** Events the policy may answer with something other than continue: a reply is owed. */
  readonly decideAt: ReadonlySet<EventStage>;
  /** Events the policy wants to see but never answers (negotiated with the NR_* bit). */
  readonly observe: ReadonlySet<EventStage>;
  /** SMFIF_* actions the policy may use at end of message. */
  readonly actions: number;
  /** Macros to ask for per stage (v6 symlist); absent = the MTA's configured list. */
  readonly macros: Partial<Record<MacroStage, readonly string[]>>;
}

export interface Negotiated {
  readonly kind: 'negotiated';
  readonly version: number;
  readonly actions: number;
  readonly protocol: number;
  readonly reply: OptnegReply;
}

/** NO* (skip) and NR_* (no reply) bit of each event, and its command byte. */
export const EVENT_BITS: Readonly<
  Record<EventStage, { readonly no: number; readonly nr: number; readonly command: number }>
> = {
  connect: { no: SMFIP.NOCONNECT, nr: SMFIP.NR_CONN, command: SMFIC.CONNECT },
  helo: { no: SMFIP.NOHELO, nr: SMFIP.NR_HELO, command: SMFIC.HELO },
  mail: { no: SMFIP.NOMAIL, nr: SMFIP.NR_MAIL, command: SMFIC.MAIL },
  rcpt: { no: SMFIP.NORCPT, nr: SMFIP.NR_RCPT, command: SMFIC.RCPT },
  data: { no: SMFIP.NODATA, nr: SMFIP.NR_DATA, command: SMFIC.DATA },
  header: { no: SMFIP.NOHDRS, nr: SMFIP.NR_HDR, command: SMFIC.HEADER },
  eoh: { no: SMFIP.NOEOH, nr: SMFIP.NR_EOH, command: SMFIC.EOH },
  body: { no: SMFIP.NOBODY, nr: SMFIP.NR_BODY, command: SMFIC.BODY },
  unknown: { no: SMFIP.NOUNKNOWN, nr: SMFIP.NR_UNKN, command: SMFIC.UNKNOWN },
};

const MACRO_STAGE_IDS: Readonly<Record<MacroStage, number>> = {
  connect: SMFIM.CONNECT,
  helo: SMFIM.HELO,
  mail: SMFIM.ENVFROM,
  rcpt: SMFIM.ENVRCPT,
  data: SMFIM.DATA,
  eom: SMFIM.EOM,
  eoh: SMFIM.EOH,
};

/** sendmail's MAXFILTERMACROS: at most 50 names per stage. */
export const MAX_MACROS_PER_STAGE = 50;

/** The protocol bits the policy asks for, before intersecting with the offer. */
export function wantedProtocol(needs: PolicyNeeds): number {
  let bits = 0;
  for (const stage of EVENT_STAGES) {
    if (needs.decideAt.has(stage)) continue;
    const b = EVENT_BITS[stage];
    bits |= needs.observe.has(stage) ? b.nr : b.no | b.nr;
  }
  return bits >>> 0;
}

export function negotiate(
  offer: { readonly version: number; readonly actions: number; readonly protocol: number },
  needs: PolicyNeeds,
): Negotiated | ProtocolError {
  if (offer.version < SMFI_MIN_VERSION) {
    return protocolError(
      'bad_version',
      `MTA offers milter protocol version ${offer.version}; at least ${SMFI_MIN_VERSION} is needed`,
      SMFIC.OPTNEG,
    );
  }
  const version = Math.min(offer.version, SMFI_VERSION);
  const offeredActions = offer.actions === 0 ? SMFI_V1_ACTS : offer.actions;
  let actions = (needs.actions & offeredActions) >>> 0;
  const protocol = (wantedProtocol(needs) & offer.protocol & ~SMFI_INTERNAL) >>> 0;

  const macros = new Map<number, string>();
  if (version >= 6 && (offeredActions & SMFIF.SETSYMLIST) !== 0) {
    for (const [stage, names] of Object.entries(needs.macros) as [
      MacroStage,
      readonly string[] | undefined,
    ][]) {
      if (names === undefined || names.length === 0) continue;
      macros.set(MACRO_STAGE_IDS[stage], names.slice(0, MAX_MACROS_PER_STAGE).join(' '));
    }
    if (macros.size > 0) actions = (actions | SMFIF.SETSYMLIST) >>> 0;
  }
  return {
    kind: 'negotiated',
    version,
    actions,
    protocol,
    reply: { kind: 'optneg', version, actions, protocol, macros },
  };
}
