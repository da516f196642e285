/** Every playbook by name (what `plan`/`apply --playbook NAME` accept). */
import type { Playbook } from '../src/run/playbook.js';
import type { PlaybookName } from './catalog.js';
import { airflow } from './airflow.js';
import { base } from './base.js';
import { bootstrap } from './bootstrap.js';
import { dags, deployDags } from './dags.js';
import { demo } from './demo.js';
import { etcdPatroni } from './etcd-patroni.js';
import { haproxy } from './haproxy.js';
import { monitoring } from './monitoring.js';
import { rabbitmq } from './rabbitmq.js';

export const playbooks: Readonly<Record<PlaybookName, Playbook>> = {
  bootstrap,
  base,
  dags,
  'deploy-dags': deployDags,
  demo,
  'etcd-patroni': etcdPatroni,
  haproxy,
  monitoring,
  rabbitmq,
  airflow,
};
