// The standard end-to-end bed: one testbed directory with the SMTP sink, the daemon (inet
// listener on a free port, plus its unix socket), and a private Postfix and sendmail both wired
// to it through the README snippets, with SMTP AUTH (user alice@example.test). Scenarios get the
// two MTAs as one list so the same test code runs through each. Called by the e2e test files
// that drive SMTP through both MTAs. Fails like its parts: whatever does not come up throws.

import type { Decision, PolicyConfigOptions } from './daemon.js';
import { PolicyDaemon, policyConfig } from './daemon.js';
import { POSTFIX_HOSTNAME, PostfixInstance } from './postfix.js';
import type { SaslUser } from './sasl.js';
import type { HostsEntry } from './mta-namespace.js';
import { SENDMAIL_HOSTNAME, SendmailInstance } from './sendmail.js';
import { SmtpSink } from './sink.js';
import { SmtpClient } from './smtp-client.js';
import { freePort, Testbed } from './testbed.js';

export type MtaName = 'postfix' | 'sendmail';
export const MTA_NAMES: readonly MtaName[] = ['postfix', 'sendmail'];

export const SASL_USER: SaslUser = { login: 'alice@example.test', password: 'alice-secret' };

/** One MTA of the bed, as the scenarios see it. */
export interface MtaUnderTest {
  name: MtaName;
  /** Its SMTP port on 127.0.0.1. */
  port: number;
  /** Its host name (= milter macro {j}, = {mta_host} in the header). */
  hostname: string;
  /** Its log so far (Postfix maillog / sendmail syslog). */
  log(): Promise<string>;
}

export interface MailBed {
  tb: Testbed;
  sink: SmtpSink;
  daemon: PolicyDaemon;
  /** Port of the daemon's inet listener (both MTAs use it). */
  milterPort: number;
  /** Path of the daemon's unix socket. */
  milterSocket: string;
  mtas: Record<MtaName, MtaUnderTest>;
  postfix: PostfixInstance;
  sendmail: SendmailInstance;
  /** Stops the daemon (SIGTERM, exit 0 expected) — "daemon down". */
  stopDaemon(): Promise<void>;
  /** Starts the daemon again on the same configuration and port. */
  restartDaemon(): Promise<void>;
  /**
   * Stops the daemon and starts it on a new configuration (same listeners, fresh state: DNS
   * cache, bans). The MTAs connect per SMTP session, so the next session uses the new one.
   */
  reconfigure(policy: PolicyOptions): Promise<void>;
}

/** The daemon configuration of a bed, without the listeners (the bed chooses those). */
export type PolicyOptions = Omit<PolicyConfigOptions, 'inetPort' | 'unixPath'>;

export interface MailBedOptions {
  /** /etc/hosts lines for both MTAs: clients with verified names (PTR and A agree). */
  readonly hosts?: readonly HostsEntry[];
  /** The daemon's configuration (default: the relay scenarios' policyConfig). */
  readonly policy?: PolicyOptions;
}

export async function startMailBed(label: string, options: MailBedOptions = {}): Promise<MailBed> {
  const tb = await Testbed.create(label);
  try {
    const sink = await SmtpSink.start(tb.path('sink'));
    tb.onTeardown('sink', () => sink.close());
    const milterPort = await freePort();
    const milterSocket = tb.path('milter', 'milter.sock');
    const configFor = (policy: PolicyOptions): string =>
      policyConfig({ ...policy, inetPort: milterPort, unixPath: milterSocket });
    let config = configFor(options.policy ?? {});
    let daemon = await PolicyDaemon.start(tb, config);
    const milter = { inetPort: milterPort };
    const hosts = options.hosts === undefined ? {} : { hosts: options.hosts };
    const [postfix, sendmail] = await Promise.all([
      PostfixInstance.start({ tb, sinkPort: sink.port, milter, sasl: [SASL_USER], ...hosts }),
      SendmailInstance.start({ tb, sinkPort: sink.port, milter, sasl: [SASL_USER], ...hosts }),
    ]);
    const bed: MailBed = {
      tb,
      sink,
      get daemon() {
        return daemon;
      },
      milterPort,
      milterSocket,
      postfix,
      sendmail,
      mtas: {
        postfix: {
          name: 'postfix',
          port: postfix.port,
          hostname: POSTFIX_HOSTNAME,
          log: () => postfix.log(),
        },
        sendmail: {
          name: 'sendmail',
          port: sendmail.port,
          hostname: SENDMAIL_HOSTNAME,
          log: () => Promise.resolve(sendmail.log()),
        },
      },
      stopDaemon: () => daemon.stop(),
      restartDaemon: async () => {
        daemon = await PolicyDaemon.start(tb, config);
      },
      reconfigure: async (policy: PolicyOptions) => {
        await daemon.stop();
        config = configFor(policy);
        daemon = await PolicyDaemon.start(tb, config);
      },
    };
    return bed;
  } catch (err) {
    await tb.teardown().catch(() => undefined);
    throw err;
  }
}

/** A unique EHLO name: decisions carry `helo`, so it ties log lines to one SMTP session. */
let sessionCounter = 0;
export function uniqueHelo(mta: MtaName, what: string): string {
  sessionCounter += 1;
  return `${what}-${sessionCounter}-${process.pid}.${mta}.client.example.test`;
}

/** Connects to an MTA from `from` and says EHLO with a unique name (or exactly `helo`). */
export async function openSession(
  mta: MtaUnderTest,
  what: string,
  from = '127.0.0.2',
  ehloName?: string,
): Promise<{ client: SmtpClient; helo: string }> {
  const client = await SmtpClient.connect({ port: mta.port, localAddress: from });
  const helo = ehloName ?? uniqueHelo(mta.name, what);
  const reply = await client.ehlo(helo);
  if (reply.code !== 250) throw new Error(`EHLO refused by ${mta.name}: ${reply.text}`);
  return { client, helo };
}

/** Decisions of the SMTP session that said EHLO `helo`. */
export function sessionDecisions(daemon: PolicyDaemon, helo: string): Decision[] {
  return daemon.decisions().filter((d) => d.helo === helo);
}

/** Waits for `count` decisions at `stage` from the session `helo`. */
export function waitSessionDecisions(
  daemon: PolicyDaemon,
  helo: string,
  stage: 'rcpt' | 'eom',
  count: number,
  timeoutMs = 10_000,
): Promise<Decision[]> {
  return daemon.waitForDecisions((d) => d.helo === helo && d.stage === stage, count, timeoutMs);
}
