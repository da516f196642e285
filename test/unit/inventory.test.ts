import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, InputError } from '../../src/core/errors.js';
import { loadInventory, parseInventory } from '../../src/inventory/load.js';
import { canonicalCidr, formatIpv4, inNetwork, isReservedInNetwork, parseCidr, parseIpv4 } from '../../src/inventory/net.js';
import { formatPath, hostPortClaims, isTimeZone, jumpHostName, suggest } from '../../src/inventory/rules.js';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/versions.js';
import type { Role } from '../../src/inventory/schema.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const seed = path.join(repo, 'inventory/seed-ha.yaml');
const lab = path.join(repo, 'inventory/lab.yaml');

const count = (roles: readonly Role[][], role: Role) => roles.filter((r) => r.includes(role)).length;

/**
 * The warnings of the committed inventories: the seed's rendering pins Airflow 2.9.0 (the upgrade
 * source), past its end of life, whose Celery queues are classic queues; the lab runs the default
 * Airflow 3, and its DAGs are synced (no NFS server in a container), so no host holds its nfs VIP.
 */
const WARNINGS: Record<string, string[]> = {
  [seed]: ['airflow:end-of-life', 'broker:node-loss'],
  [lab]: ['vip:keepalived'],
};

for (const file of [seed, lab]) {
  test(`${path.basename(file)} loads with no error, and only the warnings it is known for`, async () => {
    const loaded = await loadInventory(file, { requiredRoles: ['etcd', 'postgresql', 'haproxy', 'rabbitmq', 'scheduler', 'webserver', 'worker', 'nfs'], playbook: 'bootstrap' });
    assert.deepEqual(loaded.warnings.map((w) => w.rule), WARNINGS[file]);
    const inv = loaded.inventory;
    const roles = inv.hosts.map((h) => h.roles);
    assert.equal(inv.hosts.length, 13);
    assert.equal(count(roles, 'etcd'), 3);
    assert.equal(count(roles, 'postgresql'), 3);
    assert.equal(count(roles, 'rabbitmq'), 3);
    assert.equal(count(roles, 'haproxy'), 2);
    assert.equal(count(roles, 'scheduler'), 2);
    assert.equal(count(roles, 'webserver'), 2);
    assert.equal(count(roles, 'nfs'), 2);
    assert.equal(count(roles, 'worker'), 1);
    assert.deepEqual(
      inv.cluster.vips.map((v) => [v.name, v.role, v.routerId]),
      [
        ['airflow-vip', 'haproxy', 51],
        ['nfs-vip', 'nfs', 52],
      ],
    );
    // Defaults applied.
    assert.equal(inv.cluster.ports.haproxyLeader, 5000);
    assert.equal(inv.cluster.ports.haproxyReplica, 6000);
    assert.equal(inv.cluster.ports.haproxyStats, 7000);
    assert.equal(inv.cluster.versions.airflow, file === seed ? '2.9.0' : AIRFLOW_3_NEWEST, 'the seed pins 2.9.0; the lab takes the default, the newest Airflow 3');
    // Paths.
    assert.equal(loaded.file, file);
    assert.equal(loaded.dir, path.join(repo, 'inventory'));
    assert.equal(loaded.stateDir, file.replace(/\.yaml$/, '.state'));
  });
}

test('seed-ha.yaml keeps the customer design: VIPs .210 and .220, VM1 at .129', async () => {
  const { inventory, posOf } = await loadInventory(seed);
  assert.equal(inventory.cluster.network, '192.168.83.0/24');
  assert.deepEqual(inventory.cluster.vips.map((v) => v.address), ['192.168.83.210', '192.168.83.220']);
  assert.equal(inventory.hosts[0]?.name, 'airflow');
  assert.equal(inventory.hosts[0]?.address, '192.168.83.129');
  assert.equal(inventory.cluster.timezone, 'Asia/Tehran');
  // posOf: a flow mapping entry, a block mapping entry, and a fallback to the nearest parent.
  const text = readFileSync(seed, 'utf8').split('\n');
  const at = posOf(['hosts', 3, 'address']);
  assert.equal(at.file, seed);
  assert.equal(text[at.line - 1]!.slice(at.col - 1, at.col - 1 + '192.168.83.132'.length), '192.168.83.132');
  const q = posOf(['hosts', 5, 'queues']);
  assert.match(text[q.line - 1]!.slice(q.col - 1), /^\[default\]/);
  const missing = posOf(['hosts', 3, 'ssh', 'port']);
  assert.deepEqual(missing, posOf(['hosts', 3]));
});

test('a required role nobody has is an error that names the role and the playbook', () => {
  const text = readFileSync(lab, 'utf8');
  assert.throws(
    () => parseInventory(text, 'lab.yaml', { requiredRoles: ['etcd', 'triggerer'], playbook: 'bootstrap' }),
    (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.equal(err.exitCode, 2);
      assert.equal(err.message, 'inventory lab.yaml has 1 error(s)');
      assert.equal(err.diagnostics[0]?.rule, 'role:required');
      assert.match(err.diagnostics[0]!.message, /no host has role triggerer, which playbook bootstrap needs/);
      return true;
    },
  );
});

test('state folder: .yml and upper-case extensions are stripped too', () => {
  const text = readFileSync(lab, 'utf8');
  assert.equal(parseInventory(text, '/srv/site/prod.yml').stateDir, '/srv/site/prod.state');
  assert.equal(parseInventory(text, '/srv/site/prod.YAML').stateDir, '/srv/site/prod.state');
});

test('a missing inventory file is bad input, not a crash', async () => {
  await assert.rejects(loadInventory('/nonexistent/inventory.yaml'), (err: unknown) => {
    assert.ok(err instanceof InputError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /cannot read inventory \/nonexistent\/inventory.yaml: no such file/);
    return true;
  });
});

test('all errors of a file are reported at once, errors before warnings, in file order', () => {
  const text = [
    'cluster:',
    '  name: multi',
    '  network: 10.1.0.0/24',
    'hosts:',
    '  - { name: a, address: 10.1.0.5, roles: [etcd] }',
    '  - { name: a, address: 10.1.0.5, roles: [worker] }',
    '  - { name: c, address: 10.2.0.7, roles: [etcd] }',
    '',
  ].join('\n');
  assert.throws(
    () => parseInventory(text, 'multi.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.deepEqual(
        err.diagnostics.map((d) => `${d.severity} ${d.pos.line}:${d.pos.col} ${d.rule}`),
        [
          'error 5:43 quorum:etcd',
          'error 6:13 host:unique-name',
          'error 6:25 host:unique-address',
          'error 7:25 net:outside-network',
          'warning 6:5 worker:queues',
        ],
      );
      assert.equal(err.message, 'inventory multi.yaml has 4 error(s)');
      return true;
    },
  );
});

test('an explicit top-level jump to an inventory host is fine; that host is reached directly', () => {
  const text = readFileSync(lab, 'utf8').replace('ssh:\n  user: root\n', 'ssh:\n  user: root\n  jump: card1\n');
  assert.match(text, /jump: card1/);
  assert.deepEqual(parseInventory(text, 'lab.yaml').warnings.map((w) => w.rule), WARNINGS[lab]);
});

test('a jump written as user@address or address:port is not an inventory host', () => {
  assert.equal(jumpHostName('bastion'), 'bastion');
  assert.equal(jumpHostName('ops@bastion'), undefined);
  assert.equal(jumpHostName('10.0.0.1'), undefined);
  assert.equal(jumpHostName('bastion:2222'), undefined);
});

test('ports a host listens on: sshd, then its roles', async () => {
  const { inventory } = await loadInventory(seed);
  const airflow = inventory.hosts.find((h) => h.name === 'airflow')!;
  const claims = hostPortClaims(airflow, inventory).map((c) => (c.from === c.to ? `${c.role}:${c.from}` : `${c.role}:${c.from}-${c.to}`));
  assert.deepEqual(claims, ['ssh:22', 'scheduler:8794', 'webserver:8080', 'haproxy:5000', 'haproxy:6000', 'haproxy:7000', 'haproxy:80', 'haproxy:5556', 'flower:5555']);
  const mq = inventory.hosts.find((h) => h.name === 'mq1')!;
  assert.deepEqual(
    hostPortClaims(mq, inventory).map((c) => `${c.label}:${c.from}-${c.to}`),
    ['sshd:22-22', 'rabbitmqAmqp:5672-5672', 'rabbitmqManagement:15672-15672', 'rabbitmqDist:25672-25672', 'epmd:4369-4369', 'stream replication range:6000-6500', 'CLI tools distribution range:35672-35682'],
  );
});

test('IPv4 helpers', () => {
  assert.equal(parseIpv4('192.168.83.129'), 0xc0a85381);
  assert.equal(parseIpv4('10.0.0.256'), undefined);
  assert.equal(parseIpv4('10.0.0'), undefined);
  assert.equal(parseIpv4('10.0.0.01'), undefined);
  assert.equal(formatIpv4(0xc0a85381), '192.168.83.129');
  const net = parseCidr('10.20.0.7/24')!;
  assert.equal(canonicalCidr(net), '10.20.0.0/24');
  assert.equal(formatIpv4(net.broadcast), '10.20.0.255');
  assert.equal(inNetwork(parseIpv4('10.20.0.254')!, net), true);
  assert.equal(inNetwork(parseIpv4('10.20.1.1')!, net), false);
  assert.equal(isReservedInNetwork(parseIpv4('10.20.0.0')!, net), true);
  assert.equal(isReservedInNetwork(parseIpv4('10.20.0.255')!, net), true);
  assert.equal(isReservedInNetwork(parseIpv4('10.20.0.1')!, net), false);
  const p2p = parseCidr('10.9.0.0/31')!;
  assert.equal(isReservedInNetwork(p2p.network, p2p), false);
  assert.equal(parseCidr('0.0.0.0/0')?.broadcast, 0xffffffff);
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
});

test('paths and suggestions', () => {
  assert.equal(formatPath(['hosts', 3, 'address']), 'hosts[3].address');
  assert.equal(formatPath([]), '(document)');
  assert.equal(formatPath(['cluster', 'packages', 'mirrors', 'deb.debian.org']), 'cluster.packages.mirrors["deb.debian.org"]');
  assert.equal(suggest('adress', ['name', 'address', 'roles']), 'address');
  assert.equal(suggest('router_id', ['routerId', 'role']), 'routerId');
  assert.equal(suggest('qeueus', ['queues', 'vars']), 'queues');
  assert.equal(suggest('bogus', ['name', 'address', 'roles']), undefined);
});

test('isTimeZone: the names of the tz database, zones and links, spelt exactly; ICU accepts every one', () => {
  // Every name this runtime's ICU knows is in the tz database snapshot.
  assert.deepEqual(Intl.supportedValuesOf('timeZone').filter((tz) => !isTimeZone(tz)), []);
  for (const tz of ['UTC', 'Etc/UTC', 'GMT', 'Asia/Tehran', 'Asia/Calcutta', 'Asia/Kolkata', 'Europe/Kyiv', 'US/Pacific']) {
    assert.equal(isTimeZone(tz), true, tz);
    assert.doesNotThrow(() => new Intl.DateTimeFormat('en-US', { timeZone: tz }), tz);
  }
  // ICU ignores case, the hosts' /usr/share/zoneinfo does not: refused here.
  for (const tz of ['utc', 'asia/tehran', 'ASIA/TEHRAN', 'Europe/berlin']) {
    assert.doesNotThrow(() => new Intl.DateTimeFormat('en-US', { timeZone: tz }), tz);
    assert.equal(isTimeZone(tz), false, tz);
  }
  for (const tz of ['Asia/Teheran', 'Mars/Olympus', '', '+03:30', 'Asia/']) assert.equal(isTimeZone(tz), false, tz);
});
