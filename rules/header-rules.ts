// Admin-written header rules: (header, pattern, action, reply), evaluated in order at end of message;
// the first match decides. Patterns run on RE2 (re2-wasm): linear time whatever the input, no
// backreferences or lookaround (refused when the configuration loads), so an attacker-controlled
// header cannot make a rule blow up. Each header value is decoded (RFC 2047, 8-bit) and cut to
// `maxInput` characters before matching. Pure and synchronous once compiled.

import { RE2 } from 're2-wasm';
import type { Check, CheckBudget, CheckMode, CheckResult, OnError, PolicyInput, Verdict } from './check.js';
import { decodeHeader } from './header-text.js';
import { expandReply } from './reply-template.js';

export interface HeaderRuleSpec {
  readonly name: string;
  readonly header: string;
  readonly pattern: string;
  readonly flags: string;
  readonly action: 'reject' | 'tempfail' | 'discard' | 'tag' | 'observe';
  readonly reply: string;
}

interface Compiled extends HeaderRuleSpec {
  readonly re: RE2;
}

/** Compiles a rule's pattern with RE2; the problem when it cannot be (for configuration errors). */
export function compileRulePattern(
  pattern: string,
  flags: string,
): { ok: true; re: RE2 } | { ok: false; problem: string } {
  try {
    return { ok: true, re: new RE2(pattern, `${flags.replace(/[^ims]/g, '')}u`) };
  } catch (e) {
    return { ok: false, problem: e instanceof Error ? e.message : String(e) };
  }
}

export class HeaderRules implements Check {
  readonly name = 'header_rules';
  readonly stages = ['eom'] as const;
  readonly budgetMs = 1000;
  readonly onError: OnError = 'continue';
  readonly wants = 'headers' as const;
  private readonly rules: Compiled[];

  constructor(
    readonly mode: CheckMode,
    specs: readonly HeaderRuleSpec[],
    private readonly maxInput: number,
  ) {
    this.rules = specs.map((s) => {
      const c = compileRulePattern(s.pattern, s.flags);
      if (!c.ok) throw new Error(`header rule ${s.name}: ${c.problem}`);
      return { ...s, re: c.re };
    });
  }

  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const content = input.content;
    if (content === undefined) return { kind: 'pass' };
    const tags: string[] = [];
    const notes: string[] = [];
    for (const rule of this.rules) {
      const values = content.headersNamed(rule.header);
      const hit = values.find((v) => rule.re.test(decodeHeader(v).slice(0, this.maxInput)));
      if (hit === undefined) continue;
      const reason = `rule ${rule.name}: ${rule.header} matches /${rule.pattern}/${rule.flags}`;
      if (rule.action === 'tag') {
        tags.push(`header_rules: ${reason}`);
        continue;
      }
      if (rule.action === 'observe') {
        notes.push(`header_rules: ${reason}`);
        continue;
      }
      const reply = expandReply(rule.reply, { r: rule.name });
      const verdict: Verdict =
        rule.action === 'discard'
          ? { action: 'discard' }
          : { action: rule.action === 'tempfail' ? 'tempfail' : 'reject', reply };
      return { kind: 'hit', verdict, reason };
    }
    return {
      kind: 'pass',
      ...(notes.length > 0 ? { reason: notes.join('; ') } : {}),
      ...(tags.length > 0 ? { tags } : {}),
    };
  }
}
