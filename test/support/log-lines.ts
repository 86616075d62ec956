// The daemon's log file as the tests read it: JSON lines, parsed; an absent file is no lines yet
// (the daemon writes in batches, so callers poll).

import { readFile } from 'node:fs/promises';

export async function readLogLines(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
