#!/usr/bin/env node
// The `milter-policy` command. Subcommands:
//   serve [--config FILE]     run the daemon (default: the bundled examples/milter-policy.yaml)
//   check-config FILE         validate a configuration file; every problem as file:line: path: problem
//   makemap [TYPE] NAME       compile a sendmail access file into NAME.mpdb (./makemap.ts)
//   query ...                 explain what the policy decides for a client, sender, recipients (./query.ts)
//   check [FILE]              lint an access file (./lint.ts)
//   stats [--url URL]         the live counters of a running daemon (./stats.ts)
//   version                   print the version
// Exit codes: 0 ok, 1 invalid input (check-config found problems), 2 usage or start-up error.

import { parseArgs } from 'node:util';
import { loadConfig } from '../daemon/config.js';
import { serve } from '../daemon/serve.js';
import { EMBEDDED_CONFIG, VERSION } from '../daemon/version.js';
import { makemap } from './makemap.js';
import { query } from './query.js';
import { check } from './lint.js';
import { stats } from './stats.js';

const USAGE = `usage: milter-policy <command> [options]

commands:
  serve [--config FILE]     run the daemon (default config: ${EMBEDDED_CONFIG})
  check-config FILE         validate a configuration file
  makemap [TYPE] NAME       compile a sendmail access file (NAME.mpdb), as sendmail's makemap
  query --client IP --to ADDR [options]
                            explain the decisions for a client, sender and recipients
  check [ACCESS_FILE]       lint an access file (also --config FILE)
  stats [--url URL | --config FILE] [--watch SECONDS]
                            the live counters of a running daemon (its metrics listener)
  version                   print the version
  help                      this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' } },
        strict: true,
      });
      return serve(values.config ?? EMBEDDED_CONFIG);
    }
    case 'check-config': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true });
      const file = positionals[0];
      if (file === undefined || positionals.length > 1) {
        process.stderr.write('usage: milter-policy check-config FILE\n');
        return 2;
      }
      const r = await loadConfig(file);
      if (r.ok) {
        process.stdout.write(`${file}: configuration is valid\n`);
        return 0;
      }
      for (const e of r.errors) process.stdout.write(`${e}\n`);
      process.stdout.write(`${file}: ${r.errors.length} problem${r.errors.length === 1 ? '' : 's'}\n`);
      return 1;
    }
    case 'makemap':
      return makemap(rest);
    case 'query':
      return query(rest);
    case 'check':
      return check(rest);
    case 'stats':
      return stats(rest);
    case 'version':
    case '--version':
      process.stdout.write(`milter-policy ${VERSION}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(
        command === undefined
          ? USAGE
          : `milter-policy: unknown command ${JSON.stringify(command)}\n\n${USAGE}`,
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`milter-policy: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
