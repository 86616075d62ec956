// `milter-policy makemap`: compiles a sendmail access file into the snapshot the daemon loads,
// typed the way admins type sendmail's makemap:
//   milter-policy makemap hash /etc/mail/access < /etc/mail/access    -> /etc/mail/access.mpdb
//   milter-policy makemap /etc/mail/access                             -> /etc/mail/access.mpdb
//   milter-policy makemap -o /var/lib/mp/access.mpdb /etc/mail/access
// The whole source is validated first; on any error nothing is written, every problem is printed
// as `file:line: problem` and the exit code is 1. Otherwise the image goes to a temporary name in
// the same directory, is fsync'ed, and renamed over the target (a running daemon sees the new
// inode and swaps it in; readers never see a half-written file). Warnings (duplicate keys...) go
// to stderr. The output name is `NAME.mpdb`, not sendmail's `NAME.db`, so that sendmail's own map
// is never overwritten.

import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage } from '../access-db/image.js';
import { formatDiagnostic, parseAccessSource } from '../access-db/source.js';

const MAP_TYPES = new Set(['hash', 'btree', 'dbm', 'cdb', 'implicit']);

export const MAKEMAP_USAGE = `usage: milter-policy makemap [-r] [-e] [-o OUTPUT] [TYPE] NAME [< SOURCE]
  TYPE      hash, btree, dbm, cdb (accepted for sendmail compatibility; one format is written)
  NAME      the map name: with TYPE the source is read from standard input (as sendmail's
            makemap); without TYPE, NAME is the source file. Output: NAME.mpdb
  -o FILE   write the snapshot to FILE instead
  -r        a duplicate key replaces the earlier one (default: the first wins, with a warning)
  -e        allow keys without a value
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

/** Writes `data` to `target` atomically: temporary file in the same directory, fsync, rename. */
export async function writeAtomically(target: string, data: Buffer): Promise<void> {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Make the rename itself durable.
  const dir = await open(path.dirname(target), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function makemap(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        output: { type: 'string', short: 'o' },
        replace: { type: 'boolean', short: 'r' },
        empty: { type: 'boolean', short: 'e' },
      },
    });
  } catch (e) {
    process.stderr.write(`milter-policy makemap: ${(e as Error).message}\n${MAKEMAP_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  let name: string;
  let text: string;
  if (positionals.length === 2 && MAP_TYPES.has((positionals[0] as string).toLowerCase())) {
    name = positionals[1] as string;
    text = await readStdin();
  } else if (positionals.length === 1) {
    name = positionals[0] as string;
    try {
      text = await readFile(name, 'latin1');
    } catch (e) {
      process.stderr.write(
        `milter-policy makemap: ${name}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`,
      );
      return 1;
    }
  } else {
    process.stderr.write(MAKEMAP_USAGE);
    return 2;
  }
  const started = performance.now();
  const source = parseAccessSource(text, name, {
    replace: values.replace === true,
    allowEmptyValue: values.empty === true,
  });
  for (const w of source.warnings) process.stderr.write(`${w.file}:${w.line}: warning: ${w.message}\n`);
  if (source.errors.length > 0) {
    for (const e of source.errors) process.stderr.write(`${formatDiagnostic(e)}\n`);
    process.stderr.write(
      `milter-policy makemap: ${name}: ${source.errors.length} error${source.errors.length === 1 ? '' : 's'}; nothing written\n`,
    );
    return 1;
  }
  const target = values.output ?? `${name}.mpdb`;
  const image = buildImage(source);
  try {
    await writeAtomically(target, image);
  } catch (e) {
    process.stderr.write(
      `milter-policy makemap: ${target}: cannot write: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`,
    );
    return 1;
  }
  if (process.env['MILTER_POLICY_VERBOSE'] === '1') {
    process.stderr.write(
      `${target}: ${source.entries.length} entries, ${image.length} bytes, ${Math.round(performance.now() - started)} ms\n`,
    );
  }
  return 0;
}
