/**
 * `airflow-ha rotate-secret NAME`: the steps that roll one secret through every component that uses
 * it on a running cluster (data only; the CLI, src/cli/rotate.ts, decides the values and keeps the
 * secret store). The run's secrets are the set after the rotation: each step's tasks render the new
 * value where the component reads it, and the component's own handler reloads or restarts it, one
 * host at a time where a restart drops clients. The runner records the new secrets fingerprint on
 * every host after the last step (src/run/execute.ts, `secretsGuard.previous`).
 *
 * Per secret (the order matters: the store of a credential changes first, then its consumers):
 * - PostgreSQL role passwords (`postgresSuperuser`, `postgresReplication`, `postgresRewind`,
 *   `airflowDb`, `postgresMonitor`): `ALTER ROLE` on the primary (replicas get it by replication),
 *   then Patroni's config (leader, then replicas one at a time, each reloaded), airflow.cfg
 *   (rolling) or postgres_exporter's DSN (with a monitoring host only).
 * - RabbitMQ users (`rabbitmqAirflow`, `rabbitmqAdmin`): the definitions file with the new hash,
 *   imported into the running cluster (`rabbitmqctl import_definitions` updates an existing user's
 *   password), then for the Airflow user airflow.cfg's broker_url (rolling).
 * - `airflowFernetKey`: Airflow's documented rotation
 *   (https://airflow.apache.org/docs/apache-airflow/stable/security/secrets/fernet.html, "Rotating
 *   encryption keys"): `fernet_key = NEW,OLD` everywhere, `airflow rotate-fernet-key` once, then
 *   `fernet_key = NEW`.
 * - `airflowSecretKey`, `airflowJwtSecret`, `flowerBasicAuth`: airflow.cfg, rolling.
 * - `alertmanagerSmtp`, `alertmanagerWebhook`: alertmanager.yml on the monitoring hosts, reloaded.
 * - `airflowAdmin`: `airflow users reset-password` on the migrate host.
 * - `patroniRestApi`: patroni.yml, reloaded. `haproxyStats`: haproxy.cfg, reloaded. `ftpUser`: the
 *   account's password hash.
 * - `erlangCookie`: refused (every node must stop at once; see {@link ROTATION_REFUSED}).
 */
import { Secret } from '../src/core/secret.js';
import { InputError } from '../src/core/errors.js';
import { airflowAdminPasswordTasks, airflowRotateFernetTask, migrateHost } from '../src/components/airflow.js';
import { postgresExporterStep, prometheusStep } from './monitoring.js';
import { ROLE_OF_SECRET, rolePasswordCheck, rolePasswordTask } from '../src/components/patroni.js';
import { SECRET_NAMES, type ClusterSecrets, type SecretName } from '../src/inventory/secrets.js';
import type { Inventory } from '../src/inventory/schema.js';
import { selectHosts, type Playbook, type PlayContext, type Step } from '../src/run/playbook.js';
import { airflowSteps } from './airflow.js';
import { ftpStep } from './dags.js';
import { patroniLeaderStep, patroniReplicasStep, postgresRestartSteps } from './etcd-patroni.js';
import { haproxy } from './haproxy.js';
import { rabbitmq } from './rabbitmq.js';

/** A step of a rotation, with what holds once it is done (for the message of a rotation that stops). */
export interface RotationStep extends Step {
  /** The state of the components once this step is done on its hosts. */
  done: string;
}

/** The rotation playbook: its steps carry {@link RotationStep.done}. */
export interface RotationPlaybook extends Playbook {
  secret: SecretName;
  steps: readonly RotationStep[];
}

/** Secrets rotate-secret refuses, with why and what to do instead. */
export const ROTATION_REFUSED: Partial<Record<SecretName, string>> = {
  erlangCookie:
    'the Erlang cookie needs every RabbitMQ node stopped; not rotated online: nodes with different cookies cannot talk, so a rolling change splits the cluster (https://www.rabbitmq.com/docs/clustering#erlang-cookie). Stop every rabbitmq-server, put the new cookie in the secrets file, then run `airflow-ha apply --playbook rabbitmq --new-cluster` and restart the Airflow services',
};

/** @throws InputError when rotate-secret refuses `name` ({@link ROTATION_REFUSED}), saying why and what to do. */
export function assertRotatable(name: SecretName): void {
  const refused = ROTATION_REFUSED[name];
  if (refused) throw new InputError(`rotate-secret ${name}: refused: ${refused}; nothing was changed`);
}

/** The secrets rotate-secret rolls, in the order of the secrets file. */
export const ROTATABLE: readonly SecretName[] = SECRET_NAMES.filter((n) => ROTATION_REFUSED[n] === undefined);

const stepNamed = (steps: readonly Step[], name: string): Step => {
  const s = steps.find((x) => x.name === name);
  if (!s) throw new Error(`no step ${name}`);
  return s;
};

const airflowConfig = stepNamed(airflowSteps, 'airflow config');
const airflowMigrate = stepNamed(airflowSteps, 'airflow db migrate + admin user');
const webserverHealth = stepNamed(airflowSteps, 'airflow webserver health');
const workersGate = stepNamed(airflowSteps, 'airflow workers');
const haproxyStep = stepNamed(haproxy.steps, 'haproxy');
const rabbitmqNodes = stepNamed(rabbitmq.steps, 'rabbitmq nodes');

/** `step`'s tasks and gate built with `secrets(ctx)` in place of the run's secrets. */
function withSecrets(step: Step, secrets: (ctx: PlayContext) => ClusterSecrets): Step {
  return {
    ...step,
    tasks: (ctx) => step.tasks({ ...ctx, secrets: secrets(ctx) }),
    ...(step.gate ? { gate: { ...step.gate, check: (ctx: PlayContext) => step.gate!.check({ ...ctx, secrets: secrets(ctx) }) } } : {}),
  };
}

/**
 * airflow.cfg on every Airflow host, one host at a time (each host's running services restart after
 * its file changes), then the UI's and the workers' gates; `suffix` names a phase (the fernet key's).
 */
function airflowConfigSteps(what: string, suffix = '', secrets?: (ctx: PlayContext) => ClusterSecrets): RotationStep[] {
  const base = secrets ? withSecrets(airflowConfig, secrets) : airflowConfig;
  return [
    { ...base, name: `${airflowConfig.name}${suffix}`, serial: 1, done: `airflow.cfg holds ${what} on every Airflow host, each host's running Airflow services restarted` },
    { ...webserverHealth, name: `${webserverHealth.name}${suffix}`, done: 'the UI reports the metadatabase, scheduler, triggerer and DAG processor healthy through the VIP' },
    { ...workersGate, name: `${workersGate.name}${suffix}`, done: 'every Celery worker answers a ping on the broker' },
  ];
}

/** `ALTER ROLE` on the primary, with a gate: the new password logs in there. */
function alterRoleStep(name: keyof typeof ROLE_OF_SECRET): RotationStep {
  const role = ROLE_OF_SECRET[name];
  return {
    name: `alter role ${role}`,
    // The monitor role exists only in a monitored cluster (src/components/monitoring.ts creates it).
    hosts: name === 'postgresMonitor' ? { roles: ['postgresql'], onlyWith: 'monitoring' } : { roles: ['postgresql'] },
    tasks: ({ inventory, secrets }) => [rolePasswordTask(inventory, role, secrets[name])],
    gate: {
      name: `the new password of ${role} logs in on the primary`,
      on: 'each',
      check: ({ inventory, secrets }) => rolePasswordCheck(inventory, role, secrets[name]),
      timeoutSec: 30,
      intervalSec: 2,
    },
    done: `PostgreSQL role ${role} has the new password (a client still holding the old one is refused on its next login)`,
  };
}

/** patroni.yml on every node (the first node, then the others one at a time, each reloaded), then the restart check a changed config leaves. */
function patroniConfigSteps(what: string): RotationStep[] {
  return [
    { ...patroniLeaderStep, done: `patroni.yml of the first postgresql host holds ${what}, Patroni reloaded there` },
    { ...patroniReplicasStep, done: `patroni.yml of every postgresql host holds ${what}, Patroni reloaded, every node the primary or a streaming replica` },
    ...postgresRestartSteps.map((s) => ({ ...s, done: 'no PostgreSQL restart pending (a password needs none)' })),
  ];
}

/** The last step: every host, no task; the runner then records the new fingerprint on each. */
const fingerprintStep: RotationStep = {
  name: 'secrets fingerprint',
  hosts: { all: true },
  tasks: () => [],
  done: 'every host holds the fingerprint of the new secrets',
};

/**
 * The steps that rotate `name`. `previous` is the value before the rotation (the fernet key's first
 * phase renders `NEW,OLD`); the run's own secrets hold the new value.
 * @throws InputError for a secret in {@link ROTATION_REFUSED}, naming why.
 */
export function rotationPlaybook(name: SecretName, previous: Secret): RotationPlaybook {
  assertRotatable(name);
  const steps: RotationStep[] = [];
  switch (name) {
    case 'postgresSuperuser':
    case 'postgresReplication':
    case 'postgresRewind':
      steps.push(alterRoleStep(name), ...patroniConfigSteps(`the new password of ${ROLE_OF_SECRET[name]}`));
      break;
    case 'postgresMonitor':
      steps.push(alterRoleStep(name), { ...postgresExporterStep, done: "postgres_exporter's DSN holds the new password on every PostgreSQL host, the exporter restarted" });
      break;
    case 'alertmanagerSmtp':
    case 'alertmanagerWebhook':
      steps.push({ ...prometheusStep, done: `alertmanager.yml holds the new ${name === 'alertmanagerSmtp' ? 'SMTP' : 'webhook'} password on every monitoring host, Alertmanager reloaded` });
      break;
    case 'airflowDb':
      steps.push(alterRoleStep(name), ...airflowConfigSteps("the new database password (sql_alchemy_conn, result_backend)"));
      break;
    case 'patroniRestApi':
      steps.push(...patroniConfigSteps('the new REST API password'));
      break;
    case 'rabbitmqAirflow':
    case 'rabbitmqAdmin':
      steps.push({ ...rabbitmqNodes, done: `RabbitMQ user ${name === 'rabbitmqAdmin' ? 'admin' : 'airflow'} has the new password (definitions imported into the running cluster)` });
      if (name === 'rabbitmqAirflow') steps.push(...airflowConfigSteps('the new broker password (broker_url)'));
      break;
    case 'airflowFernetKey': {
      // Phase 1: both keys, the new one first (Fernet encrypts with the first, decrypts with either).
      const both = (ctx: PlayContext) => ({ ...ctx.secrets, airflowFernetKey: new Secret(`${ctx.secrets.airflowFernetKey.reveal()},${previous.reveal()}`) });
      steps.push(
        ...airflowConfigSteps('fernet_key = NEW,OLD', ' (fernet_key new,old)', both),
        {
          name: 'airflow rotate-fernet-key',
          hosts: airflowMigrate.hosts,
          tasks: ({ inventory, host }) => (migrateHost(inventory)?.name === host.name ? [airflowRotateFernetTask(inventory)] : []),
          done: 'every connection and variable is encrypted with the new key',
        },
        ...airflowConfigSteps('fernet_key = NEW', ' (fernet_key new)'),
      );
      break;
    }
    case 'airflowSecretKey':
    case 'airflowJwtSecret':
      steps.push(...airflowConfigSteps(name === 'airflowSecretKey' ? 'the new secret_key' : 'the new [api_auth] jwt_secret'));
      break;
    case 'flowerBasicAuth':
      steps.push(...airflowConfigSteps("Flower's new basic auth"));
      break;
    case 'airflowAdmin':
      steps.push({
        name: 'airflow admin password',
        hosts: airflowMigrate.hosts,
        tasks: ({ inventory, host, secrets }) => (migrateHost(inventory)?.name === host.name ? airflowAdminPasswordTasks(inventory, secrets) : []),
        done: 'the Airflow UI user admin has the new password',
      });
      break;
    case 'haproxyStats':
      steps.push({ ...haproxyStep, done: "haproxy.cfg's stats auth holds the new password on every HAProxy host, HAProxy reloaded" });
      break;
    case 'ftpUser':
      steps.push({ ...ftpStep, done: 'the FTP account has the new password hash' });
      break;
    case 'erlangCookie':
      throw new Error('unreachable: refused above');
  }
  steps.push(fingerprintStep);
  return { name: 'rotate-secret', secret: name, description: `rotate the secret ${name} on the running cluster`, requiredRoles: [], steps };
}

/** One step of a rotation as `--check` prints it: the hosts it runs on (in inventory order), rolling or not, its gate, what holds after it. */
export interface RotationOutlineStep {
  step: string;
  hosts: string[];
  /** Hosts change one at a time. */
  rolling: boolean;
  gate?: string;
  done: string;
}

/** The steps of `pb` that have hosts in `inv` (the runner skips the others), in order. */
export function rotationOutline(inv: Inventory, pb: RotationPlaybook): RotationOutlineStep[] {
  return pb.steps.flatMap((s) => {
    const hosts = selectHosts(inv, s.hosts).map((h) => h.name);
    if (hosts.length === 0) return [];
    return [{ step: s.name, hosts, rolling: (s.serial ?? 0) > 0 && hosts.length > 1, ...(s.gate ? { gate: s.gate.name } : {}), done: s.done }];
  });
}

/**
 * What a rotation that stopped at `failedStep` (on `failedHosts`) leaves, step by step, and the
 * command that resumes it: the steps before it are done, the failed one is done on its other hosts
 * at most (a rolling step stops at the failed host: the hosts after it keep the old value), the
 * later ones have not started, and the hosts still hold the fingerprint of the old secrets.
 */
export function rotationStopped(inv: Inventory, pb: RotationPlaybook, failedStep: string, failedHosts: readonly string[], resume: string): string {
  const outline = rotationOutline(inv, pb);
  const at = outline.findIndex((s) => s.step === failedStep);
  const lines = [`rotate-secret ${pb.secret} stopped at step "${failedStep}"${failedHosts.length ? ` (failed on ${failedHosts.join(', ')})` : ''}. Where each component is:`];
  outline.forEach((s, i) => {
    if (at === -1 || i < at) lines.push(`  done         ${s.step}: ${s.done}`);
    else if (i === at) lines.push(`  stopped      ${s.step} on ${s.hosts.join(', ')}: failed on ${failedHosts.join(', ') || 'its gate'}${s.rolling ? '; the hosts after the failed one in this order still have the old value' : ''}; once done: ${s.done}`);
    else lines.push(`  not started  ${s.step} (${s.hosts.join(', ')})`);
  });
  lines.push(
    `Every host still holds the fingerprint of the secrets before the rotation (only rotate-secret accepts the cluster in this state). ` +
      `Fix the cause, then resume with \`${resume}\`: it rolls the same new value; the steps already done find nothing to change (airflow rotate-fernet-key and users reset-password run again, which is harmless).`,
  );
  return `${lines.join('\n')}\n`;
}
