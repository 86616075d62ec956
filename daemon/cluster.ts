// Several worker processes sharing the listeners (`workers: N` or `auto`), for machines where one
// event loop is not enough. The primary validates the configuration, replaces stale unix socket
// files once, forks the workers with node:cluster in SCHED_NONE mode (every worker accepts on the
// shared listening sockets itself, so the primary is not on the data path), and then only
// supervises: SIGHUP is validated here and forwarded to the workers (a broken file is refused
// once, here); SIGTERM/SIGINT is forwarded and the primary exits 0 when every worker has drained;
// a worker that dies unexpectedly is replaced. In-memory state is per worker. With metrics on, the
// primary alone serves them: the sum over the workers (prom-client's AggregatorRegistry asks each
// over the cluster IPC channel at every scrape), and /healthz is ok only while every worker serves.
// Called by daemon/serve.ts; returns the process exit code.

import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { removeStaleSocket } from '../milter/server.js';
import type { Config } from './config.js';
import { loadConfig } from './config.js';
import { createLogger, flushLogger } from './logger.js';
import type { HealthState } from './metrics.js';
import { ClusterMetrics, MetricsHttpServer } from './metrics.js';
import { VERSION } from './version.js';

type WorkerMessage = { event: 'started' } | { event: 'failed'; errors: string[] };

export async function runPrimary(configPath: string, config: Config): Promise<number> {
  for (const spec of config.listen) {
    if (spec.kind !== 'unix') continue;
    try {
      await mkdir(path.dirname(spec.path), { recursive: true, mode: 0o755 });
      await removeStaleSocket(spec.path, spec.spec);
    } catch (e) {
      process.stderr.write(`milter-policy: ${e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
  }
  const log = createLogger({ ...config.log, worker: 0 });
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: process.argv[1] as string, args: process.argv.slice(2), silent: false });

  let stopping = false;
  const workers = new Map<number, Worker>();
  /** Workers that said they serve. */
  const ready = new Set<Worker>();
  let metrics: ClusterMetrics | null = null;
  let http: MetricsHttpServer | null = null;
  if (config.metrics.listen !== null) {
    const m = new ClusterMetrics(() => ({ configured: config.workers, ready: ready.size }));
    const health = (): HealthState =>
      stopping ? 'draining' : ready.size === config.workers ? 'ok' : 'starting';
    http = new MetricsHttpServer({
      ...config.metrics.listen,
      path: config.metrics.path,
      render: () => m.render(),
      health,
      log,
    });
    try {
      await http.start();
    } catch (e) {
      process.stderr.write(`milter-policy: ${e instanceof Error ? e.message : String(e)}\n`);
      await flushLogger(log);
      return 2;
    }
    metrics = m;
  }
  const fork = (n: number): Promise<string[] | null> =>
    new Promise((resolve) => {
      const w = cluster.fork({ MILTER_POLICY_WORKER: String(n) });
      workers.set(n, w);
      let settled = false;
      w.on('message', (m: WorkerMessage) => {
        // prom-client's metrics answers share the channel
        if (settled || typeof m !== 'object' || m === null || !('event' in m)) return;
        settled = true;
        if (m.event === 'started') ready.add(w);
        resolve(m.event === 'started' ? null : m.errors);
      });
      w.on('exit', (code, signal) => {
        ready.delete(w);
        if (workers.get(n) === w) workers.delete(n);
        if (!settled) {
          settled = true;
          resolve([`worker ${n} exited before it was ready (code ${code}, signal ${signal})`]);
          return;
        }
        if (stopping) return;
        log.error(
          { event: 'worker_exit', worker_number: n, code, signal },
          'worker died; starting a new one',
        );
        metrics?.workerRestarted();
        setTimeout(() => {
          if (!stopping) void fork(n);
        }, 1000).unref();
      });
    });

  const results = await Promise.all(Array.from({ length: config.workers }, (_, i) => fork(i + 1)));
  const failures = results.flatMap((r) => r ?? []);
  if (failures.length > 0) {
    stopping = true;
    for (const w of workers.values()) w.process.kill('SIGTERM');
    for (const e of [...new Set(failures)]) process.stderr.write(`milter-policy: ${e}\n`);
    await http?.close();
    await flushLogger(log);
    return 2;
  }
  log.info(
    {
      event: 'started',
      version: VERSION,
      config: config.source,
      listen: config.listen.map((l) => l.spec),
      workers: config.workers,
      pid: process.pid,
      ...(http === null ? {} : { metrics: http.url }),
    },
    'milter-policy started',
  );

  process.on('SIGHUP', () => {
    void loadConfig(configPath).then((next) => {
      if (!next.ok) {
        log.error(
          { event: 'reload', ok: false, config: configPath, errors: next.errors },
          'configuration rejected; the previous one keeps serving',
        );
        return;
      }
      for (const w of workers.values()) w.process.kill('SIGHUP');
    });
  });

  return new Promise<number>((resolve) => {
    const onStop = (): void => {
      if (stopping) return;
      stopping = true;
      log.info(
        { event: 'stopping', workers: workers.size, drain_timeout_ms: config.shutdown.drain_timeout },
        'draining',
      );
      const live = [...workers.values()];
      const kill = setTimeout(() => {
        for (const w of live) w.process.kill('SIGKILL');
      }, config.shutdown.drain_timeout + 5000);
      void Promise.all(
        live.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r())))),
      ).then(async () => {
        clearTimeout(kill);
        for (const spec of config.listen)
          if (spec.kind === 'unix') await unlink(spec.path).catch(() => undefined);
        await http?.close();
        log.info({ event: 'stopped' }, 'milter-policy stopped');
        await flushLogger(log);
        resolve(0);
      });
      for (const w of live) w.process.kill('SIGTERM');
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
  });
}
