// End to end, Postfix only (sendmail has no counterpart): local submission through Postfix's
// sendmail(1) command, which reaches the daemon through `non_smtpd_milters` (cleanup plays a fake
// SMTP session from localhost), and a second Postfix instance that talks to the daemon over its
// unix socket (mode 0660, group postfix) instead of TCP, proving that Postfix's processes, which
// run as user postfix, can connect. Needs root, Postfix and a built daemon: skips without them,
// fails under CI=true.

import assert from 'node:assert/strict';
import type { HostsEntry } from './harness/mta-namespace.js';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { HEADER_NAME, PolicyDaemon, policyConfig } from './harness/daemon.js';
import { POSTFIX_HOSTNAME, PostfixInstance } from './harness/postfix.js';
import { headerValues, SmtpSink } from './harness/sink.js';
import { SmtpClient, testMessage } from './harness/smtp-client.js';
import {
  DAEMON,
  freePort,
  packageVersion,
  POSTFIX,
  skipUnless,
  Testbed,
  UNSHARE,
} from './harness/testbed.js';

const skip = skipUnless(POSTFIX, UNSHARE, DAEMON);
/** The external test client, with a name Postfix can verify (an unresolvable one would get 450). */
const EXTERNAL: readonly HostsEntry[] = [{ address: '127.0.0.2', names: ['relay-tester.external.test'] }];

describe('Postfix: local submission and the unix socket', { skip }, () => {
  let tb: Testbed;
  let sink: SmtpSink;
  let daemon: PolicyDaemon;
  let viaInet: PostfixInstance;
  let viaUnix: PostfixInstance;
  let socketPath: string;
  const header = (queueId: unknown): string =>
    `milter-policy ${packageVersion()} on ${POSTFIX_HOSTNAME} q=${String(queueId)}`;

  before(async () => {
    tb = await Testbed.create('pflocal');
    sink = await SmtpSink.start(tb.path('sink'));
    tb.onTeardown('sink', () => sink.close());
    const milterPort = await freePort();
    socketPath = tb.path('milter', 'milter.sock');
    daemon = await PolicyDaemon.start(tb, policyConfig({ inetPort: milterPort, unixPath: socketPath }));
    [viaInet, viaUnix] = await Promise.all([
      PostfixInstance.start({
        tb,
        name: 'postfix-inet',
        sinkPort: sink.port,
        milter: { inetPort: milterPort },
        hosts: EXTERNAL,
      }),
      PostfixInstance.start({
        tb,
        name: 'postfix-unix',
        sinkPort: sink.port,
        milter: { unixPath: socketPath },
        hosts: EXTERNAL,
      }),
    ]);
  });

  after(async () => {
    if (tb === undefined) return;
    try {
      await daemon?.stop();
    } finally {
      await tb.teardown();
    }
  });

  test('local submission (sendmail -C) goes through non_smtpd_milters and gets the header', async () => {
    const token = `local-${Date.now()}`;
    await viaInet.submit(
      'local-sender@example.test',
      ['user@example.test'],
      testMessage({ from: 'local-sender@example.test', to: ['user@example.test'], token }),
    );
    const message = await sink.waitFor(token);
    const eom = await daemon.waitForLog(
      (e) =>
        e.event === 'decision' &&
        e['stage'] === 'eom' &&
        bareSender(e['sender']) === 'local-sender@example.test',
      10_000,
      'the eom decision of the local submission',
      0,
    );
    assert.equal(eom['action'], 'accept');
    assert.equal(eom['mta'], 'postfix');
    assert.equal(eom['client_addr'], '127.0.0.1', "cleanup's fake session comes from localhost");
    assert.deepEqual(headerValues(message, HEADER_NAME), [header(eom['queue_id'])]);
    assert.deepEqual(message.rcptTo, ['user@example.test']);
  });

  test('the unix socket is mode 0660, group postfix, and user postfix may connect to it', () => {
    const st = statSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal((st.mode & 0o777).toString(8), '660');
    const postfixGid = Number(execFileSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).trim());
    assert.equal(st.gid, postfixGid);
    execFileSync('runuser', ['-u', 'postfix', '--', 'test', '-w', socketPath]);
  });

  test('Postfix over the unix socket: relaying refused, local mail delivered with the header', async () => {
    const client = await SmtpClient.connect({ port: viaUnix.port, localAddress: '127.0.0.2' });
    const helo = `unix-${Date.now()}.client.example.test`;
    assert.equal((await client.ehlo(helo)).code, 250);
    const token = `unix-${Date.now()}`;
    assert.equal((await client.mail('sender@example.test')).code, 250);
    assert.equal(
      (await client.rcpt('x@other.invalid')).text,
      '550 5.7.1 <x@other.invalid>... Relaying denied',
    );
    assert.equal((await client.rcpt('user@example.test')).code, 250);
    const { final } = await client.data(
      testMessage({ from: 'sender@example.test', to: ['user@example.test'], token }),
    );
    assert.equal(final.code, 250, final.text);
    await client.quit();
    const message = await sink.waitFor(token);
    assert.deepEqual(message.rcptTo, ['user@example.test']);
    const eoms = await daemon.waitForDecisions((d) => d.helo === helo && d.stage === 'eom', 1);
    assert.deepEqual(headerValues(message, HEADER_NAME), [header(eoms[0]?.queue_id)]);
    const log = await viaUnix.log();
    assert.doesNotMatch(
      log,
      /Permission denied|can't connect|milter.*error/i,
      'Postfix had no trouble with the socket',
    );
  });

  test('local submission over the unix socket (cleanup connects as user postfix)', async () => {
    const token = `unixlocal-${Date.now()}`;
    await viaUnix.submit(
      'unix-local@example.test',
      ['user@example.test'],
      testMessage({ from: 'unix-local@example.test', to: ['user@example.test'], token }),
    );
    const message = await sink.waitFor(token);
    const eom = await daemon.waitForLog(
      (e) =>
        e.event === 'decision' &&
        e['stage'] === 'eom' &&
        bareSender(e['sender']) === 'unix-local@example.test',
    );
    assert.deepEqual(headerValues(message, HEADER_NAME), [header(eom['queue_id'])]);
  });
});

/** A decision's sender without angle brackets (local submissions come without them). */
function bareSender(value: unknown): string {
  return typeof value === 'string' ? value.replace(/^<(.*)>$/, '$1') : '';
}
