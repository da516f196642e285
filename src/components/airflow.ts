/**
 * The Airflow services (bootstrap step 8 of ../shared/reference/ha-stack.md): a virtualenv with the
 * pinned Airflow on every Airflow host, one airflow.cfg rendered once for all of them, exactly one
 * `airflow db migrate` and one admin user, then one systemd unit per service of the host's roles.
 * Desired state only: tasks and check commands, no connection.
 *
 * Choices (README "Airflow"):
 * - Python: the OS's own 3.11 on both families — Debian 12 `python3` (3.11) + `python3-venv`, RHEL 9
 *   `python3.11` (AppStream; its venv module and ensurepip wheels come with it). RHEL 9's default
 *   `python3` is 3.9, which Airflow 2.9-2.11 still accept but which ends sooner; one minor version
 *   on both families means one constraints file (`constraints-3.11.txt`).
 * - Triggerer: on the `triggerer` hosts, or on every scheduler host when no host has that role
 *   (triggerers are active/active, like schedulers).
 * - DAG processor: `[scheduler] standalone_dag_processor = True`, on the `dag_processor` hosts (or the
 *   scheduler hosts when none has the role), active/standby: each runs under `etcdctl lock` on one
 *   etcd key, so exactly one parses the DAG folder while it holds the lock's lease; a standby takes
 *   over when the holder stops (lock released) or loses etcd for the lease TTL (15 s). During such a
 *   partition the old holder may parse for a moment alongside the new one: parsing is idempotent
 *   (both write the same serialized DAGs), so the cost is duplicate work, not damage.
 * - Secrets (fernet key, secret key, database, broker and Flower passwords) live only in airflow.cfg,
 *   mode 0640 root:airflow; the admin password in a root-only file fed to `airflow users create` on
 *   stdin (its getpass reads stdin when there is no terminal). None is ever on a command line.
 *
 * Sources: https://airflow.apache.org/docs/apache-airflow/2.9.0/installation/installing-from-pypi.html
 * (constraints), .../configurations-ref.html (keys), .../howto/run-with-systemd.html (units),
 * .../administration-and-deployment/logging-monitoring/check-health.html (/health, jobs check,
 * celery inspect ping), etcdctl README "LOCK".
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { sh, type Cmd } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import { AIRFLOW_ROLES, dagsMode } from '../inventory/rules.js';
import { AIRFLOW_PYTHON } from '../inventory/versions.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import { airflowLayout, type AirflowServiceKind } from './airflow-layout.js';
import type { Host, Inventory, Role } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { service, unit } from '../tasks/systemd.js';
import { group, user } from '../tasks/system.js';
import type { Handler, Task } from '../tasks/task.js';
import { renderTemplate, template } from '../tasks/template.js';
import { CELERY_CONFIG_MODULE, celeryConfigModule, celeryQueueSettings } from './celery.js';
import { etcdEndpoints, etcdMembers } from './etcd.js';
import { AIRFLOW_TLS_CHAIN, CA_CERT, scheme, serviceKey, serviceTlsFiles, tlsEnabled } from '../tls/plan.js';
import { tlsAirflowChainTask, tlsServiceKeyTask } from './tls.js';
import type { TlsMaterial } from '../run/playbook.js';
import { haproxyVips } from './haproxy.js';
import { AIRFLOW_DB, AIRFLOW_DB_USER } from './patroni.js';
import { AIRFLOW_USER as RABBITMQ_AIRFLOW_USER, AIRFLOW_VHOST, brokerNodes } from './rabbitmq.js';


/** The Python minor version of the virtualenv on both OS families (see the module comment; defined with the supported versions). */
export { AIRFLOW_PYTHON };

/** Environment file of every Airflow unit (no secrets: AIRFLOW_HOME and PATH). */
export const AIRFLOW_ENV_FILE = '/etc/airflow-ha/airflow.env';

/** Root-only file holding the admin password twice (the two getpass prompts of `users create`). */
export const AIRFLOW_ADMIN_PASSWORD_FILE = '/etc/airflow-ha/airflow-admin.password';

/** The UI user created once by the migrate step (its password: secret `airflowAdmin`). */
export const AIRFLOW_ADMIN_USER = 'admin';

/** The Flower basic-auth user (its password: secret `flowerBasicAuth`). */
export const FLOWER_USER = 'admin';

export { AIRFLOW_LAYOUTS, airflowLayout, type AirflowLayout, type AirflowServiceKind } from './airflow-layout.js';

/**
 * Paths under AIRFLOW_HOME. Root owns the home and everything root runs or writes there (the venv,
 * the wheelhouse, airflow.cfg, the DAG link and releases); the Airflow account may write only
 * `logs`, `state` and its `.ssh` (README "Airflow": who may write what).
 */
export interface AirflowPaths {
  home: string;
  /**
   * The symlink every unit and command goes through (`venv -> venv-<version>`), switched by an
   * atomic rename (`upgrade`, README "Upgrading Airflow").
   */
  venv: string;
  /** The virtualenv of one Airflow version, beside the others: `<home>/venv-<version>`. */
  venvOf(version: string): string;
  /** The `airflow` executable of the virtualenv. */
  bin: string;
  cfg: string;
  logs: string;
  /** What Airflow itself writes besides logs: pid files, its default webserver_config.py. */
  state: string;
  /** Where a wheelhouse is copied to on the hosts. */
  wheelhouse: string;
}

/**
 * The shell glob of the installed Airflow's core metadata in the virtualenv `venv`
 * (`apache_airflow-<version>.dist-info/METADATA`, whose `Version:` and `Summary:` lines say which
 * Airflow it is: https://packaging.python.org/en/latest/specifications/core-metadata/). Read by
 * `status` (the release check) and the preflight (rule `airflow:installed`).
 */
export function airflowMetadataGlob(venv: string): string {
  return `${venv}/lib/python3*/site-packages/apache_airflow-*.dist-info/METADATA`;
}

export function airflowPaths(inv: Inventory): AirflowPaths {
  const home = inv.cluster.airflow.home;
  return {
    home,
    venv: `${home}/venv`,
    venvOf: (version: string) => `${home}/venv-${version}`,
    bin: `${home}/venv/bin/airflow`,
    cfg: `${home}/airflow.cfg`,
    logs: `${home}/logs`,
    state: `${home}/state`,
    wheelhouse: `${home}/wheelhouse`,
  };
}

/** The hosts with an Airflow role, in inventory order. */
export function airflowHosts(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r)));
}

const withRole = (inv: Inventory, role: Role) => inv.hosts.filter((h) => h.roles.includes(role));

/** Triggerer hosts: role `triggerer`, or the scheduler hosts when no host has it. */
export function triggererHosts(inv: Inventory): Host[] {
  const t = withRole(inv, 'triggerer');
  return t.length > 0 ? t : withRole(inv, 'scheduler');
}

/** DAG processor hosts: role `dag_processor`, or the scheduler hosts when no host has it. */
export function dagProcessorHosts(inv: Inventory): Host[] {
  const d = withRole(inv, 'dag_processor');
  return d.length > 0 ? d : withRole(inv, 'scheduler');
}

/** The host that runs `db migrate` and creates the admin user: the first scheduler host. */
export function migrateHost(inv: Inventory): Host | undefined {
  return withRole(inv, 'scheduler')[0];
}

/** OS packages of the interpreter (see the module comment), plus `cluster.airflow.osPackages`. */
export function pythonPackages(inv: Inventory, family: OsFamily): string[] {
  const own = family === 'debian' ? ['python3', 'python3-venv'] : [`python${AIRFLOW_PYTHON}`];
  return [...own, ...(inv.cluster.airflow.osPackages ?? [])];
}

/**
 * Where clients reach PostgreSQL's primary: HAProxy's leader port on the haproxy VIP (or, without a
 * VIP, on the first haproxy host). Throws when there is no haproxy host.
 */
export function databaseEndpoint(inv: Inventory): { host: string; port: number } {
  const vip = haproxyVips(inv)[0];
  const address = vip?.address ?? withRole(inv, 'haproxy')[0]?.address;
  if (!address) throw new Error('Airflow reaches PostgreSQL through HAProxy: give a host the role haproxy');
  return { host: address, port: inv.cluster.ports.haproxyLeader };
}

/**
 * The query of Airflow's database URLs: with `cluster.tls`, `?sslmode=verify-full&sslrootcert=CA`
 * (libpq: TLS required, the server's certificate signed by the cluster CA and naming the host
 * connected to, here the VIP that HAProxy passes through;
 * https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS); otherwise empty.
 */
export function databaseQuery(inv: Inventory): string {
  return tlsEnabled(inv) ? `?sslmode=verify-full&sslrootcert=${CA_CERT}` : '';
}

/**
 * The URL of the UI through HAProxy's frontend on the main VIP (`[webserver] base_url`, `[api]
 * base_url`): `http://NAME[:ports.webserverFrontend]`, or with `cluster.tls`
 * `https://NAME[:ports.webserverFrontendTls]` (the plain port then only redirects to it). The name
 * is the VIP's, or its address with `byAddress`; the port is left out when it is the scheme's default.
 */
export function webserverFrontendUrl(inv: Inventory, byAddress = false): string {
  const vip = haproxyVips(inv)[0];
  const name = byAddress ? databaseEndpoint(inv).host : (vip?.name ?? databaseEndpoint(inv).host);
  const tls = tlsEnabled(inv);
  const port = tls ? inv.cluster.ports.webserverFrontendTls : inv.cluster.ports.webserverFrontend;
  return port === (tls ? 443 : 80) ? `${scheme(inv)}://${name}` : `${scheme(inv)}://${name}:${port}`;
}

/**
 * With `cluster.tls.enabled`, the UI servers' certificate and key (`[api] ssl_cert`/`ssl_key` on
 * Airflow 3, `[webserver] web_server_ssl_cert`/`web_server_ssl_key` on Airflow 2): the chain
 * {@link AIRFLOW_TLS_CHAIN} and the Airflow user's copy of the host key. The same on every Airflow
 * host: only the api-server serves with them, and on Airflow 3 the Task SDK trusts the chain's CA.
 * Null without TLS.
 */
export function uiTls(inv: Inventory): { cert: string; key: string } | null {
  return tlsEnabled(inv) ? { cert: AIRFLOW_TLS_CHAIN, key: serviceKey(inv, 'airflow').path } : null;
}

/**
 * Airflow 3's `[core] execution_api_server_url`: the Execution API of the api-servers through
 * HAProxy's UI frontend on the main VIP, by address (a worker needs no name resolution for it),
 * `http://ADDRESS[:PORT]/execution/` (`https://` with `cluster.tls`) (the form of the key's default, `{BASE_URL}/execution/`:
 * https://airflow.apache.org/docs/apache-airflow/3.4.0/configurations-ref.html). Throws when there
 * is no haproxy host.
 */
export function executionApiUrl(inv: Inventory): string {
  return `${webserverFrontendUrl(inv, true)}/execution/`;
}

/**
 * The variables of templates/airflow/airflow.cfg.njk (the same for every host). Secrets stay
 * Secrets: the template reveals them. Passwords are 32 characters of [A-Za-z0-9] (secrets.ts), safe
 * in a URL without escaping.
 */
export function airflowConfigVars(inv: Inventory, secrets: ClusterSecrets): Record<string, unknown> {
  const db = databaseEndpoint(inv);
  return {
    cluster: inv.cluster.name,
    version: inv.cluster.versions.airflow,
    // DAG storage (src/components/dags.ts) makes this path: an NFS mount or a symlink to a release.
    dags_folder: inv.cluster.dags.path,
    logs: airflowPaths(inv).logs,
    state: airflowPaths(inv).state,
    fernet_key: secrets.airflowFernetKey,
    secret_key: secrets.airflowSecretKey,
    // Airflow 3 only (airflow3.cfg.njk): the JWT signing key every api-server and scheduler shares, and where workers reach the Execution API.
    jwt_secret: secrets.airflowJwtSecret,
    execution_api_url: executionApiUrl(inv),
    db: { user: AIRFLOW_DB_USER, password: secrets.airflowDb, host: db.host, port: db.port, name: AIRFLOW_DB, query: databaseQuery(inv) },
    broker: {
      user: RABBITMQ_AIRFLOW_USER,
      password: secrets.rabbitmqAirflow,
      nodes: brokerNodes(inv),
      vhost: AIRFLOW_VHOST,
      ssl: celerySsl(inv),
    },
    base_url: webserverFrontendUrl(inv),
    ui_tls: uiTls(inv),
    ports: inv.cluster.ports,
    worker_concurrency: inv.cluster.airflow.workerConcurrency ?? null,
    flower: { user: FLOWER_USER, password: secrets.flowerBasicAuth },
    // `[celery] celery_config_options`: set only for a major whose Celery queue settings differ from the provider's defaults (src/components/celery.ts).
    dag_bundles: dagBundleConfig(inv),
    celery_config_options: celeryConfigModule(celeryQueueSettings(inv.cluster.versions.airflow)) ? `${CELERY_CONFIG_MODULE}.CELERY_CONFIG` : null,
  };
}

/** The Celery settings module of `inv`'s Airflow major, at `$AIRFLOW_HOME/config/` (on Airflow's sys.path), or undefined when it keeps the provider's defaults. */
export function celeryConfigFile(inv: Inventory): { path: string; content: string } | undefined {
  const content = celeryConfigModule(celeryQueueSettings(inv.cluster.versions.airflow));
  return content === undefined ? undefined : { path: `${airflowPaths(inv).home}/config/${CELERY_CONFIG_MODULE}.py`, content };
}

/**
 * With `cluster.tls.enabled`, `[celery] ssl_active = True` and its `ssl_key` / `ssl_cert` /
 * `ssl_cacert`: the Celery provider then sets Celery's `broker_use_ssl` (keyfile, certfile,
 * ca_certs, `cert_reqs` CERT_REQUIRED) for an `amqp://` broker_url, which therefore keeps the
 * `amqp://` scheme on the AMQPS port (the provider's default_celery.py checks for "amqp://":
 * https://airflow.apache.org/docs/apache-airflow-providers-celery/stable/_modules/airflow/providers/celery/executors/default_celery.html).
 * The key is the Airflow user's copy of the host key. Null without TLS.
 */
export function celerySsl(inv: Inventory): { key: string; cert: string; ca: string } | null {
  return tlsEnabled(inv) ? serviceTlsFiles(inv, 'airflow') : null;
}

/** The Airflow connection id of the Git DAG bundle (mode git), given to the units as AIRFLOW_CONN_AIRFLOW_HA_DAGS. */
export const DAGS_GIT_CONN_ID = 'airflow_ha_dags';

/** Mode git: the deploy key (0640 root:airflow) and the pinned host key of the Git server, on every Airflow host. */
export const DAGS_GIT_KEY = '/etc/airflow-ha/dags_git_ed25519';
export const DAGS_GIT_KNOWN_HOSTS = '/etc/airflow-ha/dags_git_known_hosts';

/**
 * Mode git: `[dag_processor] dag_bundle_config_list` (one GitDagBundle named `dags`) and
 * `dag_bundle_storage_path` (`<home>/dag_bundles`, the account's), else null.
 * GitDagBundle in dag_bundle_config_list, kwargs tracking_ref / subdir / refresh_interval:
 * https://airflow.apache.org/docs/apache-airflow-providers-git/stable/bundles/index.html and
 * https://airflow.apache.org/docs/apache-airflow/3.4.0/administration-and-deployment/dag-bundles.html.
 * `dag_bundle_storage_path` (default `<tmp>/airflow/dag_bundles`): read as
 * conf.get("dag_processor", "dag_bundle_storage_path") by Airflow's bundle code (seen in Airflow's
 * source; NOT checked against the 3.4.0 configuration reference page).
 */
export function dagBundleConfig(inv: Inventory): { list: string; storage: string } | null {
  const git = inv.cluster.dags.git;
  if (dagsMode(inv) !== 'git' || !git) return null;
  const kwargs = { git_conn_id: DAGS_GIT_CONN_ID, tracking_ref: git.ref, ...(git.subdir ? { subdir: git.subdir } : {}), refresh_interval: git.refreshIntervalSec };
  return { list: JSON.stringify([{ name: 'dags', classpath: 'airflow.providers.git.bundles.git.GitDagBundle', kwargs }]), storage: `${airflowPaths(inv).home}/dag_bundles` };
}

/**
 * Mode git: the DAG processor's working copy of bundle `dags`, `<storage>/dags/tracking_repo`, which
 * it resets to the tracked ref on each refresh (its HEAD is the bundle version the processor parses).
 * Layout from Airflow's source: `get_bundle_base_folder` = `<dag_bundle_storage_path>/<bundle name>`
 * (airflow/dag_processing/bundles/base.py) and GitDagBundle's `tracking_repo` beside `bare` and
 * `versions/<commit>` (airflow/providers/git/bundles/git.py).
 */
export function dagBundleCheckout(bundles: { storage: string }): string {
  return `${bundles.storage}/dags/tracking_repo`;
}

/** Mode git: bundle `dags`'s bare clone, `<storage>/dags/bare`, which each refresh fetches from the repository (its FETCH_HEAD is rewritten on every fetch); same sources as {@link dagBundleCheckout}. */
export function dagBundleBare(bundles: { storage: string }): string {
  return `${bundles.storage}/dags/bare`;
}

/**
 * Mode git: the Git connection as Airflow reads it from the environment (`AIRFLOW_CONN_<ID>`, JSON
 * form): conn_type git, host the URL, extras key_file / strict_host_key_checking / known_hosts_file
 * (https://airflow.apache.org/docs/apache-airflow-providers-git/stable/connections/git.html). No
 * secret: the key stays in its file. Undefined in the other modes.
 */
export function dagsGitConnEnv(inv: Inventory): string | undefined {
  const git = inv.cluster.dags.git;
  if (dagsMode(inv) !== 'git' || !git) return undefined;
  const extra = { key_file: DAGS_GIT_KEY, strict_host_key_checking: 'yes', known_hosts_file: DAGS_GIT_KNOWN_HOSTS };
  return `AIRFLOW_CONN_${DAGS_GIT_CONN_ID.toUpperCase()}=${JSON.stringify({ conn_type: 'git', host: git.url, extra })}`;
}

/** The environment file of every Airflow unit (systemd EnvironmentFile: one VAR=value a line, no quoting needed for these values). */
export function airflowEnvFile(inv: Inventory): string {
  const p = airflowPaths(inv);
  const conn = dagsGitConnEnv(inv);
  return `# Managed by airflow-ha: the environment of every Airflow unit (no secrets).\nAIRFLOW_HOME=${p.home}\nPATH=${p.venv}/bin:/usr/local/bin:/usr/bin:/bin\n${conn ? `${conn}\n` : ''}`;
}

/** airflow.cfg as every Airflow host gets it (pure; the secrets are in it). */
export function renderAirflowConfig(inv: Inventory, secrets: ClusterSecrets): string {
  return renderTemplate(airflowLayout(inv.cluster.versions.airflow).configTemplate, airflowConfigVars(inv, secrets));
}

/** One Airflow service of a host: its unit and the command it runs. */
export interface AirflowService {
  kind: AirflowServiceKind;
  unit: string;
  description: string;
  /** ExecStart, as words. */
  argv: string[];
}

/** Celery's node name of a worker host: `celery@<name>` (its `--celery-hostname`; the base step also sets the hostname to the inventory name). */
export function celeryNode(host: Pick<Host, 'name'>): string {
  return `celery@${host.name}`;
}

/** Queues of a worker host (`queues`, default Celery's `default`). */
export function workerQueues(host: Host): string[] {
  return host.queues ?? ['default'];
}

/** The lock key the DAG processors of a cluster take in etcd. */
export function dagProcessorLockKey(inv: Inventory): string {
  return `/airflow-ha/${inv.cluster.name}/dag-processor`;
}

/** The Airflow services `host` runs, in start order (ha-stack.md: schedulers, dag-processor, webservers, workers, Flower). */
export function airflowServices(inv: Inventory, host: Host): AirflowService[] {
  const layout = airflowLayout(inv.cluster.versions.airflow);
  const { bin, state } = airflowPaths(inv);
  const is = (list: Host[]) => list.some((h) => h.name === host.name);
  // The two services Airflow 2 gives a pid file even in the foreground (gunicorn's --pid, Celery's
  // --pidfile; default AIRFLOW_HOME, which is root's): into the account's state folder.
  const pid = (kind: AirflowServiceKind) => ['--pid', `${state}/${kind}.pid`];
  const out: AirflowService[] = [];
  const add = (kind: AirflowServiceKind, description: string, argv: string[]) => out.push({ kind, unit: layout.units[kind], description, argv });
  const cmd = (kind: AirflowServiceKind) => [bin, ...layout.commands[kind]];
  if (host.roles.includes('scheduler')) add('scheduler', 'Airflow scheduler', cmd('scheduler'));
  if (is(triggererHosts(inv))) add('triggerer', 'Airflow triggerer', cmd('triggerer'));
  if (is(dagProcessorHosts(inv))) {
    // cluster.tls: etcd wants a client certificate; the lock runs as the Airflow user, with its own copy of the host key.
    const f = serviceTlsFiles(inv, 'airflow');
    const tls = tlsEnabled(inv) ? [`--cacert=${f.ca}`, `--cert=${f.cert}`, `--key=${f.key}`] : [];
    const lock = etcdMembers(inv).length > 0 ? ['/usr/bin/etcdctl', `--endpoints=${etcdEndpoints(inv)}`, ...tls, 'lock', '--ttl=15', dagProcessorLockKey(inv)] : [];
    add('dag-processor', 'Airflow DAG processor (active while it holds the etcd lock)', [...lock, ...cmd('dag-processor')]);
  }
  if (host.roles.includes('webserver')) add('webserver', layout.major === 3 ? 'Airflow API server' : 'Airflow webserver', [...cmd('webserver'), ...pid('webserver')]);
  if (host.roles.includes('worker')) {
    const conc = inv.cluster.airflow.workerConcurrency;
    add('worker', `Airflow Celery worker (queues ${workerQueues(host).join(',')})`, [
      ...cmd('worker'),
      '--queues',
      workerQueues(host).join(','),
      '--celery-hostname',
      celeryNode(host),
      ...(conc ? ['--concurrency', String(conc)] : []),
      ...pid('worker'),
    ]);
  }
  if (host.roles.includes('flower')) add('flower', 'Airflow Celery Flower', cmd('flower'));
  return out;
}

/** The unit file of one service (templates/airflow/airflow.service.njk). */
export function renderAirflowUnit(inv: Inventory, svc: AirflowService): string {
  return renderTemplate('airflow/airflow.service.njk', {
    cluster: inv.cluster.name,
    description: svc.description,
    user: inv.cluster.airflow.user,
    home: inv.cluster.airflow.home,
    env_file: AIRFLOW_ENV_FILE,
    exec_start: svc.argv.join(' '),
  });
}

/**
 * `airflow ARGS` as the Airflow user with AIRFLOW_HOME set, from AIRFLOW_HOME (the caller's working
 * directory may not be readable by that user), through the `venv` link or, given `version`, from
 * that version's virtualenv.
 */
export function airflowCli(inv: Inventory, args: readonly string[], version?: string): Cmd {
  const p = airflowPaths(inv);
  // `version`: that version's own virtualenv instead of the `venv` link (upgrade, rollback).
  const bin = version === undefined ? p.bin : `${p.venvOf(version)}/bin/airflow`;
  return sh`cd ${p.home} && runuser -u ${inv.cluster.airflow.user} -- env ${`AIRFLOW_HOME=${p.home}`} ${bin} ${[...args]}`;
}

const fileCache = new Map<string, Buffer>();

/** A local file's bytes, read once per run (a wheelhouse is copied to many hosts). */
function localFile(file: string): Buffer {
  const st = statSync(file);
  const key = `${file}:${st.size}:${st.mtimeMs}`;
  let buf = fileCache.get(key);
  if (!buf) fileCache.set(key, (buf = readFileSync(file)));
  return buf;
}

/**
 * The wheelhouse files to copy: every `*.whl` of the folder plus its `constraints.txt`.
 * Throws when the folder cannot be read or lacks constraints.txt or an apache_airflow wheel.
 */
export function wheelhouseFiles(dir: string, version: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new Error(`cluster.airflow.install.wheelhouse ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!names.includes('constraints.txt')) throw new Error(`wheelhouse ${dir} has no constraints.txt (the constraints file of Airflow ${version})`);
  const wheels = names.filter((n) => n.endsWith('.whl')).sort();
  if (!wheels.some((n) => n.startsWith(`apache_airflow-${version}-`))) throw new Error(`wheelhouse ${dir} has no apache_airflow-${version}-*.whl`);
  return ['constraints.txt', ...wheels];
}

/**
 * The `pip install` of the pinned Airflow for the inventory's install source. It runs as root: the
 * virtualenv is root's, so that the services (the Airflow account) cannot change their own code;
 * nothing of the account's is on its path (cwd, the wheelhouse and the venv are root's).
 */
export function pipInstallCmd(inv: Inventory, v: string = inv.cluster.versions.airflow): Cmd {
  const { install } = inv.cluster.airflow;
  const p = airflowPaths(inv);
  // Mode git: the Git provider (GitDagBundle, the git connection type) comes with the `git` extra.
  const extras = [...airflowLayout(v).extras, ...(dagsMode(inv) === 'git' ? ['git'] : [])];
  const requirement = `apache-airflow[${extras.join(',')}]==${v}`;
  const constraints = install.constraintsUrl ?? `https://raw.githubusercontent.com/apache/airflow/constraints-${v}/constraints-${AIRFLOW_PYTHON}.txt`;
  const pip = sh`${`${p.venvOf(v)}/bin/pip`} install --disable-pip-version-check --no-input`;
  switch (install.source) {
    case 'pypi':
      return sh`${pip} --constraint ${constraints} ${requirement}`;
    case 'index':
      return sh`${pip} --index-url ${install.indexUrl ?? ''} --constraint ${constraints} ${requirement}`;
    case 'wheelhouse':
      return sh`${pip} --no-index --find-links ${p.wheelhouse} --constraint ${install.constraintsUrl ?? `${p.wheelhouse}/constraints.txt`} ${requirement}`;
  }
}

/**
 * AIRFLOW_HOME as root's (0755 root:root): root runs the venv's programs and writes the DAG link
 * and releases there, so the account must not be able to rename or replace anything in it. A
 * cluster set up before this rule has it owned by the account (useradd --create-home): this task
 * gives it back to root (`chown` of a directory whose parent is root's: no symlink can be planted).
 */
export function airflowHomeTask(inv: Inventory): Task {
  return directory({ path: airflowPaths(inv).home, mode: '0755', owner: 'root', group: 'root' });
}

/**
 * The Airflow account: a system group and user, home AIRFLOW_HOME (root's: {@link airflowHomeTask}),
 * no login shell (services and `runuser -u airflow -- CMD` need none; SSH to the target is
 * outgoing). Shared by every step that needs the account first (the SSH target's worker keys, the
 * DAG compile check, the install), so they never disagree.
 */
export function airflowAccountTasks(inv: Inventory, family: OsFamily): Task[] {
  const a = inv.cluster.airflow;
  const shell = family === 'debian' ? '/usr/sbin/nologin' : '/sbin/nologin';
  return [group({ name: a.user, system: true }), user({ name: a.user, system: true, home: airflowPaths(inv).home, shell, primaryGroup: a.user }), airflowHomeTask(inv)];
}

/**
 * Install tasks of an Airflow host: the interpreter's OS packages (and etcdctl on DAG processor
 * hosts, with `cluster.tls` the Airflow user's copy of the host key for it), the Airflow user and
 * folders (home root's; `logs` and `state` the account's), then
 * {@link airflowVenvTasks} of the inventory's version and {@link venvSwitchTask} onto it (a switch
 * restarts the host's running services: `upgrade` is the rolling way to change the version).
 */
export function airflowInstallTasks(inv: Inventory, host: Host, facts: HostFacts, tls?: TlsMaterial): Task[] {
  const p = airflowPaths(inv);
  const a = inv.cluster.airflow;
  const etcdctl = dagProcessorHosts(inv).some((h) => h.name === host.name) && etcdMembers(inv).length > 0;
  const services = airflowServices(inv, host);
  const units = services.map((s) => s.unit);
  const uiUnits = services.filter((s) => s.kind === 'webserver').map((s) => s.unit);
  return [
    packages({ names: [...pythonPackages(inv, facts.family), ...(etcdctl ? [facts.family === 'debian' ? 'etcd-client' : 'etcd'] : [])] }),
    ...airflowAccountTasks(inv, facts.family),
    // cluster.tls: the Airflow user's copy of the host key (Celery's client certificate to the
    // brokers on every Airflow host, and the DAG processor's etcd lock).
    ...tlsServiceKeyTask(inv, host, tls, 'airflow'),
    // cluster.tls: the UI's certificate chain, which the api-server serves and the Task SDK trusts.
    ...tlsAirflowChainTask(inv, host, tls, uiUnits.length > 0 ? [restartRunningHandler(uiUnits)] : []),
    directory({ path: p.logs, mode: '0755', owner: a.user, group: a.user }),
    directory({ path: p.state, mode: '0750', owner: a.user, group: a.user }),
    ...airflowVenvTasks(inv, inv.cluster.versions.airflow),
    venvSwitchTask(inv, inv.cluster.versions.airflow, units.length > 0 ? [restartRunningHandler(units)] : []),
  ];
}

/**
 * The virtualenv of Airflow `version` at `<home>/venv-<version>` (root-owned: the services cannot
 * change their own code), beside the other versions': the wheelhouse when that is the source, the
 * venv, and the pinned Airflow, skipped when its dist-info is already there. A virtualenv with
 * anything in it that is not root's is removed first, so the next tasks build it again from the
 * pinned source. Python's venv writes its own absolute path into its scripts (`#!<venv>/bin/python`),
 * so a venv is never moved: each version keeps its folder, and {@link venvSwitchTask} points the
 * `venv` link at one (https://docs.python.org/3.11/library/venv.html: "scripts ... hardcode the
 * absolute path" / venvs are not relocatable).
 */
export function airflowVenvTasks(inv: Inventory, version: string): Task[] {
  const p = airflowPaths(inv);
  const a = inv.cluster.airflow;
  const dir = p.venvOf(version);
  const tasks: Task[] = [
    command({
      name: `virtualenv ${dir} is root's alone (else rebuilt)`,
      cmd: sh`rm -rf -- ${dir}`,
      // Not root's: any file or folder in it, the venv itself, or a symlink put in its place (find -P tests links, not targets).
      unless: sh`test -z "$(find ${dir} ! -user root -print -quit 2>/dev/null)"`,
    }),
  ];
  if (a.install.source === 'wheelhouse') {
    const wh = a.install.wheelhouse ?? '';
    tasks.push(directory({ path: p.wheelhouse, mode: '0755' }));
    for (const name of wheelhouseFiles(wh, version)) {
      tasks.push(file({ path: `${p.wheelhouse}/${name}`, content: localFile(path.join(wh, name)), label: `wheelhouse ${name}` }));
    }
  }
  tasks.push(
    command({ name: `virtualenv ${dir}`, cmd: sh`${`python${AIRFLOW_PYTHON}`} -m venv ${dir}`, creates: `${dir}/bin/python` }),
    command({
      name: `apache-airflow ${version} (${a.install.source})`,
      cmd: pipInstallCmd(inv, version),
      creates: `${dir}/lib/python${AIRFLOW_PYTHON}/site-packages/apache_airflow-${version}.dist-info`,
      timeoutSec: 1800,
    }),
  );
  return tasks;
}

/**
 * Points `<home>/venv` at `venv-<version>`: a new link beside it renamed over it (rename(2) is
 * atomic: every start of a unit sees the old or the new version, never none). A `venv` that is
 * still a real folder (a cluster set up before versioned virtualenvs) is moved aside and removed
 * once the link is in place; running services keep the files they opened. No change when the link
 * is root's and already points there.
 */
export function venvSwitchTask(inv: Inventory, version: string, notify: Handler[] = []): Task {
  const p = airflowPaths(inv);
  const target = path.basename(p.venvOf(version));
  const tmp = `${p.venv}.new`;
  const old = `${p.venv}.pre-versioned`;
  return command({
    name: `${p.venv} -> ${target}`,
    cmd: sh`rm -rf -- ${tmp} && ln -s ${target} ${tmp} && if [ -d ${p.venv} ] && [ ! -L ${p.venv} ]; then rm -rf -- ${old} && mv -T ${p.venv} ${old}; fi && mv -T ${tmp} ${p.venv} && rm -rf -- ${old}`,
    unless: sh`[ -L ${p.venv} ] && [ "$(stat -c %U ${p.venv})" = root ] && [ "$(readlink ${p.venv})" = ${target} ]`,
    notify,
  });
}

/**
 * Removes the virtualenvs of every version but `keep` (the running one and the one installed
 * beside it): `upgrade` keeps exactly the previous version for `--rollback`.
 */
export function venvPruneTask(inv: Inventory, keep: readonly string[]): Task {
  const p = airflowPaths(inv);
  const names = keep.map((v) => path.basename(p.venvOf(v)));
  const list = sh`find ${p.home} -mindepth 1 -maxdepth 1 -type d -name 'venv-*' ${names.flatMap((n) => ['!', '-name', n])}`;
  return command({
    name: `remove the virtualenvs other than ${names.join(', ')}`,
    cmd: sh`${list} -exec rm -rf -- {} +`,
    unless: sh`test -z "$(${list} -print -quit)"`,
  });
}

/** Handler: restart the host's running Airflow services after airflow.cfg changed (stopped ones stay stopped). */
export function restartRunningHandler(units: readonly string[]): Handler {
  return {
    id: 'airflow:restart-running',
    name: 'restart the running Airflow services',
    ops: units.map((u) => exec(sh`if systemctl -q is-active ${u}; then systemctl restart ${u}; fi`)),
  };
}

/** Config tasks of an Airflow host: the env file and airflow.cfg (0640 root:airflow: it holds the secrets); a change restarts the running services unless `restart` is false. */
export function airflowConfigTasks(inv: Inventory, host: Host, secrets: ClusterSecrets, restart = true): Task[] {
  const p = airflowPaths(inv);
  const units = airflowServices(inv, host).map((s) => s.unit);
  // `upgrade` restarts each service itself, in its order: no handler then.
  const notify = restart && units.length > 0 ? [restartRunningHandler(units)] : [];
  const celery = celeryConfigFile(inv);
  const cliModule = celeryCliModule(inv);
  return [
    ...(celery ? [directory({ path: path.dirname(celery.path) }), file({ path: celery.path, content: celery.content, notify })] : []),
    directory({ path: '/etc/airflow-ha' }),
    file({ path: AIRFLOW_ENV_FILE, content: airflowEnvFile(inv), notify }),
    ...(cliModule ? [directory({ path: CELERY_CLI_DIR }), file({ path: `${CELERY_CLI_DIR}/${CELERY_CLI_MODULE}.py`, content: cliModule })] : []),
    template({
      path: p.cfg,
      template: airflowLayout(inv.cluster.versions.airflow).configTemplate,
      vars: airflowConfigVars(inv, secrets),
      mode: '0640',
      owner: 'root',
      group: inv.cluster.airflow.user,
      notify,
    }),
  ];
}

/**
 * Tasks of the migrate host (the first scheduler host; the step runs before any service starts):
 * `airflow db migrate` unless `airflow db check-migrations` says the schema is current, then the
 * admin user unless `airflow users list` has it. The admin password reaches `users create` on stdin
 * from a root-only file (getpass falls back to stdin without a terminal), never on a command line.
 */
export function airflowMigrateTasks(inv: Inventory, secrets: ClusterSecrets): Task[] {
  return [
    command({ name: 'airflow db migrate', cmd: airflowCli(inv, ['db', 'migrate']), unless: sh`${airflowCli(inv, ['db', 'check-migrations', '-t', '1'])} >/dev/null 2>&1`, timeoutSec: 1800 }),
    adminPasswordFile(secrets),
    command({
      name: `airflow user ${AIRFLOW_ADMIN_USER}`,
      cmd: sh`${airflowCli(inv, ['users', 'create', '--username', AIRFLOW_ADMIN_USER, '--firstname', 'Airflow', '--lastname', 'Admin', '--role', 'Admin', '--email', `${AIRFLOW_ADMIN_USER}@${inv.cluster.name}.invalid`])} < ${AIRFLOW_ADMIN_PASSWORD_FILE}`,
      unless: sh`${airflowCli(inv, ['users', 'list', '--output', 'json'])} 2>/dev/null | grep -q ${`"username": "${AIRFLOW_ADMIN_USER}"`}`,
      timeoutSec: 300,
    }),
  ];
}

/** The admin password file of the migrate host (root-only, the password twice: getpass's prompt and its confirmation). */
function adminPasswordFile(secrets: ClusterSecrets): Task {
  const pw = secrets.airflowAdmin.reveal();
  return file({ path: AIRFLOW_ADMIN_PASSWORD_FILE, content: `${pw}\n${pw}\n`, mode: '0600', label: `file ${AIRFLOW_ADMIN_PASSWORD_FILE} (secret)`, holdsSecrets: true });
}

/**
 * rotate-secret airflowAdmin, on the migrate host: the password file with the new password, then
 * `airflow users reset-password --username admin` reading it on stdin (without `--password` the
 * command prompts, and getpass falls back to stdin without a terminal; the FAB provider's
 * USERS_COMMANDS, airflow/providers/fab/auth_manager/cli_commands/definition.py). Runs every time
 * it is asked: nothing cheap tells whether the account already has the new password.
 */
export function airflowAdminPasswordTasks(inv: Inventory, secrets: ClusterSecrets): Task[] {
  return [
    adminPasswordFile(secrets),
    command({
      name: `airflow users reset-password ${AIRFLOW_ADMIN_USER}`,
      cmd: sh`${airflowCli(inv, ['users', 'reset-password', '--username', AIRFLOW_ADMIN_USER])} < ${AIRFLOW_ADMIN_PASSWORD_FILE}`,
      timeoutSec: 300,
    }),
  ];
}

/**
 * rotate-secret airflowFernetKey, on the migrate host, while every airflow.cfg has `fernet_key =
 * NEW,OLD`: `airflow rotate-fernet-key` re-encrypts the connections and variables with the first
 * key ("Rotating encryption keys",
 * https://airflow.apache.org/docs/apache-airflow/stable/security/secrets/fernet.html). Runs every
 * time it is asked (it is idempotent: values already under the new key are re-encrypted with it).
 */
export function airflowRotateFernetTask(inv: Inventory): Task {
  return command({ name: 'airflow rotate-fernet-key', cmd: airflowCli(inv, ['rotate-fernet-key']), timeoutSec: 1800 });
}

/** Service tasks of an Airflow host: each unit written, enabled and started, in start order. */
export function airflowServiceTasks(inv: Inventory, host: Host): Task[] {
  return airflowServices(inv, host).flatMap((svc) => [
    unit({ name: svc.unit, content: renderAirflowUnit(inv, svc) }),
    service({ name: svc.unit, enabled: true, state: 'started' }),
  ]);
}

/** The components of the UI's health JSON the gate requires: always present, and present when not null. */
export const HEALTH_REQUIRED = ['metadatabase', 'scheduler'] as const;
export const HEALTH_IF_DEPLOYED = ['triggerer', 'dag_processor'] as const;

/**
 * Gate: the UI's health JSON through HAProxy's frontend on the VIP reports the metadatabase and the
 * scheduler `healthy`, and the triggerer and the DAG processor too (airflow-ha deploys both; their
 * `status` is null only in a deployment without that component, per
 * https://airflow.apache.org/docs/apache-airflow/stable/administration-and-deployment/logging-monitoring/check-health.html).
 * The HTTP code is always 200: the body decides. python3 is on every host. Waiting for the DAG
 * processor matters: a restarted one holds its etcd lock only once the previous holder's lease
 * (15 s) ends, so the end of a run means every component heartbeats, not only the scheduler.
 * Exit 1 with `unhealthy: NAMES` on stderr while any is not.
 */
export function webserverHealthCheck(inv: Inventory): Cmd {
  const url = `${webserverFrontendUrl(inv, true)}${airflowLayout(inv.cluster.versions.airflow).healthPath}`;
  // cluster.tls: HTTPS at the VIP, verified against the cluster CA (every host has it).
  return sh`python3 -c ${HEALTH_GATE_SCRIPT} ${tlsEnabled(inv) ? [url, CA_CERT] : [url]}`;
}

/** The Python of {@link webserverHealthCheck}: `python3 -c SCRIPT URL [CA]` (CA: the file an `https://` URL's server is verified against). */
export const HEALTH_GATE_SCRIPT = [
  'import json, ssl, sys, urllib.request',
  'ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None',
  'h = json.load(urllib.request.urlopen(sys.argv[1], timeout=5, context=ctx))',
  `need = ${JSON.stringify(HEALTH_REQUIRED)} + [k for k in ${JSON.stringify(HEALTH_IF_DEPLOYED)} if (h.get(k) or {}).get("status") is not None]`,
  'bad = [k for k in need if (h.get(k) or {}).get("status") != "healthy"]',
  'sys.exit("unhealthy: " + ", ".join(bad) if bad else 0)',
].join('\n');

/** Gate: the worker on `host` answers a Celery ping on the broker (`celery inspect ping`). */
export function workerPingCheck(inv: Inventory, host: Host): Cmd {
  return sh`${celeryInspectCmd(inv, host, 'ping', 5)} >/dev/null`;
}

/**
 * `celery ARGS` from the Airflow virtualenv as the Airflow account (never root: the account's
 * broker settings and the Celery it talks to are its own), run on an Airflow host WITHOUT importing Airflow:
 * Celery's default app, its broker read on the host from airflow.cfg's `[celery] broker_url` line
 * into CELERY_BROKER_URL, which Celery's `Settings.broker_url` reads first (celery/app/utils.py).
 * `--app` of Airflow's executor would import all of Airflow first (seconds of CPU on every call).
 * The password never leaves the host and is in no argv (only in celery's environment). Inspect and
 * control messages go through Celery's `celery` pidbox exchange in the broker's vhost, which Airflow
 * does not rename. A simple command (`sh -c SCRIPT ...`), so it composes with `&&`, `|` and `$(...)`;
 * exit 1 (and a line on stderr) when airflow.cfg has no broker_url.
 */
function celeryCli(inv: Inventory, args: Cmd): Cmd {
  const p = airflowPaths(inv);
  // cluster.tls: the app of celeryCliModule, which carries broker_use_ssl (no environment variable does).
  const app = celerySsl(inv) ? sh`env ${`PYTHONPATH=${CELERY_CLI_DIR}`} ${`${p.venv}/bin/celery`} --app ${CELERY_CLI_MODULE}` : sh`${`${p.venv}/bin/celery`}`;
  return sh`runuser -u ${inv.cluster.airflow.user} -- sh -c ${CELERY_WITH_BROKER} celery ${p.cfg} ${app} ${args}`;
}

/** The folder and module name of {@link celeryCliModule} on every Airflow host (root's, 0644). */
export const CELERY_CLI_DIR = '/etc/airflow-ha/celery';
export const CELERY_CLI_MODULE = 'airflow_ha_celery_cli';

/**
 * With `cluster.tls.enabled`, the Python module of the `celery` CLI airflow-ha runs (gates, drains,
 * inspect): an app whose only setting is `broker_use_ssl`, the same as the Celery provider builds
 * from `[celery] ssl_*` ({@link celerySsl}); its broker still comes from CELERY_BROKER_URL. Celery
 * has no environment variable for broker_use_ssl (https://docs.celeryq.dev/en/stable/userguide/configuration.html#broker-use-ssl),
 * and importing Airflow's own app costs seconds of CPU on every call. Undefined without TLS.
 */
export function celeryCliModule(inv: Inventory): string | undefined {
  const ssl = celerySsl(inv);
  if (!ssl) return undefined;
  return [
    '# Managed by airflow-ha: the Celery app of the celery CLI airflow-ha runs (gates, drains), with cluster.tls.',
    'import ssl',
    'from celery import Celery',
    '',
    'app = Celery("airflow_ha_cli")',
    `app.conf.broker_use_ssl = {"keyfile": ${JSON.stringify(ssl.key)}, "certfile": ${JSON.stringify(ssl.cert)}, "ca_certs": ${JSON.stringify(ssl.ca)}, "cert_reqs": ssl.CERT_REQUIRED}`,
    '',
  ].join('\n');
}

/**
 * `sh -c` script of {@link celeryCli}: $1 airflow.cfg, then the celery command and its arguments.
 * It runs as the Airflow account (`runuser`; airflow.cfg is 0640 root:airflow), from `/`.
 */
const CELERY_WITH_BROKER = 'cd / && u=$(sed -n "s/^broker_url = //p" "$1") && [ -n "$u" ] || { echo "no broker_url in $1" >&2; exit 1; }; shift; CELERY_BROKER_URL=$u exec "$@"';

/**
 * `celery inspect COMMAND --destination celery@HOST --json` through {@link celeryCli}. Waits at most
 * `replyTimeoutSec` for the reply (it returns as soon as the worker answers); prints Celery's
 * `Error: No nodes replied within time constraint` when none came (exit code 69).
 */
export function celeryInspectCmd(inv: Inventory, host: Host, command: 'active_queues' | 'ping' | 'active', replyTimeoutSec: number): Cmd {
  return celeryCli(inv, sh`inspect ${command} --timeout ${replyTimeoutSec} --destination ${celeryNode(host)} --json`);
}

/**
 * Tasks that drain the worker of `host` before it is removed: it stops consuming each of its
 * queues (`celery control cancel_consumer`, Celery docs "Workers Guide: Queues"), then the task
 * waits until `celery inspect active` lists no running task on it, at most `timeoutSec` seconds
 * (then it fails, naming how many are still running; nothing is stopped). A worker that is not
 * running has nothing to drain: the task is then a no-op.
 */
export function workerDrainTasks(inv: Inventory, host: Host, timeoutSec: number): Task[] {
  const dest = celeryNode(host);
  const unitName = airflowLayout(inv.cluster.versions.airflow).units.worker;
  const cancel = workerQueues(host).map((q) => sh`${celeryCli(inv, sh`control cancel_consumer ${q} --destination ${dest}`)} >/dev/null`);
  const countPy = 'import json,sys\ntry:\n d=json.load(sys.stdin)\nexcept Exception:\n d={}\nprint(sum(len(v or []) for v in d.values()))';
  const active = sh`${celeryInspectCmd(inv, host, 'active', 5)} 2>/dev/null | python3 -c ${countPy}`;
  return [
    command({
      name: `drain ${dest}: stop consuming ${workerQueues(host).join(',')}, wait for running tasks (at most ${timeoutSec} s)`,
      cmd: sh`${cancel.reduce((a, c) => sh`${a} && ${c}`)} && end=$(( $(date +%s) + ${timeoutSec} )) && while n=$(${active}); [ "$n" != 0 ]; do if [ "$(date +%s)" -ge "$end" ]; then echo ${`${dest} still runs`} "$n" ${`task(s) after ${timeoutSec} s: not stopped (raise --drain-timeout, or wait and run again)`} >&2; exit 1; fi; sleep 2; done`,
      unless: sh`! systemctl -q is-active ${unitName}`,
      timeoutSec: timeoutSec + 60,
    }),
  ];
}

/** Tasks that stop and disable every Airflow service of `host` (after {@link workerDrainTasks}). */
export function airflowStopTasks(inv: Inventory, host: Host): Task[] {
  return airflowServices(inv, host).map((svc) => service({ name: svc.unit, enabled: false, state: 'stopped' }));
}
