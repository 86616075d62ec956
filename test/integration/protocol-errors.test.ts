// Ring (b): malformed input closes that one connection with a protocol_error line; the server and
// every other connection carry on. Limits are tested at the limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeMta } from '../support/fake-mta.js';
import type { TestServer } from '../support/test-server.js';
import { BASE_CONFIG, startTestServer } from '../support/test-server.js';

function packet(cmd: string, payload: Buffer | string): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const b = Buffer.alloc(5 + p.length);
  b.writeUInt32BE(p.length + 1);
  b[4] = cmd.charCodeAt(0);
  p.copy(b, 5);
  return b;
}

describe('malformed input', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer(BASE_CONFIG, { maxPayload: 4096 });
  });
  after(async () => {
    await ts.stop();
  });

  const cases: [string, Buffer, string][] = [
    ['a zero-length packet', Buffer.from([0, 0, 0, 0]), 'frame_empty'],
    ['an oversized packet (only its length is sent)', Buffer.from([0, 0, 0x10, 0x02]), 'frame_too_large'],
    ['a HELO without NUL', packet('H', 'mx.example'), 'missing_nul'],
    ['left-over bytes after HELO', packet('H', 'mx\0rest'), 'trailing_bytes'],
    ['an unknown command byte', packet('Z', ''), 'unknown_command'],
    ['a bad address family', packet('C', 'host\0X\0\0x\0'), 'bad_family'],
    ['a bad IPv4 address', packet('C', 'host\x004\0\x19192.0.2.300\0'), 'bad_address'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`closes the connection on ${name} and logs protocol_error ${code}`, async () => {
      const bystander = await FakeMta.connect(ts.target);
      await bystander.negotiate();
      const mta = await FakeMta.connect(ts.target);
      await mta.negotiate();
      mta.sendRaw(bytes);
      await mta.closed;
      const line = await ts.log.waitFor('protocol_error', (l) => l.code === code);
      assert.equal(line.level, 'warn');
      // The other session is unaffected.
      bystander.send({
        kind: 'connect',
        hostname: '[192.0.2.1]',
        family: 'inet4',
        port: 1,
        address: '192.0.2.1',
      });
      bystander.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
      assert.deepEqual(await bystander.request({ kind: 'rcpt', recipient: '<u@example.test>', args: [] }), {
        kind: 'continue',
      });
      bystander.close();
    });
  }

  it('accepts a packet of exactly max_packet_bytes and refuses one byte more', async () => {
    const mta = await FakeMta.connect(ts.target);
    await mta.negotiate();
    // A header packet: name\0value\0 filling the payload to exactly 4096 bytes; NR_HDR means no reply.
    const value = 'v'.repeat(4096 - 'Subject\0'.length - 1);
    mta.sendRaw(packet('L', `Subject\0${value}\0`));
    mta.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
    assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<u@example.test>', args: [] }), {
      kind: 'continue',
    });
    mta.sendRaw(packet('L', `Subject\0${value}x\0`));
    await mta.closed;
    await ts.log.waitFor(
      'protocol_error',
      (l) => l.code === 'frame_too_large' && typeof l.msg === 'string' && l.msg.includes('4097'),
    );
  });

  it('closes a connection whose MTA offers protocol version 1', async () => {
    const mta = await FakeMta.connect(ts.target);
    mta.send({ kind: 'optneg', version: 1, actions: 0xf, protocol: 0x3f });
    await mta.closed;
    await ts.log.waitFor('protocol_error', (l) => l.code === 'bad_version');
  });

  it('closes a connection that starts with anything but option negotiation', async () => {
    const mta = await FakeMta.connect(ts.target);
    mta.send({ kind: 'helo', helo: 'x' });
    await mta.closed;
    await ts.log.waitFor('protocol_error', (l) => l.code === 'out_of_order');
  });
});

describe('connection limits', () => {
  it('max_connections: the connection over the limit is closed at once, the others work', async () => {
    const ts = await startTestServer(BASE_CONFIG, { maxConnections: 2 });
    try {
      const a = await FakeMta.connect(ts.target);
      const b = await FakeMta.connect(ts.target);
      await a.negotiate();
      await b.negotiate();
      const c = await FakeMta.connect(ts.target);
      await c.closed;
      await ts.log.waitFor('connection_refused', (l) => l.reason === 'max_connections' && l.limit === 2);
      a.close();
      await a.closed;
      await new Promise((r) => setTimeout(r, 20));
      const d = await FakeMta.connect(ts.target);
      await d.negotiate();
      b.close();
      d.close();
    } finally {
      await ts.stop();
    }
  });

  it('idle_timeout: a silent MTA is disconnected', async () => {
    const ts = await startTestServer(BASE_CONFIG, { idleTimeoutMs: 100 });
    try {
      const a = await FakeMta.connect(ts.target);
      await a.negotiate();
      await a.closed;
      await ts.log.waitFor('idle_timeout', (l) => l.timeout_ms === 100);
    } finally {
      await ts.stop();
    }
  });
});
