/**
 * The Airflow services (../shared/reference/ha-stack.md "Order of a bootstrap", 8): the virtualenv
 * on every Airflow host in parallel, one airflow.cfg everywhere, `db migrate` and the admin user on
 * the first scheduler host only, then the services; gates: the UI's /health through the VIP and a
 * Celery ping of every worker. See src/components/airflow.ts. Data only: steps and the tasks they want.
 */
import {
  airflowConfigTasks,
  airflowInstallTasks,
  airflowMigrateTasks,
  airflowServiceTasks,
  migrateHost,
  webserverHealthCheck,
  workerPingCheck,
} from '../src/components/airflow.js';
import { AIRFLOW_ROLES } from '../src/inventory/rules.js';
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { identityStep } from './base.js';

/** The Airflow steps, also part of `bootstrap` (after the data plane). */
export const airflowSteps: readonly Step[] = [
  {
    name: 'airflow install',
    hosts: { roles: AIRFLOW_ROLES },
    tasks: ({ inventory, host, facts, operator }) => airflowInstallTasks(inventory, host, facts, operator?.tls),
  },
  {
    name: 'airflow config',
    hosts: { roles: AIRFLOW_ROLES },
    needs: [
      { role: 'haproxy', why: "airflow.cfg's database is HAProxy's leader port" },
      { role: 'rabbitmq', why: "airflow.cfg's broker_url lists the RabbitMQ nodes" },
    ],
    tasks: ({ inventory, host, secrets }) => airflowConfigTasks(inventory, host, secrets),
  },
  {
    // The selector is static data: every scheduler host is targeted, the first one gets the tasks
    // (one `db migrate` per cluster, before any service starts in the next step).
    name: 'airflow db migrate + admin user',
    hosts: { roles: ['scheduler'] },
    needs: [
      { role: 'scheduler', why: 'the first scheduler host runs the database migrations and creates the admin user' },
      { role: 'postgresql', why: 'the metadata database the migrations run on' },
    ],
    tasks: ({ inventory, host, secrets }) => (migrateHost(inventory)?.name === host.name ? airflowMigrateTasks(inventory, secrets) : []),
  },
  {
    name: 'airflow services',
    hosts: { roles: AIRFLOW_ROLES },
    tasks: ({ inventory, host }) => airflowServiceTasks(inventory, host),
  },
  {
    name: 'airflow webserver health',
    hosts: { roles: ['webserver'] },
    tasks: () => [],
    gate: {
      name: 'GET the UI health JSON through the VIP (/health on 2.x, /api/v2/monitor/health on 3.x): metadatabase, scheduler, triggerer and DAG processor healthy',
      on: 'first',
      check: ({ inventory }) => webserverHealthCheck(inventory),
      timeoutSec: 180,
      intervalSec: 3,
    },
  },
  {
    name: 'airflow workers',
    hosts: { roles: ['worker'] },
    needs: [{ role: 'worker', why: 'without a Celery worker nothing consumes the queued tasks' }],
    tasks: () => [],
    gate: {
      name: 'every Celery worker answers a ping on the broker',
      on: 'each',
      check: ({ inventory, host }) => workerPingCheck(inventory, host),
      timeoutSec: 180,
      intervalSec: 3,
    },
  },
];

export const airflow: Playbook = {
  name: 'airflow',
  description: 'Airflow in a virtualenv, one airflow.cfg, db migrate + admin user once, scheduler/triggerer/DAG processor/webserver/worker/Flower units',
  requiredRoles: roleNeeds(airflowSteps),
  steps: [identityStep, ...airflowSteps],
};
