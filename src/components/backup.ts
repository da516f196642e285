/**
 * pgBackRest backups of the Patroni cluster (README "Backups"). Desired state only.
 *
 * The layout is pgBackRest's "Dedicated Repository Host" (user guide,
 * https://pgbackrest.org/user-guide.html#repo-host): the host of role `backup` owns the repository
 * as the OS user `pgbackrest`, knows every PostgreSQL host (`pgN-host`) and runs the backups; the
 * PostgreSQL hosts know only the repository host (`repo1-host`) and push WAL to it from
 * `archive_command`. Both directions run over SSH with a key pair per side that airflow-ha keeps in
 * the state folder (like the workers' target key), each authorized with `restrict` and `from=` the
 * other side's addresses only, each side's host keys pinned from `<inventory>.state/known_hosts`.
 *
 * Why SSH and not pgBackRest's TLS server (`tls-server-*`, since 2.37): the TLS server needs a CA
 * and a certificate per host, which the cluster does not have yet; SSH needs only sshd, which every
 * host runs for airflow-ha anyway, and is the user guide's main setup.
 *
 * WAL archiving: `archive_mode = on` and `archive_command = pgbackrest --stanza=S archive-push %p` in
 * every node's local Patroni `postgresql.parameters` ({@link backupParameters}); a standby does not
 * archive (archive_mode `on`, not `always`), so whichever node leads archives
 * (https://www.postgresql.org/docs/15/runtime-config-wal.html#GUC-ARCHIVE-MODE).
 */
import { sh, type Cmd } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import type { BackupS3, Host, Inventory } from '../inventory/schema.js';
import type { SshKeypair } from '../run/playbook.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { service, unit } from '../tasks/systemd.js';
import { user } from '../tasks/system.js';
import type { Task } from '../tasks/task.js';
import { renderTemplate, template } from '../tasks/template.js';
import { backupHost, backupStanza } from './backup-params.js';
import { patroniNodes, patroniPaths } from './patroni.js';

export { backupHost, backupParameters, backupStanza } from './backup-params.js';
import { blocked, knownHostsLines, secretFile, sshPort } from './target.js';

/** The OS user owning the repository on the backup host (the user guide's `pgbackrest`). */
export const PGBACKREST_USER = 'pgbackrest';
/** Its home: ~/.ssh holds its key, the PostgreSQL hosts' keys it accepts and their host keys. */
export const PGBACKREST_HOME = '/home/pgbackrest';
/** pgBackRest's configuration file on both sides (its default `--config` since 2.x). */
export const PGBACKREST_CONF = '/etc/pgbackrest/pgbackrest.conf';
/** pgBackRest's log folder (its default `log-path`). */
export const PGBACKREST_LOG = '/var/log/pgbackrest';

/** The backup types pgBackRest takes (`--type`, https://pgbackrest.org/command.html#command-backup). */
export const BACKUP_TYPES = ['full', 'diff', 'incr'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** The key pairs of the two sides (generated once into the state folder by src/cli/operator.ts). */
export interface BackupKeys {
  /** The repository host's `pgbackrest` user: it logs in to the PostgreSQL hosts as postgres. */
  repo: SshKeypair;
  /** The PostgreSQL hosts' postgres user: it logs in to the repository host as pgbackrest. */
  pg: SshKeypair;
}

/** The S3 credentials of `cluster.backup.s3`, read from the environment variables it names (src/cli). */
export interface BackupS3Keys {
  key: Secret;
  secret: Secret;
}

/** Where postgres keeps its SSH files on each family (its home: Debian /var/lib/postgresql, RHEL /var/lib/pgsql). */
export function postgresHome(family: OsFamily): string {
  return family === 'debian' ? '/var/lib/postgresql' : '/var/lib/pgsql';
}

/**
 * `authorized_keys` line (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): `restrict` (no forwarding, no
 * pty, no ~/.ssh/rc: pgBackRest needs none) and `from=` the addresses of the other side only.
 */
export function backupAuthorizedKey(key: SshKeypair, from: readonly Host[]): string {
  return `restrict,from="${from.map((h) => h.address).join(',')}" ${key.publicKey.trim()}\n`;
}

function templateVars(inv: Inventory, family: OsFamily) {
  const p = patroniPaths(family, inv.cluster.versions.postgresql);
  return { stanza: backupStanza(inv), data_dir: p.dataDir, socket_dir: p.socketDir, pg_port: inv.cluster.ports.postgres };
}

/**
 * The repository host's pgbackrest.conf: the repository (its disk, or `cluster.backup.s3` with the
 * credentials `s3Keys`), retention (`repo1-retention-full` counts full backups), and one `pgN-host`
 * per PostgreSQL host in inventory order. pgBackRest finds the primary among them itself.
 * @throws Error when `cluster.backup.s3` is set but `s3Keys` is not given.
 */
export function renderRepoConf(inv: Inventory, family: OsFamily = 'debian', s3Keys?: BackupS3Keys): string {
  return renderTemplate('backup/pgbackrest-repo.conf.njk', repoConfVars(inv, family, s3Keys));
}

function repoConfVars(inv: Inventory, family: OsFamily, s3Keys?: BackupS3Keys): Record<string, unknown> {
  const b = inv.cluster.backup;
  const s3: BackupS3 | undefined = b.s3;
  if (s3 && !s3Keys) throw new Error(`cluster.backup.s3: the access key and secret (environment variables ${s3.keyEnv} and ${s3.secretEnv}) are not set`);
  return {
    ...templateVars(inv, family),
    repo_path: b.repoPath,
    retention: b.retention,
    s3: s3 ?? null,
    s3_key: s3Keys?.key ?? null,
    s3_secret: s3Keys?.secret ?? null,
    nodes: patroniNodes(inv).map((h) => ({ address: h.address, sshPort: sshPort(inv, h) })),
  };
}

/** A PostgreSQL host's pgbackrest.conf: the repository host, and its own data directory as `pg1`. */
export function renderPgConf(inv: Inventory, hostName: string, family: OsFamily = 'debian'): string {
  const repo = backupHost(inv);
  if (!repo) throw new Error('no host has the role backup');
  return renderTemplate('backup/pgbackrest-pg.conf.njk', { ...templateVars(inv, family), name: hostName, repo_address: repo.address, repo_user: PGBACKREST_USER, repo_ssh_port: sshPort(inv, repo) });
}

/** The systemd units of the schedule: a oneshot service and its timer per scheduled type. */
export function backupUnits(inv: Inventory): { name: string; content: string; restart: string[] }[] {
  const schedule = inv.cluster.backup.schedule;
  const stanza = backupStanza(inv);
  return BACKUP_TYPES.flatMap((type) => {
    const calendar = schedule[type];
    if (!calendar) return [];
    const unitName = backupUnitName(type);
    const vars = { type, stanza, unit: unitName, user: PGBACKREST_USER, calendar };
    return [
      // Never restarted on a change: starting the service takes a backup.
      { name: `${unitName}.service`, content: renderTemplate('backup/backup.service.njk', vars), restart: [] },
      { name: `${unitName}.timer`, content: renderTemplate('backup/backup.timer.njk', vars), restart: [`${unitName}.timer`] },
    ];
  });
}

/** The unit name (without suffix) of a scheduled backup type: `airflow-ha-backup-full`. */
export function backupUnitName(type: BackupType): string {
  return `airflow-ha-backup-${type}`;
}

/**
 * `~/.ssh/config` of pgBackRest's SSH user on either side: the peers' keys are pinned in
 * known_hosts, and ssh must keep it that way. OpenSSH's `UpdateHostKeys` (default yes, ssh_config(5))
 * would append every other host key a peer offers after the login (hashed, as Debian's
 * `HashKnownHosts yes` says), so the next run would find known_hosts changed; `StrictHostKeyChecking
 * yes` refuses a peer whose key is not pinned instead of asking.
 */
function sshClientConfigTask(path: string, owner: string): Task {
  const content = [
    '# Managed by airflow-ha (pgBackRest over SSH): edits are overwritten on the next run.',
    '# The peers\' host keys are pinned in known_hosts; ssh neither adds keys nor asks.',
    'Host *',
    '    StrictHostKeyChecking yes',
    '    UpdateHostKeys no',
    '',
  ].join('\n');
  return file({ path, content, mode: '0600', owner, group: owner });
}

/** The known_hosts file of one side: the other side's pinned keys, or a blocked task saying how to record them. */
function knownHostsTask(inv: Inventory, path: string, peers: readonly Host[], hostKeys: ((h: Host) => string[]) | undefined, owner: string): Task {
  const keysOf = (h: Host) => hostKeys?.(h) ?? [];
  const unknown = peers.filter((h) => keysOf(h).length === 0);
  if (unknown.length > 0) {
    return blocked(
      `file ${path}`,
      `no host key of ${unknown.map((h) => h.name).join(', ')} in the inventory's known_hosts: airflow-ha pins the key it verified itself; connect once (e.g. \`airflow-ha facts -i FILE --limit ${unknown[0]?.name} --accept-new-host-keys\`, checking the fingerprint it records), then run again`,
    );
  }
  return file({ path, content: `${peers.flatMap((h) => knownHostsLines(inv, h, keysOf(h))).join('\n')}\n`, mode: '0644', owner, group: owner });
}

/**
 * Tasks of a PostgreSQL host: the pgbackrest package (the same Debian build as the repository
 * host's: the user guide requires equal versions), its config (0640 root:postgres), the log
 * folder, and postgres's ~/.ssh: its private key, the repository's key authorized from the backup
 * host only, the backup host's key pinned. Nothing without a backup host.
 * @throws Error when the run has no backup keys (the CLI generates them).
 */
export function backupPgTasks(inv: Inventory, host: Host, facts: HostFacts, keys: BackupKeys | undefined, hostKeys: ((h: Host) => string[]) | undefined): Task[] {
  const repo = backupHost(inv);
  if (!repo) return [];
  if (!keys) throw new Error('no key pairs for pgBackRest in this run (airflow-ha generates them in the state folder)');
  const home = postgresHome(facts.family);
  const own = { owner: 'postgres', group: 'postgres' };
  return [
    packages({ names: ['pgbackrest', 'openssh-client'] }),
    directory({ path: '/etc/pgbackrest', mode: '0755' }),
    file({ path: PGBACKREST_CONF, content: renderPgConf(inv, host.name, facts.family), mode: '0640', owner: 'root', group: 'postgres' }),
    directory({ path: PGBACKREST_LOG, mode: '0770', ...own }),
    directory({ path: `${home}/.ssh`, mode: '0700', ...own }),
    secretFile({ path: `${home}/.ssh/id_ed25519`, content: keys.pg.privateKey, mode: '0600', ...own }),
    file({ path: `${home}/.ssh/authorized_keys`, content: backupAuthorizedKey(keys.repo, [repo]), mode: '0600', ...own }),
    knownHostsTask(inv, `${home}/.ssh/known_hosts`, [repo], hostKeys, 'postgres'),
    sshClientConfigTask(`${home}/.ssh/config`, 'postgres'),
  ];
}

/** `pgbackrest --stanza=S ARGS` as the repository's owner on the backup host, from `/` (root's home is not its to read). */
export function pgbackrest(inv: Inventory, args: readonly string[]): Cmd {
  return sh`cd / && runuser -u ${PGBACKREST_USER} -- pgbackrest --stanza=${backupStanza(inv)} ${args}`;
}

/**
 * Read-only: the stanza exists in the repository. `pgbackrest info --output=json` reports status
 * code 0 (ok) or 2 (no valid backup yet) for a stanza that exists, 1 when its path is missing
 * (https://pgbackrest.org/command.html#command-info).
 */
export function stanzaExists(inv: Inventory): Cmd {
  return sh`${pgbackrest(inv, ['--output=json', 'info'])} 2>/dev/null | grep -Eq ${'"status":\\{"code":(0|2),'}`;
}

/**
 * Tasks of the backup host: pgbackrest and the ssh client, the `pgbackrest` user, the repository
 * folder (0750), the config (0640 root:pgbackrest: it may hold the S3 secret), the log folder,
 * ~pgbackrest/.ssh (its key, the PostgreSQL hosts' key from their addresses only, their host
 * keys pinned), the schedule's units (timers enabled and started), and `stanza-create` once (guarded
 * by {@link stanzaExists}; it needs the primary up, which the playbook's order gives).
 */
export function backupRepoTasks(inv: Inventory, facts: HostFacts, keys: BackupKeys | undefined, hostKeys: ((h: Host) => string[]) | undefined, s3Keys?: BackupS3Keys): Task[] {
  if (!keys) throw new Error('no key pairs for pgBackRest in this run (airflow-ha generates them in the state folder)');
  const b = inv.cluster.backup;
  const own = { owner: PGBACKREST_USER, group: PGBACKREST_USER };
  const ssh = `${PGBACKREST_HOME}/.ssh`;
  const tasks: Task[] = [
    packages({ names: ['pgbackrest', 'openssh-client'] }),
    user({ name: PGBACKREST_USER, home: PGBACKREST_HOME, shell: '/bin/sh', system: true }),
    directory({ path: PGBACKREST_HOME, mode: '0750', ...own }),
    directory({ path: '/etc/pgbackrest', mode: '0755' }),
    template({ path: PGBACKREST_CONF, template: 'backup/pgbackrest-repo.conf.njk', vars: repoConfVars(inv, facts.family, s3Keys), mode: '0640', owner: 'root', group: PGBACKREST_USER }),
    ...(b.s3 ? [] : [directory({ path: b.repoPath, mode: '0750', ...own })]),
    directory({ path: PGBACKREST_LOG, mode: '0770', ...own }),
    directory({ path: ssh, mode: '0700', ...own }),
    secretFile({ path: `${ssh}/id_ed25519`, content: keys.repo.privateKey, mode: '0600', ...own }),
    file({ path: `${ssh}/authorized_keys`, content: backupAuthorizedKey(keys.pg, patroniNodes(inv)), mode: '0600', ...own }),
    knownHostsTask(inv, `${ssh}/known_hosts`, patroniNodes(inv), hostKeys, PGBACKREST_USER),
    sshClientConfigTask(`${ssh}/config`, PGBACKREST_USER),
  ];
  for (const u of backupUnits(inv)) tasks.push(unit({ name: u.name, content: u.content, restart: u.restart }));
  for (const u of backupUnits(inv).filter((x) => x.name.endsWith('.timer'))) tasks.push(service({ name: u.name, enabled: true, state: 'started' }));
  tasks.push(
    command({
      name: `pgbackrest stanza-create ${backupStanza(inv)}`,
      cmd: pgbackrest(inv, ['stanza-create']),
      unless: stanzaExists(inv),
      timeoutSec: 300,
    }),
  );
  return tasks;
}

/**
 * Gate command on the backup host: `pgbackrest check` (https://pgbackrest.org/command.html#command-check)
 * asks the primary to switch WAL and waits until that segment is in the repository, so it proves
 * archive_command works end to end. It archives one (mostly empty) segment per run.
 */
export function backupCheck(inv: Inventory): Cmd {
  return pgbackrest(inv, ['--archive-timeout=30', 'check']);
}

/** `pgbackrest backup --type=TYPE` on the backup host (what the timers run, and `airflow-ha backup`). */
export function backupCommand(inv: Inventory, type: BackupType): Cmd {
  return pgbackrest(inv, [`--type=${type}`, 'backup']);
}

/** `pgbackrest info --output=json` on the backup host (parsed by src/backup/info.ts). */
export function infoCommand(inv: Inventory): Cmd {
  return pgbackrest(inv, ['--output=json', 'info']);
}
