import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Response } from '../../milter/commands.js';
import { bodyChunks, EncodeError, encodeResponse } from '../../milter/encode.js';
import { decodeResponse } from '../../milter/mta-codec.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('encodeResponse', () => {
  it('produces the byte layouts of milter-protocol.md §1.1', () => {
    assert.equal(hex(encodeResponse({ kind: 'continue' })), '0000000163');
    assert.equal(
      hex(encodeResponse({ kind: 'replycode', text: '451 4.7.1 Try later' })),
      `0000001579${Buffer.from('451 4.7.1 Try later\0').toString('hex')}`,
    );
    // v6, actions ADDHDRS+CHGHDRS+SETSYMLIST, protocol NOUNKNOWN+NODATA, macros for stage 2.
    const optneg = encodeResponse({
      kind: 'optneg',
      version: 6,
      actions: 0x111,
      protocol: 0x300,
      macros: new Map([[2, '{auth_authen} i']]),
    });
    assert.equal(
      hex(optneg),
      `000000214f000000060000011100000300${'00000002'}${Buffer.from('{auth_authen} i\0').toString('hex')}`,
    );
  });

  it('encodes every response so the MTA side decodes it back', () => {
    const all: Response[] = [
      { kind: 'continue' },
      { kind: 'accept' },
      { kind: 'reject' },
      { kind: 'tempfail' },
      { kind: 'discard' },
      { kind: 'skip' },
      { kind: 'progress' },
      { kind: 'replycode', text: '550 5.7.1 no' },
      { kind: 'quarantine', reason: 'held for review' },
      { kind: 'addHeader', name: 'X-A', value: 'v' },
      { kind: 'insertHeader', index: 0, name: 'X-B', value: 'w' },
      { kind: 'changeHeader', index: 2, name: 'Subject', value: '' },
      { kind: 'addRecipient', recipient: '<a@b>' },
      { kind: 'addRecipient', recipient: '<a@b>', args: 'NOTIFY=NEVER' },
      { kind: 'deleteRecipient', recipient: '<c@d>' },
      { kind: 'changeFrom', sender: '<e@f>' },
      { kind: 'changeFrom', sender: '<e@f>', args: 'RET=HDRS' },
      { kind: 'replaceBody', chunk: Buffer.from('new body\r\n') },
      { kind: 'optneg', version: 6, actions: 1, protocol: 2, macros: new Map([[0, 'j {client_addr}']]) },
    ];
    for (const r of all) {
      const b = encodeResponse(r);
      assert.equal(b.readUInt32BE(0), b.length - 4, r.kind);
      assert.deepEqual(decodeResponse(b[4] as number, b.subarray(5)), r);
    }
  });

  it('never sends more than 65535 payload bytes', () => {
    assert.throws(() => encodeResponse({ kind: 'replaceBody', chunk: Buffer.alloc(65536) }), EncodeError);
    assert.equal(encodeResponse({ kind: 'replaceBody', chunk: Buffer.alloc(65535) }).length, 65540);
    assert.deepEqual(
      bodyChunks(Buffer.alloc(140000)).map((c) => c.length),
      [65535, 65535, 8930],
    );
    assert.deepEqual(
      bodyChunks(Buffer.alloc(2500), 1000).map((c) => c.length),
      [1000, 1000, 500],
    );
  });

  it('refuses NUL inside strings and an empty quarantine reason', () => {
    assert.throws(() => encodeResponse({ kind: 'addHeader', name: 'X', value: 'a\0b' }), EncodeError);
    assert.throws(() => encodeResponse({ kind: 'quarantine', reason: '' }), EncodeError);
  });
});
