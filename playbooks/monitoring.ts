/**
 * Bootstrap steps of monitoring (README "Monitoring"): node_exporter on every host, postgres_exporter
 * and its pg_monitor role on the PostgreSQL hosts, then Prometheus and Alertmanager on the hosts of
 * role `monitoring`; gate: each Prometheus and Alertmanager ready. An inventory without a
 * monitoring host gets no task from these steps. Last in bootstrap: the exporters the components
 * carry (etcd, Patroni, RabbitMQ, HAProxy, Flower) are on by then, and Airflow's job table exists
 * for the heartbeat query's grant. Data only: steps and the tasks they want.
 */
import { Cmd } from '../src/core/cmd.js';
import { monitoringTasks, nodeExporterTasks, postgresExporterTasks } from '../src/components/monitoring.js';
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { waitCheck } from '../src/tasks/command.js';
import type { OsFamily } from '../src/facts/host.js';

/**
 * Monitoring uses Debian 12's packages; Rocky/RHEL 9's repositories have no Prometheus (it lives in
 * third-party repositories this version does not configure), so a monitored RHEL host is refused
 * at plan time, before any change, rather than half set up.
 * @throws Error on a Rocky/RHEL host.
 */
function debianOnly(family: OsFamily, host: string): void {
  if (family === 'rhel') throw new Error(`${host}: monitoring is set up on Debian 12 only (Prometheus and its exporters are Debian packages; Rocky/RHEL 9 has none in its own repositories): take the role monitoring out of this inventory, or run these hosts on Debian 12`);
}

export const nodeExporterStep: Step = {
  name: 'node exporter',
  hosts: { all: true, onlyWith: 'monitoring' },
  tasks: ({ inventory, host, facts }) => {
    debianOnly(facts.family, host.name);
    return nodeExporterTasks(inventory, host);
  },
};

export const postgresExporterStep: Step = {
  name: 'postgres exporter',
  hosts: { roles: ['postgresql'], onlyWith: 'monitoring' },
  tasks: ({ inventory, host, secrets, facts }) => {
    debianOnly(facts.family, host.name);
    return postgresExporterTasks(inventory, host, secrets);
  },
};

export const prometheusStep: Step = {
  name: 'prometheus and alertmanager',
  hosts: { roles: ['monitoring'] },
  tasks: ({ inventory, host, secrets, facts }) => {
    debianOnly(facts.family, host.name);
    return monitoringTasks(inventory, host, secrets);
  },
  // Prometheus answers /-/ready once its TSDB is open and its config loaded; Alertmanager likewise
  // (https://prometheus.io/docs/prometheus/2.42/management_api/, Alertmanager "Management API").
  gate: {
    name: 'prometheus and alertmanager ready on every monitoring host',
    on: 'each',
    check: ({ host, inventory }) =>
      Cmd.join(
        [
          waitCheck({ http: `http://${host.address}:${inventory.cluster.ports.prometheus}/-/ready`, timeoutSec: 2 }),
          waitCheck({ http: `http://${host.address}:${inventory.cluster.ports.alertmanager}/-/ready`, timeoutSec: 2 }),
        ],
        ' && ',
      ),
    timeoutSec: 60,
    intervalSec: 2,
  },
};

export const monitoringSteps: readonly Step[] = [nodeExporterStep, postgresExporterStep, prometheusStep];

export const monitoring: Playbook = {
  name: 'monitoring',
  description: 'node_exporter on every host, postgres_exporter on the PostgreSQL hosts, Prometheus and Alertmanager on the monitoring hosts',
  requiredRoles: roleNeeds(monitoringSteps),
  steps: monitoringSteps,
};
