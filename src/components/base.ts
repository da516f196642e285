import { sh } from '../core/cmd.js';
import type { Inventory } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { file, managedBlock } from '../tasks/file.js';
import type { Task } from '../tasks/task.js';

/**
 * The /etc/hosts block every host gets: one line per inventory host (`ADDRESS NAME`) and per VIP,
 * so short names resolve everywhere (RabbitMQ and the Airflow log server need this; see
 * ../reference/ha-stack.md "Order of a bootstrap").
 */
export function hostsBlock(inv: Inventory): string {
  const width = Math.max(...inv.hosts.map((h) => h.address.length), ...inv.cluster.vips.map((v) => v.address.length));
  const line = (addr: string, name: string) => `${addr.padEnd(width)} ${name}`;
  return [
    ...inv.hosts.map((h) => line(h.address, h.name)),
    ...inv.cluster.vips.map((v) => line(v.address, v.name)),
  ].join('\n');
}

/** Tasks: the host's name in /etc/hostname and in the kernel, and the managed /etc/hosts block. */
export function hostIdentityTasks(inv: Inventory, name: string): Task[] {
  return [
    file({ path: '/etc/hostname', content: `${name}\n` }),
    command({
      name: `hostname ${name}`,
      cmd: sh`hostname ${name}`,
      unless: sh`test "$(uname -n)" = ${name}`,
    }),
    managedBlock({ path: '/etc/hosts', id: `cluster ${inv.cluster.name}`, block: hostsBlock(inv) }),
  ];
}
