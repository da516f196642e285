import { z } from 'zod';
import { firstControlChar } from '../core/text.js';
import { SECRET_NAMES, type SecretName } from './secret-names.js';
import { AIRFLOW_3_NEWEST } from './versions.js';

/**
 * The roles a host can play. Source of the layout: the customer's seed 003 (13 VMs) and
 * ../reference/ha-stack.md. `keepalived` is not a role of its own: it runs where a VIP's hosts are.
 */
export const ROLES = [
  'etcd',
  'postgresql',
  'haproxy',
  'rabbitmq',
  'scheduler',
  'webserver',
  'triggerer',
  'dag_processor',
  'worker',
  'flower',
  'nfs',
  'ftp',
  'target',
  'backup',
  'monitoring',
] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/**
 * The rule id of each named pattern, by the pattern's source as zod reports it (`/^...$/`): an
 * inventory value that fails one is reported as `pattern:<name>` (src/inventory/load.ts).
 */
const PATTERN_RULES = new Map<string, string>();

/**
 * A string matching `re` (anchored, no `m` flag: `$` is the end of the value, so no newline can
 * follow), reported with the rule `pattern:<name>` and `message`. Every inventory string that
 * reaches a config file or a command is one of these: a newline or another control character in it
 * would add a line to a config (a HAProxy `listen` section, a keepalived `notify_master` script run
 * as root, an apt pin) or a command.
 * @throws Error at module load when one regex is given two names (a programming error).
 */
function pattern(name: string, re: RegExp, message: string): z.ZodString {
  const rule = `pattern:${name}`;
  const known = PATTERN_RULES.get(String(re));
  if (known !== undefined && known !== rule) throw new Error(`pattern ${String(re)} is named both ${known} and ${rule}`);
  PATTERN_RULES.set(String(re), rule);
  return z.string().regex(re, message);
}

/** The rule id (`pattern:<name>`) of a named pattern from its source as a zod issue gives it (`/^...$/`), else undefined. */
export function patternRule(source: string): string | undefined {
  return PATTERN_RULES.get(source);
}

/** Free text of one line: no control character (newline, CR, tab, NUL, ...). */
const printable = pattern('printable', /^[^\p{Cc}\u2028\u2029]*$/u, 'free text on one line: no newline, carriage return, tab, NUL or other control character');

const hostName = pattern(
  'host-name',
  /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
  'a host name is a DNS label: lower-case letters, digits and inner hyphens, at most 63 characters (RFC 1123)',
);

/**
 * A package version as apt and rpm write it (Debian Policy 5.6.12: `[epoch:]upstream[-revision]`;
 * PEP 440 for Airflow and Python): a digit first, then letters, digits and `. + ~ - _`; no `/`, space or `*`.
 */
const version = pattern('version', /^([0-9]+:)?[0-9][A-Za-z0-9.+~_-]{0,63}$/, 'a version: a digit first, then letters, digits and . + ~ - _ (e.g. 15, 3.5.17, 1:26.2.5-1)');

/** A URL airflow-ha writes into a config or a command: http(s), no space, quote, backslash or control character. */
const url = pattern('url', /^https?:\/\/[^\s\p{Cc}"'`\\<>{}|^]+$/u, 'an http:// or https:// URL without spaces, quotes, backslashes or control characters');

const port = z.number().int().min(1).max(65535);

/** How to reach a host over SSH. Every field falls back to the inventory's top-level `ssh`. */
/**
 * A path on the operator's machine (`~` is expanded, relative paths are relative to the inventory
 * file): no control character and no `..` segment.
 */
const localPath = pattern('local-path', /^(?!(.*\/)?\.\.(\/|$))[^\p{Cc}\u2028\u2029]+$/u, 'a path without control characters and without a .. segment');

/** The name of an environment variable of the airflow-ha process. */
const envName = pattern('env-name', /^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name: letters, digits and _, not starting with a digit');

export const SshSettings = z.strictObject({
  /** Login user; non-root users run everything through `sudo -n`. */
  user: pattern('ssh-user', /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/, 'a login name: letters, digits and . _ @ - (no space or control character)').optional(),
  /** TCP port of sshd. */
  port: port.optional(),
  /** Private key file (`~` is expanded; relative paths are relative to the inventory file). */
  identityFile: localPath.optional(),
  /** Environment variable holding the key's passphrase (the passphrase itself never goes in the inventory). */
  passphraseEnv: envName.optional(),
  /** Use the SSH agent at $SSH_AUTH_SOCK. */
  agent: z.boolean().optional(),
  /** Jump host: `[user@]address[:port]` or the name of another inventory host. */
  jump: pattern('jump', /^([A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?$/, 'a jump host: [user@]address[:port] or an inventory host name').optional(),
  /** Seconds to wait for a TCP connection + handshake. */
  connectTimeoutSec: z.number().positive().optional(),
});
export type SshSettings = z.infer<typeof SshSettings>;

/**
 * The per-host `vars` airflow-ha reads, each checked here so that a bad value is an inventory error
 * at its line, never a broken config. Other keys are free-form data: any value, but no string in it
 * may hold a control character (rule `pattern:printable`).
 */
export const HostVars = z
  .object({
    /** The VRRP interface of keepalived (Linux interface names: at most 15 bytes, no `/` or space; netdevice(7) IFNAMSIZ). */
    interface: pattern('interface', /^[A-Za-z0-9_.:-]{1,15}$/, 'a network interface name: at most 15 letters, digits and . _ : -').optional(),
    /** HAProxy's client/server timeout: a number of milliseconds or a number with a unit (HAProxy configuration manual 2.5 "Time format"). */
    haproxyTimeout: z.union([z.number().int().positive(), pattern('haproxy-time', /^[0-9]{1,9}(us|ms|s|m|h|d)?$/, 'an HAProxy time: digits with an optional unit us, ms, s, m, h or d (e.g. 30m)')]).optional(),
    /** HAProxy's `maxconn`. */
    haproxyMaxconn: z.number().int().positive().optional(),
    /** RabbitMQ's `consumer_timeout` in milliseconds (read from the first rabbitmq host). */
    rabbitmq_consumer_timeout_ms: z.number().int().positive().optional(),
    /** The load per CPU above which `status` reports the host as loaded. */
    statusLoadPerCpu: z.number().positive().optional(),
  })
  .catchall(
    z.unknown().superRefine((value, ctx) => {
      const bad = controlCharPath(value);
      if (bad) ctx.addIssue({ code: 'custom', path: bad.path, message: `holds ${bad.char}: ${PRINTABLE_MESSAGE}`, params: { rule: 'pattern:printable' } });
    }),
  );

const PRINTABLE_MESSAGE = 'free text on one line: no newline, carriage return, tab, NUL or other control character';

/** The path (below `value`) and code point of the first string holding a control character, in keys or values. */
function controlCharPath(value: unknown, at: (string | number)[] = []): { path: (string | number)[]; char: string } | undefined {
  if (typeof value === 'string') {
    const char = firstControlChar(value);
    return char ? { path: at, char } : undefined;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const bad = controlCharPath(v, [...at, i]);
      if (bad) return bad;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const char = firstControlChar(k);
      if (char) return { path: [...at, k], char };
      const bad = controlCharPath(v, [...at, k]);
      if (bad) return bad;
    }
  }
  return undefined;
}

/** A Celery queue name (an AMQP queue name: at most 255 characters; AMQP 0-9-1 "queue name"). */
const queueName = pattern('queue', /^[A-Za-z0-9_.-]{1,255}$/, 'a queue name: letters, digits and . _ - (no space or control character)');

/** One VM. */
export const Host = z.strictObject({
  name: hostName,
  /** IPv4 address inside `cluster.network`. */
  address: z.ipv4(),
  roles: z.array(Role).min(1),
  ssh: SshSettings.optional(),
  /** Celery queues this host's workers consume (role `worker`). */
  queues: z.array(queueName).min(1).optional(),
  /** Per-host settings for templates (see {@link HostVars}). */
  vars: HostVars.optional(),
});
export type Host = z.infer<typeof Host>;

/** A virtual IP held by keepalived on `hosts` (default: the hosts of the role that owns it). */
export const Vip = z.strictObject({
  address: z.ipv4(),
  /** Name written to /etc/hosts (e.g. `airflow-vip`). */
  name: hostName,
  /** The role whose hosts hold this VIP (`haproxy` for the main VIP, `nfs` for the DAG storage VIP). */
  role: Role,
  /** VRRP virtual_router_id, unique per network segment (1-255). */
  routerId: z.number().int().min(1).max(255),
});
export type Vip = z.infer<typeof Vip>;

/** TCP ports of the stack. Defaults follow the seeds (HAProxy 5000/6000/7000) and each component's docs. */
export const Ports = z.strictObject({
  haproxyLeader: port.default(5000),
  haproxyReplica: port.default(6000),
  haproxyStats: port.default(7000),
  postgres: port.default(5432),
  patroniApi: port.default(8008),
  etcdClient: port.default(2379),
  etcdPeer: port.default(2380),
  rabbitmqAmqp: port.default(5672),
  /** AMQP over TLS (AMQPS), the broker's only listener when `cluster.tls.enabled` (then `rabbitmqAmqp` is closed). */
  rabbitmqAmqps: port.default(5671),
  /** RabbitMQ's management API and UI over HTTP; with `cluster.tls.enabled` it listens on 127.0.0.1 only (the local checks) and `rabbitmqManagementTls` serves the network. */
  rabbitmqManagement: port.default(15672),
  /** The management API and UI over HTTPS (`cluster.tls.enabled` only), RabbitMQ's default (https://www.rabbitmq.com/docs/management#single-listener-https). */
  rabbitmqManagementTls: port.default(15671),
  rabbitmqDist: port.default(25672),
  epmd: port.default(4369),
  webserver: port.default(8080),
  /** The Airflow UI (and on Airflow 3 the workers' Execution API) through the VIP; with `cluster.tls.enabled` it only redirects to `webserverFrontendTls`. */
  webserverFrontend: port.default(80),
  /** The Airflow UI over HTTPS through the VIP (`cluster.tls.enabled` only): HAProxy serves it with its host certificate. */
  webserverFrontendTls: port.default(443),
  flower: port.default(5555),
  /** Flower through the VIP: HAProxy's front for the flower hosts (their own port is `flower`). */
  flowerFrontend: port.default(5556),
  workerLogs: port.default(8793),
  /** Airflow's triggerer log server (`[logging] trigger_log_server_port`, Airflow >= 2.6): webservers fetch deferred tasks' logs from it. */
  triggererLogs: port.default(8794),
  /** First port of vsftpd's passive data range (`pasv_min_port`), opened to the cluster network only. */
  ftpPassiveMin: port.default(30000),
  /** Last port of that range (`pasv_max_port`); must not be below `ftpPassiveMin`. */
  ftpPassiveMax: port.default(30100),
  /** rsync daemon on the nfs hosts: the standby pulls the DAG export from the VIP holder. */
  rsync: port.default(873),
  /** Prometheus on the monitoring hosts (its HTTP API and UI; https://prometheus.io/docs/prometheus/2.42/getting_started/). */
  prometheus: port.default(9090),
  /** Alertmanager's HTTP API on the monitoring hosts. */
  alertmanager: port.default(9093),
  /** Alertmanager's cluster (gossip) port between two monitoring hosts (`--cluster.listen-address`, TCP and UDP). */
  alertmanagerCluster: port.default(9094),
  /** node_exporter on every host of a monitored cluster (Debian's prometheus-node-exporter default). */
  nodeExporter: port.default(9100),
  /** postgres_exporter on the PostgreSQL hosts (Debian's prometheus-postgres-exporter default). */
  postgresExporter: port.default(9187),
  /** etcd's own /metrics on a listener of its own (`--listen-metrics-urls`), so the monitoring hosts never reach the client API. */
  etcdMetrics: port.default(2381),
  /** RabbitMQ's rabbitmq_prometheus plugin (https://www.rabbitmq.com/docs/prometheus: port 15692). */
  rabbitmqPrometheus: port.default(15692),
  /** HAProxy's built-in Prometheus exporter on a stats frontend of its own (HAProxy 2.6 "prometheus-exporter" service). */
  haproxyMetrics: port.default(8405),
});
export type Ports = z.infer<typeof Ports>;

/** Pinned component versions. Nothing is upgraded as a side effect of a re-run. */
export const Versions = z.strictObject({
  postgresql: version.default('15'),
  patroni: version.optional(),
  etcd: version.optional(),
  rabbitmq: version.optional(),
  erlang: version.optional(),
  /** Airflow's version; without a pin the newest Airflow 3 airflow-ha supports (AIRFLOW_3_NEWEST). */
  airflow: version.default(AIRFLOW_3_NEWEST),
  python: version.optional(),
});

/**
 * The upstream sources `packages.mirrors` can replace (base URLs and layouts: src/components/repos.ts
 * UPSTREAM_BASES, README "Package sources"). Unknown keys are reported by the rule `packages:mirror-key`.
 */
export const MIRROR_KEYS = ['pgdg', 'rabbitmq-erlang', 'rabbitmq-server', 'rabbitmq-keys'] as const;
export type MirrorKey = (typeof MIRROR_KEYS)[number];

/** Where packages come from: the OS's own (`distro`) or upstream repositories, optionally mirrored. */
export const PackageSource = z.strictObject({
  kind: z.enum(['distro', 'upstream']).default('distro'),
  /** Base URLs replacing upstream ones, by source (see {@link MIRROR_KEYS}), for sites without internet access. */
  mirrors: z.record(z.string(), url.pipe(z.url())).optional(),
  /** HTTP proxy for the hosts' package manager (e.g. the lab's apt cache). */
  proxy: url.pipe(z.url()).optional(),
});

/**
 * PostgreSQL settings of the Patroni nodes. `parameters` go into each node's local Patroni config
 * (`postgresql.parameters`, which overrides the DCS): a change is applied by a Patroni reload, and
 * one that needs a server restart (context `postmaster`, e.g. `shared_buffers`) by a rolling restart,
 * replicas first, the leader last. Parameters Patroni keeps in the DCS or sets itself are refused
 * (rule `postgresql:patroni-parameter`).
 */
export const PostgresSettings = z.strictObject({
  parameters: z
    .record(pattern('postgresql-parameter', /^[a-z][a-z0-9_.]*$/, 'a PostgreSQL parameter name (lower case, e.g. work_mem)'), z.union([printable, z.number(), z.boolean()]))
    .default({}),
  /** Failover and durability settings Patroni keeps in the DCS (src/components/patroni.ts `patroniDcs`). */
  ha: z
    .strictObject({
      /**
       * Patroni's synchronous mode (one synchronous standby): `auto` turns it on with 3 or more
       * postgresql hosts, so a failover never loses an acknowledged commit.
       */
      synchronous: z.enum(['auto', 'on', 'off']).default('auto'),
      /** `synchronous_mode_strict`: with no synchronous standby left, writes stop instead of going on unprotected. */
      strict: z.boolean().default(false),
      /** Seconds the leader lock lives without a renewal: how long a dead leader keeps it. */
      ttl: z.number().int().min(5).default(12),
      /** Seconds between two runs of Patroni's HA loop. */
      loopWait: z.number().int().min(1).default(2),
      /** Seconds Patroni retries the DCS and PostgreSQL before the leader demotes itself. */
      retryTimeout: z.number().int().min(1).default(5),
    })
    .default({ synchronous: 'auto', strict: false, ttl: 12, loopWait: 2, retryTimeout: 5 }),
});
const posixUser = pattern('user', /^[a-z_][a-z0-9_-]{0,31}$/, 'a POSIX user name (man useradd: lower case, digits, _ and -)');

/** The operators' admin account on every host: SSH keys and passwordless sudo, never a password. */
export const Admin = z.strictObject({
  user: posixUser,
  /** OpenSSH public key lines (`ssh-ed25519 AAAA... comment`). */
  authorizedKeys: z
    .array(
      pattern(
        'ssh-public-key',
        /^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( [^\p{Cc}\u2028\u2029]*)?$/u,
        'an OpenSSH public key line (type, base64 key, optional comment; one line)',
      ),
    )
    .min(1),
});

/** A path on the hosts: absolute, no `..` or `.` segment, no empty segment (`//`), no trailing `/`, not `/`. */
const absolutePath = pattern(
  'path',
  /^(\/(?!\.\.?(\/|$))[A-Za-z0-9._@+-]+)+$/,
  'an absolute path of letters, digits and . _ @ + - / with no . or .. segment (no trailing /, not /)',
);

/**
 * A Git remote the Airflow hosts clone over SSH (or HTTPS): `ssh://[user@]host[:port]/path`,
 * scp-style `user@host:path`, or `https://host/path`. No spaces, quotes, backslashes, control
 * characters, and no leading `-` (git would read it as an option).
 */
const gitUrl = pattern(
  'git-url',
  /^(ssh:\/\/([A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?\/[A-Za-z0-9._~\/+-]+|[A-Za-z0-9_][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~+-][A-Za-z0-9._~\/+-]*|https:\/\/[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?\/[A-Za-z0-9._~\/+-]+)$/,
  'a Git URL: ssh://[user@]host[:port]/path, user@host:path or https://host/path (letters, digits and . _ ~ / + -)',
);

/** A Git ref to track: a branch or tag name (git check-ref-format: no `..`, no leading `-` or `/`, no space, `~^:?*[\\`). */
const gitRef = pattern('git-ref', /^(?!.*\.\.)(?!.*\/\/)(?!.*\.lock$)[A-Za-z0-9_][A-Za-z0-9._\/-]{0,199}(?<![./])$/, 'a Git branch or tag name: letters, digits and . _ / - (no .., no leading - or /, no trailing . or /)');

/** A relative folder inside the repository: segments of letters, digits and . _ - (no . or .. segment, no leading /). */
const gitSubdir = pattern('git-subdir', /^(?!\.\.?(\/|$))[A-Za-z0-9._-]+(\/(?!\.\.?(\/|$))[A-Za-z0-9._-]+)*$/, 'a folder of the repository, relative: letters, digits and . _ - / with no . or .. segment');

/** One known_hosts line for the Git server (`host[,host2] keytype base64`, or `[host]:port ...`): ssh-keyscan prints them. */
const knownHostsLine = pattern(
  'known-hosts-line',
  /^(\[[A-Za-z0-9.:-]+\]:[0-9]{1,5}|[A-Za-z0-9.:-]+)(,(\[[A-Za-z0-9.:-]+\]:[0-9]{1,5}|[A-Za-z0-9.:-]+))* (ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+\/]+={0,3}$/,
  'one known_hosts line: host (or [host]:port) key-type base64-key, as ssh-keyscan prints it (no comment, no marker)',
);

/**
 * Mode git (Airflow 3 only): the Git repository the DAG processors track, as one GitDagBundle.
 * The deploy key is airflow-ha's (`<state>/dags_git_ed25519`); `knownHosts` pins the server.
 */
export const DagsGit = z.strictObject({
  url: gitUrl,
  /** The branch (or tag) the bundle tracks (GitDagBundle's `tracking_ref`). */
  ref: gitRef.default('main'),
  /** The folder of the repository that holds the DAG files (GitDagBundle's `subdir`). */
  subdir: gitSubdir.optional(),
  /** Seconds between two fetches (GitDagBundle's `refresh_interval`). */
  refreshIntervalSec: z.number().int().min(10).max(86400).default(300),
  /** The Git server's host key, one known_hosts line (required for an SSH URL). */
  knownHosts: knownHostsLine.optional(),
});
export type DagsGit = z.infer<typeof DagsGit>;

/**
 * Where the Airflow hosts get their DAG files from (see README "DAG storage").
 * - `nfs`: the nfs hosts export `nfs.export`; the VIP holder is the active copy, the others pull it
 *   with rsync on a timer; every Airflow host mounts it read-only from the nfs VIP at `path`.
 * - `sync`: the folder `source` on the operator's machine is copied to every Airflow host as a
 *   release (`<path>-releases/<revision>/`) and `path` is switched to it atomically (a symlink).
 * - `git` (Airflow 3): the DAG processors clone `git.url` as Airflow's Git DAG bundle and fetch
 *   `git.ref` every `git.refreshIntervalSec`; airflow-ha ships no DAG files.
 * Default: `nfs` when a host has the role nfs, else `sync`.
 */
export const Dags = z.strictObject({
  mode: z.enum(['nfs', 'sync', 'git']).optional(),
  /** The DAG folder on the Airflow hosts (Airflow's `[core] dags_folder`). */
  path: absolutePath.default('/opt/airflow/dags'),
  /** sync: the DAG folder on the operator's machine, relative to the inventory file (`deploy-dags --source` overrides it). */
  source: localPath.optional(),
  /** sync: how many releases each host keeps (the current one included). */
  keep: z.number().int().min(2).max(50).default(5),
  nfs: z
    .strictObject({
      /** The exported folder on the nfs hosts. */
      export: absolutePath.default('/srv/airflow/dags'),
      /** Seconds between two pulls of the standby from the VIP holder. */
      syncIntervalSec: z.number().int().min(10).max(3600).default(30),
    })
    .default({ export: '/srv/airflow/dags', syncIntervalSec: 30 }),
  /** git: the repository (mode git only). */
  git: DagsGit.optional(),
});
export type Dags = z.infer<typeof Dags>;

/** The FTP server on the host of role ftp (vsftpd, TLS only, chrooted, no anonymous login). */
export const Ftp = z.strictObject({
  /** The FTP account; its password is the secret `ftpUser` (state folder, secrets.yaml). */
  user: posixUser.default('dagdrop'),
  /** Its chroot (root-owned, read-only); uploads go to `<root>/upload`. */
  root: absolutePath.default('/srv/ftp/dagdrop'),
});

/** The SSH target hosts (role target) the Celery workers drive over SSH. */
export const Target = z.strictObject({
  /** The service account on the target hosts the workers log in as (by key only). */
  user: posixUser.default('airflow_svc'),
  /** Airflow connection id of the first target host (later ones get `<connId>_<host>`). */
  connId: pattern('conn-id', /^[A-Za-z0-9_.-]{1,250}$/, 'an Airflow connection id: letters, digits and . _ -').default('target_ssh'),
});
/**
 * Where the Airflow distribution comes from (see src/components/airflow.ts). Every source installs
 * `apache-airflow[celery,postgres]==<versions.airflow>` into a virtualenv with the constraints file
 * of the pinned Airflow and Python versions.
 */
export const AirflowInstall = z.strictObject({
  /**
   * `pypi` (default): pypi.org, constraints from the Airflow repository;
   * `index`: a private package index (`indexUrl`), e.g. a Nexus/devpi mirror;
   * `wheelhouse`: a folder of wheels on the operator's machine, copied to the hosts and installed
   * with `--no-index` (sites without internet). It must hold `constraints.txt`.
   */
  source: z.enum(['pypi', 'index', 'wheelhouse']).default('pypi'),
  /** Simple-API index URL for `source: index` (pip `--index-url`). */
  indexUrl: url.pipe(z.url()).optional(),
  /** Folder of wheels for `source: wheelhouse`; relative paths are relative to the inventory file. */
  wheelhouse: localPath.optional(),
  /** Constraints file URL (default: the Airflow repository's constraints-<airflow>/constraints-<python>.txt). */
  constraintsUrl: url.pipe(z.url()).optional(),
});

/** The Airflow services: install source, home, OS account and a few tunables. Defaults keep older inventories valid. */
export const AirflowSettings = z.strictObject({
  install: AirflowInstall.default({ source: 'pypi' }),
  /** AIRFLOW_HOME: airflow.cfg, logs, the virtualenv (`venv/`). */
  home: absolutePath.default('/opt/airflow'),
  /** OS user (and group) every Airflow service runs as. */
  user: posixUser.default('airflow'),
  /** Celery worker processes per worker host (`airflow celery worker --concurrency`; Airflow's default 16 when unset). */
  workerConcurrency: z.number().int().min(1).optional(),
  /** Extra OS packages every Airflow host gets (e.g. libraries a provider needs). */
  osPackages: z.array(pattern('package', /^[a-z0-9][a-z0-9+._-]*$/, 'an OS package name (Debian Policy 5.6.1: lower case, digits and + . -)')).optional(),
});
export type AirflowSettings = z.infer<typeof AirflowSettings>;

/**
 * A systemd calendar event (systemd.time(7) "CALENDAR EVENTS"), e.g. `Sun *-*-* 01:00:00` or
 * `daily`: letters, digits and `* - : . , ~ / ..` and spaces. systemd itself checks the meaning
 * when the timer is loaded.
 */
const calendar = pattern('calendar', /^[A-Za-z0-9*:.,~\/+ -]{1,80}$/, 'a systemd calendar event (systemd.time(7)), e.g. "Sun *-*-* 01:00:00" or "daily"');

/**
 * An S3-compatible store holding the pgBackRest repository instead of the backup host's disk
 * (pgBackRest configuration reference, `repo1-type=s3`, `repo1-s3-*`:
 * https://pgbackrest.org/configuration.html#section-repository). The backup host still runs the
 * backups; only where it keeps them changes. The access key and its secret never go in the
 * inventory: `keyEnv` and `secretEnv` name environment variables of the airflow-ha process.
 */
export const BackupS3 = z.strictObject({
  bucket: pattern('s3-bucket', /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 lower-case letters, digits, . and -)'),
  /** Host name (and optional port) of the S3 endpoint, e.g. `s3.eu-central-1.amazonaws.com` or `minio.example:9000`. */
  endpoint: pattern('s3-endpoint', /^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?$/, 'an S3 endpoint host name, optionally :port (no scheme)'),
  region: pattern('s3-region', /^[a-z0-9-]{1,40}$/, 'an S3 region, e.g. eu-central-1'),
  /** The repository's path inside the bucket. */
  path: absolutePath.default('/pgbackrest'),
  /** `host` (virtual-hosted style, AWS) or `path` (most self-hosted stores, e.g. MinIO). */
  uriStyle: z.enum(['host', 'path']).default('host'),
  verifyTls: z.boolean().default(true),
  keyEnv: envName,
  secretEnv: envName,
});
export type BackupS3 = z.infer<typeof BackupS3>;

/**
 * pgBackRest backups of the PostgreSQL cluster (README "Backups"): the repository on the host of
 * role `backup` (a dedicated repository host reached over SSH, pgBackRest user guide "Dedicated
 * Repository Host", https://pgbackrest.org/user-guide.html#repo-host), or on `s3`. Retention counts
 * backups (`repo1-retention-full`, `repo1-retention-diff`); the schedule is systemd timers on the
 * backup host. `maxAgeHours`: `status` reports the backups degraded when the newest good one is
 * older (the default: the daily differential plus 2 hours).
 */
export const BackupSettings = z.strictObject({
  /** The pgBackRest stanza (default: cluster.name). */
  stanza: pattern('stanza', /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'a pgBackRest stanza name: letters, digits, _ and -').optional(),
  /** The repository on the backup host (`repo1-path`). */
  repoPath: absolutePath.default('/var/lib/pgbackrest'),
  retention: z
    .strictObject({
      /** Full backups kept (`repo1-retention-full`, type count); older ones and the WAL only they need are expired. */
      full: z.number().int().min(1).max(9999999).default(2),
      /** Differential backups kept (`repo1-retention-diff`). */
      diff: z.number().int().min(1).max(9999999).default(7),
    })
    .default({ full: 2, diff: 7 }),
  schedule: z
    .strictObject({
      full: calendar.default('Sun *-*-* 01:00:00'),
      diff: calendar.default('Mon..Sat *-*-* 01:00:00'),
      /** Incremental backups: none unless given. */
      incr: calendar.optional(),
    })
    .default({ full: 'Sun *-*-* 01:00:00', diff: 'Mon..Sat *-*-* 01:00:00' }),
  maxAgeHours: z.number().int().min(1).default(26),
  s3: BackupS3.optional(),
});
export type BackupSettings = z.infer<typeof BackupSettings>;
/** A `host:port` of an SMTP server (Alertmanager's `smarthost`). */
const smarthost = pattern('smarthost', /^[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}$/, 'an SMTP server as host:port (e.g. smtp.example.com:587)');
/** An e-mail address as Alertmanager's `to`/`from` take it (one address, no display name). */
/** A login of a receiver (SMTP AUTH user, webhook basic-auth user). */
const receiverUser = pattern('receiver-user', /^[A-Za-z0-9._@+-]{1,128}$/, 'a login: letters, digits and . _ @ + - (at most 128)');
const email = pattern('email', /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$/, 'an e-mail address (local@domain, no display name or spaces)');

/**
 * Where Alertmanager sends the alerts (src/components/monitoring.ts, templates/monitoring/alertmanager.yml.njk).
 * The credentials are secrets (`alertmanagerSmtp`, `alertmanagerWebhook`): give them a source in
 * `secrets:` (env or command), since a generated value is no real SMTP password or token.
 */
export const Receivers = z.strictObject({
  /** E-mail through `smarthost`; `user` logs in (SMTP AUTH) with the secret `alertmanagerSmtp`. */
  email: z
    .strictObject({
      to: z.array(email).min(1),
      from: email,
      smarthost,
      user: receiverUser.optional(),
      /** STARTTLS required (Alertmanager `require_tls`, default true). */
      requireTls: z.boolean().default(true),
    })
    .optional(),
  /** An HTTP POST of every notification to `url` (Alertmanager webhook_config); with `user`, basic auth with the secret `alertmanagerWebhook`. */
  webhook: z
    .strictObject({
      url: url.pipe(z.url()),
      user: receiverUser.optional(),
    })
    .optional(),
});

/** Prometheus + Alertmanager on the hosts of role `monitoring` (README "Monitoring"). Every key has a default. */
export const Monitoring = z.strictObject({
  /** Seconds between two scrapes of every target (Prometheus `scrape_interval`). */
  scrapeIntervalSec: z.number().int().min(5).max(300).default(15),
  /** Days Prometheus keeps its samples (`--storage.tsdb.retention.time`). */
  retentionDays: z.number().int().min(1).max(3650).default(15),
  receivers: Receivers.default({}),
});
export type Monitoring = z.infer<typeof Monitoring>;

/** An IPv4 address or network (`10.0.0.5`, `10.0.0.0/24`). */
const ipv4Source = z.union([z.ipv4(), z.cidrv4()]);

/**
 * Who the firewall admits besides the cluster's own hosts (the matrix: src/inventory/ports.ts, README
 * "Network exposure").
 */
export const Firewall = z.strictObject({
  /**
   * The operator's machines (addresses or networks): they reach the PostgreSQL ports, HAProxy's
   * stats, Flower and RabbitMQ's management through the endpoints `airflow-ha endpoints` prints. A
   * lab's `lab.address` is always one of them.
   */
  operators: z.array(ipv4Source).default([]),
  /** Where SSH may come from (plus the operators and the cluster network); default: anywhere. */
  ssh: z.array(ipv4Source).min(1).optional(),
});

/**
 * `cluster.tls`: TLS on the data plane from one cluster CA (README "TLS"). With `enabled`, etcd
 * (peers and clients, client certificates required), Patroni's REST API, PostgreSQL and Airflow's
 * database connection speak TLS; every host gets a key and a certificate signed by the CA, whose
 * SANs name the host, its address and every VIP it may serve (src/tls/plan.ts). Without `ca`, the CA
 * is generated once into the state folder (`tls/ca.key`, 0600); with `ca`, the site's own CA
 * (`cert`, `key`: PEM files on the operator's machine, relative to the inventory) signs instead.
 */
export const TlsSettings = z.strictObject({
  enabled: z.boolean().default(false),
  /** The site's own CA: its certificate and unencrypted private key (PEM), both on this machine. */
  ca: z.strictObject({ cert: localPath, key: localPath }).optional(),
  /** Validity of each host certificate, in days (default 825, the CA/Browser Forum's former limit). */
  days: z.number().int().min(30).max(3650).default(825),
});
export type TlsSettings = z.infer<typeof TlsSettings>;

export const Cluster = z.strictObject({
  /** Unique per site; used for etcd's token, Patroni's scope, the state folder. */
  name: hostName,
  /** IANA time zone, e.g. `Asia/Tehran`. */
  timezone: pattern('timezone', /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/, 'an IANA time zone name (letters, digits, _ + - and /, e.g. Asia/Tehran)').default('UTC'),
  /** The cluster network in CIDR notation; every address and VIP must be inside it. */
  network: z.cidrv4(),
  vips: z.array(Vip).default([]),
  versions: Versions.default({ postgresql: '15', airflow: AIRFLOW_3_NEWEST }),
  packages: PackageSource.default({ kind: 'distro' }),
  ports: Ports.default(Ports.parse({})),
  postgresql: PostgresSettings.default(PostgresSettings.parse({})),
  /** Admin account created on every host by the base step (optional). */
  admin: Admin.optional(),
  dags: Dags.default(Dags.parse({})),
  ftp: Ftp.default(Ftp.parse({})),
  target: Target.default(Target.parse({})),
  /** The Airflow services (install source, home, user). */
  airflow: AirflowSettings.default(AirflowSettings.parse({})),
  /** Extra sources the firewall admits (the operator's machines, SSH); see {@link Firewall}. */
  firewall: Firewall.optional(),
  /** TLS from a cluster CA on etcd, Patroni, PostgreSQL and Airflow's connection; see {@link TlsSettings}. */
  tls: TlsSettings.default(TlsSettings.parse({})),
  /** pgBackRest backups (used when a host has the role `backup`); see {@link BackupSettings}. */
  backup: BackupSettings.default(BackupSettings.parse({})),
  /** Prometheus and Alertmanager (the hosts of role `monitoring`); see {@link Monitoring}. */
  monitoring: Monitoring.default(Monitoring.parse({})),
});

/** Settings for `airflow-ha lab`: where the lab's systemd containers live on this machine. */
export const Lab = z.strictObject({
  /** Linux bridge name (at most 15 characters). */
  bridge: pattern('bridge', /^[a-z0-9-]{1,15}$/, 'a bridge name: at most 15 lower-case letters, digits and -'),
  /** The bridge's own address inside `cluster.network` (the hosts' apt proxy listens there). */
  address: z.ipv4(),
  /** Prefix of the container names, so two labs on one machine never collide. */
  prefix: pattern('lab-prefix', /^[a-z0-9-]{1,20}$/, 'at most 20 lower-case letters, digits and -').optional(),
});

/**
 * Where one secret comes from instead of the generated secrets file: exactly one of
 * - `env`: the name of an environment variable of the airflow-ha process that holds the value;
 * - `command`: an argv array run on the operator's machine without a shell (execve(2): no
 *   globbing, no `$VAR`, no pipes), whose standard output, less one trailing newline, is the value
 *   (`[pass, show, airflow/db]`, `[op, read, "op://vault/item/field"]`,
 *   `[vault, kv, get, -field=password, secret/airflow]`, `[sops, -d, --extract, '["db"]', s.yaml]`).
 *   `timeoutSec` (seconds, default 30) bounds it; the process is killed after it.
 * "Exactly one" is the rule `secrets:source` (src/inventory/rules.ts).
 */
export const SecretSource = z.strictObject({
  env: envName.optional(),
  command: z.array(printable).min(1).optional(),
  timeoutSec: z.number().int().min(1).max(3600).optional(),
});
export type SecretSource = z.infer<typeof SecretSource>;

/** Default of {@link SecretSource}'s `timeoutSec`, in seconds. */
export const SECRET_COMMAND_TIMEOUT_SEC = 30;

/**
 * `secrets:`: for each secret that does not come from the generated file, its source. The keys are
 * the secret names of src/inventory/secret-names.ts; any other key is an error at its line.
 */
export const SecretSources = z.strictObject(Object.fromEntries(SECRET_NAMES.map((n) => [n, SecretSource.optional()])) as Record<SecretName, z.ZodOptional<typeof SecretSource>>);
export type SecretSources = z.infer<typeof SecretSources>;

/**
 * An age recipient (https://age-encryption.org/v1): a native X25519 key `age1` + 58 bech32
 * characters, a plugin recipient `age1<plugin>1...`, or an SSH public key `ssh-ed25519 AAAA...` /
 * `ssh-rsa AAAA...` (age(1) "-r").
 */
const ageRecipient = pattern(
  'age-recipient',
  /^(age1[02-9ac-hj-np-z]{58}|age1[a-z0-9-]+1[02-9ac-hj-np-z]{6,}|ssh-(ed25519|rsa) AAAA[A-Za-z0-9+/]+={0,3})$/,
  'an age recipient: age1... (age-keygen prints it as "Public key"), or an ssh-ed25519/ssh-rsa public key',
);

/**
 * `secretsFile:`: how the generated secrets file is kept. `encryption: age` keeps it as
 * `<state>/secrets.yaml.age`, encrypted to every one of `recipients` (age(1) `-r`) and read with
 * `age -d -i identityFile` (`~` is expanded, relative to the inventory file); `timeoutSec` (seconds,
 * default 60) bounds each age run (an identity with a passphrase is asked for on the terminal).
 * `encryption: none` (default) is the plain 0600 `secrets.yaml`. Rule `secrets:age` (rules.ts):
 * age needs at least one recipient and the identity file.
 */
export const SecretsFile = z.strictObject({
  encryption: z.enum(['none', 'age']).default('none'),
  recipients: z.array(ageRecipient).default([]),
  identityFile: localPath.optional(),
  timeoutSec: z.number().int().min(1).max(3600).default(60),
});
export type SecretsFile = z.infer<typeof SecretsFile>;

/** The whole inventory file. */
export const Inventory = z.strictObject({
  /** Secrets that come from the environment or a command instead of the generated file. */
  secrets: SecretSources.optional(),
  /** How the generated secrets file is kept (plain 0600 YAML, or age-encrypted). */
  secretsFile: SecretsFile.default(SecretsFile.parse({})),
  cluster: Cluster,
  /** Defaults for every host's SSH settings. */
  ssh: SshSettings.default({}),
  hosts: z.array(Host).min(1),
  lab: Lab.optional(),
});
export type Inventory = z.infer<typeof Inventory>;
export type InventoryInput = z.input<typeof Inventory>;

/** The JSON Schema of the inventory for editors (draft 2020-12). */
export function inventoryJsonSchema(): unknown {
  return z.toJSONSchema(Inventory, { io: 'input', unrepresentable: 'any' });
}
