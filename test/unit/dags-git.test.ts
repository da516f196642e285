/**
 * dags.mode git (Airflow 3's Git DAG bundle): the rendered [dag_processor] section, the units'
 * environment file with the connection, the git extra, the deploy key tasks, the schema's patterns,
 * and the status judging of bundle versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { airflowEnvFile, dagProcessorHosts, pipInstallCmd, renderAirflowConfig } from '../../src/components/airflow.js';
import { dagsGitTasks } from '../../src/components/dags.js';
import { Secret } from '../../src/core/secret.js';
import { DagsGit, type Inventory } from '../../src/inventory/schema.js';
import { judgeDagBundles, type HostResult } from '../../src/status/checks.js';
import { fixedSecrets, seedInventoryOnAirflow } from '../helpers/golden.js';

const KNOWN = 'git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0123456789abcdefABCDEF';

async function gitInventory(git: Record<string, unknown> = {}): Promise<Inventory> {
  const inv = await seedInventoryOnAirflow();
  inv.cluster.dags = { ...inv.cluster.dags, mode: 'git', git: DagsGit.parse({ url: 'ssh://git@git.example.com/acme/dags.git', knownHosts: KNOWN, ...git }) };
  return inv;
}

test('mode git renders one GitDagBundle in [dag_processor] and the storage path under the Airflow home', async () => {
  const cfg = renderAirflowConfig(await gitInventory({ ref: 'release', subdir: 'dags', refreshIntervalSec: 10 }), fixedSecrets);
  const section = cfg.slice(cfg.indexOf('[dag_processor]'), cfg.indexOf('[scheduler]'));
  const list = /^dag_bundle_config_list = (.*)$/m.exec(section)?.[1];
  assert.deepEqual(JSON.parse(list ?? 'null'), [
    { name: 'dags', classpath: 'airflow.providers.git.bundles.git.GitDagBundle', kwargs: { git_conn_id: 'airflow_ha_dags', tracking_ref: 'release', subdir: 'dags', refresh_interval: 10 } },
  ]);
  assert.match(section, /^dag_bundle_storage_path = \/opt\/airflow\/dag_bundles$/m);
  // Defaults: ref main, no subdir, 300 s.
  const def = renderAirflowConfig(await gitInventory(), fixedSecrets);
  assert.match(def, /^dag_bundle_config_list = \[\{"name":"dags","classpath":"airflow\.providers\.git\.bundles\.git\.GitDagBundle","kwargs":\{"git_conn_id":"airflow_ha_dags","tracking_ref":"main","refresh_interval":300\}\}\]$/m);
  // Not in the other modes.
  assert.doesNotMatch(renderAirflowConfig(await seedInventoryOnAirflow(), fixedSecrets), /dag_processor|dag_bundle/);
});

test('mode git: the connection is in the units\' environment file (JSON, no secret), the git extra is installed', async () => {
  const inv = await gitInventory();
  assert.equal(
    airflowEnvFile(inv),
    '# Managed by airflow-ha: the environment of every Airflow unit (no secrets).\nAIRFLOW_HOME=/opt/airflow\nPATH=/opt/airflow/venv/bin:/usr/local/bin:/usr/bin:/bin\n' +
      'AIRFLOW_CONN_AIRFLOW_HA_DAGS={"conn_type":"git","host":"ssh://git@git.example.com/acme/dags.git","extra":{"key_file":"/etc/airflow-ha/dags_git_ed25519","strict_host_key_checking":"yes","known_hosts_file":"/etc/airflow-ha/dags_git_known_hosts"}}\n',
  );
  assert.doesNotMatch(airflowEnvFile(await seedInventoryOnAirflow()), /AIRFLOW_CONN/);
  assert.match(pipInstallCmd(inv).toString(), /apache-airflow\[celery,fab,postgres,git\]==/);
  assert.match(pipInstallCmd(await seedInventoryOnAirflow()).toString(), /apache-airflow\[celery,fab,postgres\]==/);
});

test('mode git: the deploy key 0640 root:airflow and the pinned known_hosts line; no key pair is refused', async () => {
  const inv = await gitInventory();
  const key = { privateKey: new Secret('-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n'), publicKey: 'ssh-ed25519 AAAA t' };
  const names = dagsGitTasks(inv, 'debian', key).map((t) => t.name);
  assert.ok(names.some((n) => n.includes('/etc/airflow-ha/dags_git_ed25519')), names.join('\n'));
  assert.ok(names.some((n) => n.includes('/etc/airflow-ha/dags_git_known_hosts')), names.join('\n'));
  assert.throws(() => dagsGitTasks(inv, 'debian', undefined), /no deploy key/);
  assert.deepEqual(dagsGitTasks(await seedInventoryOnAirflow(), 'debian', key), []);
});

test('dags.git patterns: URLs, refs and subdirs with an option, a space or a control character are refused', () => {
  for (const url of ['ssh://git@h/r.git', 'git@github.com:acme/dags.git', 'https://git.example.com/a/b.git', 'ssh://h:2222/srv/git/dags.git']) assert.ok(DagsGit.safeParse({ url }).success, url);
  for (const url of ['-oProxyCommand=x:y', 'ssh://h/r git', 'file:///srv/r', 'http://h/r', 'ssh://h/r\n', "git@h:'r'"]) assert.ok(!DagsGit.safeParse({ url }).success, JSON.stringify(url));
  for (const ref of ['main', 'release/3.x', 'v1.2']) assert.ok(DagsGit.safeParse({ url: 'ssh://h/r', ref }).success, ref);
  for (const ref of ['-x', 'a..b', 'a b', '/a', 'a/', 'a.lock', 'a\tb']) assert.ok(!DagsGit.safeParse({ url: 'ssh://h/r', ref }).success, JSON.stringify(ref));
  for (const subdir of ['../x', '/abs', 'a/../b', 'a b']) assert.ok(!DagsGit.safeParse({ url: 'ssh://h/r', subdir }).success, subdir);
  assert.ok(!DagsGit.safeParse({ url: 'ssh://h/r', refreshIntervalSec: 5 }).success, 'below the 10 s minimum');
  assert.ok(!DagsGit.safeParse({ url: 'ssh://h/r', knownHosts: `${KNOWN}\nevil ssh-rsa AAAA` }).success, 'one line only');
  assert.deepEqual(DagsGit.parse({ url: 'ssh://h/r' }), { url: 'ssh://h/r', ref: 'main', refreshIntervalSec: 300 });
});

test('status, mode git: each DAG processor host\'s bundle commit; degraded when they differ or one has none', async () => {
  const inv = await gitInventory();
  const hosts = dagProcessorHosts(inv).map((h) => h.name);
  assert.ok(hosts.length >= 2, hosts.join(','));
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  const results = (commits: Record<string, string | undefined>) =>
    new Map<string, HostResult>(
      inv.hosts.map((h): [string, HostResult] => [
        h.name,
        {
          reach: { name: h.name, address: h.address, reachable: true, ms: 5 },
          outputs: new Map(commits[h.name] ? [['dags.bundle', { stdout: `${commits[h.name]}\n`, code: 0 }]] : [['dags.bundle', { stdout: 'fatal: not a git repository', code: 128 }]]),
        },
      ]),
    );
  const same = judgeDagBundles(inv, results(Object.fromEntries(hosts.map((h) => [h, A]))));
  const version = (lines: ReturnType<typeof judgeDagBundles>) => lines.find((l) => l.check === 'bundle version')!;
  assert.deepEqual([version(same).verdict, version(same).reason], ['healthy', `${A} on every host`]);
  assert.deepEqual(same.filter((l) => l.check.startsWith('bundle on ')).map((l) => [l.check, l.verdict, l.reason]), hosts.map((h) => [`bundle on ${h}`, 'healthy', `at ${A.slice(0, 12)}`]));
  const differ = version(judgeDagBundles(inv, results({ [hosts[0]!]: A, [hosts[1]!]: B })));
  assert.equal(differ.verdict, 'degraded');
  assert.match(differ.reason ?? '', new RegExp(`${hosts[0]} ${A.slice(0, 12)}, ${hosts[1]} ${B.slice(0, 12)}`));
  const none = judgeDagBundles(inv, results({ [hosts[0]!]: A }));
  assert.equal(version(none).verdict, 'degraded');
  assert.match(version(none).reason ?? '', new RegExp(`no checkout on ${hosts.slice(1).join(', ')}`));
  assert.equal(none.find((l) => l.check === `bundle on ${hosts[1]}`)?.verdict, 'degraded');
});
