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
import { firewalldZone, firewallRules, firewallVars } from '../../src/components/base.js';
import { loadInventory } from '../../src/inventory/load.js';
import { AIRFLOW_ROLES, hostPortClaims, sourceWithin } from '../../src/inventory/ports.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { renderTemplate } from '../../src/tasks/template.js';
import { ROOT } from '../helpers/lab.js';
import { renderFiles } from '../../src/cli/render.js';
import { base } from '../../playbooks/base.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { tempDir } from '../helpers/local.js';

/**
 * The accept rules of a rendered nftables ruleset, by destination port: `tcp dport P accept` lines,
 * with their `ip saddr` sources (undefined: any source). Ranges are kept as written (`6000-6500`).
 */
function acceptRules(nft: string): { port: string; sources?: string[] }[] {
  const out: { port: string; sources?: string[] }[] = [];
  for (const m of nft.matchAll(/^\s*(?:ip saddr (\{ [^}]+ \}|\S+) )?tcp dport (\S+) accept$/gm)) {
    const src = m[1];
    out.push({ port: m[2] as string, ...(src ? { sources: src.replace(/[{}]/g, '').split(',').map((x) => x.trim()).filter(Boolean) } : {}) });
  }
  return out;
}

/** Whether `address` may open a TCP connection to `port` on a host with ruleset `nft` (policy drop assumed checked). */
function tcpAllowed(nft: string, port: number, address: string): boolean {
  return acceptRules(nft).some((r) => {
    const [lo, hi] = r.port.split('-').map(Number) as [number, number | undefined];
    if (port < lo || port > (hi ?? lo)) return false;
    return r.sources === undefined || r.sources.some((s) => sourceWithin(address, s));
  });
}

const nftOf = (inv: Inventory, name: string) => renderTemplate('base/firewall.nft.njk', firewallVars(inv.hosts.find((h) => h.name === name)!, inv));

test('firewall of the seed: a worker reaches RabbitMQ 5672 and HAProxy 5000/6000, but no etcd, Patroni, Erlang, RabbitMQ management or PostgreSQL port', async () => {
  const inv = await seedInventory();
  const worker = '192.168.83.131';
  const sql1 = nftOf(inv, 'sql1');
  const mq1 = nftOf(inv, 'mq1');
  const lb = nftOf(inv, 'airflow');
  for (const nft of [sql1, mq1, lb]) assert.match(nft, /type filter hook input priority 0; policy drop;/, 'the chain drops what it does not accept, UDP included');
  for (const port of [2379, 2380, 8008, 5432]) assert.equal(tcpAllowed(sql1, port, worker), false, `worker -> sql1:${port}`);
  for (const port of [4369, 25672, 15672, 6000, 35672]) assert.equal(tcpAllowed(mq1, port, worker), false, `worker -> mq1:${port}`);
  assert.equal(tcpAllowed(mq1, 5672, worker), true, 'worker -> mq1:5672 (the broker)');
  assert.equal(tcpAllowed(lb, 5000, worker), true, 'worker -> airflow:5000 (the database through HAProxy)');
  assert.equal(tcpAllowed(lb, 7000, worker), false, 'worker -> HAProxy stats');
  assert.equal(tcpAllowed(lb, 5556, worker), false, 'worker -> Flower through HAProxy');
  // The users' UI stays open to the cluster network.
  assert.equal(tcpAllowed(lb, 80, worker), true);
  // sshd: from anywhere unless cluster.firewall.ssh says otherwise.
  assert.equal(tcpAllowed(sql1, 22, '203.0.113.9'), true);
});

test('firewall matrix: etcd peers only from etcd, clients from etcd + Patroni + the DAG processor hosts, Patroni and PostgreSQL from their peers and HAProxy, Erlang only between RabbitMQ nodes', async () => {
  const inv = await seedInventory();
  const byPort = (nft: string) => new Map(acceptRules(nft).map((r) => [r.port, r.sources?.slice().sort()]));
  const sql = ['192.168.83.147', '192.168.83.148', '192.168.83.149'];
  const haproxy = ['192.168.83.129', '192.168.83.154', '192.168.83.210'];
  const mq = ['192.168.83.135', '192.168.83.136', '192.168.83.137'];
  const sql1 = byPort(nftOf(inv, 'sql1'));
  assert.deepEqual(sql1.get('2380'), sql);
  const dagProcessors = ['192.168.83.132', '192.168.83.150'];
  assert.deepEqual(sql1.get('2379'), [...sql, ...dagProcessors].sort(), 'the etcd members are the Patroni nodes in the seed; ftp and nfs2 run the DAG processor (an etcdctl lock)');
  assert.deepEqual(sql1.get('8008'), [...sql, ...haproxy].sort());
  assert.deepEqual(sql1.get('5432'), [...sql, ...haproxy].sort());
  const mq1 = byPort(nftOf(inv, 'mq1'));
  for (const p of ['4369', '25672', '6000-6500', '35672-35682']) assert.deepEqual(mq1.get(p), mq, p);
  assert.deepEqual(mq1.get('15672'), mq, 'management: the nodes only (no operator machine in the seed)');
  const airflowHosts = inv.hosts.filter((h) => h.roles.some((r) => AIRFLOW_ROLES.includes(r))).map((h) => h.address);
  assert.deepEqual(mq1.get('5672'), [...airflowHosts, ...mq].sort());
  // The worker's log server answers the webservers only.
  assert.deepEqual(byPort(nftOf(inv, 'worker1')).get('8793'), ['192.168.83.129', '192.168.83.154']);
  // Every role port of every host has a rule (ROLE_PORTS is the one source), and no rule names the whole network but the UI and FTP.
  for (const h of inv.hosts) {
    const rules = firewallRules(h, inv);
    const claimed = hostPortClaims(h, inv).filter((c) => c.role !== 'ssh').map((c) => (c.from === c.to ? String(c.from) : `${c.from}-${c.to}`));
    assert.deepEqual([...new Set(claimed)], rules.map((r) => r.range), h.name);
    for (const r of rules) if (r.sources.includes(inv.cluster.network)) assert.match(r.label, /webserverFrontend|ftp/, `${h.name} ${r.label}`);
  }
});

test('firewall: VRRP only from the keepalived peers; the operator machines (cluster.firewall.operators, lab.address) reach the endpoints; cluster.firewall.ssh limits sshd', async () => {
  const inv = await seedInventory();
  assert.match(nftOf(inv, 'airflow'), /^\s*ip saddr \{ 192\.168\.83\.154 \} ip protocol 112 accept$/m);
  assert.match(nftOf(inv, 'ftp'), /^\s*ip saddr \{ 192\.168\.83\.150 \} ip protocol 112 accept$/m);
  assert.doesNotMatch(nftOf(inv, 'mq1'), /vrrp/, 'mq1 holds no VIP');
  const withOps: Inventory = { ...inv, cluster: { ...inv.cluster, firewall: { operators: ['198.51.100.7', '192.168.83.131/32'], ssh: ['198.51.100.0/24'] } } };
  const mq1 = nftOf(withOps, 'mq1');
  assert.equal(tcpAllowed(mq1, 15672, '198.51.100.7'), true);
  assert.equal(tcpAllowed(mq1, 25672, '198.51.100.7'), false);
  assert.equal(tcpAllowed(mq1, 22, '198.51.100.99'), true);
  assert.equal(tcpAllowed(mq1, 22, '192.168.83.131'), true, 'the cluster network keeps SSH (workers to the targets, jump hosts)');
  assert.equal(tcpAllowed(mq1, 22, '203.0.113.9'), false);
  // A lab's bridge address is an operator machine: the endpoints answer it.
  const lab = await loadInventory(path.join(ROOT, 'inventory', 'lab.yaml'));
  const labLb = lab.inventory.hosts.find((h) => h.roles.includes('haproxy'))!;
  const labNft = nftOf(lab.inventory, labLb.name);
  for (const port of [80, 5556, 7000, 5000, 6000]) assert.equal(tcpAllowed(labNft, port, lab.inventory.lab!.address), true, `lab address -> ${port}`);
  const zone = firewalldZone(inv.hosts.find((h) => h.name === 'mq1')!, withOps);
  assert.match(zone, /<source address="198\.51\.100\.7"\/>/, 'an operator outside the network joins the zone');
  assert.doesNotMatch(zone, /<source address="192\.168\.83\.131\/32"\/>/, 'one inside the network is already in it');
});

test('nft -c accepts the firewall of every host of the seed and lab inventories, with and without operators and SSH sources', async () => {
  const seed = await seedInventory();
  const lab = (await loadInventory(path.join(ROOT, 'inventory', 'lab.yaml'))).inventory;
  const withOps: Inventory = { ...seed, cluster: { ...seed.cluster, firewall: { operators: ['198.51.100.7', '10.9.0.0/16'], ssh: ['198.51.100.0/24', '0.0.0.0/0'] } } };
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    for (const inv of [seed, lab, withOps]) {
      for (const h of inv.hosts) {
        const p = path.join(dir, `${h.name}.nft`);
        await writeFile(p, nftOf(inv, h.name));
        execFileSync('nft', ['-c', '-f', p], { stdio: 'pipe' });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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

test('firewalld zone: the cluster network as source, sshd first, VRRP and each role port only from their clients (rich rules)', async () => {
  const inv = await seedInventory();
  const host = (n: string) => inv.hosts.find((h) => h.name === n)!;
  const rich = (src: string, port: string) => new RegExp(`<rule family="ipv4"><source address="${src.replace(/\./g, '\\.')}"/><port port="${port}" protocol="tcp"/><accept/></rule>`);
  const airflow = firewalldZone(host('airflow'), inv);
  assert.match(airflow, /<source address="192\.168\.83\.0\/24"\/>/);
  assert.match(airflow, /<port port="22" protocol="tcp"\/>[\s\S]*<rule family="ipv4"><source address="192\.168\.83\.154"\/><protocol value="vrrp"\/><accept\/><\/rule>/);
  assert.doesNotMatch(airflow, /^ {2}<port port="(5000|6000|7000|8080|5555)"/m, 'no role port open to the whole zone');
  assert.match(airflow, rich('192.168.83.131', '5000'), 'the worker reaches the database through HAProxy');
  assert.match(airflow, rich('192.168.83.0/24', '80'), 'the UI answers the cluster network');
  assert.doesNotMatch(airflow, rich('192.168.83.131', '7000'));
  const sql1 = firewalldZone(host('sql1'), inv);
  assert.doesNotMatch(sql1, /source address="192\.168\.83\.131"/, 'nothing on sql1 for the worker');
  const mq1 = firewalldZone(host('mq1'), inv);
  assert.doesNotMatch(mq1, /vrrp/, 'mq1 holds no VIP');
  assert.match(mq1, rich('192.168.83.136', '6000-6500'));
  assert.match(mq1, rich('192.168.83.131', '5672'));
  assert.doesNotMatch(mq1, rich('192.168.83.131', '15672'));
  // A host whose sshd listens elsewhere keeps it reachable from the cluster network.
  const moved = firewalldZone({ ...host('mq1'), ssh: { port: 2222 } }, inv);
  assert.match(moved, /<port port="2222" protocol="tcp"\/>/);
  assert.doesNotMatch(moved, /<port port="22" /);
});
