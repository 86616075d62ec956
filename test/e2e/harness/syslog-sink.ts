// A syslog receiver for sendmail, which can only log through syslog(3) to /dev/log (there is no
// syslog daemon on these machines). Listens on a unix *stream* socket in the testbed: glibc's
// syslog() tries a datagram socket first and, on EPROTOTYPE, falls back to a stream connection
// with NUL-terminated records, so a Node `net` server is enough (no python, no rsyslog). Called by
// sendmail.ts, whose namespace links /dev/log to this socket. Every record is appended to
// `logFile` (the testbed's sendmail/maillog) and kept in memory for tests to search.

import { appendFileSync, chmodSync, rmSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';

export class SyslogSink {
  readonly lines: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly socketPath: string,
    readonly logFile: string,
  ) {}

  static async start(socketPath: string, logFile: string): Promise<SyslogSink> {
    rmSync(socketPath, { force: true });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: socketPath, readableAll: true, writableAll: true }, resolve);
    });
    chmodSync(socketPath, 0o666);
    const sink = new SyslogSink(server, socketPath, logFile);
    server.on('connection', (socket: Socket) => sink.serve(socket));
    return sink;
  }

  /** The log so far as one string. */
  text(): string {
    return this.lines.join('\n');
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const records = buffer.split(/\0|\n/);
      buffer = records.pop() ?? '';
      for (const record of records) {
        if (record === '') continue;
        // "<PRI>Mon dd hh:mm:ss tag[pid]: text": drop the priority, keep the rest.
        const line = record.replace(/^<\d+>/, '');
        this.lines.push(line);
        appendFileSync(this.logFile, `${line}\n`);
      }
    });
  }
}
