/**
 * `--list-steps`, `--from-step` and `--retry-failed` of the commands that run a playbook: which
 * steps a run runs and on which hosts (src/run/steps.ts), decided before anything connects, and
 * the command line that resumes a failed run.
 */
import { quote } from '../core/cmd.js';
import { InputError } from '../core/errors.js';
import type { LoadedInventory } from '../inventory/load.js';
import { parseLimit, type Playbook, type Selector } from '../run/playbook.js';
import { JOURNAL_FILE, lastRun, retryDecision } from '../run/journal.js';
import { listSteps, selectSteps, stepIndex, type StepListing, type StepStart } from '../run/steps.js';
import type { Io } from './run.js';
import path from 'node:path';

/** The flags of a run that choose its steps and hosts. */
export interface StepFlags {
  limit?: string;
  json?: boolean;
  listSteps?: boolean;
  fromStep?: string;
  retryFailed?: boolean;
}

/** What a run runs: its `--limit` (for a retry: the failed run's, within this one's), where it starts, which run it retries. */
export interface RunSelection {
  limit: Selector;
  start?: StepStart;
  retryOf?: string;
}

/**
 * Decides the steps and hosts of a run of `pb` from `flags`, offline. Prints the retry decision
 * (`--retry-failed`; with `--json` as one `{"type":"retry",...}` line on stdout) and, with
 * `--list-steps`, the listing. Returns undefined when the command is done (listed, or nothing to
 * retry: exit 0), else what to run.
 * @throws InputError (exit 2): a bad --limit, an unknown --from-step, a last run without an end.
 */
export function selectRun(io: Io, loaded: LoadedInventory, pb: Playbook, flags: StepFlags): RunSelection | undefined {
  const inv = loaded.inventory;
  let limit: Selector;
  try {
    limit = parseLimit(inv, flags.limit);
  } catch (e) {
    throw new InputError((e as Error).message);
  }
  let selection: RunSelection = { limit, ...(flags.fromStep !== undefined ? { start: { step: stepIndex(pb, flags.fromStep) } } : {}) };
  if (flags.retryFailed) {
    const journal = path.join(loaded.stateDir, JOURNAL_FILE);
    const decision = retryDecision(lastRun(loaded.stateDir, pb.name), pb, inv, limit, journal);
    if (flags.json) io.out(`${JSON.stringify({ type: 'retry', ...decision })}\n`);
    else io.out(`${decision.message}\n`);
    if (decision.kind === 'none') return undefined;
    if (decision.behind.length > 0 && !flags.json) {
      const next = decision.resume ? `\`${decision.resume}\` runs them on every host` : `--from-step "${decision.step}" runs them on every host`;
      io.out(`note: in that run the steps after "${decision.step}" did not run on ${decision.behind.join(', ')}; ${next}\n`);
    }
    selection = { limit: { names: decision.limit }, start: { step: decision.index, hosts: decision.hosts }, retryOf: decision.runId };
  }
  if (flags.listSteps) {
    const listing = listSteps(selectSteps(pb, inv, selection.limit, selection.start));
    const from = selection.start?.step ?? 0;
    io.out(flags.json ? `${JSON.stringify({ playbook: pb.name, description: pb.description, steps: listing })}\n` : stepsText(pb, listing, from));
    return undefined;
  }
  return selection;
}

/**
 * `--list-steps` for people: one line per step, its hosts, whether it rolls, its gate, whether it
 * runs; `from` is the 0-based index of the first step the run starts at.
 */
export function stepsText(pb: Playbook, steps: readonly StepListing[], from = 0): string {
  const hosts = new Set(steps.filter((s) => s.runs).flatMap((s) => [...s.hosts, ...s.gateReads]));
  const w = Math.max(...steps.map((s) => s.name.length));
  const start = pb.steps[from]?.name ?? '';
  const lines = steps.map((s) => {
    const parts = [`${selectorText(s.selector)}: ${s.hosts.length ? s.hosts.join(', ') : 'no host'}`];
    if (s.serial !== null) parts.push(`rolling, ${s.serial} host${s.serial === 1 ? '' : 's'} at a time`);
    if (s.gate) parts.push(`gate on ${s.gate.on === 'first' ? 'the first host' : 'each host'} (timeout ${s.gate.timeoutSec} s): ${s.gate.name}`);
    if (s.gateReads.length) parts.push(`the gate also reads ${s.gateReads.join(', ')} (not retried)`);
    if (!s.runs) parts.push(s.index - 1 < from ? `not run: before "${start}"` : 'not run: no host');
    return `${String(s.index).padStart(3)}  ${s.name.padEnd(w)}  ${parts.join(' | ')}`;
  });
  return `playbook ${pb.name}: ${steps.length} steps, ${steps.filter((s) => s.runs).length} to run, on ${hosts.size} host(s); every step ends with a barrier (the next starts once all its hosts are done)\n${lines.join('\n')}\n`;
}

function selectorText(sel: Selector): string {
  const only = sel.onlyWith ? ` (only with a ${sel.onlyWith} host)` : '';
  if (sel.all) return `all hosts${only}`;
  const parts = [];
  if (sel.roles?.length) parts.push(`${sel.roles.length > 1 ? 'roles' : 'role'} ${sel.roles.join(', ')}`);
  if (sel.names?.length) parts.push(`${sel.names.length > 1 ? 'hosts' : 'host'} ${sel.names.join(', ')}`);
  return (parts.join(' + ') || 'no selector') + only;
}

/**
 * The command line that resumes a failed run from `step`: `airflow-ha` and `words` (the run's
 * arguments as given, `--limit` included) with any `--from-step` replaced by `--from-step STEP`,
 * every word POSIX-quoted (quote in src/core/cmd.ts). A `--retry-failed` run is resumed by the
 * same command (it reads the journal again: the hosts that failed in it, from their step).
 */
export function resumeCommand(words: readonly string[], step: string): string {
  if (words.includes('--retry-failed')) return ['airflow-ha', ...words].map(quote).join(' ');
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '--from-step') i++;
    else if (!w.startsWith('--from-step=')) kept.push(w);
  }
  return ['airflow-ha', ...kept, '--from-step', step].map(quote).join(' ');
}
