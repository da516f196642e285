/**
 * The base step's rendered files for the seed layout: golden files; the Debian firewall accepted by
 * `nft -c`, the Rocky/RHEL firewalld zone well-formed XML (`xmllint`) with the elements
 * firewalld.zone(5) defines.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firewalldZone, firewallPorts } from '../../src/components/base.js';
import { renderFiles } from '../../src/cli/render.js';
import { base } from '../../playbooks/base.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { tempDir } from '../helpers/local.js';

test('firewall ports per role: the seed sql1 opens etcd and PostgreSQL ports, never sshd', async () => {
  const inv = await seedInventory();
  const sql1 = inv.hosts.find((h) => h.name === 'sql1');
  assert.ok(sql1);
  assert.deepEqual(firewallPorts(sql1, inv).map((p) => p.range), ['5432', '8008', '2379', '2380']);
  const mq1 = inv.hosts.find((h) => h.name === 'mq1');
  assert.ok(mq1);
  assert.ok(firewallPorts(mq1, inv).some((p) => p.range === '6000-6500'));
});

test('golden: base files of seed hosts sql1 and mq1 on Debian (nft accepts the firewall) and on RHEL (firewalld zone)', async () => {
  const inv = await seedInventory();
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const pick = (family: 'debian' | 'rhel') => renderFiles(base, inv, fixedSecrets, family).filter((x) => x.host === 'sql1' || x.host === 'mq1');
    for (const f of pick('debian')) {
      await assertGolden(`base/${f.host}${f.path}`, f.content);
      if (f.path.endsWith('.nft')) {
        const p = path.join(dir, `${f.host}.nft`);
        await writeFile(p, f.content);
        execFileSync('nft', ['-c', '-f', p], { stdio: 'pipe' });
      }
    }
    const rhel = pick('rhel');
    assert.ok(!rhel.some((f) => f.path.startsWith('/etc/airflow-ha/')), 'no nftables table on RHEL: firewalld is the firewall');
    // The other files are the same on both families.
    for (const f of rhel.filter((x) => x.path.startsWith('/etc/firewalld/'))) {
      await assertGolden(`base/rhel/${f.host}${f.path}`, f.content);
      if (f.path.endsWith('.xml')) {
        const p = path.join(dir, `${f.host}.xml`);
        await writeFile(p, f.content);
        execFileSync('xmllint', ['--noout', p], { stdio: 'pipe' });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('firewalld zone: the cluster network as source, sshd first, VRRP only on keepalived hosts, every role port', async () => {
  const inv = await seedInventory();
  const host = (n: string) => inv.hosts.find((h) => h.name === n)!;
  const airflow = firewalldZone(host('airflow'), inv);
  assert.match(airflow, /<source address="192\.168\.83\.0\/24"\/>/);
  assert.match(airflow, /<port port="22" protocol="tcp"\/>[\s\S]*<protocol value="vrrp"\/>/);
  for (const p of ['5000', '6000', '7000', '80', '8080', '5555']) assert.match(airflow, new RegExp(`<port port="${p}" protocol="tcp"/>`));
  const mq1 = firewalldZone(host('mq1'), inv);
  assert.doesNotMatch(mq1, /vrrp/, 'mq1 holds no VIP');
  assert.match(mq1, /<port port="6000-6500" protocol="tcp"\/>/);
  // A host whose sshd listens elsewhere keeps it reachable from the cluster network.
  const moved = firewalldZone({ ...host('mq1'), ssh: { port: 2222 } }, inv);
  assert.match(moved, /<port port="2222" protocol="tcp"\/>/);
  assert.doesNotMatch(moved, /<port port="22" /);
});
