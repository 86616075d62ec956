// The policy engine: enabled checks compiled into one ordered list per stage when the
// configuration loads, and the rules for combining their results (architecture.md §5-§7):
//   - first final verdict wins, in configured order; `ok` is final too (later checks are skipped);
//   - a check in observe mode (or the whole engine in observe mode) has its hit recorded as
//     `observed` and enforced as a pass;
//   - a check that errors or runs out of time neither accepts nor rejects: it applies its on_error —
//     `defer_if_permit` (default: a 4xx only if the stage would otherwise accept), `tempfail`
//     (4xx now) or `continue` (ignore the failure);
//   - every check has a time budget, and the stage as a whole has one; a check still running when
//     either ends is an error result, never a hang.
// Synchronous checks run without promises or timers; the engine switches to async only when a
// check returns a Promise. Called by the daemon's policy adapter once per stage event.

import type { SmtpReply } from '../milter/reply-text.js';
import type {
  Check,
  CheckBudget,
  CheckResult,
  HeaderAddition,
  OnError,
  PolicyInput,
  PolicyStage,
  SettledOutcome,
  Verdict,
} from './check.js';
import { POLICY_STAGES } from './check.js';

/** sendmail's reply for a temporary lookup failure (access map), used for deferred errors. */
export const DEFER_REPLY: SmtpReply = {
  code: 451,
  dsn: '4.3.0',
  text: 'Temporary system failure. Please try again later.',
};

export interface TraceEntry {
  readonly check: string;
  /** The rule that matched (`file:line`), when the check names one. */
  readonly entry?: string;
  /** For passes: what parts of the check in observe mode would have done. */
  readonly observed?: readonly string[];
  readonly result: 'pass' | 'hit' | 'observed' | 'tagged' | 'skip' | 'error';
  readonly reason?: string;
  /** For hits and observed hits: what the check wanted. */
  readonly action?: Verdict['action'];
  readonly reply?: SmtpReply;
}

export interface StageOutcome {
  /** The combined verdict; null = no check objected (the subject is accepted). */
  readonly verdict: Verdict | null;
  readonly decidedBy: string | null;
  readonly reason: string | null;
  /** The rule (`file:line`) behind the verdict, when the deciding check names one. */
  readonly entry: string | null;
  readonly trace: readonly TraceEntry[];
  readonly addHeaders: readonly HeaderAddition[];
  /** The last quarantine reason a passing check gave, if any. */
  readonly quarantine: string | null;
  /** Tag-mode findings: headers to add at end of message, `check: reason`. */
  readonly tags: readonly string[];
}

export interface EngineOptions {
  /** Global observe mode: log every hit, enforce none. */
  readonly observe: boolean;
  /** Budget for all checks of one stage together. */
  readonly stageBudgetMs: number;
}

const EMPTY: StageOutcome = Object.freeze({
  verdict: null,
  decidedBy: null,
  reason: null,
  entry: null,
  trace: [],
  addHeaders: [],
  quarantine: null,
  tags: [],
});

class LazyBudget implements CheckBudget {
  private controller: AbortController | null = null;
  constructor(readonly ms: number) {}
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
  abort(reason: string): void {
    this.controller?.abort(new Error(reason));
  }
}

/** Accumulates one stage's evaluation. */
class StageRun {
  verdict: Verdict | null = null;
  decidedBy: string | null = null;
  reason: string | null = null;
  entry: string | null = null;
  readonly trace: TraceEntry[] = [];
  addHeaders: HeaderAddition[] | null = null;
  quarantine: string | null = null;
  tags: string[] | null = null;
  deferred: { check: string; error: string } | null = null;
  deadline = 0;

  constructor(private readonly observeAll: boolean) {}

  /** Records one result; true when the stage is decided. */
  apply(check: Check, r: CheckResult): boolean {
    switch (r.kind) {
      case 'pass': {
        if (r.reason !== undefined || r.observed !== undefined) {
          this.trace.push({
            check: check.name,
            result: 'pass',
            ...(r.reason === undefined ? {} : { reason: r.reason }),
            ...(r.entry === undefined ? {} : { entry: r.entry }),
            ...(r.observed === undefined ? {} : { observed: r.observed }),
          });
        }
        if (r.addHeaders !== undefined && r.addHeaders.length > 0)
          (this.addHeaders ??= []).push(...r.addHeaders);
        const enforced = !this.observeAll && check.mode !== 'observe';
        if (r.quarantine !== undefined && enforced) this.quarantine = r.quarantine;
        if (r.tags !== undefined && r.tags.length > 0 && enforced) (this.tags ??= []).push(...r.tags);
        return false;
      }
      case 'skip':
        this.trace.push({ check: check.name, result: 'skip', reason: r.reason });
        return false;
      case 'error':
        this.trace.push({ check: check.name, result: 'error', reason: r.error });
        return this.onError(check.name, check.onError, r.error);
      case 'hit': {
        const reply =
          r.verdict.action === 'reject' || r.verdict.action === 'tempfail' ? r.verdict.reply : undefined;
        const observed = check.mode === 'observe' || this.observeAll;
        const tagged = !observed && check.mode === 'tag' && r.verdict.action !== 'ok';
        this.trace.push({
          check: check.name,
          result: observed ? 'observed' : tagged ? 'tagged' : 'hit',
          reason: r.reason,
          action: r.verdict.action,
          ...(reply === undefined ? {} : { reply }),
          ...(r.entry === undefined ? {} : { entry: r.entry }),
        });
        if (observed) return false;
        if (tagged) {
          (this.tags ??= []).push(`${check.name}: ${r.reason}`);
          return false;
        }
        if (r.quarantine !== undefined) this.quarantine = r.quarantine;
        this.verdict = r.verdict;
        this.decidedBy = check.name;
        this.reason = r.reason;
        this.entry = r.entry ?? null;
        return true;
      }
    }
  }

  private onError(check: string, onError: OnError, error: string): boolean {
    switch (onError) {
      case 'continue':
        return false;
      case 'defer_if_permit':
        this.deferred ??= { check, error };
        return false;
      case 'tempfail':
        if (this.observeAll) return false;
        this.verdict = { action: 'tempfail', reply: DEFER_REPLY };
        this.decidedBy = check;
        this.reason = `${check} failed: ${error}`;
        return true;
    }
  }

  finish(): StageOutcome {
    if (
      this.deferred !== null &&
      !this.observeAll &&
      (this.verdict === null || this.verdict.action === 'ok')
    ) {
      this.verdict = { action: 'tempfail', reply: DEFER_REPLY };
      this.decidedBy = this.deferred.check;
      this.reason = `defer_if_permit: ${this.deferred.check} failed: ${this.deferred.error}`;
    }
    return {
      verdict: this.verdict,
      decidedBy: this.decidedBy,
      reason: this.reason,
      entry: this.entry,
      trace: this.trace,
      addHeaders: this.addHeaders ?? [],
      quarantine: this.quarantine,
      tags: this.tags ?? [],
    };
  }
}

export class PolicyEngine {
  private readonly pipelines: ReadonlyMap<PolicyStage, readonly Check[]>;
  private readonly settlers: ReadonlyMap<PolicyStage, readonly Check[]>;
  private readonly watchers: ReadonlyMap<PolicyStage, readonly Check[]>;
  /** Stages at least one enabled check runs at. */
  readonly stages: ReadonlySet<PolicyStage>;
  /** What of the message end-of-message checks want: nothing, headers, or headers and body. */
  readonly content: 'none' | 'headers' | 'body';

  constructor(
    readonly checks: readonly Check[],
    private readonly options: EngineOptions,
  ) {
    const pipelines = new Map<PolicyStage, Check[]>();
    for (const stage of POLICY_STAGES) {
      const list = checks.filter((c) => c.stages.includes(stage));
      if (list.length > 0) pipelines.set(stage, list);
    }
    this.pipelines = pipelines;
    this.stages = new Set(pipelines.keys());
    const settlers = new Map<PolicyStage, Check[]>();
    for (const [stage, list] of pipelines) {
      const s = list.filter((c) => c.settled !== undefined);
      if (s.length > 0) settlers.set(stage, s);
    }
    this.settlers = settlers;
    const watchers = new Map<PolicyStage, Check[]>();
    for (const stage of POLICY_STAGES) {
      const list = checks.filter((c) => c.watch !== undefined && (c.watches ?? []).includes(stage));
      if (list.length > 0) watchers.set(stage, list);
    }
    this.watchers = watchers;
    this.watched = new Set(watchers.keys());
    const wants = checks.map((c) => c.wants);
    this.content = wants.includes('body') ? 'body' : wants.includes('headers') ? 'headers' : 'none';
  }

  /** Stages some check watches (Check.watch): the daemon passes them on without a reply. */
  readonly watched: ReadonlySet<PolicyStage>;

  /** Tells the checks that watch this stage that it happened (Check.watch). */
  watch(stage: PolicyStage, input: PolicyInput): void {
    const list = this.watchers.get(stage);
    if (list === undefined) return;
    for (const check of list) {
      try {
        check.watch?.(input);
      } catch {
        // watching only counts; it must not disturb the session
      }
    }
  }

  /** Tells the checks of the stage that want to know how it ended (Check.settled). */
  settle(stage: PolicyStage, input: PolicyInput, outcome: SettledOutcome): void {
    const list = this.settlers.get(stage);
    if (list === undefined) return;
    for (const check of list) {
      try {
        check.settled?.(input, outcome);
      } catch {
        // a settle hook only counts; a failure there must not change the reply already decided
      }
    }
  }

  evaluate(stage: PolicyStage, input: PolicyInput): StageOutcome | Promise<StageOutcome> {
    const list = this.pipelines.get(stage);
    if (list === undefined) return EMPTY;
    return this.runFrom(list, 0, new StageRun(this.options.observe), input);
  }

  private runFrom(
    list: readonly Check[],
    start: number,
    run: StageRun,
    input: PolicyInput,
  ): StageOutcome | Promise<StageOutcome> {
    for (let i = start; i < list.length; i++) {
      const check = list[i] as Check;
      const budget = new LazyBudget(check.budgetMs);
      let r: CheckResult | Promise<CheckResult>;
      try {
        r = check.run(input, budget);
      } catch (e) {
        r = { kind: 'error', error: errorText(e) };
      }
      if (r instanceof Promise) return this.continueAsync(r, budget, list, i, run, input);
      if (run.apply(check, r)) return run.finish();
    }
    return run.finish();
  }

  private async continueAsync(
    pending: Promise<CheckResult>,
    budget: LazyBudget,
    list: readonly Check[],
    index: number,
    run: StageRun,
    input: PolicyInput,
  ): Promise<StageOutcome> {
    const now = performance.now();
    if (run.deadline === 0) run.deadline = now + this.options.stageBudgetMs;
    const limit = Math.max(0, Math.min(budget.ms, run.deadline - now));
    const check = list[index] as Check;
    const r = await withTimeout(
      pending,
      limit,
      budget,
      check.budgetMs <= run.deadline - now ? 'check budget' : 'stage budget',
    );
    if (run.apply(check, r)) return run.finish();
    return this.runFrom(list, index + 1, run, input);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function withTimeout(
  p: Promise<CheckResult>,
  ms: number,
  budget: LazyBudget,
  which: string,
): Promise<CheckResult> {
  return new Promise<CheckResult>((resolve) => {
    const timer = setTimeout(() => {
      budget.abort(`${which} of ${ms} ms exhausted`);
      resolve({ kind: 'error', error: `timed out (${which} of ${Math.round(ms)} ms)` });
    }, ms);
    p.then(
      (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      (e: unknown) => {
        clearTimeout(timer);
        resolve({ kind: 'error', error: errorText(e) });
      },
    );
  });
}
