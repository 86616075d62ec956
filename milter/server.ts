// The socket server: the only module of the project that imports node:net. It listens on every
// configured spec, gives each accepted connection a MilterSession and shuttles bytes between them.
// Called by the daemon (start, stopAccepting, drain) and by the in-process protocol tests.
//
// Unix sockets: a stale socket file left by a dead daemon is removed at start; a socket that still
// answers belongs to a running instance and start fails with that message; a path that is not a
// socket is never deleted. Mode and group are applied right after listen (Postfix connects as user
// `postfix` and needs write permission on the socket).
// Failure: start() rejects with a message naming the spec; per-connection errors end that
// connection only; nothing a peer sends can throw out of here.

import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import type { HandlerFactory } from './handler.js';
import type { ListenSpec } from './listen-spec.js';
import type { SessionLog } from './session.js';
import { MilterSession } from './session.js';

export interface ServerLog extends SessionLog {
  child(bindings: Record<string, unknown>): ServerLog;
}

/**
 * Told about connections and protocol errors (the daemon's metrics). Optional; called
 * synchronously on the event loop; must not throw.
 */
export interface ServerObserver {
  connectionOpened(): void;
  connectionClosed(): void;
  connectionRefused(reason: 'max_connections' | 'shutting_down'): void;
  /** A `protocol_error` closed a connection (docs/errors.md codes). */
  protocolError(code: string): void;
}

export interface MilterServerOptions {
  readonly listen: readonly ListenSpec[];
  /** Permission bits for unix sockets (e.g. 0o660). */
  readonly socketMode: number;
  /** Group id for unix sockets, if they should change group. */
  readonly socketGid?: number;
  readonly maxPayload: number;
  /** Milliseconds without a byte from the MTA before the connection is dropped. */
  readonly idleTimeoutMs: number;
  /** Connections beyond this are closed at once (the MTA applies its default action). */
  readonly maxConnections: number;
  /** Commands queued behind a pending decision before the socket is paused (default 64). */
  readonly maxQueuedCommands?: number;
  readonly factory: HandlerFactory;
  readonly log: ServerLog;
  /**
   * Replace a stale unix socket file before listening (default true). Cluster workers say false:
   * their primary did it once, and the socket they share already answers.
   */
  readonly removeStale?: boolean;
  readonly observer?: ServerObserver;
}

interface Live {
  readonly socket: net.Socket;
  readonly session: MilterSession;
}

export class MilterServer {
  private readonly servers: net.Server[] = [];
  private readonly live = new Set<Live>();
  private nextId = 1;
  private accepting = false;
  private readonly bound: string[] = [];
  /** Unix socket files this server created (and so may remove). */
  private readonly socketFiles: string[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: MilterServerOptions) {}

  get connections(): number {
    return this.live.size;
  }

  /** What we listen on, as printable addresses. */
  get addresses(): readonly string[] {
    return this.bound;
  }

  async start(): Promise<void> {
    this.accepting = true;
    try {
      for (const spec of this.options.listen) await this.listenOne(spec);
    } catch (e) {
      await this.stopAccepting();
      throw e;
    }
  }

  private async listenOne(spec: ListenSpec): Promise<void> {
    const server = net.createServer({ allowHalfOpen: false, noDelay: true }, (socket) => this.accept(socket));
    if (spec.kind === 'unix') {
      await mkdir(path.dirname(spec.path), { recursive: true, mode: 0o755 });
      if (this.options.removeStale !== false) await removeStaleSocket(spec.path, spec.spec);
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen on ${spec.spec}: ${e.code ?? ''} ${e.message}`.trim()));
      };
      server.once('error', onError);
      const done = (): void => {
        server.off('error', onError);
        resolve();
      };
      if (spec.kind === 'unix') server.listen({ path: spec.path, backlog: 511 }, done);
      else server.listen({ host: spec.host, port: spec.port, backlog: 511 }, done);
    });
    server.on('error', (e) =>
      this.options.log.error({ event: 'listener_error', listen: spec.spec, err: e }, 'listener failed'),
    );
    this.servers.push(server);
    if (spec.kind === 'unix') {
      this.socketFiles.push(spec.path);
      await chmod(spec.path, this.options.socketMode);
      if (this.options.socketGid !== undefined)
        await chown(spec.path, process.getuid?.() ?? 0, this.options.socketGid);
      this.bound.push(`unix:${spec.path}`);
    } else {
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : spec.port;
      this.bound.push(spec.host.includes(':') ? `inet6:${port}@${spec.host}` : `inet:${port}@${spec.host}`);
    }
  }

  private accept(socket: net.Socket): void {
    const observer = this.options.observer;
    if (!this.accepting || this.live.size >= this.options.maxConnections) {
      const reason = this.accepting ? 'max_connections' : 'shutting_down';
      this.options.log.warn(
        { event: 'connection_refused', reason, limit: this.options.maxConnections },
        'connection refused',
      );
      observer?.connectionRefused(reason);
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    const child = this.options.log.child({ conn: id });
    const log = observer === undefined ? child : tapProtocolErrors(child, observer);
    observer?.connectionOpened();
    let entry: Live | null = null;
    const session = new MilterSession(
      {
        id,
        maxPayload: this.options.maxPayload,
        ...(this.options.maxQueuedCommands === undefined
          ? {}
          : { queueHighWater: this.options.maxQueuedCommands }),
      },
      this.options.factory,
      {
        write(packets) {
          if (socket.destroyed) return;
          if (Buffer.isBuffer(packets)) {
            socket.write(packets);
            return;
          }
          socket.cork();
          for (const p of packets) socket.write(p);
          socket.uncork();
        },
        close: () => {
          if (socket.destroyed) return;
          // Nothing left to send (the usual case after QUIT): close at once, without the extra
          // shutdown() round of a half-close; otherwise flush what is queued first.
          if (socket.writableLength === 0) socket.destroy();
          else socket.end();
        },
        pause: () => socket.pause(),
        resume: () => socket.resume(),
      },
      log,
    );
    entry = { socket, session };
    this.live.add(entry);
    socket.setTimeout(this.options.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => session.feed(chunk));
    socket.on('end', () => session.end('eof'));
    socket.on('timeout', () => {
      log.info(
        { event: 'idle_timeout', timeout_ms: this.options.idleTimeoutMs },
        'MTA silent too long; closing',
      );
      session.end('timeout');
      socket.destroy();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      log.debug({ event: 'socket_error', code: e.code }, e.message);
      session.end('error');
    });
    socket.on('close', () => {
      session.end('eof');
      if (entry !== null && this.live.delete(entry)) observer?.connectionClosed();
      if (this.live.size === 0) this.wakeIdle();
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops listening (open connections go on); removes unix socket files. */
  async stopAccepting(): Promise<void> {
    this.accepting = false;
    // close() stops listening at once; its callback would wait for every open connection, which
    // drain() handles with a deadline, so it is not awaited here.
    for (const s of this.servers.splice(0)) s.close();
    for (const file of this.socketFiles.splice(0)) await unlink(file).catch(() => undefined);
  }

  /**
   * Waits until every open connection has ended, at most `deadlineMs`; then destroys the rest.
   * Returns how many had to be cut off.
   */
  async drain(deadlineMs: number): Promise<number> {
    if (this.live.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const cut = this.live.size;
    for (const { socket, session } of this.live) {
      session.end('shutdown');
      socket.destroy();
    }
    return cut;
  }
}

/**
 * The session's log with its `protocol_error` lines also told to the observer: the session
 * reports them only as that (stable) log event. Everything else is the logger itself.
 */
function tapProtocolErrors(log: ServerLog, observer: ServerObserver): ServerLog {
  const tapped = Object.create(log) as ServerLog;
  tapped.warn = (...args: Parameters<ServerLog['warn']>): void => {
    const line = args[0] as { event?: unknown; code?: unknown };
    if (line.event === 'protocol_error' && typeof line.code === 'string') observer.protocolError(line.code);
    log.warn(...args);
  };
  return tapped;
}

/** Unlinks a unix socket nobody answers on; refuses to touch anything else. */
export async function removeStaleSocket(file: string, spec: string): Promise<void> {
  let st;
  try {
    st = await lstat(file);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`cannot listen on ${spec}: ${file} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`cannot listen on ${spec}: another process is serving ${file}`);
  await unlink(file);
}
