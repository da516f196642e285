import type { Op } from '../core/op.js';
import type { Fact, FactSet } from '../facts/fact.js';
import type { HostFacts } from '../facts/host.js';

/**
 * A handler: ops that run at most once per host at the end of a step, if any task notified it
 * (e.g. restart a service after its config changed). `id` dedupes notifications.
 */
export interface Handler {
  readonly id: string;
  readonly name: string;
  readonly ops: readonly Op[];
}

/**
 * What a task would do on a host, given its facts. `changed: false` with no ops is the no-op case.
 * `ops` may be non-empty without a change only when they are read-only (a wait-for check): the
 * runner runs the hosts of a rolling step that change nothing in parallel; `diff` is a unified diff for
 * people (the runner masks secrets in it); `notify` names handlers to run if the task changed.
 */
export interface TaskPlan {
  changed: boolean;
  ops: Op[];
  diff?: string;
  /**
   * The diff was made so that it holds no secret, old or current: from redacted renderings of a
   * file that holds secrets, or with its lines hidden (src/tasks/file.ts). Without it, the runner
   * hides the diff of a write whose new content holds a current secret (src/run/execute.ts).
   */
  diffRedacted?: boolean;
  /** One line per change for people, e.g. `install haproxy=2.6.12-1+deb12u1`. */
  changes: string[];
  notify: Handler[];
}

/** A file a task manages, for offline `render` (content as it would be written). */
export interface ManagedFile {
  path: string;
  content: Buffer;
  mode: string;
  owner: string;
  group: string;
}

/**
 * A task: desired state on one host. It declares the facts it needs and, given them, plans ops.
 * Tasks never touch a connection (only src/run/ does).
 */
export interface Task {
  /** A short label, e.g. `template /etc/haproxy/haproxy.cfg`. */
  readonly name: string;
  facts(host: HostFacts): readonly Fact<unknown>[];
  plan(facts: FactSet, host: HostFacts): TaskPlan;
  /** Files this task writes, for `render` (tasks that write none omit this). */
  files?(host: HostFacts): ManagedFile[];
}

/** The no-op plan. */
export function unchanged(): TaskPlan {
  return { changed: false, ops: [], changes: [], notify: [] };
}
