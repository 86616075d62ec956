// Ring (b): the real server and policy handler driven over a socket by the in-process fake MTA,
// with Postfix-like and sendmail-like traces.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SMFIF, SMFIM, SMFIP } from '../../milter/constants.js';
import { VERSION } from '../../daemon/version.js';
import { FakeMta, POSTFIX_OFFER } from '../support/fake-mta.js';
import type { TestServer } from '../support/test-server.js';
import { BASE_CONFIG, runtimeFrom, startTestServer } from '../support/test-server.js';

const POSTFIX_CONNECT_MACROS = {
  j: 'postfix.example.test',
  _: 'unknown [192.0.2.9]',
  v: 'Postfix 3.7.11',
  '{daemon_name}': 'postfix.example.test',
};

async function openSession(
  ts: TestServer,
  opts: { postfix?: boolean; client?: string; auth?: string } = {},
): Promise<FakeMta> {
  const mta = await FakeMta.connect(ts.target);
  await mta.negotiate();
  const client = opts.client ?? '192.0.2.9';
  mta.macro(
    'C',
    opts.postfix === false ? { j: 'sendmail.example.test', _: `[${client}]` } : POSTFIX_CONNECT_MACROS,
  );
  mta.send({ kind: 'connect', hostname: `[${client}]`, family: 'inet4', port: 40000, address: client });
  mta.macro('H', {});
  mta.send({ kind: 'helo', helo: 'client.example' });
  mta.macro(
    'M',
    opts.auth === undefined
      ? { '{mail_addr}': 'a@client.example' }
      : { '{auth_authen}': opts.auth, '{auth_type}': 'PLAIN' },
  );
  mta.send({ kind: 'mail', sender: '<a@client.example>', args: ['SIZE=100'] });
  return mta;
}

describe('relay guard over the milter protocol', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer();
  });
  after(async () => {
    await ts.stop();
  });

  it('negotiates only what the policy needs: NR for connect/helo/mail, NO for content, a macro list', async () => {
    const mta = await FakeMta.connect(ts.target);
    const reply = await mta.negotiate();
    assert.equal(reply.version, 6);
    assert.equal(reply.actions, SMFIF.ADDHDRS | SMFIF.SETSYMLIST);
    const p = reply.protocol;
    for (const bit of [
      SMFIP.NR_CONN,
      SMFIP.NR_HELO,
      SMFIP.NR_MAIL,
      SMFIP.NODATA,
      SMFIP.NOHDRS,
      SMFIP.NOEOH,
      SMFIP.NOBODY,
      SMFIP.NOUNKNOWN,
    ]) {
      assert.ok((p & bit) !== 0, `bit 0x${bit.toString(16)} requested`);
    }
    for (const bit of [SMFIP.NORCPT, SMFIP.NR_RCPT, SMFIP.NOCONNECT, SMFIP.NOMAIL]) assert.equal(p & bit, 0);
    assert.match(reply.macros.get(SMFIM.CONNECT) ?? '', /\{client_addr\}/);
    assert.match(reply.macros.get(SMFIM.ENVFROM) ?? '', /\{auth_authen\}/);
    mta.close();
  });

  it('refuses a remote recipient with sendmail text under Postfix, accepts a local one, adds the header', async () => {
    const mta = await openSession(ts);
    mta.macro('R', { '{rcpt_addr}': 'x@other.invalid' });
    const r1 = await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] });
    assert.deepEqual(r1, { kind: 'replycode', text: '550 5.7.1 <x@other.invalid>... Relaying denied' });
    const r2 = await mta.request({ kind: 'rcpt', recipient: '<user@example.test>', args: [] });
    assert.deepEqual(r2, { kind: 'continue' });
    mta.macro('T', { i: 'ABC123' });
    mta.macro('N', { i: 'ABC123' });
    const { modifications, final } = await mta.eom();
    assert.deepEqual(final, { kind: 'continue' });
    assert.deepEqual(modifications, [
      {
        kind: 'addHeader',
        name: 'X-Milter-Policy',
        value: `milter-policy ${VERSION} on postfix.example.test q=ABC123`,
      },
    ]);
    mta.send({ kind: 'abort' });
    mta.send({ kind: 'quit' });
    await mta.closed;
    const decisions = ts.log.events('decision');
    const rej = decisions.find((d) => d.recipient === '<x@other.invalid>');
    assert.equal(rej?.action, 'reject');
    assert.equal(rej?.rule, 'relay_guard');
    assert.equal(rej?.reply, '550 5.7.1 <x@other.invalid>... Relaying denied');
    assert.equal(rej?.client_addr, '192.0.2.9');
    assert.equal(rej?.helo, 'client.example');
    assert.equal(rej?.sender, '<a@client.example>');
    const eom = decisions.find((d) => d.stage === 'eom');
    assert.deepEqual(eom?.recipients, ['<user@example.test>']);
    assert.equal(eom?.queue_id, 'ABC123');
  });

  it('leaves the address prefix to sendmail', async () => {
    const mta = await openSession(ts, { postfix: false });
    const r = await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] });
    assert.deepEqual(r, { kind: 'replycode', text: '550 5.7.1 Relaying denied' });
    mta.close();
  });

  it('lets trusted networks and authenticated clients relay', async () => {
    const trusted = await openSession(ts, { client: '10.1.2.3' });
    assert.deepEqual(await trusted.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] }), {
      kind: 'continue',
    });
    trusted.close();
    const authed = await openSession(ts, { auth: 'alice' });
    assert.deepEqual(await authed.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] }), {
      kind: 'continue',
    });
    authed.close();
  });

  it('answers nothing for NR stages even when the MTA pipelines them', async () => {
    const mta = await FakeMta.connect(ts.target);
    await mta.negotiate(POSTFIX_OFFER);
    mta.send({ kind: 'connect', hostname: '[192.0.2.9]', family: 'inet4', port: 1, address: '192.0.2.9' });
    mta.send({ kind: 'helo', helo: 'x' });
    mta.send({ kind: 'mail', sender: '<a@b.example>', args: [] });
    assert.ok(await mta.silent(50), 'no reply to NR commands');
    assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<postmaster@example.test>', args: [] }), {
      kind: 'continue',
    });
    mta.close();
  });

  it('QUIT_NC: a second SMTP session on the same socket starts clean (new client, no old macros)', async () => {
    const mta = await openSession(ts, { client: '10.1.2.3', auth: 'alice' });
    assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] }), {
      kind: 'continue',
    });
    mta.send({ kind: 'quitNc' });
    mta.macro('C', POSTFIX_CONNECT_MACROS);
    mta.send({ kind: 'connect', hostname: '[192.0.2.77]', family: 'inet4', port: 2, address: '192.0.2.77' });
    mta.send({ kind: 'mail', sender: '<b@client.example>', args: [] });
    // Neither the trusted address nor the old {auth_authen} carry over.
    assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] }), {
      kind: 'replycode',
      text: '550 5.7.1 <x@other.invalid>... Relaying denied',
    });
    const d = await ts.log.waitFor('decision', (l) => l.client_addr === '192.0.2.77');
    assert.equal(d.transaction, 1);
    assert.equal(mta.isClosed, false);
    mta.close();
  });

  it('logs the reply as the client sees it: prefix under both MTAs, % not doubled', async () => {
    const pf = await openSession(ts);
    const r = await pf.request({ kind: 'rcpt', recipient: '<u%other.invalid@example.test>', args: [] });
    assert.deepEqual(r, {
      kind: 'replycode',
      text: '550 5.7.1 <u%%other.invalid@example.test>... Relaying denied',
    });
    const sm = await openSession(ts, { postfix: false, client: '192.0.2.78' });
    await sm.request({ kind: 'rcpt', recipient: '<v@other.invalid>', args: [] });
    const a = await ts.log.waitFor('decision', (l) => l.recipient === '<u%other.invalid@example.test>');
    assert.equal(a.reply, '550 5.7.1 <u%other.invalid@example.test>... Relaying denied');
    const b = await ts.log.waitFor('decision', (l) => l.recipient === '<v@other.invalid>');
    assert.equal(b.reply, '550 5.7.1 <v@other.invalid>... Relaying denied');
    pf.close();
    sm.close();
  });

  it('a new runtime (reload) applies from the next transaction, never inside an open one', async () => {
    const mta = await openSession(ts);
    assert.equal(
      (await mta.request({ kind: 'rcpt', recipient: '<x@other.invalid>', args: [] })).kind,
      'replycode',
    );
    const old = ts.current();
    ts.setRuntime(await runtimeFrom(`${BASE_CONFIG}\nrelay_guard: { mode: observe }\n`, 2));
    try {
      // Same transaction: still the rules it started with.
      assert.equal(
        (await mta.request({ kind: 'rcpt', recipient: '<y@other.invalid>', args: [] })).kind,
        'replycode',
      );
      mta.send({ kind: 'abort' });
      mta.send({ kind: 'mail', sender: '<a@client.example>', args: [] });
      assert.deepEqual(await mta.request({ kind: 'rcpt', recipient: '<z@other.invalid>', args: [] }), {
        kind: 'continue',
      });
      const d = await ts.log.waitFor('decision', (l) => l.recipient === '<z@other.invalid>');
      assert.equal(d.config_generation, 2);
    } finally {
      ts.setRuntime(old);
      mta.close();
    }
  });
});
