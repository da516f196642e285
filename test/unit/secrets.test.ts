import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { formatDiagnostic, InputError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import { allSecrets, generateSecretValue, isFernetKey, loadOrCreateSecrets, randomString, SECRET_NAMES } from '../../src/inventory/secrets.js';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'airflow-ha-secrets-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const reveal = (s: Record<string, Secret>) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.reveal()]));

test('first use creates the state folder (0700) and secrets.yaml (0600) with every key', () =>
  withTmp(async (tmp) => {
    const stateDir = path.join(tmp, 'site.state');
    const { secrets, created, file } = await loadOrCreateSecrets(stateDir);
    assert.equal(file, path.join(stateDir, 'secrets.yaml'));
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual([...created].sort(), [...SECRET_NAMES].sort());
    for (const name of ['postgresSuperuser', 'postgresReplication', 'patroniRestApi', 'airflowDb', 'rabbitmqAirflow', 'rabbitmqAdmin', 'erlangCookie', 'airflowFernetKey', 'airflowSecretKey', 'airflowAdmin', 'haproxyStats', 'flowerBasicAuth']) {
      assert.ok(SECRET_NAMES.includes(name as never), name);
    }
    for (const name of SECRET_NAMES) assert.ok(secrets[name] instanceof Secret, name);

    // Formats.
    assert.match(secrets.postgresSuperuser.reveal(), /^[A-Za-z0-9]{32}$/);
    assert.match(secrets.erlangCookie.reveal(), /^[A-Z0-9]{32,}$/);
    const fernet = secrets.airflowFernetKey.reveal();
    assert.equal(fernet.length, 44);
    assert.match(fernet, /^[A-Za-z0-9_-]{43}=$/);
    assert.equal(Buffer.from(fernet, 'base64url').length, 32);
    assert.match(secrets.airflowSecretKey.reveal(), /^[0-9a-f]{64}$/);
    // One secret per purpose: no two values alike.
    const values = allSecrets(secrets).map((s) => s.reveal());
    assert.equal(new Set(values).size, values.length);
    // Nothing but the secrets file is left in the folder (no temp files).
    assert.deepEqual(await readdir(stateDir), ['secrets.yaml']);
  }));

test('a second load returns the same values and creates nothing', () =>
  withTmp(async (tmp) => {
    const first = await loadOrCreateSecrets(tmp);
    const before = await readFile(first.file, 'utf8');
    const second = await loadOrCreateSecrets(tmp);
    assert.deepEqual(second.created, []);
    assert.deepEqual(reveal({ ...second.secrets }), reveal({ ...first.secrets }));
    assert.equal(await readFile(first.file, 'utf8'), before);
  }));

test('concurrent first loads agree on one set of values', () =>
  withTmp(async (tmp) => {
    const stateDir = path.join(tmp, 'race.state');
    const results = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateSecrets(stateDir)));
    const first = reveal({ ...results[0]!.secrets });
    for (const r of results) assert.deepEqual(reveal({ ...r.secrets }), first);
    assert.equal(results.filter((r) => r.created.length > 0).length, 1);
    assert.deepEqual(await readdir(stateDir), ['secrets.yaml']);
  }));

test('a key missing from an existing file is added; existing values are kept', () =>
  withTmp(async (tmp) => {
    const file = path.join(tmp, 'secrets.yaml');
    const fernet = generateSecretValue('fernetKey');
    await writeFile(file, `airflowFernetKey: "${fernet}"\nairflowAdmin: "kept-by-hand-0123456789"\nfutureKey: "unknown but kept"\n`, { mode: 0o600 });
    const { secrets, created } = await loadOrCreateSecrets(tmp);
    assert.equal(secrets.airflowFernetKey.reveal(), fernet);
    assert.equal(secrets.airflowAdmin.reveal(), 'kept-by-hand-0123456789');
    assert.ok(!created.includes('airflowFernetKey') && !created.includes('airflowAdmin'));
    assert.equal(created.length, SECRET_NAMES.length - 2);
    const text = await readFile(file, 'utf8');
    assert.match(text, /futureKey: "unknown but kept"/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const again = await loadOrCreateSecrets(tmp);
    assert.deepEqual(again.created, []);
    assert.deepEqual(reveal({ ...again.secrets }), reveal({ ...secrets }));
  }));

test('a group- or world-readable secrets file is refused, named with its mode and the fix', () =>
  withTmp(async (tmp) => {
    const { file } = await loadOrCreateSecrets(tmp);
    await chmod(file, 0o644);
    await assert.rejects(loadOrCreateSecrets(tmp), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.equal(err.exitCode, 2);
      assert.ok(err.message.includes(file), err.message);
      assert.ok(err.message.includes('0644'), err.message);
      assert.ok(err.message.includes(`chmod 600 ${file}`), err.message);
      return true;
    });
    await chmod(file, 0o640);
    await assert.rejects(loadOrCreateSecrets(tmp), /mode 0640/);
    // The file was not touched.
    assert.equal((await stat(file)).mode & 0o777, 0o640);
  }));

test('a broken secrets file is refused without echoing its content', () =>
  withTmp(async (tmp) => {
    const file = path.join(tmp, 'secrets.yaml');
    await writeFile(file, 'airflowAdmin: "s3cr3t-value\n', { mode: 0o600 });
    await assert.rejects(loadOrCreateSecrets(tmp), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.ok(!err.message.includes('s3cr3t'), err.message);
      return true;
    });
    await writeFile(file, 'airflowFernetKey: "not-a-key"\n', { mode: 0o600 });
    await assert.rejects(loadOrCreateSecrets(tmp), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.diagnostics.map(formatDiagnostic).join('\n'), /secrets\.yaml:1:19: error \[secrets:fernet-key\] airflowFernetKey: is not a Fernet key/);
      assert.ok(!`${err.message}${JSON.stringify(err.diagnostics)}`.includes('not-a-key'), err.message);
      return true;
    });
  }));

test('secrets print as *** through String, templates, JSON.stringify and inspect', () =>
  withTmp(async (tmp) => {
    const { secrets } = await loadOrCreateSecrets(tmp);
    const clear = allSecrets(secrets).map((s) => s.reveal());
    const renderings = [String(secrets.airflowAdmin), `${secrets.erlangCookie}`, JSON.stringify(secrets), inspect(secrets, { depth: 5 }), inspect(secrets.airflowFernetKey)];
    for (const text of renderings) {
      for (const v of clear) assert.ok(!text.includes(v), `a value leaked into: ${text}`);
    }
    assert.equal(String(secrets.airflowAdmin), '***');
    assert.equal(JSON.parse(JSON.stringify(secrets)).postgresSuperuser, '***');
    assert.match(inspect(secrets), /airflowFernetKey: \*\*\*/);
  }));

test('generators: unbiased alphabets, Fernet check', () => {
  const s = randomString(2000, 'AB');
  assert.match(s, /^[AB]{2000}$/);
  const a = [...s].filter((c) => c === 'A').length;
  assert.ok(a > 850 && a < 1150, `skewed: ${a}`);
  assert.ok(isFernetKey(generateSecretValue('fernetKey')));
  assert.ok(!isFernetKey('x'.repeat(44)));
  assert.ok(!isFernetKey(`${'A'.repeat(42)}==`));
});
