/**
 * The playbooks by name and the inventory roles each needs, as data that loads nothing else: what
 * `validate --playbook NAME` checks without loading the playbooks themselves (their templates and
 * components cost it a third of its start-up). The source is each step's `needs` (playbooks/*.ts);
 * this is their copy, kept equal to `roleNeeds` of every playbook's steps by a unit test
 * (test/unit/playbook-needs.test.ts). ./index.ts has the same names.
 */
import type { RoleNeed } from '../src/inventory/rules.js';

const etcd = { role: 'etcd', step: 'etcd', why: "Patroni's DCS, holding the leader lock" } as const;
const postgresql = { role: 'postgresql', step: 'patroni leader', why: "the first postgresql host bootstraps Airflow's metadata database" } as const;
const haproxy = { role: 'haproxy', step: 'haproxy', why: "every Airflow host reaches the PostgreSQL primary through HAProxy's leader port" } as const;
const rabbitmq = { role: 'rabbitmq', step: 'rabbitmq nodes', why: 'the Celery broker the schedulers queue tasks on' } as const;
const migrate = 'airflow db migrate + admin user';
const scheduler = { role: 'scheduler', step: migrate, why: 'the first scheduler host runs the database migrations and creates the admin user' } as const;
const worker = { role: 'worker', step: 'airflow workers', why: 'without a Celery worker nothing consumes the queued tasks' } as const;

export const playbookRoles = {
  bootstrap: [etcd, postgresql, haproxy, rabbitmq, scheduler, worker],
  base: [],
  dags: [],
  'deploy-dags': [],
  demo: [],
  'etcd-patroni': [etcd, postgresql],
  haproxy: [haproxy],
  monitoring: [],
  rabbitmq: [rabbitmq],
  airflow: [
    { role: 'haproxy', step: 'airflow config', why: "airflow.cfg's database is HAProxy's leader port" },
    { role: 'rabbitmq', step: 'airflow config', why: "airflow.cfg's broker_url lists the RabbitMQ nodes" },
    scheduler,
    { role: 'postgresql', step: migrate, why: 'the metadata database the migrations run on' },
    worker,
  ],
} as const satisfies Readonly<Record<string, readonly RoleNeed[]>>;

/** A playbook's name (what `--playbook` accepts). */
export type PlaybookName = keyof typeof playbookRoles;

/** Whether `name` is a playbook's name. */
export function isPlaybookName(name: string): name is PlaybookName {
  return Object.hasOwn(playbookRoles, name);
}
