/**
 * `airflow-ha bootstrap`: the data plane in the order of ../reference/ha-stack.md — base system,
 * etcd, Patroni leader then replicas, the Airflow database, HAProxy + keepalived, RabbitMQ — then
 * the Airflow services when the inventory has Airflow hosts (steps without hosts are skipped); each
 * component's steps as its own playbook defines them (their stand-alone identity step is covered
 * here by the base step).
 */
import type { Playbook, Step } from '../src/run/playbook.js';
import { airflowSteps } from './airflow.js';
import { baseStep, identityStep } from './base.js';
import { etcdPatroni } from './etcd-patroni.js';
import { haproxy } from './haproxy.js';
import { rabbitmq } from './rabbitmq.js';

const own = (steps: readonly Step[]) => steps.filter((s) => s !== identityStep);

export const bootstrap: Playbook = {
  name: 'bootstrap',
  description: 'base system, etcd, PostgreSQL + Patroni, HAProxy + keepalived, RabbitMQ, then the Airflow services',
  requiredRoles: ['etcd', 'postgresql', 'haproxy', 'rabbitmq'],
  steps: [baseStep, ...own(etcdPatroni.steps), ...own(haproxy.steps), ...own(rabbitmq.steps), ...airflowSteps],
};
