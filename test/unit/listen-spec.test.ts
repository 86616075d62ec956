import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forPostfix, forSendmail, parseListenSpec } from '../../milter/listen-spec.js';

describe('parseListenSpec', () => {
  const good: [string, object][] = [
    ['unix:/run/m.sock', { kind: 'unix', path: '/run/m.sock' }],
    ['local:/run/m.sock', { kind: 'unix', path: '/run/m.sock' }],
    ['/run/m.sock', { kind: 'unix', path: '/run/m.sock' }],
    ['inet:8894@127.0.0.1', { kind: 'tcp', host: '127.0.0.1', port: 8894 }],
    ['inet6:8894@::1', { kind: 'tcp', host: '::1', port: 8894 }],
    ['inet:127.0.0.1:8894', { kind: 'tcp', host: '127.0.0.1', port: 8894 }],
    ['inet:[::1]:8894', { kind: 'tcp', host: '::1', port: 8894 }],
    ['inet:localhost:8894', { kind: 'tcp', host: 'localhost', port: 8894 }],
    ['inet:8894', { kind: 'tcp', host: '0.0.0.0', port: 8894 }],
  ];
  for (const [spec, want] of good) {
    it(`parses ${spec}`, () => {
      const r = parseListenSpec(spec);
      assert.ok(r.ok, r.ok ? '' : r.problem);
      assert.deepEqual({ ...r.value, spec: undefined }, { ...want, spec: undefined });
    });
  }
  for (const bad of [
    'tcp:127.0.0.1:25',
    'inet:99999@127.0.0.1',
    'inet:0@127.0.0.1',
    'inet:x@127.0.0.1',
    'unix:',
    'foo',
    'inet:a b:25',
  ]) {
    it(`refuses ${bad}`, () => {
      assert.equal(parseListenSpec(bad).ok, false);
    });
  }
  it('spells specs for each MTA', () => {
    const t = parseListenSpec('inet:8894@127.0.0.1');
    const u = parseListenSpec('inet6:25@::1');
    assert.ok(t.ok && u.ok);
    assert.equal(forPostfix(t.value), 'inet:127.0.0.1:8894');
    assert.equal(forSendmail(t.value), 'inet:8894@127.0.0.1');
    assert.equal(forPostfix(u.value), 'inet:[::1]:25');
    assert.equal(forSendmail(u.value), 'inet6:25@::1');
  });
});
