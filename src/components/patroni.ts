/**
 * Patroni + PostgreSQL (../reference/ha-stack.md "Patroni + PostgreSQL"). Desired state only.
 *
 * Patroni owns PostgreSQL: the distro's postgresql units are disabled and stopped, no cluster is
 * ever created by the package (Debian: `create_main_cluster = false` in createcluster.conf before
 * postgresql-15 is installed), and airflow-ha never runs initdb or wipes a data dir.
 *
 * Config changes: the config file notifies `systemctl reload patroni` (the Debian unit's
 * ExecReload sends SIGHUP; Patroni re-reads the file and applies pg_hba, `postgresql.parameters`
 * that need no restart, REST API and DCS settings). Parameters that need a PostgreSQL restart are
 * then flagged "pending restart" by Patroni; the same change leaves a marker on the node, and the
 * playbook's restart steps restart such nodes with `patronictl restart`, one at a time, replicas
 * first and the leader last ({@link patroniPendingRestart}). `bootstrap.dcs` is read once; later: `patronictl edit-config`.
 */
import { sh, type Cmd } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import type { Secret } from '../core/secret.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Host, Inventory, Role } from '../inventory/schema.js';
import { AIRFLOW_ROLES } from '../inventory/rules.js';
import { describeSupported, isSupportedVersion } from '../inventory/versions.js';
import { command, waitCheck, waitFor, waitLoop } from '../tasks/command.js';
import { directory, managedBlock } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { markPending, pendingMarker, pendingRestart } from '../tasks/pending.js';
import { notifyIfActive, service } from '../tasks/systemd.js';
import type { Handler, Task, TaskPlan } from '../tasks/task.js';
import { renderTemplate, template } from '../tasks/template.js';
import { backupParameters } from './backup-params.js';
import { etcdctl, etcdEndpoints, etcdMembers } from './etcd.js';
import { pgdgRepoTasks } from './repos.js';
import { tlsServiceKeyTask } from './tls.js';
import type { TlsMaterial } from '../run/playbook.js';
import { httpsOk } from '../tasks/https.js';
import { CA_CERT, ROOT_CLIENT, scheme, serviceTlsFiles, tlsEnabled } from '../tls/plan.js';

/**
 * Bytes of WAL a replica may lag and still be promoted (Patroni's default). With synchronous mode
 * on, only the synchronous standby may be promoted, whatever this says.
 */
export const PATRONI_MAX_LAG_ON_FAILOVER = 1048576;

/**
 * The cluster-wide settings Patroni keeps in the DCS, as Patroni 3.0.2 (Debian 12) names them.
 * Sources: https://patroni.readthedocs.io/en/v3.0.2/dynamic_configuration.html (ttl, loop_wait,
 * retry_timeout, maximum_lag_on_failover; "loop_wait + 2*retry_timeout <= ttl"),
 * https://patroni.readthedocs.io/en/v3.0.2/replication_modes.html#synchronous-mode
 * (synchronous_mode, synchronous_mode_strict, synchronous_node_count).
 */
export interface PatroniDcs {
  /** Seconds the leader lock lives without a renewal. */
  ttl: number;
  /** Seconds between two runs of the HA loop. */
  loop_wait: number;
  /** Seconds of DCS/PostgreSQL retries before the leader demotes itself. */
  retry_timeout: number;
  maximum_lag_on_failover: number;
  /** A commit is acknowledged only once a synchronous standby has it; only that standby may be promoted. */
  synchronous_mode: boolean;
  /** With no synchronous standby left, writes wait (true) or go on unprotected (false). */
  synchronous_mode_strict: boolean;
  synchronous_node_count: number;
}

/** The keys of {@link PatroniDcs}, in the order they are compared and printed. */
export const PATRONI_DCS_KEYS = ['ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover', 'synchronous_mode', 'synchronous_mode_strict', 'synchronous_node_count'] as const;

/** Whether synchronous mode is on for `inv`: `cluster.postgresql.ha.synchronous`, `auto` = 3 or more postgresql hosts. */
export function patroniSynchronous(inv: Inventory): boolean {
  const mode = inv.cluster.postgresql.ha.synchronous;
  return mode === 'on' || (mode === 'auto' && patroniNodes(inv).length >= 3);
}

/**
 * The DCS settings of `inv` ({@link PatroniDcs}) from `cluster.postgresql.ha`. Synchronous mode
 * with one synchronous standby: a commit is acknowledged once the leader and that standby have it,
 * and a failover promotes only that standby, so no acknowledged commit is lost. Strict mode follows
 * the inventory only while synchronous mode is on.
 */
export function patroniDcs(inv: Inventory): PatroniDcs {
  const ha = inv.cluster.postgresql.ha;
  const sync = patroniSynchronous(inv);
  return {
    ttl: ha.ttl,
    loop_wait: ha.loopWait,
    retry_timeout: ha.retryTimeout,
    maximum_lag_on_failover: PATRONI_MAX_LAG_ON_FAILOVER,
    synchronous_mode: sync,
    synchronous_mode_strict: sync && ha.strict,
    synchronous_node_count: 1,
  };
}

/** Airflow's database and role (password: secrets.airflowDb). */
export const AIRFLOW_DB = 'airflow';
export const AIRFLOW_DB_USER = 'airflow';

/** Hosts that run Airflow components and connect to the database (through HAProxy or directly). */

/** Paths and packages per OS family for PostgreSQL major `v`. */
export interface PatroniPaths {
  config: string;
  dataDir: string;
  binDir: string;
  pgpass: string;
  socketDir: string;
  /** Installed first (Debian: postgresql-common, so createcluster.conf exists and can be edited). */
  commonPackages: string[];
  packages: string[];
  /** Distro units that must stay disabled and stopped (Patroni starts PostgreSQL itself). */
  distroUnits: string[];
}

/**
 * Debian (packages postgresql-15, patroni 3.0.2; the patroni.service it ships reads
 * /etc/patroni/config.yml, see `dpkg -L patroni`) and RHEL (PGDG postgresql15-server, patroni +
 * patroni-etcd; the PGDG unit reads /etc/patroni/patroni.yml). `v` is the PostgreSQL major.
 * @throws Error when `v` is not a supported major (src/inventory/versions.ts): it goes into paths
 * and package names, and validate refuses any other (`version:postgresql`).
 */
export function patroniPaths(family: OsFamily, v: string): PatroniPaths {
  if (!isSupportedVersion('postgresql', v)) throw new Error(`PostgreSQL major ${JSON.stringify(v)} is not supported (${describeSupported('postgresql')})`);
  return family === 'debian'
    ? {
        config: '/etc/patroni/config.yml',
        dataDir: `/var/lib/postgresql/${v}/main`,
        binDir: `/usr/lib/postgresql/${v}/bin`,
        pgpass: '/var/lib/postgresql/.pgpass_patroni',
        socketDir: '/var/run/postgresql',
        commonPackages: ['postgresql-common'],
        packages: [`postgresql-${v}`, 'patroni', 'python3-etcd'],
        distroUnits: ['postgresql', `postgresql@${v}-main`],
      }
    : {
        config: '/etc/patroni/patroni.yml',
        dataDir: `/var/lib/pgsql/${v}/data`,
        binDir: `/usr/pgsql-${v}/bin`,
        pgpass: '/var/lib/pgsql/.pgpass_patroni',
        socketDir: '/run/postgresql',
        commonPackages: [],
        packages: [`postgresql${v}-server`, 'patroni', 'patroni-etcd'],
        distroUnits: [`postgresql-${v}`],
      };
}

/**
 * `cluster.versions.patroni` as pins of the Patroni packages (`patroni`, and on RHEL `patroni-etcd`,
 * built from the same source); none when unset. The PostgreSQL major is in the package names
 * (`postgresql-15`, `postgresql15-server`), so it is never upgraded across majors.
 */
export function patroniPins(inv: Inventory, family: OsFamily): Record<string, string> {
  const v = inv.cluster.versions.patroni;
  if (!v) return {};
  return family === 'debian' ? { patroni: v } : { patroni: v, 'patroni-etcd': v };
}

/** The Patroni nodes: hosts with role `postgresql`, in inventory order (the first one bootstraps). */
export function patroniNodes(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.includes('postgresql'));
}

/** `http(s)://ADDRESS:PORT` of `host`'s Patroni REST API (`https` with `cluster.tls`: restapi.certfile). */
export function patroniApiUrl(inv: Inventory, host: Host): string {
  return `${scheme(inv)}://${host.address}:${inv.cluster.ports.patroniApi}`;
}

/** The CA file that verifies the REST API, as the python helpers' optional last argument (none over plain HTTP). */
function patroniApiCa(inv: Inventory): string[] {
  return tlsEnabled(inv) ? [CA_CERT] : [];
}

/** Exit 0 when a REST API URL answers 2xx within 2 s (over HTTPS verified against the cluster CA with `cluster.tls`). */
export function patroniApiOk(inv: Inventory, url: string): Cmd {
  return tlsEnabled(inv) ? httpsOk(url, { ca: ROOT_CLIENT.ca }, 2) : waitCheck({ http: url, timeoutSec: 2 });
}

/** Addresses allowed to log in as Airflow's role: HAProxy hosts and Airflow hosts. */
export function airflowClientAddresses(inv: Inventory): string[] {
  return [
    ...new Set(inv.hosts.filter((h) => h.roles.includes('haproxy') || h.roles.some((r) => AIRFLOW_ROLES.includes(r))).map((h) => h.address)),
  ];
}

/**
 * pg_hba.conf lines (PostgreSQL docs "auth-pg-hba-conf"): local postgres by peer (Patroni and
 * airflow-ha's psql), replication and any database from every Patroni node (pg_basebackup,
 * pg_rewind), Airflow's database from the HAProxy hosts (a TCP proxy: connections come from them)
 * and the Airflow hosts. Every password check is scram-sha-256.
 */
export function patroniPgHba(inv: Inventory): string[] {
  // With cluster.tls every TCP line is `hostssl`: a connection without TLS matches no line and is
  // refused (https://www.postgresql.org/docs/15/auth-pg-hba-conf.html, "hostssl").
  const host = tlsEnabled(inv) ? 'hostssl' : 'host';
  return [
    'local all postgres peer',
    'local all all scram-sha-256',
    `${host} all all 127.0.0.1/32 scram-sha-256`,
    // Patroni asks its own node for the timeline over a replication connection to localhost
    // (postgresql/config.py `_get_tcp_local_address`: "localhost" when PostgreSQL listens on
    // 127.0.0.1; IDENTIFY_SYSTEM in `get_replica_timeline`). `all` never matches a replication
    // connection (PostgreSQL 15 docs, pg_hba.conf "database"), so without this line a replica's
    // timeline is null and its GET /metrics prints `patroni_postgres_timeline ... None`, which
    // Prometheus cannot parse (patroni/patroni#3164).
    `${host} replication replicator 127.0.0.1/32 scram-sha-256`,
    ...patroniNodes(inv).flatMap((h) => [`${host} replication replicator ${h.address}/32 scram-sha-256`, `${host} all all ${h.address}/32 scram-sha-256`]),
    ...airflowClientAddresses(inv).map((a) => `${host} ${AIRFLOW_DB} ${AIRFLOW_DB_USER} ${a}/32 scram-sha-256`),
  ];
}

/** The rendered Patroni config of `hostName` (throws if it is not a postgresql host). */
export function renderPatroniConfig(inv: Inventory, hostName: string, secrets: ClusterSecrets, family: OsFamily = 'debian'): string {
  return renderTemplate('patroni/patroni.yml.njk', patroniVars(inv, hostName, secrets, family).vars);
}

/** The template variables of `hostName`'s config, and the paths they come from. */
function patroniVars(inv: Inventory, hostName: string, secrets: ClusterSecrets, family: OsFamily) {
  const host = patroniNodes(inv).find((h) => h.name === hostName);
  if (!host) throw new Error(`${hostName} is not a Patroni node (role postgresql)`);
  const p = patroniPaths(family, inv.cluster.versions.postgresql);
  const ports = inv.cluster.ports;
  const vars = {
    scope: inv.cluster.name,
    name: host.name,
    address: host.address,
    api_port: ports.patroniApi,
    pg_port: ports.postgres,
    etcd_hosts: etcdMembers(inv).map((m) => `${m.address}:${ports.etcdClient}`),
    dcs: patroniDcs(inv),
    data_dir: p.dataDir,
    bin_dir: p.binDir,
    pgpass: p.pgpass,
    socket_dir: p.socketDir,
    secrets,
    pg_hba: patroniPgHba(inv),
    // cluster.tls: the REST API, PostgreSQL and Patroni's etcd client on the host's certificate, with the postgres user's key.
    tls: tlsEnabled(inv) ? serviceTlsFiles(inv, 'postgres') : false,
    // cluster.postgresql.parameters and WAL archiving to pgBackRest (src/components/backup.ts), sorted
    // so the file does not change with the inventory's key order.
    parameters: Object.fromEntries(Object.entries({ ...backupParameters(inv), ...inv.cluster.postgresql.parameters }).sort(([a], [b]) => a.localeCompare(b))),
  };
  return { paths: p, vars };
}

/**
 * `patroni --validate-config FILE` (Patroni >= 2.1; 3.0.2 has it) filtered for a running node:
 * the validator fails on its own listen ports being in use ("Port N is already in use."), which is
 * expected once Patroni runs. Every other finding fails the check.
 */
export function patroniValidate(file: string): Cmd {
  return sh`out=$(patroni --validate-config ${file} 2>&1); rc=$?; if [ $rc -ne 0 ] && printf '%s\\n' "$out" | grep -v -e 'is already in use' -e '^$' | grep -q .; then printf '%s\\n' "$out" >&2; exit 1; fi; exit 0`;
}

/** Handler: `systemctl reload patroni` (SIGHUP: Patroni re-reads its config; see the module comment). */
export const patroniReload: Handler = { id: 'reload:patroni', name: 'reload patroni', ops: [{ kind: 'exec', cmd: sh`systemctl reload patroni` }] };

/** What the data dir holds and what the DCS knows about this Patroni cluster. */
export interface DataDirState {
  /** PG_VERSION content, or undefined for an empty/missing data dir. */
  pgVersion?: string;
  /** `Database system identifier` of pg_controldata. */
  systemId?: string;
  /** Whether etcd answered. */
  dcsReachable: boolean;
  /** The system identifier stored by Patroni at `/service/<scope>/initialize`, if the cluster exists. */
  dcsSystemId?: string;
}

/**
 * Fact: {@link DataDirState}: `cat PG_VERSION`, `pg_controldata -D` (man pg_controldata) and
 * `etcdctl get /service/<scope>/initialize` (Patroni's key holding the cluster's system id).
 */
export function dataDirFact(inv: Inventory, p: PatroniPaths): Fact<DataDirState> {
  const eps = etcdEndpoints(inv);
  const key = `/service/${inv.cluster.name}/initialize`;
  return {
    key: `pg-datadir:${p.dataDir}:${key}`,
    cmd: sh`d=${p.dataDir}; if [ -f "$d/PG_VERSION" ]; then printf 'version=%s\\n' "$(cat "$d/PG_VERSION")"; printf 'sysid=%s\\n' "$(${p.binDir}/pg_controldata -D "$d" 2>/dev/null | sed -n 's/^Database system identifier: *//p')"; fi; if v=$(${etcdctl(eps, inv)} get ${key} --print-value-only 2>/dev/null); then printf 'dcs=ok\\ndcsid=%s\\n' "$v"; fi`,
    parse(stdout) {
      const kv = new Map(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
      return {
        pgVersion: kv.get('version') || undefined,
        systemId: kv.get('sysid') || undefined,
        dcsReachable: kv.get('dcs') === 'ok',
        dcsSystemId: kv.get('dcsid') || undefined,
      };
    },
  };
}

/**
 * Why a non-empty data dir may not be handed to Patroni, or undefined if it may. Never wipes:
 * the operator decides what a foreign data dir is worth.
 */
export function foreignDataDirProblem(s: DataDirState, hostName: string, dataDir: string, scope: string): string | undefined {
  if (!s.pgVersion) return undefined;
  const what = `${hostName}: ${dataDir} holds a PostgreSQL ${s.pgVersion} data dir (system identifier ${s.systemId ?? 'unreadable'})`;
  if (!s.dcsReachable) return `${what} and etcd cannot be asked whether it belongs to Patroni cluster "${scope}": refusing to start Patroni on it`;
  if (!s.dcsSystemId) return `${what} but Patroni cluster "${scope}" does not exist in etcd yet: it was not made by this cluster (a distro cluster or a leftover of another one). airflow-ha never wipes a data dir: move it away by hand if it is disposable, then re-run`;
  if (s.dcsSystemId !== s.systemId) return `${what} but Patroni cluster "${scope}" has system identifier ${s.dcsSystemId}: it belongs to another cluster. airflow-ha never wipes a data dir: move it away by hand if it is disposable, then re-run`;
  return undefined;
}

/** Task: fails (never changes anything) when the data dir belongs to another cluster ({@link foreignDataDirProblem}). */
export function dataDirGuard(inv: Inventory, host: Host, p: PatroniPaths): Task {
  const f = dataDirFact(inv, p);
  return {
    name: `data dir ${p.dataDir} belongs to Patroni cluster ${inv.cluster.name} or is empty`,
    facts: () => [f],
    plan(facts): TaskPlan {
      const problem = foreignDataDirProblem(facts.get(f), host.name, p.dataDir, inv.cluster.name);
      if (problem) throw new Error(problem);
      return { changed: false, ops: [], changes: [], notify: [] };
    },
  };
}

/**
 * Tasks of one Patroni node, in order: the PGDG repositories (kind upstream), createcluster.conf
 * (Debian, before the server package), packages (Patroni pinned to `cluster.versions.patroni`), distro units off, config (validated, reload on change), data dir guard, service
 * started, then wait for this node's PostgreSQL to run (`GET /health` = 200).
 */
export function patroniTasks(inv: Inventory, host: Host, facts: HostFacts, secrets: ClusterSecrets, tls?: TlsMaterial): Task[] {
  const family = facts.family;
  const r = patroniVars(inv, host.name, secrets, family);
  const p = r.paths;
  const tasks: Task[] = [];
  if (family === 'debian') {
    tasks.push(
      ...pgdgRepoTasks(inv, facts),
      packages({ names: p.commonPackages }),
      managedBlock({
        path: '/etc/postgresql-common/createcluster.conf',
        id: 'patroni owns postgresql',
        block: '# Patroni creates and runs the cluster: the package must not create "main".\ncreate_main_cluster = false',
      }),
    );
  }
  if (family === 'rhel') tasks.push(...pgdgRepoTasks(inv, facts));
  tasks.push(packages({ names: p.packages, versions: patroniPins(inv, family) }));
  for (const u of p.distroUnits) tasks.push(service({ name: u, enabled: false, state: 'stopped' }));
  // cluster.tls: the postgres user's copy of the host key (its user exists once the server package
  // is in), before the config that names it; Patroni's reload re-reads it (REST API, PostgreSQL's ssl files).
  tasks.push(...tlsServiceKeyTask(inv, host, tls, 'postgres', [patroniReload]).map((t) => notifyIfActive(t, 'patroni')));
  tasks.push(
    directory({ path: '/etc/patroni', mode: '0750', owner: 'root', group: 'postgres' }),
    directory({ path: p.dataDir.replace(/\/[^/]+$/, ''), mode: '0755', owner: 'postgres', group: 'postgres' }),
    notifyIfActive(
      template({
        path: p.config,
        template: 'patroni/patroni.yml.njk',
        vars: r.vars,
        mode: '0600',
        owner: 'postgres',
        group: 'postgres',
        validate: patroniValidate,
        notify: [patroniReload, markPending(PATRONI_RESTART_CHECK, 'check for a pending PostgreSQL restart')],
      }),
      'patroni',
    ),
    dataDirGuard(inv, host, p),
    service({ name: 'patroni', enabled: true, state: 'started' }),
    waitFor({ http: `${patroniApiUrl(inv, host)}/health`, ca: CA_CERT, timeoutSec: 300, intervalSec: 2 }),
  );
  return tasks;
}

/** Name of the pending marker left by a config change on a running node (see src/tasks/pending.ts). */
export const PATRONI_RESTART_CHECK = 'patroni-restart-check';

/**
 * Python one-liner printing `<role> <pending|clean> <state>` from Patroni's `GET /patroni` (REST
 * API docs: `role`, `state`, `pending_restart`); `unknown clean unknown` if the API does not answer.
 * Python is there: Patroni is a Python program.
 */
const PATRONI_STATE_PY = [
  'import json,ssl,sys,urllib.request as u',
  'c=ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv)>2 else None',
  'try:',
  ' d=json.load(u.urlopen(sys.argv[1],timeout=3,context=c))',
  'except Exception:',
  ' d={}',
  'print(d.get("role","unknown"),"pending" if d.get("pending_restart") else "clean",str(d.get("state","unknown")).replace(" ","_"))',
].join('\n');

/**
 * Task of one node after a config change (marker {@link PATRONI_RESTART_CHECK}), for a step with
 * `serial: 1`. Patroni applies a reload on its next cycle, so the task first waits, at most
 * loop_wait + 5 s, for the reload to show: Patroni flags `pending_restart`, or PostgreSQL's
 * `pg_conf_load_time()` passes the marker's time (then 2 s more for the flag). If a restart is
 * pending it runs `patronictl restart --force` for this member (Patroni REST `POST /restart`,
 * authenticated from the config file) and waits, at most 300 s, until the node runs again with no
 * restart pending. `leaderTurn` false skips the node holding the leader lock (its turn is the
 * next step, after every replica), so a restart never costs more than one node at a time.
 */
export function patroniPendingRestart(inv: Inventory, host: Host, family: OsFamily, leaderTurn: boolean): Task {
  const p = patroniPaths(family, inv.cluster.versions.postgresql);
  const api = patroniApiUrl(inv, host);
  const q = psql(inv);
  const settle = patroniDcs(inv).loop_wait + 5;
  const stateFn = sh`st() { python3 -c ${PATRONI_STATE_PY} ${`${api}/patroni`} ${patroniApiCa(inv)} 2>/dev/null || echo 'unknown clean unknown'; }`;
  const loaded = sh`[ "$(${q} -c 'select extract(epoch from pg_conf_load_time())::bigint' 2>/dev/null || echo 0)" -ge "$since" ]`;
  const script = sh`${stateFn}; since=$(stat -c %Y ${pendingMarker(PATRONI_RESTART_CHECK)}); i=0; extra=0; s=$(st); while [ "$i" -lt ${settle} ]; do case "$s" in *' pending '*) break;; esac; if ${loaded}; then extra=$((extra + 1)); [ "$extra" -gt 2 ] && break; fi; sleep 1; i=$((i + 1)); s=$(st); done; case "$s" in *' pending '*) patronictl -c ${p.config} restart --force ${inv.cluster.name} ${host.name} >&2 || exit 1; ${waitLoop({ cmd: sh`st | grep -q '^[a-z]* clean running$'`, timeoutSec: 300, intervalSec: 2 })};; esac`;
  return pendingRestart({
    marker: PATRONI_RESTART_CHECK,
    name: leaderTurn ? 'restart PostgreSQL if a new setting needs it (the leader)' : 'restart PostgreSQL if a new setting needs it (replicas, one at a time)',
    cmd: script,
    ...(leaderTurn ? {} : { skipWhile: patroniApiOk(inv, `${api}/leader`) }),
    timeoutSec: settle + 330,
  });
}

/** Gate command: some Patroni node holds the leader lock (`GET /leader` = 200, Patroni >= 2.1 REST API). */
export function patroniLeaderCheck(inv: Inventory): Cmd {
  const checks = patroniNodes(inv).map((h) => patroniApiOk(inv, `${patroniApiUrl(inv, h)}/leader`));
  return sh`{ ${joinOr(checks)}; }`;
}

function joinOr(cmds: Cmd[]): Cmd {
  return cmds.reduce((acc, c) => sh`${acc} || ${c}`);
}

/** `psql` as the postgres OS user over the local socket (peer auth), unaligned, stop on error. */
export function psql(inv: Inventory, db = 'postgres'): Cmd {
  return sh`runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -p ${inv.cluster.ports.postgres} -d ${db}`;
}

/**
 * Gate command for one node: it is the primary, or its WAL receiver is `streaming`
 * (pg_stat_wal_receiver.status, PostgreSQL docs "monitoring-stats").
 */
export function primaryOrStreamingCheck(inv: Inventory): Cmd {
  const q = psql(inv);
  return sh`r=$(${q} -c ${"select case when not pg_is_in_recovery() then 'primary' else coalesce((select status from pg_stat_wal_receiver), 'none') end"} 2>/dev/null); [ "$r" = primary ] || [ "$r" = streaming ]`;
}

/** What the Airflow database's guards read on one node. */
export interface AirflowDbState {
  /** The node is the primary (`pg_is_in_recovery()` is false). */
  primary: boolean;
  role: boolean;
  database: boolean;
  /** The role may create in schema `public` of the database. */
  schema: boolean;
}

/**
 * Parses the output of {@link airflowDbGuard}'s query: a line `f t t` (in recovery, role exists,
 * database exists), then `t`/`f` (schema privilege) when the database and the role exist. Undefined
 * when psql printed no first line (PostgreSQL not running, not installed).
 */
export function parseAirflowDbState(stdout: string): AirflowDbState | undefined {
  const [first, second] = stdout.trim().split('\n');
  const m = /^([tf]) ([tf]) ([tf])$/.exec(first?.trim() ?? '');
  if (!m) return undefined;
  return { primary: m[1] === 'f', role: m[2] === 't', database: m[3] === 't', schema: second?.trim() === 't' };
}

/**
 * A guard of the Airflow database's tasks: true (skip) on a node that is not the primary, or on
 * which PostgreSQL does not answer, or when `done` holds. Every guard asks ONE psql session per
 * node (they share the fact key): the recovery state, pg_roles and pg_database, then, connected to
 * the Airflow database (which fails, ending the session, while it does not exist), the schema
 * privilege (which fails while the role does not exist). PostgreSQL docs: functions-info
 * (has_schema_privilege), functions-admin (pg_is_in_recovery), app-psql (\connect).
 */
export function airflowDbGuard(inv: Inventory, done: (s: AirflowDbState) => boolean): Fact<boolean> {
  const cmd = sh`${psql(inv)} -F ' ' -c ${`select pg_is_in_recovery(), exists (select 1 from pg_roles where rolname = '${AIRFLOW_DB_USER}'), exists (select 1 from pg_database where datname = '${AIRFLOW_DB}')`} -c ${`\\connect ${AIRFLOW_DB}`} -c ${`select has_schema_privilege('${AIRFLOW_DB_USER}', 'public', 'CREATE')`}`;
  return {
    key: `airflow-db-state:${cmd.render()}`,
    cmd,
    parse: (stdout) => {
      const s = parseAirflowDbState(stdout);
      return !s || !s.primary || done(s);
    },
  };
}

/**
 * Tasks: Airflow's role and database, created through the primary only (on replicas every guard is
 * already satisfied). Checked in pg_roles / pg_database first (one psql session per node for the
 * three guards, see {@link airflowDbGuard}); CREATE DATABASE runs alone (not in a
 * transaction). The role owns the database, so on PostgreSQL 15 it may create in schema `public`
 * (owned by pg_database_owner). The password goes in through psql's `\getenv` (PostgreSQL 15),
 * never in the SQL text or argv of psql.
 */
export function airflowDatabaseTasks(inv: Inventory, secrets: ClusterSecrets): Task[] {
  const q = psql(inv);
  const createRole = `\\getenv pw AIRFLOW_DB_PASSWORD\nCREATE ROLE ${AIRFLOW_DB_USER} LOGIN PASSWORD :'pw';\n`;
  return [
    command({
      name: `role ${AIRFLOW_DB_USER}`,
      cmd: sh`printf '%s' ${createRole} | AIRFLOW_DB_PASSWORD=${secrets.airflowDb} runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p ${inv.cluster.ports.postgres} -d postgres`,
      skipWhen: airflowDbGuard(inv, (s) => s.role),
    }),
    command({
      name: `database ${AIRFLOW_DB}`,
      cmd: sh`${q} -c ${`CREATE DATABASE ${AIRFLOW_DB} OWNER ${AIRFLOW_DB_USER} ENCODING 'UTF8' TEMPLATE template0`}`,
      skipWhen: airflowDbGuard(inv, (s) => s.database),
    }),
    command({
      name: `schema public of ${AIRFLOW_DB} usable by ${AIRFLOW_DB_USER}`,
      cmd: sh`${psql(inv, AIRFLOW_DB)} -c ${`GRANT ALL ON SCHEMA public TO ${AIRFLOW_DB_USER}`}`,
      skipWhen: airflowDbGuard(inv, (s) => s.schema),
    }),
  ];
}

/** The PostgreSQL role whose password each secret is: Patroni's three (patroni.yml `postgresql.authentication`) and Airflow's. */
export const ROLE_OF_SECRET = {
  postgresSuperuser: 'postgres',
  postgresReplication: 'replicator',
  postgresRewind: 'rewind_user',
  airflowDb: AIRFLOW_DB_USER,
  // postgres_exporter's login (src/components/monitoring.ts), a member of pg_monitor.
  postgresMonitor: 'airflow_ha_monitor',
} as const;

/**
 * Shell test: `password` logs in as `role` over TCP to this node's 127.0.0.1 (pg_hba's `host all all
 * 127.0.0.1/32 scram-sha-256`, {@link patroniPgHba}); the password in psql's environment only.
 */
function loginWorks(inv: Inventory, role: string, password: Secret): Cmd {
  return sh`PGPASSWORD=${password} PGCONNECT_TIMEOUT=5 psql -X -q -A -t -h 127.0.0.1 -p ${inv.cluster.ports.postgres} -U ${role} -d postgres -c 'select 1' >/dev/null 2>&1`;
}

/** Shell: `$r` is `t` on a replica, `f` on the primary, empty when PostgreSQL does not answer. */
function recoveryState(inv: Inventory): Cmd {
  return sh`r=$(${psql(inv)} -c 'select pg_is_in_recovery()' 2>/dev/null)`;
}

/**
 * rotate-secret of a role password, on every Patroni node: `ALTER ROLE role PASSWORD` on the primary
 * only (a replica gets it by replication), as the postgres OS user over the local socket (peer
 * auth, so the old password is not needed); the SQL comes on psql's stdin and the password through
 * psql's `\getenv` (PostgreSQL 15: https://www.postgresql.org/docs/15/app-psql.html), in no argv
 * and no SQL text (so not in pg_stat_activity or the server log). PostgreSQL hashes it with
 * `password_encryption` (scram-sha-256 here). Skipped on replicas, where PostgreSQL does not
 * answer, and where the new password already logs in (a resumed rotation).
 */
export function rolePasswordTask(inv: Inventory, role: string, password: Secret): Task {
  const sql = `\\getenv pw ROTATE_PASSWORD\nALTER ROLE ${role} PASSWORD :'pw';\n`;
  return command({
    name: `ALTER ROLE ${role} PASSWORD (on the primary)`,
    cmd: sh`printf '%s' ${sql} | ROTATE_PASSWORD=${password} runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p ${inv.cluster.ports.postgres} -d postgres`,
    unless: sh`${recoveryState(inv)}; [ "$r" != f ] || ${loginWorks(inv, role, password)}`,
  });
}

/**
 * Gate of a role password's rotation, on each Patroni node: it is a replica, or the primary and
 * `password` logs in as `role`. A node whose PostgreSQL does not answer fails it (the rotation
 * then stops before any consumer is given the new password).
 */
export function rolePasswordCheck(inv: Inventory, role: string, password: Secret): Cmd {
  return sh`${recoveryState(inv)}; [ "$r" = t ] || { [ "$r" = f ] && ${loginWorks(inv, role, password)}; }`;
}

/** What the DCS settings task reads on one node: whether it holds the leader lock, and the DCS config. */
export interface DcsConfigState {
  /** `GET /leader` answered 200 (Patroni REST API, >= 2.1). */
  leader: boolean;
  /** `GET /config`: the cluster's dynamic configuration, or undefined when the API did not answer. */
  config?: Record<string, unknown>;
}

/** Python one-liner: `{"leader": bool, "config": {...}|null}` from the node's REST API (`GET /leader`, `GET /config`). */
const DCS_CONFIG_PY = [
  'import json,ssl,sys,urllib.request as u',
  // argv[2], when given: the CA that verifies an https:// API (cluster.tls).
  'c=ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv)>2 else None',
  'def get(p):',
  ' try:',
  '  r=u.urlopen(sys.argv[1]+p,timeout=3,context=c)',
  '  return r.status,json.load(r)',
  ' except Exception:',
  '  return 0,None',
  'print(json.dumps({"leader":get("/leader")[0]==200,"config":get("/config")[1]}))',
].join('\n');

/** Patroni 3.0.2's defaults of the {@link PATRONI_DCS_KEYS} (patroni/config.py `__DEFAULT_CONFIG`): what an absent key means. */
const PATRONI_DCS_DEFAULTS: PatroniDcs = {
  ttl: 30,
  loop_wait: 10,
  retry_timeout: 10,
  maximum_lag_on_failover: 1048576,
  synchronous_mode: false,
  synchronous_mode_strict: false,
  synchronous_node_count: 1,
};

/** The keys whose live value differs from `want`, as `key: live -> want` lines (an absent key counts as Patroni's default). */
export function dcsConfigChanges(live: Record<string, unknown>, want: PatroniDcs): string[] {
  return PATRONI_DCS_KEYS.filter((k) => (live[k] ?? PATRONI_DCS_DEFAULTS[k]) !== want[k]).map((k) => `${k}: ${JSON.stringify(live[k] ?? PATRONI_DCS_DEFAULTS[k])} -> ${JSON.stringify(want[k])}`);
}

/**
 * Task: the cluster's DCS settings ({@link patroniDcs}) on a live cluster. `bootstrap.dcs` is read
 * only when the cluster is created, so a cluster made before a change (or by an older airflow-ha)
 * keeps its old values. Fact: `GET /leader` and `GET /config` on this node's REST API; only the
 * node holding the leader lock changes anything, and only the keys that differ, with
 * `patronictl edit-config --force -s key=value` (which writes the DCS's config key; every node
 * applies it on its next loop, no restart). Nothing to do on replicas, on a node whose API does not
 * answer, or when every key matches.
 */
export function patroniDcsSettings(inv: Inventory, host: Host, family: OsFamily): Task {
  const api = patroniApiUrl(inv, host);
  const want = patroniDcs(inv);
  const fact: Fact<DcsConfigState> = {
    key: `patroni-dcs-config:${api}`,
    cmd: sh`python3 -c ${DCS_CONFIG_PY} ${api} ${patroniApiCa(inv)}`,
    parse(stdout, code) {
      if (code !== 0) return { leader: false };
      const d = JSON.parse(stdout) as { leader: boolean; config: Record<string, unknown> | null };
      return d.config ? { leader: d.leader, config: d.config } : { leader: d.leader };
    },
  };
  const config = patroniPaths(family, inv.cluster.versions.postgresql).config;
  return {
    name: 'patroni DCS settings (synchronous mode, ttl, loop_wait, retry_timeout) on the leader',
    facts: () => [fact],
    plan(facts): TaskPlan {
      const s = facts.get(fact);
      if (!s.leader || !s.config) return { changed: false, ops: [], changes: [], notify: [] };
      const changes = dcsConfigChanges(s.config, want);
      if (changes.length === 0) return { changed: false, ops: [], changes: [], notify: [] };
      const sets = PATRONI_DCS_KEYS.filter((k) => changes.some((c) => c.startsWith(`${k}:`))).flatMap((k) => ['-s', `${k}=${String(want[k])}`]);
      return {
        changed: true,
        ops: [exec(sh`patronictl -c ${config} edit-config --force --quiet ${sets} ${inv.cluster.name}`)],
        changes: changes.map((c) => `patroni DCS ${c}`),
        notify: [],
      };
    },
  };
}
