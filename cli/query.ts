// `milter-policy query`: the `sendmail -bt` / `postmap -q` answer for an admin — what the policy
// decides for a client, sender and recipients, every access-map key tried in order, the entry
// that matched (file:line), and the reply the SMTP client would get.
//   milter-policy query --config /etc/milter-policy.yaml --client 192.0.2.7 --name mx.example.org \
//                       --from '<a@example.org>' --to '<b@example.net>' --to postmaster@example.net
//   milter-policy query --access /etc/mail/access --local example.net --client 192.0.2.7 --to x@example.net
// Exit 0 when it could answer (whatever the answer), 2 on usage or configuration errors.

import path from 'node:path';
import { parseArgs } from 'node:util';
import { readAccessImage } from '../access-db/load.js';
import { AccessSnapshot } from '../access-db/snapshot.js';
import type { Config } from '../daemon/config.js';
import { loadConfig, parseConfig } from '../daemon/config.js';
import type { TransactionSpec } from '../daemon/explain.js';
import { explainTransaction, formatExplanation } from '../daemon/explain.js';
import type { Runtime } from '../daemon/runtime.js';
import { buildRuntime } from '../daemon/runtime.js';

export const QUERY_USAGE = `usage: milter-policy query [--config FILE] [--access FILE] [--local DOMAIN]... [--relay DOMAIN]...
                          --client IP [--name HOST] [--helo NAME] [--from ADDR] --to ADDR [--to ADDR]...
                          [--auth USER] [--resolve OK|FAIL|FORGED|TEMP] [--mta sendmail|postfix] [--json]
  --config FILE   the daemon's configuration (domains, trusted networks, access_db, checks)
  --access FILE   an access file (source text or compiled), instead of or over the configuration's
  --local/--relay local and relay domains when no --config gives them
  --name HOST     the client's verified PTR name (default: unresolved, [IP])
  --resolve R     what the MTA says about the PTR lookup ({client_resolve})
  --from ADDR     the envelope sender (default <>)
`;

/** Loads a runtime the way the daemon would, from a configuration and/or an access file. */
export async function queryRuntime(options: {
  config?: string;
  access?: string;
  local?: string[];
  relay?: string[];
}): Promise<Runtime | { errors: readonly string[] }> {
  let config: Config;
  if (options.config !== undefined) {
    const r = await loadConfig(options.config);
    if (!r.ok) return { errors: r.errors };
    config = r.config;
  } else {
    const yaml = JSON.stringify({ domains: { local: options.local ?? [], relay: options.relay ?? [] } });
    const r = await parseConfig(yaml, path.join(process.cwd(), '(command line)'));
    if (!r.ok) return { errors: r.errors };
    config = r.config;
  }
  if (options.access !== undefined) {
    const base = config.accessDb ?? {
      file: '',
      blocklistRecipients: true,
      delayChecks: true,
      spam: 'friend' as const,
      lookupdotdomain: false,
      skip: false,
      replaceDuplicates: false,
      checkIntervalMs: 5000,
      mode: 'enforce' as const,
    };
    config = { ...config, accessDb: { ...base, file: path.resolve(options.access) } };
  }
  let snapshot: AccessSnapshot | null = null;
  if (config.accessDb !== null) {
    const read = await readAccessImage(config.accessDb.file, { replace: config.accessDb.replaceDuplicates });
    if (!read.ok) return { errors: read.errors };
    const s = AccessSnapshot.fromImage(read.image, { skip: config.accessDb.skip }, false);
    if (!s.ok) return { errors: [`${config.accessDb.file}: ${s.problem}`] };
    snapshot = s.snapshot;
  }
  // The explain tool counts nothing (rate limits skip without a real session): no shared store.
  return buildRuntime({ ...config, store: { ...config.store, type: 'memory' } }, 1, snapshot);
}

export async function query(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        access: { type: 'string' },
        local: { type: 'string', multiple: true },
        relay: { type: 'string', multiple: true },
        client: { type: 'string' },
        name: { type: 'string' },
        helo: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string', multiple: true },
        auth: { type: 'string' },
        resolve: { type: 'string' },
        mta: { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (e) {
    process.stderr.write(`milter-policy query: ${(e as Error).message}\n${QUERY_USAGE}`);
    return 2;
  }
  if (values.client === undefined || values.to === undefined || values.to.length === 0) {
    process.stderr.write(QUERY_USAGE);
    return 2;
  }
  if (values.mta !== undefined && values.mta !== 'sendmail' && values.mta !== 'postfix') {
    process.stderr.write(`milter-policy query: --mta must be sendmail or postfix\n`);
    return 2;
  }
  const runtime = await queryRuntime({
    ...(values.config === undefined ? {} : { config: values.config }),
    ...(values.access === undefined ? {} : { access: values.access }),
    ...(values.local === undefined ? {} : { local: values.local }),
    ...(values.relay === undefined ? {} : { relay: values.relay }),
  });
  if ('errors' in runtime) {
    for (const e of runtime.errors) process.stderr.write(`${e}\n`);
    return 2;
  }
  const spec: TransactionSpec = {
    clientAddress: values.client,
    ...(values.name === undefined ? {} : { clientName: values.name }),
    ...(values.helo === undefined ? {} : { helo: values.helo }),
    sender: values.from ?? '<>',
    recipients: values.to,
    ...(values.auth === undefined ? {} : { auth: values.auth }),
    ...(values.resolve === undefined ? {} : { resolve: values.resolve.toUpperCase() }),
    mta: values.mta === 'postfix' ? 'postfix' : 'sendmail',
  };
  const x = explainTransaction(runtime, spec);
  process.stdout.write(values.json === true ? `${JSON.stringify(x, null, 2)}\n` : formatExplanation(spec, x));
  return 0;
}
