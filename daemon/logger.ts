// The daemon's structured log: pino JSON lines with stable `event` names (decision, reload,
// protocol_error, started, stopped, ...; catalogue in docs/errors.md). Written asynchronously
// to stdout or to the configured file in batches of up to 4 KiB, at least every 100 ms, and
// flushed on exit: under load a write per decision line would cost more than the decision.
// Called by the daemon only; everything else receives a logger (or a child of it) as an argument.

import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  readonly level: string;
  /** Append to this file instead of stdout. */
  readonly file?: string;
  /** Worker number, added to every line when several processes share the log. */
  readonly worker?: number;
}

let lastMs = 0;
let lastTime = '';
/** `,"time":"2026-12-01T18:42:10.311Z"`, formatted once per millisecond. */
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function createLogger(options: LoggerOptions): Logger {
  // Several workers writing to one pipe must write whole lines of at most PIPE_BUF bytes, so
  // stdout is not batched then; appends to a file are atomic per write whatever their size.
  const batch = options.file !== undefined || options.worker === undefined;
  const destination = pino.destination({
    dest: options.file ?? 1,
    sync: false,
    minLength: batch ? 4096 : 0,
    periodicFlush: batch ? 100 : 0,
    mkdir: options.file !== undefined,
  });
  return pino(
    {
      level: options.level,
      base:
        options.worker === undefined
          ? { name: 'milter-policy' }
          : { name: 'milter-policy', worker: options.worker },
      timestamp: isoTimeCached,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** Writes what is buffered; call before exiting. */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    log.flush(() => resolve());
  });
}
