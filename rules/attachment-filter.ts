// Dangerous attachments: at end of message, the MIME walk's file names (./attachments.ts, fed as
// the body streamed in) are judged against the extension list; a structure over the walk's limits
// (depth, parts, bytes) gets the configured verdict instead of being walked for ever. Asynchronous
// (the walk finishes behind the last body chunk).

import type { Check, CheckBudget, CheckMode, CheckResult, OnError, PolicyInput, Verdict } from './check.js';
import { dangerousAttachment } from './attachments.js';
import { expandReply } from './reply-template.js';

export interface AttachmentFilterOptions {
  readonly mode: CheckMode;
  readonly extensions: ReadonlySet<string>;
  readonly overLimit: 'reject' | 'tempfail' | 'accept';
  readonly reply: string;
  readonly overLimitReply: string;
  readonly budgetMs: number;
}

export class AttachmentFilter implements Check {
  readonly name = 'attachments';
  readonly stages = ['eom'] as const;
  readonly onError: OnError = 'continue';
  readonly wants = 'body' as const;
  readonly mode: CheckMode;
  readonly budgetMs: number;

  constructor(private readonly o: AttachmentFilterOptions) {
    this.mode = o.mode;
    this.budgetMs = o.budgetMs;
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult | Promise<CheckResult> {
    const scan = input.content?.attachments();
    if (scan === undefined || scan === null) return { kind: 'pass' };
    return scan.then((r): CheckResult => {
      for (const name of r.names) {
        const hit = dangerousAttachment(name, this.o.extensions);
        if (hit === null) continue;
        const verdict: Verdict = {
          action: 'reject',
          reply: expandReply(this.o.reply, { n: name, e: hit.extension, r: this.name }),
        };
        return { kind: 'hit', verdict, reason: `attachment ${JSON.stringify(name)}: ${hit.reason}` };
      }
      if (r.overLimit !== null && this.o.overLimit !== 'accept') {
        const reason = `MIME structure over the ${r.overLimit} limit (${r.parts} parts, depth ${r.depth}, ${r.bytes} bytes walked)`;
        const reply = expandReply(this.o.overLimitReply, { r: this.name });
        return { kind: 'hit', verdict: { action: this.o.overLimit, reply }, reason };
      }
      const notes = [
        r.names.length > 0 ? `${r.names.length} attachment name(s), none dangerous` : '',
        ...r.problems.slice(0, 3),
      ].filter((x) => x !== '');
      return notes.length > 0 ? { kind: 'pass', reason: notes.join('; ') } : { kind: 'pass' };
    });
  }
}
