// A "black hole" DNS server: a UDP socket on a free 127.0.0.1 port that reads every query and
// never answers, so a resolver pointed at it can only time out (not ECONNREFUSED, which a closed
// port gives at once). Used by the DNSBL e2e file for `on_error` and the daemon's time budget.
// It records the name of every query it swallowed (`queries`), so a test can prove the daemon did
// ask (and how often: timeout x tries). Fails loudly: a bind error rejects start().

import type { Socket } from 'node:dgram';
import { createSocket } from 'node:dgram';

export class BlackholeDns {
  /** Query names received (lower case), in order; `?` for a packet that is not a DNS query. */
  readonly queries: string[] = [];

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on('message', (msg) => this.queries.push(queryName(msg) ?? '?'));
    socket.on('error', () => undefined);
  }

  /** `127.0.0.1:PORT`, the form `dnsbl.servers` takes. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<BlackholeDns> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new BlackholeDns(socket, socket.address().port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** The QNAME of a DNS query packet, or undefined when it does not parse. */
function queryName(msg: Buffer): string | undefined {
  if (msg.length < 12) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined || len > 63) return undefined;
    off += 1;
    if (len === 0) return labels.join('.').toLowerCase();
    labels.push(msg.toString('latin1', off, off + len));
    off += len;
  }
}
