/**
 * The TLS files on every host (`cluster.tls`; src/components/tls.ts): the CA and host certificates
 * and root's key, before any component that reads them. No tasks when TLS is off.
 */
import { tlsHostTasks } from '../src/components/tls.js';
import type { Role } from '../src/inventory/schema.js';
import type { Step } from '../src/run/playbook.js';

export const tlsStep: Step = {
  name: 'tls files',
  hosts: { all: true },
  tasks: ({ inventory, host, operator }) => tlsHostTasks(inventory, host, operator?.tls),
};

/**
 * The same step on the hosts of `roles` only: a component playbook run on its own (`apply
 * --playbook haproxy`) touches its own hosts, not every host of the inventory. Bootstrap keeps the
 * one {@link tlsStep} on every host (it leaves out the component playbooks' copies by name).
 */
export function tlsStepOn(roles: readonly Role[]): Step {
  return { ...tlsStep, hosts: { roles } };
}
