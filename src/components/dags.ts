/**
 * DAG storage (bootstrap "DAG storage", ../shared/reference/ha-stack.md "DAG files"), in one of two
 * modes (cluster.dags.mode):
 * - `nfs`: every nfs host exports the same folder read-only to the cluster network; keepalived
 *   holds the nfs VIP on one of them (the active copy); the others pull the active copy with rsync
 *   on a systemd timer; every Airflow host mounts the export from the VIP read-only (hard,_netdev).
 * - `sync`: the operator's DAG folder is shipped to every Airflow host as a release folder named by
 *   its content hash, after its Python files compiled on one host; the DAG folder is a symlink
 *   switched atomically to the new release.
 * Desired state only: the runner executes the tasks.
 */
import { createHash } from 'node:crypto';
import { sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { OsFamily } from '../facts/host.js';
import { DAG_READER_ROLES, dagsMode } from '../inventory/rules.js';
import type { Host, Inventory, Vip } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { compileCheck, release, type FileTree } from '../tasks/release.js';
import { restartHandler, service, unit } from '../tasks/systemd.js';
import { renderTemplate, template } from '../tasks/template.js';
import type { Handler, Task } from '../tasks/task.js';
import type { SshKeypair } from '../run/playbook.js';
import { secretFile } from './target.js';
import { airflowAccountTasks, airflowHomeTask, airflowPaths, dagBundleConfig, DAGS_GIT_KEY, DAGS_GIT_KNOWN_HOSTS } from './airflow.js';

/** The exports file of the DAG folder (exports(5): /etc/exports.d/*.exports are read by exportfs). */
export const EXPORTS_FILE = '/etc/exports.d/airflow-ha-dags.exports';
/** The rsync daemon's config (rsyncd.conf(5); Debian's rsync.service starts only when it exists). */
export const RSYNCD_CONF = '/etc/rsyncd.conf';
/** The pull script and its units on the nfs hosts. */
export const PULL_SCRIPT = '/usr/local/sbin/airflow-ha-dags-pull';
export const PULL_SERVICE = 'airflow-ha-dags-pull.service';
export const PULL_TIMER = 'airflow-ha-dags-pull.timer';

/** The hosts that read the DAG folder: those of the Airflow roles, in inventory order. */
export function dagHosts(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.some((r) => DAG_READER_ROLES.includes(r)));
}

/** Where the releases of mode sync live: beside the DAG folder, `<path>-releases`. */
export function releasesDir(inv: Inventory): string {
  return `${inv.cluster.dags.path}-releases`;
}

/** The VIP the NFS clients mount from (the first of role nfs). Throws when there is none (rule `dags:nfs-vip`). */
export function nfsVip(inv: Inventory): Vip {
  const vip = inv.cluster.vips.find((v) => v.role === 'nfs');
  if (!vip) throw new Error('DAGs on NFS need a VIP of role nfs in cluster.vips');
  return vip;
}

/**
 * The unit name of a mount point, as `systemd-escape --path --suffix=mount` gives it
 * (systemd.unit(5) "String Escaping for Inclusion in Unit Names"): `/opt/airflow/dags` ->
 * `opt-airflow-dags.mount`.
 */
export function mountUnitName(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
  const escaped = trimmed
    .split('/')
    .map((seg) =>
      [...Buffer.from(seg, 'utf8')]
        .map((b, i) => {
          const c = String.fromCharCode(b);
          return /[A-Za-z0-9:_]/.test(c) || (c === '.' && i > 0) ? c : `\\x${b.toString(16).padStart(2, '0')}`;
        })
        .join(''),
    )
    .join('-');
  return `${escaped || '-'}.mount`;
}

/**
 * The export's fsid (exports(5)): a UUID derived from the cluster name and the export path, the
 * same on every nfs host, so clients see one filesystem identity whichever host holds the VIP.
 */
export function exportFsid(inv: Inventory): string {
  const h = createHash('sha256').update(`${inv.cluster.name}\0${inv.cluster.dags.nfs.export}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The exports file of every nfs host (pure). */
export function nfsExports(inv: Inventory): string {
  return renderTemplate('dags/exports.njk', {
    cluster: inv.cluster.name,
    vip: nfsVip(inv).address,
    export: inv.cluster.dags.nfs.export,
    network: inv.cluster.network,
    fsid: exportFsid(inv),
  });
}

/** Handler: re-read the exports (`exportfs -ra`, man exportfs(8)); clients keep their mounts. */
export const reexportHandler: Handler = { id: 'exportfs', name: 'exportfs -ra', ops: [exec(sh`exportfs -ra`)] };

/**
 * Tasks of one nfs host: the NFS server (Debian nfs-kernel-server, RHEL nfs-utils; its unit is
 * nfs-server.service on both), the export, the rsync daemon serving the folder read-only to the
 * other nfs hosts, and the pull timer that keeps a standby's copy equal to the VIP holder's.
 * keepalived comes in its own step ({@link keepalivedTasks} renders the nfs VIP with a
 * `systemctl is-active nfs-server` check).
 */
export function nfsServerTasks(inv: Inventory, host: Host, family: OsFamily): Task[] {
  const vip = nfsVip(inv);
  const { export: exportPath, syncIntervalSec: interval } = inv.cluster.dags.nfs;
  const peers = inv.hosts.filter((h) => h.roles.includes('nfs') && h.name !== host.name).map((h) => h.address);
  const rsyncService = family === 'debian' ? 'rsync' : 'rsyncd';
  const vars = { cluster: inv.cluster.name, vip: vip.address, export: exportPath, port: inv.cluster.ports.rsync, interval, pull_script: PULL_SCRIPT, timer: PULL_TIMER };
  return [
    packages({ names: family === 'debian' ? ['nfs-kernel-server', 'rsync'] : ['nfs-utils', 'rsync', 'rsync-daemon'] }),
    directory({ path: exportPath, mode: '0755' }),
    directory({ path: '/etc/exports.d' }),
    file({ path: EXPORTS_FILE, content: nfsExports(inv), notify: [reexportHandler] }),
    service({ name: 'nfs-server', enabled: true, state: 'started' }),
    template({
      path: RSYNCD_CONF,
      template: 'dags/rsyncd.conf.njk',
      vars: { ...vars, peers: peers.length ? peers : ['127.0.0.1'], nogroup: family === 'debian' ? 'nogroup' : 'nobody' },
      notify: [restartHandler(rsyncService)],
    }),
    service({ name: rsyncService, enabled: true, state: 'started' }),
    template({ path: PULL_SCRIPT, template: 'dags/pull.sh.njk', vars, mode: '0755' }),
    unit({ name: PULL_SERVICE, content: renderTemplate('dags/pull.service.njk', vars), restart: [] }),
    unit({ name: PULL_TIMER, content: renderTemplate('dags/pull.timer.njk', vars) }),
    service({ name: PULL_TIMER, enabled: true, state: 'started' }),
  ];
}

/**
 * Tasks of one Airflow host in mode nfs: the NFS client (Debian nfs-common, RHEL nfs-utils) and a
 * systemd mount unit of the export from the nfs VIP at cluster.dags.path, read-only, enabled and
 * started (systemd creates the mount point).
 */
export function nfsClientTasks(inv: Inventory, family: OsFamily): Task[] {
  const vip = nfsVip(inv);
  const name = mountUnitName(inv.cluster.dags.path);
  return [
    packages({ names: family === 'debian' ? ['nfs-common'] : ['nfs-utils'] }),
    unit({
      name,
      content: renderTemplate('dags/dags.mount.njk', { cluster: inv.cluster.name, vip: vip.address, export: inv.cluster.dags.nfs.export, path: inv.cluster.dags.path }),
    }),
    service({ name, enabled: true, state: 'started' }),
  ];
}

/** The DAG tree of a sync run, or an error saying where it should have come from. */
function tree(dags: (() => FileTree) | undefined): FileTree {
  if (!dags) throw new Error(`dags.mode is sync but this run has no DAG folder (set cluster.dags.source or use deploy-dags --source)`);
  return dags();
}

/**
 * Mode sync, on the first Airflow host only: the release's Python files compile with the host's
 * Python (Airflow's venv, else python3), before any host switches to it. DAG files are code: they
 * compile as the Airflow account (created here first when this runs before the Airflow step).
 */
export function dagsCompileTasks(inv: Inventory, host: Host, family: OsFamily, dags: (() => FileTree) | undefined): Task[] {
  if (dagsMode(inv) !== 'sync' || dagHosts(inv)[0]?.name !== host.name || !dags) return [];
  const t = tree(dags);
  return [
    ...airflowAccountTasks(inv, family),
    compileCheck({
      link: inv.cluster.dags.path,
      releasesDir: releasesDir(inv),
      tree: t,
      keep: inv.cluster.dags.keep,
      pythons: [`${airflowPaths(inv).venv}/bin/python`, 'python3'],
      user: inv.cluster.airflow.user,
    }),
  ];
}

/**
 * Mode sync, on every Airflow host: the release of the operator's DAG folder, the DAG folder switched to it (without a folder: an empty DAG folder).
 * The Airflow home comes first as root's (a cluster set up before it was, has it owned by the account):
 * the release refuses folders another account could swap under root.
 */
export function dagsReleaseTasks(inv: Inventory, dags: (() => FileTree) | undefined): Task[] {
  if (dagsMode(inv) !== 'sync') return [];
  if (!dags) {
    // No DAG folder given (no cluster.dags.source, no --source): an empty DAG folder, so Airflow
    // starts; `deploy-dags` later replaces it by a release. A folder or link already there is kept.
    const p = inv.cluster.dags.path;
    return [command({ name: `DAG folder ${p} (empty until deploy-dags)`, cmd: sh`install -d -m 0755 ${p}`, creates: p })];
  }
  const t = tree(dags);
  return [airflowHomeTask(inv), release({ link: inv.cluster.dags.path, releasesDir: releasesDir(inv), tree: t, keep: inv.cluster.dags.keep, label: 'DAG release' })];
}

/**
 * Mode git, on every Airflow host: the deploy key (airflow-ha's `<state>/dags_git_ed25519`, 0640
 * root:airflow: the account reads it, cannot change it), the Git server's pinned host key
 * (`dags.git.knownHosts`) and the bundle storage folder (the account's). No DAG files are shipped.
 */
export function dagsGitTasks(inv: Inventory, family: OsFamily, key: SshKeypair | undefined): Task[] {
  const git = inv.cluster.dags.git;
  if (dagsMode(inv) !== 'git' || !git) return [];
  if (!key) throw new Error('dags.mode is git but this run has no deploy key (airflow-ha generates it in the state folder)');
  const account = inv.cluster.airflow.user;
  const bundles = dagBundleConfig(inv);
  return [
    ...airflowAccountTasks(inv, family),
    packages({ names: ['git', family === 'debian' ? 'openssh-client' : 'openssh-clients'] }),
    directory({ path: '/etc/airflow-ha' }),
    secretFile({ path: DAGS_GIT_KEY, content: key.privateKey, mode: '0640', owner: 'root', group: account }),
    file({ path: DAGS_GIT_KNOWN_HOSTS, content: git.knownHosts ? `${git.knownHosts}\n` : '', mode: '0644' }),
    ...(bundles ? [directory({ path: bundles.storage, mode: '0750', owner: account, group: account })] : []),
  ];
}
