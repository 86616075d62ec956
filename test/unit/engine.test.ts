import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Check, CheckMode, CheckResult, OnError, PolicyInput } from '../../rules/check.js';
import { NO_MEMO } from '../../rules/check.js';
import { DEFER_REPLY, PolicyEngine } from '../../rules/engine.js';

const REJECT = { code: 550, dsn: '5.7.1', text: 'no' };

function check(
  name: string,
  result: CheckResult | (() => CheckResult | Promise<CheckResult>),
  opts: { mode?: CheckMode; onError?: OnError; budgetMs?: number; stages?: Check['stages'] } = {},
): Check & { calls: number } {
  return {
    name,
    stages: opts.stages ?? ['rcpt'],
    mode: opts.mode ?? 'enforce',
    budgetMs: opts.budgetMs ?? 1000,
    onError: opts.onError ?? 'defer_if_permit',
    calls: 0,
    run(): CheckResult | Promise<CheckResult> {
      this.calls++;
      return typeof result === 'function' ? result() : result;
    },
  };
}
const hit = (action: 'reject' | 'ok' = 'reject'): CheckResult =>
  action === 'ok'
    ? { kind: 'hit', verdict: { action: 'ok' }, reason: 'ok' }
    : { kind: 'hit', verdict: { action: 'reject', reply: REJECT }, reason: 'bad' };
const INPUT: PolicyInput = {
  stage: 'rcpt',
  client: { address: '192.0.2.1', ip: null, hostname: '[192.0.2.1]', port: 1, kind: 'inet4' },
  helo: null,
  sender: null,
  senderArgs: [],
  recipient: '<a@b>',
  recipients: [],
  macro: () => undefined,
  memo: NO_MEMO,
};
const engine = (checks: Check[], observe = false, stageBudgetMs = 5000): PolicyEngine =>
  new PolicyEngine(checks, { observe, stageBudgetMs });
const sleep = (ms: number, r: CheckResult): Promise<CheckResult> =>
  new Promise((res) => setTimeout(() => res(r), ms));

describe('PolicyEngine', () => {
  it('compiles per-stage pipelines: a stage without checks costs nothing', () => {
    const e = engine([
      check('a', hit(), { stages: ['rcpt'] }),
      check('b', hit(), { stages: ['mail', 'rcpt'] }),
    ]);
    assert.deepEqual([...e.stages].sort(), ['mail', 'rcpt']);
    assert.deepEqual(e.evaluate('connect', INPUT), {
      verdict: null,
      decidedBy: null,
      reason: null,
      entry: null,
      trace: [],
      addHeaders: [],
      quarantine: null,
      tags: [],
    });
  });

  it('first final verdict wins and later checks do not run; synchronous checks stay synchronous', () => {
    const later = check('later', hit());
    const out = engine([check('pass', { kind: 'pass' }), check('first', hit()), later]).evaluate(
      'rcpt',
      INPUT,
    );
    assert.ok(!(out instanceof Promise));
    assert.equal(out.decidedBy, 'first');
    assert.equal(later.calls, 0);
  });

  it('ok is final too', () => {
    const later = check('later', hit());
    const out = engine([check('pm', hit('ok')), later]).evaluate('rcpt', INPUT);
    assert.ok(!(out instanceof Promise) && out.verdict?.action === 'ok' && later.calls === 0);
  });

  it('observe mode (per check) records the hit and enforces nothing', () => {
    const out = engine([check('obs', hit(), { mode: 'observe' }), check('next', { kind: 'pass' })]).evaluate(
      'rcpt',
      INPUT,
    );
    assert.ok(!(out instanceof Promise));
    assert.equal(out.verdict, null);
    assert.deepEqual(out.trace[0], {
      check: 'obs',
      result: 'observed',
      reason: 'bad',
      action: 'reject',
      reply: REJECT,
    });
  });

  it('observe mode (global) enforces nothing, not even on_error tempfail', () => {
    const out = engine(
      [check('e', { kind: 'error', error: 'x' }, { onError: 'tempfail' }), check('r', hit())],
      true,
    ).evaluate('rcpt', INPUT);
    assert.ok(!(out instanceof Promise) && out.verdict === null);
  });

  it('on_error defer_if_permit: 4xx when the rest would accept, the reject when a later check rejects', () => {
    const err = (): Check => check('dnsbl', { kind: 'error', error: 'DNS timeout' });
    const a = engine([err(), check('p', { kind: 'pass' })]).evaluate('rcpt', INPUT);
    assert.ok(!(a instanceof Promise));
    assert.deepEqual(a.verdict, { action: 'tempfail', reply: DEFER_REPLY });
    assert.equal(a.decidedBy, 'dnsbl');
    const b = engine([err(), check('r', hit())]).evaluate('rcpt', INPUT);
    assert.ok(!(b instanceof Promise) && b.decidedBy === 'r');
    const c = engine([err(), check('pm', hit('ok'))]).evaluate('rcpt', INPUT);
    assert.ok(!(c instanceof Promise) && c.verdict?.action === 'tempfail');
  });

  it('on_error tempfail stops at once; continue ignores the failure', () => {
    const t = engine([
      check('e', { kind: 'error', error: 'x' }, { onError: 'tempfail' }),
      check('r', hit()),
    ]).evaluate('rcpt', INPUT);
    assert.ok(!(t instanceof Promise) && t.verdict?.action === 'tempfail' && t.decidedBy === 'e');
    const c = engine([check('e', { kind: 'error', error: 'x' }, { onError: 'continue' })]).evaluate(
      'rcpt',
      INPUT,
    );
    assert.ok(!(c instanceof Promise) && c.verdict === null);
  });

  it('a check that throws is an error result', () => {
    const out = engine([
      check(
        'boom',
        () => {
          throw new Error('bug');
        },
        { onError: 'tempfail' },
      ),
    ]).evaluate('rcpt', INPUT);
    assert.ok(!(out instanceof Promise) && out.verdict?.action === 'tempfail');
    assert.equal(out.trace[0]?.reason, 'bug');
  });

  it('awaits asynchronous checks in order', async () => {
    const out = await engine([
      check('slow-pass', () => sleep(5, { kind: 'pass' })),
      check('sync-hit', hit()),
    ]).evaluate('rcpt', INPUT);
    assert.equal(out.decidedBy, 'sync-hit');
  });

  it('a check over its budget becomes an error, and its signal is aborted', async () => {
    let aborted = false;
    const slow: Check = {
      name: 'slow',
      stages: ['rcpt'],
      mode: 'enforce',
      budgetMs: 10,
      onError: 'tempfail',
      run: (_i, budget) => {
        budget.signal.addEventListener('abort', () => (aborted = true));
        return new Promise<CheckResult>(() => undefined);
      },
    };
    const out = await engine([slow]).evaluate('rcpt', INPUT);
    assert.equal(out.verdict?.action, 'tempfail');
    assert.match(out.trace[0]?.reason ?? '', /timed out \(check budget/);
    assert.ok(aborted);
  });

  it('the stage budget caps the sum of checks', async () => {
    const out = await engine(
      [
        check('a', () => sleep(30, { kind: 'pass' }), { budgetMs: 1000 }),
        check('b', () => new Promise(() => undefined), { budgetMs: 1000 }),
      ],
      false,
      40,
    ).evaluate('rcpt', INPUT);
    assert.equal(out.verdict?.action, 'tempfail');
    assert.match(out.trace.find((t) => t.check === 'b')?.reason ?? '', /stage budget/);
  });

  it('collects header additions from passing checks', () => {
    const out = engine([
      check('h', { kind: 'pass', addHeaders: [{ name: 'X-A', value: '1' }] }, { stages: ['eom'] }),
    ]).evaluate('eom', INPUT);
    assert.ok(!(out instanceof Promise));
    assert.deepEqual(out.addHeaders, [{ name: 'X-A', value: '1' }]);
  });

  it('keeps the tags and observed notes of passing checks (a DNSBL zone in tag or observe action)', () => {
    const out = engine([
      check('z', {
        kind: 'pass',
        reason: 'r',
        tags: ['dnsbl: listed in x'],
        observed: ['dnsbl: listed in y'],
      }),
    ]).evaluate('rcpt', INPUT);
    assert.ok(!(out instanceof Promise));
    assert.deepEqual(out.tags, ['dnsbl: listed in x']);
    assert.deepEqual(out.trace[0]?.observed, ['dnsbl: listed in y']);
    const observing = engine([check('z', { kind: 'pass', tags: ['t'] }, { mode: 'observe' })]).evaluate(
      'rcpt',
      INPUT,
    );
    assert.ok(!(observing instanceof Promise) && observing.tags.length === 0);
  });
});
