/**
 * The TLS files on every host (`cluster.tls`; src/components/tls.ts): the CA and host certificates
 * and root's key, before any component that reads them. No tasks when TLS is off.
 */
import { tlsHostTasks } from '../src/components/tls.js';
import type { Step } from '../src/run/playbook.js';

export const tlsStep: Step = {
  name: 'tls files',
  hosts: { all: true },
  tasks: ({ inventory, host, operator }) => tlsHostTasks(inventory, host, operator?.tls),
};
