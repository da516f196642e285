/**
 * Which systemd units each component runs, and on which hosts: the names the components
 * themselves use when they set the units up (the same constants and functions), gathered for
 * `airflow-ha logs`. Pure: inventory in, host names and unit names out.
 */
import type { Host, Inventory } from '../inventory/schema.js';
import { airflowServices, type AirflowServiceKind } from './airflow.js';
import { FIREWALL_UNIT } from './base.js';
import { PULL_SERVICE } from './dags.js';
import { etcdMembers } from './etcd.js';
import { hostVips } from './keepalived.js';
import { MONITORING_UNITS, monitored } from './monitoring.js';
import { patroniNodes } from './patroni.js';
import { RABBITMQ_SERVICE, rabbitmqHosts } from './rabbitmq.js';

/** The components airflow-ha installs, as `logs` names them. */
export const LOG_COMPONENTS = [
  'etcd',
  'patroni',
  'haproxy',
  'keepalived',
  'rabbitmq',
  'scheduler',
  'webserver',
  'triggerer',
  'dag-processor',
  'worker',
  'flower',
  'nfs',
  'ftp',
  'firewall',
  'monitoring',
  'exporters',
] as const;
export type LogComponent = (typeof LOG_COMPONENTS)[number];

/** Whether `name` is one of {@link LOG_COMPONENTS}. */
export function isLogComponent(name: string): name is LogComponent {
  return (LOG_COMPONENTS as readonly string[]).includes(name);
}

/** One host of a component and the units it runs there. */
export interface ComponentUnits {
  host: Host;
  units: string[];
}

const AIRFLOW_KINDS: readonly string[] = ['scheduler', 'webserver', 'triggerer', 'dag-processor', 'worker', 'flower'] satisfies AirflowServiceKind[];

const withRole = (inv: Inventory, role: Host['roles'][number]) => inv.hosts.filter((h) => h.roles.includes(role));
const all = (hosts: readonly Host[], units: string[]): ComponentUnits[] => hosts.map((host) => ({ host, units }));

/**
 * The hosts of `component` in inventory order, each with its unit names (`.service`, `.timer`):
 * - etcd, patroni (role postgresql), haproxy, rabbitmq, ftp (vsftpd): one unit on each host of the role;
 * - keepalived: the hosts of a VIP's role (src/components/keepalived.ts `hostVips`);
 * - the Airflow services: the unit of that service on each host that runs it
 *   (src/components/airflow.ts `airflowServices`: per Airflow major, e.g. the API server on 3);
 * - nfs: nfs-server, the DAG pull service and rsync (`rsync.service` on Debian, `rsyncd.service` on
 *   RHEL: both are named, journalctl shows what exists);
 * - firewall: the unit that loads the nftables table, on every host;
 * - monitoring: Prometheus and Alertmanager on the monitoring hosts; exporters: node_exporter on
 *   every host (and postgres_exporter on the PostgreSQL hosts) of a monitored inventory.
 */
export function componentUnits(inv: Inventory, component: LogComponent): ComponentUnits[] {
  switch (component) {
    case 'etcd':
      return all(etcdMembers(inv), ['etcd.service']);
    case 'patroni':
      return all(patroniNodes(inv), ['patroni.service']);
    case 'haproxy':
      return all(withRole(inv, 'haproxy'), ['haproxy.service']);
    case 'keepalived':
      return all(
        inv.hosts.filter((h) => hostVips(inv, h).length > 0),
        ['keepalived.service'],
      );
    case 'rabbitmq':
      return all(rabbitmqHosts(inv), [`${RABBITMQ_SERVICE}.service`]);
    case 'nfs':
      return all(withRole(inv, 'nfs'), ['nfs-server.service', PULL_SERVICE, 'rsync.service', 'rsyncd.service']);
    case 'ftp':
      return all(withRole(inv, 'ftp'), ['vsftpd.service']);
    case 'firewall':
      return all(inv.hosts, [FIREWALL_UNIT]);
    case 'monitoring':
      return all(withRole(inv, 'monitoring'), [`${MONITORING_UNITS.prometheus}.service`, `${MONITORING_UNITS.alertmanager}.service`]);
    case 'exporters':
      if (!monitored(inv)) return [];
      return inv.hosts.map((host) => ({ host, units: [`${MONITORING_UNITS.nodeExporter}.service`, ...(host.roles.includes('postgresql') ? [`${MONITORING_UNITS.postgresExporter}.service`] : [])] }));
    default: {
      const kind = component;
      if (!AIRFLOW_KINDS.includes(kind)) throw new Error(`no units known for component ${kind}`);
      return inv.hosts.flatMap((host) => {
        const units = airflowServices(inv, host)
          .filter((s) => s.kind === kind)
          .map((s) => s.unit);
        return units.length > 0 ? [{ host, units }] : [];
      });
    }
  }
}
