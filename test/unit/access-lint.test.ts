import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lintAccess } from '../../access-db/lint.js';
import { parseAccessSource } from '../../access-db/source.js';

const OPTIONS = {
  skip: false,
  spam: 'friend' as const,
  delayChecks: true,
  localDomains: new Set(['example.test']),
};
const lint = (text: string): string[] =>
  lintAccess(parseAccessSource(text, 'f'), OPTIONS).map((f) => `${f.line} ${f.severity} ${f.message}`);

describe('access file lint', () => {
  it('finds each kind of problem at its line', () => {
    const out = lint(
      [
        'Connect:IPv6:2001:db8::1 REJECT', // 1 IPv6 form
        'From:a@b.example REJCT', // 2 free text -> 553 5.3.0
        'To:x@ ERROR:450 later', // 3 4xx without D.S.N
        'To:y@ ERROR:5.7.1:450 no', // 4 contradiction
        'Connect:10.1.2 SKIP', // 5 SKIP without the option
        'example.test RELAY', // 6 untagged RELAY on a local domain
        'Connect:192.0.2.0/24 OK', // 7 shadowed by line 8
        'Connect:192.0.2 REJECT', // 8
        'Spam:abuse@ OK', // 9 Spam: value
        'GreetPause:localhost 0', // 10 unused tag
        'x@ ERROR:550 see <http://x> now', // 11 unquoted text mangled
        'Connect:1.2.3.4 REJECT', // 12 fine
        'Connect:1.2.3.4 OK', // 13 duplicate
        '  bad', // 14 syntax
      ].join('\n'),
    );
    const at = (line: number): string[] => out.filter((l) => l.startsWith(`${line} `));
    assert.match(at(1).join(), /warning.*not in sendmail's IPv6 form.*connect:ipv6:2001:db8:0:0:0:0:0:1/);
    assert.match(at(2).join(), /warning.*"REJCT".*553 5\.3\.0/);
    assert.match(at(3).join(), /warning.*450 without a D\.S\.N gets 4\.0\.0/);
    assert.match(at(4).join(), /warning.*5\.7\.1 contradicts reply code 450/);
    assert.match(at(5).join(), /warning.*SKIP needs the skip option/);
    assert.match(at(6).join(), /warning.*untagged RELAY for local domain example\.test.*forged/);
    assert.match(at(7).join(), /warning.*connect:192\.0\.2\.0\/24 never decides.*line 8/);
    assert.deepEqual(at(8), []);
    assert.match(at(9).join(), /warning.*Spam: entries take FRIEND or HATER/);
    assert.deepEqual(at(10), ['10 note greetpause: entries are not used by milter-policy']);
    assert.match(at(11).join(), /note.*unquoted text is sent as "see<http:\/\/x>now"/);
    assert.deepEqual(at(12), []);
    assert.match(at(13).join(), /warning.*duplicate key/);
    assert.match(at(14).join(), /error.*leading space/);
  });

  it('a network covered by several more specific entries is shadowed; a partly covered one is not', () => {
    const covered = lint(
      'Connect:198.51.100 OK\nConnect:198.51.100.0/25 REJECT\nConnect:198.51.100.128/25 DISCARD\n',
    );
    assert.match(covered.join('\n'), /^1 warning connect:198\.51\.100 never decides.*lines 2, 3/m);
    assert.deepEqual(lint('Connect:198.51.100 OK\nConnect:198.51.100.0/25 REJECT\n'), []);
  });

  it('judges a /8 under 50,000 more specific keys by coverage (not covered: no warning)', () => {
    const lines = Array.from(
      { length: 50_000 },
      (_, i) => `Connect:10.${(i >> 8) & 255}.${i & 255} REJECT`,
    ).join('\n');
    assert.deepEqual(
      lint(`Connect:10 OK\n${lines}`).filter((l) => l.startsWith('1 ')),
      [],
    );
    const full = Array.from({ length: 256 }, (_, i) => `Connect:10.${i} REJECT`).join('\n');
    assert.match(lint(`Connect:10 OK\n${full}`).join('\n'), /^1 warning connect:10 never decides/m);
  });
});
