import { Chalk, type ChalkInstance } from 'chalk';
import type { HostSummary, Reporter, RunEvent } from '../run/events.js';

/** Where output goes; injected so tests can capture it. */
export interface Streams {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stdout is a terminal (live progress, and the screen cleared by `status --watch`, only then). */
  isTTY: boolean;
  /** Whether to colour the output (ANSI SGR): the terminal's default, NO_COLOR and FORCE_COLOR decide (src/cli/main.ts colourWanted). */
  colour: boolean;
}

/** Options shared by the people-facing reporters. */
export interface HumanOptions {
  /** Print unified diffs of changed files (always on in check mode). */
  diff: boolean;
  /** Print `ok` tasks too, not only changed and failed ones. */
  verbose: boolean;
}

/** One JSON object per line on stdout (`--json`); field names are those of RunEvent. */
export function jsonReporter(s: Streams): Reporter {
  return { emit: (e) => s.out(`${JSON.stringify(e)}\n`) };
}

/** A chalk that colours (16 basic colours) when `enabled`, and leaves text as it is otherwise. */
export function colours(enabled: boolean): ChalkInstance {
  return new Chalk({ level: enabled ? 1 : 0 });
}

/** Lines of the end-of-run table: one per host with ok/changed/failed and seconds. */
export function recapLines(hosts: readonly HostSummary[], c: ChalkInstance): string[] {
  const w = Math.max(4, ...hosts.map((h) => h.host.length));
  const lines = [`${'host'.padEnd(w)}  ${'ok'.padStart(4)} ${'changed'.padStart(8)} ${'failed'.padStart(7)} ${'seconds'.padStart(8)}`];
  for (const h of hosts) {
    const changed = String(h.changed).padStart(8);
    const failed = String(h.failed).padStart(7);
    lines.push(
      `${h.host.padEnd(w)}  ${String(h.ok).padStart(4)} ${h.changed ? c.yellow(changed) : changed} ${h.failed ? c.red(failed) : failed} ${h.seconds.toFixed(2).padStart(8)}`,
    );
  }
  return lines;
}

/** Colours the lines of a unified diff. */
function colourDiff(diff: string, c: ChalkInstance): string {
  return diff
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? c.green(l) : l.startsWith('-') && !l.startsWith('---') ? c.red(l) : l))
    .join('\n');
}

/**
 * Text lines describing one event for people, or [] for events shown only in JSON.
 * Shared by the plain and the live (listr2) renderers.
 */
export function eventLines(e: RunEvent, opts: HumanOptions & { check: boolean }, c: ChalkInstance): string[] {
  switch (e.type) {
    case 'run_start':
      return [
        c.bold(
          `${e.check ? 'PLAN (check mode: nothing will be changed)' : 'APPLY'} playbook ${e.playbook} on ${e.hosts.length} host(s)` +
            `${e.fromStep ? ` from step "${e.fromStep}"` : ''}${e.retryOf ? ` (retrying the hosts that failed in run ${e.retryOf})` : ''}`,
        ),
      ];
    case 'connect':
      // Unreachable hosts are listed once, in the run's closing error.
      return [];
    case 'preflight': {
      const label = e.severity === 'refuse' ? c.red('refuse ') : c.yellow('warn   ');
      return [`  ${label} ${e.host}: [${e.rule}] ${e.message}`, `           fix: ${e.fix}`];
    }
    case 'fingerprint':
      // A difference is told once, in the run's closing error; the rest is for --json and the journal.
      return [];
    case 'step_start':
      return [c.bold(`== ${e.step} [${e.hosts.join(', ')}]`)];
    case 'drill':
      return [`${e.phase === 'failed' ? c.red('drill') : c.bold('drill')} ${e.scenario} ${e.phase}: ${e.message}`];
    case 'task': {
      if (e.status === 'ok' && !opts.verbose) return [];
      const label = e.status === 'failed' ? c.red('failed ') : e.status === 'changed' ? c.yellow(opts.check ? 'would  ' : 'changed') : c.green('ok     ');
      const lines = [`  ${label} ${e.host}: ${e.task}`];
      for (const ch of e.changes) lines.push(`           ${ch}`);
      if (e.error) lines.push(...e.error.split('\n').map((l) => `           ${c.red(l)}`));
      if (e.diff && (opts.diff || opts.check)) lines.push(...colourDiff(e.diff.trimEnd(), c).split('\n').map((l) => `           ${l}`));
      return lines;
    }
    case 'handler':
      return [`  ${e.status === 'failed' ? c.red('failed ') : c.yellow(opts.check ? 'would  ' : 'handler')} ${e.host}: ${e.handler}${e.error ? ` ${c.red(e.error)}` : ''}`];
    case 'gate':
      // Per host only when it failed; passing gates are summed up in the step's closing line.
      if (e.status !== 'failed') return [];
      return [`  ${c.red('gate   ')} ${e.host}: ${e.gate} ${c.red('FAILED')} after ${e.seconds.toFixed(1)} s${e.error ? `\n           ${c.red(e.error)}` : ''}`];
    case 'step_end':
      return [
        ...(e.gate?.ok ? [`   gate "${e.gate.name}" passed on ${e.gate.hosts} host(s) in ${e.gate.seconds.toFixed(2)} s`] : []),
        `   ${e.ok} ok, ${e.changed ? c.yellow(`${e.changed} ${opts.check ? 'to change' : 'changed'}`) : `0 ${opts.check ? 'to change' : 'changed'}`}, ${e.failed ? c.red(`${e.failed} failed`) : '0 failed'} in ${e.seconds.toFixed(2)} s${e.skipped.length ? `; not run on ${e.skipped.join(', ')}` : ''}`,
      ];
    case 'run_end': {
      const total = e.hosts.reduce((a, h) => a + h.changed, 0);
      const verdict = e.ok
        ? c.green(`OK: ${total} ${opts.check ? 'change(s) to make' : 'change(s)'} on ${e.hosts.length} host(s) in ${e.seconds.toFixed(2)} s`)
        : c.red(`FAILED (exit ${e.exitCode}) after ${e.seconds.toFixed(2)} s`);
      // Nothing ran when a host was unreachable, the lock was held or the preflight refused: no table of zeros.
      const ran = ![2, 3, 4].includes(e.exitCode) || e.hosts.some((h) => h.ok + h.changed + h.failed > 0);
      return ['', ...(ran ? [...recapLines(e.hosts, c), ''] : []), ...(e.error ? [c.red(e.error)] : []), verdict, ...(e.resume ? [`resume: ${e.resume}`] : [])];
    }
  }
}

/** Plain lines, for logs and pipes: only changes, failures, gates and the recap (`-v` adds ok tasks). */
export function plainReporter(s: Streams, opts: HumanOptions): Reporter {
  const c = colours(s.colour);
  let check = false;
  return {
    emit(e) {
      if (e.type === 'run_start') check = e.check;
      const lines = eventLines(e, { ...opts, check }, c);
      if (lines.length) s.out(`${lines.join('\n')}\n`);
    },
  };
}

