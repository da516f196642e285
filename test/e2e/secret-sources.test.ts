/**
 * Secrets from the site's store end to end on one lab host: the HAProxy stats password from a
 * command (`cat` of a file beside the inventory, run in the inventory's folder), the other secrets
 * in an age-encrypted secrets file; a second run changes nothing; a source that now gives another
 * value is refused (exit 2, the secret named, nothing on the host changed); plan works from the
 * encrypted file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { generateSecretValue, SECRETS_FILE_AGE } from '../../src/inventory/secrets.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
let identityFile: string;
const statsFile = () => path.join(lab.dir, 'stats-password.txt');

before(async () => {
  lab = await bootLab('src', ['s1'], [['etcd']]);
  identityFile = path.join(lab.dir, 'age.key');
  execFileSync('age-keygen', ['-o', identityFile], { stdio: 'ignore' });
  const recipient = execFileSync('age-keygen', ['-y', identityFile], { encoding: 'utf8' }).trim();
  const inventory = parse(await readFile(lab.inventoryFile, 'utf8')) as Record<string, unknown>;
  inventory['secrets'] = { haproxyStats: { command: ['cat', 'stats-password.txt'], timeoutSec: 10 } };
  inventory['secretsFile'] = { encryption: 'age', recipients: [recipient], identityFile: 'age.key' };
  await writeFile(lab.inventoryFile, `# end-to-end test lab: secrets from a command, the file age-encrypted\n${stringify(inventory)}`);
  await writeFile(statsFile(), `${generateSecretValue('password')}\n`, { mode: 0o600 });
});

after(async () => {
  await tearDown(lab);
});

const inv = () => ['-i', lab.inventoryFile];
const demo = ['--playbook', 'demo'];
const FINGERPRINT = '/etc/airflow-ha/secrets.fingerprint';

async function on(cmd: string): Promise<string> {
  const r = await onHost(lab.inventoryFile, 's1', cmd);
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** sha256 of haproxy.cfg's `stats auth` line and of the fingerprint file, with their mtimes. */
const hostState = () => on(`grep "stats auth" /etc/haproxy/haproxy.cfg | sha256sum | cut -c1-64; sha256sum ${FINGERPRINT} | cut -c1-64; stat -c '%.9Y %n' /etc/haproxy/haproxy.cfg ${FINGERPRINT}`);

test('apply with the stats password from a command and the secrets file age-encrypted; the second run changes nothing', async () => {
  const first = await cli(['apply', ...inv(), ...demo, '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-3000) + first.stderr);
  assert.deepEqual(events(first.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['absent', 'written']);

  // The state folder holds the encrypted file only; it decrypts to every secret but the sourced one.
  const state = await readdir(lab.loaded.stateDir);
  assert.ok(state.includes(SECRETS_FILE_AGE), state.join(' '));
  assert.ok(!state.includes('secrets.yaml'), state.join(' '));
  const encrypted = path.join(lab.loaded.stateDir, SECRETS_FILE_AGE);
  assert.match(await readFile(encrypted, 'utf8'), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  const clear = execFileSync('age', ['-d', '-i', identityFile, encrypted], { encoding: 'utf8' });
  assert.match(clear, /^airflowDb: "/m);
  assert.doesNotMatch(clear, /haproxyStats/);

  // The host got the command's value: exec masks it (it knows the sourced secret), and its hash matches.
  const pw = (await readFile(statsFile(), 'utf8')).trim();
  assert.match(await on('grep "stats auth" /etc/haproxy/haproxy.cfg'), /^ {4}stats auth admin:\*\*\*$/m);
  const want = createHash('sha256').update(`    stats auth admin:${pw}\n`).digest('hex');
  assert.equal((await hostState()).split('\n')[0], want);
  for (const text of [first.stdout, first.stderr, await readFile(path.join(lab.loaded.stateDir, 'journal.jsonl'), 'utf8')]) {
    assert.ok(!text.includes(pw), 'the sourced value is printed or journaled');
    assert.ok(!text.includes('stats-password.txt'), 'the command is printed or journaled');
  }

  const again = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.map((h) => h.changed), [0]);
  assert.deepEqual(events(again.stdout).filter((e) => e.type === 'fingerprint').map((e) => e['status']), ['same']);
});

test('a source that now gives another value is refused before any change, naming the secret; plan reads the encrypted file', async () => {
  const before = await hostState();
  const original = await readFile(statsFile(), 'utf8');
  await writeFile(statsFile(), `${generateSecretValue('password')}\n`);
  const refused = await cli(['apply', ...inv(), ...demo, '--json']);
  assert.equal(refused.exitCode, 2, refused.stdout.slice(-3000) + refused.stderr);
  const error = String(runEnd(refused.stdout).error);
  assert.match(error, /1 host\(s\) hold a different secrets fingerprint in \/etc\/airflow-ha\/secrets\.fingerprint: s1; nothing was changed/);
  assert.match(error, /This secret comes from a source, which may now give another value than the hosts were set up with: haproxyStats \(command\); no secret with a source is ever generated/);
  assert.ok(!events(refused.stdout).some((e) => e.type === 'step_start'), 'no step ran');
  assert.equal(await hostState(), before, 'nothing on the host changed');

  // The store gives the old value again: plan (from the encrypted file) sees nothing to do.
  await writeFile(statsFile(), original);
  const plan = await cli(['plan', ...inv(), ...demo, '--json']);
  assert.equal(plan.exitCode, 0, plan.stderr);
  assert.deepEqual(runEnd(plan.stdout).hosts.map((h) => h.changed), [0]);
  assert.equal(await hostState(), before);
});
