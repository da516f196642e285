import { z } from 'zod';

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
] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

const hostName = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a host name is a DNS label: lower-case letters, digits and inner hyphens, at most 63 characters (RFC 1123)');

const port = z.number().int().min(1).max(65535);

/** How to reach a host over SSH. Every field falls back to the inventory's top-level `ssh`. */
export const SshSettings = z.strictObject({
  /** Login user; non-root users run everything through `sudo -n`. */
  user: z.string().min(1).optional(),
  /** TCP port of sshd. */
  port: port.optional(),
  /** Private key file (`~` is expanded; relative paths are relative to the inventory file). */
  identityFile: z.string().min(1).optional(),
  /** Environment variable holding the key's passphrase (the passphrase itself never goes in the inventory). */
  passphraseEnv: z.string().min(1).optional(),
  /** Use the SSH agent at $SSH_AUTH_SOCK. */
  agent: z.boolean().optional(),
  /** Jump host: `[user@]address[:port]` or the name of another inventory host. */
  jump: z.string().min(1).optional(),
  /** Seconds to wait for a TCP connection + handshake. */
  connectTimeoutSec: z.number().positive().optional(),
});
export type SshSettings = z.infer<typeof SshSettings>;

/** One VM. */
export const Host = z.strictObject({
  name: hostName,
  /** IPv4 address inside `cluster.network`. */
  address: z.ipv4(),
  roles: z.array(Role).min(1),
  ssh: SshSettings.optional(),
  /** Celery queues this host's workers consume (role `worker`). */
  queues: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/)).min(1).optional(),
  /** Free-form per-host data for templates. */
  vars: z.record(z.string(), z.unknown()).optional(),
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
  rabbitmqManagement: port.default(15672),
  rabbitmqDist: port.default(25672),
  epmd: port.default(4369),
  webserver: port.default(8080),
  webserverFrontend: port.default(80),
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
});
export type Ports = z.infer<typeof Ports>;

/** Pinned component versions. Nothing is upgraded as a side effect of a re-run. */
export const Versions = z.strictObject({
  postgresql: z.string().default('15'),
  patroni: z.string().optional(),
  etcd: z.string().optional(),
  rabbitmq: z.string().optional(),
  erlang: z.string().optional(),
  airflow: z.string().default('2.9.0'),
  python: z.string().optional(),
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
  mirrors: z.record(z.string(), z.url()).optional(),
  /** HTTP proxy for the hosts' package manager (e.g. the lab's apt cache). */
  proxy: z.url().optional(),
});

/**
 * PostgreSQL settings of the Patroni nodes. `parameters` go into each node's local Patroni config
 * (`postgresql.parameters`, which overrides the DCS): a change is applied by a Patroni reload, and
 * one that needs a server restart (context `postmaster`, e.g. `shared_buffers`) by a rolling restart,
 * replicas first, the leader last. Parameters Patroni keeps in the DCS or sets itself are refused
 * (rule `postgresql:patroni-parameter`).
 */
export const PostgresSettings = z.strictObject({
  parameters: z.record(z.string().regex(/^[a-z][a-z0-9_.]*$/, 'a PostgreSQL parameter name (lower case, e.g. work_mem)'), z.union([z.string(), z.number(), z.boolean()])).default({}),
});
const posixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a POSIX user name (man useradd: lower case, digits, _ and -)');

/** The operators' admin account on every host: SSH keys and passwordless sudo, never a password. */
export const Admin = z.strictObject({
  user: posixUser,
  /** OpenSSH public key lines (`ssh-ed25519 AAAA... comment`). */
  authorizedKeys: z.array(z.string().regex(/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/, 'an OpenSSH public key line')).min(1),
});

const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._@+\/-]*[A-Za-z0-9._@+-]$/, 'an absolute path of letters, digits and . _ @ + - / (no trailing /, not /)');

/**
 * Where the Airflow hosts get their DAG files from (see README "DAG storage").
 * - `nfs`: the nfs hosts export `nfs.export`; the VIP holder is the active copy, the others pull it
 *   with rsync on a timer; every Airflow host mounts it read-only from the nfs VIP at `path`.
 * - `sync`: the folder `source` on the operator's machine is copied to every Airflow host as a
 *   release (`<path>-releases/<revision>/`) and `path` is switched to it atomically (a symlink).
 * Default: `nfs` when a host has the role nfs, else `sync`.
 */
export const Dags = z.strictObject({
  mode: z.enum(['nfs', 'sync']).optional(),
  /** The DAG folder on the Airflow hosts (Airflow's `[core] dags_folder`). */
  path: absolutePath.default('/opt/airflow/dags'),
  /** sync: the DAG folder on the operator's machine, relative to the inventory file (`deploy-dags --source` overrides it). */
  source: z.string().min(1).optional(),
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
  connId: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('target_ssh'),
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
  indexUrl: z.url().optional(),
  /** Folder of wheels for `source: wheelhouse`; relative paths are relative to the inventory file. */
  wheelhouse: z.string().min(1).optional(),
  /** Constraints file URL (default: the Airflow repository's constraints-<airflow>/constraints-<python>.txt). */
  constraintsUrl: z.url().optional(),
});

/** The Airflow services: install source, home, OS account and a few tunables. Defaults keep older inventories valid. */
export const AirflowSettings = z.strictObject({
  install: AirflowInstall.default({ source: 'pypi' }),
  /** AIRFLOW_HOME: airflow.cfg, logs, the virtualenv (`venv/`). */
  home: z.string().regex(/^\/[A-Za-z0-9_.\/-]+$/, 'an absolute path').default('/opt/airflow'),
  /** OS user (and group) every Airflow service runs as. */
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a POSIX user name').default('airflow'),
  /** Celery worker processes per worker host (`airflow celery worker --concurrency`; Airflow's default 16 when unset). */
  workerConcurrency: z.number().int().min(1).optional(),
  /** Extra OS packages every Airflow host gets (e.g. libraries a provider needs). */
  osPackages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/, 'an OS package name')).optional(),
});
export type AirflowSettings = z.infer<typeof AirflowSettings>;

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

export const Cluster = z.strictObject({
  /** Unique per site; used for etcd's token, Patroni's scope, the state folder. */
  name: hostName,
  /** IANA time zone, e.g. `Asia/Tehran`. */
  timezone: z.string().default('UTC'),
  /** The cluster network in CIDR notation; every address and VIP must be inside it. */
  network: z.cidrv4(),
  vips: z.array(Vip).default([]),
  versions: Versions.default({ postgresql: '15', airflow: '2.9.0' }),
  packages: PackageSource.default({ kind: 'distro' }),
  ports: Ports.default(Ports.parse({})),
  postgresql: PostgresSettings.default({ parameters: {} }),
  /** Admin account created on every host by the base step (optional). */
  admin: Admin.optional(),
  dags: Dags.default(Dags.parse({})),
  ftp: Ftp.default(Ftp.parse({})),
  target: Target.default(Target.parse({})),
  /** The Airflow services (install source, home, user). */
  airflow: AirflowSettings.default(AirflowSettings.parse({})),
  /** Extra sources the firewall admits (the operator's machines, SSH); see {@link Firewall}. */
  firewall: Firewall.optional(),
});

/** Settings for `airflow-ha lab`: where the lab's systemd containers live on this machine. */
export const Lab = z.strictObject({
  /** Linux bridge name (at most 15 characters). */
  bridge: z.string().regex(/^[a-z0-9-]{1,15}$/),
  /** The bridge's own address inside `cluster.network` (the hosts' apt proxy listens there). */
  address: z.ipv4(),
  /** Prefix of the container names, so two labs on one machine never collide. */
  prefix: z.string().regex(/^[a-z0-9-]{1,20}$/).optional(),
});

/** The whole inventory file. */
export const Inventory = z.strictObject({
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
