import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SMFIC } from '../../milter/constants.js';
import { MacroStore } from '../../milter/macros.js';

const C = 'C'.charCodeAt(0);
const M = 'M'.charCodeAt(0);
const R = 'R'.charCodeAt(0);
const L = 'L'.charCodeAt(0);

describe('MacroStore', () => {
  it('treats x and {x} as one name and searches the latest stage first', () => {
    const m = new MacroStore();
    m.define(C, ['j', 'mx', '{client_addr}', '192.0.2.1', 'i', 'from-connect']);
    m.define(M, ['{i}', 'Q1']);
    assert.equal(m.get('{j}'), 'mx');
    assert.equal(m.get('client_addr'), '192.0.2.1');
    assert.equal(m.get('i'), 'Q1');
  });

  it('a new stage clears later stages; a repeated stage replaces its own bucket', () => {
    const m = new MacroStore();
    m.define(C, ['j', 'mx']);
    m.define(M, ['{auth_authen}', 'alice']);
    m.define(R, ['{rcpt_addr}', 'a@x']);
    m.define(R, ['{rcpt_host}', 'x']);
    assert.equal(m.get('rcpt_addr'), undefined);
    assert.equal(m.get('rcpt_host'), 'x');
    m.define(M, ['i', 'Q2']);
    assert.equal(m.get('rcpt_host'), undefined);
    assert.equal(m.get('auth_authen'), undefined);
    assert.equal(m.get('j'), 'mx');
  });

  it('a stage command clears later stages even without its own macros', () => {
    const m = new MacroStore();
    m.define(R, ['{rcpt_addr}', 'a@x']);
    m.enterStage(SMFIC.MAIL);
    assert.equal(m.get('rcpt_addr'), undefined);
  });

  it('keeps Postfix per-header macros with the eoh stage and ignores unknown stage bytes', () => {
    const m = new MacroStore();
    m.define(L, ['i', 'Q3']);
    m.define(0x5a, ['x', 'y']);
    assert.equal(m.get('i'), 'Q3');
    assert.equal(m.get('x'), undefined);
    m.enterStage(SMFIC.HEADER);
    assert.equal(m.get('i'), 'Q3');
  });

  it('clear() forgets everything', () => {
    const m = new MacroStore();
    m.define(C, ['j', 'mx']);
    m.clear();
    assert.equal(m.get('j'), undefined);
    assert.deepEqual(m.all(), {});
  });
});
