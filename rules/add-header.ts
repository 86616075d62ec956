// Adds one header to every message that reaches end of message, e.g.
// `X-Milter-Policy: milter-policy 0.1.0 on mx.example.org`. It shows downstream that the message
// passed the policy (and proves end-of-message changes work). Template fields: {version},
// {mta_host} (macro j), {queue_id} (macro i). Pure and synchronous.

import type { Check, CheckBudget, CheckResult, PolicyInput } from './check.js';

export class AddHeader implements Check {
  readonly name = 'add_header';
  readonly stages = ['eom'] as const;
  readonly mode = 'enforce' as const;
  readonly budgetMs = 1000;
  readonly onError = 'continue' as const;

  constructor(
    private readonly header: string,
    private readonly template: string,
    private readonly version: string,
  ) {}

  run(input: PolicyInput, _budget: CheckBudget): CheckResult {
    const value = this.template.replace(/\{(version|mta_host|queue_id)\}/g, (_m, field: string) => {
      const v = field === 'version' ? this.version : input.macro(field === 'mta_host' ? 'j' : 'i');

      return (v ?? 'unknown').replace(/[\r\n\0]/g, ' ');
    });
    return { kind: 'pass', addHeaders: [{ name: this.header, value }] };
  }
}
