// `milter-policy check`: lints an access file (./../access-db/lint.ts) and prints every finding as
// `file:line: severity: message`. The file comes from the command line or from the configuration's
// access_db.file (whose options — skip, spam, delay_checks, local domains — then apply).
// Exit 0: no errors (warnings allowed, unless --strict); 1: errors (or warnings with --strict);
// 2: usage or unreadable input.

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isImage } from '../access-db/image.js';
import type { LintOptions } from '../access-db/lint.js';
import { formatFinding, lintAccess } from '../access-db/lint.js';
import { parseAccessSource } from '../access-db/source.js';
import { loadConfig } from '../daemon/config.js';

export const CHECK_USAGE = `usage: milter-policy check [--config FILE] [--local DOMAIN]... [--skip] [--strict] [ACCESS_FILE]
  ACCESS_FILE   the makemap source text (default: access_db.file of --config)
  --strict      exit 1 on warnings too
`;

export async function check(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        local: { type: 'string', multiple: true },
        skip: { type: 'boolean' },
        strict: { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`milter-policy check: ${(e as Error).message}\n${CHECK_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  let options: LintOptions = {
    skip: values.skip === true,
    spam: 'friend',
    delayChecks: true,
    localDomains: new Set((values.local ?? []).map((d) => d.toLowerCase())),
  };
  let file = positionals[0];
  if (values.config !== undefined) {
    const c = await loadConfig(values.config);
    if (!c.ok) {
      for (const e of c.errors) process.stderr.write(`${e}\n`);
      return 2;
    }
    const a = c.config.accessDb;
    options = {
      skip: values.skip === true || (a?.skip ?? false),
      spam: a?.spam ?? 'friend',
      delayChecks: a?.delayChecks ?? true,
      localDomains: new Set([
        ...options.localDomains,
        ...c.config.localDomains.flatMap((d) => (d.kind === 'domain' ? [d.name] : [])),
      ]),
    };
    file ??= a?.file;
  }
  if (file === undefined || positionals.length > 1) {
    process.stderr.write(CHECK_USAGE);
    return 2;
  }
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    process.stderr.write(
      `milter-policy check: ${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`,
    );
    return 2;
  }
  if (isImage(buf)) {
    process.stderr.write(`milter-policy check: ${file} is a compiled map; check its source text instead\n`);
    return 2;
  }
  const source = parseAccessSource(buf.toString('latin1'), file);
  const findings = lintAccess(source, options);
  for (const f of findings) process.stdout.write(`${formatFinding(f)}\n`);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  process.stdout.write(
    `${file}: ${source.entries.length} entries, ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`,
  );
  return errors > 0 || (values.strict === true && warnings > 0) ? 1 : 0;
}
