// A private Postfix 3.7 instance per the testbed recipe (docs: real-mta-testbed.md §1): main.cf and
// master.cf under the testbed, every service unchrooted, smtpd on a free 127.0.0.1 port, the
// "milter decides" relay preset (nothing in mynetworks; every RCPT passes Postfix's own relay
// check), everything delivered to the test sink, and the README snippet examples/postfix-main.cf
// appended verbatim with only the daemon address replaced. Runs in a private mount namespace
// (own /etc/hosts and resolv.conf). Called by the e2e test files: start() in before(), stop()
// registered on the testbed. Fails loudly: `postfix check/start` errors and maillog `fatal:`
// lines are put into the thrown error; stop() waits for master to exit (zombie = exited).

import { chownSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { HostsEntry } from './mta-namespace.js';
import { namespaceSetup } from './mta-namespace.js';
import type { MilterAddress } from './mta-snippets.js';
import { postfixSnippet } from './mta-snippets.js';
import type { SaslUser } from './sasl.js';
import { createSaslDb, writeSaslConfig } from './sasl.js';
import type { Testbed } from './testbed.js';
import { freePort, isAlive, readIfExists, runOk, stopPid, waitListening, waitUntil } from './testbed.js';

export interface PostfixOptions {
  tb: Testbed;
  /** Sub-directory of the testbed (several instances may share one testbed). */
  name?: string;
  sinkPort: number;
  /** The daemon's address; null = no milter (harness development). */
  milter: MilterAddress | null;
  /** SMTP AUTH users (Cyrus SASL, sasldb). */
  sasl?: readonly SaslUser[];
  /** Extra main.cf lines, appended last. */
  extraMainCf?: string[];
  /** More lines for the private /etc/hosts (client names smtpd can verify). */
  hosts?: readonly HostsEntry[];
  /** The resolver in the private resolv.conf (default 127.0.0.1: nothing answers). */
  nameserver?: string;
}

export const POSTFIX_HOSTNAME = 'postfix.example.test';

const MASTER_CF = `# service type  private unpriv chroot wakeup maxproc command + args
pickup     unix  n       -      n      60     1       pickup
cleanup    unix  n       -      n      -      0       cleanup
qmgr       unix  n       -      n      300    1       qmgr
tlsmgr     unix  -       -      n      1000?  1       tlsmgr
rewrite    unix  -       -      n      -      -       trivial-rewrite
bounce     unix  -       -      n      -      0       bounce
defer      unix  -       -      n      -      0       bounce
trace      unix  -       -      n      -      0       bounce
verify     unix  -       -      n      -      1       verify
flush      unix  n       -      n      1000?  0       flush
proxymap   unix  -       -      n      -      -       proxymap
proxywrite unix  -       -      n      -      1       proxymap
smtp       unix  -       -      n      -      -       smtp
relay      unix  -       -      n      -      -       smtp
showq      unix  n       -      n      -      -       showq
error      unix  -       -      n      -      -       error
retry      unix  -       -      n      -      -       error
discard    unix  -       -      n      -      -       discard
local      unix  -       n      n      -      -       local
lmtp       unix  -       -      n      -      -       lmtp
anvil      unix  -       -      n      -      1       anvil
scache     unix  -       -      n      -      1       scache
postlog    unix-dgram n  -      n      -      1       postlogd
`;

export class PostfixInstance {
  private constructor(
    readonly dir: string,
    /** smtpd's port on 127.0.0.1. */
    readonly port: number,
    private readonly masterPid: number,
  ) {}

  get configDir(): string {
    return `${this.dir}/etc`;
  }

  get maillog(): string {
    return `${this.dir}/maillog`;
  }

  static async start(opts: PostfixOptions): Promise<PostfixInstance> {
    const dir = opts.tb.path(opts.name ?? 'postfix');
    const etc = `${dir}/etc`;
    const spool = `${dir}/spool`;
    const data = `${dir}/data`;
    for (const d of [dir, etc, spool]) mkdirSync(d, { recursive: true, mode: 0o755 });
    mkdirSync(data, { recursive: true, mode: 0o700 });
    const uid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).trim());
    chownSync(data, uid, gid);
    const port = await freePort();

    const mainCf = [
      '# Written by test/e2e/harness/postfix.ts: the testbed recipe, "milter decides" preset.',
      'compatibility_level = 3.6',
      `queue_directory = ${spool}`,
      `data_directory = ${data}`,
      'command_directory = /usr/sbin',
      'daemon_directory = /usr/lib/postfix/sbin',
      'shlib_directory = /usr/lib/postfix',
      'meta_directory = /etc/postfix',
      'mail_owner = postfix',
      'setgid_group = postdrop',
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${opts.tb.dir}, /var, /dev/stdout`,
      `myhostname = ${POSTFIX_HOSTNAME}`,
      'mydomain = example.test',
      'myorigin = $myhostname',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mydestination =',
      'local_recipient_maps =',
      'alias_maps =',
      'alias_database =',
      'local_transport = error:5.1.1 local delivery is disabled in the testbed',
      'mynetworks =',
      'relay_domains = example.test relay.example.test',
      'smtpd_relay_restrictions = check_client_access static:OK, reject_unauth_destination',
      'smtpd_recipient_restrictions =',
      'relayhost =',
      `relay_transport = smtp:[127.0.0.1]:${opts.sinkPort}`,
      `default_transport = smtp:[127.0.0.1]:${opts.sinkPort}`,
      'smtp_dns_support_level = disabled',
      'smtpd_peername_lookup = yes',
      'milter_connect_timeout = 10s',
      'milter_content_timeout = 30s',
      'smtpd_error_sleep_time = 0',
      'smtpd_soft_error_limit = 100',
      'smtpd_hard_error_limit = 200',
      'in_flow_delay = 0',
      'smtpd_timeout = 60s',
      'queue_run_delay = 10s',
      'minimal_backoff_time = 10s',
      'maximal_backoff_time = 30s',
      'maximal_queue_lifetime = 1h',
      'bounce_queue_lifetime = 1h',
    ];
    if (opts.sasl !== undefined) {
      const db = `${dir}/sasl-src/sasldb2`;
      await createSaslDb(db, opts.sasl);
      // Debian's Postfix reads $config_directory/sasl/smtpd.conf whatever cyrus_sasl_config_path says.
      writeSaslConfig({ dir: `${etc}/sasl`, app: 'smtpd', db });
      mainCf.push(
        'smtpd_sasl_auth_enable = yes',
        'smtpd_sasl_type = cyrus',
        'smtpd_sasl_path = smtpd',
        `cyrus_sasl_config_path = ${etc}/sasl`,
        'smtpd_sasl_security_options = noanonymous',
      );
    }
    if (opts.milter !== null) {
      mainCf.push('', '# ---- examples/postfix-main.cf (README snippet), daemon address replaced ----');
      mainCf.push(postfixSnippet(opts.milter));
    }
    if (opts.extraMainCf !== undefined) mainCf.push('', ...opts.extraMainCf);
    writeFileSync(`${etc}/main.cf`, `${mainCf.join('\n')}\n`);
    writeFileSync(`${etc}/master.cf`, `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER_CF}`);
    // Gotcha 5: a brand-new main.cf makes postfix pause ~2 s; back-date the files.
    const past = new Date(Date.now() - 10_000);
    utimesSync(`${etc}/main.cf`, past, past);
    utimesSync(`${etc}/master.cf`, past, past);

    const fail = async (step: string, err: unknown): Promise<never> => {
      const fatal = (await readIfExists(`${dir}/maillog`))
        .split('\n')
        .filter((l) => /fatal:|error:|panic:/.test(l))
        .join('\n');
      throw new Error(
        `Postfix ${step} failed: ${err instanceof Error ? err.message : String(err)}\n${fatal}`,
      );
    };
    try {
      await runOk('/usr/sbin/postfix', ['-c', etc, 'check']);
    } catch (err) {
      return fail('check', err);
    }
    const ns = namespaceSetup({
      dir,
      localNames: [POSTFIX_HOSTNAME],
      ...(opts.hosts !== undefined ? { hosts: opts.hosts } : {}),
      ...(opts.nameserver !== undefined ? { nameserver: opts.nameserver } : {}),
    });
    const script = `${ns}\nexec /usr/sbin/postfix -c '${etc}' start\n`;
    writeFileSync(`${dir}/ns-start.sh`, script);
    try {
      await runOk('/usr/bin/unshare', ['-m', '--propagation', 'private', '/bin/sh', `${dir}/ns-start.sh`]);
    } catch (err) {
      return fail('start', err);
    }
    let masterPid: number;
    try {
      masterPid = await waitUntil('Postfix master.pid', () => {
        const text = readFileSyncOrEmpty(`${spool}/pid/master.pid`).trim();
        return text === '' ? undefined : Number(text);
      });
      await waitListening('Postfix smtpd', port);
    } catch (err) {
      return fail('start', err);
    }
    const instance = new PostfixInstance(dir, port, masterPid);
    opts.tb.onTeardown(`Postfix in ${dir}`, () => instance.stop());
    return instance;
  }

  /** Stops master (it takes its children with it) by the recorded pid. */
  async stop(): Promise<void> {
    if (isAlive(this.masterPid)) await stopPid(this.masterPid, 10_000);
  }

  /**
   * Local submission through Postfix's sendmail(1) with `-C` (postdrop -> pickup -> cleanup, so
   * non_smtpd_milters apply). `message` is RFC 5322 text.
   */
  async submit(from: string, to: readonly string[], message: string): Promise<void> {
    await runOk('/usr/sbin/sendmail', ['-C', this.configDir, '-f', from, '--', ...to], { input: message });
  }

  /** The maillog so far. */
  log(): Promise<string> {
    return readIfExists(this.maillog);
  }
}

function readFileSyncOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
