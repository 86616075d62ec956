import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { logAddress } from '../../daemon/log-address.js';

describe('addresses in decision lines (log.addresses)', () => {
  it('plain: as sent, bracketed also where Postfix sends a bare address', () => {
    assert.equal(logAddress('<User@Example.COM>'), '<User@Example.COM>');
    assert.equal(logAddress('root'), '<root>');
    assert.equal(logAddress('<>'), '<>');
  });
  it('redact: the local part goes, the domain stays, the null sender stays', () => {
    assert.equal(logAddress('<alice@example.com>', 'redact'), '<\u2026@example.com>');
    assert.equal(logAddress('postmaster', 'redact'), '<\u2026>');
    assert.equal(logAddress('<>', 'redact'), '<>');
  });
  it('hash: a keyed token per local part (case-insensitive), stable, different per key', () => {
    const a = logAddress('<alice@example.com>', 'hash', 'k1');
    assert.match(a, /^<h:[0-9a-f]{12}@example\.com>$/);
    assert.equal(logAddress('<ALICE@example.com>', 'hash', 'k1'), a);
    assert.notEqual(logAddress('<alice@example.com>', 'hash', 'k2'), a);
    assert.notEqual(logAddress('<bob@example.com>', 'hash', 'k1'), a);
    assert.equal(logAddress('<>', 'hash', 'k1'), '<>');
  });
});
