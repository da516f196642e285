/**
 * Bootstrap step 1 (the base system) end to end on two lab hosts, through the real CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { bootLab, cli, events, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
let adminKey: string;

before(async () => {
  lab = await bootLab('base', ['one', 'two'], [['postgresql', 'etcd'], ['rabbitmq']]);
  adminKey = path.join(lab.dir, 'admin_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops@test', '-f', adminKey]);
  const inv = parse(await readFile(lab.inventoryFile, 'utf8')) as { cluster: Record<string, unknown> };
  inv.cluster['timezone'] = 'Asia/Tehran';
  inv.cluster['admin'] = { user: 'ops', authorizedKeys: [(await readFile(`${adminKey}.pub`, 'utf8')).trim()] };
  await writeFile(lab.inventoryFile, stringify(inv));
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];

async function on(host: string, cmd: string): Promise<{ code: unknown; out: string }> {
  const r = await cli(['exec', ...inv(), '--limit', host, '--json', '--', cmd]);
  const e: Record<string, unknown> = events(r.stdout)[0] ?? {};
  return { code: e['exitCode'], out: `${String(e['stdout'] ?? '')}${String(e['stderr'] ?? '')}` };
}

test('the base step converges, then changes nothing', async () => {
  const first = await cli(['apply', ...inv(), '--playbook', 'base', '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-4000) + first.stderr);
  assert.ok(runEnd(first.stdout).hosts.every((h) => h.changed > 0));
  const second = await cli(['apply', ...inv(), '--playbook', 'base', '--json']);
  assert.equal(second.exitCode, 0, second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((h) => h.changed), [0, 0]);
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
});

test('time zone, names and the firewall table are in place', async () => {
  const tz = await on('one', 'readlink /etc/localtime; cat /etc/timezone; getent hosts two');
  assert.match(tz.out, /zoneinfo\/Asia\/Tehran/);
  assert.match(tz.out, /^Asia\/Tehran$/m);
  assert.match(tz.out, /\.12\s+two/);
  const fw = await on('one', 'nft list table inet airflow_ha');
  assert.equal(fw.code, 0, fw.out);
  assert.match(fw.out, /tcp dport 5432 accept/);
  assert.match(fw.out, /tcp dport 2379 accept/);
  const fw2 = await on('two', 'nft list table inet airflow_ha');
  assert.match(fw2.out, /tcp dport 5672 accept/);
  assert.doesNotMatch(fw2.out, /dport 5432/);
});

test('the admin account logs in by key and has passwordless sudo, and no password', async () => {
  const host = lab.loaded.inventory.hosts[0];
  assert.ok(host);
  const r = await execa(
    'ssh',
    ['-i', adminKey, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', `ops@${host.address}`, 'sudo -n true && id -un'],
    { reject: false },
  );
  assert.equal(r.exitCode, 0, String(r.stderr));
  assert.equal(String(r.stdout).trim(), 'ops');
  const shadow = await on('one', "getent shadow ops | cut -d: -f2");
  assert.match(shadow.out.trim(), /^[!*]/, 'no usable password');
});
