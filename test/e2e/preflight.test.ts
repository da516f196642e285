/**
 * The preflight end to end on two lab hosts (systemd containers on their own bridge, booted here):
 * an inventory in dags.mode nfs on this lab's kernel, which has no NFS, is refused by `bootstrap`
 * with exit 2 before any host changed; a pinned version the repositories do not offer is shown by
 * `plan` and refused by `bootstrap`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { bootLab, cli, events, runEnd, type TestLab } from '../helpers/lab.js';

let lab: TestLab;
const HOSTS = ['pf1', 'pf2'];
// What bootstrap requires (etcd, postgresql, haproxy, rabbitmq, and with Airflow hosts a scheduler and a
// worker), both hosts nfs and Airflow hosts.
const ROLES = [['etcd', 'postgresql', 'haproxy', 'nfs', 'scheduler'], ['rabbitmq', 'nfs', 'dag_processor', 'worker']];

before(async () => {
  lab = await bootLab('pf', HOSTS, ROLES, (net) => ({
    dags: { mode: 'nfs' },
    vips: [{ name: 'nfs-vip', address: `${net}.220`, role: 'nfs', routerId: 72 }],
  }));
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];

/**
 * Every file on a host whose mtime is newer than the marker `/run/ah-pf-mark`, outside what the
 * login itself writes (/var/log: journal, wtmp, lastlog) and the kernel's and runtime file systems;
 * plus the mtimes of a few files a bootstrap writes first, to compare before and after.
 */
const SNAPSHOT = [
  'find / -xdev -newer /run/ah-pf-mark -not -path "/proc/*" -not -path "/sys/*" -not -path "/dev/*" -not -path /run -not -path "/run/*" -not -path "/var/log/*" -not -path "/tmp/*" -not -path "/var/tmp/*" | sort',
  'echo ---',
  'stat -c "%n %Y" /etc /etc/hosts /etc/hostname /etc/apt/sources.list.d /var/lib/dpkg/status /etc/passwd /etc/group /etc/systemd/system /opt /root 2>&1',
].join('; ');

async function snapshot(): Promise<Record<string, string>> {
  const r = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', SNAPSHOT]);
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  return Object.fromEntries(events(r.stdout).map((e) => [String(e['host']), String(e['stdout'])]));
}

test('dags.mode nfs on a kernel without NFS: bootstrap exits 2 naming every NFS host and the fix, and no host changed', async () => {
  const mark = await cli(['exec', ...inv(), '--limit', 'all', '--accept-new-host-keys', '--', 'sleep 1.1; touch /run/ah-pf-mark; sleep 1.1']);
  assert.equal(mark.exitCode, 0, mark.stdout + mark.stderr);
  const before = await snapshot();
  for (const h of HOSTS) assert.match(before[h] ?? '', /^---\n/, `${h}: nothing newer than the marker before the run:\n${before[h]}`);

  const json = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(json.exitCode, 2, json.stdout.slice(-3000) + json.stderr);
  const ev = events(json.stdout);
  const refusals = ev.filter((e) => e.type === 'preflight' && e['severity'] === 'refuse');
  assert.deepEqual(refusals.map((e) => `${String(e['host'])} ${String(e['rule'])}`).sort(), ['pf1 nfs:client', 'pf1 nfs:server', 'pf2 nfs:client', 'pf2 nfs:server']);
  assert.ok(refusals.every((e) => /cluster\.dags\.mode: sync/.test(String(e['fix']))));
  assert.equal(ev.filter((e) => e.type === 'step_start').length, 0, 'no step ran');
  assert.equal(runEnd(json.stdout).exitCode, 2);

  // The plain output: one screen naming each refused host, what and the fix.
  const plain = await cli(['bootstrap', ...inv()]);
  assert.equal(plain.exitCode, 2);
  const out = plain.stdout + plain.stderr;
  assert.match(out, /preflight refused the run on 2 host\(s\) \(pf1, pf2\); nothing was changed/);
  for (const h of HOSTS) assert.match(out, new RegExp(`${h}: \\[nfs:server\\] dags\\.mode nfs needs an NFS server on this nfs host, but this container's kernel .* has no nfsd`));
  assert.match(out, /fix: set cluster\.dags\.mode: sync/);
  assert.ok(out.split('\n').length < 40, `one screen:\n${out}`);

  // No lock was taken (the lock status command reads it) and no file moved on any host.
  const lock = await cli(['lock', 'status', ...inv()]);
  assert.equal(lock.exitCode, 0, lock.stdout + lock.stderr);
  assert.deepEqual(await snapshot(), before);
});

test('a pinned version no repository offers: plan shows it, bootstrap refuses it', async () => {
  // The same lab in mode sync (no NFS needed) with etcd pinned to a version of a supported series
  // (validate accepts it) that Debian does not have.
  const doc = parseDocument(await readFile(lab.inventoryFile, 'utf8'));
  doc.setIn(['cluster', 'dags'], doc.createNode({ mode: 'sync', source: './dags' }));
  doc.setIn(['cluster', 'vips'], doc.createNode([]));
  doc.setIn(['cluster', 'versions'], doc.createNode({ postgresql: '15', airflow: '2.9.0', etcd: '3.6.99' }));
  await writeFile(lab.inventoryFile, doc.toString());
  await mkdir(path.join(lab.dir, 'dags'), { recursive: true });
  await writeFile(path.join(lab.dir, 'dags', 'hello.py'), 'x = 1\n');

  const plan = await cli(['plan', ...inv(), '--json']);
  const found = events(plan.stdout).filter((e) => e.type === 'preflight');
  const pins = found.filter((e) => e['rule'] === 'package:version');
  assert.deepEqual(pins.map((e) => `${String(e['host'])} ${String(e['severity'])}`), ['pf1 refuse', 'pf1 refuse'], plan.stdout.slice(-3000) + plan.stderr);
  assert.match(String(pins[0]?.['message']), /^etcd-server 3\.6\.99 \(cluster\.versions\.etcd\) is not offered by the repositories configured on this host \(offered: 3\.4\.\d+/);
  assert.equal(found.filter((e) => e['severity'] === 'refuse' && e['rule'] !== 'package:version').length, 0, JSON.stringify(found));
  assert.equal(plan.exitCode, 2, 'plan shows the plan, then exits 2 for the refusal');
  assert.ok(events(plan.stdout).some((e) => e.type === 'step_start'), 'plan still shows what it would change');

  const boot = await cli(['bootstrap', ...inv()]);
  assert.equal(boot.exitCode, 2, boot.stdout.slice(-3000) + boot.stderr);
  assert.match(boot.stdout + boot.stderr, /pf1: \[package:version\] etcd-client 3\.6\.99 \(cluster\.versions\.etcd\) is not offered/);
  assert.match(boot.stdout + boot.stderr, /fix: set cluster\.versions\.etcd to an offered version/);
  assert.doesNotMatch(boot.stdout, /^== /m, 'no step ran');
});
