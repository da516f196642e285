/**
 * Exit codes of the CLI (documented in README.md "Exit codes").
 * 0 ok · 1 a task failed · 2 bad input or a refused preflight · 3 a host unreachable · 4 the run lock is held.
 */
export const ExitCode = {
  ok: 0,
  taskFailed: 1,
  badInput: 2,
  unreachable: 3,
  lockHeld: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error the CLI turns into an exit code and a one-screen message. */
export class AirflowHaError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Where in an input file a problem is: 1-based line and column. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One finding of inventory validation. `path` is the YAML path (e.g. `hosts[3].address`). */
export interface Diagnostic {
  severity: 'error' | 'warning';
  pos: SourcePos;
  path: string;
  /** The offending value as written (stringified), or undefined when something is missing. */
  value?: string;
  /** The rule broken, a short stable identifier such as `unique-address`. */
  rule: string;
  message: string;
}

/** Formats a diagnostic as `file:line:col: error [rule] message (value: x)`. */
export function formatDiagnostic(d: Diagnostic): string {
  const value = d.value === undefined ? '' : ` (value: ${d.value})`;
  return `${d.pos.file}:${d.pos.line}:${d.pos.col}: ${d.severity} [${d.rule}] ${d.path}: ${d.message}${value}`;
}

/** Bad input (inventory, flags, secrets file). Exit code 2; nothing was touched. */
export class InputError extends AirflowHaError {
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[] = [],
  ) {
    super(message, ExitCode.badInput);
  }
}

/** A preflight refusal as the error carries it: host, rule, what is missing, the fix. */
export interface Refusal {
  host: string;
  rule: string;
  message: string;
  fix: string;
}

/**
 * The preflight refused the run (src/preflight/rules.ts): exit code 2, nothing was touched (no lock
 * taken, no step run). One screen: each refusal with its host, rule, what and fix.
 */
export class PreflightError extends AirflowHaError {
  constructor(readonly refusals: readonly Refusal[]) {
    const hosts = [...new Set(refusals.map((r) => r.host))];
    super(
      `preflight refused the run on ${hosts.length} host(s) (${hosts.join(', ')}); nothing was changed:\n${refusals
        .map((r) => `  ${r.host}: [${r.rule}] ${r.message}\n      fix: ${r.fix}`)
        .join('\n')}`,
      ExitCode.badInput,
    );
  }
}

/** A host could not be reached or authenticated. Exit code 3. */
export class UnreachableError extends AirflowHaError {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`host ${host} (${address}) unreachable: ${reason}`, ExitCode.unreachable);
  }

  /** One error for several unreachable hosts: one line each, host, address and cause. */
  static many(errors: readonly UnreachableError[]): UnreachableError {
    if (errors.length === 1) return errors[0] as UnreachableError;
    const e = new UnreachableError(errors.map((u) => u.host).join(', '), errors.map((u) => u.address).join(', '), '');
    e.message = `${errors.length} hosts unreachable:\n${errors.map((u) => `  ${u.host} (${u.address}): ${u.reason}`).join('\n')}`;
    return e;
  }
}

/** The run lock on the cluster's first host is held by someone else. Exit code 4. */
export class LockHeldError extends AirflowHaError {
  constructor(
    readonly host: string,
    readonly holder: string,
  ) {
    super(`run lock on ${host} is held: ${holder}\n(see \`airflow-ha lock status\`; \`airflow-ha lock release\` breaks it)`, ExitCode.lockHeld);
  }
}

/** A task failed on a host. Exit code 1. Every field is already masked for display. */
export class TaskFailedError extends AirflowHaError {
  constructor(
    readonly host: string,
    readonly step: string,
    readonly task: string,
    readonly command: string,
    readonly commandExit: number | null,
    readonly stderrTail: string,
  ) {
    super(
      command === ''
        ? // Failed while its tasks were built from the inventory and facts (a template error, a refused state): nothing ran.
          `task failed on ${host}: step "${step}", task "${task}" (before any command ran)\n${indent(stderrTail)}`
        : `task failed on ${host}: step "${step}", task "${task}"\n  command: ${command}\n  exit code: ${commandExit ?? 'none (connection lost)'}\n  stderr:\n${indent(stderrTail)}`,
      ExitCode.taskFailed,
    );
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
