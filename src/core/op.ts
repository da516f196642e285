import type { Cmd } from './cmd.js';

/**
 * One thing the runner does on a host. Components and tasks only return these; the runner
 * (src/run/) is the only code that executes them on a connection.
 *
 * - `exec`: run a command as root; a non-zero exit fails the task.
 * - `put`: write a file atomically (temp file + rename) with owner/group/mode (mode: octal text, e.g. `0644`).
 */
export type Op =
  | { readonly kind: 'exec'; readonly cmd: Cmd; readonly timeoutSec?: number }
  | {
      readonly kind: 'put';
      readonly path: string;
      readonly content: Buffer;
      readonly mode: string;
      readonly owner: string;
      readonly group: string;
    };

/** Shorthand for an exec op. */
export function exec(cmd: Cmd, timeoutSec?: number): Op {
  return timeoutSec === undefined ? { kind: 'exec', cmd } : { kind: 'exec', cmd, timeoutSec };
}

/** A one-line description of an op for people (secrets masked, file contents not shown). */
export function describeOp(op: Op): string {
  return op.kind === 'exec'
    ? op.cmd.toString()
    : `write ${op.path} (${op.content.length} bytes, ${op.owner}:${op.group} ${op.mode})`;
}
