/**
 * `airflow-ha add-worker` and `remove-worker`: the steps a changed worker set needs, built from the
 * bootstrap's own steps (data only). Every host learns the new name and address (/etc/hosts and
 * the firewall, base step), the Patroni nodes learn its address (pg_hba, applied by a reload), the
 * SSH targets accept the workers' key from it, and only the new host runs the Airflow steps;
 * nothing else is touched.
 */
import { airflowStopTasks, workerDrainTasks } from '../src/components/airflow.js';
import type { Inventory } from '../src/inventory/schema.js';
import { selectHosts, type Playbook, type Step } from '../src/run/playbook.js';
import { baseStep } from './base.js';
import { targetStep } from './dags.js';
import { patroniLeaderStep, patroniReplicasStep, postgresRestartSteps } from './etcd-patroni.js';

/**
 * `step` limited to the hosts of `names` it would select in `inv` (a step none of them is in gets
 * no hosts and is skipped by the runner).
 */
export function restrictStep(step: Step, inv: Inventory, names: readonly string[]): Step {
  return { ...step, hosts: { names: selectHosts(inv, step.hosts).map((h) => h.name).filter((n) => names.includes(n)) } };
}

/**
 * The steps through which the other hosts learn of a changed worker set: names and firewall rules
 * (base), pg_hba (Patroni), the `from=` of the workers' key on the SSH targets.
 */
export const learnSteps: readonly Step[] = [baseStep, patroniLeaderStep, patroniReplicasStep, ...postgresRestartSteps, targetStep];

/**
 * The add-worker playbook for host `name` of `inv`: {@link learnSteps} on their usual hosts, then
 * `hostSteps` (the steps that set up a worker) on the new host only.
 */
export function addWorkerPlaybook(inv: Inventory, name: string, hostSteps: readonly Step[]): Playbook {
  return {
    name: 'add-worker',
    description: `add worker ${name}: every host learns it, then it is set up`,
    requiredRoles: [],
    steps: [...learnSteps, ...hostSteps.map((s) => restrictStep(s, inv, [name]))],
  };
}

/**
 * remove-worker, first part (the host still in the inventory): drain worker `name` (it stops
 * consuming its queues; running tasks finish, at most `drainTimeoutSec` seconds), then stop and
 * disable its Airflow services.
 */
export function drainWorkerPlaybook(name: string, drainTimeoutSec: number): Playbook {
  return {
    name: 'remove-worker',
    description: `remove worker ${name}: drain it, then stop its services`,
    requiredRoles: [],
    steps: [
      { name: 'drain worker', hosts: { names: [name] }, tasks: ({ inventory, host }) => workerDrainTasks(inventory, host, drainTimeoutSec) },
      { name: 'stop worker', hosts: { names: [name] }, tasks: ({ inventory, host }) => airflowStopTasks(inventory, host) },
    ],
  };
}

/** remove-worker, second part (the host out of the inventory): the other hosts forget it. */
export function forgetWorkerPlaybook(name: string): Playbook {
  return {
    name: 'remove-worker',
    description: `remove worker ${name}: every other host forgets it`,
    requiredRoles: [],
    steps: [...learnSteps],
  };
}
