// The daemon's structured log: pino JSON lines with stable `event` names (decision, reload,
// protocol_error, started, stopped, ...; catalogue in docs/errors.md). Written asynchronously
// to stdout or to the configured file, flushed on exit. Called by the daemon only; everything
// else receives a logger (or a child of it) as an argument.

import pino from 'pino';

export type Logger = pino.Logger;

export interface LoggerOptions {
  readonly level: string;
  /** Append to this file instead of stdout. */
  readonly file?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const destination = pino.destination({
    dest: options.file ?? 1,
    sync: false,
    minLength: 0,
    mkdir: options.file !== undefined,
  });
  return pino(
    {
      level: options.level,
      base: { name: 'milter-policy' },
      timestamp: pino.stdTimeFunctions.isoTime,
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
