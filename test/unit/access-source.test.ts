import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildImage, openImage } from '../../access-db/image.js';
import { parseKey } from '../../access-db/keys.js';
import { parseRhs, sendmailText } from '../../access-db/rhs.js';
import { AccessSnapshot } from '../../access-db/snapshot.js';
import { parseAccessSource } from '../../access-db/source.js';

describe('makemap source format', () => {
  const src = [
    '# comment in column 1', // 1
    '', // 2
    'Connect:192.0.2.1\tREJECT', // 3
    '  continuation', // 4
    'From:Spammer@Example.COM   ERROR:550 go  away # not a comment', // 5
    'novalue', // 6
    'from:spammer@example.com OK', // 7
    'To:x@y.example REJECT   ', // 8
    ' ', // 9
  ].join('\n');
  const p = parseAccessSource(src, '/etc/mail/access');

  it('skips comments and blank lines, keeps the rest of the line as the value', () => {
    assert.deepEqual(
      p.entries.map((e) => [e.line, e.key.key, e.value]),
      [
        [3, 'connect:192.0.2.1', 'REJECT'],
        [5, 'from:spammer@example.com', 'ERROR:550 go  away # not a comment'],
        [8, 'to:x@y.example', 'REJECT   '],
      ],
    );
  });

  it('reports leading-space lines and keys without value as errors with file:line', () => {
    assert.deepEqual(
      p.errors.map((e) => `${e.file}:${e.line}: ${e.message}`),
      [
        '/etc/mail/access:4: syntax error (leading space): continuation lines are not allowed',
        '/etc/mail/access:6: no value for key "novalue"',
        '/etc/mail/access:9: syntax error (leading space): continuation lines are not allowed',
      ],
    );
  });

  it('folds keys and keeps the first of duplicate keys with a warning (makemap -r: the last)', () => {
    assert.deepEqual(
      p.warnings.map((w) => `${w.line}: ${w.message}`),
      ['7: duplicate key "from:spammer@example.com" (line 5 wins)'],
    );
    const r = parseAccessSource(src, 'f', { replace: true });
    assert.equal(r.entries.find((e) => e.key.key === 'from:spammer@example.com')?.value, 'OK');
    const e = parseAccessSource('novalue\n', 'f', { allowEmptyValue: true });
    assert.deepEqual(e.errors, []);
  });

  it('drops CR of CRLF files with one warning, refuses over-long lines', () => {
    const r = parseAccessSource('a OK\r\nb OK\r\n', 'f');
    assert.deepEqual(
      r.entries.map((x) => x.value),
      ['OK', 'OK'],
    );
    assert.equal(r.warnings.length, 1);
    assert.equal(parseAccessSource(`k ${'v'.repeat(100)}\n`, 'f', { maxLineLength: 50 }).errors.length, 1);
  });
});

describe('keys', () => {
  it('knows the tags and leaves IPv6: and unknown prefixes untagged', () => {
    assert.deepEqual(
      [parseKey('Connect:Mail.Example').tag, parseKey('Connect:Mail.Example').key],
      ['connect', 'connect:mail.example'],
    );
    assert.equal(parseKey('IPv6:2001:db8::1').tag, null);
    assert.equal(parseKey('Foo:bar').key, 'foo:bar');
  });
  it('rewrites IPv6 keys to sendmail 8.15+ form', () => {
    assert.equal(parseKey('Connect:IPv6:2001:DB8::1').key, 'connect:ipv6:2001:db8:0:0:0:0:0:1');
    assert.equal(parseKey('Connect:IPv6:2002:c0a8:02c7').key, 'connect:ipv6:2002:c0a8:2c7');
    assert.equal(parseKey('Connect:IPv6:2001:db8:0:0:0:0:0:1').rewritten, undefined);
    assert.equal(parseKey('Connect:[IPv6:2001:db8::1]').key, 'connect:[ipv6:2001:db8:0:0:0:0:0:1]');
  });
  it('recognises CIDR keys (extension)', () => {
    assert.equal(parseKey('Connect:192.0.2.0/25').cidr?.bits, 25);
    assert.equal(parseKey('Connect:IPv6:2001:db8::/48').key, 'connect:ipv6:2001:db8:0:0:0:0:0:0/48');
    assert.equal(parseKey('192.0.2.0/33').cidr, undefined);
  });
});

describe('right-hand sides', () => {
  const rhs = (v: string, skip = false): ReturnType<typeof parseRhs> => parseRhs(v, { skip });
  it('keywords, case-insensitive, trailing blanks ignored', () => {
    assert.deepEqual(rhs('reject  '), { kind: 'reject' });
    assert.deepEqual(rhs('Relay'), { kind: 'relay' });
    assert.deepEqual(rhs('DISCARD'), { kind: 'discard' });
    assert.deepEqual(rhs('SKIP', true), { kind: 'skip' });
  });
  it('ERROR forms with and without D.S.N, quoted and bare', () => {
    const e = (v: string): unknown => {
      const a = rhs(v);
      return a.kind === 'error' ? [a.code, a.dsn, a.text, a.form] : a;
    };
    assert.deepEqual(e('ERROR:550 Bogus host'), [550, '5.0.0', 'Bogus host', 'error']);
    assert.deepEqual(e('ERROR:451 later'), [451, '4.0.0', 'later', 'error']);
    assert.deepEqual(e('ERROR:5.7.1:551 Relay denied'), [551, '5.7.1', 'Relay denied', 'error']);
    assert.deepEqual(e('ERROR:5.7.1:"550 go   away, now"'), [550, '5.7.1', 'go   away, now', 'error']);
    assert.deepEqual(e('ERROR:"550 quoted"'), [550, '5.0.0', 'quoted', 'error']);
    assert.deepEqual(e('550 Mailbox unavailable'), [550, '5.0.0', 'Mailbox unavailable', 'bare']);
    assert.deepEqual(e('REJCT'), [553, '5.3.0', 'REJCT', 'unknown']);
    assert.deepEqual(e('SKIP'), [553, '5.3.0', 'SKIP', 'unknown']);
  });
  it('QUARANTINE and numbers', () => {
    assert.deepEqual(rhs('QUARANTINE:held for review'), { kind: 'quarantine', reason: 'held for review' });
    assert.deepEqual(rhs('10'), { kind: 'number', value: 10 });
  });
  it('re-joins unquoted text the way sendmail does', () => {
    assert.equal(sendmailText('Go away, spammer: see <http://x> now!'), 'Go away,spammer:see<http://x>now!');
    assert.equal(
      sendmailText('Unquoted text, with punctuation: <here>!', true),
      'Unquoted text,with punctuation:<here',
    );
    // map values are %-expanded first (`%%` -> `%`), then tokenised: `%` is an operator character.
    assert.equal(sendmailText('100%% sure'), '100%sure');
  });
});

describe('compiled image', () => {
  const src = parseAccessSource(
    'Connect:192.0.2 REJECT\nFrom:a@b OK\nConnect:198.51.100.0/25 DISCARD\n',
    '/etc/mail/access',
  );
  const image = buildImage(src);
  it('round-trips: exact keys, CIDR keys, values, file:line', () => {
    const r = AccessSnapshot.fromImage(image, { skip: false });
    assert.ok(r.ok);
    const s = r.snapshot;
    assert.equal(s.size, 3);
    const e = s.get('from:a@b');
    assert.deepEqual(e === null ? null : { ...e, valueId: 0 }, {
      key: 'from:a@b',
      value: 'OK',
      valueId: 0,
      line: 2,
      where: '/etc/mail/access:2',
    });
    assert.equal(s.get('from:a@c'), null);
    assert.match(s.version, /^sha256:[0-9a-f]{64}$/);
  });
  it('refuses a truncated, altered or foreign file', () => {
    assert.match(
      String((openImage(image.subarray(0, image.length - 1)) as { problem: string }).problem),
      /size mismatch/,
    );
    const altered = Buffer.from(image);
    altered.writeUInt8((altered.at(-20) ?? 0) ^ 0xff, altered.length - 20);
    assert.match(String((openImage(altered) as { problem: string }).problem), /checksum/);
    assert.match(
      String((openImage(Buffer.from('Connect:1.2.3.4 OK\n')) as { problem: string }).problem),
      /bad magic/,
    );
  });
  it('handles an empty map', () => {
    const r = AccessSnapshot.fromImage(buildImage(parseAccessSource('# nothing\n', 'f')), { skip: false });
    assert.ok(r.ok && r.snapshot.size === 0 && r.snapshot.get('x') === null);
  });
  it('finds every key of a larger map (hash table probing)', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `From:user${i}@example.com REJECT`).join('\n');
    const r = AccessSnapshot.fromText(lines, 'f', { skip: false });
    assert.ok(r.ok);
    for (let i = 0; i < 5000; i += 7) assert.equal(r.snapshot.get(`from:user${i}@example.com`)?.line, i + 1);
    assert.equal(r.snapshot.get('from:user5000@example.com'), null);
  });
});
