// Ring (b): the DNSBL resolver over real UDP — a server that answers (the e2e harness's tiny DNS
// server: A records from a table, NXDOMAIN otherwise) and one that never answers.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';
import { NodeDnsLookup } from '../../daemon/dns-resolver.js';
import { DnsServer } from '../e2e/harness/dns-server.js';

describe('DNS resolver for the blocklists', () => {
  // The harness's DNS server binds port 53 on a loopback alias: root only (CI is root).
  it(
    'answers, and maps NXDOMAIN to "not listed"',
    { skip: process.getuid?.() !== 0 && process.env['CI'] !== 'true' },
    async () => {
      const server = await DnsServer.start({
        ptr: new Map(),
        a: new Map([['2.0.0.127.bl.test', ['127.0.0.2']]]),
      });
      try {
        const dns = new NodeDnsLookup({ servers: [`${server.address}:53`], timeoutMs: 1000, tries: 1 });
        const listed = await dns.lookup('2.0.0.127.bl.test', 'A');
        assert.deepEqual(listed.kind === 'records' ? listed.records : listed, ['127.0.0.2']);
        assert.deepEqual(await dns.lookup('1.0.0.127.bl.test', 'A'), { kind: 'nxdomain' });
      } finally {
        await server.close();
      }
    },
  );

  it('a server that never answers is a lookup error after timeout x tries, never a hang', async () => {
    const hole = createSocket('udp4');
    await new Promise<void>((r) => hole.bind(0, '127.0.0.1', r));
    try {
      const dns = new NodeDnsLookup({
        servers: [`127.0.0.1:${hole.address().port}`],
        timeoutMs: 150,
        tries: 2,
      });
      const r = await dns.lookup('2.0.0.127.bl.test', 'A');
      assert.equal(r.kind, 'error');
      if (r.kind === 'error') assert.match(r.error, /no answer within 300 ms|ETIMEOUT/);
    } finally {
      hole.close();
    }
  });
});
