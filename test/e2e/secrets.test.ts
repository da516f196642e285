/**
 * The cluster's secrets end to end on one lab host: the fingerprint recorded on the host, a lost
 * secrets file refused (exit 2, nothing on the host changed), `--new-cluster`, and an old password
 * in a host's file that never reaches plan, --json or the journal.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { readSecrets, SECRETS_FILE } from '../../src/inventory/secrets.js';
import { bootLab, cli, events, onHost, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;

before(async () => {
  lab = await bootLab('sec', ['s1'], [['etcd']]);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];
const demo = ['--playbook', 'demo'];
const secretsFile = () => path.join(lab.loaded.stateDir, SECRETS_FILE);
const FINGERPRINT = '/etc/airflow-ha/secrets.fingerprint';
/** The files the demo playbook and the fingerprint touch on the host: content, mode, owner and mtime. */
const WATCHED = `${FINGERPRINT} /etc/haproxy/haproxy.cfg /etc/hosts /etc/hostname /etc/sysctl.d/60-airflow-ha-demo.conf /etc/passwd /etc/group`;

async function on(cmd: string): Promise<string> {
  const r = await onHost(lab.inventoryFile, 's1', cmd);
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** One line per watched file: sha256, mode, owner, mtime (nanoseconds). */
const snapshot = () => on(`for f in ${WATCHED}; do printf '%s %s\\n' "$(sha256sum < "$f" | cut -c1-64)" "$(stat -c '%a %U:%G %.9Y %n' "$f")"; done`);

test('the first apply records the secrets fingerprint on the host, root-only, with no secret in it', async () => {
  const first = await cli(['apply', ...inv(), ...demo, '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-3000) + first.stderr);
  const fp = events(first.stdout).filter((e) => e.type === 'fingerprint');
  assert.deepEqual(fp.map((e) => [e['host'], e['status']]), [['s1', 'absent'], ['s1', 'written']]);
  assert.equal((await on(`stat -c '%a %U:%G' ${FINGERPRINT}`)).trim(), '600 root:root');
  const line = (await on(`cat ${FINGERPRINT}`)).trim();
  assert.match(line, /^airflow-ha-secrets-fingerprint v1 names=[A-Za-z,]+ hmac-sha256=[0-9a-f]{64}$/);
  const secrets = await readSecrets(lab.loaded.stateDir);
  assert.ok(secrets);
  for (const s of Object.values(secrets)) assert.ok(!line.includes(s.reveal()));
  const again = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.map((h) => h.changed), [0]);
  assert.deepEqual(events(again.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['same']);
});

test('an old password in a host file never shows in plan, --json, apply or the journal; the real change does', async () => {
  const OLD = 'OldStatsPassword4e2eTest9';
  await on(`sed -i -e 's/^\\(    stats auth admin:\\).*/\\1${OLD}/' -e 's/maxconn 2000/maxconn 1999/' /etc/haproxy/haproxy.cfg`);
  assert.match(await on('grep "stats auth" /etc/haproxy/haproxy.cfg'), new RegExp(OLD), 'the old value is on the host');
  const journal = path.join(lab.loaded.stateDir, 'journal.jsonl');

  const planJson = await cli(['plan', ...inv(), ...demo, '--json']);
  assert.equal(planJson.exitCode, 0, planJson.stderr);
  const task = events(planJson.stdout).find((e) => e.type === 'task' && e['task'] === 'template /etc/haproxy/haproxy.cfg');
  const diff = String(task?.['diff']);
  assert.deepEqual(diff.split('\n').filter((l) => /^[-+][^-+]/.test(l)), ['-    maxconn 1999', '+    maxconn 2000'], diff);
  const planHuman = await cli(['plan', ...inv(), ...demo]);
  assert.match(planHuman.stdout, /maxconn 1999/);
  const apply = await cli(['apply', ...inv(), ...demo, '--json', '--diff']);
  assert.equal(apply.exitCode, 0, apply.stderr);
  const applyHuman = await cli(['apply', ...inv(), ...demo, '--diff']);
  assert.equal(applyHuman.exitCode, 0);

  for (const [what, text] of [
    ['plan --json', planJson.stdout + planJson.stderr],
    ['plan', planHuman.stdout + planHuman.stderr],
    ['apply --json', apply.stdout + apply.stderr],
    ['journal', await readFile(journal, 'utf8')],
  ]) {
    assert.ok(!String(text).includes(OLD), `${what} shows the old password`);
  }
  assert.ok(!(await on('cat /etc/haproxy/haproxy.cfg')).includes(OLD), 'apply wrote the current password');
});

test('a lost secrets file: the next run is refused (exit 2), naming the host and the fix, and nothing on the host changes', async () => {
  const before = await snapshot();
  await rm(secretsFile());

  // plan and render create no secrets file.
  const plan = await cli(['plan', ...inv(), ...demo]);
  assert.equal(plan.exitCode, 2, plan.stdout + plan.stderr);
  assert.match(plan.stderr, /secrets\.yaml does not exist; `airflow-ha bootstrap -i .*` creates it/);
  await assert.rejects(stat(secretsFile()), { code: 'ENOENT' });

  // apply generates a new file, then finds that the host was set up with other secrets.
  const apply = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(apply.exitCode, 2, apply.stdout.slice(-3000) + apply.stderr);
  const end = runEnd(apply.stdout);
  assert.match(String(end.error), /1 host\(s\) hold a different secrets fingerprint in \/etc\/airflow-ha\/secrets\.fingerprint: s1; nothing was changed/);
  assert.match(String(end.error), /did not exist and was generated by this run/);
  assert.match(String(end.error), /Restore the secrets these hosts were set up with \(the secrets file from your backup to .* --new-cluster/s);
  assert.deepEqual(events(apply.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['different']);
  assert.ok(!events(apply.stdout).some((e) => e.type === 'step_start'), 'no step ran');
  // A plan with the new file is refused the same way.
  const plan2 = await cli(['plan', ...inv(), ...demo]);
  assert.equal(plan2.exitCode, 2);
  assert.match(plan2.stdout + plan2.stderr, /different secrets fingerprint/);
  assert.equal(await snapshot(), before, 'no file on the host changed');

  // The operator says it is a new cluster: the host gets the new secrets and their fingerprint.
  const fresh = await cli(['apply', ...inv(), ...demo, '--json', '--new-cluster']);
  assert.equal(fresh.exitCode, 0, fresh.stdout.slice(-3000) + fresh.stderr);
  assert.deepEqual(events(fresh.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['different', 'written']);
  // exec masks the current secrets in what it prints: *** is the new password.
  assert.match(await on('grep "stats auth" /etc/haproxy/haproxy.cfg'), /stats auth admin:\*\*\*$/m);
  const quiet = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(quiet.exitCode, 0, quiet.stderr);
  assert.deepEqual(runEnd(quiet.stdout).hosts.map((h) => h.changed), [0]);
});
