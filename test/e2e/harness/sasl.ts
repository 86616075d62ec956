// SMTP AUTH for the MTAs under test: a Cyrus SASL password database (sasldb2, written with
// saslpasswd2 from Debian's sasl2-bin) and the per-application SASL configuration (smtpd.conf for
// Postfix, Sendmail.conf for sendmail) that makes both MTAs offer AUTH PLAIN/LOGIN checked
// against it. Called by postfix.ts and sendmail.ts when a test asks for AUTH. Fails (throws)
// when saslpasswd2 fails; an MTA that then does not offer AUTH is caught by the scenario itself.

import { chmodSync, chownSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { runOk } from './testbed.js';

export interface SaslUser {
  /** Login name as the client sends it, `user@realm`. */
  login: string;
  password: string;
}

/** A sasldb2 with these users, written to `file`. */
export async function createSaslDb(file: string, users: readonly SaslUser[]): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  for (const user of users) {
    const at = user.login.lastIndexOf('@');
    if (at <= 0) throw new Error(`SASL login ${user.login} must be user@realm`);
    await runOk(
      '/usr/sbin/saslpasswd2',
      ['-p', '-c', '-f', file, '-u', user.login.slice(at + 1), user.login.slice(0, at)],
      {
        input: user.password,
      },
    );
  }
}

/**
 * A SASL config dir for one application (`smtpd` = Postfix, `Sendmail`) with its own copy of the
 * database, owned and moded as that MTA requires (Postfix's smtpd reads it as user postfix).
 */
export function writeSaslConfig(opts: { dir: string; app: 'smtpd' | 'Sendmail'; db: string }): void {
  mkdirSync(opts.dir, { recursive: true, mode: 0o755 });
  chmodSync(opts.dir, 0o755);
  const db = path.join(opts.dir, 'sasldb2');
  copyFileSync(opts.db, db);
  if (opts.app === 'smtpd') {
    const gid = Number(execFileSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).trim());
    chownSync(db, 0, gid);
    chmodSync(db, 0o640);
  } else {
    chmodSync(db, 0o600);
  }
  const conf = path.join(opts.dir, `${opts.app}.conf`);
  writeFileSync(
    conf,
    [
      'pwcheck_method: auxprop',
      'auxprop_plugin: sasldb',
      `sasldb_path: ${db}`,
      'mech_list: PLAIN LOGIN',
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o644);
}
