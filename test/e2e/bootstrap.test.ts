/**
 * `airflow-ha bootstrap` end to end on a lab with the seed's data-plane roles: 3 PostgreSQL/etcd,
 * 2 HAProxy/keepalived with a VIP, 3 RabbitMQ. Asserts on the real services, then that a second
 * bootstrap changes nothing and restarts nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { labStop } from '../../src/lab/lab.js';
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

  // Patroni: one leader and two replicas on one timeline, one of them the synchronous standby
  // (synchronous mode is on by default from 3 PostgreSQL hosts); etcd: three healthy members.
  const list = await on('pg1', 'patronictl -c /etc/patroni/config.yml list -f json');
  const members = JSON.parse(list.stdout) as Array<{ Role: string; TL: number }>;
  assert.equal(members.filter((m) => m.Role === 'Leader').length, 1, list.stdout);
  assert.equal(members.filter((m) => m.Role === 'Replica' || m.Role === 'Sync Standby').length, 2, list.stdout);
  assert.equal(members.filter((m) => m.Role === 'Sync Standby').length, 1, list.stdout);
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

/** `select extract(epoch from pg_postmaster_start_time())` and a setting, on each PostgreSQL node. */
async function postgresOn(host: string): Promise<{ started: number; workMem: string; sharedBuffers: string }> {
  const r = await on(host, `runuser -u postgres -- psql -XAtq -F ' ' -c "select extract(epoch from pg_postmaster_start_time()), current_setting('work_mem'), current_setting('shared_buffers')"`);
  assert.equal(r.code, 0, r.stderr);
  const [started, workMem, sharedBuffers] = r.stdout.trim().split(' ');
  return { started: Number(started), workMem: workMem ?? '', sharedBuffers: sharedBuffers ?? '' };
}

test('a changed setting: plan diffs exactly the files it touches; bootstrap reloads, then restarts replicas before the leader', async () => {
  // The operator changes two PostgreSQL parameters (work_mem reloads; shared_buffers needs a
  // restart) and the HAProxy timeout in the inventory file, keeping its layout.
  const doc = parseDocument(await readFile(lab.inventoryFile, 'utf8'));
  doc.setIn(['cluster', 'postgresql'], doc.createNode({ parameters: { work_mem: '8MB', shared_buffers: '64MB' } }));
  (doc.toJS() as { hosts: Array<{ name: string }> }).hosts.forEach((h, i) => {
    if (h.name.startsWith('lb')) doc.setIn(['hosts', i, 'vars'], doc.createNode({ haproxyTimeout: '2h' }));
  });
  await writeFile(lab.inventoryFile, doc.toString());
  // And someone appended a line to one etcd member's config by hand.
  assert.equal((await on('pg2', "echo '# hand edit' >> /etc/default/etcd")).code, 0);

  const plan = await cli(['plan', ...inv(), '--json']);
  assert.equal(plan.exitCode, 0, plan.stdout.slice(-3000) + plan.stderr);
  const planned = events(plan.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed');
  // In check mode nothing is applied, so the first node's config shows in both Patroni steps
  // (leader, then replicas): the set of files is what counts.
  const files = [...new Set(planned.map((e) => `${String(e['host'])} ${String(e['task'])}`))].sort();
  assert.deepEqual(files, [
    'lb1 template /etc/haproxy/haproxy.cfg',
    'lb2 template /etc/haproxy/haproxy.cfg',
    'pg1 template /etc/patroni/config.yml',
    'pg2 template /etc/default/etcd',
    'pg2 template /etc/patroni/config.yml',
    'pg3 template /etc/patroni/config.yml',
  ]);
  for (const e of planned) {
    const changed = String(e['diff']).split('\n').filter((l) => /^[-+][^-+]/.test(l));
    if (String(e['task']).includes('haproxy')) assert.deepEqual(changed.sort(), ['+    timeout client 2h', '+    timeout server 2h', '-    timeout client 1h', '-    timeout server 1h']);
    else if (String(e['task']).includes('patroni')) assert.deepEqual(changed.sort(), ['+    shared_buffers: "64MB"', '+    work_mem: "8MB"']);
    else assert.deepEqual(changed, ['-# hand edit']);
    assert.ok(!/password: '(?!\*\*\*)/.test(String(e['diff'])), 'no secret in a diff');
  }

  const leaderBefore = JSON.parse((await on('pg1', 'patronictl -c /etc/patroni/config.yml list -f json')).stdout) as Array<{ Member: string; Role: string }>;
  const leader = leaderBefore.find((m) => m.Role === 'Leader')?.Member ?? '';
  const pgBefore = Object.fromEntries(await Promise.all(['pg1', 'pg2', 'pg3'].map(async (h) => [h, await postgresOn(h)] as const)));
  const before = await starts();

  const apply = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(apply.exitCode, 0, apply.stdout.slice(-4000) + apply.stderr);
  const ev = events(apply.stdout);
  const changedTasks = (name: string) => ev.filter((e) => e.type === 'task' && e['status'] === 'changed' && String(e['task']).includes(name)).map((e) => String(e['host'])).sort();
  assert.deepEqual(changedTasks('(replicas, one at a time)'), ['pg1', 'pg2', 'pg3'].filter((h) => h !== leader));
  assert.deepEqual(changedTasks('(the leader)'), [leader]);
  assert.deepEqual(changedTasks('restart etcd'), ['pg2']);

  // Every node runs the new settings; each restarted once, the replicas before the leader; the
  // leader kept the leader lock (an in-place restart, no failover).
  const pgAfter = Object.fromEntries(await Promise.all(['pg1', 'pg2', 'pg3'].map(async (h) => [h, await postgresOn(h)] as const)));
  for (const h of ['pg1', 'pg2', 'pg3']) {
    assert.equal(pgAfter[h]!.workMem, '8MB', h);
    assert.equal(pgAfter[h]!.sharedBuffers, '64MB', h);
    assert.ok(pgAfter[h]!.started > pgBefore[h]!.started, `${h} restarted`);
    if (h !== leader) assert.ok(pgAfter[h]!.started < pgAfter[leader]!.started, `${h} restarted before the leader ${leader}`);
  }
  const list = JSON.parse((await on('pg1', 'patronictl -c /etc/patroni/config.yml list -f json')).stdout) as Array<{ Member: string; Role: string; State: string }>;
  assert.equal(list.find((m) => m.Role === 'Leader')?.Member, leader);
  assert.equal(list.filter((m) => m.State === 'streaming' || m.State === 'running').length, 3, JSON.stringify(list));

  // HAProxy reloaded (its master process kept); etcd restarted on pg2 only, the cluster healthy.
  const cfg = await on('lb1', 'grep -c "timeout client 2h" /etc/haproxy/haproxy.cfg');
  assert.equal(cfg.stdout.trim(), '1');
  const after = await starts();
  const line = (all: string, h: string) => all.split('\n').find((l) => l.startsWith(`${h}: `));
  assert.equal(line(after, 'lb1'), line(before, 'lb1'));
  assert.equal(line(after, 'lb2'), line(before, 'lb2'));
  const etcdStart = (all: string, h: string) => line(all, h)?.split(' ')[1];
  assert.notEqual(etcdStart(after, 'pg2'), etcdStart(before, 'pg2'));
  assert.equal(etcdStart(after, 'pg1'), etcdStart(before, 'pg1'));
  assert.equal(etcdStart(after, 'pg3'), etcdStart(before, 'pg3'));
  const health = await on('pg1', 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 endpoint health --cluster 2>&1');
  assert.equal(health.stdout.match(/is healthy/g)?.length, 3, health.stdout);

  // And the run after that changes nothing.
  const again = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.map((h) => h.changed), HOSTS.map(() => 0));
});

// Runs after the test above converged the lab again (a limited run must then change nothing).
test('a host down at the start: bootstrap names it and changes nothing; --limit without it runs the rest', async () => {
  const mq3 = lab.loaded.inventory.hosts.find((h) => h.name === 'mq3')!;
  await labStop(lab.loaded.inventory, { stateDir: lab.loaded.stateDir }, 'mq3', () => undefined, { hard: true });
  const before = await cli(['exec', ...inv(), '--limit', 'pg1,lb1,mq1', '--json', '--', 'stat -c %Y /etc/patroni/config.yml /etc/haproxy/haproxy.cfg /etc/rabbitmq/rabbitmq.conf 2>/dev/null; ls /var/lib/airflow-ha']);

  const down = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(down.exitCode, 3, down.stdout.slice(-3000) + down.stderr);
  const end = runEnd(down.stdout);
  assert.match(`${end.error ?? ''}`, new RegExp(`mq3.*${mq3.address.replace(/\./g, '\\.')}`));
  assert.equal(events(down.stdout).filter((e) => e.type === 'step_start').length, 0, 'no step started');
  assert.match(down.stderr + down.stdout, /mq3/);

  const limited = await cli(['bootstrap', ...inv(), '--limit', 'pg1,pg2,pg3,lb1,lb2', '--json']);
  assert.equal(limited.exitCode, 0, limited.stdout.slice(-3000) + limited.stderr);
  assert.deepEqual(runEnd(limited.stdout).hosts.map((h) => h.changed), [0, 0, 0, 0, 0]);
  const after = await cli(['exec', ...inv(), '--limit', 'pg1,lb1,mq1', '--json', '--', 'stat -c %Y /etc/patroni/config.yml /etc/haproxy/haproxy.cfg /etc/rabbitmq/rabbitmq.conf 2>/dev/null; ls /var/lib/airflow-ha']);
  const byHost = (out: string) => events(out).map((e) => `${String(e['host'])}: ${String(e['stdout'])}`).sort();
  assert.deepEqual(byHost(after.stdout), byHost(before.stdout));
});
