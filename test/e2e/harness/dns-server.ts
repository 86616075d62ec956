// A tiny authoritative DNS server for the MTAs' private resolv.conf: answers A and PTR queries
// from a table and NXDOMAIN for everything else, so that a client without a PTR name is a
// *permanent* lookup failure (sendmail's {client_resolve} = FAIL, as on the Internet) rather than
// the TEMP that a closed port 53 gives, and so that a PTR name without a matching A record (a
// "forged" name) can be served. glibc cannot use another port than 53, so it listens on
// <random 127.53.x.y>:53 (UDP; answers are small, never truncated). Used by the e2e files that
// pass `nameserver` to the MTA runners (access-db-differential). Fails loudly: a bind error other
// than EADDRINUSE rejects start(); a malformed query is ignored (counted in `malformed`).

import type { Socket } from 'node:dgram';
import { createSocket } from 'node:dgram';

/** What the server knows: reverse names per address and forward addresses per name. */
export interface DnsZone {
  /** address -> PTR names (the first is what gethostbyaddr returns). */
  ptr: ReadonlyMap<string, readonly string[]>;
  /** name (lower case, no trailing dot) -> A records. */
  a: ReadonlyMap<string, readonly string[]>;
}

const TYPE_A = 1;
const TYPE_PTR = 12;

/** The in-addr.arpa name of an IPv4 address. */
function reverseName(address: string): string {
  return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
}

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter((p) => p !== '');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])),
    Buffer.from([0]),
  ]);
}

export class DnsServer {
  /** Queries answered, for debugging ("did the MTA ask at all?"). */
  readonly queries: Array<{ name: string; type: number; rcode: number }> = [];
  malformed = 0;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    private readonly zone: DnsZone,
  ) {
    socket.on('message', (msg, rinfo) => {
      const answer = this.answer(msg);
      if (answer !== undefined) socket.send(answer, rinfo.port, rinfo.address);
    });
  }

  /** Listens on a free 127.53.x.y:53. */
  static async start(zone: DnsZone): Promise<DnsServer> {
    for (let attempt = 0; ; attempt++) {
      const address = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
      const socket = createSocket('udp4');
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ address, port: 53, exclusive: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        socket.on('error', () => undefined);
        return new DnsServer(socket, address, zone);
      } catch (err) {
        socket.close();
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 20) throw err;
      }
    }
  }

  /** A zone in which every entry has a PTR and a matching A record (forward-confirmed). */
  static zoneOf(
    entries: ReadonlyArray<{ address: string; names: readonly string[]; forward?: boolean }>,
  ): DnsZone {
    const ptr = new Map<string, string[]>();
    const a = new Map<string, string[]>();
    for (const e of entries) {
      ptr.set(e.address, [...e.names]);
      if (e.forward === false) continue;
      for (const n of e.names) a.set(n.toLowerCase(), [...(a.get(n.toLowerCase()) ?? []), e.address]);
    }
    return { ptr, a };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) {
      this.malformed += 1;
      return undefined;
    }
    const labels: string[] = [];
    let off = 12;
    for (;;) {
      const len = msg[off];
      if (len === undefined || len > 63) {
        this.malformed += 1;
        return undefined;
      }
      off += 1;
      if (len === 0) break;
      labels.push(msg.toString('latin1', off, off + len));
      off += len;
    }
    if (off + 4 > msg.length) {
      this.malformed += 1;
      return undefined;
    }
    const type = msg.readUInt16BE(off);
    const question = msg.subarray(12, off + 4);
    const name = labels.join('.').toLowerCase();

    const records: Buffer[] = [];
    let exists = false;
    const reverse = [...this.zone.ptr.keys()].find((addr) => reverseName(addr) === name);
    if (reverse !== undefined) {
      exists = true;
      if (type === TYPE_PTR) for (const n of this.zone.ptr.get(reverse) ?? []) records.push(encodeName(n));
    }
    const forward = this.zone.a.get(name);
    if (forward !== undefined) {
      exists = true;
      if (type === TYPE_A)
        for (const addr of forward) records.push(Buffer.from(addr.split('.').map((o) => Number(o))));
    }
    const rcode = exists ? 0 : 3;
    this.queries.push({ name, type, rcode });

    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    // QR, opcode copied, AA, RD copied; RA; rcode.
    header.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x7900) | 0x0400 | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    const answers = records.map((rdata) => {
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
    return Buffer.concat([header, question, ...answers]);
  }
}
