/**
 * Bootstrap steps of HAProxy + keepalived (see ../shared/reference/ha-stack.md "HAProxy",
 * "keepalived"): HAProxy on every host of role `haproxy`, then keepalived holding each haproxy VIP
 * on exactly one of them. Data only: steps and the tasks they want.
 */
import { Cmd, sh } from '../src/core/cmd.js';
import { haproxyTasks, haproxyVips } from '../src/components/haproxy.js';
import { keepalivedTasks } from '../src/components/keepalived.js';
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { waitCheck } from '../src/tasks/command.js';
import { tlsStepOn } from './tls.js';

const steps: readonly Step[] = [
  tlsStepOn(['haproxy']),
  {
    name: 'haproxy',
    hosts: { roles: ['haproxy'] },
    needs: [{ role: 'haproxy', why: "every Airflow host reaches the PostgreSQL primary through HAProxy's leader port" }],
    tasks: ({ inventory, host, secrets, facts, operator }) => haproxyTasks(inventory, host, secrets, facts.family, { tls: operator?.tls }),
    // After a reload of a changed config: every HAProxy serves its stats page on its own address.
    gate: {
      name: 'haproxy stats port open on every haproxy host',
      on: 'each',
      check: ({ host, inventory }) => waitCheck({ host: host.address, port: inventory.cluster.ports.haproxyStats, timeoutSec: 1 }),
      timeoutSec: 30,
    },
  },
  {
    name: 'keepalived',
    hosts: { roles: ['haproxy'] },
    // Only the haproxy VIPs here: a host that also serves NFS gets that VIP from the NFS playbook,
    // which renders the same keepalived.conf (every VIP of the host's roles).
    tasks: ({ inventory, host, facts }) => (haproxyVips(inventory).length > 0 ? keepalivedTasks(inventory, host, facts.family) : []),
    // The VIP is up (held by one host) and reaches an HAProxy: every haproxy host opens the
    // stats port through every haproxy VIP. "Exactly one holder" is asserted by the e2e test.
    gate: {
      name: 'haproxy VIP answers on the stats port from every haproxy host',
      on: 'each',
      check: ({ inventory }) => {
        const vips = haproxyVips(inventory);
        if (vips.length === 0) return sh`true`;
        const port = inventory.cluster.ports.haproxyStats;
        return Cmd.join(vips.map((v) => waitCheck({ host: v.address, port, timeoutSec: 1 })), ' && ');
      },
      timeoutSec: 30,
    },
  },
];

export const haproxy: Playbook = {
  name: 'haproxy',
  description: 'HAProxy (PostgreSQL leader and replica ports, stats) and keepalived for the haproxy VIP',
  requiredRoles: roleNeeds(steps),
  steps,
};
