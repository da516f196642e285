/**
 * The SSH target hosts (role target) the Celery workers drive over SSH: a service account on each
 * target that accepts only the workers' key, and on each worker that key (owned by airflow, 0600),
 * the targets' host keys pinned in airflow's known_hosts (StrictHostKeyChecking yes), an ssh_config
 * that says so, and one Airflow connection per target declared by `airflow connections import`.
 *
 * Where the targets' host keys come from: `<inventory>.state/known_hosts`, the keys airflow-ha itself
 * verified (or recorded on first use with --accept-new-host-keys, after the operator checked the
 * fingerprint) when it connected to the target. The runner builds each host's tasks from that
 * host's facts only, so a worker cannot read the target's key as a fact of another host; the
 * operator's store is read when the worker's tasks are built, after every host of the run is
 * connected. Desired state only: the runner executes the tasks.
 */
import { sh } from '../core/cmd.js';
import { Secret } from '../core/secret.js';
import type { Host, Inventory } from '../inventory/schema.js';
import type { SshKeypair } from '../run/playbook.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { group, user } from '../tasks/system.js';
import type { ManagedFile, Task, TaskPlan } from '../tasks/task.js';
import { airflowAccountTasks, airflowCli, airflowPaths } from './airflow.js';
import type { OsFamily } from '../facts/host.js';

/** Where a worker keeps what reaches the targets: the Airflow account's ~/.ssh. */
export interface WorkerSshPaths {
  /** `<cluster.airflow.home>/.ssh` (the account's home is AIRFLOW_HOME). */
  dir: string;
  /** The workers' private key for the targets. */
  key: string;
  /** The targets' pinned host keys. */
  knownHosts: string;
  /** ssh_config naming each target. */
  config: string;
}

/** The worker's SSH files under the Airflow account's home (`cluster.airflow.home`). */
export function workerSshPaths(inv: Inventory): WorkerSshPaths {
  const dir = `${airflowPaths(inv).home}/.ssh`;
  return { dir, key: `${dir}/target_ed25519`, knownHosts: `${dir}/known_hosts`, config: `${dir}/config` };
}
/** The connections file `airflow connections import` reads, and the copy of it last imported. */
export const CONNECTIONS_FILE = '/etc/airflow-ha/airflow-connections.json';
export const CONNECTIONS_IMPORTED = '/var/lib/airflow-ha/airflow-connections.imported.json';

/** The target hosts, in inventory order. */
export function targetHosts(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.includes('target'));
}

/** The SSH port of a host as airflow-ha reaches it (hosts[].ssh.port, else ssh.port, else 22). */
export function sshPort(inv: Inventory, host: Host): number {
  return host.ssh?.port ?? inv.ssh.port ?? 22;
}

/** The Airflow connection id of a target: cluster.target.connId for the first, `<connId>_<host>` after. */
export function targetConnId(inv: Inventory, host: Host): string {
  const first = targetHosts(inv)[0];
  return first?.name === host.name ? inv.cluster.target.connId : `${inv.cluster.target.connId}_${host.name.replace(/-/g, '_')}`;
}

/**
 * The known_hosts lines of a target (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): its name and address
 * (`[name]:port` form when the port is not 22), one line per key. `keys` are `type base64` strings.
 */
export function knownHostsLines(inv: Inventory, host: Host, keys: readonly string[]): string[] {
  const port = sshPort(inv, host);
  const names = [host.name, host.address].map((n) => (port === 22 ? n : `[${n}]:${port}`)).join(',');
  return keys.map((k) => `${names} ${k}`);
}

/**
 * The authorized_keys line of the workers' key on a target (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"):
 * `restrict` (no forwarding of any kind, no pty, no ~/.ssh/rc) and `from=` the worker hosts'
 * addresses, so the key is refused from anywhere else even if it leaks. Undefined when there is no
 * worker host: then no key is authorized at all.
 */
export function authorizedKeyLine(inv: Inventory, key: SshKeypair): string | undefined {
  const workers = inv.hosts.filter((h) => h.roles.includes('worker')).map((h) => h.address);
  if (workers.length === 0) return undefined;
  return `restrict,from="${workers.join(',')}" ${key.publicKey.trim()}`;
}

/**
 * The connections file: one SSH connection per target, by host name, as the service user, with the
 * workers' key file and host-key checking on (`no_host_key_check: false`, `host_key` pinned), the
 * extras of apache-airflow-providers-ssh's SSHHook
 * (https://airflow.apache.org/docs/apache-airflow-providers-ssh/stable/connections/ssh.html).
 * `extra` is a JSON string, which every Airflow 2.x `connections import` accepts.
 */
export function connectionsJson(inv: Inventory, hostKeys: (h: Host) => readonly string[]): string {
  const out: Record<string, unknown> = {};
  for (const t of targetHosts(inv)) {
    const key = hostKeys(t)[0];
    const extra: Record<string, string> = { key_file: workerSshPaths(inv).key, no_host_key_check: 'false', allow_host_key_change: 'false' };
    if (key) extra['host_key'] = key;
    out[targetConnId(inv, t)] = {
      conn_type: 'ssh',
      description: `SSH target ${t.name} (managed by airflow-ha)`,
      host: t.name,
      login: inv.cluster.target.user,
      port: sshPort(inv, t),
      extra: JSON.stringify(extra),
    };
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** airflow's ssh_config: each target by name, as the service user, with the key and the pinned known_hosts only. */
export function workerSshConfig(inv: Inventory): string {
  const paths = workerSshPaths(inv);
  const blocks = targetHosts(inv).map((t) =>
    [
      `Host ${t.name} ${t.address}`,
      `    HostName ${t.address}`,
      `    Port ${sshPort(inv, t)}`,
      `    User ${inv.cluster.target.user}`,
      `    IdentityFile ${paths.key}`,
      '    IdentitiesOnly yes',
      '    StrictHostKeyChecking yes',
      `    UserKnownHostsFile ${paths.knownHosts}`,
      '    GlobalKnownHostsFile /dev/null',
      '',
    ].join('\n'),
  );
  return `# Managed by airflow-ha: the SSH target hosts, host keys pinned (ssh_config(5)).\n${blocks.join('\n')}`;
}

/** Tasks of a target host: the service account (key login only, no password) and its authorized key. */
export function targetTasks(inv: Inventory, key: SshKeypair | undefined): Task[] {
  if (!key) throw new Error('no key pair for the target hosts in this run (airflow-ha generates it in the state folder)');
  const name = inv.cluster.target.user;
  const home = `/home/${name}`;
  return [
    user({ name, home, shell: '/bin/bash' }),
    directory({ path: `${home}/.ssh`, mode: '0700', owner: name, group: name }),
    file({ path: `${home}/.ssh/authorized_keys`, content: `${authorizedKeyLine(inv, key) ?? '# no worker host: no key is authorized'}\n`, mode: '0600', owner: name, group: name }),
  ];
}

/**
 * A file whose content is a secret: like {@link file}, but no diff or content is ever shown
 * (a diff of a private key would show it line by line, which value masking cannot catch).
 */
export function secretFile(spec: { path: string; content: Secret; mode: string; owner: string; group: string }): Task {
  const inner = file({ ...spec, content: spec.content.reveal(), label: `secret file ${spec.path}` });
  return {
    name: inner.name,
    facts: inner.facts,
    files: (h): ManagedFile[] => inner.files?.(h) ?? [],
    plan(facts, h): TaskPlan {
      const { diff: _hidden, ...p } = inner.plan(facts, h);
      return p;
    },
  };
}

/** A task that cannot be planned yet, and why (it writes nothing for `render`). */
export function blocked(name: string, why: string): Task {
  return {
    name,
    facts: () => [],
    plan() {
      throw new Error(why);
    },
  };
}

/**
 * The task that declares the targets as Airflow connections: when the connections file differs from
 * the copy last imported, run `airflow connections import --overwrite` as the airflow user (the
 * import is idempotent, `connections add` is not) and keep a copy. Compared with that copy rather
 * than run by a handler, so an import that failed, or was skipped because Airflow was not installed
 * yet, is done by the next run. Skipped (no change) while the virtualenv's `airflow` does not exist.
 * For the Airflow component's steps to include after Airflow is installed.
 */
export function connectionsImportTask(inv: Inventory): Task {
  return command({
    name: 'airflow connections import (SSH targets)',
    cmd: sh`${airflowCli(inv, ['connections', 'import', '--overwrite', CONNECTIONS_FILE])} && install -D -m 0600 ${CONNECTIONS_FILE} ${CONNECTIONS_IMPORTED}`,
    unless: sh`test ! -x ${airflowPaths(inv).bin} || cmp -s ${CONNECTIONS_FILE} ${CONNECTIONS_IMPORTED}`,
    timeoutSec: 300,
  });
}

/**
 * Tasks of a worker: the airflow account, its ~/.ssh with the workers' private key (0600, airflow),
 * the targets' host keys pinned in known_hosts, an ssh_config with StrictHostKeyChecking yes, the
 * connections file (0640 root:airflow) and its import. `hostKeys` gives the keys airflow-ha trusts
 * for a target; a target without one makes the known_hosts task fail with how to record it.
 */
export function workerTargetTasks(inv: Inventory, family: OsFamily, key: SshKeypair | undefined, hostKeys: ((h: Host) => string[]) | undefined): Task[] {
  if (targetHosts(inv).length === 0) return [];
  if (!key) throw new Error('no key pair for the target hosts in this run (airflow-ha generates it in the state folder)');
  const keysOf = (h: Host) => hostKeys?.(h) ?? [];
  const unknown = targetHosts(inv).filter((t) => keysOf(t).length === 0);
  const lines = targetHosts(inv).flatMap((t) => knownHostsLines(inv, t, keysOf(t)));
  const account = inv.cluster.airflow.user;
  const own = { owner: account, group: account };
  const paths = workerSshPaths(inv);
  return [
    ...airflowAccountTasks(inv, family),
    directory({ path: paths.dir, mode: '0700', ...own }),
    secretFile({ path: paths.key, content: key.privateKey, mode: '0600', ...own }),
    unknown.length > 0
      ? blocked(
          `file ${paths.knownHosts}`,
          `no host key of target ${unknown.map((t) => t.name).join(', ')} in the inventory's known_hosts: airflow-ha pins the key it verified itself; connect to the target once (e.g. \`airflow-ha facts -i FILE --limit ${unknown[0]?.name} --accept-new-host-keys\`, checking the fingerprint it records), then run again`,
        )
      : file({ path: paths.knownHosts, content: `${lines.join('\n')}\n`, mode: '0644', ...own }),
    file({ path: paths.config, content: workerSshConfig(inv), mode: '0600', ...own }),
    directory({ path: '/etc/airflow-ha' }),
    file({ path: CONNECTIONS_FILE, content: connectionsJson(inv, keysOf), mode: '0640', owner: 'root', group: account }),
    connectionsImportTask(inv),
  ];
}
