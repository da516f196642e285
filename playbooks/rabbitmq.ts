/**
 * Bootstrap steps of the rabbitmq component: host identity everywhere (short names must resolve on
 * every node: Erlang node names are `rabbit@<short name>`), then the RabbitMQ nodes one at a time
 * (first starts join a running peer; config changes restart one node at a time), then a gate:
 * every node running in one cluster. See src/components/rabbitmq.ts and
 * ../shared/reference/ha-stack.md "RabbitMQ".
 */
import { clusterRunningCheck, rabbitmqNodeTasks } from '../src/components/rabbitmq.js';
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { identityStep } from './base.js';

const steps: readonly Step[] = [
  identityStep,
  {
    name: 'rabbitmq nodes',
    hosts: { roles: ['rabbitmq'] },
    needs: [{ role: 'rabbitmq', why: 'the Celery broker the schedulers queue tasks on' }],
    serial: 1,
    tasks: ({ inventory, secrets, host, facts, operator }) => rabbitmqNodeTasks(inventory, secrets, host, facts, operator?.tls),
    gate: {
      name: 'every rabbitmq node running in one cluster',
      on: 'first',
      check: ({ inventory, secrets }) => clusterRunningCheck(inventory, secrets),
      timeoutSec: 120,
      intervalSec: 3,
    },
  },
];

export const rabbitmq: Playbook = {
  name: 'rabbitmq',
  description: 'a RabbitMQ cluster of the rabbitmq hosts: one Erlang cookie, classic-config discovery, declarative users and vhost, no guest',
  requiredRoles: roleNeeds(steps),
  steps,
};
