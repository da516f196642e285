/**
 * Bootstrap of the database tier (../shared/reference/ha-stack.md "Order of a bootstrap", 1-3 and 5):
 * host identity everywhere, etcd on its 3 members (gate: every member healthy), Patroni on the
 * first postgresql host (gate: a leader), then the other nodes one at a time (gate: each node is
 * the primary or a streaming replica), then Airflow's role and database through the primary, and
 * restarts a changed config needs: etcd members one at a time, PostgreSQL replicas before the leader.
 * Data only: steps and the tasks they want.
 */
import { backupCheck, backupPgTasks, backupRepoTasks } from '../src/components/backup.js';
import { etcdHealthyCheck, etcdRollingRestart, etcdTasks } from '../src/components/etcd.js';
import {
  airflowDatabaseTasks,
  patroniDcsSettings,
  patroniLeaderCheck,
  patroniNodes,
  patroniPendingRestart,
  patroniTasks,
  primaryOrStreamingCheck,
} from '../src/components/patroni.js';
import { roleNeeds, type Playbook, type Step } from '../src/run/playbook.js';
import { identityStep } from './base.js';
import { tlsStep } from './tls.js';

const etcdStep: Step = {
  name: 'etcd',
  hosts: { roles: ['etcd'] },
  needs: [{ role: 'etcd', why: "Patroni's DCS, holding the leader lock" }],
  tasks: ({ inventory, host, facts, operator }) => etcdTasks(inventory, host, facts, operator?.tls),
  gate: {
    name: 'etcd: every member healthy',
    on: 'first',
    check: ({ inventory }) => etcdHealthyCheck(inventory),
    timeoutSec: 120,
    intervalSec: 2,
  },
};

/** A changed etcd config on running members: one member restarts at a time, each waiting for the whole cluster to be healthy again (all at once would lose quorum). */
const etcdRestartStep: Step = {
  name: 'etcd restart',
  hosts: { roles: ['etcd'] },
  serial: 1,
  tasks: ({ inventory }) => [etcdRollingRestart(inventory)],
};

/**
 * Patroni on the first postgresql host, which bootstraps the cluster. The selector is static data,
 * so this step targets every postgresql host and gives tasks to the first one only (the others
 * must not race it for the leader lock).
 */
export const patroniLeaderStep: Step = {
  name: 'patroni leader',
  hosts: { roles: ['postgresql'] },
  needs: [{ role: 'postgresql', why: "the first postgresql host bootstraps Airflow's metadata database" }],
  tasks: ({ inventory, host, facts, secrets, operator }) => (patroniNodes(inventory)[0]?.name === host.name ? patroniTasks(inventory, host, facts, secrets, operator?.tls) : []),
  gate: {
    name: 'patroni: a node holds the leader lock (GET /leader = 200)',
    on: 'first',
    check: ({ inventory }) => patroniLeaderCheck(inventory),
    timeoutSec: 300,
    intervalSec: 2,
  },
};

/**
 * The other Patroni nodes, one at a time: each waits until its PostgreSQL runs (cloned from the
 * leader) before the next. The first node got its tasks in {@link patroniLeaderStep}; it gets none
 * here (the same files twice would be one desired state stated twice, and `render` would write them
 * twice), but it stays selected, so the gate checks it too.
 */
export const patroniReplicasStep: Step = {
  name: 'patroni replicas',
  hosts: { roles: ['postgresql'] },
  serial: 1,
  tasks: ({ inventory, host, facts, secrets, operator }) => (patroniNodes(inventory)[0]?.name === host.name ? [] : patroniTasks(inventory, host, facts, secrets, operator?.tls)),
  gate: {
    name: 'patroni: every node is the primary or a streaming replica',
    on: 'each',
    check: ({ inventory }) => primaryOrStreamingCheck(inventory),
    timeoutSec: 300,
    intervalSec: 2,
  },
};

/** The DCS settings of a cluster that already exists (bootstrap.dcs is read once): changed through the leader only. */
export const patroniDcsStep: Step = {
  name: 'patroni cluster settings',
  hosts: { roles: ['postgresql'] },
  tasks: ({ inventory, host, facts }) => [patroniDcsSettings(inventory, host, facts.family)],
};

const airflowDatabaseStep: Step = {
  name: 'airflow database',
  hosts: { roles: ['postgresql'] },
  tasks: ({ inventory, secrets }) => airflowDatabaseTasks(inventory, secrets),
};

/** A new setting that needs a PostgreSQL restart: replicas one at a time, then the leader. */
export const postgresRestartSteps: readonly Step[] = [
  {
    name: 'postgresql restart: replicas',
    hosts: { roles: ['postgresql'] },
    serial: 1,
    tasks: ({ inventory, host, facts }) => [patroniPendingRestart(inventory, host, facts.family, false)],
  },
  {
    name: 'postgresql restart: leader',
    hosts: { roles: ['postgresql'] },
    serial: 1,
    tasks: ({ inventory, host, facts }) => [patroniPendingRestart(inventory, host, facts.family, true)],
  },
];

/**
 * pgBackRest on the PostgreSQL hosts (README "Backups"): after the restarts, so a cluster that
 * gets a backup host later runs with archive_mode on (a restart setting) before the stanza is made.
 * Nothing without a host of role backup.
 */
export const backupPgStep: Step = {
  name: 'backup: postgresql hosts',
  hosts: { roles: ['postgresql'] },
  tasks: ({ inventory, host, facts, operator }) => backupPgTasks(inventory, host, facts, operator?.backupKeys, operator?.hostKeys?.bind(operator)),
};

/** The repository host: its user, config, keys, schedule and the stanza; the gate proves WAL archiving end to end. */
export const backupRepoStep: Step = {
  name: 'backup: repository host',
  hosts: { roles: ['backup'] },
  tasks: ({ inventory, facts, operator }) => backupRepoTasks(inventory, facts, operator?.backupKeys, operator?.hostKeys?.bind(operator), operator?.backupS3Keys),
  gate: {
    name: 'backup: pgbackrest check (the primary archives WAL to the repository)',
    on: 'first',
    check: ({ inventory }) => backupCheck(inventory),
    timeoutSec: 180,
    intervalSec: 5,
  },
};

const steps = [identityStep, tlsStep, etcdStep, etcdRestartStep, patroniLeaderStep, patroniReplicasStep, patroniDcsStep, airflowDatabaseStep, ...postgresRestartSteps, backupPgStep, backupRepoStep];

export const etcdPatroni: Playbook = {
  name: 'etcd-patroni',
  description: 'host identity, etcd (3 members), Patroni + PostgreSQL (leader first, then replicas), the Airflow database, pgBackRest backups (with a backup host)',
  steps,
  requiredRoles: roleNeeds(steps),
};
