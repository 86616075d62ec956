// A private sendmail 8.17 instance per the testbed recipe (docs: real-mta-testbed.md §2): the
// unpacked binary under /opt/sendmail-x, a .mc built from the recipe with the "milter decides"
// preset (FEATURE(promiscuous_relay)) and the README snippet examples/sendmail.mc appended
// verbatim with only the daemon address replaced, every path under the testbed, everything
// relayed to the test sink. Or, for the access_db oracle, sendmail's own relay control
// (`relay: 'mta'`) and FEATURE(access_db) on a map compiled with the real makemap. Runs in `unshare -mu`: hostname sendmail.example.test (else 60 s
// stalls), private /etc/hosts and resolv.conf, and a tmpfs /dev whose /dev/log is the testbed's
// syslog sink, so sendmail's log is readable in the testbed (sendmail/maillog). Called by the e2e
// test files. Fails loudly: m4/sendmail errors and the log so far go into the thrown error.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { HostsEntry } from './mta-namespace.js';
import { namespaceSetup } from './mta-namespace.js';
import type { MilterAddress } from './mta-snippets.js';
import { sendmailSnippet } from './mta-snippets.js';
import type { SaslUser } from './sasl.js';
import { createSaslDb, writeSaslConfig } from './sasl.js';
import { SyslogSink } from './syslog-sink.js';
import type { Testbed } from './testbed.js';
import { freePort, isAlive, run, runOk, stopPid, waitListening, waitUntil } from './testbed.js';

const SENDMAIL_ROOT = '/opt/sendmail-x';
const SENDMAIL_BIN = `${SENDMAIL_ROOT}/usr/libexec/sendmail/sendmail`;
const CF_DIR = `${SENDMAIL_ROOT}/usr/share/sendmail/cf`;
export const MAKEMAP_BIN = `${SENDMAIL_ROOT}/usr/libexec/sendmail/makemap`;

export const SENDMAIL_HOSTNAME = 'sendmail.example.test';

export interface SendmailOptions {
  tb: Testbed;
  name?: string;
  sinkPort: number;
  milter: MilterAddress | null;
  /** SMTP AUTH users (Cyrus SASL, sasldb). */
  sasl?: readonly SaslUser[];
  /** Extra .mc lines before the MAILER lines (after FEATURE(access_db) when there is one). */
  extraMc?: string[];
  /**
   * Who decides relaying: 'milter' (default) = FEATURE(promiscuous_relay), sendmail accepts every
   * RCPT; 'mta' = sendmail's own rules (RELAY_DOMAIN, class w, access map).
   */
  relay?: 'milter' | 'mta';
  /** RELAY_DOMAIN entries (class R). Default example.test, relay.example.test. */
  relayDomains?: readonly string[];
  /** local-host-names (class w, besides sendmail's own name and localhost). Default none. */
  localHostNames?: readonly string[];
  /**
   * FEATURE(access_db) on this makemap source file: copied to etc/access and compiled with the
   * real makemap (`makemap -C sendmail.cf hash etc/access < etc/access`).
   */
  accessDb?: { source: string };
  /** More lines for the private /etc/hosts (client names sendmail can verify). */
  hosts?: readonly HostsEntry[];
  /** The resolver in the private resolv.conf (default 127.0.0.1: nothing answers). */
  nameserver?: string;
}

export class SendmailInstance {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly pid: number,
    /** sendmail's syslog, as received. */
    readonly syslog: SyslogSink,
  ) {}

  get maillog(): string {
    return `${this.dir}/maillog`;
  }

  static async start(opts: SendmailOptions): Promise<SendmailInstance> {
    const dir = opts.tb.path(opts.name ?? 'sendmail');
    const etc = `${dir}/etc`;
    mkdirSync(etc, { recursive: true, mode: 0o755 });
    mkdirSync(`${dir}/mqueue`, { recursive: true, mode: 0o700 });
    chmodSync(`${dir}/mqueue`, 0o700);
    writeFileSync(`${dir}/sendmail.st`, '');
    writeFileSync(`${etc}/aliases`, '');
    writeFileSync(`${etc}/helpfile`, '');
    writeFileSync(`${etc}/error-header`, '');
    writeFileSync(`${etc}/local-host-names`, (opts.localHostNames ?? []).map((n) => `${n}\n`).join(''));
    writeFileSync(`${etc}/service.switch`, 'hosts files\naliases files\n');
    const port = await freePort();
    const q = (s: string): string => `\`${s}'`;

    const mc = [
      "VERSIONID(`milter-policy e2e testbed')dnl",
      "OSTYPE(`linux')dnl",
      `define(\`confDOMAIN_NAME', ${q(SENDMAIL_HOSTNAME)})dnl`,
      "define(`confSMTP_LOGIN_MSG', `$j Sendmail $v/$Z; $b (testbed)')dnl",
      `define(\`QUEUE_DIR', ${q(`${dir}/mqueue`)})dnl`,
      `define(\`confPID_FILE', ${q(`${dir}/sendmail.pid`)})dnl`,
      `define(\`STATUS_FILE', ${q(`${dir}/sendmail.st`)})dnl`,
      `define(\`ALIAS_FILE', ${q(`${etc}/aliases`)})dnl`,
      `define(\`HELP_FILE', ${q(`${etc}/helpfile`)})dnl`,
      `define(\`confSERVICE_SWITCH_FILE', ${q(`${etc}/service.switch`)})dnl`,
      "define(`confHOSTS_FILE', `/etc/hosts')dnl",
      `define(\`confERROR_MESSAGE', ${q(`${etc}/error-header`)})dnl`,
      "define(`confUSERDB_SPEC', `')dnl",
      `define(\`confDEAD_LETTER_DROP', ${q(`${dir}/dead.letter`)})dnl`,
      "define(`confHOST_STATUS_DIRECTORY', `')dnl",
      `define(\`confCW_FILE', ${q(`-o ${etc}/local-host-names`)})dnl`,
      "define(`confDEF_USER_ID', `mail:mail')dnl",
      "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
      "define(`confDONT_PROBE_INTERFACES', `True')dnl",
      "define(`confTO_IDENT', `0s')dnl",
      "define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl",
      "FEATURE(`nocanonify')dnl",
      "FEATURE(`accept_unresolvable_domains')dnl",
      "define(`confQUEUE_LA', `500')dnl",
      "define(`confREFUSE_LA', `1000')dnl",
      "define(`confDELAY_LA', `0')dnl",
      "define(`confMIN_QUEUE_AGE', `0')dnl",
      "define(`confTO_QUEUERETURN', `1h')dnl",
      "define(`confTO_QUEUEWARN', `0')dnl",
      "define(`confLOG_LEVEL', `14')dnl",
      "define(`confMILTER_LOG_LEVEL', `14')dnl",
      "FEATURE(`no_default_msa')dnl",
      `DAEMON_OPTIONS(\`Port=${port}, Addr=127.0.0.1, Name=MTA-testbed, Family=inet')dnl`,
      ...(opts.relayDomains ?? ['example.test', 'relay.example.test']).map((d) => `RELAY_DOMAIN(${q(d)})dnl`),
      ...((opts.relay ?? 'milter') === 'milter'
        ? [
            'dnl "milter decides": sendmail accepts every RCPT, the daemon judges relaying',
            "FEATURE(`promiscuous_relay')dnl",
          ]
        : ['dnl sendmail decides relaying itself (no promiscuous_relay)']),
      ...(opts.localHostNames !== undefined ? ["FEATURE(`use_cw_file')dnl"] : []),
      ...(opts.accessDb !== undefined
        ? [`FEATURE(\`access_db', ${q(`hash -T<TMPF> -o ${etc}/access`)})dnl`]
        : []),
      "define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl",
      "define(`MAIL_HUB', `esmtp:[127.0.0.1]')dnl",
      "define(`LOCAL_RELAY', `esmtp:[127.0.0.1]')dnl",
      `define(\`ESMTP_MAILER_ARGS', \`TCP $h ${opts.sinkPort}')dnl`,
      `define(\`SMTP_MAILER_ARGS', \`TCP $h ${opts.sinkPort}')dnl`,
      `define(\`RELAY_MAILER_ARGS', \`TCP $h ${opts.sinkPort}')dnl`,
    ];
    // sendmail clears its environment (SASL_CONF_PATH is ignored) and has no option for the SASL
    // config path: in its namespace our SASL dir is bind-mounted over libsasl2's search path.
    const saslDirs: Array<{ source: string; onto: string }> = [];
    if (opts.sasl !== undefined) {
      const db = `${dir}/sasl-src/sasldb2`;
      await createSaslDb(db, opts.sasl);
      writeSaslConfig({ dir: `${dir}/sasl`, app: 'Sendmail', db });
      for (const onto of ['/etc/sasl2', '/etc/sasl', '/usr/lib/sasl2'])
        saslDirs.push({ source: `${dir}/sasl`, onto });
      mc.push(
        "define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl",
        "TRUST_AUTH_MECH(`PLAIN LOGIN')dnl",
        "define(`confAUTH_REALM', `example.test')dnl",
      );
    }
    if (opts.extraMc !== undefined) mc.push(...opts.extraMc);
    if (opts.milter !== null) {
      mc.push('dnl ---- examples/sendmail.mc (README snippet), daemon address replaced ----');
      mc.push(sendmailSnippet(opts.milter).trimEnd());
    }
    mc.push("MAILER(`local')dnl", "MAILER(`smtp')dnl", '');
    writeFileSync(`${etc}/sendmail.mc`, mc.join('\n'));
    const cf = await runOk('/usr/bin/m4', [
      `-D_CF_DIR_=${CF_DIR}/`,
      `${CF_DIR}/m4/cf.m4`,
      `${etc}/sendmail.mc`,
    ]);
    writeFileSync(`${etc}/sendmail.cf`, cf);
    if (opts.accessDb !== undefined) {
      const source = readFileSync(opts.accessDb.source);
      writeFileSync(`${etc}/access`, source);
      // makemap reads /etc/mail/sendmail.cf unless told which cf to use (gotcha 11).
      const r = await run(MAKEMAP_BIN, ['-C', `${etc}/sendmail.cf`, 'hash', `${etc}/access`], {
        input: source,
      });
      const problems = r.stderr
        .split('\n')
        .filter((l) => l.trim() !== '' && !/World writable directory/.test(l));
      if (r.code !== 0 || problems.length > 0)
        throw new Error(`makemap hash ${etc}/access exited ${r.code}:\n${problems.join('\n')}`);
    }

    const syslog = await SyslogSink.start(`${dir}/log.sock`, `${dir}/maillog`);
    opts.tb.onTeardown(`syslog sink of ${dir}`, () => syslog.close());
    const script = [
      namespaceSetup({
        dir,
        localNames: [SENDMAIL_HOSTNAME, 'sendmail'],
        ...(opts.hosts !== undefined ? { hosts: opts.hosts } : {}),
        ...(opts.nameserver !== undefined ? { nameserver: opts.nameserver } : {}),
        hostname: SENDMAIL_HOSTNAME,
        devLog: syslog.socketPath,
        bindDirs: saslDirs,
      }),
      `${SENDMAIL_BIN} -C ${etc}/sendmail.cf -bi >/dev/null`,
      `exec ${SENDMAIL_BIN} -C ${etc}/sendmail.cf -bd -q1m -L sm-mta-testbed`,
      '',
    ].join('\n');
    writeFileSync(`${dir}/ns-start.sh`, script);
    const fail = (step: string, err: unknown): never => {
      throw new Error(
        `sendmail ${step} failed: ${err instanceof Error ? err.message : String(err)}\n${syslog.text()}`,
      );
    };
    try {
      await runOk('/usr/bin/unshare', ['-mu', '--propagation', 'private', '/bin/sh', `${dir}/ns-start.sh`], {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      });
    } catch (err) {
      return fail('start', err);
    }
    let pid: number;
    try {
      pid = await waitUntil('sendmail.pid', () => {
        const first = readFileSyncOrEmpty(`${dir}/sendmail.pid`).split('\n')[0]?.trim() ?? '';
        return first === '' ? undefined : Number(first);
      });
      await waitListening('sendmail', port);
    } catch (err) {
      return fail('start', err);
    }
    const instance = new SendmailInstance(dir, port, pid, syslog);
    opts.tb.onTeardown(`sendmail in ${dir}`, () => instance.stop());
    return instance;
  }

  async stop(): Promise<void> {
    if (isAlive(this.pid)) await stopPid(this.pid, 10_000);
  }

  /** sendmail's log so far. */
  log(): string {
    return this.syslog.text();
  }
}

function readFileSyncOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
