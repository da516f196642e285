/**
 * Secrets from the site's store: an environment variable or a command's output (run without a
 * shell, bounded in time, never named by its argv in a message), checked like a hand-edited value;
 * the secrets file kept age-encrypted (a real `age` binary); the inventory's `secrets:` and
 * `secretsFile:` rules at file:line:column; and that no sourced secret is ever generated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, formatDiagnostic, InputError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import { parseInventory } from '../../src/inventory/load.js';
import { readSource, readSources, stderrTail, stripTrailingNewline, type SecretsSettings } from '../../src/inventory/secret-sources.js';
import {
  generateSecretValue,
  loadOrCreateSecrets,
  readSecrets,
  requireSecrets,
  SECRET_KINDS,
  SECRET_NAMES,
  SECRETS_FILE,
  SECRETS_FILE_AGE,
  secretsFingerprint,
  validateSecretValue,
  type SecretName,
} from '../../src/inventory/secrets.js';
import { compareFingerprints } from '../../src/run/fingerprint.js';
import { runMain } from '../helpers/cli.js';
import { inTemp } from '../helpers/local.js';

/** The environment commands run with: PATH only, so nothing else of this process leaks into them. */
const ENV = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };

/** The error `p` rejects with (the test fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(
    () => assert.fail('accepted'),
    (err: unknown) => err,
  );
  assert.ok(e instanceof InputError, String(e));
  assert.equal(e.exitCode, ExitCode.badInput);
  return e;
}

const password = () => generateSecretValue('password');

// ---- env ---------------------------------------------------------------------------------------

test('env source: the variable\'s value (one trailing newline removed) as a Secret that prints ***', async () => {
  const v = password();
  const s = await readSource('airflowDb', { env: 'AH_TEST_DB' }, { AH_TEST_DB: `${v}\n` }, validateSecretValue);
  assert.ok(s instanceof Secret);
  assert.equal(s.reveal(), v);
  assert.equal(`${s}`, '***');
  assert.equal(JSON.stringify({ s }), '{"s":"***"}');
});

test('env source: an unset or empty variable is refused naming the secret and the variable, exit 2', async () => {
  const unset = await rejection(readSource('rabbitmqAdmin', { env: 'AH_TEST_UNSET' }, {}, validateSecretValue));
  assert.match(unset.message, /^secret rabbitmqAdmin: its source, the environment variable AH_TEST_UNSET, is not set$/);
  const empty = await rejection(readSource('rabbitmqAdmin', { env: 'AH_TEST_EMPTY' }, { AH_TEST_EMPTY: '' }, validateSecretValue));
  assert.match(empty.message, /secret rabbitmqAdmin: its environment variable AH_TEST_EMPTY gave an empty value/);
});

// ---- command -----------------------------------------------------------------------------------

test('command source: stdout less one trailing newline, run without a shell and with only the given environment', async () => {
  const v = password();
  const s = await readSource('airflowDb', { command: ['printf', '%s\n', v] }, ENV, validateSecretValue);
  assert.equal(s.reveal(), v);
  // No shell: `$HOME` and `;` reach printf as they are, so the value holds them and is refused.
  const literal = await rejection(readSource('airflowDb', { command: ['printf', '%s', 'abcdefghijklmnop$HOME;x'] }, ENV, validateSecretValue));
  assert.match(literal.message, /\[secrets:charset\]/);
  // Only `env` reaches the command: a variable of this process that is not in it is unset there.
  const w = password();
  const seen = await readSource('haproxyStats', { command: ['sh', '-c', 'printf %s "$AH_ONLY_HERE"'] }, { ...ENV, AH_ONLY_HERE: w }, validateSecretValue);
  assert.equal(seen.reveal(), w);
  process.env['AH_NOT_PASSED'] = password();
  try {
    const none = await rejection(readSource('haproxyStats', { command: ['sh', '-c', 'printf %s "$AH_NOT_PASSED"'] }, ENV, validateSecretValue));
    assert.match(none.message, /gave an empty value/);
  } finally {
    delete process.env['AH_NOT_PASSED'];
  }
});

test('command source: runs in the folder it is given (the inventory\'s, for relative paths)', () =>
  inTemp(async (dir) => {
    const v = password();
    await writeFile(path.join(dir, 'db.txt'), `${v}\n`);
    const settings: SecretsSettings = { sources: { airflowDb: { command: ['cat', 'db.txt'] } }, env: ENV, cwd: dir };
    assert.equal((await readSources(settings, validateSecretValue)).airflowDb?.reveal(), v);
  }));

test('command source: a failing command names the secret, the source kind, the exit code and the stderr tail, never its argv', async () => {
  const marker = 'secret/path-ARGVMARKER-7f3a';
  const e = await rejection(
    readSource('postgresSuperuser', { command: ['sh', '-c', 'echo "first line" >&2; echo "entry $0 not found" >&2; exit 3', marker] }, ENV, validateSecretValue),
  );
  assert.match(e.message, /^secret postgresSuperuser: its command source failed: it exited with code 3; stderr: first line \| entry \*\*\* not found$/);
  assert.ok(!e.message.includes('ARGVMARKER'), e.message);
  assert.ok(!e.message.includes('sh -c'), e.message);
  assert.ok(!e.message.includes('echo'), e.message);
});

test('command source: a program that is not installed is named as such, without its path', async () => {
  const e = await rejection(readSource('airflowAdmin', { command: ['/nonexistent/ARGVMARKER-prog', 'show'] }, ENV, validateSecretValue));
  assert.match(e.message, /^secret airflowAdmin: its command source failed: its program was not found \(not installed, or not on PATH\)$/);
});

test('command source: killed after timeoutSec seconds, said so, argv absent', async () => {
  const start = Date.now();
  const e = await rejection(readSource('ftpUser', { command: ['sh', '-c', 'sleep 30', 'ARGVMARKER'], timeoutSec: 1 }, ENV, validateSecretValue));
  const took = (Date.now() - start) / 1000;
  assert.ok(took >= 0.9 && took < 5, `took ${took} s`);
  assert.match(e.message, /^secret ftpUser: its command source failed: it did not finish within 1 s and was killed$/);
  assert.ok(!e.message.includes('ARGVMARKER') && !e.message.includes('sleep'));
});

test('a sourced value is checked like a hand-edited one: rule named, value never shown', async () => {
  const cases: Array<[SecretName, string, string]> = [
    ['airflowDb', 'quote\'inside-a-long-password', 'secrets:charset'],
    ['postgresReplication', 'user@host-looking-password', 'secrets:charset'],
    ['rabbitmqAirflow', 'percent%41-interpolated-value', 'secrets:charset'],
    ['patroniRestApi', 'two\nlines-in-one-password-value', 'secrets:charset'],
    ['airflowAdmin', 'short', 'secrets:length'],
    ['erlangCookie', 'COOKIE-WITH-DASH', 'secrets:erlang-cookie'],
    ['airflowFernetKey', 'A'.repeat(44), 'secrets:fernet-key'],
  ];
  for (const [name, value, rule] of cases) {
    for (const source of [{ env: 'AH_V' }, { command: ['printf', '%s', value] }]) {
      const e = await rejection(readSource(name, source, { ...ENV, AH_V: value }, validateSecretValue));
      assert.ok(e.message.startsWith(`secret ${name}: the value from its `), e.message);
      assert.ok(e.message.includes(`[${rule}]`), `${name}: ${e.message}`);
      assert.ok(!e.message.includes(value), `${name}: the value is in ${e.message}`);
    }
  }
  // Only one trailing newline goes: a second one is part of the value, and refused.
  const e = await rejection(readSource('airflowDb', { command: ['printf', '%s\n\n', password()] }, ENV, validateSecretValue));
  assert.match(e.message, /\[secrets:charset\]/);
  const fernet = generateSecretValue('fernetKey');
  assert.equal((await readSource('airflowFernetKey', { command: ['printf', '%s\r\n', fernet] }, ENV, validateSecretValue)).reveal(), fernet);
});

test('readSources: every failing secret on one line each, all read before the error', async () => {
  const settings: SecretsSettings = {
    sources: { airflowDb: { env: 'AH_MISSING' }, haproxyStats: { command: ['false'] }, ftpUser: { env: 'AH_OK' } },
    env: { ...ENV, AH_OK: password() },
  };
  const e = await rejection(readSources(settings, validateSecretValue));
  assert.equal(
    e.message,
    '2 secrets could not be read from their sources; nothing was changed:\n' +
      '  secret airflowDb: its source, the environment variable AH_MISSING, is not set\n' +
      '  secret haproxyStats: its command source failed: it exited with code 1',
  );
});

test('stderrTail and stripTrailingNewline', () => {
  assert.equal(stderrTail('a\nb\n\nc\nd\n'), 'b | c | d');
  assert.equal(stderrTail('bad\x1b[31mcolour'), 'bad [31mcolour');
  assert.equal(stderrTail(`${'x'.repeat(400)}`).length, 300);
  assert.equal(stderrTail('no entry kv/airflow/db', ['kv/airflow/db', '-d']), 'no entry ***');
  assert.equal(stripTrailingNewline('v\n'), 'v');
  assert.equal(stripTrailingNewline('v\r\n'), 'v');
  assert.equal(stripTrailingNewline('v\n\n'), 'v\n');
  assert.equal(stripTrailingNewline('v'), 'v');
});

// ---- the secrets file with sources -------------------------------------------------------------

test('a sourced secret is never generated nor written to the file; the others are, once', () =>
  inTemp(async (dir) => {
    const db = password();
    const settings: SecretsSettings = { sources: { airflowDb: { env: 'AH_DB' }, airflowAdmin: { command: ['printf', '%s', 'Admin-Password-From-Store-1'] } }, env: { ...ENV, AH_DB: db } };
    const first = await loadOrCreateSecrets(dir, settings);
    assert.deepEqual(first.created, SECRET_NAMES.filter((n) => n !== 'airflowDb' && n !== 'airflowAdmin'));
    assert.equal(first.secrets.airflowDb.reveal(), db);
    assert.equal(first.secrets.airflowAdmin.reveal(), 'Admin-Password-From-Store-1');
    const text = await readFile(path.join(dir, SECRETS_FILE), 'utf8');
    assert.ok(!/^airflowDb:/m.test(text) && !/^airflowAdmin:/m.test(text), text);
    assert.ok(!text.includes(db));
    const again = await loadOrCreateSecrets(dir, settings);
    assert.deepEqual(again.created, []);
    for (const n of SECRET_NAMES) assert.equal(again.secrets[n].reveal(), first.secrets[n].reveal(), n);
    assert.equal(await readFile(path.join(dir, SECRETS_FILE), 'utf8'), text);
    // A lost source never makes a new value: the run stops, the file is unchanged.
    const lost = await rejection(loadOrCreateSecrets(dir, { ...settings, env: ENV }));
    assert.match(lost.message, /^secret airflowDb: its source, the environment variable AH_DB, is not set; nothing was changed$/);
    assert.equal(await readFile(path.join(dir, SECRETS_FILE), 'utf8'), text);
  }));

test('a failing source on the first run creates no state folder and no file', () =>
  inTemp(async (dir) => {
    const state = path.join(dir, 'site.state');
    await rejection(loadOrCreateSecrets(state, { sources: { airflowDb: { command: ['false'] } }, env: ENV }));
    await assert.rejects(stat(state), { code: 'ENOENT' });
  }));

test('every secret sourced: no file is created, and plan (requireSecrets) and status (readSecrets) need none', () =>
  inTemp(async (dir) => {
    const env: Record<string, string> = { ...ENV };
    const sources: Record<string, { env: string }> = {};
    for (const n of SECRET_NAMES) {
      env[`AH_${n}`] = generateSecretValue(SECRET_KINDS[n]);
      sources[n] = { env: `AH_${n}` };
    }
    const settings: SecretsSettings = { sources, env };
    const r = await loadOrCreateSecrets(dir, settings);
    assert.deepEqual(r.created, []);
    assert.deepEqual(await readdir(dir), []);
    const planned = await requireSecrets(dir, 'airflow-ha bootstrap -i site.yaml', settings);
    const read = await readSecrets(dir, settings);
    for (const n of SECRET_NAMES) {
      assert.equal(planned[n].reveal(), env[`AH_${n}`]);
      assert.equal(read?.[n].reveal(), env[`AH_${n}`]);
    }
  }));

test('plan and status never create: requireSecrets and readSecrets with sources leave no file', () =>
  inTemp(async (dir) => {
    const settings: SecretsSettings = { sources: { airflowDb: { env: 'AH_DB' } }, env: { ...ENV, AH_DB: password() } };
    const e = await rejection(requireSecrets(dir, 'airflow-ha bootstrap -i site.yaml', settings));
    assert.match(e.message, /does not exist; `airflow-ha bootstrap -i site.yaml` creates it/);
    assert.equal(await readSecrets(dir, settings), undefined);
    assert.deepEqual(await readdir(dir), []);
  }));

test('a sourced value that differs from what the hosts were set up with gives another fingerprint: the hosts are "different"', () =>
  inTemp(async (dir) => {
    const settings = (v: string): SecretsSettings => ({ sources: { rabbitmqAdmin: { env: 'AH_MQ' } }, env: { ...ENV, AH_MQ: v } });
    const before = (await loadOrCreateSecrets(dir, settings(password()))).secrets;
    const onHost = secretsFingerprint(before, 'c1');
    const after = (await loadOrCreateSecrets(dir, settings(password()))).secrets;
    assert.deepEqual(Object.fromEntries(compareFingerprints(after, 'c1', new Map([['h1', onHost]]))), { h1: 'different' });
    assert.deepEqual(Object.fromEntries(compareFingerprints(before, 'c1', new Map([['h1', onHost]]))), { h1: 'same' });
  }));

// ---- age ---------------------------------------------------------------------------------------

/** A fresh age key pair in `dir`: the identity file and its recipient (age-keygen(1)). */
function ageKey(dir: string, name: string): { identityFile: string; recipient: string } {
  const identityFile = path.join(dir, `${name}.key`);
  execFileSync('age-keygen', ['-o', identityFile], { stdio: 'ignore' });
  const recipient = execFileSync('age-keygen', ['-y', identityFile], { encoding: 'utf8' }).trim();
  return { identityFile, recipient };
}

test('age: the secrets file is written encrypted (0600, through a temp file), read back, and decrypts with age -d to the same values', () =>
  inTemp(async (dir) => {
    const key = ageKey(dir, 'op');
    const state = path.join(dir, 'site.state');
    const db = password();
    const settings: SecretsSettings = { sources: { airflowDb: { env: 'AH_DB' } }, age: { recipients: [key.recipient], identityFile: key.identityFile, timeoutSec: 30 }, env: { ...ENV, AH_DB: db } };
    const first = await loadOrCreateSecrets(state, settings);
    assert.equal(first.file, path.join(state, SECRETS_FILE_AGE));
    assert.deepEqual(await readdir(state), [SECRETS_FILE_AGE]);
    assert.equal((await stat(first.file)).mode & 0o777, 0o600);
    const cipher = await readFile(first.file, 'utf8');
    assert.match(cipher, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    for (const n of SECRET_NAMES) assert.ok(!cipher.includes(first.secrets[n].reveal()), n);
    const clear = execFileSync('age', ['-d', '-i', key.identityFile, first.file], { encoding: 'utf8' });
    for (const n of SECRET_NAMES.filter((x) => x !== 'airflowDb')) assert.ok(clear.includes(`${n}: "${first.secrets[n].reveal()}"`), n);
    assert.ok(!clear.includes('airflowDb') && !clear.includes(db));
    const again = await loadOrCreateSecrets(state, settings);
    assert.deepEqual(again.created, []);
    for (const n of SECRET_NAMES) assert.equal(again.secrets[n].reveal(), first.secrets[n].reveal(), n);
    assert.equal(await readFile(first.file, 'utf8'), cipher);
    const read = await readSecrets(state, settings);
    assert.equal(read?.haproxyStats.reveal(), first.secrets.haproxyStats.reveal());
  }));

test('age: another identity cannot decrypt: exit 2 naming the file and the identity, nothing written', () =>
  inTemp(async (dir) => {
    const key = ageKey(dir, 'op');
    const other = ageKey(dir, 'other');
    const state = path.join(dir, 'site.state');
    const age = { recipients: [key.recipient], identityFile: key.identityFile, timeoutSec: 30 };
    const { file } = await loadOrCreateSecrets(state, { age, env: ENV });
    const cipher = await readFile(file, 'utf8');
    const e = await rejection(loadOrCreateSecrets(state, { age: { ...age, identityFile: other.identityFile }, env: ENV }));
    assert.ok(e.message.startsWith(`cannot decrypt the secrets file ${file} with the identity ${other.identityFile} (secretsFile.identityFile): age --decrypt failed: it exited with code 1; stderr: `), e.message);
    assert.equal(await readFile(file, 'utf8'), cipher);
    assert.deepEqual(await readdir(state), [SECRETS_FILE_AGE]);
  }));

test('age: a value refused in the decrypted file is named by line:col of the clear text, never shown', () =>
  inTemp(async (dir) => {
    const key = ageKey(dir, 'op');
    const state = path.join(dir, 'site.state');
    await mkdir(state, { mode: 0o700 });
    const lines = SECRET_NAMES.map((n) => `${n}: "${n === 'ftpUser' ? 'bad@value-for-the-ftp-user' : generateSecretValue(SECRET_KINDS[n])}"`);
    const file = path.join(state, SECRETS_FILE_AGE);
    execFileSync('age', ['-e', '-a', '-r', key.recipient, '-o', file], { input: `${lines.join('\n')}\n` });
    await chmod(file, 0o600);
    const e = await rejection(readSecrets(state, { age: { recipients: [key.recipient], identityFile: key.identityFile, timeoutSec: 30 }, env: ENV }));
    const line = SECRET_NAMES.indexOf('ftpUser') + 1;
    assert.deepEqual(e.diagnostics.map(formatDiagnostic), [
      `${file}:${line}:10: error [secrets:charset] ftpUser: may hold only A-Z, a-z, 0-9 and . _ ~ - (no quotes, @, %, :, /, #, spaces or newlines: they would need escaping in a database URL, airflow.cfg or YAML)`,
    ]);
    assert.ok(!e.message.includes('bad@value'));
  }));

test('age: a clear secrets file beside an encrypted setting (and the other way round) is refused, nothing generated', () =>
  inTemp(async (dir) => {
    const key = ageKey(dir, 'op');
    const state = path.join(dir, 'site.state');
    const plain = await loadOrCreateSecrets(state, { env: ENV });
    const age = { recipients: [key.recipient], identityFile: key.identityFile, timeoutSec: 30 };
    const e = await rejection(loadOrCreateSecrets(state, { age, env: ENV }));
    assert.match(e.message, /^secretsFile.encryption is age but the secrets are in .*secrets\.yaml, in clear, and .*secrets\.yaml\.age does not exist; encrypt them/);
    assert.deepEqual(await readdir(state), [SECRETS_FILE]);
    // Encrypted as the message says, the clear file removed: the same secrets, from the encrypted file.
    execFileSync('age', ['--encrypt', '--armor', '-r', key.recipient, '-o', path.join(state, SECRETS_FILE_AGE), plain.file]);
    await chmod(path.join(state, SECRETS_FILE_AGE), 0o600);
    await rm(plain.file);
    const moved = await loadOrCreateSecrets(state, { age, env: ENV });
    assert.deepEqual(moved.created, []);
    for (const n of SECRET_NAMES) assert.equal(moved.secrets[n].reveal(), plain.secrets[n].reveal());
    const back = await rejection(loadOrCreateSecrets(state, { env: ENV }));
    assert.match(back.message, /secrets\.yaml\.age, age-encrypted, but the inventory does not set secretsFile.encryption: age/);
    assert.deepEqual((await readdir(state)).sort(), [SECRETS_FILE_AGE]);
  }));

test('age: missing from PATH is said so with how to install it', () =>
  inTemp(async (dir) => {
    const e = await rejection(loadOrCreateSecrets(dir, { age: { recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], identityFile: '/nonexistent', timeoutSec: 5 }, env: { PATH: dir } }));
    assert.match(e.message, /^cannot write the secrets file .*secrets\.yaml\.age: age is not installed on this machine \(Debian 12: apt-get install age/);
    assert.deepEqual(await readdir(dir), []);
  }));

// ---- inventory rules ---------------------------------------------------------------------------

const BASE = `cluster:
  name: src
  network: 10.9.0.0/24
hosts:
  - { name: h1, address: 10.9.0.11, roles: [etcd] }
`;

/** `line:col` (1-based) of the first `needle` in `text`. */
function at(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, needle);
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${(before.at(-1) as string).length + 1}`;
}

/** The formatted errors of inventory `text` (file `site.yaml`). */
function errorsOf(text: string): string[] {
  try {
    parseInventory(text, 'site.yaml');
  } catch (e) {
    assert.ok(e instanceof InputError);
    return e.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  }
  return [];
}

test('inventory: secrets and secretsFile that are right load, with their defaults', () => {
  const text = `${BASE}secrets:
  airflowDb: { env: AIRFLOW_DB_PASSWORD }
  rabbitmqAdmin: { command: [pass, show, airflow/rabbitmq-admin], timeoutSec: 120 }
secretsFile: { encryption: age, recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p], identityFile: ~/.config/age/key.txt }
`;
  const inv = parseInventory(text, 'site.yaml').inventory;
  assert.deepEqual(inv.secrets, { airflowDb: { env: 'AIRFLOW_DB_PASSWORD' }, rabbitmqAdmin: { command: ['pass', 'show', 'airflow/rabbitmq-admin'], timeoutSec: 120 } });
  assert.deepEqual(inv.secretsFile, { encryption: 'age', recipients: ['age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'], identityFile: '~/.config/age/key.txt', timeoutSec: 60 });
  assert.deepEqual(parseInventory(BASE, 'site.yaml').inventory.secretsFile, { encryption: 'none', recipients: [], timeoutSec: 60 });
});

test('inventory: an unknown secret name is an error at its file:line:column, with the name it was meant to be', () => {
  const text = `${BASE}secrets:\n  airflowDB: { env: X }\n`;
  const [e, ...rest] = errorsOf(text);
  assert.deepEqual(rest, []);
  assert.ok(e?.startsWith(`site.yaml:${at(text, 'airflowDB')}: error [schema:unrecognized_keys] secrets.airflowDB: `), e);
  assert.match(e as string, /did you mean "airflowDb"/);
});

test('inventory: secrets:source, secrets:age and the patterns, each at its file:line:column', () => {
  const text = `${BASE}secrets:
  airflowDb: { env: A, command: [pass, show, db] }
  haproxyStats: {}
  ftpUser: { command: ["", x] }
  flowerBasicAuth: { env: F, timeoutSec: 5 }
  airflowAdmin: { env: 9BAD }
  erlangCookie: { command: ["pass\\nshow"] }
secretsFile: { encryption: age, recipients: [age1notakey] }
`;
  const errors = errorsOf(text);
  const expect = [
    `site.yaml:${at(text, '{ env: A')}: error [secrets:source] secrets.airflowDb: airflowDb: give exactly one source, env: VARIABLE or command: [program, args...] (both are given)`,
    `site.yaml:${at(text, '{}')}: error [secrets:source] secrets.haproxyStats: haproxyStats: give exactly one source, env: VARIABLE or command: [program, args...]`,
    `site.yaml:${at(text, '""')}: error [secrets:source] secrets.ftpUser.command[0]: ftpUser: the command's first word is the program to run; it is empty`,
    `site.yaml:${at(text, '5 }')}: error [secrets:source] secrets.flowerBasicAuth.timeoutSec: flowerBasicAuth: timeoutSec bounds a command; an env source has none (value: 5)`,
  ];
  // The schema stage reports first and alone (the rules run on an inventory that passed it).
  assert.ok(errors.every((l) => !l.includes('[secrets:')), errors.join('\n'));
  assert.ok(errors.some((l) => l.startsWith(`site.yaml:${at(text, '9BAD')}: error [pattern:env-name] secrets.airflowAdmin.env:`)), errors.join('\n'));
  assert.ok(errors.some((l) => l.startsWith(`site.yaml:${at(text, '"pass')}: error [pattern:printable] secrets.erlangCookie.command[0]:`)), errors.join('\n'));
  assert.ok(errors.some((l) => l.startsWith(`site.yaml:${at(text, 'age1notakey')}: error [pattern:age-recipient] secretsFile.recipients[0]:`)), errors.join('\n'));
  // Without the pattern errors, the rules of secrets: and secretsFile: report.
  const ruled = text.replace('9BAD', 'GOOD').replace('["pass\\nshow"]', '[pass, show]').replace('[age1notakey]', '[]');
  assert.deepEqual(errorsOf(ruled), [
    ...expect,
    `site.yaml:${at(ruled, 'age, recipients')}: error [secrets:age] secretsFile.encryption: encryption age needs recipients: [age1...] (the public key age-keygen prints; every recipient can decrypt the file) (value: age)`,
    `site.yaml:${at(ruled, 'age, recipients')}: error [secrets:age] secretsFile.encryption: encryption age needs identityFile: the age identity (private key) file that decrypts the secrets file (value: age)`,
  ]);
});

test('inventory: recipients or identityFile without encryption age is a warning (the file is kept in clear)', () => {
  const text = `${BASE}secretsFile: { identityFile: key.txt }\n`;
  const loaded = parseInventory(text, 'site.yaml');
  assert.deepEqual(loaded.warnings.filter((w) => w.rule.startsWith('secrets:')).map(formatDiagnostic), [
    `site.yaml:${at(text, 'key.txt')}: warning [secrets:age-unused] secretsFile.identityFile: recipients and identityFile are read only with encryption: age; the secrets file is kept in clear`,
  ]);
});

test('the age file is written through a temp file: none is left behind, also when age fails', () =>
  inTemp(async (dir) => {
    const key = ageKey(dir, 'op');
    const state = path.join(dir, 's.state');
    await loadOrCreateSecrets(state, { age: { recipients: [key.recipient], identityFile: key.identityFile, timeoutSec: 30 }, env: ENV });
    const e = await rejection(loadOrCreateSecrets(path.join(dir, 'other.state'), { age: { recipients: ['age1zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'], identityFile: key.identityFile, timeoutSec: 30 }, env: ENV }));
    assert.match(e.message, /^cannot write the secrets file .*other\.state\/secrets\.yaml\.age: age --encrypt failed: it exited with code 1/);
    assert.deepEqual(await readdir(state), [SECRETS_FILE_AGE]);
    await assert.rejects(stat(path.join(dir, 'other.state')), { code: 'ENOENT' });
  }));

// ---- through the CLI ---------------------------------------------------------------------------

/** A one-host inventory on loopback (nothing listens on port 1) with `extra` appended. */
const loopbackInventory = (extra: string) =>
  ['cluster:', '  name: src-cli', '  network: 127.0.0.0/24', 'ssh:', '  port: 1', 'hosts:', '  - { name: h1, address: 127.0.0.2, roles: [etcd, haproxy] }', extra, ''].join('\n');

test('bootstrap with a failing command source: exit 2 before connecting, the secret and source named, no argv, no state written', () =>
  inTemp(async (dir) => {
    const inv = path.join(dir, 'one.yaml');
    await writeFile(inv, loopbackInventory('secrets:\n  haproxyStats: { command: [sh, -c, "echo vault sealed >&2; exit 2", ARGVMARKER] }'));
    const r = await runMain(['bootstrap', '-i', inv, '--playbook', 'demo'], { env: ENV });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const errors = r.stderr.split('\n').filter((l) => !l.includes(': warning ['));
    assert.deepEqual(errors, ['error: secret haproxyStats: its command source failed: it exited with code 2; stderr: vault sealed; nothing was changed', '']);
    assert.deepEqual(await readdir(dir), ['one.yaml']);
  }));

test('render uses a sourced value where the secret goes, and creates no secrets file', () =>
  inTemp(async (dir) => {
    const inv = path.join(dir, 'one.yaml');
    const all = SECRET_NAMES.map((n) => `  ${n}: { env: AH_${n} }`).join('\n');
    await writeFile(inv, loopbackInventory(`secrets:\n${all}`));
    const env: Record<string, string> = { ...ENV };
    for (const n of SECRET_NAMES) env[`AH_${n}`] = generateSecretValue(SECRET_KINDS[n]);
    const r = await runMain(['render', '-i', inv, '--out', path.join(dir, 'out'), '--playbook', 'demo'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /placeholder/i);
    const cfg = await readFile(path.join(dir, 'out', 'h1', 'etc', 'haproxy', 'haproxy.cfg'), 'utf8');
    assert.ok(cfg.includes(env['AH_haproxyStats'] as string), cfg);
    await assert.rejects(stat(path.join(dir, 'one.state')), { code: 'ENOENT' });
  }));

test('endpoints names where a sourced password comes from (its argv never) and the encrypted file', () =>
  inTemp(async (dir) => {
    const inv = path.join(dir, 'one.yaml');
    await writeFile(
      inv,
      loopbackInventory(
        'secrets:\n  haproxyStats: { env: STATS_PW }\n  airflowDb: { command: [pass, show, ARGVMARKER] }\nsecretsFile: { encryption: age, recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p], identityFile: key.txt }',
      ),
    );
    const r = await runMain(['endpoints', '-i', inv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HAProxy stats .* login admin, password: secret haproxyStats \(from env STATS_PW\)$/m);
    assert.match(r.stdout, /^PostgreSQL primary \(read-write\) .* password: secret airflowDb \(from command\)$/m);
    assert.match(r.stdout, /\npasswords: .*one\.state\/secrets\.yaml\.age \(mode 0600, age-encrypted; airflow-ha never prints them\), except those marked "from"\n$/);
    assert.ok(!r.stdout.includes('ARGVMARKER'));
  }));
