import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildReplyText,
  MAX_REPLY_LINES,
  parseReplySpec,
  sanitiseReplyText,
} from '../../milter/reply-text.js';

describe('buildReplyText', () => {
  it('builds the single-line form', () => {
    assert.deepEqual(buildReplyText({ code: 550, dsn: '5.7.1', text: 'Relaying denied' }), {
      ok: true,
      text: '550 5.7.1 Relaying denied',
    });
  });
  it('fills in X.0.0 when no enhanced code is given', () => {
    assert.deepEqual(buildReplyText({ code: 451, text: 'later' }), { ok: true, text: '451 4.0.0 later' });
  });
  it('builds the multi-line form with CRLF and no trailing CRLF', () => {
    assert.deepEqual(
      buildReplyText({ code: 550, dsn: '5.7.1', text: ['Policy violation', 'See https://example.org/100%'] }),
      {
        ok: true,
        text: '550-5.7.1 Policy violation\r\n550 5.7.1 See https://example.org/100%%',
      },
    );
  });
  it('doubles every %', () => {
    assert.deepEqual(buildReplyText({ code: 550, text: '100% sure, %s' }), {
      ok: true,
      text: '550 5.0.0 100%% sure, %%s',
    });
  });
  const bad: [string, Parameters<typeof buildReplyText>[0]][] = [
    ['a 2xx code', { code: 250, text: 'ok' }],
    ['a 3xx code', { code: 354, text: 'go' }],
    ['a 6xx code', { code: 600, text: 'x' }],
    ['a class mismatch', { code: 550, dsn: '4.7.1', text: 'x' }],
    ['a malformed enhanced code', { code: 550, dsn: '5.7', text: 'x' }],
    ['a 4-digit subject', { code: 550, dsn: '5.7777.1', text: 'x' }],
    ['CR in the text', { code: 550, text: 'a\rb' }],
    ['LF in the text', { code: 550, text: ['ok', 'a\nb'] }],
    ['NUL in the text', { code: 550, text: 'a\0b' }],
    ['no lines', { code: 550, text: [] }],
    ['too many lines', { code: 550, text: new Array<string>(MAX_REPLY_LINES + 1).fill('x') }],
    ['a line over 980 bytes', { code: 550, text: 'x'.repeat(981) }],
    ['a line over 980 bytes once % is doubled', { code: 550, text: '%'.repeat(491) }],
  ];
  for (const [name, reply] of bad) {
    it(`refuses ${name}`, () => {
      assert.equal(buildReplyText(reply).ok, false);
    });
  }
  it('accepts exactly 32 lines of 980 bytes', () => {
    assert.equal(
      buildReplyText({ code: 550, text: new Array<string>(MAX_REPLY_LINES).fill('y'.repeat(980)) }).ok,
      true,
    );
  });
});

describe('sanitiseReplyText', () => {
  it('turns control characters into single spaces and caps the length with % counted double', () => {
    assert.equal(sanitiseReplyText('a\r\nb\tc\0d'), 'a b c d');
    assert.equal(sanitiseReplyText('%%%%', 5), '%%');
    const s = sanitiseReplyText('z'.repeat(2000));
    assert.equal(s.length, 400);
    assert.equal(buildReplyText({ code: 550, text: sanitiseReplyText('100%\r\nlisted') }).ok, true);
  });
});

describe('parseReplySpec', () => {
  it('parses configuration replies', () => {
    assert.deepEqual(parseReplySpec('550 5.7.1 Relaying denied'), {
      ok: true,
      reply: { code: 550, dsn: '5.7.1', text: 'Relaying denied' },
    });
    assert.deepEqual(parseReplySpec('451 try later'), { ok: true, reply: { code: 451, text: 'try later' } });
    assert.equal(parseReplySpec('250 ok').ok, false);
    assert.equal(parseReplySpec('550 4.7.1 x').ok, false);
    assert.equal(parseReplySpec('hello').ok, false);
  });
});
