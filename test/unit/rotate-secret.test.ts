/**
 * rotate-secret's pure parts: which steps and hosts each secret's rotation touches and in which
 * order, the Erlang cookie refused, the ALTER ROLE command (password on stdin and in the
 * environment, never in argv), the fernet key's two-key phase, the message of a rotation that
 * stopped midway, `--new-value-from`, and the pending rotation and secrets file writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import type { HostFacts } from '../../src/facts/host.js';
import {
  generateSecretValue,
  loadOrCreateSecrets,
  readPendingRotation,
  readSecrets,
  removePendingRotation,
  rotationFilePath,
  SECRET_KINDS,
  SECRET_NAMES,
  writePendingRotation,
  writeSecretValue,
  type ClusterSecrets,
} from '../../src/inventory/secrets.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { rolePasswordCheck, rolePasswordTask } from '../../src/components/patroni.js';
import { parseNewValueFrom } from '../../src/cli/rotate.js';
import { ROTATABLE, ROTATION_REFUSED, rotationOutline, rotationPlaybook, rotationStopped, type RotationPlaybook } from '../../playbooks/rotate-secret.js';
import { seedInventory } from '../helpers/golden.js';
import { inTemp } from '../helpers/local.js';
import { runMain } from '../helpers/cli.js';
import { ROOT } from '../helpers/lab.js';

const FACTS: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: false };
const OLD = new Secret('Old-value-of-the-secret-0123456789');

function generated(): ClusterSecrets {
  return Object.fromEntries(SECRET_NAMES.map((n) => [n, new Secret(generateSecretValue(SECRET_KINDS[n]))])) as unknown as ClusterSecrets;
}

const names = (pb: RotationPlaybook) => pb.steps.map((s) => s.name);

/** The content of the file at `file` that step `step` of `pb` renders on `host` with `secrets`. */
function rendered(inv: Inventory, pb: RotationPlaybook, step: string, host: string, secrets: ClusterSecrets, file: string): string {
  const s = pb.steps.find((x) => x.name === step);
  assert.ok(s, step);
  const h = inv.hosts.find((x) => x.name === host);
  assert.ok(h, host);
  const files = s.tasks({ inventory: inv, secrets, host: h, facts: FACTS }).flatMap((t) => t.files?.(FACTS) ?? []);
  const f = files.find((x) => x.path === file);
  assert.ok(f, `${step} renders ${file} on ${host}: ${files.map((x) => x.path).join(', ')}`);
  return f.content.toString();
}

test('every secret but the Erlang cookie has a rotation: unique step names, the fingerprint step last on every host', () => {
  assert.deepEqual(
    ROTATABLE,
    SECRET_NAMES.filter((n) => n !== 'erlangCookie'),
  );
  for (const n of ROTATABLE) {
    const pb = rotationPlaybook(n, OLD);
    assert.equal(new Set(names(pb)).size, pb.steps.length, `${n}: ${names(pb).join(' | ')}`);
    const last = pb.steps.at(-1);
    assert.equal(last?.name, 'secrets fingerprint', n);
    assert.deepEqual(last?.hosts, { all: true });
    assert.ok(pb.steps.length >= 2, n);
    for (const s of pb.steps) assert.ok(s.done.length > 10, `${n} ${s.name}: says what holds once done`);
  }
});

test('the Erlang cookie is refused with the reason, before anything is planned', () => {
  assert.throws(
    () => rotationPlaybook('erlangCookie', OLD),
    (e: unknown) => e instanceof InputError && /needs every RabbitMQ node stopped; not rotated online/.test(e.message) && /nothing was changed/.test(e.message),
  );
  assert.ok(ROTATION_REFUSED.erlangCookie);
});

test('a role password: ALTER ROLE on the primary first, then its consumers; each secret to its consumers', () => {
  assert.deepEqual(names(rotationPlaybook('airflowDb', OLD)), ['alter role airflow', 'airflow config', 'airflow webserver health', 'airflow workers', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('postgresReplication', OLD)), [
    'alter role replicator',
    'patroni leader',
    'patroni replicas',
    'postgresql restart: replicas',
    'postgresql restart: leader',
    'secrets fingerprint',
  ]);
  assert.deepEqual(names(rotationPlaybook('postgresSuperuser', OLD))[0], 'alter role postgres');
  assert.deepEqual(names(rotationPlaybook('postgresRewind', OLD))[0], 'alter role rewind_user');
  assert.deepEqual(names(rotationPlaybook('patroniRestApi', OLD)), ['patroni leader', 'patroni replicas', 'postgresql restart: replicas', 'postgresql restart: leader', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('rabbitmqAirflow', OLD)), ['rabbitmq nodes', 'airflow config', 'airflow webserver health', 'airflow workers', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('rabbitmqAdmin', OLD)), ['rabbitmq nodes', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('haproxyStats', OLD)), ['haproxy', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('ftpUser', OLD)), ['ftp', 'secrets fingerprint']);
  assert.deepEqual(names(rotationPlaybook('airflowAdmin', OLD)), ['airflow admin password', 'secrets fingerprint']);
  for (const n of ['airflowSecretKey', 'airflowJwtSecret', 'flowerBasicAuth'] as const) {
    assert.deepEqual(names(rotationPlaybook(n, OLD)), ['airflow config', 'airflow webserver health', 'airflow workers', 'secrets fingerprint'], n);
  }
});

test('the outline on the seed inventory: hosts per step, airflow.cfg rolled one host at a time, steps without hosts left out', async () => {
  const inv = await seedInventory();
  const pg = inv.hosts.filter((h) => h.roles.includes('postgresql')).map((h) => h.name);
  const outline = rotationOutline(inv, rotationPlaybook('airflowDb', OLD));
  assert.deepEqual(outline[0], {
    step: 'alter role airflow',
    hosts: pg,
    rolling: false,
    gate: 'the new password of airflow logs in on the primary',
    done: 'PostgreSQL role airflow has the new password (a client still holding the old one is refused on its next login)',
  });
  const cfg = outline.find((s) => s.step === 'airflow config');
  assert.ok(cfg?.rolling, 'airflow.cfg changes one host at a time');
  assert.ok(cfg.hosts.includes('worker1') && cfg.hosts.includes('airflow') && !cfg.hosts.includes(pg[0] as string), cfg.hosts.join(','));
  assert.deepEqual(outline.at(-1)?.hosts, inv.hosts.map((h) => h.name));
  // A data-plane inventory: the Airflow steps select no host and are not shown.
  const dataOnly = { ...inv, hosts: inv.hosts.filter((h) => h.roles.every((r) => ['postgresql', 'etcd', 'haproxy', 'rabbitmq'].includes(r))) };
  assert.deepEqual(rotationOutline(dataOnly, rotationPlaybook('airflowDb', OLD)).map((s) => s.step), ['alter role airflow', 'secrets fingerprint']);
});

test('ALTER ROLE: the password reaches psql through \\getenv on stdin, never in argv; skipped on replicas and once the new one logs in', () => {
  const inv = { cluster: { ports: { postgres: 5432 } } } as unknown as Inventory;
  const pw = new Secret('New-password-of-the-role-0123456789');
  const task = rolePasswordTask(inv, 'airflow', pw);
  const plan = task.plan({ get: () => false } as never, FACTS);
  assert.equal(plan.changed, true);
  const op = plan.ops[0];
  assert.ok(op && op.kind === 'exec');
  const shown = op.cmd.toString();
  assert.ok(!shown.includes(pw.reveal()), shown);
  assert.equal(shown, `printf '%s' '\\getenv pw ROTATE_PASSWORD\nALTER ROLE airflow PASSWORD :'\\''pw'\\'';\n' | ROTATE_PASSWORD=*** runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p 5432 -d postgres`);
  // The clear text is only in the environment assignment of the script sent on stdin.
  assert.ok(op.cmd.render().includes(`ROTATE_PASSWORD=${pw.reveal()} runuser`));
  const guards = task.facts(FACTS).map((f) => f.cmd.toString());
  assert.equal(guards.length, 1);
  assert.match(guards[0] as string, /select pg_is_in_recovery\(\).*\[ "\$r" != f \] \|\| PGPASSWORD=\*\*\* PGCONNECT_TIMEOUT=5 psql .* -h 127\.0\.0\.1 -p 5432 -U airflow -d postgres/);
  assert.equal(task.plan({ get: () => true } as never, FACTS).changed, false, 'a guard that holds: nothing to do');
  assert.match(rolePasswordCheck(inv, 'airflow', pw).toString(), /\[ "\$r" = t \] \|\| \{ \[ "\$r" = f \] && PGPASSWORD=\*\*\*/);
});

test('the fernet key: airflow.cfg with NEW,OLD, airflow rotate-fernet-key on the migrate host only, then NEW alone', async () => {
  const inv = await seedInventory();
  const secrets = generated();
  const old = new Secret(generateSecretValue('fernetKey'));
  const pb = rotationPlaybook('airflowFernetKey', old);
  assert.deepEqual(names(pb), [
    'airflow config (fernet_key new,old)',
    'airflow webserver health (fernet_key new,old)',
    'airflow workers (fernet_key new,old)',
    'airflow rotate-fernet-key',
    'airflow config (fernet_key new)',
    'airflow webserver health (fernet_key new)',
    'airflow workers (fernet_key new)',
    'secrets fingerprint',
  ]);
  const key = (text: string) => /^fernet_key = (.*)$/m.exec(text)?.[1];
  const home = inv.cluster.airflow.home;
  const file = `${home}/airflow.cfg`;
  assert.equal(key(rendered(inv, pb, 'airflow config (fernet_key new,old)', 'worker1', secrets, file)), `${secrets.airflowFernetKey.reveal()},${old.reveal()}`);
  assert.equal(key(rendered(inv, pb, 'airflow config (fernet_key new)', 'worker1', secrets, file)), secrets.airflowFernetKey.reveal());
  const rotate = pb.steps.find((s) => s.name === 'airflow rotate-fernet-key');
  assert.ok(rotate);
  const tasksOn = (name: string) => rotate.tasks({ inventory: inv, secrets, host: inv.hosts.find((h) => h.name === name)!, facts: FACTS }).map((t) => t.name);
  const schedulers = inv.hosts.filter((h) => h.roles.includes('scheduler')).map((h) => h.name);
  assert.deepEqual(tasksOn(schedulers[0] as string), ['airflow rotate-fernet-key']);
  for (const s of schedulers.slice(1)) assert.deepEqual(tasksOn(s), []);
});

test('a rotation that stopped says, step by step, what is done, where it stopped, what has not started, and how to resume', async () => {
  const inv = await seedInventory();
  const pb = rotationPlaybook('airflowDb', OLD);
  const text = rotationStopped(inv, pb, 'airflow config', ['worker1'], 'airflow-ha rotate-secret -i site.yaml airflowDb');
  const lines = text.trimEnd().split('\n');
  assert.match(lines[0] as string, /^rotate-secret airflowDb stopped at step "airflow config" \(failed on worker1\)\. Where each component is:$/);
  assert.match(lines[1] as string, /^ {2}done {9}alter role airflow: PostgreSQL role airflow has the new password/);
  assert.match(lines[2] as string, /^ {2}stopped {6}airflow config on .*: failed on worker1; the hosts after the failed one in this order still have the old value; once done: airflow\.cfg holds/);
  assert.match(lines[3] as string, /^ {2}not started {2}airflow webserver health/);
  assert.match(lines.at(-1) as string, /resume with `airflow-ha rotate-secret -i site\.yaml airflowDb`: it rolls the same new value/);
});

test('--new-value-from takes env:VAR only', () => {
  assert.equal(parseNewValueFrom('env:NEW_DB_PW'), 'NEW_DB_PW');
  for (const bad of ['NEW', 'env:', 'env:1X', 'file:/tmp/x', 'command:pass']) {
    assert.throws(() => parseNewValueFrom(bad), (e: unknown) => e instanceof InputError && /is not env:VAR/.test(e.message), bad);
  }
});

test('the pending rotation and the new value: 0600 files written by rename, read back, the other keys kept', () =>
  inTemp(async (dir) => {
    const state = path.join(dir, 'site.state');
    const { secrets } = await loadOrCreateSecrets(state);
    assert.equal(await readPendingRotation(state), undefined);
    const fresh = new Secret(generateSecretValue('password'));
    const file = await writePendingRotation(state, undefined, { secret: 'airflowDb', old: secrets.airflowDb, new: fresh });
    assert.equal(file, rotationFilePath(state));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const back = await readPendingRotation(state);
    assert.equal(back?.secret, 'airflowDb');
    assert.equal(back?.old.reveal(), secrets.airflowDb.reveal());
    assert.equal(back?.new.reveal(), fresh.reveal());

    await writeSecretValue(state, undefined, 'airflowDb', fresh.reveal());
    const after = await readSecrets(state);
    assert.equal(after?.airflowDb.reveal(), fresh.reveal());
    for (const n of SECRET_NAMES.filter((x) => x !== 'airflowDb')) assert.equal(after?.[n].reveal(), secrets[n].reveal(), n);
    assert.equal((await stat(path.join(state, 'secrets.yaml'))).mode & 0o777, 0o600);
    await assert.rejects(writeSecretValue(state, undefined, 'airflowDb', 'short'), /the new value is refused \[secrets:length\]/);
    assert.ok((await readFile(path.join(state, 'secrets.yaml'), 'utf8')).includes(fresh.reveal()), 'a refused value changes nothing');

    await removePendingRotation(state);
    assert.equal(await readPendingRotation(state), undefined);
    await removePendingRotation(state); // none: nothing to do
  }));

// ---- the command, offline (nothing connects: every case stops before the transport) -------------

/** A copy of the seed inventory in `dir` with `extra` YAML appended, its secrets file generated. */
async function site(dir: string, extra = ''): Promise<string> {
  const file = path.join(dir, 'site.yaml');
  await writeFile(file, `${await readFile(path.join(ROOT, 'inventory', 'seed-ha.yaml'), 'utf8')}\n${extra}`);
  await loadOrCreateSecrets(path.join(dir, 'site.state'));
  return file;
}

test('rotate-secret: an unknown name, the Erlang cookie, a sourced secret without a new value and a bad --new-value-from are exit 2 and change nothing', () =>
  inTemp(async (dir) => {
    const file = await site(dir, 'secrets:\n  haproxyStats: { env: STATS_PW }\n');
    const state = path.join(dir, 'site.state', 'secrets.yaml');
    const before = await readFile(state, 'utf8');
    const env = { STATS_PW: generateSecretValue('password') };
    const unknown = await runMain(['rotate-secret', '-i', file, 'airflowDB'], { env });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /"airflowDB" is not a secret \(secrets: postgresSuperuser, /);
    const cookie = await runMain(['rotate-secret', '-i', file, 'erlangCookie'], { env });
    assert.equal(cookie.code, 2);
    assert.match(cookie.stderr, /erlangCookie: refused: the Erlang cookie needs every RabbitMQ node stopped; not rotated online/);
    const sourced = await runMain(['rotate-secret', '-i', file, 'haproxyStats'], { env });
    assert.equal(sourced.code, 2);
    assert.match(sourced.stderr, /haproxyStats comes from an env source, which airflow-ha cannot write: pass the new value with --new-value-from env:VAR while the source still gives the old one/);
    const same = await runMain(['rotate-secret', '-i', file, 'haproxyStats', '--new-value-from', 'env:STATS_PW'], { env });
    assert.equal(same.code, 2);
    assert.match(same.stderr, /the new value \(env STATS_PW\) is the one its env source gives now/);
    const bad = await runMain(['rotate-secret', '-i', file, 'airflowDb', '--new-value-from', 'env:NEW'], { env: { ...env, NEW: 'has spaces in it, refused' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /airflowDb: the new value \(env NEW\) is refused \[secrets:charset\]/);
    assert.ok(!bad.stderr.includes('has spaces'), 'the value is not shown');
    assert.equal(await readFile(state, 'utf8'), before);
    assert.deepEqual((await readdir(path.join(dir, 'site.state'))).sort(), ['secrets.yaml']);
  }));

test('rotate-secret --check prints where the value comes from and each step with its hosts, and writes nothing', () =>
  inTemp(async (dir) => {
    const file = await site(dir);
    const r = await runMain(['rotate-secret', '-i', file, 'airflowDb', '--check']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'rotate-secret airflowDb (check: nothing changed, nothing connected)');
    assert.match(lines[1] as string, /^value: .*site\.state\/secrets\.yaml; the new value generated, kept in .*site\.state\/rotation\.yaml until the rotation ends/);
    assert.match(r.stdout, /\n {2}alter role airflow: [a-z0-9, ]+; gate: the new password of airflow logs in on the primary\n/);
    assert.match(r.stdout, /\n {2}airflow config: [a-z0-9, ]+ \(one at a time\)\n/);
    assert.deepEqual((await readdir(path.join(dir, 'site.state'))).sort(), ['secrets.yaml']);
  }));
