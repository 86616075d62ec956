// The attachment-walk benchmark (issue 4), compiled to dist/bench/attachments.js and run as
//   npm run build && node dist/bench/attachments.js [--repeat N] [--out DIR] [--quick]
// What the dangerous-attachment check costs per MiB of message body: the streaming MIME walk of
// rules/attachments.ts (mailsplit + libmime) fed in 64 KiB chunks, as the MTA sends a body to a
// milter (SMFIC_BODY, at most 65535 bytes each), on deterministic messages of several shapes:
//   one base64 attachment of 1, 10 and 50 MiB (the walk's default maxBytes is 50 MiB);
//   many small parts (1000 parts, max_parts' default, of 1 KiB: the per-part cost);
//   nested enclosed messages (message/rfc822 ten deep, each with an attachment);
//   a plain 10 MiB text body with no MIME structure (the floor: the splitter's line scan).
// Each shape is walked `repeat` times (default 5) after one warm-up walk; the report gives the
// median wall time, the MiB/s and ms/MiB it means, and the process CPU time over the same walks.
// Results: the `attachments` section of docs/benchmarks.md (between its markers; bench/run.ts
// keeps it when it rewrites the rest) and docs/benchmarks-attachments.json, written here, never
// by hand. The shared-machine guard of bench/run.ts applies: it waits until the machine is quiet.
// Failure: exit 1 when a walk does not find the names it must find (the walk is wrong, and a
// figure for a wrong walk is worthless); 0 otherwise.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AttachmentScanner } from '../rules/attachments.js';
import type { AttachmentHeaderField } from '../rules/attachments.js';
import type { Machine } from './machine.js';
import { machine, root, waitQuiet } from './machine.js';
import { formatJson, replaceSection } from './report-sections.js';

const CHUNK = 65535;
const MiB = 1024 * 1024;

interface Shape {
  readonly name: string;
  readonly what: string;
  readonly headers: readonly AttachmentHeaderField[];
  readonly body: Buffer;
  /** The names the walk must report, in order. */
  readonly names: readonly string[];
}

/** Deterministic filler bytes (xorshift32): base64 of it does not compress into anything special. */
function filler(bytes: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** base64 in 76-character lines, CRLF. */
function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join('\r\n');
}

function multipart(boundary: string, parts: readonly string[]): string {
  return (
    `This is a multi-part message in MIME format.\r\n` +
    parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('') +
    `--${boundary}--\r\n`
  );
}

function attachmentPart(name: string, data: Buffer): string {
  return (
    `Content-Type: application/octet-stream; name="${name}"\r\n` +
    `Content-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename="${name}"\r\n\r\n` +
    base64Lines(data)
  );
}

const TEXT_PART = `Content-Type: text/plain; charset=utf-8\r\n\r\nPlease find the file attached.\r\n`;

function mixed(boundary: string): AttachmentHeaderField[] {
  return [
    { name: 'MIME-Version', value: '1.0' },
    { name: 'Content-Type', value: `multipart/mixed; boundary="${boundary}"` },
  ];
}

function oneAttachment(mib: number): Shape {
  const name = `report-${mib}.pdf`;
  const body = multipart('b1', [
    TEXT_PART,
    attachmentPart(name, filler(Math.floor((mib * MiB * 3) / 4), mib)),
  ]);
  return {
    name: `base64-${mib}mib`,
    what: `one base64 attachment, ${mib} MiB of body`,
    headers: mixed('b1'),
    body: Buffer.from(body, 'latin1'),
    names: [name],
  };
}

/** `count` MIME parts walked in all (the message, its text part and count - 2 attachments). */
function manyParts(count: number): Shape {
  const names: string[] = [];
  const parts: string[] = [TEXT_PART];
  for (let i = 1; i <= count - 2; i++) {
    const name = `part-${i}.txt`;
    names.push(name);
    parts.push(attachmentPart(name, filler(768, i)));
  }
  return {
    name: `parts-${count}`,
    what: `${count} parts of about 1 KiB each`,
    headers: mixed('b2'),
    body: Buffer.from(multipart('b2', parts), 'latin1'),
    names,
  };
}

function nested(levels: number): Shape {
  // innermost first: each level is a message with a text part, an attachment and the next level
  let inner = '';
  const names: string[] = [];
  for (let level = levels; level >= 1; level--) {
    const boundary = `n${level}`;
    const name = `level-${level}.doc`;
    const parts = [TEXT_PART, attachmentPart(name, filler(64 * 1024, level))];
    if (inner !== '')
      parts.push(`Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n${inner}`);
    const body = multipart(boundary, parts);
    inner =
      `From: a@example.org\r\nTo: b@example.org\r\nSubject: level ${level}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n${body}`;
    names.unshift(name);
  }
  // the outer message is level 0: its own header carries the first level's Content-Type
  const split = inner.indexOf('\r\n\r\n');
  return {
    name: `nested-${levels}`,
    what: `enclosed messages ${levels} deep, a 64 KiB attachment in each`,
    headers: mixed('n1'),
    body: Buffer.from(inner.slice(split + 4), 'latin1'),
    names,
  };
}

function plainText(mib: number): Shape {
  const line = 'The quick brown fox jumps over the lazy dog, again and again and again.\r\n';
  const body = line.repeat(Math.ceil((mib * MiB) / line.length));
  return {
    name: `plain-${mib}mib`,
    what: `${mib} MiB of plain text, no MIME structure`,
    headers: [],
    body: Buffer.from(body, 'latin1'),
    names: [],
  };
}

async function walkOnce(shape: Shape): Promise<{ ms: number; names: string[]; parts: number }> {
  const start = performance.now();
  const scanner = new AttachmentScanner();
  scanner.writeHeaders(shape.headers);
  for (let off = 0; off < shape.body.length; off += CHUNK) {
    // the milter session waits for drain() when writeBody answers false: so does this
    if (!scanner.writeBody(shape.body.subarray(off, off + CHUNK))) await scanner.drain();
  }
  const result = await scanner.end();
  return { ms: performance.now() - start, names: result.names, parts: result.parts };
}

interface Row {
  readonly shape: string;
  readonly what: string;
  readonly bodyBytes: number;
  readonly parts: number;
  readonly walks: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly mibPerS: number;
  readonly msPerMib: number;
  /** Process CPU (user+system) per walk, ms; above wall time when GC threads help. */
  readonly cpuMsPerWalk: number;
}

interface RawReport {
  readonly when: string;
  readonly machine: Machine;
  readonly chunkBytes: number;
  readonly repeat: number;
  readonly rows: readonly Row[];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function measure(shape: Shape, repeat: number): Promise<Row> {
  const warm = await walkOnce(shape);
  if (JSON.stringify(warm.names) !== JSON.stringify(shape.names)) {
    throw new Error(
      `${shape.name}: the walk found ${JSON.stringify(warm.names.slice(0, 5))}… (${warm.names.length}), ` +
        `expected ${JSON.stringify(shape.names.slice(0, 5))}… (${shape.names.length})`,
    );
  }
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < repeat; i++) times.push((await walkOnce(shape)).ms);
  const cpu = process.cpuUsage(cpu0);
  const med = median(times);
  const mib = shape.body.length / MiB;
  return {
    shape: shape.name,
    what: shape.what,
    bodyBytes: shape.body.length,
    parts: warm.parts,
    walks: repeat,
    medianMs: round(med, 2),
    minMs: round(Math.min(...times), 2),
    maxMs: round(Math.max(...times), 2),
    mibPerS: round(mib / (med / 1000), 1),
    msPerMib: round(med / mib, 2),
    cpuMsPerWalk: round((cpu.user + cpu.system) / 1000 / repeat, 2),
  };
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

function markdownSection(rep: RawReport): string {
  const m = rep.machine;
  const lines = [
    '## Attachment walk (issue 4)',
    '',
    `Written by \`node dist/bench/attachments.js\` (bench/attachments.ts) on ${rep.when}, commit ` +
      `${m.commit}${m.uncommitted.length > 0 ? ` plus uncommitted ${m.uncommitted.join(', ')}` : ''}; ` +
      `${m.cores} cores (${m.cpuModel}), Node ${m.node}. Raw figures: docs/benchmarks-attachments.json.`,
    '',
    `The dangerous-attachment check's streaming MIME walk (rules/attachments.ts: mailsplit and ` +
      `libmime) in one process, the body fed in ${rep.chunkBytes}-byte chunks as a milter receives it. ` +
      `Median of ${rep.repeat} walks after one warm-up walk; every walk is checked to find exactly ` +
      `the names the message carries. CPU is the process's user+system time per walk (GC threads ` +
      `included, so it can exceed the wall time).`,
    '',
    '| message | body | parts | median ms | min–max ms | MiB/s | ms per MiB | CPU ms per walk |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rep.rows) {
    lines.push(
      `| ${r.what} | ${(r.bodyBytes / MiB).toFixed(2)} MiB | ${r.parts} | ${r.medianMs} | ` +
        `${r.minMs}–${r.maxMs} | ${r.mibPerS} | ${r.msPerMib} | ${r.cpuMsPerWalk} |`,
    );
  }
  const big = rep.rows.filter((r) => r.shape.startsWith('base64-'));
  if (big.length > 0) {
    const lo = Math.min(...big.map((r) => r.msPerMib));
    const hi = Math.max(...big.map((r) => r.msPerMib));
    lines.push(
      '',
      `Cost of the walk on attachment-carrying mail: ${lo}–${hi} ms per MiB of body on one core. ` +
        `A gateway that walks every message spends that on top of the milter round trips; the ` +
        `walk stops at \`filters.attachments.max_bytes\` (default 50 MiB), \`max_parts\` and ` +
        `\`max_depth\`, so one message cannot cost more than the 50 MiB row.`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let repeat = 5;
  let out = path.join(root, 'docs');
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--repeat') repeat = Number(argv[++i]);
    else if (a === '--out') out = path.resolve(argv[++i] ?? 'docs');
    else if (a === '--quick') quick = true;
    else {
      process.stderr.write(`attachments bench: unknown option ${a}\n`);
      return 1;
    }
  }
  if (!Number.isInteger(repeat) || repeat < 1) {
    process.stderr.write('attachments bench: --repeat must be a positive integer\n');
    return 1;
  }
  if (quick) repeat = 1;
  const shapes: Shape[] = quick
    ? [oneAttachment(1), manyParts(100), nested(3), plainText(1)]
    : [oneAttachment(1), oneAttachment(10), oneAttachment(50), manyParts(1000), nested(10), plainText(10)];
  await waitQuiet();
  const rows: Row[] = [];
  for (const shape of shapes) {
    try {
      const row = await measure(shape, repeat);
      rows.push(row);
      process.stderr.write(`${row.shape}: ${row.medianMs} ms, ${row.mibPerS} MiB/s\n`);
    } catch (err) {
      process.stderr.write(`attachments bench: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const rep: RawReport = {
    when: new Date().toISOString(),
    machine: machine(),
    chunkBytes: CHUNK,
    repeat,
    rows,
  };
  await mkdir(out, { recursive: true });
  const jsonFile = path.join(out, 'benchmarks-attachments.json');
  await writeFile(jsonFile, await formatJson(jsonFile, rep));
  const mdFile = path.join(out, 'benchmarks.md');
  const doc = await readFile(mdFile, 'utf8').catch(() => '');
  await writeFile(mdFile, replaceSection(doc, 'attachments', markdownSection(rep)));
  process.stderr.write(`attachments bench: wrote ${mdFile} and ${jsonFile}\n`);
  return 0;
}

process.exitCode = await main();
