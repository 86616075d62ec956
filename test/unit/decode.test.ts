import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Command } from '../../milter/commands.js';
import { decodeCommand } from '../../milter/decode.js';
import { encodeCommand } from '../../milter/mta-codec.js';

function frame(cmd: Command): { code: number; payload: Buffer } {
  const b = encodeCommand(cmd);
  return { code: b[4] as number, payload: b.subarray(5) };
}
function decodeRaw(code: string, payload: Buffer | string): ReturnType<typeof decodeCommand> {
  return decodeCommand(
    code.charCodeAt(0),
    typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload,
  );
}

describe('decodeCommand', () => {
  it('decodes the OPTNEG Postfix and sendmail send', () => {
    const bytes = Buffer.from('4f000000060000 01ff001fffff'.replace(/ /g, ''), 'hex');
    assert.deepEqual(decodeCommand(bytes[0] as number, bytes.subarray(1)), {
      kind: 'optneg',
      version: 6,
      actions: 0x1ff,
      protocol: 0x1fffff,
    });
  });

  it('decodes CONNECT for each family and MTA spelling', () => {
    const port = Buffer.from([0x30, 0x39]);
    const c = (fam: string, addr: string): ReturnType<typeof decodeCommand> =>
      decodeRaw(
        'C',
        Buffer.concat([Buffer.from('mail.example.org\0'), Buffer.from(fam), port, Buffer.from(`${addr}\0`)]),
      );
    assert.deepEqual(c('4', '192.0.2.7'), {
      kind: 'connect',
      hostname: 'mail.example.org',
      family: 'inet4',
      port: 12345,
      address: '192.0.2.7',
    });
    // sendmail: IPv6: tag, uncompressed; Postfix: bare compressed; some tools: brackets.
    for (const a of ['IPv6:2001:db8:0:0:0:0:0:1', '2001:db8::1', '[2001:db8::1]', '[IPv6:2001:DB8::1]']) {
      assert.deepEqual(
        c('6', a),
        {
          kind: 'connect',
          hostname: 'mail.example.org',
          family: 'inet6',
          port: 12345,
          address: '2001:db8::1',
        },
        a,
      );
    }
    assert.deepEqual(c('L', '/var/run/x.sock'), {
      kind: 'connect',
      hostname: 'mail.example.org',
      family: 'unix',
      port: 12345,
      address: '/var/run/x.sock',
    });
    assert.deepEqual(decodeRaw('C', 'localhost\0U'), {
      kind: 'connect',
      hostname: 'localhost',
      family: 'unknown',
      port: 0,
      address: '',
    });
  });

  it('decodes MAIL and RCPT with ESMTP arguments, and the empty sender of Postfix local submissions', () => {
    assert.deepEqual(decodeRaw('M', '<a@b>\0SIZE=10\0BODY=8BITMIME\0'), {
      kind: 'mail',
      sender: '<a@b>',
      args: ['SIZE=10', 'BODY=8BITMIME'],
    });
    assert.deepEqual(decodeRaw('M', '\0'), { kind: 'mail', sender: '', args: [] });
    assert.deepEqual(decodeRaw('R', '<x@y>\0'), { kind: 'rcpt', recipient: '<x@y>', args: [] });
  });

  it('decodes macro packets, including the empty ones Postfix sends', () => {
    assert.deepEqual(decodeRaw('D', 'L'), { kind: 'macro', stage: 0x4c, pairs: [] });
    assert.deepEqual(decodeRaw('D', 'Mi\x004Xb2\0'), { kind: 'macro', stage: 0x4d, pairs: ['i', '4Xb2'] });
    assert.deepEqual(decodeRaw('D', 'M{mail_addr}\0\0'), {
      kind: 'macro',
      stage: 0x4d,
      pairs: ['{mail_addr}', ''],
    });
  });

  it('keeps 8-bit bytes intact', () => {
    const r = decodeCommand(0x4c, Buffer.from([0x53, 0x75, 0x62, 0, 0xc3, 0xa9, 0xff, 0]));
    assert.equal(r.kind, 'header');
    if (r.kind === 'header')
      assert.deepEqual(Buffer.from(r.value, 'latin1'), Buffer.from([0xc3, 0xa9, 0xff]));
  });

  it('keeps NUL bytes inside body chunks and takes a chunk on E', () => {
    assert.deepEqual(decodeRaw('B', Buffer.from([0, 1, 0])), { kind: 'body', chunk: Buffer.from([0, 1, 0]) });
    assert.deepEqual(decodeRaw('E', ''), { kind: 'eom', chunk: null });
    assert.deepEqual(decodeRaw('E', 'tail'), { kind: 'eom', chunk: Buffer.from('tail') });
  });

  const malformed: [string, string, Buffer | string, string][] = [
    ['HELO without NUL', 'H', 'mx.example', 'missing_nul'],
    ['HELO with left-over bytes', 'H', 'mx\0junk', 'trailing_bytes'],
    ['header without value', 'L', 'Subject\0', 'missing_nul'],
    ['header with extra string', 'L', 'Subject\0x\0y\0', 'trailing_bytes'],
    ['MAIL without NUL', 'M', '<a@b>', 'missing_nul'],
    ['empty MAIL payload', 'M', '', 'missing_nul'],
    ['macro name without value', 'D', 'Cj\0', 'odd_macro_pairs'],
    ['macro without stage', 'D', '', 'short_payload'],
    ['macro value without NUL', 'D', 'Cj\0x', 'missing_nul'],
    ['short OPTNEG', 'O', Buffer.alloc(11), 'short_payload'],
    ['CONNECT without family', 'C', 'host\0', 'short_payload'],
    ['CONNECT with unknown family', 'C', 'host\0X\0\0a\0', 'bad_family'],
    ['CONNECT without port', 'C', 'host\x004', 'short_payload'],
    ['CONNECT with a bad IPv4', 'C', 'host\x004\0\x19999.1.1.1\0', 'bad_address'],
    ['CONNECT with IPv4 in an IPv6 family', 'C', 'host\x006\0\x19192.0.2.1\0', 'bad_address'],
    ['CONNECT with a name as address', 'C', 'host\x004\0\x19mx.example\0', 'bad_address'],
    ['CONNECT U with left-over bytes', 'C', 'host\0Uxx', 'trailing_bytes'],
    ['CONNECT address left-over', 'C', 'host\x004\0\x19192.0.2.1\0x', 'trailing_bytes'],
    ['DATA with payload', 'T', 'x', 'trailing_bytes'],
    ['ABORT with payload', 'A', 'x', 'trailing_bytes'],
    ['QUIT with payload', 'Q', 'x', 'trailing_bytes'],
    ['unknown command byte', 'Z', '', 'unknown_command'],
    ['UNKNOWN without NUL', 'U', 'VRFY x', 'missing_nul'],
  ];
  for (const [name, code, payload, expected] of malformed) {
    it(`refuses ${name} with ${expected}`, () => {
      const r = decodeRaw(code, payload);
      assert.equal(r.kind, 'protocol_error');
      if (r.kind === 'protocol_error') assert.equal(r.code, expected);
    });
  }

  it('fuzz: any command byte and payload gives a command or a typed error, never an exception', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }), (code, bytes) => {
        const r = decodeCommand(code, Buffer.from(bytes));
        assert.equal(typeof r.kind, 'string');
        if (r.kind === 'protocol_error') assert.equal(typeof r.message, 'string');
      }),
      { numRuns: 20000 },
    );
  });

  it('fuzz: mutated real packets give a command or a typed error', () => {
    const seeds: Command[] = [
      { kind: 'connect', hostname: 'mx.example', family: 'inet6', port: 25, address: '2001:db8::1' },
      { kind: 'connect', hostname: '[192.0.2.1]', family: 'inet4', port: 1, address: '192.0.2.1' },
      { kind: 'macro', stage: 0x4d, pairs: ['i', 'Q1', '{auth_authen}', 'u'] },
      { kind: 'mail', sender: '<a@b>', args: ['SIZE=1'] },
      { kind: 'header', name: 'Subject', value: 'hi' },
      { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
        (seed, flips, cut) => {
          const { code, payload } = frame(seed);
          const p = Buffer.from(payload);
          for (const [pos, val] of flips) if (p.length > 0) p[pos % p.length] = val;
          const r = decodeCommand(code, p.subarray(0, p.length === 0 ? 0 : cut % (p.length + 1)));
          assert.equal(typeof r.kind, 'string');
        },
      ),
      { numRuns: 20000 },
    );
  });

  it('round-trips every command the MTA side encodes', () => {
    const str = fc.string({
      unit: fc.integer({ min: 1, max: 255 }).map((n) => String.fromCharCode(n)),
      maxLength: 30,
    });
    const cmd: fc.Arbitrary<Command> = fc.oneof(
      fc.record({ kind: fc.constant('helo' as const), helo: str }),
      fc.record({ kind: fc.constant('mail' as const), sender: str, args: fc.array(str, { maxLength: 3 }) }),
      fc.record({
        kind: fc.constant('rcpt' as const),
        recipient: str,
        args: fc.array(str, { maxLength: 3 }),
      }),
      fc.record({ kind: fc.constant('header' as const), name: str, value: str }),
      fc.record({ kind: fc.constant('unknown' as const), line: str }),
      fc.record({
        kind: fc.constant('body' as const),
        chunk: fc.uint8Array({ minLength: 1, maxLength: 50 }).map((a) => Buffer.from(a)),
      }),
      fc.record({
        kind: fc.constant('macro' as const),
        stage: fc.integer({ min: 0, max: 255 }),
        pairs: fc.array(fc.tuple(str, str), { maxLength: 3 }).map((a) => a.flat()),
      }),
    );
    fc.assert(
      fc.property(cmd, (c) => {
        const { code, payload } = frame(c);
        assert.deepEqual(decodeCommand(code, payload), { ...c });
      }),
      { numRuns: 5000 },
    );
  });
});
