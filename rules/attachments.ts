// The dangerous-attachment scanner (issue 4, "the classic filters"): walks a message's MIME
// structure as the body streams in and collects every attachment name it can read, so that the
// attachments check can refuse `invoice.pdf.exe`. Called by the message-content collector
// (daemon/message-content.ts): writeHeaders once, writeBody per SMFIC_BODY chunk, end() at end of
// message; dangerousAttachment() then judges each name against the configured extension list.
//
// The MIME grammar is @zone-eu/mailsplit's (a streaming splitter, never the whole message in
// memory) and the header decoding libmime's (RFC 2047 encoded words, RFC 2231 parameters). What
// this module adds is the bounding: body bytes, part count, nesting depth, part header size and
// name length are limits (AttachmentLimits). When one is crossed the walk stops there and end()
// reports it in `overLimit`, for the check's configured over-limit verdict; nothing is walked
// without bound. Names come from `name=` and `filename=` of both Content-Type and
// Content-Disposition (plain, RFC 2231 extended or continued, RFC 2047 encoded, raw 8-bit UTF-8 or
// latin1), from enclosed messages (message/rfc822, inline or attached, walked as one more level of
// depth) and from uuencode `begin 644 name` / yEnc `=ybegin ... name=` lines of text parts.
//
// How it fails: never by throwing. Malformed input (a multipart without a usable boundary, a
// broken encoded word, 8-bit header bytes that are not UTF-8, a splitter error) becomes a line in
// `problems` and the walk goes on with what could be read; a limit becomes `overLimit`.

import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import libmime from 'libmime';
import type { Transform } from 'node:stream';

export interface AttachmentLimits {
  /** Deepest nesting walked. The message is depth 0; each multipart level and each enclosed
   *  message (message/rfc822) adds one. A part deeper than this stops the walk ('depth'). */
  readonly maxDepth: number;
  /** Most parts walked: the message itself, every MIME part, every enclosed message and every
   *  uuencoded file count one. One more stops the walk ('parts'). */
  readonly maxParts: number;
  /** Most body bytes walked (the header block is not counted: the MTA bounds it). The walk reads
   *  exactly this many bytes and, if the body is longer, stops there ('bytes'). */
  readonly maxBytes: number;
  /** Largest header block of one part, enclosed messages' headers included (bytes; the cost
   *  counts each line as at least 64 bytes, mailsplit's rule). Default 100 KiB, Postfix's
   *  header_size_limit. A larger one stops the walk ('bytes', with a problem naming the part). */
  readonly maxPartHeaderBytes?: number;
  /** Longest name kept (UTF-16 code units). A longer name keeps its start, the characters in
   *  front of its first NUL and its end (where the extension is), joined by '…'. Default 1024. */
  readonly maxNameLength?: number;
}

export const DEFAULT_ATTACHMENT_LIMITS: Required<AttachmentLimits> = {
  maxDepth: 20,
  maxParts: 1000,
  maxBytes: 50 * 1024 * 1024,
  maxPartHeaderBytes: 100 * 1024,
  maxNameLength: 1024,
};

export type AttachmentOverLimit = 'depth' | 'parts' | 'bytes';

export interface AttachmentScanResult {
  /** Every attachment/part file name found, decoded to a JS string, in message order (an enclosed
   *  message's names stand where the message does). Control characters are kept as found. */
  names: string[];
  /** Parts walked, the one that crossed maxParts included. */
  parts: number;
  /** Deepest nesting seen, the level that crossed maxDepth included. */
  depth: number;
  /** Body bytes walked (at most maxBytes). */
  bytes: number;
  /** Set when a limit stopped the walk; the first limit crossed wins. */
  overLimit: null | AttachmentOverLimit;
  /** Malformed MIME noticed, one line each, for logs (names are JSON-quoted). */
  problems: string[];
}

/** The message header as the MTA passed it (binary strings, folded with bare LF). */
export interface AttachmentHeaderField {
  readonly name: string;
  readonly value: string;
}

// Body bytes handed to the splitter in one write: coalesced small chunks, or a slice of a big
// one. Bounds the work done after a limit is crossed (the splitter finishes the write it has).
const SPLITTER_WRITE_BYTES = 64 * 1024;
// writeBody() answers false (wait for drain()) above this many queued bytes, true again below LOW.
const QUEUE_HIGH_BYTES = 256 * 1024;
const QUEUE_LOW_BYTES = 64 * 1024;
// A uuencode/yEnc begin line is read up to the name limit plus this much for `begin 644 `.
const BEGIN_LINE_OVERHEAD = 64;

interface WalkState {
  readonly limits: Required<AttachmentLimits>;
  parts: number;
  depth: number;
  overLimit: null | AttachmentOverLimit;
  readonly problems: string[];
  /** Walks not finished yet, so that a limit can stop all of them at once. */
  readonly walks: Set<MimeWalk>;
}

function stopAll(state: WalkState, limit: AttachmentOverLimit): void {
  state.overLimit ??= limit;
  for (const walk of [...state.walks]) walk.abort();
}

/** What the walk does with the body of the leaf part it is in. */
type LeafReader =
  | { readonly kind: 'text'; head: string; skip: boolean; truncated: boolean }
  | { readonly kind: 'message'; readonly child: MimeWalk; readonly decoder: Transform | null };

/**
 * One splitter over one message: the top-level message, or an enclosed message/rfc822 part that
 * mailsplit leaves as a body (an attached one), which gets a walk of its own one level deeper.
 * Bytes are queued and handed to the splitter one write at a time, so memory is the queue (which
 * writeBody's answer and drain() let the caller bound) plus one write in the splitter.
 */
class MimeWalk {
  /** Names in order; an enclosed message's walk stands where its names go. */
  readonly entries: (string | MimeWalk)[] = [];
  /** Resolves once this walk and every walk it started are finished; never rejects. */
  readonly done: Promise<void>;
  private readonly splitter: Splitter;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private endRequested = false;
  private endSent = false;
  private finished = false;
  private pausedFor: MimeWalk | null = null;
  private leaf: LeafReader | null = null;
  private readonly children: MimeWalk[] = [];
  /** Multiparts (and their part numbers) no part has been found in yet. */
  private readonly emptyMultiparts = new Map<MimeNode, number>();
  private readonly writableWaiters: (() => void)[] = [];
  private resolveDone: () => void = () => undefined;

  constructor(
    private readonly state: WalkState,
    private readonly baseDepth: number,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const { limits } = state;
    this.splitter = new Splitter({
      maxHeadSize: limits.maxPartHeaderBytes,
      // a backstop only: parts are counted (across all walks) from the node events below
      maxChildNodes: limits.maxParts + 1,
      // enclosed messages without `Content-Disposition: attachment` are split in this stream
      defaultInlineEmbedded: true,
    });
    this.splitter.on('data', (chunk: SplitterChunk) => this.guard(() => this.onChunk(chunk)));
    // mailsplit's typings declare only the 'data' event; the others are Transform's
    const stream = this.splitter as unknown as Transform;
    stream.on('error', (err: Error & { code?: string }) => this.guard(() => this.onError(err)));
    stream.on('end', () => this.guard(() => this.finish()));
    stream.on('close', () => this.guard(() => this.finish()));
    state.walks.add(this);
  }

  /** Body bytes queued and not handed to the splitter yet. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Queues bytes; false when the queue is over its high mark (see whenWritable). */
  write(chunk: Buffer): boolean {
    if (this.finished || this.endRequested) return true;
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued += chunk.length;
      this.pump();
    }
    return this.queued < QUEUE_HIGH_BYTES;
  }

  end(): void {
    if (this.endRequested) return;
    this.endRequested = true;
    this.pump();
  }

  /** Calls back once the queue is below its low mark or the walk is over. */
  whenWritable(callback: () => void): void {
    if (this.finished || this.queued < QUEUE_LOW_BYTES) callback();
    else this.writableWaiters.push(callback);
  }

  /** Stops at once (a limit was crossed): nothing more is split, done resolves. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.queue.length = 0;
    this.queued = 0;
    const leaf = this.leaf;
    this.leaf = null;
    if (leaf?.kind === 'message') {
      leaf.decoder?.destroy();
      leaf.child.abort();
    }
    this.splitter.destroy();
    this.state.walks.delete(this);
    this.wakeWriters();
    this.resolveDone();
  }

  private finish(): void {
    if (this.finished) return;
    this.closeLeaf();
    for (const [node, part] of this.emptyMultiparts) {
      const boundary = node._boundary === false ? '' : node._boundary.toString('latin1');
      this.state.problems.push(
        `part ${part}: multipart/${String(node.multipart)} boundary ${JSON.stringify(boundary)} never found, no parts read`,
      );
    }
    this.emptyMultiparts.clear();
    this.finished = true;
    this.state.walks.delete(this);
    this.wakeWriters();
    void Promise.all(this.children.map((c) => c.done)).then(() => this.resolveDone());
  }

  /** Runs a handler called from inside the splitter: an exception there would be uncaught. */
  private guard(handler: () => void): void {
    try {
      handler();
    } catch (err) {
      this.state.problems.push(`MIME walk stopped by an internal error: ${String(err)}`);
      this.abort();
    }
  }

  private pump(): void {
    if (this.writing || this.finished) return;
    if (this.queue.length === 0) {
      if (this.endRequested && !this.endSent) {
        this.endSent = true;
        this.splitter.end();
      }
      return;
    }
    const piece = this.takePiece();
    this.writing = true;
    this.splitter.write(piece, () => {
      this.writing = false;
      this.wakeWriters();
      this.pump();
    });
  }

  /** The next splitter write: small queued chunks joined, a big one sliced. */
  private takePiece(): Buffer {
    const first = this.queue[0] as Buffer;
    let piece: Buffer;
    if (first.length >= SPLITTER_WRITE_BYTES) {
      piece = first.subarray(0, SPLITTER_WRITE_BYTES);
      if (first.length > SPLITTER_WRITE_BYTES) this.queue[0] = first.subarray(SPLITTER_WRITE_BYTES);
      else this.queue.shift();
    } else {
      let n = 0;
      let size = 0;
      for (const c of this.queue) {
        if (size + c.length > SPLITTER_WRITE_BYTES) break;
        size += c.length;
        n++;
      }
      const taken = this.queue.splice(0, n);
      piece = taken.length === 1 ? first : Buffer.concat(taken, size);
    }
    this.queued -= piece.length;
    return piece;
  }

  private wakeWriters(): void {
    if (!this.finished && this.queued >= QUEUE_LOW_BYTES) return;
    for (const waiter of this.writableWaiters.splice(0)) waiter();
  }

  private onError(err: Error & { code?: string }): void {
    if (this.finished) return;
    if (err.code === 'EMAXLEN' && /child nodes/i.test(err.message)) {
      stopAll(this.state, 'parts');
    } else if (err.code === 'EMAXLEN') {
      this.state.problems.push(
        `part ${this.state.parts + 1}: header block over maxPartHeaderBytes (${this.state.limits.maxPartHeaderBytes})`,
      );
      stopAll(this.state, 'bytes');
    } else {
      this.state.problems.push(`MIME walk failed: ${err.message}`);
      this.abort();
    }
  }

  private onChunk(chunk: SplitterChunk): void {
    if (this.finished) return;
    if (chunk.type === 'node') this.onNode(chunk);
    else if (chunk.type === 'body') this.onBody(chunk.value);
    // 'data' chunks are multipart preamble, delimiters and epilogue: nothing to read there
  }

  private depthOf(node: MimeNode): number {
    let depth = this.baseDepth;
    const cap = this.state.limits.maxDepth;
    for (let p = node.parentNode; p !== false && depth <= cap; p = p.parentNode) depth++;
    return depth;
  }

  private onNode(node: MimeNode): void {
    this.closeLeaf();
    const state = this.state;
    const part = ++state.parts;
    if (part > state.limits.maxParts) return stopAll(state, 'parts');
    const depth = this.depthOf(node);
    if (depth > state.depth) state.depth = depth;
    if (depth > state.limits.maxDepth) return stopAll(state, 'depth');

    this.readNames(node, part);
    if (node.parentNode !== false) this.emptyMultiparts.delete(node.parentNode);
    if (node.multipart !== false) {
      if (node._boundary === false) {
        state.problems.push(
          `part ${part}: multipart/${node.multipart} without a usable boundary, read as text`,
        );
      } else {
        this.emptyMultiparts.set(node, part);
      }
      return;
    }
    if (node.rfc822 && node.messageNode !== true) return this.openEnclosedMessage(node, part, depth);
    if (node.rfc822) return; // split inline: the enclosed message's parts follow as nodes
    if (node.encoding !== 'base64') this.leaf = { kind: 'text', head: '', skip: false, truncated: false };
  }

  /** An attached message/rfc822 part: its body is a message, walked one level deeper. */
  private openEnclosedMessage(node: MimeNode, part: number, depth: number): void {
    const state = this.state;
    if (depth + 1 > state.limits.maxDepth) {
      state.depth = Math.max(state.depth, depth + 1);
      return stopAll(state, 'depth');
    }
    const encoding = node.encoding || '7bit'; // mailsplit: '' when the header is absent
    const identity = encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
    if (!identity && encoding !== 'base64' && encoding !== 'quoted-printable') {
      state.problems.push(
        `part ${part}: enclosed message in unknown transfer encoding ${JSON.stringify(encoding)}, not walked`,
      );
      return;
    }
    const child = new MimeWalk(state, depth + 1);
    this.children.push(child);
    this.entries.push(child);
    let decoder: Transform | null = null;
    if (!identity) {
      decoder = node.getDecoder();
      decoder.on('data', (data: Buffer) => {
        if (!child.write(data)) this.pauseFor(child);
      });
      decoder.on('end', () => child.end());
      decoder.on('error', (err: Error) => {
        state.problems.push(`part ${part}: enclosed message not decodable: ${err.message}`);
        child.end();
      });
    }
    this.leaf = { kind: 'message', child, decoder };
  }

  private pauseFor(child: MimeWalk): void {
    if (this.pausedFor !== null) return;
    this.pausedFor = child;
    this.splitter.pause();
    child.whenWritable(() => {
      this.pausedFor = null;
      if (!this.finished) this.splitter.resume();
    });
  }

  private onBody(value: Buffer): void {
    const leaf = this.leaf;
    if (leaf === null) return;
    if (leaf.kind === 'message') {
      if (leaf.decoder !== null) leaf.decoder.write(value);
      else if (!leaf.child.write(value)) this.pauseFor(leaf.child);
      return;
    }
    // text part: look at the start of each line for a uuencode/yEnc begin line
    const max = this.state.limits.maxNameLength + BEGIN_LINE_OVERHEAD;
    let pos = 0;
    while (pos < value.length) {
      const nl = value.indexOf(0x0a, pos);
      const end = nl < 0 ? value.length : nl;
      if (!leaf.skip && end > pos) {
        const c = value[pos];
        if (leaf.head === '' && c !== 0x62 /* b */ && c !== 0x3d /* = */) {
          leaf.skip = true;
        } else {
          const take = Math.min(end, pos + max - leaf.head.length);
          if (take < end) leaf.truncated = true;
          if (take > pos) leaf.head += value.toString('latin1', pos, take);
        }
      }
      if (nl < 0) break;
      this.endTextLine(leaf);
      pos = nl + 1;
    }
  }

  private endTextLine(leaf: LeafReader & { kind: 'text' }): void {
    const line = leaf.head.replace(/\r$/, '');
    const truncated = leaf.truncated;
    leaf.head = '';
    leaf.skip = false;
    leaf.truncated = false;
    const match = /^begin(?:-base64)? +[0-7]{3,4} +(.+)$/.exec(line) ?? /^=ybegin .*?\bname=(.+)$/.exec(line);
    const raw = match?.[1];
    if (raw === undefined) return;
    const state = this.state;
    const part = ++state.parts;
    if (part > state.limits.maxParts) return stopAll(state, 'parts');
    if (truncated) {
      state.problems.push(`part ${part}: uuencode begin line longer than maxNameLength, name cut`);
    }
    this.keepName(eightBitText(raw, state.problems, part), part);
  }

  private closeLeaf(): void {
    const leaf = this.leaf;
    if (leaf === null) return;
    this.leaf = null;
    if (leaf.kind === 'text') {
      if (leaf.head !== '') this.endTextLine(leaf);
    } else if (leaf.decoder !== null) {
      leaf.decoder.end();
    } else {
      leaf.child.end();
    }
  }

  /** `name=` and `filename=` of every Content-Type and Content-Disposition header of the part. */
  private readNames(node: MimeNode, part: number): void {
    if (node.headers === false) return;
    const problems = this.state.problems;
    const found: string[] = [];
    for (const line of node.headers.getList()) {
      if (line.key !== 'content-type' && line.key !== 'content-disposition') continue;
      const value = libmime.decodeHeader(eightBitText(line.line, problems, part)).value;
      if (!/name/i.test(value)) continue;
      const parsed = libmime.parseHeaderValue(value, { stripComments: true });
      for (const param of ['filename', 'name']) {
        const raw = parsed.params[param];
        if (raw === undefined) continue;
        if (!parsed.decodedParams.includes(param)) {
          addName(found, decodeName(raw, problems, part));
          continue;
        }
        // RFC 2231 form, already decoded. A plain parameter of the same name is the fallback
        // libmime (rightly, RFC 6266) ignores, but an older client shows it: read it too.
        if (raw.includes('\uFFFD')) {
          problems.push(
            `part ${part}: RFC 2231 ${param} ${JSON.stringify(raw)} has bytes invalid in its charset`,
          );
        }
        addName(found, raw);
        const plainOnly = value.replace(/;\s*[^;=\s]*\*[^;]*/g, '');
        const plain = libmime.parseHeaderValue(plainOnly, { stripComments: true }).params[param];
        if (plain !== undefined) addName(found, decodeName(plain, problems, part));
      }
    }
    for (const name of found) this.keepName(name, part);
  }

  private keepName(name: string, part: number): void {
    const max = this.state.limits.maxNameLength;
    if (name.length > max) {
      this.state.problems.push(`part ${part}: name of ${name.length} characters shortened to ${max}`);
      name = shortenName(name, max);
    }
    this.entries.push(name);
  }
}

function addName(found: string[], name: string): void {
  if (name.trim() !== '' && !found.includes(name)) found.push(name);
}

/** A binary string as text: UTF-8 where it is valid UTF-8, else latin1 (with a problem noted). */
function eightBitText(binary: string, problems: string[], part: number): string {
  if (!/[\x80-\xff]/.test(binary)) return binary;
  const utf8 = Buffer.from(binary, 'latin1').toString('utf8');
  if (!utf8.includes('\uFFFD')) return utf8;
  problems.push(`part ${part}: 8-bit header bytes that are not UTF-8, read as latin1`);
  return binary;
}

const ENCODED_WORD = /=\?([^?\s]*)\?([^?\s]*)\?([^?]*)\?=/g;

/** What is wrong with the RFC 2047 encoded words of a value, or null. */
function encodedWordProblem(raw: string): string | null {
  for (const m of raw.matchAll(ENCODED_WORD)) {
    const encoding = (m[2] ?? '').toUpperCase();
    const text = m[3] ?? '';
    if (encoding !== 'B' && encoding !== 'Q') return `unknown encoding ${JSON.stringify(m[2])}`;
    const base64 = /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0;
    if (encoding === 'B' && !base64) return 'bad base64';
    if (encoding === 'Q' && /=(?![0-9A-Fa-f]{2})/.test(text)) return 'bad quoted-printable';
  }
  if (raw.replace(ENCODED_WORD, '').includes('=?')) return 'unterminated encoded-word';
  return null;
}

function decodeName(raw: string, problems: string[], part: number): string {
  if (!raw.includes('=?')) return raw;
  const problem = encodedWordProblem(raw);
  let decoded: string;
  try {
    decoded = libmime.decodeWords(raw);
  } catch (err) {
    problems.push(`part ${part}: encoded-word in name ${JSON.stringify(raw)} not decodable: ${String(err)}`);
    return raw;
  }
  if (problem !== null) {
    problems.push(`part ${part}: broken encoded-word in name ${JSON.stringify(raw)} (${problem})`);
  } else if (decoded.includes('\uFFFD') && !raw.includes('\uFFFD')) {
    problems.push(
      `part ${part}: encoded-word in name ${JSON.stringify(raw)} has bytes invalid in its charset`,
    );
  }
  return decoded;
}

/** Start, the characters in front of the first NUL, and end, joined by '…' (see maxNameLength). */
function shortenName(name: string, max: number): string {
  const keep = Math.max(2, max - 2);
  const head = Math.ceil(keep / 4);
  const tail = Math.floor(keep / 4);
  const nul = name.indexOf('\0');
  const middle =
    nul > head && nul < name.length - tail
      ? '\u2026' + name.slice(Math.max(head, nul - (keep - head - tail) + 1), nul + 1)
      : '';
  return name.slice(0, head) + middle + '\u2026' + name.slice(name.length - tail);
}

/**
 * Walks one message. Feed it the header and the body as the MTA sends them; end() gives the
 * names found and what the walk cost. The body is never buffered whole: writeBody() copies the
 * chunk into a queue that the splitter drains; when it answers false, a caller that wants memory
 * bounded waits for drain() before the next chunk (the milter session can, the MTA waits for
 * the reply to each body chunk).
 */
export class AttachmentScanner {
  private readonly state: WalkState;
  private readonly root: MimeWalk;
  private headerWritten = false;
  private bytes = 0;
  private result: Promise<AttachmentScanResult> | null = null;

  constructor(limits: AttachmentLimits = DEFAULT_ATTACHMENT_LIMITS) {
    this.state = {
      limits: { ...DEFAULT_ATTACHMENT_LIMITS, ...limits },
      parts: 0,
      depth: 0,
      overLimit: null,
      problems: [],
      walks: new Set(),
    };
    this.root = new MimeWalk(this.state, 0);
  }

  /** Body bytes queued and not walked yet (for tests and the benchmark). */
  get queuedBytes(): number {
    return this.root.queuedBytes;
  }

  /** The message header as the MTA passed it to the milter: values folded with bare LF, the one
   *  leading space already removed, binary strings (one char per byte). Only the MIME headers
   *  (Content-*, MIME-Version) are walked. A second call is ignored. */
  writeHeaders(headers: readonly AttachmentHeaderField[]): void {
    if (this.headerWritten || this.result !== null) return;
    this.headerWritten = true;
    let block = '';
    for (const { name, value } of headers) {
      const key = name.toLowerCase();
      if (!key.startsWith('content-') && key !== 'mime-version') continue;
      // every line break folds: a value cannot start another header line of its own
      block += `${name}: ${value.replace(/\r?\n[ \t]*/g, '\r\n ')}\r\n`;
    }
    this.root.write(Buffer.from(block + '\r\n', 'latin1'));
  }

  /** Body bytes as they arrive (chunks split anywhere). The chunk is copied, the caller may
   *  reuse its buffer. False: the queue is over its high mark, wait for drain(). */
  writeBody(chunk: Buffer): boolean {
    if (this.result !== null || this.state.overLimit !== null) return true;
    this.startBody();
    const room = this.state.limits.maxBytes - this.bytes;
    if (chunk.length > room) {
      // walk exactly maxBytes, then stop: what came before the limit is still read
      if (room > 0) this.root.write(Buffer.from(chunk.subarray(0, room)));
      this.bytes += Math.max(0, room);
      this.state.overLimit ??= 'bytes';
      this.root.end();
      return true;
    }
    this.bytes += chunk.length;
    return this.root.write(Buffer.from(chunk));
  }

  /** Resolves when the queue is low enough for more body (at once if it is). */
  drain(): Promise<void> {
    return new Promise((resolve) => this.root.whenWritable(resolve));
  }

  /** All body written: the result. Never rejects. A second call returns the same promise. */
  end(): Promise<AttachmentScanResult> {
    this.result ??= this.finish();
    return this.result;
  }

  private startBody(): void {
    if (!this.headerWritten) this.writeHeaders([]);
  }

  private async finish(): Promise<AttachmentScanResult> {
    this.startBody();
    this.root.end();
    await this.root.done;
    const state = this.state;
    return {
      names: flattenNames(this.root),
      parts: state.parts,
      depth: state.depth,
      bytes: this.bytes,
      overLimit: state.overLimit,
      problems: [...state.problems],
    };
  }
}

/** The names of a walk and its enclosed messages' walks, in order (no recursion). */
function flattenNames(root: MimeWalk): string[] {
  const names: string[] = [];
  const stack: { walk: MimeWalk; next: number }[] = [{ walk: root, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { walk: MimeWalk; next: number };
    const entry = top.walk.entries[top.next++];
    if (entry === undefined) stack.pop();
    else if (typeof entry === 'string') names.push(entry);
    else stack.push({ walk: entry, next: 0 });
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Judging a name

/**
 * The default refused extensions: what runs, installs or mounts on a double click on Windows,
 * where the mail recipient is. It is the overlap of Outlook's "Level 1" blocked types and
 * Gmail's blocked types, plus the disk images (iso, img, vhd, vhdx) that malware moved to when
 * Office macros were blocked. Left out on purpose, for legitimate business use: archives (zip,
 * rar, 7z: the check sees no names inside them), Office files (docm, xlsm), certificates (cer,
 * crt), databases (mdb, accdb), Unix and developer scripts (sh, py, pl), html, one.
 */
// prettier-ignore
export const DEFAULT_DANGEROUS_EXTENSIONS: readonly string[] = [
  // programs and installers
  'exe', 'com', 'pif', 'scr', 'cpl', 'msi', 'msp', 'mst', 'msix', 'msixbundle', 'appx',
  'appxbundle', 'application', 'appref-ms', 'gadget', 'dll', 'ocx', 'sys', 'drv', 'xll',
  'jar', 'jnlp', 'xbap',
  // Windows scripts and the script host
  'bat', 'cmd', 'vb', 'vbs', 'vbe', 'js', 'jse', 'ws', 'wsf', 'wsc', 'wsh', 'hta', 'sct',
  'ps1', 'ps1xml', 'ps2', 'ps2xml', 'psc1', 'psc2', 'psd1', 'psm1', 'msh', 'msh1', 'msh2',
  'mshxml', 'msh1xml', 'msh2xml',
  // shortcuts, settings, registry, help and control files that run code
  'lnk', 'url', 'scf', 'shb', 'shs', 'inf', 'ins', 'isp', 'reg', 'chm', 'hlp', 'msc',
  'settingcontent-ms', 'diagcab', 'library-ms', 'search-ms', 'ade', 'adp', 'mde', 'bas',
  // disk images Windows mounts on a double click
  'iso', 'img', 'vhd', 'vhdx',
];

/** A configured extension list as the lookup set dangerousAttachment() wants: lower case, no dot. */
export function extensionSet(extensions: readonly string[]): ReadonlySet<string> {
  return new Set(extensions.map((e) => e.trim().replace(/^\.+/, '').toLowerCase()).filter((e) => e !== ''));
}

// What a double extension hides behind: extensions a recipient takes for a document or a picture.
// prettier-ignore
const HARMLESS_LOOKING = new Set([
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods', 'odp', 'rtf', 'txt', 'csv',
  'xml', 'htm', 'html', 'jpg', 'jpeg', 'png', 'gif', 'bmp', 'tif', 'tiff', 'webp', 'mp3', 'mp4',
  'wav', 'avi', 'mov', 'zip', 'rar', '7z', 'eml', 'msg', 'ics', 'vcf',
]);

// C0 controls, DEL and C1 controls; bidi overrides/isolates, zero-width and BOM characters, which
// let `invoice\u202Efdp.exe` display as `invoiceexe.pdf`
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * The dangerous extension (lower case, no dot) of an attachment name, or null.
 *
 * The name is read the ways a recipient's system might read it, and any reading that ends in a
 * listed extension counts:
 * - control and invisible characters (NUL, CR, bidi overrides, zero-width) are removed, and a
 *   name with a NUL is also read up to its first NUL, as C code sees it (`a.exe\0.txt` -> exe);
 * - only the last path component counts (`/` and `\`), and an NTFS stream suffix is dropped
 *   (`a.exe::$DATA`, `a.exe:x` -> a.exe);
 * - trailing dots and spaces are dropped, as Windows does (`a.exe. ` -> exe); case is ignored.
 * The last extension decides: `report.exe.txt` is a text file to Windows and is not flagged.
 * A dangerous extension behind a harmless-looking one (`invoice.pdf.exe`) is a double extension,
 * named so in the reason. `extensions` is lower case without dots (see extensionSet()).
 */
export function dangerousAttachment(
  name: string,
  extensions: ReadonlySet<string>,
): { extension: string; reason: string } | null {
  const invisible = name.search(INVISIBLE) >= 0;
  const readings = [name.replace(INVISIBLE, '')];
  const nul = name.indexOf('\0');
  if (nul >= 0) readings.push(name.slice(0, nul).replace(INVISIBLE, ''));
  for (const reading of readings) {
    const hit = judgeName(reading, extensions);
    if (hit === null) continue;
    const note =
      nul >= 0
        ? ' (name contains a NUL)'
        : invisible
          ? ' (name contains control or invisible characters)'
          : '';
    return { extension: hit.extension, reason: hit.reason + note };
  }
  return null;
}

function judgeName(
  name: string,
  extensions: ReadonlySet<string>,
): { extension: string; reason: string } | null {
  const base = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  const colon = base.indexOf(':');
  return (
    judgeBase(base, extensions, false) ??
    (colon >= 0 ? judgeBase(base.slice(0, colon), extensions, true) : null)
  );
}

function judgeBase(
  base: string,
  extensions: ReadonlySet<string>,
  streamSuffix: boolean,
): { extension: string; reason: string } | null {
  base = trimTrailing(base, '. \t');
  const dot = base.lastIndexOf('.');
  if (dot < 0) return null;
  const extension = base.slice(dot + 1).toLowerCase();
  if (!extensions.has(extension)) return null;
  const before = trimTrailing(base.slice(0, dot), ' \t');
  const inner = before.lastIndexOf('.');
  const innerExtension = inner >= 0 ? before.slice(inner + 1).toLowerCase() : '';
  let reason: string;
  if (HARMLESS_LOOKING.has(innerExtension)) {
    reason = `double extension .${innerExtension}.${extension}: a .${extension} file disguised as .${innerExtension}`;
  } else if (extensions.has(innerExtension)) {
    reason = `dangerous extension .${extension} (after .${innerExtension})`;
  } else {
    reason = `dangerous extension .${extension}`;
  }
  if (streamSuffix) reason += ' behind an NTFS stream suffix';
  return { extension, reason };
}

/** `s` without trailing characters from `chars` (a loop: a `[...]+$` regex is quadratic on long runs). */
function trimTrailing(s: string, chars: string): string {
  let end = s.length;
  while (end > 0 && chars.includes(s.charAt(end - 1))) end--;
  return s.slice(0, end);
}
