// The SMTP session's own lifetime as the daemon's policy adapter gives it to checks
// (rules/check.ts SessionHooks): values kept for the session, callbacks run when it ends. For
// unit tests of checks that hold something per session (rate-limit leases, counted connections).

import type { SessionHooks } from '../../rules/check.js';

export class FakeSession implements SessionHooks {
  readonly notes = new Map<string, unknown>();
  readonly closers: (() => unknown)[] = [];
  keep<T>(key: string, compute: () => T): T {
    if (!this.notes.has(key)) this.notes.set(key, compute());
    return this.notes.get(key) as T;
  }
  atClose(release: () => unknown): void {
    this.closers.push(release);
  }
  /** The session ends: its close callbacks run, what it kept is gone. */
  close(): void {
    for (const c of this.closers.splice(0)) c();
    this.notes.clear();
  }
}
