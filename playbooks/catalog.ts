/**
 * The playbooks by name and the inventory roles each needs, as data that loads nothing else: what
 * `validate --playbook NAME` checks without loading the playbooks themselves (their templates and
 * components). Each playbook takes its `requiredRoles` from here; ./index.ts has the same names.
 */
import type { Role } from '../src/inventory/schema.js';

export const playbookRoles = {
  bootstrap: ['etcd', 'postgresql', 'haproxy', 'rabbitmq'],
  base: [],
  dags: [],
  'deploy-dags': [],
  demo: [],
  'etcd-patroni': ['etcd', 'postgresql'],
  haproxy: ['haproxy'],
  rabbitmq: ['rabbitmq'],
  airflow: ['scheduler', 'haproxy', 'postgresql', 'rabbitmq'],
} as const satisfies Readonly<Record<string, readonly Role[]>>;

/** A playbook's name (what `--playbook` accepts). */
export type PlaybookName = keyof typeof playbookRoles;

/** Whether `name` is a playbook's name. */
export function isPlaybookName(name: string): name is PlaybookName {
  return Object.hasOwn(playbookRoles, name);
}
