/**
 * DAG storage, the FTP server and the SSH target ("bootstrap, part 2", before Airflow itself):
 * - dags.mode nfs: NFS servers on the nfs hosts, then keepalived with the nfs VIP, then every
 *   Airflow host mounting the export from the VIP;
 * - dags.mode sync: the operator's DAG folder compiled on the first Airflow host, then released on
 *   every Airflow host (`deploy-dags` runs these two steps alone);
 * - vsftpd on the ftp host; the service account on the target hosts, then the workers' key, the
 *   pinned host keys and the Airflow connections on the workers.
 * Steps of the mode not in use get no tasks. Data only: steps and the tasks they want.
 */
import { dagsCompileTasks, dagsGitTasks, dagsReleaseTasks, nfsClientTasks, nfsServerTasks } from '../src/components/dags.js';
import { ftpTasks } from '../src/components/ftp.js';
import { keepalivedTasks } from '../src/components/keepalived.js';
import { targetTasks, workerTargetTasks } from '../src/components/target.js';
import { AIRFLOW_ROLES, dagsMode } from '../src/inventory/rules.js';
import type { Playbook, Step } from '../src/run/playbook.js';
import { identityStep } from './base.js';

/** Mode sync: the release's Python files compile on the first Airflow host before any host switches. */
export const dagsCompileStep: Step = {
  name: 'dags: python files compile',
  hosts: { roles: AIRFLOW_ROLES },
  tasks: ({ inventory, host, facts, operator }) => dagsCompileTasks(inventory, host, facts.family, operator?.dags),
};

/** Mode sync: every Airflow host gets the release and switches its DAG folder to it. */
export const dagsReleaseStep: Step = {
  name: 'dags: release',
  hosts: { roles: AIRFLOW_ROLES },
  tasks: ({ inventory, operator }) => dagsReleaseTasks(inventory, operator?.dags),
};

export const nfsServerStep: Step = {
  name: 'dags: nfs servers',
  hosts: { roles: ['nfs'] },
  tasks: ({ inventory, host, facts }) => (dagsMode(inventory) === 'nfs' ? nfsServerTasks(inventory, host, facts.family) : []),
};

/** keepalived on the nfs hosts: the nfs VIP (and any other VIP of the host's roles: one keepalived.conf per host). */
export const nfsVipStep: Step = {
  name: 'dags: nfs VIP (keepalived)',
  hosts: { roles: ['nfs'] },
  tasks: ({ inventory, host }) => (dagsMode(inventory) === 'nfs' ? keepalivedTasks(inventory, host) : []),
};

export const nfsClientStep: Step = {
  name: 'dags: nfs clients',
  hosts: { roles: AIRFLOW_ROLES },
  tasks: ({ inventory, facts }) => (dagsMode(inventory) === 'nfs' ? nfsClientTasks(inventory, facts.family) : []),
};

/** Mode git: the deploy key and the Git server's pinned host key on every Airflow host (the DAG processors clone the repository themselves). */
export const dagsGitStep: Step = {
  name: 'dags: git deploy key',
  hosts: { roles: AIRFLOW_ROLES },
  tasks: ({ inventory, facts, operator }) => dagsGitTasks(inventory, facts.family, operator?.dagsGitKey),
};

export const ftpStep: Step = {
  name: 'ftp',
  hosts: { roles: ['ftp'] },
  tasks: ({ inventory, host, secrets, facts }) => ftpTasks(inventory, host, secrets, facts.family),
};

export const targetStep: Step = {
  name: 'ssh target',
  hosts: { roles: ['target'] },
  tasks: ({ inventory, operator }) => targetTasks(inventory, operator?.targetKey),
};

/** On the workers: the key for the targets, their pinned host keys, the Airflow connections. */
export const targetWorkersStep: Step = {
  name: 'ssh target: workers',
  hosts: { roles: ['worker'] },
  tasks: ({ inventory, facts, operator }) => workerTargetTasks(inventory, facts.family, operator?.targetKey, operator?.hostKeys),
};

export const dags: Playbook = {
  name: 'dags',
  description: 'DAG storage (NFS with a VIP, or releases synced from the operator), the FTP server, the SSH target',
  requiredRoles: [],
  steps: [identityStep, nfsServerStep, nfsVipStep, nfsClientStep, dagsCompileStep, dagsReleaseStep, dagsGitStep, ftpStep, targetStep, targetWorkersStep],
};

/** `airflow-ha deploy-dags`: only the DAG folder (mode sync): compile on one host, then release everywhere. */
export const deployDags: Playbook = {
  name: 'deploy-dags',
  description: 'ship the DAG folder (dags.mode sync): compile check on one Airflow host, then an atomic switch on every Airflow host',
  requiredRoles: [],
  steps: [dagsCompileStep, dagsReleaseStep],
};
