// An in-process MTA for protocol tests: speaks the MTA side of the milter protocol to a real
// server over a real socket (ring (b) of the test plan), using the project's own MTA-side codec.
import net from 'node:net';
import type { Command, OptnegReply, Response } from '../../milter/commands.js';
import { FrameReader } from '../../milter/frame-reader.js';
import { decodeResponse, encodeCommand } from '../../milter/mta-codec.js';

export type Target = { readonly path: string } | { readonly host: string; readonly port: number };

/** What Postfix 3.7 offers: v6, every action, every protocol bit. */
export const POSTFIX_OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

export class FakeMta {
  private readonly reader = new FrameReader(16 * 1024 * 1024);
  private readonly responses: Response[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const err = this.reader.push(chunk, (code, payload) => {
        const r = decodeResponse(code, payload);
        if (r.kind === 'protocol_error') throw new Error(`bad response from milter: ${r.message}`);
        this.responses.push(r);
      });
      if (err !== null) throw new Error(`bad framing from milter: ${err.message}`);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  static connect(target: Target): Promise<FakeMta> {
    return new Promise((resolve, reject) => {
      const s =
        'path' in target
          ? net.connect({ path: target.path })
          : net.connect({ host: target.host, port: target.port });
      s.once('connect', () => resolve(new FakeMta(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get isClosed(): boolean {
    return this.ended;
  }

  send(cmd: Command): void {
    this.socket.write(encodeCommand(cmd));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next response packet (rejects if the milter closes first). */
  async next(timeoutMs = 2000): Promise<Response> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.responses.shift();
      if (r !== undefined) return r;
      if (this.ended) throw new Error('milter closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Nothing arrives within `ms` (for commands that must not be answered). */
  async silent(ms = 50): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.responses.length === 0;
  }

  async request(cmd: Command): Promise<Response> {
    this.send(cmd);
    for (;;) {
      const r = await this.next();
      if (r.kind !== 'progress') return r;
    }
  }

  async negotiate(
    offer: { version: number; actions: number; protocol: number } = POSTFIX_OFFER,
  ): Promise<OptnegReply> {
    const r = await this.request({ kind: 'optneg', ...offer });
    if (r.kind !== 'optneg') throw new Error(`expected an optneg reply, got ${r.kind}`);
    return r;
  }

  /** Sends end of message; returns the modifications and the final reply. */
  async eom(): Promise<{ modifications: Response[]; final: Response }> {
    this.send({ kind: 'eom', chunk: null });
    const modifications: Response[] = [];
    for (;;) {
      const r = await this.next();
      if (['continue', 'accept', 'reject', 'tempfail', 'discard', 'replycode'].includes(r.kind))
        return { modifications, final: r };
      if (r.kind !== 'progress') modifications.push(r);
    }
  }

  macro(stage: string, pairs: Record<string, string>): void {
    this.send({ kind: 'macro', stage: stage.charCodeAt(0), pairs: Object.entries(pairs).flat() });
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
