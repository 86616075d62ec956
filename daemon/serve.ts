// The composition root: configuration -> runtime -> servers, and the process's signals.
//   SIGHUP   reload: the configuration is read and validated off to the side; if it is good the
//            runtime is swapped (sessions pick it up at their next transaction), if not the old
//            one keeps serving and one `reload` line with every problem is logged. Listen and
//            socket settings need a restart (logged as a warning if they changed).
//   SIGTERM  drain (also SIGINT): stop accepting, let open sessions finish for up to
//            shutdown.drain_timeout, cut the rest off, exit 0.
// Called by `milter-policy serve`. Start-up failures (bad configuration, socket in use) return a
// non-zero exit code with the reason on stderr and in the log.

import cluster from 'node:cluster';
import { MilterServer } from '../milter/server.js';
import type { Config } from './config.js';
import { loadConfig } from './config.js';
import { resolveGroup } from './group.js';
import type { Logger } from './logger.js';
import { createLogger, flushLogger } from './logger.js';
import { policyHandlerFactory } from './policy-handler.js';
import type { Runtime } from './runtime.js';
import { buildRuntime, createServices, retireServices } from './runtime.js';
import { ZoneProber } from './zone-prober.js';
import type { LoadedAccess } from './access-loader.js';
import { AccessWatcher, fileIdentity, loadAccess, sameIdentity } from './access-loader.js';
import { runPrimary } from './cluster.js';
import type { HealthState } from './metrics.js';
import { Metrics, MetricsHttpServer } from './metrics.js';
import { VERSION } from './version.js';

export interface RunningDaemon {
  readonly server: MilterServer;
  readonly log: Logger;
  /** The process's metrics (null when metrics.enabled is false). */
  readonly metrics: Metrics | null;
  /** Where the metrics are served (null when off, and in a cluster worker). */
  readonly metricsUrl: string | null;
  runtime(): Runtime;
  /** Re-reads the configuration file; resolves true if the new one is serving. */
  reload(): Promise<boolean>;
  /** Drains and stops; resolves with the number of sessions cut off. */
  stop(): Promise<number>;
}

function listenKey(c: Config): string {
  return JSON.stringify([c.listen.map((l) => l.spec), c.socket, c.limits, c.metrics]);
}

export interface StartOptions {
  /** Set when running as one of several cluster workers (see ./cluster.ts). */
  readonly worker?: number;
}

/** Starts the daemon from a configuration file, without touching process signals. */
export async function startDaemon(
  configPath: string,
  options: StartOptions = {},
): Promise<RunningDaemon | { errors: readonly string[] }> {
  const loaded = await loadConfig(configPath);
  if (!loaded.ok) return { errors: loaded.errors };
  const config = loaded.config;
  let gid: number | undefined;
  if (config.socket.group !== undefined) {
    const g = await resolveGroup(config.socket.group);
    if (g === null)
      return {
        errors: [`${configPath}: socket.group: no such group ${JSON.stringify(config.socket.group)}`],
      };
    gid = g;
  }
  const log = createLogger({
    ...config.log,
    ...(options.worker === undefined ? {} : { worker: options.worker }),
  });
  // Metrics first, so /healthz says `starting` while the rules load; a worker's go to the primary.
  const metrics = config.metrics.listen === null ? null : new Metrics();
  let health: HealthState = 'starting';
  let http: MetricsHttpServer | null = null;
  const failed = async (errors: readonly string[]): Promise<{ errors: readonly string[] }> => {
    await http?.close();
    await flushLogger(log);
    return { errors };
  };
  if (metrics !== null && config.metrics.listen !== null) {
    if (options.worker !== undefined) metrics.serveToPrimary();
    else {
      http = new MetricsHttpServer({
        ...config.metrics.listen,
        path: config.metrics.path,
        render: () => metrics.render(),
        health: () => health,
        log,
      });
      try {
        await http.start();
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        log.error({ event: 'start_failed', err: msg }, msg);
        http = null;
        return failed([msg]);
      }
    }
  }
  let access: Extract<LoadedAccess, { ok: true }> | null = null;
  if (config.accessDb !== null) {
    const loaded = await loadAccess(config.accessDb);
    if (!loaded.ok) return failed(loaded.errors);
    access = loaded;
    logAccessLoaded(log, 'access_db_loaded', loaded);
  }
  const onBan = (client: string, reason: string, ms: number): void => {
    metrics?.banned();
    log.warn({ event: 'client_banned', client_addr: client, reason, ban_ms: ms }, 'client banned');
  };
  const onStoreState = (state: 'up' | 'down', detail: string): void => {
    metrics?.redisState(state);
    if (state === 'down')
      log.error(
        { event: 'redis_unavailable', detail },
        'Redis store unavailable; store.redis.on_failure applies',
      );
    else log.info({ event: 'redis_recovered', detail }, 'Redis store back');
  };
  const events = {
    onBan,
    onStoreState,
    ...(metrics === null
      ? {}
      : {
          observer: metrics.policy,
          onStoreError: (kind: 'reply' | 'unavailable') => metrics.redisError(kind),
        }),
  };
  let services = createServices(config, events);
  let current = buildRuntime(config, 1, access?.snapshot ?? null, services);
  metrics?.watch(() => current);
  const prober = new ZoneProber(() => current, log);
  const watcher =
    config.accessDb === null || access === null
      ? null
      : new AccessWatcher(
          config.accessDb,
          access.identity,
          (loaded) => {
            metrics?.accessReload(true);
            access = loaded;
            current = buildRuntime(current.config, current.generation + 1, loaded.snapshot, services);
            logAccessLoaded(log, 'access_db_reload', loaded, current.generation);
          },
          (errors) => {
            metrics?.accessReload(false);
            log.error(
              { event: 'access_db_reload', ok: false, errors },
              'access map refused; the previous one keeps serving',
            );
          },
        );
  const source = {
    get current(): Runtime {
      return current;
    },
  };
  const factory = policyHandlerFactory(source);
  const server = new MilterServer({
    listen: config.listen,
    socketMode: config.socket.mode,
    ...(gid === undefined ? {} : { socketGid: gid }),
    maxPayload: config.limits.max_packet_bytes,
    idleTimeoutMs: config.limits.idle_timeout,
    maxConnections: config.limits.max_connections,
    maxQueuedCommands: config.limits.max_queued_commands,
    factory,
    log,
    removeStale: options.worker === undefined,
    ...(metrics === null ? {} : { observer: metrics.server }),
  });
  try {
    await server.start();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log.error({ event: 'start_failed', err: msg }, msg);
    return failed([msg]);
  }
  watcher?.start();
  prober.start();
  health = 'ok';
  log.info(
    {
      event: 'started',
      version: VERSION,
      config: config.source,
      listen: server.addresses,
      pid: process.pid,
      ...(http === null ? {} : { metrics: http.url }),
    },
    'milter-policy started',
  );

  let stopping: Promise<number> | null = null;
  return {
    server,
    log,
    metrics,
    metricsUrl: http?.url ?? null,
    runtime: () => current,
    async reload(): Promise<boolean> {
      const next = await loadConfig(configPath);
      if (!next.ok) {
        log.error(
          { event: 'reload', ok: false, config: configPath, errors: next.errors },
          'configuration rejected; the previous one keeps serving',
        );
        metrics?.configReload(false);
        return false;
      }
      let snapshot = null;
      const a = next.config.accessDb;
      if (a !== null) {
        const same =
          access !== null &&
          current.config.accessDb?.file === a.file &&
          current.config.accessDb.skip === a.skip &&
          current.config.accessDb.replaceDuplicates === a.replaceDuplicates &&
          sameIdentity(access.identity, await fileIdentity(a.file));
        if (same && access !== null) {
          snapshot = access.snapshot;
        } else {
          const loaded = await loadAccess(a);
          metrics?.accessReload(loaded.ok);
          if (!loaded.ok) {
            log.error(
              { event: 'reload', ok: false, config: configPath, errors: loaded.errors },
              'access map rejected; the previous configuration keeps serving',
            );
            metrics?.configReload(false);
            return false;
          }
          access = loaded;
          snapshot = loaded.snapshot;
          logAccessLoaded(log, 'access_db_loaded', loaded);
        }
      }
      const previous = services;
      services = createServices(next.config, events, { services: previous, config: current.config });
      void retireServices(previous, services).catch(() => undefined);
      const runtime = buildRuntime(next.config, current.generation + 1, snapshot, services);
      if (a === null) {
        watcher?.stop();
      } else if (access !== null) {
        if (watcher === null)
          log.warn(
            { event: 'reload_restart_needed', config: configPath },
            'watching a new access_db file starts at the next restart',
          );
        else watcher.reset(a, access.identity);
      }
      if (listenKey(next.config) !== listenKey(current.config)) {
        log.warn(
          { event: 'reload_restart_needed', config: configPath },
          'listen, socket, limits and metrics settings take effect at the next restart',
        );
      }
      current = runtime;
      log.info(
        { event: 'reload', ok: true, config: configPath, generation: runtime.generation },
        'configuration reloaded',
      );
      metrics?.configReload(true);
      return true;
    },
    stop(): Promise<number> {
      stopping ??= (async () => {
        health = 'draining';
        watcher?.stop();
        prober.stop();
        log.info(
          {
            event: 'stopping',
            connections: server.connections,
            drain_timeout_ms: current.config.shutdown.drain_timeout,
          },
          'draining',
        );
        await server.stopAccepting();
        const cut = await server.drain(current.config.shutdown.drain_timeout);
        // after the sessions: their leases are released through the store
        await services.close().catch(() => undefined);
        await http?.close();
        log.info({ event: 'stopped', cut_off: cut }, 'milter-policy stopped');
        await flushLogger(log);
        return cut;
      })();
      return stopping;
    },
  };
}

function logAccessLoaded(
  log: Logger,
  event: string,
  a: Extract<LoadedAccess, { ok: true }>,
  generation?: number,
): void {
  log.info(
    {
      event,
      ok: true,
      file: a.snapshot.file,
      version: a.snapshot.version,
      entries: a.snapshot.size,
      compiled: !a.fromText,
      load_ms: a.ms,
      ...(generation === undefined ? {} : { generation }),
      ...(a.warnings.length > 0
        ? { warnings: a.warnings.slice(0, 20), warning_count: a.warnings.length }
        : {}),
    },
    'access map loaded',
  );
}

/**
 * `milter-policy serve`: runs until SIGTERM/SIGINT; returns the exit code. With `workers` above 1
 * this process becomes the cluster primary (./cluster.ts) and the workers run serveWorker.
 */
export async function serve(configPath: string): Promise<number> {
  if (cluster.isWorker) return serveWorker(configPath, Number(process.env['MILTER_POLICY_WORKER'] ?? '0'));
  const loaded = await loadConfig(configPath);
  if (loaded.ok && loaded.config.workers > 1) return runPrimary(configPath, loaded.config);
  const started = await startDaemon(configPath);
  if ('errors' in started) {
    for (const e of started.errors) process.stderr.write(`milter-policy: ${e}\n`);
    return 2;
  }
  return runUntilStopped(started);
}

async function serveWorker(configPath: string, worker: number): Promise<number> {
  const started = await startDaemon(configPath, { worker });
  if ('errors' in started) {
    process.send?.({ event: 'failed', errors: started.errors });
    return 2;
  }
  process.send?.({ event: 'started' });
  // The primary is gone (crashed or killed): drain and leave.
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const code = await runUntilStopped(started);
  // The IPC channel to the primary would keep this process alive.
  cluster.worker?.disconnect();
  return code;
}

function runUntilStopped(d: RunningDaemon): Promise<number> {
  process.on('uncaughtException', (e) => {
    d.log.fatal({ event: 'crash', err: e }, 'uncaught exception');
    d.log.flush();
    process.exit(70);
  });
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() => d.reload().then(() => undefined));
  });
  return new Promise<number>((resolve) => {
    const onStop = (): void => {
      void d.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
  });
}
