// A small SMTP client for driving the MTAs under test, one command at a time, so that each step's
// full reply (every line, code and text) can be asserted. Called by the e2e scenarios; connects
// from a chosen loopback source address (`localAddress`: 127.0.0.2 plays an untrusted outside
// client, 127.0.0.3 a trusted network) because both MTAs and the daemon judge the client address.
// Fails by rejecting: connection errors, a closed connection and a reply timeout all reject the
// pending command with what was sent; a 4xx/5xx reply is a normal result, never an exception.

import type { Socket } from 'node:net';
import { connect } from 'node:net';

/** One SMTP reply, possibly multi-line. */
export interface SmtpReply {
  code: number;
  /** Every line as received, e.g. ["250-host", "250 SIZE"]. */
  lines: string[];
  /** The full reply: the lines joined with "\n" (single-line replies: that line). */
  text: string;
}

export interface SmtpClientOptions {
  host?: string;
  port: number;
  /** Source address, e.g. 127.0.0.2. */
  localAddress?: string;
  /** Per-reply timeout. */
  timeoutMs?: number;
}

export class SmtpClient {
  /** Every line sent (C: ...) and received (S: ...), for failure messages. */
  readonly transcript: string[] = [];
  greeting!: SmtpReply;
  private buffer = '';
  private pendingLines: string[] = [];
  private readonly replies: SmtpReply[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private closedError: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by server')));
  }

  /** Connects and reads the greeting. */
  static async connect(opts: SmtpClientOptions): Promise<SmtpClient> {
    const socket = connect({
      host: opts.host ?? '127.0.0.1',
      port: opts.port,
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
    });
    const client = new SmtpClient(socket, opts.timeoutMs ?? 30_000);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    client.greeting = await client.nextReply('greeting');
    return client;
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.transcript.push(`C: ${line}`);
    this.socket.write(`${line}\r\n`);
    return this.nextReply(line);
  }

  ehlo(name = 'client.example.test'): Promise<SmtpReply> {
    return this.command(`EHLO ${name}`);
  }

  /** AUTH PLAIN with the initial response on the command line. */
  authPlain(user: string, password: string): Promise<SmtpReply> {
    const token = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
    return this.command(`AUTH PLAIN ${token}`);
  }

  /** MAIL FROM:<addr> (pass the address without brackets; '' = null sender). */
  mail(address: string): Promise<SmtpReply> {
    return this.command(`MAIL FROM:<${address}>`);
  }

  /** RCPT TO: with `address` sent verbatim inside the brackets given (e.g. "<a@b>"). */
  rcptRaw(argument: string): Promise<SmtpReply> {
    return this.command(`RCPT TO:${argument}`);
  }

  rcpt(address: string): Promise<SmtpReply> {
    return this.rcptRaw(`<${address}>`);
  }

  /**
   * DATA, then the message (LF or CRLF line ends; dot-stuffed here) and the final dot.
   * Returns the 354 reply and the final reply; when DATA itself is refused, `final` is that reply.
   */
  async data(message: string): Promise<{ start: SmtpReply; final: SmtpReply }> {
    const start = await this.command('DATA');
    if (start.code !== 354) return { start, final: start };
    const body = message
      .replace(/\r?\n/g, '\r\n')
      .replace(/\r\n$/, '')
      .split('\r\n')
      .map((l) => (l.startsWith('.') ? `.${l}` : l))
      .join('\r\n');
    this.transcript.push(`C: <message, ${body.length} bytes>`);
    this.socket.write(`${body}\r\n.\r\n`);
    return { start, final: await this.nextReply('end of data') };
  }

  rset(): Promise<SmtpReply> {
    return this.command('RSET');
  }

  /** QUIT and close; a server that already closed is fine. */
  async quit(): Promise<void> {
    if (this.closedError === undefined) {
      try {
        await this.command('QUIT');
      } catch {
        // closed before or during QUIT: nothing left to do
      }
    }
    this.socket.destroy();
  }

  /** Closes without QUIT. */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let eol = this.buffer.indexOf('\n'); eol !== -1; eol = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, eol).replace(/\r$/, '');
      this.buffer = this.buffer.slice(eol + 1);
      this.transcript.push(`S: ${line}`);
      this.pendingLines.push(line);
      if (/^\d{3}(?: |$)/.test(line)) {
        const lines = this.pendingLines;
        this.pendingLines = [];
        const reply: SmtpReply = { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
        if (this.waiter !== undefined) {
          const w = this.waiter;
          this.waiter = undefined;
          w.resolve(reply);
        } else {
          this.replies.push(reply);
        }
      }
    }
  }

  private fail(err: Error): void {
    this.closedError ??= err;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  private nextReply(forWhat: string): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closedError !== undefined) {
      return Promise.reject(
        new Error(`${forWhat}: ${this.closedError.message}\n${this.transcript.join('\n')}`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${forWhat}: no reply within ${this.timeoutMs} ms\n${this.transcript.join('\n')}`));
      }, this.timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(new Error(`${forWhat}: ${e.message}\n${this.transcript.join('\n')}`));
        },
      };
    });
  }
}

/** A small RFC 5322 message carrying `token` in its Subject and body. */
export function testMessage(opts: {
  from: string;
  to: string[];
  token: string;
  extraHeaders?: string[];
}): string {
  return [
    `From: <${opts.from}>`,
    `To: ${opts.to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: e2e ${opts.token}`,
    `Message-ID: <${opts.token}@client.example.test>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    ...(opts.extraHeaders ?? []),
    '',
    `token ${opts.token}`,
    '.leading dot line',
    '',
  ].join('\r\n');
}
