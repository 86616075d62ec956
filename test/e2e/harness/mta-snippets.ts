// The README's MTA integration snippets (examples/postfix-main.cf, examples/sendmail.mc), as the
// e2e suite uses them: read verbatim and with only the daemon's address replaced by the test's
// own. Called by postfix.ts and sendmail.ts when they build an MTA's configuration, so the suite
// proves the copy-paste snippets work. Fails loudly (throws) when a snippet no longer contains
// the address it is documented to contain, instead of silently testing something else.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './testbed.js';

/** Where the daemon listens for a test: a TCP port on 127.0.0.1, or a unix socket path. */
export type MilterAddress = { inetPort: number } | { unixPath: string };

/** The address the snippets are written for (README: `npm start` listens there). */
const POSTFIX_SNIPPET_ADDRESS = 'inet:127.0.0.1:8894';
const SENDMAIL_SNIPPET_ADDRESS = 'inet:8894@127.0.0.1';

function replaceAll(file: string, text: string, from: string, to: string): string {
  const count = text.split(from).length - 1;
  if (count === 0) {
    throw new Error(
      `${file} no longer contains ${JSON.stringify(from)}: the e2e suite cannot point it at the test daemon`,
    );
  }
  return text.split(from).join(to);
}

/** examples/postfix-main.cf with the daemon address replaced (Postfix syntax: inet:host:port / unix:path). */
export function postfixSnippet(milter: MilterAddress): string {
  const file = path.join(repoRoot, 'examples', 'postfix-main.cf');
  const to = 'inetPort' in milter ? `inet:127.0.0.1:${milter.inetPort}` : `unix:${milter.unixPath}`;
  return replaceAll(file, readFileSync(file, 'utf8'), POSTFIX_SNIPPET_ADDRESS, to);
}

/** examples/sendmail.mc with the daemon address replaced (libmilter syntax: inet:port@host / unix:path). */
export function sendmailSnippet(milter: MilterAddress): string {
  const file = path.join(repoRoot, 'examples', 'sendmail.mc');
  const to = 'inetPort' in milter ? `inet:${milter.inetPort}@127.0.0.1` : `unix:${milter.unixPath}`;
  return replaceAll(file, readFileSync(file, 'utf8'), SENDMAIL_SNIPPET_ADDRESS, to);
}
