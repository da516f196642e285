/**
 * dags.mode git (Airflow 3's Git DAG bundle): the rendered [dag_processor] section, the units'
 * environment file with the connection, the git extra, the deploy key tasks, the schema's patterns,
 * and the status judging of bundle versions.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { airflowEnvFile, dagProcessorHosts, pipInstallCmd, renderAirflowConfig } from '../../src/components/airflow.js';
import { dagsGitTasks } from '../../src/components/dags.js';
import { Secret } from '../../src/core/secret.js';
import { DagsGit, type Inventory } from '../../src/inventory/schema.js';
import { dagsCheck, judgeDagBundles, parseBundleProbe, type HostResult, type StatusContext } from '../../src/status/checks.js';
import { fixedSecrets, seedInventoryOnAirflow } from '../helpers/golden.js';
import { runMain } from '../helpers/cli.js';
import { bootstrap } from '../../playbooks/bootstrap.js';
import { identityStep } from '../../playbooks/base.js';
import { dags } from '../../playbooks/dags.js';
import { tempDir } from '../helpers/local.js';

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

test('status, mode git: the active DAG processor\'s commit is the bundle version; a standby is healthy; an old last fetch, no checkout or two actives that differ are degraded', async () => {
  const inv = await gitInventory({ refreshIntervalSec: 10 });
  const hosts = dagProcessorHosts(inv).map((h) => h.name);
  assert.ok(hosts.length >= 2, hosts.join(','));
  const [h0, h1] = [hosts[0]!, hosts[1]!];
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  const results = (answers: Record<string, string>) =>
    new Map<string, HostResult>(
      inv.hosts.map((h): [string, HostResult] => [
        h.name,
        { reach: { name: h.name, address: h.address, reachable: true, ms: 5 }, outputs: new Map(answers[h.name] !== undefined ? [['dags.bundle', { stdout: answers[h.name]!, code: 0 }]] : []) },
      ]),
    );
  const judge = (answers: Record<string, string>) => judgeDagBundles(inv, results(answers));
  const get = (lines: ReturnType<typeof judgeDagBundles>, check: string) => lines.find((l) => l.check === check)!;
  const standbyOnly = Object.fromEntries(hosts.slice(2).map((h) => [h, 'role=standby\nhead=\n']));

  const ok = judge({ [h0]: `role=active\nhead=${A}\nfetched=4\n`, [h1]: 'role=standby\nhead=\n', ...standbyOnly });
  assert.deepEqual([get(ok, 'bundle version').verdict, get(ok, 'bundle version').reason], ['healthy', `${A} (active: ${h0})`]);
  assert.deepEqual([get(ok, `bundle on ${h0}`).verdict, get(ok, `bundle on ${h0}`).reason], ['healthy', `active, at ${A.slice(0, 12)} (fetched 4 s ago)`]);
  assert.deepEqual([get(ok, `bundle on ${h1}`).verdict, get(ok, `bundle on ${h1}`).reason], ['healthy', 'standby (fetches when it takes the etcd lock)']);
  assert.match(get(judge({ [h0]: `role=active\nhead=${A}\n`, [h1]: `role=standby\nhead=${B}\n` }), `bundle on ${h1}`).reason ?? '', /^standby, last at b{12} /);

  // The fetch fails: past 2 x 10 + 30 s the active line is degraded, the version still named.
  const old = judge({ [h0]: `role=active\nhead=${A}\nfetched=51\n`, [h1]: 'role=standby\nhead=\n' });
  assert.equal(get(old, `bundle on ${h0}`).verdict, 'degraded');
  assert.match(get(old, `bundle on ${h0}`).reason ?? '', /last fetch was 51 s ago \(every 10 s\)/);
  assert.equal(get(judge({ [h0]: `role=active\nhead=${A}\nfetched=50\nfetchbytes=83\n`, [h1]: 'role=standby\n' }), `bundle on ${h0}`).verdict, 'healthy');
  // The last fetch failed (git leaves FETCH_HEAD empty), however recent.
  const failed = get(judge({ [h0]: `role=active\nhead=${A}\nfetched=3\nfetchbytes=0\n`, [h1]: 'role=standby\n' }), `bundle on ${h0}`);
  assert.deepEqual([failed.verdict, failed.reason], ['degraded', `active, at ${A.slice(0, 12)}, but its last fetch failed (3 s ago): journalctl -u airflow-dag-processor`]);

  const none = judge({ [h0]: 'role=active\nhead=\n', [h1]: 'role=standby\nhead=\n' });
  assert.equal(get(none, `bundle on ${h0}`).verdict, 'degraded');
  assert.deepEqual([get(none, 'bundle version').verdict, get(none, 'bundle version').reason], ['degraded', 'no active DAG processor has a checkout of bundle dags']);
  const two = judge({ [h0]: `role=active\nhead=${A}\n`, [h1]: `role=active\nhead=${B}\n` });
  assert.match(get(two, 'bundle version').reason ?? '', new RegExp(`active DAG processors differ: ${h0} a{12}, ${h1} b{12}`));
  assert.equal(get(judge({ [h0]: 'role=stopped\nhead=\n', [h1]: `role=active\nhead=${A}\n` }), `bundle on ${h0}`).verdict, 'degraded');
  assert.equal(get(judge({ [h1]: `role=active\nhead=${A}\n` }), `bundle on ${h0}`).verdict, 'degraded', 'no answer');
  assert.equal(parseBundleProbe('garbage'), undefined);
});

test('status, mode git: the probe reads the HEAD of <storage>/dags/tracking_repo and the age of <storage>/dags/bare/FETCH_HEAD (GitDagBundle\'s layout) with real git; only DAG processor hosts are asked', async () => {
  const home = tempDir('ah-bundle-home-');
  after(() => rm(home, { recursive: true, force: true }));
  const inv = await gitInventory();
  inv.cluster.airflow.home = home;
  const dp = dagProcessorHosts(inv)[0]!;
  const other = inv.hosts.find((h) => h.roles.includes('worker') && !h.roles.includes('dag_processor'))!;
  const ctx = { inventory: inv } as unknown as StatusContext;
  assert.deepEqual(dagsCheck.probes(ctx, other), []);
  const [p] = dagsCheck.probes(ctx, dp);
  const run = () => {
    try {
      return { stdout: execFileSync('sh', ['-c', p!.cmd.toString()], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }), code: 0 };
    } catch (e) {
      return { stdout: '', code: (e as { status: number }).status };
    }
  };
  const first = parseBundleProbe(run().stdout);
  assert.equal(first?.head, undefined, 'no checkout yet');
  // No such unit on this machine: the processor is not running.
  assert.equal(first?.role, 'stopped');
  // The layout GitDagBundle makes: <storage>/<bundle>/bare and <storage>/<bundle>/tracking_repo.
  const repo = path.join(home, 'dag_bundles', 'dags', 'tracking_repo');
  await mkdir(path.join(repo, 'dags'), { recursive: true });
  await writeFile(path.join(repo, 'dags', 'a.py'), 'x = 1\n');
  const git = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-qm', 'one');
  const head = git('rev-parse', 'HEAD').trim();
  // A real bare clone of it, fetched once (FETCH_HEAD written), then a fetch that fails (git leaves it empty).
  const bare = path.join(home, 'dag_bundles', 'dags', 'bare');
  execFileSync('git', ['clone', '-q', '--bare', repo, bare]);
  execFileSync('git', ['-C', bare, 'fetch', '-q', 'origin', '+refs/heads/*:refs/heads/*']);
  const out = run();
  assert.equal(out.code, 0);
  const b = parseBundleProbe(out.stdout);
  assert.equal(b?.head, head);
  assert.ok(b?.fetchedSec !== undefined && b.fetchedSec <= 5 && (b.fetchBytes ?? 0) > 0, out.stdout);
  execFileSync('git', ['-C', bare, 'remote', 'set-url', 'origin', path.join(home, 'gone')]);
  assert.throws(() => execFileSync('git', ['-C', bare, 'fetch', '-q', 'origin', '+refs/heads/*:refs/heads/*'], { stdio: 'ignore' }));
  assert.equal(parseBundleProbe(run().stdout)?.fetchBytes, 0);
});

test('dags-key prints the deploy key\'s public half (made once in the state folder, the same on every call); refused with exit 2 outside mode git', async () => {
  const dir = tempDir('ah-dags-key-');
  after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(dir, { recursive: true });
  const seed = await readFile(path.join(import.meta.dirname, '..', '..', '..', 'inventory', 'seed-ha.yaml'), 'utf8');
  const git = seed.replace('airflow: "2.9.0"', 'airflow: "3.4.0"').replace(/^(cluster:\n)/m, '$1  dags:\n    mode: git\n    git: { url: "https://git.example.com/acme/dags.git" }\n');
  await writeFile(path.join(dir, 'git.yaml'), git);
  await writeFile(path.join(dir, 'sync.yaml'), seed);
  const first = await runMain(['dags-key', '-i', path.join(dir, 'git.yaml')]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^ssh-ed25519 [A-Za-z0-9+/=]+ airflow-ha \S+ dags\n$/);
  assert.match(first.stderr, /created the deploy key .*dags_git_ed25519/);
  const again = await runMain(['dags-key', '-i', path.join(dir, 'git.yaml')]);
  assert.equal(again.stdout, first.stdout);
  assert.doesNotMatch(again.stderr, /created/);
  const refused = await runMain(['dags-key', '-i', path.join(dir, 'sync.yaml')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /cluster\.dags\.mode is \w+, not git/);
  assert.equal(refused.stdout, '');
});

test('bootstrap runs every step of the dags playbook (the git deploy key step too), its identity step aside', () => {
  const missing = dags.steps.filter((st) => st !== identityStep && !bootstrap.steps.includes(st)).map((st) => st.name);
  assert.deepEqual(missing, []);
});
