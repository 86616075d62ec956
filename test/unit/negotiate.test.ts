import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SMFI_INTERNAL, SMFIF, SMFIM, SMFIP } from '../../milter/constants.js';
import type { PolicyNeeds } from '../../milter/negotiate.js';
import { EVENT_STAGES, negotiate, wantedProtocol } from '../../milter/negotiate.js';

const NEEDS: PolicyNeeds = {
  decideAt: new Set(['rcpt']),
  observe: new Set(['connect', 'helo', 'mail']),
  actions: SMFIF.ADDHDRS,
  macros: { connect: ['j', '{client_addr}'], mail: ['{auth_authen}'], eom: ['i'] },
};

describe('negotiate', () => {
  it('against a v6 offer: NR for observed events, NO+NR for unused ones, nothing for decided ones, macro lists', () => {
    const r = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff }, NEEDS);
    assert.equal(r.kind, 'negotiated');
    if (r.kind !== 'negotiated') return;
    assert.equal(r.version, 6);
    assert.equal(r.actions, SMFIF.ADDHDRS | SMFIF.SETSYMLIST);
    const want =
      SMFIP.NR_CONN |
      SMFIP.NR_HELO |
      SMFIP.NR_MAIL |
      SMFIP.NODATA |
      SMFIP.NR_DATA |
      SMFIP.NOHDRS |
      SMFIP.NR_HDR |
      SMFIP.NOEOH |
      SMFIP.NR_EOH |
      SMFIP.NOBODY |
      SMFIP.NR_BODY |
      SMFIP.NOUNKNOWN |
      SMFIP.NR_UNKN;
    assert.equal(r.protocol, want);
    assert.deepEqual(
      [...r.reply.macros],
      [
        [SMFIM.CONNECT, 'j {client_addr}'],
        [SMFIM.ENVFROM, '{auth_authen}'],
        [SMFIM.EOM, 'i'],
      ],
    );
  });

  it('against Postfix milter_protocol = 2: version 2, only v2 bits, no macro request', () => {
    const r = negotiate({ version: 2, actions: 0x1ff, protocol: 0x7f }, NEEDS);
    assert.equal(r.kind, 'negotiated');
    if (r.kind !== 'negotiated') return;
    assert.equal(r.version, 2);
    assert.equal(r.protocol & ~0x7f, 0);
    assert.equal(r.reply.macros.size, 0);
    assert.equal(r.actions, SMFIF.ADDHDRS);
  });

  it('refuses version 1', () => {
    const r = negotiate({ version: 1, actions: 0xf, protocol: 0x3f }, NEEDS);
    assert.equal(r.kind, 'protocol_error');
  });

  it('reads an action offer of 0 as the v1 set', () => {
    const r = negotiate({ version: 6, actions: 0, protocol: 0x1fffff }, NEEDS);
    assert.ok(r.kind === 'negotiated' && r.actions === SMFIF.ADDHDRS);
  });

  it('never asks for an action or protocol bit that was not offered, nor an internal bit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10 }), fc.nat(), fc.nat(), (version, actions, protocol) => {
        const r = negotiate({ version, actions, protocol }, NEEDS);
        assert.equal(r.kind, 'negotiated');
        if (r.kind !== 'negotiated') return;
        const offeredActions = actions === 0 ? 0xf : actions;
        assert.equal(r.actions & ~offeredActions, 0);
        assert.equal(r.protocol & ~protocol, 0);
        assert.equal(r.protocol & SMFI_INTERNAL, 0);
        assert.ok(r.version <= Math.min(version, 6));
      }),
    );
  });

  it('asks to skip every event when the policy needs none', () => {
    const bits = wantedProtocol({ decideAt: new Set(), observe: new Set(), actions: 0, macros: {} });
    for (const s of EVENT_STAGES) assert.ok(bits !== 0, s);
    assert.equal(bits & SMFIP.NOCONNECT, SMFIP.NOCONNECT);
    assert.equal(bits & SMFIP.NORCPT, SMFIP.NORCPT);
  });
});
