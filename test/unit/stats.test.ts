// cli/stats.ts: the Prometheus text parser (labels with escapes, special values, comments) and the
// admin's table printed from a real registry after simulated events.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMetrics, renderStats } from '../../cli/stats.js';
import { Metrics } from '../../daemon/metrics.js';
import type { StageOutcome } from '../../rules/engine.js';

const EMPTY: StageOutcome = {
  verdict: null,
  decidedBy: null,
  reason: null,
  entry: null,
  trace: [],
  addHeaders: [],
  quarantine: null,
  tags: [],
};

describe('parseMetrics', () => {
  it('reads names, labels (escaped quotes, backslashes, newlines, commas), values and skips comments', () => {
    const text = [
      '# HELP a_total help text',
      '# TYPE a_total counter',
      'a_total{x="1",y="a \\"quoted\\" \\\\ back\\nline, comma"} 3',
      'b 4.5 1700000000000',
      'c_bucket{le="+Inf"} +Inf',
      'd NaN',
      'garbage line here',
      '',
      'e{} -2',
    ].join('\n');
    assert.deepEqual(parseMetrics(text), [
      { name: 'a_total', labels: { x: '1', y: 'a "quoted" \\ back\nline, comma' }, value: 3 },
      { name: 'b', labels: {}, value: 4.5 },
      { name: 'c_bucket', labels: { le: '+Inf' }, value: Infinity },
      { name: 'd', labels: {}, value: NaN },
      { name: 'e', labels: {}, value: -2 },
    ]);
  });

  it('reads what the daemon registry writes', async () => {
    const m = new Metrics();
    m.server.connectionOpened();
    const samples = parseMetrics((await m.render()).body);
    assert.ok(samples.length > 20);
    assert.equal(samples.find((s) => s.name === 'milter_policy_connections_total')?.value, 1);
  });
});

describe('renderStats', () => {
  it('prints connections, decisions, replies, DNSBL zones with hit ratio, rate limits, stages', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.server.connectionOpened();
    m.server.connectionOpened();
    m.server.connectionClosed();
    m.server.protocolError('missing_nul');
    const relay: StageOutcome = {
      ...EMPTY,
      decidedBy: 'relay_guard',
      trace: [{ check: 'relay_guard', result: 'hit', action: 'reject', reason: 'x' }],
    };
    m.decision(
      'rcpt',
      { kind: 'reject', text: 'x' },
      'relay_guard',
      relay,
      '550 5.7.1 <a@b>... Relaying denied',
    );
    m.decision('eom', { kind: 'accept' }, null, EMPTY, null);
    m.decision(
      'rcpt',
      { kind: 'tempfail' },
      'rate_limit',
      {
        ...EMPTY,
        trace: [{ check: 'rate_limit', result: 'hit', action: 'tempfail', reason: 'per_ip: more than 3' }],
      },
      '452 4.3.2 Recipient rate limit exceeded.',
    );
    for (let i = 0; i < 3; i++) m.dnsbl.zoneLookup('zen.example', 'clean', 0.002);
    m.dnsbl.zoneLookup('zen.example', 'listed', 0.002);
    m.dnsCache.cacheHit();
    m.dnsCache.cacheHit();
    m.dnsCache.cacheHit();
    m.dnsCache.cacheMiss();
    m.policy.stage?.('rcpt', 2);
    const first = parseMetrics((await m.render()).body);
    const text = renderStats(first, { url: 'http://127.0.0.1:9464/metrics', at: new Date(0) });
    assert.match(
      text,
      /^milter-policy \S+ {2}http:\/\/127\.0\.0\.1:9464\/metrics {2}1970-01-01T00:00:00\.000Z$/m,
    );
    assert.match(text, /^connections {3}1 open, 2 accepted, none refused$/m);
    assert.match(text, /^protocol {6}errors: missing_nul 1$/m);
    assert.match(text, /^access_db {5}off$/m);
    assert.match(text, /^store {9}memory$/m);
    assert.match(text, /^ {2}rcpt +reject +relay_guard +enforce +1$/m);
    assert.match(text, /^ {2}eom +accept +none +enforce +1$/m);
    assert.match(text, /^ {2}refusals by reply code: 550 1, 452 1$/m);
    assert.match(text, /^ {2}zen\.example +4 +1 +3 +0 +25\.0% +2\.0 +-$/m);
    assert.match(text, /^ {2}cache: 3 hits, 1 misses, 0 coalesced; hit ratio 75\.0%$/m);
    assert.match(text, /^ {2}per_ip +enforce +1$/m);
    assert.match(text, /^ {2}rcpt +1 +2\.0 +2\.5$/m);
    // --watch: the change since the previous print
    m.decision(
      'rcpt',
      { kind: 'reject', text: 'x' },
      'relay_guard',
      relay,
      '550 5.7.1 <c@d>... Relaying denied',
    );
    const second = parseMetrics((await m.render()).body);
    const again = renderStats(second, { url: 'u', at: new Date(0), previous: first });
    assert.match(again, /^ {2}rcpt +reject +relay_guard +enforce +2 +\+1$/m);
  });

  it('says what is not there yet', () => {
    const text = renderStats([], { url: 'u', at: new Date(0) });
    assert.match(text, /\(none yet\)/);
    assert.doesNotMatch(text, /dnsbl/);
  });
});
