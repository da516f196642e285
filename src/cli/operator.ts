/**
 * The operator's side of a run (see OperatorInputs in src/run/playbook.ts): the DAG folder read from
 * this machine, the workers' key pair for the target hosts and the host keys in the inventory's
 * known_hosts. The only place that reads them; tasks get them as data.
 */
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import type { LoadedInventory } from '../inventory/load.js';
import { dagsMode } from '../inventory/rules.js';
import type { Host } from '../inventory/schema.js';
import type { OperatorInputs } from '../run/playbook.js';
import { entryMatchesHost, knownHostsName, parseKnownHosts } from '../ssh/hostkeys.js';
import { loadOrCreateKeypair } from '../ssh/keypair.js';
import { fileTree, type FileTree, type TreeFile } from '../tasks/release.js';
import { loadOrCreateTls } from './tls.js';

/** Names never shipped as DAGs: version control and Python's caches. */
const SKIP = new Set(['.git', '.hg', '.svn', '__pycache__', '.pytest_cache', '.mypy_cache']);

/**
 * Every regular file under `dir` (skipping {@link SKIP} and `*.pyc`), as a tree with its revision.
 * @throws InputError (exit 2) when `dir` is not a folder, holds no file, or holds a symlink or a
 *   special file (a release must be self-contained: a link could point anywhere on the hosts).
 */
export function readTree(dir: string): FileTree {
  const files: TreeFile[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      if (SKIP.has(name) || name.endsWith('.pyc')) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else if (st.isFile()) files.push({ path: r, content: readFileSync(path.join(dir, r)), executable: (st.mode & 0o111) !== 0 });
      else throw new InputError(`DAG folder ${dir}: ${r} is ${st.isSymbolicLink() ? 'a symlink' : 'not a regular file'}; a release holds regular files only`);
    }
  };
  try {
    if (!lstatSync(dir).isDirectory()) throw new InputError(`DAG folder ${dir} is not a folder`);
    walk('');
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot read DAG folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (files.length === 0) throw new InputError(`DAG folder ${dir} holds no file`);
  return fileTree(files);
}

/** Where the DAG folder comes from: `--source` (relative to the working directory), else dags.source (relative to the inventory). */
export function dagSource(loaded: LoadedInventory, cwd: string, flag?: string): string | undefined {
  if (flag) return path.resolve(cwd, flag);
  const src = loaded.inventory.cluster.dags.source;
  return src === undefined ? undefined : path.resolve(loaded.dir, src);
}

/** The keys (`type base64`) `<state>/known_hosts` holds for `host` at its address and SSH port, read now. */
export function knownHostKeys(loaded: LoadedInventory, host: Host): string[] {
  let text = '';
  try {
    text = readFileSync(path.join(loaded.stateDir, 'known_hosts'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const name = knownHostsName(host.address, host.ssh?.port ?? loaded.inventory.ssh.port ?? 22);
  const keys = parseKnownHosts(text)
    .entries.filter((e) => e.marker === null && entryMatchesHost(e, name))
    .map((e) => `${e.keyType} ${e.key.toString('base64')}`);
  return [...new Set(keys)];
}

/** The deploy key of dags.mode git in the state folder (`<state>/dags_git_ed25519`, `.pub`). */
export const DAGS_GIT_KEY_NAME = 'dags_git_ed25519';

/**
 * The deploy key of dags.mode git: `<state>/dags_git_ed25519` (OpenSSH Ed25519, 0600) and its `.pub`,
 * generated on first use and kept (see loadOrCreateKeypair). Its public half goes to the repository as
 * a read-only deploy key; `airflow-ha dags-key` prints it.
 * @throws InputError (exit 2) as loadOrCreateKeypair does.
 */
export function dagsGitKeypair(loaded: LoadedInventory): ReturnType<typeof loadOrCreateKeypair> {
  return loadOrCreateKeypair(loaded.stateDir, DAGS_GIT_KEY_NAME, `airflow-ha ${loaded.inventory.cluster.name} dags`);
}

/**
 * The inputs of a run: the DAG folder (mode sync; read on first use, or now when `eagerDags`), the
 * target key pair (generated into the state folder when the inventory has target hosts) and the
 * known_hosts reader, and with `cluster.tls.enabled` the CA and the hosts' certificates (made in the
 * state folder when missing, see src/cli/tls.ts; `renewCerts`: hosts whose pair is made anew).
 */
export async function operatorInputs(loaded: LoadedInventory, cwd: string, opts: { source?: string; eagerDags?: boolean; env?: NodeJS.ProcessEnv; renewCerts?: ReadonlySet<string> } = {}): Promise<OperatorInputs> {
  const inv = loaded.inventory;
  const inputs: OperatorInputs = { hostKeys: (h) => knownHostKeys(loaded, h) };
  const source = dagSource(loaded, cwd, opts.source);
  if (dagsMode(inv) === 'sync' && source !== undefined) {
    let tree: FileTree | undefined = opts.eagerDags ? readTree(source) : undefined;
    inputs.dags = () => (tree ??= readTree(source));
  }
  if (inv.hosts.some((h) => h.roles.includes('target'))) {
    inputs.targetKey = await loadOrCreateKeypair(loaded.stateDir, 'target_ed25519', `airflow-ha ${inv.cluster.name} workers`);
  }
  if (dagsMode(inv) === 'git') {
    inputs.dagsGitKey = await dagsGitKeypair(loaded);
  }
  if (inv.cluster.tls.enabled) inputs.tls = await loadOrCreateTls(loaded, process.env, opts.renewCerts ? { renew: opts.renewCerts } : {});
  if (inv.hosts.some((h) => h.roles.includes('backup'))) {
    inputs.backupKeys = {
      repo: await loadOrCreateKeypair(loaded.stateDir, 'backup_repo_ed25519', `airflow-ha ${inv.cluster.name} pgbackrest repository`),
      pg: await loadOrCreateKeypair(loaded.stateDir, 'backup_pg_ed25519', `airflow-ha ${inv.cluster.name} pgbackrest postgres`),
    };
    const s3 = inv.cluster.backup.s3;
    const env = opts.env ?? {};
    if (s3 && env[s3.keyEnv] && env[s3.secretEnv]) inputs.backupS3Keys = { key: new Secret(env[s3.keyEnv] as string), secret: new Secret(env[s3.secretEnv] as string) };
  }
  return inputs;
}
