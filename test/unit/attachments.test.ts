// Unit tests of the dangerous-attachment scanner (rules/attachments.ts): names from every place
// and encoding mailers put them, hostile structures stopped at each limit (exactly at the limit
// and one over), malformed input reported as problems, and the same result for any chunking.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttachmentLimits, AttachmentScanResult } from '../../rules/attachments.js';
import {
  AttachmentScanner,
  DEFAULT_ATTACHMENT_LIMITS,
  DEFAULT_DANGEROUS_EXTENSIONS,
  dangerousAttachment,
  extensionSet,
} from '../../rules/attachments.js';

type Header = { name: string; value: string };

const MIXED: Header[] = [
  { name: 'From', value: 'a@example.test' },
  { name: 'MIME-Version', value: '1.0' },
  { name: 'Content-Type', value: 'multipart/mixed;\n\tboundary="b1"' },
];

/** A CRLF body from lines (binary strings). */
function crlf(...lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n', 'latin1');
}

/** One multipart/mixed body (boundary b1) of the given parts, each its header lines and a body. */
function mixed(...parts: { headers: string[]; body?: string }[]): Buffer {
  const lines: string[] = [];
  for (const p of parts) lines.push('--b1', ...p.headers, '', p.body ?? 'x');
  lines.push('--b1--');
  return crlf(...lines);
}

function attachment(headers: string[], body = 'TVqQAAMAAAAEAAAA'): { headers: string[]; body: string } {
  return { headers: [...headers, 'Content-Transfer-Encoding: base64'], body };
}

interface ScanOptions {
  limits?: Partial<AttachmentLimits>;
  /** Bytes per writeBody call (default: the whole body at once). */
  chunk?: number;
}

async function scan(
  headers: Header[],
  body: Buffer,
  options: ScanOptions = {},
): Promise<AttachmentScanResult> {
  const scanner = new AttachmentScanner({ ...DEFAULT_ATTACHMENT_LIMITS, ...options.limits });
  scanner.writeHeaders(headers);
  const step = options.chunk ?? Math.max(1, body.length);
  for (let i = 0; i < body.length; i += step) {
    if (!scanner.writeBody(body.subarray(i, i + step))) await scanner.drain();
  }
  return scanner.end();
}

const EXTENSIONS = extensionSet(DEFAULT_DANGEROUS_EXTENSIONS);

describe('AttachmentScanner: where names are found', () => {
  it('reads a plain exe attachment once though it is named in both headers', async () => {
    const r = await scan(
      MIXED,
      mixed(
        { headers: ['Content-Type: text/plain'], body: 'hello' },
        attachment([
          'Content-Type: application/octet-stream; name="setup.exe"',
          'Content-Disposition: attachment; filename="setup.exe"',
        ]),
      ),
    );
    assert.deepEqual(r.names, ['setup.exe']);
    assert.equal(r.parts, 3);
    assert.equal(r.depth, 1);
    assert.equal(r.overLimit, null);
    assert.deepEqual(r.problems, []);
  });

  it('reads different names in Content-Type and Content-Disposition, in order', async () => {
    const r = await scan(
      MIXED,
      mixed(
        attachment([
          'Content-Type: application/pdf; name="invoice.pdf.exe"',
          'Content-Disposition: attachment; filename=invoice.pdf',
        ]),
        attachment([
          'Content-Type: application/octet-stream',
          'Content-Disposition: attachment; filename="b.scr"',
        ]),
      ),
    );
    assert.deepEqual(r.names, ['invoice.pdf.exe', 'invoice.pdf', 'b.scr']);
  });

  it('reads the name of a single-part message from the MTA header (bare-LF folding)', async () => {
    const r = await scan(
      [
        { name: 'Content-Type', value: 'application/x-msdownload;\n name="run.exe"' },
        { name: 'Content-Transfer-Encoding', value: 'base64' },
      ],
      crlf('TVqQAAMAAAAEAAAA'),
    );
    assert.deepEqual(r.names, ['run.exe']);
    assert.equal(r.parts, 1);
    assert.equal(r.depth, 0);
  });

  it('walks a body with no header written as a text message', async () => {
    const scanner = new AttachmentScanner(DEFAULT_ATTACHMENT_LIMITS);
    scanner.writeBody(crlf('Content-Type: application/octet-stream; name="not-a-header.exe"', '', 'x'));
    const r = await scanner.end();
    assert.deepEqual(r.names, []);
    assert.equal(r.parts, 1);
  });

  it('decodes RFC 2231 names: charset, percent-encoding and continuations', async () => {
    const r = await scan(
      MIXED,
      mixed(
        attachment(["Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20invoice.pdf.exe"]),
        attachment([
          'Content-Disposition: attachment;',
          " filename*0*=utf-8''ev;",
          ' filename*1*=il.e;',
          ' filename*2=xe',
        ]),
        attachment(["Content-Type: application/octet-stream; name*=iso-8859-1'fr'r%E9sum%E9.scr"]),
      ),
    );
    assert.deepEqual(r.names, ['€ invoice.pdf.exe', 'evil.exe', 'résumé.scr']);
    assert.deepEqual(r.problems, []);
  });

  it('also reads the plain fallback a non-RFC 2231 client would show', async () => {
    const r = await scan(
      MIXED,
      mixed(
        attachment(['Content-Disposition: attachment; filename*=utf-8\'\'nice.pdf; filename="evil.exe"']),
      ),
    );
    assert.deepEqual(r.names, ['nice.pdf', 'evil.exe']);
  });

  it('decodes RFC 2047 encoded words, quoted or not, B and Q, split words joined', async () => {
    const cyrillic = Buffer.from('счёт.exe').toString('base64');
    const r = await scan(
      MIXED,
      mixed(
        attachment([`Content-Type: application/octet-stream; name="=?UTF-8?B?${cyrillic}?="`]),
        attachment(['Content-Disposition: attachment; filename="=?iso-8859-1?Q?r=E9sum=E9.scr?="']),
        attachment([
          'Content-Disposition: attachment;',
          ' filename="=?utf-8?Q?in?= =?utf-8?Q?voice.pdf.js?="',
        ]),
      ),
    );
    assert.deepEqual(r.names, ['счёт.exe', 'résumé.scr', 'invoice.pdf.js']);
    assert.deepEqual(r.problems, []);
  });

  it('reads raw 8-bit names as UTF-8, or as latin1 when they are not UTF-8 (with a problem)', async () => {
    const utf8 = Buffer.from('счёт.exe').toString('latin1');
    const r = await scan(
      MIXED,
      mixed(
        attachment([`Content-Disposition: attachment; filename="${utf8}"`]),
        attachment(['Content-Disposition: attachment; filename="r\xe9sum\xe9.exe"']),
      ),
    );
    assert.deepEqual(r.names, ['счёт.exe', 'résumé.exe']);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0] ?? '', /part 3: 8-bit header bytes that are not UTF-8, read as latin1/);
  });

  it('keeps NULs and control characters in names as found', async () => {
    const r = await scan(
      MIXED,
      mixed(
        attachment(["Content-Disposition: attachment; filename*=utf-8''a.exe%00.txt"]),
        attachment(['Content-Disposition: attachment; filename="b.exe\x00.pdf"']),
        attachment(['Content-Disposition: attachment; filename="=?utf-8?Q?c=0D=0A.scr?="']),
      ),
    );
    assert.deepEqual(r.names, ['a.exe\0.txt', 'b.exe\0.pdf', 'c\r\n.scr']);
    assert.deepEqual(
      r.names.map((n) => dangerousAttachment(n, EXTENSIONS)?.extension ?? null),
      ['exe', 'exe', 'scr'],
    );
  });

  it('walks an inline enclosed message as one more level', async () => {
    const r = await scan(
      MIXED,
      mixed({
        headers: ['Content-Type: message/rfc822'],
        body: [
          'Subject: inner',
          'Content-Type: multipart/mixed; boundary=in',
          '',
          '--in',
          'Content-Disposition: attachment; filename=inner.exe',
          '',
          'x',
          '--in--',
        ].join('\r\n'),
      }),
    );
    assert.deepEqual(r.names, ['inner.exe']);
    assert.equal(r.parts, 4); // the message, the rfc822 part, the enclosed message, its part
    assert.equal(r.depth, 3);
  });

  it('walks an attached enclosed message (7bit and base64) in place, one level deeper', async () => {
    const inner = ['Content-Type: application/octet-stream; name="deep.exe"', '', 'x'].join('\r\n');
    const r = await scan(
      MIXED,
      mixed(
        {
          headers: ['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="fwd.eml"'],
          body: inner,
        },
        attachment(['Content-Disposition: attachment; filename=between.pdf']),
        {
          headers: [
            'Content-Type: message/rfc822; name=b64.eml',
            'Content-Disposition: attachment',
            'Content-Transfer-Encoding: base64',
          ],
          body: Buffer.from(inner.replace('deep.exe', 'deeper.exe')).toString('base64'),
        },
      ),
    );
    assert.deepEqual(r.names, ['fwd.eml', 'deep.exe', 'between.pdf', 'b64.eml', 'deeper.exe']);
    assert.equal(r.depth, 2);
    assert.equal(r.parts, 6);
    assert.deepEqual(r.problems, []);
  });

  it('reads uuencode and yEnc begin lines in text parts (each one a part)', async () => {
    const r = await scan(
      [],
      crlf(
        'see attached',
        'begin 644 invoice.pdf.exe',
        'M34',
        '`',
        'end',
        '=ybegin line=128 size=3 name=tool.scr',
        'abc',
        '=yend',
      ),
    );
    assert.deepEqual(r.names, ['invoice.pdf.exe', 'tool.scr']);
    assert.equal(r.parts, 3);
  });
});

describe('AttachmentScanner: malformed and hostile input', () => {
  it('reports broken encoded words and keeps what decodes', async () => {
    const r = await scan(
      MIXED,
      mixed(
        attachment(['Content-Disposition: attachment; filename="=?utf-8?B?!!!?=.exe"']),
        attachment(['Content-Disposition: attachment; filename="=?utf-8?Q?evil.exe"']),
        attachment(['Content-Disposition: attachment; filename="=?utf-8?X?abc?=.exe"']),
        attachment(['Content-Disposition: attachment; filename="=?utf-8?B?/w==?=.exe"']),
      ),
    );
    assert.deepEqual(r.names, ['.exe', '=?utf-8?Q?evil.exe', '=?utf-8?X?abc?=.exe', '\uFFFD.exe']);
    assert.equal(r.problems.length, 4);
    assert.match(r.problems[0] ?? '', /part 2: broken encoded-word .*bad base64/);
    assert.match(r.problems[1] ?? '', /part 3: broken encoded-word .*unterminated/);
    assert.match(r.problems[2] ?? '', /part 4: broken encoded-word .*unknown encoding/);
    assert.match(r.problems[3] ?? '', /part 5: encoded-word .* has bytes invalid in its charset/);
  });

  it('reports a multipart without a boundary parameter and reads it as text', async () => {
    const r = await scan(
      [{ name: 'Content-Type', value: 'multipart/mixed' }],
      crlf('--b1', 'Content-Disposition: attachment; filename=hidden.exe', '', 'x', '--b1--'),
    );
    assert.deepEqual(r.names, []);
    assert.equal(r.parts, 1);
    assert.match(r.problems.join('\n'), /part 1: multipart\/mixed without a usable boundary/);
  });

  it('reports a boundary that never appears (garbled delimiters) and a non-ASCII boundary', async () => {
    const garbled = await scan(
      MIXED,
      crlf('--b2', 'Content-Disposition: attachment; filename=a.exe', '', 'x', '-b1--'),
    );
    assert.deepEqual(garbled.names, []);
    assert.match(garbled.problems.join('\n'), /part 1: multipart\/mixed boundary "b1" never found/);
    const nonAscii = await scan(
      [{ name: 'Content-Type', value: 'multipart/mixed; boundary="b\xe9"' }],
      crlf('--b\xe9'),
    );
    assert.match(nonAscii.problems.join('\n'), /without a usable boundary/);
  });

  it('takes an unclosed multipart, a header-only part and a missing final CRLF in its stride (mailsplit drops the empty part)', async () => {
    const body = Buffer.from(
      [
        '--b1',
        'Content-Disposition: attachment; filename=one.exe',
        '--b1',
        'Content-Disposition: attachment; filename=two.exe',
        '',
        'x',
        '--b1',
        'Content-Disposition: attachment; filename=three.exe',
      ].join('\r\n'),
      'latin1',
    );
    const r = await scan(MIXED, body);
    // a part whose header a delimiter ends has no content: mailsplit reports no node for it
    assert.deepEqual(r.names, ['two.exe', 'three.exe']);
    assert.equal(r.overLimit, null);
  });

  it('survives binary garbage, bare LF line ends and lone CRs', async () => {
    const garbage = Buffer.alloc(256 * 1024);
    let seed = 42;
    for (let i = 0; i < garbage.length; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      garbage[i] = seed & 0xff;
    }
    const lf = Buffer.from(
      '\n--b1\nContent-Disposition: attachment; filename=lf.exe\n\nx\n--b1--\n',
      'latin1',
    );
    const cr = Buffer.from('--b1\rContent-Disposition: attachment; filename=cr.exe\r\r', 'latin1');
    const r = await scan(MIXED, Buffer.concat([garbage, lf, garbage, cr, garbage]), { chunk: 4096 });
    assert.equal(r.overLimit, null);
    assert.ok(r.names.includes('lf.exe'));
    assert.equal(r.bytes, 3 * garbage.length + lf.length + cr.length);
  });

  it('gives the same result for 1-byte chunks as for one chunk', async () => {
    const inner = ['Content-Type: application/octet-stream; name="deep.exe"', '', 'x'].join('\r\n');
    const body = mixed(
      { headers: ['Content-Type: text/plain'], body: 'text\r\nbegin 644 uu.exe\r\nM\r\nend' },
      attachment(["Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC; filename*1=.scr"]),
      attachment(['Content-Disposition: attachment; filename="=?utf-8?B?!!!?=.exe"']),
      { headers: ['Content-Type: message/rfc822', 'Content-Disposition: attachment'], body: inner },
      {
        headers: [
          'Content-Type: message/rfc822',
          'Content-Disposition: attachment',
          'Content-Transfer-Encoding: base64',
        ],
        body: Buffer.from(inner).toString('base64'),
      },
      { headers: ['Content-Type: message/rfc822'], body: inner.replace('deep', 'inline') },
    );
    const whole = await scan(MIXED, body);
    assert.deepEqual(whole.names, ['uu.exe', '€.scr', '.exe', 'deep.exe', 'deep.exe', 'inline.exe']);
    for (const chunk of [1, 2, 3, 7, 64]) {
      assert.deepEqual(await scan(MIXED, body, { chunk }), whole, `chunk ${chunk}`);
    }
  });

  it('never rejects, and end() twice gives the same promise', async () => {
    const scanner = new AttachmentScanner(DEFAULT_ATTACHMENT_LIMITS);
    scanner.writeHeaders(MIXED);
    scanner.writeBody(crlf('--b1'));
    const first = scanner.end();
    assert.equal(scanner.end(), first);
    scanner.writeBody(crlf('ignored after end'));
    const r = await first;
    assert.equal(r.overLimit, null);
  });
});

describe('AttachmentScanner: limits (at the limit and one over)', () => {
  /** `levels` nested multiparts, the innermost holding an attachment. */
  function nestedMultiparts(levels: number): { headers: Header[]; body: Buffer } {
    const open: string[] = [];
    const close: string[] = [];
    for (let i = 1; i < levels; i++) {
      open.push(`--n${i}`, `Content-Type: multipart/mixed; boundary=n${i + 1}`, '');
      close.unshift(`--n${i}--`);
    }
    open.push(
      `--n${levels}`,
      'Content-Disposition: attachment; filename=bottom.exe',
      '',
      'x',
      `--n${levels}--`,
    );
    return {
      headers: [{ name: 'Content-Type', value: 'multipart/mixed; boundary=n1' }],
      body: crlf(...open, ...close),
    };
  }

  it('maxDepth: nesting exactly at the limit is walked, one more level stops the walk', async () => {
    const atLimit = nestedMultiparts(3); // parts at depth 1, 2, 3
    const r = await scan(atLimit.headers, atLimit.body, { limits: { maxDepth: 3 } });
    assert.equal(r.overLimit, null);
    assert.equal(r.depth, 3);
    assert.deepEqual(r.names, ['bottom.exe']);
    const over = nestedMultiparts(4);
    const o = await scan(over.headers, over.body, { limits: { maxDepth: 3 } });
    assert.equal(o.overLimit, 'depth');
    assert.equal(o.depth, 4);
    assert.deepEqual(o.names, []);
  });

  it('maxDepth: 10,000 nested multiparts stop at the default depth without deep recursion', async () => {
    const deep = nestedMultiparts(10_000);
    const r = await scan(deep.headers, deep.body, { chunk: 65_536 });
    assert.equal(r.overLimit, 'depth');
    assert.equal(r.depth, DEFAULT_ATTACHMENT_LIMITS.maxDepth + 1);
    assert.equal(r.parts, DEFAULT_ATTACHMENT_LIMITS.maxDepth + 2);
    assert.ok(r.bytes <= deep.body.length);
  });

  it('maxDepth: 10,000 nested attached and inline messages stop at the default depth', async () => {
    for (const disposition of ['Content-Disposition: attachment', 'Content-Disposition: inline']) {
      const level = ['Content-Type: message/rfc822', disposition, '', ''].join('\r\n');
      const body = Buffer.from(
        level.repeat(10_000) + 'Content-Disposition: attachment; filename=x.exe\r\n\r\nx\r\n',
      );
      const r = await scan(
        [
          { name: 'Content-Type', value: 'message/rfc822' },
          { name: 'Content-Disposition', value: disposition.slice(21) },
        ],
        body,
        { chunk: 65_536 },
      );
      assert.equal(r.overLimit, 'depth', disposition);
      assert.equal(r.depth, DEFAULT_ATTACHMENT_LIMITS.maxDepth + 1, disposition);
      assert.deepEqual(r.names, [], disposition);
    }
  });

  it('maxParts: exactly maxParts parts are walked, one more stops the walk', async () => {
    const parts = (n: number): Buffer =>
      mixed(
        ...Array.from({ length: n }, (_, i) => ({
          headers: [`Content-Disposition: attachment; filename=p${i}.txt`],
        })),
      );
    const r = await scan(MIXED, parts(4), { limits: { maxParts: 5 } }); // the message and 4 parts
    assert.equal(r.overLimit, null);
    assert.equal(r.parts, 5);
    assert.equal(r.names.length, 4);
    const o = await scan(MIXED, parts(5), { limits: { maxParts: 5 } });
    assert.equal(o.overLimit, 'parts');
    assert.equal(o.parts, 6);
    assert.equal(o.names.length, 4);
  });

  it('maxParts: 10,000 sibling parts stop at the default part count', async () => {
    const body = mixed(
      ...Array.from({ length: 10_000 }, (_, i) => ({
        headers: [`Content-Disposition: attachment; filename=p${i}.txt`],
      })),
    );
    const r = await scan(MIXED, body, { chunk: 65_536 });
    assert.equal(r.overLimit, 'parts');
    assert.equal(r.parts, DEFAULT_ATTACHMENT_LIMITS.maxParts + 1);
    assert.equal(r.names.length, DEFAULT_ATTACHMENT_LIMITS.maxParts - 1);
    assert.equal(r.names.at(-1), `p${DEFAULT_ATTACHMENT_LIMITS.maxParts - 2}.txt`);
  });

  it('maxParts: uuencoded files count as parts', async () => {
    const uu = (n: number): Buffer => crlf(...Array.from({ length: n }, (_, i) => `begin 644 f${i}.exe`));
    assert.equal((await scan([], uu(2), { limits: { maxParts: 3 } })).overLimit, null);
    assert.equal((await scan([], uu(3), { limits: { maxParts: 3 } })).overLimit, 'parts');
  });

  it('maxBytes: a body of exactly maxBytes is walked whole, one byte more stops the walk there', async () => {
    const body = mixed(attachment(['Content-Disposition: attachment; filename=a.exe']));
    const r = await scan(MIXED, body, { limits: { maxBytes: body.length }, chunk: 5 });
    assert.equal(r.overLimit, null);
    assert.equal(r.bytes, body.length);
    assert.deepEqual(r.names, ['a.exe']);
    const longer = Buffer.concat([body, Buffer.from('!')]);
    const o = await scan(MIXED, longer, { limits: { maxBytes: body.length }, chunk: 5 });
    assert.equal(o.overLimit, 'bytes');
    assert.equal(o.bytes, body.length);
    assert.deepEqual(o.names, ['a.exe'], 'what came before the limit is still read');
  });

  it('maxPartHeaderBytes: a part header exactly at the limit is read, one byte over stops the walk', async () => {
    const line = 'X-Padding: ' + 'p'.repeat(100); // every line over mailsplit's 64-byte floor
    const headers = ['Content-Disposition: attachment; filename="padded-part-name.exe"', line, line];
    const cost = headers.reduce((n, h) => n + h.length + 2, 0) + 2; // CRLFs and the empty line
    const body = mixed({ headers });
    const r = await scan(MIXED, body, { limits: { maxPartHeaderBytes: cost } });
    assert.equal(r.overLimit, null);
    assert.deepEqual(r.names, ['padded-part-name.exe']);
    const o = await scan(MIXED, body, { limits: { maxPartHeaderBytes: cost - 1 } });
    assert.equal(o.overLimit, 'bytes');
    assert.match(o.problems.join('\n'), /part 2: header block over maxPartHeaderBytes/);
  });

  it('maxNameLength: a name at the limit is kept, a longer one keeps its start, its NUL and its end', async () => {
    const max = 64;
    const exact = 'a'.repeat(max - 4) + '.exe';
    const long = 'b'.repeat(100) + '.exe\0' + 'c'.repeat(200) + '.pdf.scr';
    const r = await scan(
      MIXED,
      mixed(
        attachment([`Content-Disposition: attachment; filename="${exact}"`]),
        attachment([`Content-Disposition: attachment; filename="${long.replace('\0', '\\\0')}"`]),
      ),
      { limits: { maxNameLength: max } },
    );
    assert.equal(r.names[0], exact);
    const short = r.names[1] ?? '';
    assert.ok(short.length <= max, `${short.length}`);
    assert.ok(short.startsWith('bbbb') && short.endsWith('c.pdf.scr') && short.includes('b.exe\0'), short);
    assert.match(r.problems.join('\n'), /part 3: name of 313 characters shortened to 64/);
    assert.equal(dangerousAttachment(short, EXTENSIONS)?.extension, 'scr');
  });

  it('a 20 MiB message written in 64 KiB chunks is walked with a bounded queue', async () => {
    const scanner = new AttachmentScanner(DEFAULT_ATTACHMENT_LIMITS);
    scanner.writeHeaders(MIXED);
    const head = mixed(
      { headers: ['Content-Type: text/plain'], body: 'hello' },
      attachment(['Content-Disposition: attachment; filename=first.pdf']),
    ).subarray(0, -'--b1--\r\n'.length);
    const line = Buffer.from('QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFyc3R1\r\n');
    const chunk = Buffer.concat(Array.from({ length: 65_536 / line.length }, () => line));
    const tail = mixed(attachment(['Content-Disposition: attachment; filename=last.exe']));
    const bigHeader = crlf(
      '--b1',
      'Content-Disposition: attachment; filename=big.bin',
      'Content-Transfer-Encoding: base64',
      '',
    );
    let written = 0;
    let maxQueued = 0;
    const write = async (b: Buffer): Promise<void> => {
      written += b.length;
      const more = scanner.writeBody(b);
      maxQueued = Math.max(maxQueued, scanner.queuedBytes);
      if (!more) await scanner.drain();
    };
    await write(head);
    await write(bigHeader);
    while (written < 20 * 1024 * 1024) await write(chunk);
    await write(tail);
    const r = await scanner.end();
    assert.deepEqual(r.names, ['first.pdf', 'big.bin', 'last.exe']);
    assert.equal(r.overLimit, null);
    assert.equal(r.bytes, written);
    assert.deepEqual(r.problems, []);
    assert.ok(maxQueued <= 256 * 1024 + chunk.length, `queue reached ${maxQueued} bytes`);
  });
});

describe('AttachmentScanner: backpressure through an enclosed message', () => {
  it('an 8 MiB attached message is walked by its own splitter, the outer one paused while it catches up', async () => {
    const scanner = new AttachmentScanner(DEFAULT_ATTACHMENT_LIMITS);
    scanner.writeHeaders(MIXED);
    const line = Buffer.from('a plain text line of an enclosed message, long enough to be a line\r\n');
    const chunk = Buffer.concat(Array.from({ length: 1024 }, () => line));
    const open = crlf(
      '--b1',
      'Content-Type: message/rfc822',
      'Content-Disposition: attachment; filename="fwd.eml"',
      '',
      'Content-Type: multipart/mixed; boundary=in',
      '',
      '--in',
      'Content-Type: text/plain',
      '',
    );
    const close = crlf(
      '--in',
      'Content-Disposition: attachment; filename=inner.exe',
      '',
      'x',
      '--in--',
      '--b1--',
    );
    let written = 0;
    let maxQueued = 0;
    const write = async (b: Buffer): Promise<void> => {
      written += b.length;
      const more = scanner.writeBody(b);
      maxQueued = Math.max(maxQueued, scanner.queuedBytes);
      if (!more) await scanner.drain();
    };
    await write(open);
    while (written < 8 * 1024 * 1024) await write(chunk);
    await write(close);
    const r = await scanner.end();
    assert.deepEqual(r.names, ['fwd.eml', 'inner.exe']);
    assert.equal(r.depth, 3); // the rfc822 part 1, the enclosed message 2, its parts 3
    assert.equal(r.bytes, written);
    assert.deepEqual(r.problems, []);
    assert.ok(maxQueued <= 256 * 1024 + chunk.length, `queue reached ${maxQueued} bytes`);
  });
});

describe('dangerousAttachment', () => {
  const cases: [string, string | null, RegExp?][] = [
    ['setup.exe', 'exe', /^dangerous extension \.exe$/],
    ['SETUP.EXE', 'exe'],
    ['invoice.pdf.exe', 'exe', /double extension \.pdf\.exe: a \.exe file disguised as \.pdf/],
    ['Invoice.PDF.Scr', 'scr', /double extension \.pdf\.scr/],
    ['invoice.pdf                         .exe', 'exe', /double extension/],
    ['archive.zip.exe', 'exe', /double extension \.zip\.exe/],
    ['setup.v2.exe', 'exe', /^dangerous extension \.exe$/],
    ['dropper.js.vbs', 'vbs', /after \.js/],
    ['report.exe.txt', null],
    ['a.exe.', 'exe'],
    ['a.exe . . ', 'exe'],
    ['a.exe\0.txt', 'exe', /name contains a NUL/],
    ['a.e\0xe', 'exe', /name contains a NUL/],
    ['a.exe\r\n', 'exe', /control or invisible/],
    ['invoice\u202Efdp.exe', 'exe', /control or invisible/],
    ['in\u200Bvoice.pdf.e\u200Bxe', 'exe', /double extension/],
    ['C:\\Users\\x\\a.scr', 'scr'],
    ['../../a.js', 'js'],
    ['a.exe::$DATA', 'exe', /NTFS stream suffix/],
    ['Re: invoice.lnk', 'lnk'],
    ['.exe', 'exe'],
    ['exe', null],
    ['', null],
    ['document.pdf', null],
    ['a.tar.gz', null],
    ['photo.jpg', null],
    ['evil.exe/', null],
    ['disk.ISO', 'iso'],
    ['shortcut.appref-ms', 'appref-ms'],
  ];
  for (const [name, extension, reason] of cases) {
    it(`${JSON.stringify(name)} -> ${String(extension)}`, () => {
      const hit = dangerousAttachment(name, EXTENSIONS);
      assert.equal(hit?.extension ?? null, extension);
      if (reason !== undefined) assert.match(hit?.reason ?? '', reason);
    });
  }

  it('the default list holds what the issue names, lower case, without dots', () => {
    for (const e of [
      'exe',
      'pif',
      'scr',
      'vbs',
      'vbe',
      'bat',
      'cmd',
      'com',
      'js',
      'jse',
      'wsf',
      'wsh',
      'hta',
      'lnk',
    ]) {
      assert.ok(EXTENSIONS.has(e), e);
    }
    for (const e of ['cpl', 'msi', 'msp', 'reg', 'ps1', 'jar']) assert.ok(EXTENSIONS.has(e), e);
    for (const e of DEFAULT_DANGEROUS_EXTENSIONS) assert.match(e, /^[a-z0-9-]+$/);
    assert.equal(new Set(DEFAULT_DANGEROUS_EXTENSIONS).size, DEFAULT_DANGEROUS_EXTENSIONS.length);
  });

  it('uses the configured list: extensionSet normalises case and dots', () => {
    const only = extensionSet(['.EXE', ' Docm ']);
    assert.equal(dangerousAttachment('a.docm', only)?.extension, 'docm');
    assert.equal(dangerousAttachment('a.scr', only), null);
    assert.equal(dangerousAttachment('a.Exe', only)?.extension, 'exe');
  });
});
