/**
 * Monitoring: Prometheus and Alertmanager on the hosts of role `monitoring`, node_exporter on every
 * host, postgres_exporter on the PostgreSQL hosts, and the exporters the components carry
 * themselves (etcd's and Patroni's /metrics, RabbitMQ's rabbitmq_prometheus plugin, HAProxy's
 * built-in exporter, Flower's /metrics; each switched on by its own component when the inventory is
 * {@link monitored}). Desired state only: the runner executes the tasks. Every package is Debian
 * 12's own: prometheus 2.42, prometheus-alertmanager 0.25, prometheus-node-exporter 1.5,
 * prometheus-postgres-exporter 0.11 (apt-cache policy on Debian 12). Debian 12 has no
 * prometheus-statsd-exporter, so Airflow's StatsD metrics are rendered only ({@link statsdMapping}).
 */
import { sh, type Cmd } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';
import type { Fact } from '../facts/fact.js';
import { monitored } from '../inventory/ports.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { reloadHandler, restartHandler, service } from '../tasks/systemd.js';
import { renderTemplate, template } from '../tasks/template.js';
import type { Task } from '../tasks/task.js';
import { tlsEnabled } from '../tls/plan.js';
import { FLOWER_USER } from './airflow.js';
import { AIRFLOW_DB, patroniNodes, patroniSynchronous, ROLE_OF_SECRET } from './patroni.js';

export { monitored } from '../inventory/ports.js';

/** Where the Debian packages read their configuration (each unit's `EnvironmentFile` gives `$ARGS`). */
export const MONITORING_PATHS = {
  prometheusYml: '/etc/prometheus/prometheus.yml',
  rules: '/etc/prometheus/airflow-ha.rules.yml',
  prometheusDefault: '/etc/default/prometheus',
  alertmanagerYml: '/etc/prometheus/alertmanager.yml',
  alertmanagerDefault: '/etc/default/prometheus-alertmanager',
  nodeExporterDefault: '/etc/default/prometheus-node-exporter',
  postgresExporterDefault: '/etc/default/prometheus-postgres-exporter',
  queries: '/etc/prometheus/postgres-exporter-queries.yml',
  /** node_exporter's textfile collector directory (Debian's default `--collector.textfile.directory`). */
  textfileDir: '/var/lib/prometheus/node-exporter',
  /** keepalived's notify script, which writes the VIP state into {@link MONITORING_PATHS.textfileDir}. */
  vipState: '/usr/local/lib/airflow-ha/vip-state',
} as const;

/** The Debian units. */
export const MONITORING_UNITS = {
  prometheus: 'prometheus',
  alertmanager: 'prometheus-alertmanager',
  nodeExporter: 'prometheus-node-exporter',
  postgresExporter: 'prometheus-postgres-exporter',
} as const;

/** postgres_exporter's PostgreSQL role: LOGIN, member of pg_monitor (PostgreSQL 15 docs "Predefined Roles"), nothing else. */
export const MONITOR_DB_USER = ROLE_OF_SECRET.postgresMonitor;

/** The systemd unit of a Celery worker (src/components/airflow.ts renders it), counted by the WorkersMissing alert. */
export const WORKER_UNIT = 'airflow-worker.service';

/** File systems the disk alert ignores: kernel and memory file systems, and a container's overlay root (the lab's). */
export const PSEUDO_FS = 'tmpfs|devtmpfs|overlay|squashfs|nsfs|ramfs|proc|sysfs|fuse.lxcfs';

/** Replication lag (bytes of WAL a replica has not replayed) above which PatroniReplicationLag fires: 16 MiB, one WAL segment. */
export const LAG_ALERT_BYTES = 16 * 1024 * 1024;

/** How long PatroniFailover fires after the leader lock moved (a PromQL range). */
export const FAILOVER_WINDOW = '2m';

/** Seconds without an Airflow job heartbeat before the heartbeat alerts fire (status's own limits are 30 s and 10.5 s). */
export const HEARTBEAT_STALE_SEC = 60;

/** The hosts of role `monitoring`, in inventory order (one or two: rule `monitoring:hosts`). */
export function monitoringHosts(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.includes('monitoring'));
}

const hostsOf = (inv: Inventory, role: Host['roles'][number]) => inv.hosts.filter((h) => h.roles.includes(role));
/** The VIPs `host` shares (as src/components/keepalived.ts hostVips; not imported: keepalived imports this module). */
const hostVips = (inv: Inventory, host: Host) => inv.cluster.vips.filter((v) => host.roles.includes(v.role));

/** One scrape job of prometheus.yml. */
export interface ScrapeJob {
  name: string;
  path?: string;
  params?: Record<string, string[]>;
  basic_auth?: { user: string; password: Secret };
  targets: { host: string; address: string }[];
}

/**
 * Every scrape job of the cluster, each target `address:port` labelled with its inventory host:
 * Prometheus and Alertmanager themselves, node_exporter on every host, etcd's /metrics listener,
 * Patroni's /metrics (REST API, https://patroni.readthedocs.io/en/latest/rest_api.html "Monitoring
 * endpoint"), postgres_exporter, rabbitmq_prometheus's aggregated /metrics and its per-queue
 * /metrics/detailed for the Airflow vhost (https://www.rabbitmq.com/docs/prometheus "Detailed
 * endpoint"), HAProxy's exporter, Flower's /metrics behind its basic auth. Jobs without hosts are left out.
 */
export function scrapeJobs(inv: Inventory, secrets: ClusterSecrets): ScrapeJob[] {
  const p = inv.cluster.ports;
  const at = (hosts: Host[], port: number) => hosts.map((h) => ({ host: h.name, address: `${h.address}:${port}` }));
  const jobs: ScrapeJob[] = [
    { name: 'prometheus', targets: at(monitoringHosts(inv), p.prometheus) },
    { name: 'alertmanager', targets: at(monitoringHosts(inv), p.alertmanager) },
    { name: 'node', targets: at(inv.hosts, p.nodeExporter) },
    { name: 'etcd', targets: at(hostsOf(inv, 'etcd'), p.etcdMetrics) },
    { name: 'patroni', targets: at(patroniNodes(inv), p.patroniApi) },
    { name: 'postgres', targets: at(patroniNodes(inv), p.postgresExporter) },
    { name: 'rabbitmq', targets: at(hostsOf(inv, 'rabbitmq'), p.rabbitmqPrometheus) },
    {
      name: 'rabbitmq-queues',
      path: '/metrics/detailed',
      params: { vhost: ['airflow_host'], family: ['queue_coarse_metrics', 'queue_consumer_count'] },
      targets: at(hostsOf(inv, 'rabbitmq'), p.rabbitmqPrometheus),
    },
    { name: 'haproxy', path: '/metrics', targets: at(hostsOf(inv, 'haproxy'), p.haproxyMetrics) },
    { name: 'flower', path: '/metrics', basic_auth: { user: FLOWER_USER, password: secrets.flowerBasicAuth }, targets: at(hostsOf(inv, 'flower'), p.flower) },
  ];
  return jobs.filter((j) => j.targets.length > 0);
}

/** The variables of templates/monitoring/prometheus.yml.njk for the monitoring host `host`. */
export function prometheusVars(inv: Inventory, host: Host, secrets: ClusterSecrets): Record<string, unknown> {
  return {
    cluster: inv.cluster.name,
    host: host.name,
    scrape_interval: inv.cluster.monitoring.scrapeIntervalSec,
    rules_file: MONITORING_PATHS.rules,
    // Every Prometheus sends to every Alertmanager (Alertmanager README "High Availability": never
    // load-balance between them), which dedupe among themselves over their gossip.
    alertmanagers: monitoringHosts(inv).map((h) => `${h.address}:${inv.cluster.ports.alertmanager}`),
    jobs: scrapeJobs(inv, secrets),
  };
}

/** prometheus.yml of `host` (pure; throws on an undefined template variable). */
export function prometheusConfig(inv: Inventory, host: Host, secrets: ClusterSecrets): string {
  return renderTemplate('monitoring/prometheus.yml.njk', prometheusVars(inv, host, secrets));
}

/** HAProxy's `listen` sections that must always have a server up (postgres_replica only with a replica to route to). */
export function haproxyBackends(inv: Inventory): string[] {
  if (hostsOf(inv, 'haproxy').length === 0) return [];
  return [
    'postgres_leader',
    ...(patroniNodes(inv).length > 1 ? ['postgres_replica'] : []),
    ...(hostsOf(inv, 'webserver').length ? ['airflow_webserver'] : []),
    ...(hostsOf(inv, 'flower').length ? ['airflow_flower'] : []),
  ];
}

/**
 * The heartbeat alerts of the Airflow jobs this inventory runs (from postgres_exporter's query of
 * Airflow's `job` table, templates/monitoring/queries.yml.njk): each scheduler host's own (every
 * scheduler is active), and the freshest DAG processor's (a standby DAG processor does not
 * heartbeat while another holds the lock: src/components/airflow.ts).
 */
export function heartbeatAlerts(inv: Inventory): { alert: string; expr: string; summary: string }[] {
  if (hostsOf(inv, 'scheduler').length === 0) return [];
  const m = (t: string) => `airflow_job_heartbeat_age_seconds{job_type="${t}"}`;
  return [
    {
      alert: 'SchedulerHeartbeatStale',
      expr: `(min by (hostname) (${m('SchedulerJob')}) > ${HEARTBEAT_STALE_SEC}) or absent(${m('SchedulerJob')})`,
      summary: `the scheduler on {{ $labels.hostname }} has not heartbeaten for more than ${HEARTBEAT_STALE_SEC} s`,
    },
    {
      alert: 'DagProcessorHeartbeatStale',
      expr: `(min(${m('DagProcessorJob')}) > ${HEARTBEAT_STALE_SEC}) or absent(${m('DagProcessorJob')})`,
      summary: `no DAG processor has heartbeaten for more than ${HEARTBEAT_STALE_SEC} s`,
    },
  ];
}

/** The variables of templates/monitoring/rules.yml.njk (pure). */
export function rulesVars(inv: Inventory): Record<string, unknown> {
  return {
    cluster: inv.cluster.name,
    pseudo_fs: PSEUDO_FS,
    vips: inv.cluster.vips.filter((v) => inv.hosts.some((h) => hostVips(inv, h).includes(v))).map((v) => v.name),
    etcd: hostsOf(inv, 'etcd').length > 0,
    patroni: patroniNodes(inv).length > 0,
    synchronous: patroniSynchronous(inv),
    lag_bytes: LAG_ALERT_BYTES,
    failover_window: FAILOVER_WINDOW,
    rabbitmq: hostsOf(inv, 'rabbitmq').length > 0,
    haproxy_backends: haproxyBackends(inv),
    heartbeats: heartbeatAlerts(inv),
    workers: hostsOf(inv, 'worker').length,
    worker_unit: WORKER_UNIT,
  };
}

/** The alert rules file (pure). */
export function alertRules(inv: Inventory): string {
  return renderTemplate('monitoring/rules.yml.njk', rulesVars(inv));
}

/** The variables of templates/monitoring/alertmanager.yml.njk: the inventory's receivers with their secrets. */
export function alertmanagerVars(inv: Inventory, secrets: ClusterSecrets): Record<string, unknown> {
  const r = inv.cluster.monitoring.receivers;
  return {
    cluster: inv.cluster.name,
    email: r.email ? { ...r.email, user: r.email.user ?? '', password: secrets.alertmanagerSmtp } : undefined,
    webhook: r.webhook ? { ...r.webhook, user: r.webhook.user ?? '', password: secrets.alertmanagerWebhook } : undefined,
  };
}

/** alertmanager.yml (pure). */
export function alertmanagerConfig(inv: Inventory, secrets: ClusterSecrets): string {
  return renderTemplate('monitoring/alertmanager.yml.njk', alertmanagerVars(inv, secrets));
}

/** A `/etc/default/*` file: a comment and `KEY="value"` lines (systemd.exec(5) EnvironmentFile: double quotes keep spaces). */
function defaultsFile(inv: Inventory, what: string, vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([k, v]) => {
    if (/["\\$`\n]/.test(v)) throw new Error(`${what}: ${k} holds a character an EnvironmentFile cannot carry in double quotes`);
    return `${k}="${v}"`;
  });
  return `# Managed by airflow-ha (${inv.cluster.name}): ${what}. Edits are overwritten.\n${lines.join('\n')}\n`;
}

/** Prometheus's arguments on `host`: its own address, the retention. */
export function prometheusArgs(inv: Inventory, host: Host): string {
  return [`--config.file=${MONITORING_PATHS.prometheusYml}`, `--web.listen-address=${host.address}:${inv.cluster.ports.prometheus}`, `--storage.tsdb.retention.time=${inv.cluster.monitoring.retentionDays}d`].join(' ');
}

/**
 * Alertmanager's arguments on `host`. Alone, no cluster listener (`--cluster.listen-address=`
 * empty disables it, prometheus-alertmanager --help); with a second monitoring host, gossip on
 * this host's address with the other as its peer.
 */
export function alertmanagerArgs(inv: Inventory, host: Host): string {
  const p = inv.cluster.ports;
  const peers = monitoringHosts(inv).filter((h) => h.name !== host.name);
  const cluster = peers.length === 0 ? ['--cluster.listen-address='] : [`--cluster.listen-address=${host.address}:${p.alertmanagerCluster}`, ...peers.map((h) => `--cluster.peer=${h.address}:${p.alertmanagerCluster}`)];
  return [`--config.file=${MONITORING_PATHS.alertmanagerYml}`, `--web.listen-address=${host.address}:${p.alertmanager}`, ...cluster].join(' ');
}

/**
 * node_exporter's arguments on `host`: its port, the textfile collector (keepalived's VIP state),
 * and on worker hosts the systemd collector for the Airflow units (node_exporter 1.5
 * `--collector.systemd`, `--collector.systemd.unit-include`), which the WorkersMissing alert counts.
 */
export function nodeExporterArgs(inv: Inventory, host: Host): string {
  const systemd = host.roles.includes('worker') ? ['--collector.systemd', '--collector.systemd.unit-include=airflow-.+[.]service'] : [];
  return [`--web.listen-address=:${inv.cluster.ports.nodeExporter}`, `--collector.textfile.directory=${MONITORING_PATHS.textfileDir}`, ...systemd].join(' ');
}

/**
 * postgres_exporter's DSN: the monitor role over 127.0.0.1 (pg_hba: scram-sha-256), to Airflow's
 * database (its job table). With cluster.tls every TCP line of pg_hba is `hostssl`, so the exporter
 * asks for TLS (`sslmode=require`: the loopback needs no name check); without it, none.
 */
export function postgresExporterDsn(inv: Inventory, secrets: ClusterSecrets): string {
  const sslmode = tlsEnabled(inv) ? 'require' : 'disable';
  return `postgresql://${MONITOR_DB_USER}:${secrets.postgresMonitor.reveal()}@127.0.0.1:${inv.cluster.ports.postgres}/${AIRFLOW_DB}?sslmode=${sslmode}`;
}

/** Whether postgres_exporter runs the Airflow job query (the inventory has schedulers, so Airflow's tables exist after its step). */
export function airflowQueries(inv: Inventory): boolean {
  return hostsOf(inv, 'scheduler').length > 0;
}

/** /etc/default/prometheus-postgres-exporter (holds the monitor role's password). */
export function postgresExporterDefaults(inv: Inventory, secrets: ClusterSecrets): string {
  const args = [`--web.listen-address=:${inv.cluster.ports.postgresExporter}`, ...(airflowQueries(inv) ? [`--extend.query-path=${MONITORING_PATHS.queries}`] : [])];
  return defaultsFile(inv, 'postgres_exporter', { DATA_SOURCE_NAME: postgresExporterDsn(inv, secrets), ARGS: args.join(' ') });
}

/**
 * statsd_exporter's mapping of Airflow's StatsD metric names (pure). Rendered and tested only:
 * Debian 12 has no prometheus-statsd-exporter package (`apt-cache policy` finds none), so no host
 * gets it and Airflow sends no StatsD; the heartbeat alerts read Airflow's `job` table instead.
 */
export function statsdMapping(inv: Inventory, prefix = 'airflow'): string {
  return renderTemplate('monitoring/statsd-mapping.yml.njk', { cluster: inv.cluster.name, prefix });
}

/** keepalived's notify script (pure), see templates/monitoring/vip-state.sh.njk. */
export function vipStateScript(inv: Inventory): string {
  return renderTemplate('monitoring/vip-state.sh.njk', { cluster: inv.cluster.name, textfile_dir: MONITORING_PATHS.textfileDir });
}

/**
 * Tasks of a monitoring host: the two packages, the rules (checked by `promtool check rules`),
 * prometheus.yml (`promtool check config`, which also reads the rules file named in it),
 * alertmanager.yml (`amtool check-config`), each BEFORE it replaces the old one; the unit
 * arguments (a change restarts), a config change reloads (SIGHUP, the units' ExecReload).
 */
export function monitoringTasks(inv: Inventory, host: Host, secrets: ClusterSecrets): Task[] {
  const P = MONITORING_PATHS;
  const U = MONITORING_UNITS;
  const owned = { mode: '0640', owner: 'root', group: 'prometheus' } as const;
  return [
    packages({ names: ['prometheus', 'prometheus-alertmanager'] }),
    template({ path: P.rules, template: 'monitoring/rules.yml.njk', vars: rulesVars(inv), ...owned, validate: (tmp) => sh`promtool check rules ${tmp}`, notify: [reloadHandler(U.prometheus)] }),
    template({ path: P.prometheusYml, template: 'monitoring/prometheus.yml.njk', vars: prometheusVars(inv, host, secrets), ...owned, validate: (tmp) => sh`promtool check config ${tmp}`, notify: [reloadHandler(U.prometheus)] }),
    file({ path: P.prometheusDefault, content: defaultsFile(inv, 'Prometheus', { ARGS: prometheusArgs(inv, host) }), notify: [restartHandler(U.prometheus)] }),
    service({ name: U.prometheus, enabled: true, state: 'started' }),
    template({ path: P.alertmanagerYml, template: 'monitoring/alertmanager.yml.njk', vars: alertmanagerVars(inv, secrets), ...owned, validate: (tmp) => sh`amtool check-config ${tmp}`, notify: [reloadHandler(U.alertmanager)] }),
    file({ path: P.alertmanagerDefault, content: defaultsFile(inv, 'Alertmanager', { ARGS: alertmanagerArgs(inv, host) }), notify: [restartHandler(U.alertmanager)] }),
    service({ name: U.alertmanager, enabled: true, state: 'started' }),
  ];
}

/**
 * Tasks of every host of a monitored inventory: node_exporter (with dbus on worker hosts, which its
 * systemd collector talks to), its arguments, and on the VIP hosts the VIP state written once from
 * the interfaces when keepalived has not written it yet (keepalived's notify script keeps it from
 * then on: {@link keepalivedNotify}). None when the inventory is not monitored.
 */
export function nodeExporterTasks(inv: Inventory, host: Host): Task[] {
  if (!monitored(inv)) return [];
  const U = MONITORING_UNITS.nodeExporter;
  const vipProbes = hostVips(inv, host).map((v) =>
    command({
      name: `VIP state of ${v.name} for node_exporter`,
      cmd: sh`${MONITORING_PATHS.vipState} probe ${v.name} ${v.address}`,
      creates: `${MONITORING_PATHS.textfileDir}/airflow_ha_vip_${v.name}.prom`,
    }),
  );
  return [
    packages({ names: ['prometheus-node-exporter', ...(host.roles.includes('worker') ? ['dbus'] : [])] }),
    file({ path: MONITORING_PATHS.nodeExporterDefault, content: defaultsFile(inv, 'node_exporter', { ARGS: nodeExporterArgs(inv, host) }), notify: [restartHandler(U)] }),
    directory({ path: MONITORING_PATHS.textfileDir, mode: '0755', owner: 'prometheus', group: 'prometheus' }),
    ...vipProbes,
    service({ name: U, enabled: true, state: 'started' }),
  ];
}

/**
 * keepalived's side of the VIP state: the notify script (root-owned, 0755, as
 * `enable_script_security` demands) and the line each vrrp_instance gets. Undefined when the
 * inventory is not monitored (keepalived.conf then has no notify line).
 */
export function keepalivedNotify(inv: Inventory): { script: string; content: string } | undefined {
  return monitored(inv) ? { script: MONITORING_PATHS.vipState, content: vipStateScript(inv) } : undefined;
}

/** One psql session on a PostgreSQL node: recovery state, whether the monitor role exists, whether it may read Airflow's job table (or the table is absent). */
export function monitorRoleFact(inv: Inventory): Fact<{ primary: boolean; role: boolean; jobGrant: boolean } | undefined> {
  const port = inv.cluster.ports.postgres;
  const first = `select pg_is_in_recovery(), exists (select 1 from pg_roles where rolname = '${MONITOR_DB_USER}')`;
  const grant = `select case when to_regclass('public.job') is null then true when not exists (select 1 from pg_roles where rolname = '${MONITOR_DB_USER}') then false else has_table_privilege('${MONITOR_DB_USER}', 'public.job', 'SELECT') end`;
  const cmd: Cmd = sh`runuser -u postgres -- psql -X -q -A -t -F ' ' -p ${port} -d postgres -c ${first} -c ${`\\connect ${AIRFLOW_DB}`} -c ${grant}`;
  return {
    key: `monitor-role:${cmd.render()}`,
    cmd,
    parse(stdout) {
      const lines = stdout.trim().split('\n').map((l) => l.trim()).filter(Boolean);
      const m = /^([tf]) ([tf])$/.exec(lines[0] ?? '');
      if (!m) return undefined;
      return { primary: m[1] === 'f', role: m[2] === 't', jobGrant: lines[1] === 't' };
    },
  };
}

/** Guard: skip on a replica or where PostgreSQL does not answer, or when `done` holds. */
function monitorGuard(inv: Inventory, done: (s: { role: boolean; jobGrant: boolean }) => boolean): Fact<boolean> {
  const f = monitorRoleFact(inv);
  return { ...f, parse: (stdout, code) => {
    const s = f.parse(stdout, code);
    return !s || !s.primary || done(s);
  } };
}

/**
 * Tasks of a PostgreSQL host of a monitored inventory: the monitor role (LOGIN, IN ROLE pg_monitor,
 * its password through psql's `\getenv`, never in argv) and, with schedulers, SELECT on Airflow's
 * `job` table, both through the primary only; postgres_exporter (installed first), its DSN and queries. None when
 * the inventory is not monitored.
 */
export function postgresExporterTasks(inv: Inventory, host: Host, secrets: ClusterSecrets): Task[] {
  if (!monitored(inv) || !host.roles.includes('postgresql')) return [];
  const U = MONITORING_UNITS.postgresExporter;
  const port = inv.cluster.ports.postgres;
  const createRole = `\\getenv pw MONITOR_DB_PASSWORD\nCREATE ROLE ${MONITOR_DB_USER} LOGIN PASSWORD :'pw' IN ROLE pg_monitor;\n`;
  return [
    // First: Debian's package makes /etc/prometheus and the prometheus user the files below need.
    packages({ names: ['prometheus-postgres-exporter'] }),
    command({
      name: `role ${MONITOR_DB_USER} (pg_monitor)`,
      cmd: sh`printf '%s' ${createRole} | MONITOR_DB_PASSWORD=${secrets.postgresMonitor} runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p ${port} -d postgres`,
      skipWhen: monitorGuard(inv, (s) => s.role),
    }),
    ...(airflowQueries(inv)
      ? [
          command({
            name: `${MONITOR_DB_USER} may read Airflow's job table`,
            cmd: sh`runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p ${port} -d ${AIRFLOW_DB} -c ${`GRANT SELECT ON public.job TO ${MONITOR_DB_USER}`}`,
            skipWhen: monitorGuard(inv, (s) => s.jobGrant),
          }),
          template({ path: MONITORING_PATHS.queries, template: 'monitoring/queries.yml.njk', vars: { cluster: inv.cluster.name }, notify: [restartHandler(U)] }),
        ]
      : []),
    file({
      path: MONITORING_PATHS.postgresExporterDefault,
      content: postgresExporterDefaults(inv, secrets),
      mode: '0640',
      owner: 'root',
      group: 'prometheus',
      holdsSecrets: true,
      label: `file ${MONITORING_PATHS.postgresExporterDefault} (secret)`,
      notify: [restartHandler(U)],
    }),
    service({ name: U, enabled: true, state: 'started' }),
  ];
}
