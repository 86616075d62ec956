// The SMTP sink: where both MTAs relay everything they accept. An in-process Node `net` server
// speaking just enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to take mail from
// Postfix's smtp client and sendmail's esmtp mailer, storing each message in memory (and under
// the testbed's sink/ directory for post-mortems). Called by the e2e test files, which wait for a
// message by a unique token with waitFor() and assert on its envelope and headers. It never
// refuses mail; a message that does not arrive makes waitFor() reject with what did arrive.

import { mkdirSync, writeFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import path from 'node:path';
import { sleep } from './testbed.js';

/** One message as the sink received it. */
export interface SinkMessage {
  /** 1, 2, ... in arrival order. */
  seq: number;
  clientAddr: string;
  helo: string;
  /** Argument of MAIL FROM without the angle brackets and parameters. */
  mailFrom: string;
  /** RCPT TO addresses without the angle brackets, in order. */
  rcptTo: string[];
  /** The message as relayed (dot-unstuffed, CRLF line ends). */
  data: string;
}

/** Unfolded header lines of a message (name as written, value trimmed). */
export function headersOf(message: SinkMessage): Array<{ name: string; value: string }> {
  const end = message.data.indexOf('\r\n\r\n');
  const head = end === -1 ? message.data : message.data.slice(0, end);
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  return unfolded.split('\r\n').flatMap((line) => {
    const colon = line.indexOf(':');
    return colon <= 0 ? [] : [{ name: line.slice(0, colon), value: line.slice(colon + 1).trim() }];
  });
}

/** Values of every header named `name` (case-insensitive). */
export function headerValues(message: SinkMessage, name: string): string[] {
  return headersOf(message)
    .filter((h) => h.name.toLowerCase() === name.toLowerCase())
    .map((h) => h.value);
}

export class SmtpSink {
  readonly messages: SinkMessage[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly saveDir: string,
  ) {}

  /** Listens on 127.0.0.1 on a kernel-chosen port; messages are also saved in `saveDir`. */
  static async start(saveDir: string): Promise<SmtpSink> {
    mkdirSync(saveDir, { recursive: true });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('sink: no address');
    const sink = new SmtpSink(server, address.port, saveDir);
    server.on('connection', (socket: Socket) => sink.serve(socket));
    return sink;
  }

  /** Messages whose text contains `token`. */
  find(token: string): SinkMessage[] {
    return this.messages.filter((m) => m.data.includes(token));
  }

  /** The first message containing `token`, waiting up to `timeoutMs` for it to arrive. */
  async waitFor(token: string, timeoutMs = 15_000): Promise<SinkMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.find(token)[0];
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        const seen = this.messages.map((m) => `#${m.seq} from=${m.mailFrom} to=${m.rcptTo.join(',')}`);
        throw new Error(
          `sink: no message with ${token} after ${timeoutMs} ms; received: ${seen.join('; ') || 'nothing'}`,
        );
      }
      await sleep(25);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const say = (line: string): void => {
      socket.write(`${line}\r\n`);
    };
    let buffer = '';
    let helo = '';
    let mailFrom: string | undefined;
    let rcptTo: string[] = [];
    let inData = false;
    let dataLines: string[] = [];
    const clientAddr = socket.remoteAddress ?? '';
    const bare = (arg: string): string => {
      const m = /^\s*<([^>]*)>/.exec(arg);
      return m?.[1] ?? arg.trim().split(/\s+/)[0] ?? '';
    };
    const onLine = (line: string): void => {
      if (inData) {
        if (line === '.') {
          inData = false;
          const message: SinkMessage = {
            seq: this.messages.length + 1,
            clientAddr,
            helo,
            mailFrom: mailFrom ?? '',
            rcptTo,
            data: dataLines.map((l) => `${l}\r\n`).join(''),
          };
          this.messages.push(message);
          writeFileSync(
            path.join(this.saveDir, `${String(message.seq).padStart(4, '0')}.eml`),
            `X-Sink-Mail-From: ${message.mailFrom}\r\nX-Sink-Rcpt-To: ${message.rcptTo.join(', ')}\r\n${message.data}`,
          );
          mailFrom = undefined;
          rcptTo = [];
          dataLines = [];
          say(`250 2.0.0 Ok: queued as SINK${message.seq}`);
        } else {
          dataLines.push(line.startsWith('.') ? line.slice(1) : line);
        }
        return;
      }
      const verb = line.slice(0, 4).toUpperCase();
      const arg = line.slice(line.indexOf(':') + 1);
      switch (verb) {
        case 'EHLO':
          helo = line.slice(5).trim();
          say('250-sink.example.test');
          say('250-8BITMIME');
          say('250 SMTPUTF8');
          return;
        case 'HELO':
          helo = line.slice(5).trim();
          say('250 sink.example.test');
          return;
        case 'MAIL':
          mailFrom = bare(arg);
          rcptTo = [];
          say('250 2.1.0 Ok');
          return;
        case 'RCPT':
          rcptTo.push(bare(arg));
          say('250 2.1.5 Ok');
          return;
        case 'DATA':
          if (mailFrom === undefined || rcptTo.length === 0) {
            say('503 5.5.1 Error: need MAIL and RCPT first');
            return;
          }
          inData = true;
          say('354 End data with <CR><LF>.<CR><LF>');
          return;
        case 'RSET':
          mailFrom = undefined;
          rcptTo = [];
          say('250 2.0.0 Ok');
          return;
        case 'NOOP':
          say('250 2.0.0 Ok');
          return;
        case 'QUIT':
          say('221 2.0.0 Bye');
          socket.end();
          return;
        default:
          say('502 5.5.2 Error: command not recognized');
      }
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let eol = buffer.indexOf('\n'); eol !== -1; eol = buffer.indexOf('\n')) {
        const line = buffer.slice(0, eol).replace(/\r$/, '');
        buffer = buffer.slice(eol + 1);
        onLine(line);
      }
    });
    say('220 sink.example.test ESMTP test sink');
  }
}
