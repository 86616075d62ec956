import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Command, Response } from '../../milter/commands.js';
import { SMFIF } from '../../milter/constants.js';
import { FrameReader } from '../../milter/frame-reader.js';
import type {
  Decision,
  EomResult,
  HandlerEvent,
  HandlerFactory,
  MilterHandler,
  SessionView,
} from '../../milter/handler.js';
import { decodeResponse, encodeCommand } from '../../milter/mta-codec.js';
import type { PolicyNeeds } from '../../milter/negotiate.js';
import { MilterSession } from '../../milter/session.js';
import { MemoryLog } from '../support/memory-log.js';

const NEEDS: PolicyNeeds = {
  decideAt: new Set(['rcpt']),
  observe: new Set(['connect', 'helo', 'mail']),
  actions: SMFIF.ADDHDRS,
  macros: {},
};

interface Harness {
  session: MilterSession;
  replies: Response[];
  log: MemoryLog;
  closed: () => boolean;
  paused: () => boolean;
  events: string[];
  send(...cmds: Command[]): void;
}

function harness(
  script: {
    decide?: (e: HandlerEvent, s: SessionView) => Decision | Promise<Decision>;
    eom?: (s: SessionView) => EomResult | Promise<EomResult>;
    needs?: PolicyNeeds;
    highWater?: number;
  } = {},
): Harness {
  const replies: Response[] = [];
  const events: string[] = [];
  let isClosed = false;
  let isPaused = false;
  let handlers = 0;
  const reader = new FrameReader(1 << 20);
  const factory: HandlerFactory = {
    needs: () => script.needs ?? NEEDS,
    open: (): MilterHandler => {
      const n = ++handlers;
      events.push(`open#${n}`);
      return {
        decide: (e, s) => {
          events.push(`decide:${e.stage}`);
          return script.decide?.(e, s) ?? { kind: 'continue' };
        },
        endOfMessage: (s) => script.eom?.(s) ?? { decision: { kind: 'continue' }, modifications: [] },
        abortMessage: () => events.push(`abort#${n}`),
        close: () => events.push(`close#${n}`),
      };
    },
  };
  const log = new MemoryLog();
  const session = new MilterSession(
    {
      id: 1,
      maxPayload: 1 << 20,
      ...(script.highWater === undefined ? {} : { queueHighWater: script.highWater }),
    },
    factory,
    {
      write: (p) => {
        for (const b of Buffer.isBuffer(p) ? [p] : p) {
          reader.push(b, (code, payload) => {
            const r = decodeResponse(code, payload);
            if (r.kind === 'protocol_error') throw new Error(r.message);
            replies.push(r);
          });
        }
      },
      close: () => (isClosed = true),
      pause: () => (isPaused = true),
      resume: () => (isPaused = false),
    },
    log,
  );
  return {
    session,
    replies,
    log,
    events,
    closed: () => isClosed,
    paused: () => isPaused,
    send: (...cmds) => session.feed(Buffer.concat(cmds.map((c) => encodeCommand(c)))),
  };
}

const OPTNEG: Command = { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff };
const CONNECT: Command = {
  kind: 'connect',
  hostname: '[192.0.2.1]',
  family: 'inet4',
  port: 1,
  address: '192.0.2.1',
};
const rcpt = (r: string): Command => ({ kind: 'rcpt', recipient: r, args: [] });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MilterSession', () => {
  it('refuses anything before option negotiation', () => {
    const h = harness();
    h.send(CONNECT);
    assert.ok(h.closed());
    assert.equal(h.log.events('protocol_error')[0]?.code, 'out_of_order');
  });

  it('refuses a second option negotiation', () => {
    const h = harness();
    h.send(OPTNEG, OPTNEG);
    assert.ok(h.closed());
  });

  it('closes on a malformed frame, reporting it once, and ignores the rest of the chunk', () => {
    const h = harness();
    h.send(OPTNEG);
    h.session.feed(Buffer.concat([Buffer.from([0, 0, 0, 2, 0x48, 0x78]), encodeCommand(rcpt('<a@b>'))]));
    assert.ok(h.closed());
    assert.equal(h.log.events('protocol_error').length, 1);
    assert.equal(h.replies.length, 1); // only the optneg reply
  });

  it('keeps connection facts and macros across ABORT, forgets the message', () => {
    const seen: SessionView[] = [];
    const h = harness({ decide: (_e, s) => (seen.push(s), { kind: 'continue' }) });
    h.send(OPTNEG, { kind: 'macro', stage: 0x43, pairs: ['j', 'mx'] }, CONNECT, { kind: 'helo', helo: 'h1' });
    h.send({ kind: 'mail', sender: '<a@b>', args: [] }, rcpt('<x@y>'), { kind: 'abort' });
    assert.equal(h.session.message, null);
    h.send({ kind: 'mail', sender: '<c@d>', args: [] }, rcpt('<z@y>'));
    const s = seen[seen.length - 1] as SessionView;
    assert.equal(s.client?.address, '192.0.2.1');
    assert.equal(s.helo, 'h1');
    assert.equal(s.macros.get('j'), 'mx');
    assert.equal(s.message?.sender, '<c@d>');
    assert.deepEqual(s.message?.recipients, ['<z@y>']);
    assert.equal(s.transaction, 2);
    assert.ok(h.events.includes('abort#1'));
  });

  it('QUIT_NC: the next SMTP session reuses the socket with a fresh handler and fresh state', () => {
    const h = harness();
    h.send(
      OPTNEG,
      { kind: 'macro', stage: 0x43, pairs: ['j', 'mx'] },
      CONNECT,
      { kind: 'helo', helo: 'h1' },
      { kind: 'quitNc' },
    );
    assert.ok(h.session.client === null);
    assert.equal(h.session.macros.get('j'), undefined);
    h.send({ ...CONNECT, address: '192.0.2.2' }, { kind: 'mail', sender: '<a@b>', args: [] }, rcpt('<x@y>'));
    const after = h.session as SessionView;
    assert.equal(after.client?.address, '192.0.2.2');
    assert.deepEqual(
      h.events.filter((e) => /open|close/.test(e)),
      ['open#1', 'close#1', 'open#2'],
    );
    assert.ok(!h.closed());
    assert.deepEqual(h.replies.slice(1), [{ kind: 'continue' }]);
  });

  it('QUIT and EOF end the session and close the handler once', () => {
    const h = harness();
    h.send(OPTNEG, CONNECT, { kind: 'quit' });
    assert.ok(h.closed());
    h.session.end('eof');
    assert.deepEqual(
      h.events.filter((e) => e.startsWith('close')),
      ['close#1'],
    );
    const g = harness();
    g.send(OPTNEG, CONNECT);
    g.session.end('eof');
    assert.ok(g.closed());
    assert.deepEqual(
      g.events.filter((e) => e.startsWith('close')),
      ['close#1'],
    );
  });

  it('answers with continue a suppressed command the MTA sends anyway', () => {
    const h = harness();
    h.send(OPTNEG, CONNECT, { kind: 'header', name: 'Subject', value: 'x' });
    assert.deepEqual(h.replies.slice(1), []); // header negotiated NR: no reply owed
    const g = harness();
    g.send({ kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }, CONNECT, {
      kind: 'header',
      name: 'Subject',
      value: 'x',
    });
    assert.deepEqual(g.replies.slice(1), [{ kind: 'continue' }, { kind: 'continue' }]); // no NR bits offered: connect and header get replies
  });

  it('keeps replies in order while an asynchronous decision is pending, pausing past the high-water mark', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const h = harness({
      highWater: 2,
      decide: (e) =>
        e.stage === 'rcpt' && e.recipient === '<slow@x>'
          ? gate.then(() => ({ kind: 'reject' as const, text: '550 5.7.1 slow' }))
          : { kind: 'continue' },
    });
    h.send(
      OPTNEG,
      CONNECT,
      { kind: 'mail', sender: '<a@b>', args: [] },
      rcpt('<slow@x>'),
      rcpt('<fast@x>'),
      rcpt('<fast2@x>'),
    );
    assert.equal(h.replies.length, 1);
    assert.ok(h.paused());
    release();
    await tick();
    await tick();
    assert.deepEqual(h.replies.slice(1), [
      { kind: 'replycode', text: '550 5.7.1 slow' },
      { kind: 'continue' },
      { kind: 'continue' },
    ]);
    assert.ok(!h.paused());
    assert.deepEqual(h.session.message?.recipients, ['<fast@x>', '<fast2@x>']);
  });

  it('tempfails and logs when the handler throws or rejects, and carries on', async () => {
    const h = harness({
      decide: (e) => {
        if (e.stage === 'rcpt' && e.recipient === '<throw@x>') throw new Error('bug');
        if (e.stage === 'rcpt' && e.recipient === '<reject@x>') return Promise.reject(new Error('async bug'));
        return { kind: 'continue' };
      },
    });
    h.send(
      OPTNEG,
      CONNECT,
      { kind: 'mail', sender: '<a@b>', args: [] },
      rcpt('<throw@x>'),
      rcpt('<reject@x>'),
      rcpt('<ok@x>'),
    );
    await tick();
    assert.deepEqual(h.replies.slice(1), [{ kind: 'tempfail' }, { kind: 'tempfail' }, { kind: 'continue' }]);
    assert.equal(h.log.events('handler_error').length, 2);
  });

  it('sends a reject text only with a matching code class', () => {
    const h = harness({ decide: () => ({ kind: 'reject', text: '451 4.0.0 wrong class' }) });
    h.send(OPTNEG, CONNECT, rcpt('<a@b>'));
    assert.deepEqual(h.replies.slice(1), [{ kind: 'reject' }]);
  });

  it('drops modifications the MTA did not allow and sends the rest before the final reply', () => {
    const eom = (): EomResult => ({
      decision: { kind: 'continue' },
      modifications: [
        { kind: 'addHeader', name: 'X-A', value: '1' },
        { kind: 'changeFrom', sender: '<n@x>' },
      ],
    });
    const h = harness({ eom, needs: { ...NEEDS, actions: SMFIF.ADDHDRS | SMFIF.CHGFROM } });
    h.send(
      { kind: 'optneg', version: 6, actions: SMFIF.ADDHDRS, protocol: 0x1fffff },
      CONNECT,
      { kind: 'mail', sender: '<a@b>', args: [] },
      { kind: 'eom', chunk: null },
    );
    assert.deepEqual(h.replies.slice(1), [
      { kind: 'addHeader', name: 'X-A', value: '1' },
      { kind: 'continue' },
    ]);
    assert.equal(h.session.message, null);
  });

  it('an invalid modification tempfails the message instead of sending garbage', () => {
    const h = harness({
      eom: () => ({
        decision: { kind: 'continue' },
        modifications: [{ kind: 'addHeader', name: 'X', value: 'a\0b' }],
      }),
    });
    h.send(OPTNEG, CONNECT, { kind: 'eom', chunk: null });
    assert.deepEqual(h.replies.slice(1), [{ kind: 'tempfail' }]);
  });
});
