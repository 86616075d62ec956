// Starts the real MilterServer + PolicyHandler on an ephemeral TCP port (or a unix socket) with a
// configuration given as YAML text, logging into memory. For ring (b) protocol tests.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseListenSpec } from '../../milter/listen-spec.js';
import { MilterServer } from '../../milter/server.js';
import { parseConfig } from '../../daemon/config.js';
import { policyHandlerFactory } from '../../daemon/policy-handler.js';
import type { Runtime } from '../../daemon/runtime.js';
import { buildRuntime } from '../../daemon/runtime.js';
import { MemoryLog } from './memory-log.js';
import type { Target } from './fake-mta.js';

export const BASE_CONFIG = `
domains:
  local: [example.test]
  relay: [relay.example.test]
trusted_networks: [127.0.0.1/32, "::1/128", 10.0.0.0/8]
add_header: { name: X-Milter-Policy, value: "milter-policy {version} on {mta_host} q={queue_id}" }
`;

export async function runtimeFrom(yaml: string, generation = 1): Promise<Runtime> {
  const r = await parseConfig(yaml, path.join(os.tmpdir(), 'test-config.yaml'));
  if (!r.ok) throw new Error(`test config invalid:\n${r.errors.join('\n')}`);
  return buildRuntime(r.config, generation);
}

export interface TestServer {
  readonly server: MilterServer;
  readonly log: MemoryLog;
  readonly target: Target;
  setRuntime(r: Runtime): void;
  current(): Runtime;
  stop(): Promise<void>;
}

export async function startTestServer(
  yaml: string = BASE_CONFIG,
  options: {
    unix?: boolean;
    maxPayload?: number;
    maxConnections?: number;
    idleTimeoutMs?: number;
    socketMode?: number;
  } = {},
): Promise<TestServer> {
  let runtime = await runtimeFrom(yaml);
  const log = new MemoryLog();
  const source = {
    get current(): Runtime {
      return runtime;
    },
  };
  const factory = policyHandlerFactory(source);
  let spec;
  if (options.unix === true) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mp-test-'));
    spec = parseListenSpec(`unix:${path.join(dir, 'milter.sock')}`);
  } else {
    spec = parseListenSpec('inet:1@127.0.0.1');
  }
  if (!spec.ok) throw new Error(spec.problem);
  // Port 0 is refused by the parser (admins never mean it); ask the OS for a free one directly.
  const listen = spec.value.kind === 'tcp' ? { ...spec.value, port: 0 } : spec.value;
  const server = new MilterServer({
    listen: [listen],
    socketMode: options.socketMode ?? 0o660,
    maxPayload: options.maxPayload ?? 1024 * 1024,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    maxConnections: options.maxConnections ?? 100,
    factory,
    log,
  });
  await server.start();
  const addr = server.addresses[0] as string;
  const target: Target =
    listen.kind === 'unix'
      ? { path: listen.path }
      : { host: '127.0.0.1', port: Number(/^inet:(\d+)@/.exec(addr)?.[1]) };
  return {
    server,
    log,
    target,
    setRuntime: (r) => {
      runtime = r;
    },
    current: () => runtime,
    stop: async () => {
      await server.stopAccepting();
      await server.drain(100);
    },
  };
}
