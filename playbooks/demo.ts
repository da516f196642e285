/**
 * The engine's demonstration playbook: real tasks of every kind on every host, used by the lab
 * end-to-end tests and the benchmark. Data only: steps and the tasks they want.
 */
import { sh } from '../src/core/cmd.js';
import type { Playbook } from '../src/run/playbook.js';
import { waitCheck, waitFor } from '../src/tasks/command.js';
import { directory } from '../src/tasks/file.js';
import { packages } from '../src/tasks/package.js';
import { reloadHandler, service } from '../src/tasks/systemd.js';
import { group, sysctl, user } from '../src/tasks/system.js';
import { template } from '../src/tasks/template.js';
import { identityStep } from './base.js';

export const demo: Playbook = {
  name: 'demo',
  description: 'host identity and /etc/hosts, a package, a templated config with a reload handler, a service',
  requiredRoles: [],
  steps: [
    identityStep,
    {
      name: 'haproxy demo service',
      hosts: { all: true },
      tasks: ({ inventory, host, secrets }) => [
        sysctl({ file: '60-airflow-ha-demo.conf', values: { 'net.ipv4.ip_nonlocal_bind': '1' } }),
        group({ name: 'airflowha', system: true }),
        user({ name: 'airflowha', system: true, home: '/var/lib/airflowha', primaryGroup: 'airflowha' }),
        directory({ path: '/var/lib/airflowha/demo', mode: '0750', owner: 'airflowha', group: 'airflowha' }),
        packages({ names: ['haproxy'] }),
        template({
          path: '/etc/haproxy/haproxy.cfg',
          template: 'demo/haproxy.cfg.njk',
          vars: {
            cluster: inventory.cluster,
            host,
            ports: inventory.cluster.ports,
            maxconn: Number(host.vars?.['haproxy_maxconn'] ?? 2000),
            timeout_client: String(host.vars?.['haproxy_timeout_client'] ?? '30m'),
            stats_password: secrets.haproxyStats,
          },
          validate: (tmp) => sh`haproxy -c -q -f ${tmp}`,
          notify: [reloadHandler('haproxy')],
        }),
        service({ name: 'haproxy', enabled: true, state: 'started' }),
      ],
      // After the step's handlers (a reload of a changed config): the stats port is up everywhere.
      gate: {
        name: 'haproxy stats port open on every host',
        on: 'each',
        check: ({ host, inventory }) => waitCheck({ host: host.address, port: inventory.cluster.ports.haproxyStats, timeoutSec: 1 }),
        timeoutSec: 30,
      },
    },
    {
      name: 'health check',
      hosts: { all: true },
      tasks: () => [waitFor({ http: 'http://127.0.0.1:8404/', timeoutSec: 30 })],
    },
  ],
};
