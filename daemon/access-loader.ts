// Loads the configured access map off the event loop (./access-worker.ts) and notices when the
// file is replaced: every access_db.check_interval the file's identity (device, inode, size,
// mtime) is compared, as sendmail re-opens a map whose file changed; `makemap` writes a new file
// and renames it over the old one, so a changed inode is the usual signal. A file that fails to
// load never replaces the snapshot in force. Called by daemon/serve.ts.

import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AccessSnapshot } from '../access-db/snapshot.js';
import type { Config } from './config.js';

export type AccessDbConfig = NonNullable<Config['accessDb']>;

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export type LoadedAccess =
  | {
      readonly ok: true;
      readonly snapshot: AccessSnapshot;
      readonly identity: FileIdentity;
      readonly ms: number;
      readonly fromText: boolean;
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly errors: readonly string[] };

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'access-worker.js');

export async function fileIdentity(file: string): Promise<FileIdentity | null> {
  try {
    const s = await stat(file);
    return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return null;
  }
}

export function sameIdentity(a: FileIdentity | null, b: FileIdentity | null): boolean {
  return (
    a !== null &&
    b !== null &&
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs
  );
}

interface WorkerAnswer {
  ok: boolean;
  image?: ArrayBuffer;
  fromText?: boolean;
  errors?: string[];
  warnings?: string[];
}

export async function loadAccess(cfg: AccessDbConfig): Promise<LoadedAccess> {
  const started = performance.now();
  const identity = await fileIdentity(cfg.file);
  if (identity === null) return { ok: false, errors: [`${cfg.file}: cannot read: ENOENT`] };
  const answer = await new Promise<WorkerAnswer>((resolve) => {
    const w = new Worker(WORKER, {
      workerData: { file: cfg.file, options: { replace: cfg.replaceDuplicates } },
    });
    w.once('message', (m: WorkerAnswer) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', (e) => resolve({ ok: false, errors: [`${cfg.file}: loader failed: ${e.message}`] }));
    w.once('exit', (code) => {
      if (code !== 0) resolve({ ok: false, errors: [`${cfg.file}: loader exited with code ${code}`] });
    });
  });
  if (!answer.ok || answer.image === undefined)
    return { ok: false, errors: answer.errors ?? [`${cfg.file}: not loaded`] };
  const r = AccessSnapshot.fromImage(Buffer.from(answer.image), { skip: cfg.skip }, false);
  if (!r.ok) return { ok: false, errors: [`${cfg.file}: ${r.problem}`] };
  return {
    ok: true,
    snapshot: r.snapshot,
    identity,
    ms: Math.round(performance.now() - started),
    fromText: answer.fromText === true,
    warnings: answer.warnings ?? [],
  };
}

/** Polls the file; calls onChange with a newly loaded snapshot, onError when a new file is bad. */
export class AccessWatcher {
  private timer: NodeJS.Timeout | null = null;
  private phase: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private cfg: AccessDbConfig,
    private identity: FileIdentity,
    private readonly onChange: (loaded: Extract<LoadedAccess, { ok: true }>) => void,
    private readonly onError: (errors: readonly string[]) => void,
  ) {}

  start(): void {
    // A random phase, so that several workers watching one file do not all load the new map (and
    // pause for it) in the same moment.
    const phase = setTimeout(
      () => {
        void this.poll();
        this.timer = setInterval(() => void this.poll(), this.cfg.checkIntervalMs);
        this.timer.unref();
      },
      Math.floor(Math.random() * this.cfg.checkIntervalMs),
    );
    phase.unref();
    this.phase = phase;
  }

  /** A reload brought a new configuration (and maybe a new snapshot). */
  reset(cfg: AccessDbConfig, identity: FileIdentity): void {
    this.stop();
    this.cfg = cfg;
    this.identity = identity;
    this.start();
  }

  stop(): void {
    if (this.phase !== null) clearTimeout(this.phase);
    if (this.timer !== null) clearInterval(this.timer);
    this.phase = null;
    this.timer = null;
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = await fileIdentity(this.cfg.file);
      if (now === null || sameIdentity(now, this.identity)) return;
      const loaded = await loadAccess(this.cfg);
      if (loaded.ok) {
        this.identity = loaded.identity;
        this.onChange(loaded);
      } else {
        // Remember the bad file so it is reported once, not every interval.
        this.identity = now;
        this.onError(loaded.errors);
      }
    } finally {
      this.busy = false;
    }
  }
}
