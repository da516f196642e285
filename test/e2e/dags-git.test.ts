/**
 * dags.mode git (Airflow 3's Git DAG bundle), end to end, on a lab of 3 data hosts (etcd,
 * PostgreSQL, RabbitMQ; HAProxy + the VIP on pg3), one control host with every Airflow role but the
 * worker, and a worker host that also runs a DAG processor: two DAG processors track one repository.
 *
 * The Git server is pg1's own sshd: a `git` account whose shell is git-shell, a bare repository, and
 * in its authorized_keys the public half that `airflow-ha dags-key` prints. The inventory pins pg1's
 * host key (`dags.git.knownHosts`, read through airflow-ha's verified SSH channel).
 *
 * The Airflow installed is the STAND-IN of test/standin/ (not Airflow) built as 3.4.0: its DAG
 * processor refreshes the Git bundle in GitDagBundle's layout (`<storage>/dags/bare`, a bare clone,
 * and `<storage>/dags/tracking_repo`, reset to the tracked branch) with the git connection's
 * GIT_SSH_COMMAND built from the extras, as the Git provider's hook does; `status` reads the commit
 * of each DAG processor's checkout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import { buildStandin, standinAirflow } from '../helpers/airflow-lab.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';
import { checkOf, statusUntil, type Status } from '../helpers/status.js';

const VERSION = AIRFLOW_3_NEWEST;
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1', 'w1'];
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const CONTROL = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'flower'];
const PROCESSORS = ['af1', 'w1'];
const REFRESH_SEC = 10;
const CHECKOUT = '/opt/airflow/dag_bundles/dags/tracking_repo';
const KNOWN_HOSTS = '/etc/airflow-ha/dags_git_known_hosts';

let lab: TestLab;
let pg1 = '';
let proxy = '';
let pg1Key = '';
const wheelhouse = tempDir('ah-wheelhouse-git-');

const inv = () => ['-i', lab.inventoryFile];
const on = async (host: string, cmd: string) => {
  const r = await onHost(lab.inventoryFile, host, cmd);
  assert.equal(r.code, 0, `${host}: ${cmd}\n${r.stdout}${r.stderr}`);
  return r.stdout;
};

before(async () => {
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('dgit', HOSTS, [DATA, DATA, [...DATA, 'haproxy'], CONTROL, ['worker', 'dag_processor']], (net) => {
    pg1 = `${net}.11`;
    proxy = `http://${net}.1:3142`;
    return {
      vips: [{ name: 'airflow-vip', address: `${net}.200`, role: 'haproxy', routerId: 74 }],
      versions: { airflow: VERSION },
      ports: { haproxyReplica: 5001 },
      airflow: standinAirflow(wheelhouse, 2),
    };
  });
  // pg1's host key, read over airflow-ha's own verified channel (recorded on first use), pinned in the inventory.
  const r = await cli(['exec', ...inv(), '--limit', 'pg1', '--accept-new-host-keys', '--json', '--', 'cat /etc/ssh/ssh_host_ed25519_key.pub']);
  const key = String(events(r.stdout).find((e) => e['host'] === 'pg1')?.['stdout'] ?? '').trim().split(' ').slice(0, 2).join(' ');
  assert.match(key, /^ssh-ed25519 [A-Za-z0-9+/=]+$/, r.stdout + r.stderr);
  pg1Key = key;
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { cluster: Record<string, unknown> };
  doc.cluster['dags'] = { mode: 'git', git: { url: `ssh://git@${pg1}/srv/git/dags.git`, ref: 'main', subdir: 'dags', refreshIntervalSec: REFRESH_SEC, knownHosts: `${pg1} ${pg1Key}` } };
  await writeFile(lab.inventoryFile, `# The Airflow ${VERSION} lab with DAGs from Git: ${HOSTS.join(', ')}.\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

/** A commit on pg1's repository (as the git account, in a work tree beside the bare one): adds dags/NAME.py; returns its id. */
async function commit(name: string): Promise<string> {
  const out = await on(
    'pg1',
    `runuser -u git -- sh -ec 'cd /srv/git/work && printf "# %s\\n" ${name} > dags/${name}.py && git add dags && git -c user.name=ops -c user.email=ops@example.com commit -qm ${name} && git push -q origin main && git rev-parse HEAD'`,
  );
  const id = out.trim().split('\n').pop() ?? '';
  assert.match(id, /^[0-9a-f]{40}$/, out);
  return id;
}

/** The `bundle version` line names commit `id` and its active DAG processor: that host's name, else undefined. */
const activeAt = (s: Status, id: string): string | undefined => {
  const m = /^([0-9a-f]{40}) \(active: ([\w-]+)\)$/.exec(checkOf(s, 'dags', 'bundle version')?.reason ?? '');
  return m && m[1] === id && checkOf(s, 'dags', `bundle on ${m[2]}`)?.verdict === 'healthy' ? m[2] : undefined;
};
const other = (h: string) => PROCESSORS.find((x) => x !== h)!;

test('dags.mode git: dags-key, bootstrap, the active DAG processor at each pushed commit within the refresh interval, the standby takes over at the same commit, a wrong pinned host key refused and reported, repaired by a re-run that otherwise changes nothing', async () => {
  // The deploy key's public half, as an operator adds it to the repository.
  const k = await cli(['dags-key', ...inv()]);
  assert.equal(k.exitCode, 0, k.stderr);
  const pub = k.stdout.trim();
  assert.match(pub, /^ssh-ed25519 \S+ airflow-ha \S+ dags$/);

  // The Git server on pg1 (the apt proxy of the lab given on the command line: pg1 is not bootstrapped yet).
  await on(
    'pg1',
    [
      `apt-get -q -o Acquire::http::Proxy=${proxy} update >/dev/null`,
      `DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Acquire::http::Proxy=${proxy} install git >/dev/null`,
      'useradd --system --create-home --home-dir /srv/git --shell /usr/bin/git-shell git',
      'install -d -m 0700 -o git -g git /srv/git/.ssh',
      `printf '%s\\n' '${pub}' > /srv/git/.ssh/authorized_keys && chown git:git /srv/git/.ssh/authorized_keys && chmod 0600 /srv/git/.ssh/authorized_keys`,
      "runuser -u git -- sh -ec 'git init -q --bare -b main /srv/git/dags.git && git clone -q /srv/git/dags.git /srv/git/work 2>/dev/null && mkdir -p /srv/git/work/dags && git -C /srv/git/work symbolic-ref HEAD refs/heads/main'",
    ].join(' && '),
  );
  const first = await commit('hello');

  const boot = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  if (boot.exitCode !== 0) {
    const diag = await Promise.all(PROCESSORS.map((h) => onHost(lab.inventoryFile, h, 'journalctl -u airflow-dag-processor --no-pager | tail -30')));
    assert.fail(`bootstrap exit ${boot.exitCode}\n${boot.stdout.slice(-5000)}${boot.stderr}\n${diag.map((d) => d.stdout).join('\n')}`);
  }
  // The deploy key on every Airflow host: root's, readable by the airflow group only.
  for (const h of ['af1', 'w1']) assert.equal((await on(h, 'stat -c "%a %U %G" /etc/airflow-ha/dags_git_ed25519')).trim(), '640 root airflow');

  // The DAG processors are active/standby under the etcd lock: the active one has the commit, the other waits.
  const s1 = await statusUntil(lab.inventoryFile, 'the active DAG processor at the first commit', (s) => activeAt(s, first) !== undefined, 120_000);
  let active = activeAt(s1, first)!;
  assert.match(checkOf(s1, 'dags', `bundle on ${other(active)}`)?.reason ?? '', /^standby/);
  // Its checkout holds the repository's DAG folder, and the processor parsed it there.
  assert.equal((await on(active, `ls ${CHECKOUT}/dags`)).trim(), 'hello.py');
  assert.match(await on(active, 'journalctl -u airflow-dag-processor --no-pager -o cat'), new RegExp(`parsed ${CHECKOUT}/dags: 1 DAG file\\(s\\)`));

  // A second push: the active processor follows within the refresh interval (plus a status poll).
  const t0 = Date.now();
  const second = await commit('etl');
  await statusUntil(lab.inventoryFile, 'the active DAG processor at the second commit', (s) => activeAt(s, second) === active, (REFRESH_SEC + 30) * 1000);
  process.stderr.write(`dags-git: the active DAG processor at the pushed commit ${((Date.now() - t0) / 1000).toFixed(1)} s after the push (refresh interval ${REFRESH_SEC} s)\n`);
  assert.equal((await on(active, `ls ${CHECKOUT}/dags | tr '\\n' ' '`)).trim(), 'etl.py hello.py');

  // The active processor stops: the standby takes the lock (TTL 15 s), clones and parses the same commit.
  const t1 = Date.now();
  await on(active, 'systemctl stop airflow-dag-processor');
  await statusUntil(lab.inventoryFile, 'the standby took over at the second commit', (s) => activeAt(s, second) === other(active), 120_000);
  process.stderr.write(`dags-git: the standby ${other(active)} active at the same commit ${((Date.now() - t1) / 1000).toFixed(1)} s after ${active}'s processor stopped\n`);
  await on(active, 'systemctl start airflow-dag-processor');
  active = other(active);

  // The active host's pinned host key replaced by another host's: its fetches are refused
  // (StrictHostKeyChecking yes), status says its last fetch failed; a bootstrap puts the pinned key back.
  const wrong = (await on('pg2', 'cat /etc/ssh/ssh_host_ed25519_key.pub')).trim().split(' ').slice(0, 2).join(' ');
  assert.notEqual(wrong, pg1Key);
  await on(active, `printf '%s\\n' '${pg1} ${wrong}' > ${KNOWN_HOSTS}`);
  const third = await commit('report');
  const stale = await statusUntil(lab.inventoryFile, 'the active processor\'s failed fetch reported', (s) => checkOf(s, 'dags', `bundle on ${active}`)?.verdict === 'degraded', (REFRESH_SEC + 60) * 1000);
  assert.match(checkOf(stale, 'dags', `bundle on ${active}`)?.reason ?? '', new RegExp(`^active, at ${second.slice(0, 12)}, but its last fetch failed`));
  assert.match(await on(active, 'journalctl -u airflow-dag-processor --no-pager -o cat | tail -20'), /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);

  const repair = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(repair.exitCode, 0, repair.stdout.slice(-3000) + repair.stderr);
  assert.deepEqual(runEnd(repair.stdout).hosts.filter((x) => x.changed > 0).map((x) => x.host), [active], 'only the drifted file changed');
  await statusUntil(lab.inventoryFile, 'the active processor at the third commit after the re-run', (s) => activeAt(s, third) === active, (REFRESH_SEC + 30) * 1000);

  // Converged: a run changes nothing and runs no handler.
  const again = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
  assert.equal(events(again.stdout).filter((e) => e.type === 'handler').length, 0);
});
