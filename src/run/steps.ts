/**
 * Which steps of a playbook a run runs, and on which hosts: the whole playbook, from a named step
 * on (`--from-step`), or only some hosts from a step on (`--retry-failed`). Pure: the runner and
 * `--list-steps` use the same selection, so what is listed is what runs.
 */
import { InputError } from '../core/errors.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { selectHosts, type Playbook, type Selector, type Step } from './playbook.js';

/**
 * Where a run starts: the 0-based index of its first step in the playbook, and (for a retry) the
 * only hosts whose tasks run. Without `hosts`, every host the limit selects.
 */
export interface StepStart {
  step: number;
  hosts?: readonly string[];
}

/** One step of a run as it was selected. */
export interface SelectedStep {
  step: Step;
  /** 0-based position in the playbook. */
  index: number;
  /** The hosts whose tasks run (the step's hosts within the limit, and within the retried hosts), in inventory order. */
  hosts: Host[];
  /**
   * The hosts the step's gate checks: the first of the step's hosts within the limit (`on: first`)
   * or all of them (`on: each`), retried or not; [] without a gate or when no task host is left.
   */
  gateHosts: Host[];
  /** Whether the run runs it: from the start step on, and only with a task host. */
  runs: boolean;
}

/**
 * The steps of `pb` for a run on `inv` restricted to `limit`, starting at `start` (default: the
 * first step, every host).
 *
 * A retried run keeps the gates of the steps it runs as a full run has them: a gate checks a state
 * of the cluster (every etcd member healthy, every RabbitMQ node in one cluster), so it is checked
 * on the step's hosts as the limit selects them, not only on the retried ones. The hosts it checks
 * but does not retry are connected and their host facts read (a gate's command is built from its
 * host's facts), and nothing else runs on them.
 */
export function selectSteps(pb: Playbook, inv: Inventory, limit: Selector, start: StepStart = { step: 0 }): SelectedStep[] {
  const limited = new Set(selectHosts(inv, limit).map((h) => h.name));
  const only = start.hosts ? new Set(start.hosts) : undefined;
  return pb.steps.map((step, index) => {
    const inLimit = selectHosts(inv, step.hosts).filter((h) => limited.has(h.name));
    const hosts = only ? inLimit.filter((h) => only.has(h.name)) : inLimit;
    const gateHosts = !step.gate || hosts.length === 0 ? [] : step.gate.on === 'first' ? inLimit.slice(0, 1) : inLimit;
    return { step, index, hosts, gateHosts, runs: index >= start.step && hosts.length > 0 };
  });
}

/**
 * The index of the step named `name` in `pb` (names are matched exactly).
 * @throws InputError (exit 2) naming every step of the playbook, in order, when there is none.
 */
export function stepIndex(pb: Playbook, name: string, flag = '--from-step'): number {
  const i = pb.steps.findIndex((s) => s.name === name);
  if (i === -1) {
    throw new InputError(`${flag}: playbook ${pb.name} has no step "${name}"; its steps, in order: ${pb.steps.map((s) => `"${s.name}"`).join(', ')}`);
  }
  return i;
}

/**
 * A step as `--list-steps` prints it (and `--json` gives it): `index` is 1-based; `hosts` are those
 * whose tasks the run would run; `gateReads` the hosts only its gate reads (a retry); every step
 * ends with a barrier (its hosts all finish before the next step starts); `serial`: a rolling step,
 * that many hosts changing at a time; `gate.timeoutSec` and `intervalSec` in seconds.
 */
export interface StepListing {
  index: number;
  name: string;
  selector: Selector;
  hosts: string[];
  gateReads: string[];
  barrier: true;
  serial: number | null;
  gate: { name: string; on: 'first' | 'each'; timeoutSec: number; intervalSec: number } | null;
  runs: boolean;
}

/** The listing of selected steps (see {@link StepListing}). */
export function listSteps(selected: readonly SelectedStep[]): StepListing[] {
  return selected.map(({ step, index, hosts, gateHosts, runs }) => {
    const names = new Set(hosts.map((h) => h.name));
    return {
      index: index + 1,
      name: step.name,
      selector: step.hosts,
      hosts: hosts.map((h) => h.name),
      gateReads: gateHosts.filter((h) => !names.has(h.name)).map((h) => h.name),
      barrier: true,
      serial: step.serial && step.serial > 0 ? step.serial : null,
      gate: step.gate ? { name: step.gate.name, on: step.gate.on, timeoutSec: step.gate.timeoutSec, intervalSec: step.gate.intervalSec ?? 1 } : null,
      runs,
    };
  });
}
