// A logger for tests: records every line (bindings merged) so assertions can look for events.
import type { ServerLog } from '../../milter/server.js';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export class MemoryLog implements ServerLog {
  constructor(
    readonly lines: LogLine[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}
  private add(level: LogLine['level'], obj: object, msg?: string): void {
    this.lines.push({ ...this.bindings, ...obj, level, ...(msg === undefined ? {} : { msg }) });
  }
  debug(obj: object, msg?: string): void {
    this.add('debug', obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.add('info', obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.add('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.add('error', obj, msg);
  }
  child(bindings: Record<string, unknown>): ServerLog {
    return new MemoryLog(this.lines, { ...this.bindings, ...bindings });
  }
  events(name: string): LogLine[] {
    return this.lines.filter((l) => l.event === name);
  }
  /** Resolves when a line with this event (and predicate) is logged. */
  async waitFor(
    name: string,
    pred: (l: LogLine) => boolean = () => true,
    timeoutMs = 2000,
  ): Promise<LogLine> {
    const start = Date.now();
    for (;;) {
      const hit = this.lines.find((l) => l.event === name && pred(l));
      if (hit !== undefined) return hit;
      if (Date.now() - start > timeoutMs) throw new Error(`no ${name} log line within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
