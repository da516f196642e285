import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import type { Inventory } from '../inventory/schema.js';
import type { Reporter, RunEvent } from './events.js';
import { selectHosts, type Playbook, type Selector } from './playbook.js';
import { selectSteps, stepIndex } from './steps.js';

/** The journal's file name in the inventory's state folder. */
export const JOURNAL_FILE = 'journal.jsonl';

/**
 * A reporter that appends every event, with its run id, as one JSON line to
 * `<stateDir>/journal.jsonl` (synchronously, so a crash loses nothing already emitted).
 */
export function journalReporter(stateDir: string, runId: string): Reporter {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, JOURNAL_FILE);
  return {
    emit(event: RunEvent) {
      appendFileSync(file, `${JSON.stringify({ runId, ...event })}\n`, { mode: 0o600 });
    },
  };
}

/** One line of the journal: an event with the id of its run. */
export type JournalEntry = RunEvent & { runId: string };

type RunStart = Extract<JournalEntry, { type: 'run_start' }>;
type RunEnd = Extract<JournalEntry, { type: 'run_end' }>;

/** One journaled run: its run_start, its run_end (absent when the run was killed), every event of it in order. */
export interface JournaledRun {
  start: RunStart;
  end?: RunEnd;
  events: JournalEntry[];
}

/**
 * The last run of playbook `playbook` in `<stateDir>/journal.jsonl` that was not in check mode
 * (`plan` changes no host, so it has nothing to retry), or undefined (no such run, no journal).
 * Reads the file from its end and parses only the lines back to that run's start; a line that is
 * not JSON (the last one of a run killed while writing it) is skipped.
 * @throws the file's read error other than ENOENT.
 */
export function lastRun(stateDir: string, playbook: string): JournaledRun | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(stateDir, JOURNAL_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const lines = text.split('\n');
  const tail: JournalEntry[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    let entry: JournalEntry;
    try {
      entry = JSON.parse(lines[i] as string) as JournalEntry;
    } catch {
      continue;
    }
    if (entry.type === 'run_start' && entry.playbook === playbook && !entry.check) {
      // Runs of other playbooks (a `plan` beside it) may be interleaved: keep this run's events.
      const events = [entry, ...tail.reverse().filter((e) => e.runId === entry.runId)];
      const end = events.find((e): e is RunEnd => e.type === 'run_end');
      return { start: entry, ...(end ? { end } : {}), events };
    }
    tail.push(entry);
  }
  return undefined;
}

/**
 * What `--retry-failed` does, decided from the last run: `none` (nothing to retry: `message` says
 * why) or `retry`: the hosts that failed, from the step they failed at (0-based `index` in the
 * playbook), limited to `limit` (the hosts the failed run's --limit selected, within this run's).
 * `behind`: hosts the failed run would have taken through the steps after that one, which the
 * retry leaves out (those steps never ran there in that run); `resume` the failed run's resume command.
 */
export type RetryDecision =
  | { kind: 'none'; message: string }
  | { kind: 'retry'; runId: string; step: string; index: number; hosts: string[]; limit: string[]; behind: string[]; resume?: string; message: string };

/**
 * Decides what `--retry-failed` of `pb` on `inv` (within `limit`, this run's --limit) does after
 * `run` (from {@link lastRun}). The failed hosts come from run_end (`failedStep`, `failedHosts`),
 * or, in a journal written before those fields, from the run's failed task, handler and gate events.
 * @throws InputError (exit 2) when the run has no end (killed: which hosts failed is not known) or
 *   its failed step is not in `pb` any more.
 */
export function retryDecision(run: JournaledRun | undefined, pb: Playbook, inv: Inventory, limit: Selector, journal: string): RetryDecision {
  if (!run) return { kind: 'none', message: `nothing to retry: ${journal} holds no run of playbook ${pb.name} that changed hosts` };
  const { start, end } = run;
  const what = `the last run of playbook ${pb.name} (${start.runId}, started ${start.time})`;
  if (!end) {
    const started = run.events.filter((e) => e.type === 'step_start').pop();
    throw new InputError(
      `--retry-failed: ${what} has no end in ${journal} (killed, or this machine went down): which hosts failed is not known. ` +
        `Release the run lock if it is still held (airflow-ha lock release), then ${started ? `resume it on every host with --from-step "${started.step}"` : 'run it again'}`,
    );
  }
  if (end.ok) return { kind: 'none', message: `nothing to retry: ${what} succeeded` };
  const { step, hosts: failed } = end.failedStep !== undefined ? { step: end.failedStep, hosts: end.failedHosts ?? [] } : failedInEvents(run.events);
  if (step === undefined) {
    const cause = (end.error ?? '').split('\n')[0];
    return { kind: 'none', message: `nothing to retry: ${what} failed before its first step (exit ${end.exitCode}${cause ? `: ${cause}` : ''}); run it again without --retry-failed` };
  }
  const index = stepIndex(pb, step, '--retry-failed');
  const allowed = new Set(selectHosts(inv, limit).map((h) => h.name));
  const scope = new Set(start.limit ?? start.hosts);
  const inScope = inv.hosts.filter((h) => scope.has(h.name) && allowed.has(h.name)).map((h) => h.name);
  const hosts = inScope.filter((h) => failed.includes(h));
  if (hosts.length === 0) {
    return { kind: 'none', message: `nothing to retry: the hosts that failed in ${what} at step "${step}" (${failed.join(', ')}) are not in this inventory or --limit` };
  }
  const later = selectSteps(pb, inv, { names: inScope }, { step: index + 1 }).filter((s) => s.runs);
  const behind = inScope.filter((h) => !hosts.includes(h) && later.some((s) => s.hosts.some((x) => x.name === h)));
  return {
    kind: 'retry',
    runId: start.runId,
    step,
    index,
    hosts,
    limit: inScope,
    behind,
    ...(end.resume ? { resume: end.resume } : {}),
    message: `retrying ${hosts.join(', ')} from step "${step}": ${hosts.length === 1 ? 'it' : 'they'} failed there in run ${start.runId} (started ${start.time})`,
  };
}

/** The first step with a failed task, handler or gate among `events`, and the hosts that failed in it (a journal without run_end.failedStep). */
function failedInEvents(events: readonly JournalEntry[]): { step?: string; hosts: string[] } {
  const failures = events.filter((e) => (e.type === 'task' || e.type === 'handler' || e.type === 'gate') && e.status === 'failed') as Array<{ step: string; host: string }>;
  const step = failures[0]?.step;
  return { ...(step !== undefined ? { step } : {}), hosts: [...new Set(failures.filter((f) => f.step === step).map((f) => f.host))] };
}
