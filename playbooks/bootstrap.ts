/**
 * `airflow-ha bootstrap`: the data plane in the order of ../reference/ha-stack.md — base system,
 * etcd, Patroni leader then replicas, the Airflow database, HAProxy + keepalived, RabbitMQ — then
 * DAG storage, FTP, the Airflow services, the SSH target and monitoring when the inventory has those hosts
 * (steps without hosts are skipped); each
 * component's steps as its own playbook defines them (their stand-alone identity step is covered
 * here by the base step).
 */
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { airflowSteps } from './airflow.js';
import { dagsCompileStep, dagsGitStep, dagsReleaseStep, ftpStep, nfsClientStep, nfsServerStep, nfsVipStep, targetStep, targetWorkersStep } from './dags.js';
import { baseStep, identityStep } from './base.js';
import { etcdPatroni } from './etcd-patroni.js';
import { haproxy } from './haproxy.js';
import { monitoringSteps } from './monitoring.js';
import { rabbitmq } from './rabbitmq.js';
import { tlsStep } from './tls.js';

// The component playbooks' own identity and TLS steps: bootstrap has them once, at the start.
const own = (list: readonly Step[]) => list.filter((s) => s !== identityStep && s.name !== tlsStep.name);

const steps: readonly Step[] = [
  baseStep,
  tlsStep,
  ...own(etcdPatroni.steps),
  ...own(haproxy.steps),
  ...own(rabbitmq.steps),
  // DAG storage before Airflow (the DAG processor reads the folder from its first start).
  nfsServerStep,
  nfsVipStep,
  nfsClientStep,
  dagsCompileStep,
  dagsReleaseStep,
  dagsGitStep,
  ftpStep,
  ...airflowSteps,
  // After Airflow: the workers' target connection is imported with the airflow command.
  targetStep,
  targetWorkersStep,
  // Last: every component's own exporter is on, and Airflow's job table exists (the heartbeat query's grant).
  ...monitoringSteps,
];

export const bootstrap: Playbook = {
  name: 'bootstrap',
  description: 'base system, etcd, PostgreSQL + Patroni, HAProxy + keepalived, RabbitMQ, DAG storage, FTP, the Airflow services, the SSH target, monitoring',
  requiredRoles: roleNeeds(steps),
  steps,
};
