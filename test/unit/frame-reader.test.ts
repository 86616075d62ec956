import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameReader } from '../../milter/frame-reader.js';
import { encodeCommand } from '../../milter/mta-codec.js';

function frames(reader: FrameReader, chunks: Buffer[]): { frames: [number, string][]; error: string | null } {
  const out: [number, string][] = [];
  let error: string | null = null;
  for (const c of chunks) {
    const e = reader.push(c, (code, payload) => out.push([code, payload.toString('latin1')]));
    if (e !== null) {
      error = e.code;
      break;
    }
  }
  return { frames: out, error };
}

const STREAM = Buffer.concat([
  encodeCommand({ kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff }),
  encodeCommand({ kind: 'macro', stage: 0x43, pairs: ['j', 'mx.example', '{client_addr}', '192.0.2.1'] }),
  encodeCommand({ kind: 'connect', hostname: 'mx.example', family: 'inet4', port: 25, address: '192.0.2.1' }),
  encodeCommand({ kind: 'data' }),
  encodeCommand({ kind: 'body', chunk: Buffer.alloc(3000, 0x61) }),
  encodeCommand({ kind: 'eom', chunk: null }),
]);

describe('FrameReader', () => {
  const whole = frames(new FrameReader(65536), [STREAM]);

  it('reads a stream of several packets in one chunk', () => {
    assert.equal(whole.error, null);
    assert.deepEqual(
      whole.frames.map(([c]) => String.fromCharCode(c)),
      ['O', 'D', 'C', 'T', 'B', 'E'],
    );
  });

  it('gives the same frames when the stream is split at every byte offset', () => {
    for (let i = 1; i < STREAM.length; i++) {
      const r = frames(new FrameReader(65536), [STREAM.subarray(0, i), STREAM.subarray(i)]);
      assert.deepEqual(r, whole, `split at ${i}`);
    }
  });

  it('gives the same frames fed one byte at a time', () => {
    const bytes = [...STREAM].map((b) => Buffer.from([b]));
    assert.deepEqual(frames(new FrameReader(65536), bytes), whole);
  });

  it('refuses a zero length at once', () => {
    assert.deepEqual(frames(new FrameReader(100), [Buffer.from([0, 0, 0, 0, 0x43])]), {
      frames: [],
      error: 'frame_empty',
    });
  });

  it('refuses an oversized packet from its length alone, before any payload arrives', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(102);
    assert.deepEqual(frames(new FrameReader(100), [header]), { frames: [], error: 'frame_too_large' });
  });

  it('accepts a payload of exactly the limit', () => {
    const pkt = encodeCommand({ kind: 'body', chunk: Buffer.alloc(100, 0x62) });
    const r = frames(new FrameReader(100), [pkt]);
    assert.equal(r.error, null);
    assert.equal(r.frames[0]?.[1].length, 100);
  });

  it('stays failed after an error', () => {
    const reader = new FrameReader(10);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(1000);
    assert.equal(reader.push(big, () => undefined)?.code, 'frame_too_large');
    assert.equal(
      reader.push(encodeCommand({ kind: 'data' }), () => assert.fail('no frame after an error'))?.code,
      'frame_too_large',
    );
  });

  it('delivers frames before an error in the same chunk', () => {
    const bad = Buffer.from([0, 0, 0, 0]);
    const r = frames(new FrameReader(100), [Buffer.concat([encodeCommand({ kind: 'data' }), bad])]);
    assert.deepEqual(r, { frames: [[0x54, '']], error: 'frame_empty' });
  });

  it('fuzz: any byte stream in any chunking gives frames and at most one typed error, never an exception', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat({ max: 400 }), { maxLength: 8 }),
        (bytes, cuts) => {
          const buf = Buffer.from(bytes);
          const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let last = 0;
          for (const p of points) {
            chunks.push(buf.subarray(last, p));
            last = p;
          }
          chunks.push(buf.subarray(last));
          const a = frames(new FrameReader(64), chunks);
          const b = frames(new FrameReader(64), [buf]);
          assert.deepEqual(a, b);
          if (a.error !== null) assert.ok(['frame_empty', 'frame_too_large'].includes(a.error));
        },
      ),
      { numRuns: 5000 },
    );
  });
});
