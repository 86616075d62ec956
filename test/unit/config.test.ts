import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../../daemon/config.js';
import { EMBEDDED_CONFIG } from '../../daemon/version.js';
import { parseDomainList } from '../../rules/domain-list.js';

async function errorsOf(yaml: string): Promise<readonly string[]> {
  const r = await parseConfig(yaml, '/etc/milter-policy/test.yaml');
  return r.ok ? [] : r.errors;
}

describe('configuration', () => {
  it('the bundled example is valid', async () => {
    const r = await loadConfig(EMBEDDED_CONFIG);
    assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  });

  it('an empty file gives the documented defaults', async () => {
    const r = await parseConfig('', '/etc/milter-policy/x.yaml');
    assert.ok(r.ok);
    const c = r.config;
    assert.deepEqual(
      c.listen.map((l) => l.spec),
      ['unix:/run/milter-policy/milter.sock'],
    );
    assert.equal(c.socket.mode, 0o660);
    assert.equal(c.limits.max_packet_bytes, 1048576);
    assert.equal(c.limits.idle_timeout, 7_200_000);
    assert.equal(c.limits.max_connections, 1000);
    assert.equal(c.limits.max_queued_commands, 64);
    assert.equal(c.shutdown.drain_timeout, 30_000);
    assert.equal(c.policy.on_error, 'defer_if_permit');
    assert.equal(c.policy.stage_budget, 5000);
    assert.deepEqual(c.relayGuard.reply, { code: 550, dsn: '5.7.1', text: 'Relaying denied' });
    assert.deepEqual(
      c.trustedNetworks.map((n) => n.text),
      ['127.0.0.1/32', '::1/128'],
    );
  });

  it('reports every problem as file:line: path: problem', async () => {
    const errs = await errorsOf(
      [
        'listen: ["tcp:1.2.3.4:25"]', // 1
        'limits:', // 2
        '  max_packet_bytes: lots', // 3
        '  idle_timeout: soon', // 4
        'relay_guard:', // 5
        '  reply: "250 ok"', // 6
        '  colour: blue', // 7
        'trusted_networks: [300.1.1.1/8]', // 8
        'socket: { mode: "rwx" }', // 9
      ].join('\n'),
    );
    const want = [
      /^\/etc\/milter-policy\/test.yaml:1: listen\[0\]: .*unknown socket type "tcp"/,
      /^\/etc\/milter-policy\/test.yaml:3: limits.max_packet_bytes: "lots" is not a size/,
      /^\/etc\/milter-policy\/test.yaml:4: limits.idle_timeout: "soon" is not a duration/,
      /^\/etc\/milter-policy\/test.yaml:6: relay_guard.reply: reply code 250 is not a 4xx or 5xx code/,
      /^\/etc\/milter-policy\/test.yaml:7: relay_guard.colour: unknown setting/,
      /^\/etc\/milter-policy\/test.yaml:8: trusted_networks\[0\]: .*not an IP address/,
      /^\/etc\/milter-policy\/test.yaml:9: socket.mode: must be an octal mode/,
    ];
    assert.equal(errs.length, want.length, errs.join('\n'));
    for (const re of want)
      assert.ok(
        errs.some((e) => re.test(e)),
        `${re} in\n${errs.join('\n')}`,
      );
  });

  it('reports YAML syntax errors with their line', async () => {
    const errs = await errorsOf('listen:\n  - a\n b: [');
    assert.ok(errs.length > 0 && /test\.yaml:\d+: /.test(errs[0] ?? ''), errs.join('\n'));
  });

  it('refuses duplicate keys', async () => {
    const errs = await errorsOf('log: {level: info}\nlog: {level: debug}\n');
    assert.ok(errs.length > 0);
  });

  it('parses durations and sizes in admin units', async () => {
    const r = await parseConfig(
      'limits: {idle_timeout: 90, max_packet_bytes: 256k}\nshutdown: {drain_timeout: 250ms}\n',
      '/x.yaml',
    );
    assert.ok(r.ok);
    assert.equal(r.config.limits.idle_timeout, 90_000);
    assert.equal(r.config.limits.max_packet_bytes, 262144);
    assert.equal(r.config.shutdown.drain_timeout, 250);
  });

  it('reads domain files relative to the configuration, with file:line errors', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-conf-'));
    await writeFile(
      path.join(dir, 'local-host-names'),
      '# local\nexample.test mail.example.test\n\nEXAMPLE.ORG.\n',
    );
    await writeFile(path.join(dir, 'relay-domains'), 'partner.example\n128.32\nIPv6:2001:db8\nbad/domain\n');
    await writeFile(
      path.join(dir, 'c.yaml'),
      'domains:\n  local_file: local-host-names\n  relay_file: relay-domains\n',
    );
    const bad = await loadConfig(path.join(dir, 'c.yaml'));
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors, [
      `${path.join(dir, 'relay-domains')}:4: "bad/domain" is not a domain name, [address] or IP prefix`,
    ]);
    await writeFile(
      path.join(dir, 'relay-domains'),
      'partner.example\n128.32\nIPv6:2001:db8\n[UNIX:localhost]\n',
    );
    const good = await loadConfig(path.join(dir, 'c.yaml'));
    assert.ok(good.ok);
    assert.deepEqual(
      good.config.localDomains.map((d) => (d.kind === 'domain' ? d.name : '')),
      ['example.test', 'mail.example.test', 'example.org'],
    );
    assert.deepEqual(
      good.config.relayDomains.map((d) =>
        d.kind === 'domain' ? d.name : `${d.network.address.toString()}/${d.network.bits}`,
      ),
      ['partner.example', '128.32.0.0/16', '2001:db8::/32'],
    );
    const missing = await parseConfig('domains: {local_file: /nonexistent/file}\n', '/x.yaml');
    assert.ok(
      !missing.ok &&
        /domains.local_file: cannot read \/nonexistent\/file: ENOENT/.test(missing.errors[0] ?? ''),
    );
  });

  it('resolves relative unix socket paths against the configuration directory', async () => {
    const r = await parseConfig('listen: ["unix:run/m.sock", "inet:8894@127.0.0.1"]\n', '/etc/mp/conf.yaml');
    assert.ok(r.ok);
    assert.deepEqual(
      r.config.listen.map((l) => (l.kind === 'unix' ? l.path : l.port)),
      ['/etc/mp/run/m.sock', 8894],
    );
  });
});

describe('domain lists', () => {
  it('parses class files: comments, several words per line, literals, prefixes', () => {
    const r = parseDomainList('# c\nA.example b.example.\n[192.0.2.1] 10.1\n', 'f');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.entries.map((e) => (e.kind === 'domain' ? e.name : e.network.text)),
      ['a.example', 'b.example', '[192.0.2.1]', '10.1'],
    );
    assert.deepEqual(parseDomainList('x..y\nuser@host\n', 'f').errors.length, 2);
  });
});
