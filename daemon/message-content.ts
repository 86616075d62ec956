// Collects what end-of-message checks need of one message as the MTA streams it: the header
// fields (up to limits.max_headers and limits.max_header_bytes; the rest is counted, not kept),
// byte counts, and — when a check wants the body — feeds a BodyScanner (the MIME walk) chunk by
// chunk, so the body itself is never buffered. Owned by the policy adapter, one per transaction.

import type { AttachmentSummary, BodyScanner, HeaderField, MessageContent } from '../rules/check.js';

export interface ContentLimits {
  readonly maxHeaders: number;
  readonly maxHeaderBytes: number;
}

export class MessageContentCollector implements MessageContent {
  readonly headers: HeaderField[] = [];
  headerBytes = 0;
  bodyBytes = 0;
  headersTruncated = false;
  private keptBytes = 0;
  private headersWritten = false;
  private result: Promise<AttachmentSummary> | null = null;

  constructor(
    private readonly limits: ContentLimits,
    private readonly scanner: BodyScanner | null,
  ) {}

  addHeader(name: string, value: string): void {
    const size = name.length + value.length + 4; // "name: value\r\n"
    this.headerBytes += size;
    if (this.headers.length >= this.limits.maxHeaders || this.keptBytes + size > this.limits.maxHeaderBytes) {
      this.headersTruncated = true;
      return;
    }
    this.keptBytes += size;
    this.headers.push({ name, value });
  }

  private startBody(): void {
    if (this.headersWritten) return;
    this.headersWritten = true;
    this.scanner?.writeHeaders(this.headers);
  }

  addBody(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    this.startBody();
    this.scanner?.writeBody(chunk);
  }

  header(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.headers.find((h) => h.name.toLowerCase() === n)?.value;
  }

  headersNamed(name: string): readonly string[] {
    const n = name.toLowerCase();
    return this.headers.filter((h) => h.name.toLowerCase() === n).map((h) => h.value);
  }

  attachments(): Promise<AttachmentSummary> | null {
    if (this.scanner === null) return null;
    this.startBody();
    this.result ??= this.scanner.end();
    return this.result;
  }
}
