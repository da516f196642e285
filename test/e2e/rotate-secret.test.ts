/**
 * `airflow-ha rotate-secret` end to end on a bootstrapped data plane of 3 hosts (h1 etcd +
 * PostgreSQL/Patroni, h2 etcd + PostgreSQL/Patroni + RabbitMQ, h3 etcd + HAProxy), set up the way a
 * site keeps its secrets: the secrets file age-encrypted, the HAProxy stats password from a command
 * (`cat` of a file beside the inventory). Rotated on the live cluster: the Airflow database user's
 * password and the replication password (from the encrypted file: the file re-encrypted with the new
 * values), the stats password (from the command source, the new value through --new-value-from).
 * Each is checked on the real services: the old password refused, the new one accepted, the replica
 * streaming again after a restart of its Patroni (so with the new replication password). A rotation
 * stopped by a replica that is down says where each component is and resumes with the same value
 * once it is back. Then a following bootstrap reports zero changes and the guard accepts every host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { generateSecretValue, readSecrets, SECRETS_FILE_AGE } from '../../src/inventory/secrets.js';
import { secretsSettings } from '../../src/cli/secrets.js';
import { loadInventory } from '../../src/inventory/load.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { checkOf, statusJson } from '../helpers/status.js';
import { get } from '../helpers/airflow-lab.js';

let lab: TestLab;
let identityFile = '';
const HOSTS = ['h1', 'h2', 'h3'];
const ROLES = [['etcd', 'postgresql'], ['etcd', 'postgresql', 'rabbitmq'], ['etcd', 'haproxy']];
const statsFile = () => path.join(lab.dir, 'stats-password.txt');
const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const addr = (host: string) => lab.loaded.inventory.hosts.find((h) => h.name === host)?.address ?? '';

/** The cluster's secrets as the CLI reads them (the age-encrypted file, the command source). */
async function secrets() {
  const s = await readSecrets(lab.loaded.stateDir, secretsSettings(await loadInventory(lab.inventoryFile), process.env));
  assert.ok(s, 'the secrets are readable');
  return s;
}

/** psql from h1 as `user` with `password` to `host:port` (database postgres or airflow): exit code and output. */
async function login(user: string, password: string, host: string, port: number, db = 'postgres') {
  return on('h1', `PGPASSWORD='${password}' PGCONNECT_TIMEOUT=5 psql -XqAt -h ${addr(host)} -p ${port} -U ${user} -d ${db} -c 'select current_user'`);
}

/** On a replica: waits (at most 180 s) until its WAL receiver streams; exit 0 then. */
const STREAMING = `for i in $(seq 1 90); do s=$(runuser -u postgres -- psql -XqAt -c "select status from pg_stat_wal_receiver" 2>/dev/null); [ "$s" = streaming ] && { echo streaming; exit 0; }; sleep 2; done; echo "$s"; exit 1`;

/** The Patroni node holding the leader lock, as h1's REST API lists the members. */
async function patroniLeader(): Promise<string> {
  const r = await on('h1', `python3 -c 'import json,urllib.request as u; print([m["name"] for m in json.load(u.urlopen("http://${addr('h1')}:8008/cluster", timeout=3))["members"] if m["role"]=="leader"][0])'`);
  const leader = r.stdout.trim();
  assert.ok(['h1', 'h2'].includes(leader), r.stdout + r.stderr);
  return leader;
}

/** Total changes of a --json run. */
const changes = (stdout: string) => runEnd(stdout).hosts.reduce((n, h) => n + h.changed, 0);

before(async () => {
  lab = await bootLab('rot', HOSTS, ROLES);
  identityFile = path.join(lab.dir, 'age.key');
  execFileSync('age-keygen', ['-o', identityFile], { stdio: 'ignore' });
  const recipient = execFileSync('age-keygen', ['-y', identityFile], { encoding: 'utf8' }).trim();
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as Record<string, unknown>;
  doc['secrets'] = { haproxyStats: { command: ['cat', 'stats-password.txt'], timeoutSec: 10 } };
  doc['secretsFile'] = { encryption: 'age', recipients: [recipient], identityFile: 'age.key' };
  await writeFile(lab.inventoryFile, `# end-to-end test lab: rotate-secret; a secret from a command, the file age-encrypted\n${stringify(doc)}`);
  await writeFile(statsFile(), `${generateSecretValue('password')}\n`, { mode: 0o600 });
  const boot = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  assert.equal(boot.exitCode, 0, boot.stdout.slice(-5000) + boot.stderr);
  const state = await readdir(lab.loaded.stateDir);
  assert.ok(state.includes(SECRETS_FILE_AGE) && !state.includes('secrets.yaml'), state.join(' '));
});

after(async () => {
  await tearDown(lab);
});

test('the Airflow database password: --check changes nothing; the rotation makes PostgreSQL refuse the old one and take the new one through HAProxy', async () => {
  const old = (await secrets()).airflowDb.reveal();
  const encrypted = path.join(lab.loaded.stateDir, SECRETS_FILE_AGE);
  const before = await readFile(encrypted, 'utf8');
  assert.equal((await login('airflow', old, 'h3', 5000, 'airflow')).code, 0, 'the old password works before');

  const check = await cli(['rotate-secret', ...inv(), 'airflowDb', '--check']);
  assert.equal(check.exitCode, 0, check.stderr);
  assert.match(check.stdout, /alter role airflow: h1, h2; gate: the new password of airflow logs in on the primary/);
  assert.match(check.stdout, /secrets fingerprint: h1, h2, h3/);
  assert.equal(await readFile(encrypted, 'utf8'), before, '--check wrote nothing');
  assert.ok(!(await readdir(lab.loaded.stateDir)).some((f) => f.startsWith('rotation')), '--check recorded no rotation');

  const r = await cli(['rotate-secret', ...inv(), 'airflowDb', '--json']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-4000) + r.stderr);
  const fp = events(r.stdout).filter((e) => e.type === 'fingerprint');
  assert.deepEqual(fp.map((e) => e['status']), ['previous', 'previous', 'previous', 'written', 'written', 'written'], 'hosts of the old set accepted; the new fingerprint written on every host');
  const lastStep = events(r.stdout).map((e, i) => ({ e, i })).filter(({ e }) => e.type === 'step_end').at(-1)?.i ?? -1;
  assert.ok(events(r.stdout).findIndex((e) => e.type === 'fingerprint' && e['status'] === 'written') > lastStep, 'written after the last step');
  const fresh = (await secrets()).airflowDb.reveal();
  assert.notEqual(fresh, old);
  assert.notEqual(await readFile(encrypted, 'utf8'), before, 'the encrypted file was rewritten');
  assert.match(await readFile(encrypted, 'utf8'), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  assert.ok(!(await readdir(lab.loaded.stateDir)).some((f) => f.startsWith('rotation')), 'the pending rotation is removed');
  const journal = await readFile(path.join(lab.loaded.stateDir, 'journal.jsonl'), 'utf8');
  for (const text of [r.stdout, r.stderr, journal]) {
    assert.ok(!text.includes(fresh) && !text.includes(old), 'a password is printed or journaled');
  }

  const refused = await login('airflow', old, 'h3', 5000, 'airflow');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr + refused.stdout, /password authentication failed for user "airflow"/);
  const ok = await login('airflow', fresh, 'h3', 5000, 'airflow');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'airflow');
});

test('the replication password: the old one refused, the replica streams again after its Patroni restarts (with the new one)', async () => {
  const old = (await secrets()).postgresReplication.reveal();
  const r = await cli(['rotate-secret', ...inv(), 'postgresReplication', '--json']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-4000) + r.stderr);
  const fresh = (await secrets()).postgresReplication.reveal();
  assert.notEqual(fresh, old);
  for (const host of ['h1', 'h2']) {
    // exec masks every current secret in what the host prints, so the file is searched on the host
    // and only the counts come back (the values are letters and digits: safe in double quotes).
    const count = async (text: string) => Number((await on(host, `grep -cF -- "${text}" /etc/patroni/config.yml || true`)).stdout.trim());
    const hasNew = await count(`password: '${fresh}'`);
    const hasOld = await count(old);
    assert.ok(hasNew === 1 && hasOld === 0, `${host}: patroni.yml holds the new replication password only (lines with the new one: ${hasNew}, with the old one: ${hasOld}); rotate-secret said:\n${r.stdout.slice(-3000)}`);
  }
  // The leader is whichever node Patroni says; the replica's own login goes to it.
  const leader = await patroniLeader();
  const replica = leader === 'h1' ? 'h2' : 'h1';
  const oldLogin = await on(replica, `PGPASSWORD='${old}' PGCONNECT_TIMEOUT=5 psql -XqAt -h ${addr(leader)} -p 5432 -U replicator -d postgres -c 'select 1'`);
  assert.match(oldLogin.stderr + oldLogin.stdout, /password authentication failed for user "replicator"/);

  assert.equal((await on(replica, 'systemctl restart patroni')).code, 0);
  const s = await on(replica, STREAMING);
  assert.equal(s.code, 0, `the replica streams again with the new password: ${s.stdout}${s.stderr}`);
});

test('a rotation stopped midway (a replica down) says where each component is; run again, it resumes with the same value', async () => {
  const old = (await secrets()).postgresRewind.reveal();
  const leader = await patroniLeader();
  const replica = leader === 'h1' ? 'h2' : 'h1';
  assert.equal((await on(replica, 'systemctl stop patroni')).code, 0);
  const stopped = await cli(['rotate-secret', ...inv(), 'postgresRewind', '--json']);
  assert.equal(stopped.exitCode, 1, stopped.stdout.slice(-3000) + stopped.stderr);
  assert.match(stopped.stderr, new RegExp(`rotate-secret postgresRewind stopped at step "alter role rewind_user" \\(failed on ${replica}\\)`));
  assert.match(stopped.stderr, /stopped {6}alter role rewind_user on h1, h2: failed on/);
  assert.match(stopped.stderr, /not started {2}patroni leader/);
  assert.match(stopped.stderr, /resume with `airflow-ha rotate-secret -i \S+ postgresRewind --json`/);
  assert.ok(!events(stopped.stdout).some((e) => e.type === 'fingerprint' && e['status'] === 'written'), 'no host got the new fingerprint');
  assert.ok((await readdir(lab.loaded.stateDir)).includes('rotation.yaml.age'), 'the new value waits, encrypted');
  assert.equal((await secrets()).postgresRewind.reveal(), old, 'the secrets file still has the old value');

  assert.equal((await on(replica, 'systemctl start patroni')).code, 0);
  assert.equal((await on(replica, STREAMING)).code, 0, 'the replica streams again');
  const resumed = await cli(['rotate-secret', ...inv(), 'postgresRewind', '--json']);
  assert.equal(resumed.exitCode, 0, resumed.stdout.slice(-3000) + resumed.stderr);
  const alter = events(resumed.stdout).filter((e) => e.type === 'task' && String(e['task']).startsWith('ALTER ROLE rewind_user'));
  assert.deepEqual(alter.map((e) => e['status']), ['ok', 'ok'], 'the ALTER done before is not run again');
  const fresh = (await secrets()).postgresRewind.reveal();
  assert.notEqual(fresh, old);
  assert.ok(!(await readdir(lab.loaded.stateDir)).some((f) => f.startsWith('rotation')), 'the pending rotation is removed');
  assert.match((await login('rewind_user', old, leader, 5432)).stderr, /password authentication failed for user "rewind_user"/);
  assert.equal((await login('rewind_user', fresh, leader, 5432)).code, 0);
});

test('the stats password from a command source: refused without a new value; rolled with --new-value-from; other runs refused until the store gives it', async () => {
  const old = (await readFile(statsFile(), 'utf8')).trim();
  const stats = async (pw: string) => (await get(lab.inventoryFile, 'h3', `http://${addr('h3')}:7000/`, `admin:${pw}`)).status;
  assert.equal(await stats(old), 200);

  const noValue = await cli(['rotate-secret', ...inv(), 'haproxyStats']);
  assert.equal(noValue.exitCode, 2, noValue.stdout + noValue.stderr);
  assert.match(noValue.stderr, /haproxyStats comes from a command source, which airflow-ha cannot write: pass the new value with --new-value-from env:VAR/);

  const fresh = generateSecretValue('password');
  const r = await cli(['rotate-secret', ...inv(), 'haproxyStats', '--new-value-from', 'env:NEW_STATS', '--json'], { NEW_STATS: fresh });
  assert.equal(r.exitCode, 0, r.stdout.slice(-4000) + r.stderr);
  assert.match(r.stderr, /Now put the new value into its command source/);
  assert.ok(!(r.stdout + r.stderr).includes(fresh));
  assert.equal(await stats(fresh), 200, 'the new password opens the stats page');
  assert.equal(await stats(old), 401, 'the old one is refused');

  // The store still gives the old value: the guard refuses a run, changing nothing.
  const refused = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(refused.exitCode, 2, refused.stdout.slice(-3000) + refused.stderr);
  assert.match(String(runEnd(refused.stdout).error), /haproxyStats \(command\)/);
  assert.ok(!events(refused.stdout).some((e) => e.type === 'step_start'), 'no step ran');
  await writeFile(statsFile(), `${fresh}\n`);
});

test('after the rotations: bootstrap changes nothing and the guard accepts every host; status keeps the database healthy', async () => {
  const again = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-4000) + again.stderr);
  assert.equal(changes(again.stdout), 0, again.stdout.slice(-4000));
  assert.deepEqual(events(again.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['same', 'same', 'same']);
  const s = await statusJson(lab.inventoryFile);
  assert.equal(checkOf(s, 'patroni', 'leader')?.verdict, 'healthy', JSON.stringify(s.report).slice(0, 3000));
  const bad = s.report.components.filter((c) => ['etcd', 'patroni', 'haproxy'].includes(c.name)).flatMap((c) => c.checks).filter((l) => l.verdict !== 'healthy');
  assert.deepEqual(bad, [], 'etcd, Patroni and HAProxy healthy');
  process.stderr.write(`[rotate e2e] status after the rotations: exit ${s.exitCode}, verdict ${s.report.verdict}\n`);
});
