/**
 * `airflow-ha bootstrap` end to end on a lab with the seed's data-plane roles: 3 PostgreSQL/etcd,
 * 2 HAProxy/keepalived with a VIP, 3 RabbitMQ. Asserts on the real services, then that a second
 * bootstrap changes nothing and restarts nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, events, onHost, runEnd, type TestLab } from '../helpers/lab.js';
import { rabbitApi } from '../helpers/rabbitmq.js';

let lab: TestLab;
let vip = '';
const HOSTS = ['pg1', 'pg2', 'pg3', 'lb1', 'lb2', 'mq1', 'mq2', 'mq3'];
const ROLES = [['postgresql', 'etcd'], ['postgresql', 'etcd'], ['postgresql', 'etcd'], ['haproxy'], ['haproxy'], ['rabbitmq'], ['rabbitmq'], ['rabbitmq']];

before(async () => {
  lab = await bootLab('boot', HOSTS, ROLES, (net) => {
    vip = `${net}.200`;
    return { vips: [{ name: 'db-vip', address: vip, role: 'haproxy', routerId: 61 }] };
  });
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const inv = () => ['-i', lab.inventoryFile];

/** Runs `cmd` as root on one host of this lab. */
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);

/** Service start times on every host (they change only when a service restarts). */
async function starts(): Promise<string> {
  const r = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'for s in etcd patroni haproxy keepalived rabbitmq-server; do systemctl show -p ExecMainStartTimestampMonotonic --value $s 2>/dev/null; done | tr "\\n" " "']);
  return events(r.stdout).map((e) => `${String(e['host'])}: ${String(e['stdout']).trim()}`).sort().join('\n');
}

test('bootstrap brings up the data plane; a second bootstrap changes nothing', async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-5000) + first.stderr);
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const pw = secrets.airflowDb.reveal();

  // PostgreSQL through the VIP: the leader port writes to the primary, the replica port reads a replica.
  const psql = (port: number, sql: string) => on('pg2', `PGPASSWORD='${pw}' psql -XqAt -h ${vip} -p ${port} -U airflow -d airflow -c "${sql}"`);
  const leader = await psql(5000, 'create table if not exists e2e_boot(i int); insert into e2e_boot values (1); select pg_is_in_recovery()');
  assert.equal(leader.code, 0, leader.stderr);
  assert.equal(leader.stdout.trim(), 'f');
  const replica = await psql(6000, 'select pg_is_in_recovery()');
  assert.equal(replica.code, 0, replica.stderr);
  assert.equal(replica.stdout.trim(), 't');

  // Patroni: one leader and two replicas on one timeline; etcd: three healthy members.
  const list = await on('pg1', 'patronictl -c /etc/patroni/config.yml list -f json');
  const members = JSON.parse(list.stdout) as Array<{ Role: string; TL: number }>;
  assert.equal(members.filter((m) => m.Role === 'Leader').length, 1, list.stdout);
  assert.equal(members.filter((m) => m.Role === 'Replica').length, 2, list.stdout);
  assert.equal(new Set(members.map((m) => m.TL)).size, 1, list.stdout);
  const health = await on('pg1', 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health --cluster 2>&1');
  assert.equal(health.stdout.match(/is healthy/g)?.length, 3, health.stdout);

  // The VIP is on exactly one HAProxy host.
  const addrs = await cli(['exec', ...inv(), '--limit', 'haproxy', '--json', '--', 'ip -br -4 addr']);
  const holders = events(addrs.stdout).filter((e) => String(e['stdout']).includes(`${vip}/`)).map((e) => e['host']);
  assert.equal(holders.length, 1, `VIP holders: ${JSON.stringify(holders)}`);

  // RabbitMQ: three running nodes; a message round-trips as airflow on airflow_host; guest refused.
  const status = await on('mq3', 'rabbitmqctl -q cluster_status --formatter json');
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { running_nodes: string[] }).running_nodes.length, 3);
  const mq = secrets.rabbitmqAirflow.reveal();
  const q = '/queues/airflow_host/e2e-boot';
  assert.equal((await rabbitApi(on, 'mq1', 'airflow', mq, 'PUT', q, { durable: true })).status < 300, true);
  const pub = await rabbitApi(on, 'mq2', 'airflow', mq, 'POST', '/exchanges/airflow_host/amq.default/publish', {
    properties: {}, routing_key: 'e2e-boot', payload: 'hello', payload_encoding: 'string',
  });
  assert.match(pub.body, /"routed":true/);
  const got = await rabbitApi(on, 'mq3', 'airflow', mq, 'POST', `${q}/get`, { count: 1, ackmode: 'ack_requeue_false', encoding: 'auto' });
  assert.match(got.body, /"payload":"hello"/);
  assert.equal((await rabbitApi(on, 'mq1', 'guest', 'guest', 'GET', '/whoami')).status, 401);

  // A second bootstrap: zero changes, no handler, no service restarted.
  const before = await starts();
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((h) => h.changed), HOSTS.map(() => 0));
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
  assert.equal(await starts(), before);
});
