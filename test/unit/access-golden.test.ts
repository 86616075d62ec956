// Ring (c): golden answers. The access map in test/golden/access-db/access and what the real
// sendmail 8.17 answered for each of its cases (recorded by the differential e2e test, run A) are
// replayed through the lookup engine and the policy checks in-process: every decision, and every
// refusal's code and text, must be sendmail's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AccessSnapshot } from '../../access-db/snapshot.js';
import { parseConfig } from '../../daemon/config.js';
import type { TransactionExplanation } from '../../daemon/explain.js';
import { explainTransaction } from '../../daemon/explain.js';
import { buildRuntime } from '../../daemon/runtime.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const DIR = path.join(PACKAGE_ROOT, 'test', 'golden', 'access-db');

interface GoldenCase {
  id: string;
  title: string;
  client: { address: string; name: string; resolve: string };
  from: string;
  rcpts: string[];
  reply: { mail: string; rcpt: string[]; data: string | null };
  outcome: { state: 'delivered' | 'held' | 'dropped' | 'none'; delivered: string[]; reason: string | null };
}

interface Meta {
  class_w: string[];
  relay_domains: string[];
}

/** Cases whose sendmail answer a milter cannot reproduce, with the reason. */
export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  'client:127.0.0.44:relay':
    'ERROR:5.7.1:450: sendmail sends the contradictory "450 5.7.1" as written; milter-policy sends 450 4.7.1 (RFC 3463 class; Postfix refuses a milter reply whose classes disagree)',
  'client:127.0.0.44:friend': 'as client:127.0.0.44:relay',
};

function klass(reply: string): 'accept' | 'reject' | 'tempfail' {
  return reply.startsWith('2') ? 'accept' : reply.startsWith('4') ? 'tempfail' : 'reject';
}

/** Our answer in sendmail's terms: the reply class, and the text for refusals. */
function compare(c: GoldenCase, x: TransactionExplanation): string[] {
  const problems: string[] = [];
  const mail = x.stages.find((s) => s.stage === 'mail');
  const rcpts = x.stages.filter((s) => s.stage === 'rcpt');
  const check = (
    what: string,
    want: string,
    got: { outcome: string; reply: string | null } | undefined,
  ): void => {
    if (got === undefined) {
      problems.push(`${what}: not evaluated; sendmail said ${JSON.stringify(want)}`);
      return;
    }
    const k = klass(want);
    const gotClass = got.outcome === 'discard' ? 'accept' : got.outcome;
    if (k !== gotClass) {
      problems.push(
        `${what}: sendmail ${JSON.stringify(want)}, ours ${got.outcome} ${JSON.stringify(got.reply)}`,
      );
    } else if (k !== 'accept' && got.reply !== want) {
      problems.push(`${what}: text: sendmail ${JSON.stringify(want)}, ours ${JSON.stringify(got.reply)}`);
    }
  };
  check('MAIL', c.reply.mail, mail);
  if (klass(c.reply.mail) !== 'accept') return problems;
  c.reply.rcpt.forEach((want, i) => check(`RCPT <${c.rcpts[i] ?? '?'}>`, want, rcpts[i]));
  const state = x.message.outcome;
  const m = x.message;
  switch (c.outcome.state) {
    case 'none':
      if (state !== 'refused') problems.push(`message: sendmail sent no DATA, ours ${state}`);
      break;
    case 'dropped':
      if (state !== 'discarded') problems.push(`message: sendmail discarded it, ours ${state}`);
      break;
    case 'held':
      if (state !== 'delivered' || m.quarantine === null)
        problems.push(
          `message: sendmail held it (${c.outcome.reason ?? ''}), ours ${state} quarantine=${String(m.quarantine)}`,
        );
      else if (c.outcome.reason !== null && m.quarantine !== c.outcome.reason)
        problems.push(
          `quarantine reason: sendmail ${JSON.stringify(c.outcome.reason)}, ours ${JSON.stringify(m.quarantine)}`,
        );
      break;
    case 'delivered': {
      const want = c.outcome.delivered.map((r) => `<${r}>`).sort();
      const got = [...m.recipients].sort();
      if (state !== 'delivered' || m.quarantine !== null)
        problems.push(
          `message: sendmail delivered it, ours ${state}${m.quarantine === null ? '' : ' (held)'}`,
        );
      else if (JSON.stringify(want) !== JSON.stringify(got))
        problems.push(`recipients: sendmail ${want.join(',')}, ours ${got.join(',')}`);
      break;
    }
  }
  return problems;
}

describe('access_db golden answers (real sendmail 8.17)', () => {
  const text = readFileSync(path.join(DIR, 'access'), 'latin1');
  const meta = JSON.parse(readFileSync(path.join(DIR, 'sendmail-8.17.meta.json'), 'utf8')) as Meta;
  const cases = readFileSync(path.join(DIR, 'sendmail-8.17.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as GoldenCase);

  it('replays every case with sendmail’s decision, code and text', async () => {
    const yaml = JSON.stringify({
      domains: { local: meta.class_w, relay: meta.relay_domains },
      trusted_networks: ['127.0.0.1/32', '::1/128'],
      access_db: {
        file: path.join(DIR, 'access'),
        blocklist_recipients: true,
        delay_checks: true,
        spam: 'friend',
      },
    });
    const conf = await parseConfig(yaml, path.join(DIR, 'config.yaml'));
    assert.ok(conf.ok, conf.ok ? '' : conf.errors.join('\n'));
    const snap = AccessSnapshot.fromText(text, path.join(DIR, 'access'), { skip: false });
    assert.ok(snap.ok);
    const runtime = buildRuntime(conf.config, 1, snap.snapshot);
    const failures: string[] = [];
    let compared = 0;
    for (const c of cases) {
      const x = explainTransaction(runtime, {
        clientAddress: c.client.address,
        ...(c.client.name.startsWith('[') ? {} : { clientName: c.client.name }),
        resolve: c.client.resolve,
        sender: c.from === '' ? '<>' : `<${c.from}>`,
        recipients: c.rcpts.map((r) => `<${r}>`),
        mta: 'sendmail',
        mtaHost: 'sendmail.example.test',
      });
      const problems = compare(c, x);
      compared++;
      if (problems.length > 0 && KNOWN_DIFFERENCES[c.id] === undefined)
        failures.push(`${c.id} (${c.title}):\n    ${problems.join('\n    ')}`);
    }
    assert.ok(compared >= 200, `at least 200 cases (got ${compared})`);
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${compared} cases differ from sendmail:\n  ${failures.join('\n  ')}`,
    );
  });
});
