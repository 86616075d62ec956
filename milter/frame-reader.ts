// Bytes -> frames: the milter packet framing (u32 length, command byte, payload), incremental over a
// stream. Pure: no sockets or timers. The session feeds it every chunk the socket delivers.
//
// Limits are enforced *before* buffering (as Postfix's milter8.c does): a length of 0, or a payload
// longer than `maxPayload`, is reported as soon as the 4 length bytes are seen, without allocating
// or waiting for the payload. After an error the reader is dead: the caller closes the connection
// (there is no way to resynchronise a length-prefixed stream).
//
// Complete frames inside one chunk are handed out as zero-copy subarrays; a frame that spans
// chunks is copied once into a buffer of exactly its size.

import type { ProtocolError } from './commands.js';
import { protocolError } from './commands.js';

export type FrameSink = (code: number, payload: Buffer) => void;

export class FrameReader {
  /** Bytes of a length prefix split across chunks (fewer than 4). */
  private head: Buffer | null = null;
  /** A frame (length prefix excluded) being assembled across chunks. */
  private partial: Buffer | null = null;
  private filled = 0;
  private failed: ProtocolError | null = null;

  constructor(readonly maxPayload: number) {}

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return (this.head?.length ?? 0) + this.filled;
  }

  /**
   * Consumes one chunk, calling `sink` for each complete frame in order. Returns the protocol
   * error that stopped it, if any (frames before the error have already been delivered).
   */
  push(chunk: Buffer, sink: FrameSink): ProtocolError | null {
    if (this.failed !== null) return this.failed;
    let buf = chunk;
    let off = 0;

    if (this.partial !== null) {
      const want = this.partial.length - this.filled;
      const take = Math.min(want, buf.length);
      buf.copy(this.partial, this.filled, 0, take);
      this.filled += take;
      off = take;
      if (this.filled < this.partial.length) return null;
      const frame = this.partial;
      this.partial = null;
      this.filled = 0;
      sink(frame[0] as number, frame.subarray(1));
    } else if (this.head !== null) {
      buf = Buffer.concat([this.head, buf]);
      this.head = null;
    }

    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len === 0) return this.fail(protocolError('frame_empty', 'packet length is 0'));
      if (len - 1 > this.maxPayload) {
        return this.fail(
          protocolError(
            'frame_too_large',
            `packet payload of ${len - 1} bytes exceeds the limit of ${this.maxPayload}`,
          ),
        );
      }
      const start = off + 4;
      if (buf.length - start >= len) {
        sink(buf[start] as number, buf.subarray(start + 1, start + len));
        off = start + len;
        continue;
      }
      // Incomplete frame: copy what we have into a buffer of exactly its size.
      this.partial = Buffer.allocUnsafe(len);
      this.filled = buf.copy(this.partial, 0, start);
      return null;
    }
    if (off < buf.length) this.head = Buffer.from(buf.subarray(off));
    return null;
  }

  private fail(err: ProtocolError): ProtocolError {
    this.failed = err;
    this.head = null;
    this.partial = null;
    this.filled = 0;
    return err;
  }
}
