/**
 * Restarts that must not happen on every host at once (an etcd member, a PostgreSQL node) are
 * recorded on the host as a "pending" marker by a handler, and carried out by a later step that runs
 * one host at a time. The marker lives on the host, so a run that fails between the config change
 * and the restart still restarts on the next run (a handler kept only in memory would be lost: the
 * changed file no longer differs by then).
 */
import { sh, type Cmd } from '../core/cmd.js';
import { exec } from '../core/op.js';
import { command } from './command.js';
import type { Handler, Task } from './task.js';

/** Folder of the markers: `/var/lib/airflow-ha/pending/<name>` (an empty file; its mtime is when the change happened). */
export const PENDING_DIR = '/var/lib/airflow-ha/pending';

/** The marker file of `name` (a file name: letters, digits, `-`, `_`, `.`). Throws on other names. */
export function pendingMarker(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`pending marker name ${JSON.stringify(name)}: letters, digits, ".", "_" and "-" only`);
  return `${PENDING_DIR}/${name}`;
}

/** Handler: record that `name` is pending on this host (`what` says what for, in the run's output). */
export function markPending(name: string, what: string): Handler {
  const m = pendingMarker(name);
  return { id: `pending:${name}`, name: `mark pending: ${what}`, ops: [exec(sh`mkdir -p ${PENDING_DIR} && touch ${m}`)] };
}

/** What a {@link pendingRestart} task does. */
export interface PendingRestartSpec {
  /** The marker's name, as given to {@link markPending}. */
  marker: string;
  /** Task name in the output, e.g. `restart etcd (one member at a time)`. */
  name: string;
  /** The restart and the wait for health after it; the marker is removed only if it exits 0. */
  cmd: Cmd;
  /** Also skip while this read-only command succeeds (e.g. "this node is the leader": its turn comes later). */
  skipWhile?: Cmd;
  /** Seconds the command may take. */
  timeoutSec: number;
}

/**
 * Task: when the marker exists (and `skipWhile` fails), run `cmd`, then remove the marker. A
 * no-op (one guard in the batched facts) when nothing is pending. Put it in a step with `serial: 1`
 * so hosts restart one at a time; `cmd` should wait until the service is healthy again.
 */
export function pendingRestart(spec: PendingRestartSpec): Task {
  const m = pendingMarker(spec.marker);
  const absent = sh`test ! -e ${m}`;
  return command({
    name: spec.name,
    cmd: sh`(${spec.cmd}) && rm -f ${m}`,
    unless: spec.skipWhile ? sh`${absent} || { ${spec.skipWhile}; }` : absent,
    timeoutSec: spec.timeoutSec,
  });
}
