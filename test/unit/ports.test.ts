/**
 * The network matrix (src/inventory/ports.ts): who may reach which port, and the README's table of it
 * ("Network exposure"), which must say exactly what the matrix says.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { AIRFLOW_ROLES, clientSources, HOST_PORTS, ROLE_PORTS, sourceWithin, type PortClient, type PortSpec } from '../../src/inventory/ports.js';
import { Ports, ROLES } from '../../src/inventory/schema.js';
import { seedInventory } from '../helpers/golden.js';
import { ROOT } from '../helpers/lab.js';

/** The clients of a port as the README names them: `Airflow hosts` for every Airflow role. */
function clientsText(clients: readonly PortClient[]): string {
  const airflow = AIRFLOW_ROLES.every((r) => clients.includes(r));
  const rest = clients.filter((c) => !(airflow && (AIRFLOW_ROLES as readonly string[]).includes(c)));
  const names = rest.map((c) => (c === 'network' ? 'cluster network' : c === 'operator' ? 'operator machines' : c === 'dag-processor' ? 'DAG processor hosts' : c === 'airflow-metadata' ? 'Airflow hosts (Airflow 3: not the worker-only ones)' : c));
  return [...(airflow ? ['Airflow hosts'] : []), ...names].join(', ');
}

/** One README table row per role port: `| role | port | clients | why |`, default port numbers; the ports of every host last. */
function matrixRows(): string[] {
  const ports = Ports.parse({});
  const row = (role: string, s: PortSpec) => {
    const [from, to] = s.range(ports);
    const port = `${from === to ? from : `${from}-${to}`}${s.setting ? ` (\`${s.setting}\`)` : ''}`;
    return `| ${role} | ${port} | ${clientsText(s.clients)} | ${s.why} |`;
  };
  return [...ROLES.flatMap((role) => ROLE_PORTS[role].map((s) => row(role, s))), ...HOST_PORTS.map((s) => row('every host', s))];
}

test('README "Network exposure" has the matrix row for row', async () => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Network exposure'));
  const table = section.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| role ') && !l.startsWith('|--')).slice(0, matrixRows().length);
  if (process.env['PRINT_MATRIX'] === '1') process.stdout.write(`${matrixRows().join('\n')}\n`);
  assert.deepEqual(table, matrixRows());
});

test('matrix: no worker-facing port for etcd, Patroni, PostgreSQL, Erlang or RabbitMQ management; every client list resolves to sources', async () => {
  const inv = await seedInventory();
  const worker = inv.hosts.find((h) => h.name === 'worker1')!.address;
  const forbidden = [...ROLE_PORTS.etcd, ...ROLE_PORTS.postgresql, ...ROLE_PORTS.rabbitmq.filter((s) => s.setting !== 'rabbitmqAmqp' && s.setting !== 'rabbitmqAmqps')];
  for (const s of forbidden) {
    assert.ok(!s.clients.includes('worker') && !s.clients.includes('network'), s.label);
    assert.ok(!clientSources(inv, s.clients).some((src) => sourceWithin(worker, src)), s.label);
  }
  for (const s of [ROLE_PORTS.rabbitmq[0]!, ROLE_PORTS.rabbitmq[1]!, ROLE_PORTS.haproxy[0]!]) assert.ok(clientSources(inv, s.clients).includes(worker), s.label);
  for (const role of ROLES) for (const s of ROLE_PORTS[role]) assert.ok(s.clients.length > 0 && s.why.length > 0, `${role} ${s.label}`);
});

test('clientSources: host and VIP addresses of the roles, no duplicates, nothing another element contains', async () => {
  const inv = await seedInventory();
  assert.deepEqual(clientSources(inv, ['haproxy', 'haproxy']), ['192.168.83.129', '192.168.83.154', '192.168.83.210']);
  assert.deepEqual(clientSources(inv, ['haproxy', 'network']), ['192.168.83.0/24']);
  const ops = { ...inv, cluster: { ...inv.cluster, firewall: { operators: ['198.51.100.7', '198.51.100.0/24', '10.1.2.3/32'] } } };
  assert.deepEqual(clientSources(ops, ['operator']), ['198.51.100.0/24', '10.1.2.3']);
});

test('etcd client port: open to the DAG processor hosts (their lock is an etcdctl lock), the schedulers when no host has the role', async () => {
  const inv = await seedInventory();
  const etcdClient = ROLE_PORTS.etcd.find((s) => s.setting === 'etcdClient')!;
  const dagProcessors = inv.hosts.filter((h) => h.roles.includes('dag_processor'));
  assert.ok(dagProcessors.length > 0);
  const sources = clientSources(inv, etcdClient.clients);
  for (const h of dagProcessors) assert.ok(sources.includes(h.address), h.name);
  const schedulerOnly = inv.hosts.filter((h) => h.roles.includes('scheduler') && !h.roles.some((r) => r === 'dag_processor' || r === 'etcd' || r === 'postgresql'));
  assert.ok(schedulerOnly.length > 0);
  for (const h of schedulerOnly) assert.ok(!sources.includes(h.address), `${h.name}: a scheduler gets no etcd access while dag_processor hosts exist`);
  const noRole = { ...inv, hosts: inv.hosts.map((h) => ({ ...h, roles: h.roles.filter((r) => r !== 'dag_processor') })) };
  const fallback = clientSources(noRole, etcdClient.clients);
  for (const h of schedulerOnly) assert.ok(fallback.includes(h.address), `${h.name}: runs the DAG processor when no host has the role`);
});
