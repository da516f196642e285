/**
 * `airflow-ha status` end to end on one bootstrapped lab: h1..h3 etcd + PostgreSQL/Patroni + RabbitMQ,
 * h4..h5 HAProxy + keepalived with a VIP. A healthy lab first, then one failure at a time, each
 * repaired before the next: the Patroni leader stopped (failover timed through VIP:5000), HAProxy
 * stopped on the VIP holder, one RabbitMQ node stopped (a quorum queue keeps its messages), a queue
 * nobody consumes, one host's CPUs saturated by busy loops, a probe that hangs (a stand-in `ip` that
 * sleeps past the probe's timeout), and a host powered off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { patroniDcs } from '../../src/components/patroni.js';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, ignoreSharedLoad, onHost, type TestLab } from '../helpers/lab.js';
import { rabbitApi } from '../helpers/rabbitmq.js';
import { checkOf, checksOf, statusJson, statusUntil, type Status } from '../helpers/status.js';

let lab: TestLab;
let vip = '';
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5'];
const ROLES = [DATA, DATA, DATA, ['haproxy'], ['haproxy']];
const LB = ['h4', 'h5'];

before(async () => {
  lab = await bootLab('st', HOSTS, ROLES, (net) => {
    vip = `${net}.200`;
    return { vips: [{ name: 'db-vip', address: vip, role: 'haproxy', routerId: 63 }] };
  });
  // The lab's containers see this shared machine's load average, not their own: raise the bar.
  await ignoreSharedLoad(lab);
  const boot = await cli(['bootstrap', '-i', lab.inventoryFile, '--json', '--accept-new-host-keys']);
  assert.equal(boot.exitCode, 0, boot.stdout.slice(-5000) + boot.stderr);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const status = () => statusJson(lab.inventoryFile);
const waitStatus = (what: string, pred: (s: Status) => boolean, timeoutMs: number) => statusUntil(lab.inventoryFile, what, pred, timeoutMs);
const lines = checksOf;
const find = checkOf;
const allHealthy = (s: Status) => s.exitCode === 0 && lines(s).every((l) => l.verdict === 'healthy');

test('a healthy lab: every line healthy, exit 0, and the table starts with the overall verdict', async () => {
  const s = await waitStatus('healthy', allHealthy, 120_000);
  assert.equal(s.report.verdict, 'healthy');
  assert.deepEqual(s.report.components.map((c) => c.name), ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq']);
  assert.equal(find(s, 'patroni', 'leader')?.verdict, 'healthy');
  assert.equal(find(s, 'etcd', 'leader')?.verdict, 'healthy');
  assert.match(find(s, 'keepalived', `vip db-vip ${vip}`)?.reason ?? '', /held by h[45]/);
  assert.equal(s.report.hosts.filter((h) => h.reachable).length, 5);
  const table = await cli(['status', '-i', lab.inventoryFile]);
  assert.equal(table.exitCode, 0, table.stdout + table.stderr);
  assert.match(table.stdout.split('\n')[0] ?? '', /^HEALTHY \S+: serving$/);
  assert.doesNotMatch(table.stdout, /\x1b\[/, 'no colour when stdout is not a terminal');
  process.stderr.write(`[status e2e] healthy status of 5 hosts in ${s.ms} ms (CLI wall time), ${s.report.durationMs} ms of checks\n${table.stdout}\n`);
});

test('Patroni leader stopped: status names it and the new leader; writes through VIP:5000 resume within ttl + loop_wait', async () => {
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const pw = secrets.airflowDb.reveal();
  const s0 = await status();
  const old = find(s0, 'patroni', 'leader')?.host ?? '';
  assert.ok(HOSTS.includes(old), JSON.stringify(find(s0, 'patroni', 'leader')));
  const client = ['h1', 'h2', 'h3'].find((h) => h !== old) as string;
  const write = () => on(client, `PGCONNECT_TIMEOUT=2 PGPASSWORD='${pw}' timeout 5 psql -XqAt -h ${vip} -p 5000 -U airflow -d airflow -c "create table if not exists e2e_status(t timestamptz); insert into e2e_status values (now()); select pg_is_in_recovery()"`);
  assert.equal((await write()).stdout.trim(), 'f', 'writes work before the stop');

  assert.equal((await on(old, 'systemctl stop patroni')).code, 0);
  const t0 = Date.now();
  let w = await write();
  while (!(w.code === 0 && w.stdout.trim() === 'f') && Date.now() - t0 < 120_000) {
    await sleep(500);
    w = await write();
  }
  const sec = (Date.now() - t0) / 1000;
  const dcs = patroniDcs(lab.loaded.inventory);
  const bound = dcs.ttl + dcs.loop_wait;
  process.stderr.write(`[status e2e] Patroni leader ${old} stopped: first write through VIP:5000 after ${sec.toFixed(1)} s (bound ttl ${dcs.ttl} + loop_wait ${dcs.loop_wait} = ${bound} s)\n`);
  assert.equal(w.code, 0, w.stderr);
  assert.ok(sec <= bound, `first successful write after ${sec.toFixed(1)} s > ${bound} s`);

  const s = await waitStatus('failover shown', (x) => find(x, 'patroni', 'leader')?.verdict === 'healthy' && find(x, 'patroni', 'leader')?.host !== old && find(x, 'patroni', `member ${old}`)?.verdict !== 'healthy', 60_000);
  const failed = find(s, 'patroni', `member ${old}`);
  assert.equal(failed?.verdict, 'down', JSON.stringify(failed));
  assert.match(failed?.reason ?? '', /patroni\.service inactive|not in the Patroni cluster|stopped/);
  assert.equal(s.exitCode, 1, 'degraded but serving');
  assert.equal(s.report.serving, true);
  assert.match(s.report.summary, new RegExp(`member ${old}`));

  assert.equal((await on(old, 'systemctl start patroni')).code, 0);
  const back = await waitStatus('the old leader rejoined', (x) => lines(x).filter((l) => l.component === 'patroni' || l.component === 'haproxy').every((l) => l.verdict === 'healthy'), 180_000);
  // Back as a replica; with synchronous mode (on from 3 PostgreSQL hosts) Patroni may also pick it as
  // the synchronous standby: seen once in CI, 'sync_standby, running, timeline 2, lag 0 B'.
  assert.match(find(back, 'patroni', `member ${old}`)?.reason ?? '', /^(replica|sync_standby),/);
});

test('HAProxy stopped on the VIP holder: the VIP moves, status shows it, degraded', async () => {
  const s0 = await status();
  const vipLine = `vip db-vip ${vip}`;
  const holder = find(s0, 'keepalived', vipLine)?.host ?? '';
  assert.ok(LB.includes(holder), JSON.stringify(find(s0, 'keepalived', vipLine)));
  const other = LB.find((h) => h !== holder) as string;
  assert.equal((await on(holder, 'systemctl stop haproxy')).code, 0);
  try {
    const s = await waitStatus('VIP moved', (x) => find(x, 'keepalived', vipLine)?.host === other, 30_000);
    assert.equal(s.exitCode, 1);
    assert.equal(s.report.verdict, 'degraded');
    const hl = find(s, 'haproxy', `haproxy ${holder}`);
    assert.equal(hl?.verdict, 'down', JSON.stringify(hl));
    assert.match(hl?.reason ?? '', /haproxy\.service inactive/);
    assert.match(find(s, 'keepalived', vipLine)?.reason ?? '', new RegExp(`held by ${other}.*answers on 5000`));
    assert.equal(find(s, 'haproxy', 'leader port 5000')?.verdict, 'healthy');
  } finally {
    await on(holder, 'systemctl start haproxy');
  }
  await waitStatus('HAProxy back', (x) => lines(x).filter((l) => l.component === 'haproxy' || l.component === 'keepalived').every((l) => l.verdict === 'healthy'), 60_000);
});

test('one RabbitMQ node stopped: degraded naming the node; a quorum queue keeps every message', async () => {
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const mq = secrets.rabbitmqAirflow.reveal();
  const q = '/queues/airflow_host/e2e-quorum';
  const put = await rabbitApi(on, 'h1', 'airflow', mq, 'PUT', q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  assert.ok(put.status < 300, put.body);
  const N = 20;
  for (let i = 0; i < N; i++) {
    const pub = await rabbitApi(on, 'h1', 'airflow', mq, 'POST', '/exchanges/airflow_host/amq.default/publish', { properties: { delivery_mode: 2 }, routing_key: 'e2e-quorum', payload: `m${i}`, payload_encoding: 'string' });
    assert.match(pub.body, /"routed":true/);
  }
  assert.equal((await on('h2', 'systemctl stop rabbitmq-server')).code, 0);
  try {
    const s = await waitStatus('node down shown', (x) => find(x, 'rabbitmq', 'node rabbit@h2')?.verdict === 'down', 60_000);
    assert.equal(s.exitCode, 1);
    assert.match(find(s, 'rabbitmq', 'node rabbit@h2')?.reason ?? '', /not running.*rabbitmq-server\.service inactive/);
    assert.match(find(s, 'rabbitmq', 'cluster')?.reason ?? '', /2\/3 nodes running/);
    const got = await rabbitApi(on, 'h3', 'airflow', mq, 'POST', `${q}/get`, { count: N, ackmode: 'ack_requeue_false', encoding: 'auto' });
    assert.equal(got.status, 200, got.body);
    const payloads = (JSON.parse(got.body) as Array<{ payload: string }>).map((m) => m.payload).sort();
    assert.deepEqual(payloads, Array.from({ length: N }, (_, i) => `m${i}`).sort());
  } finally {
    await on('h2', 'systemctl start rabbitmq-server');
  }
  assert.ok((await rabbitApi(on, 'h1', 'airflow', mq, 'DELETE', q)).status < 300);
  await waitStatus('RabbitMQ back', (x) => lines(x).filter((l) => l.component === 'rabbitmq').every((l) => l.verdict === 'healthy'), 120_000);
});

test('a queue with no consumer is reported', async () => {
  // The lab runs no Airflow worker (the Airflow roles are not part of bootstrap yet): the queue
  // `card` declared here stands for a worker's queue whose worker is gone, as Celery leaves it.
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const mq = secrets.rabbitmqAirflow.reveal();
  const q = '/queues/airflow_host/card';
  assert.ok((await rabbitApi(on, 'h1', 'airflow', mq, 'PUT', q, { durable: true })).status < 300);
  await rabbitApi(on, 'h1', 'airflow', mq, 'POST', '/exchanges/airflow_host/amq.default/publish', { properties: {}, routing_key: 'card', payload: 'task', payload_encoding: 'string' });
  try {
    // The management API refreshes queue counters every 5 s (collect_statistics_interval).
    const s = await waitStatus('queue shown', (x) => /1 messages/.test(find(x, 'rabbitmq', 'queue card')?.reason ?? ''), 30_000);
    const l = find(s, 'rabbitmq', 'queue card');
    assert.equal(l?.verdict, 'degraded');
    assert.match(l?.reason ?? '', /no consumer.*1 messages, 0 consumers/);
    assert.equal(s.exitCode, 1);
  } finally {
    await rabbitApi(on, 'h1', 'airflow', mq, 'DELETE', q);
  }
});

/** The lines of `s` about `host` (its hosts line, its members, its nodes, ...) and the others. */
const about = (s: Status, host: string) => lines(s).filter((l) => l.host === host);
const notAbout = (s: Status, host: string) => lines(s).filter((l) => l.host !== host);
const key = (l: { component: string; check: string }) => `${l.component}/${l.check}`;

test("one host's CPUs saturated: it is reached, its slow probes are named, every other line judged as before, exit <= 1", async () => {
  const before = await waitStatus('healthy before the load', allHealthy, 120_000);
  // Not the Patroni leader (a failover is another story), and a RabbitMQ view host: it runs the most probes.
  const leader = find(before, 'patroni', 'leader')?.host;
  const busy = ['h1', 'h2'].find((h) => h !== leader) as string;
  // One busy loop per CPU the host sees, at the shell's own niceness (0: exec does not nice it).
  const start = await on(busy, `for i in $(seq $(nproc)); do nohup nice -n 0 sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!; done`);
  const pids = start.stdout.split(/\s+/).filter(Boolean);
  try {
    assert.equal(start.code, 0, start.stderr);
    const cpus = Number((await on(busy, 'nproc')).stdout.trim());
    assert.equal(pids.length, cpus, start.stdout);
    const ps = await on(busy, `ps -o stat=,ni= -p ${pids.join(',')}`);
    assert.deepEqual(ps.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)), pids.map(() => ['R', '0']), `every loop runnable at nice 0: ${ps.stdout}`);

    const s = await status();
    process.stderr.write(`[status e2e] status with ${cpus} busy loops on ${busy}: ${s.ms} ms, exit ${s.exitCode}: ${s.report.summary}\n`);
    const hb = s.report.hosts.find((h) => h.name === busy);
    assert.equal(hb?.reachable, true, JSON.stringify(hb));
    assert.ok(s.exitCode <= 1, `exit ${s.exitCode}: ${s.report.summary}`);
    assert.equal(s.report.serving, true);
    // Its slow probes, if any, are named on its hosts line; its other lines say which probe was slow.
    const hostLine = find(s, 'hosts', busy);
    assert.ok(hostLine, 'the busy host has its hosts line');
    const slow = /no answer within \d+ s|timed out after \d+ s/;
    if (hostLine.verdict !== 'healthy') assert.match(hostLine.reason ?? '', slow, JSON.stringify(hostLine));
    for (const l of about(s, busy).filter((x) => x.verdict !== 'healthy')) assert.match(l.reason ?? '', slow, `${key(l)}: ${l.verdict}: ${l.reason}`);
    // Every other line: the same checks with the same verdicts as before the load.
    assert.deepEqual(notAbout(s, busy).map((l) => `${key(l)}: ${l.verdict}`), notAbout(before, busy).map((l) => `${key(l)}: ${l.verdict}`));
    // The loops ran through the whole status run.
    assert.equal((await on(busy, `kill -0 ${pids.join(' ')}`)).code, 0, 'the busy loops still run');
  } finally {
    if (pids.length) await on(busy, `kill ${pids.join(' ')}`);
  }
  assert.notEqual((await on(busy, `kill -0 ${pids.join(' ')} 2>/dev/null`)).code, 0, 'the busy loops are gone');
  await waitStatus('healthy after the load', allHealthy, 120_000);
});

test('a probe that hangs (a stand-in `ip` sleeping past its 3 s timeout): that probe\'s line only, naming the timeout; the host\'s other lines judged', async () => {
  // `ip` is run on the HAProxy hosts by the keepalived check only (ip -br -4 addr): nothing else in
  // the lab calls it while the stand-in is there. /usr/local/sbin comes first in root's PATH.
  const vipLine = `vip db-vip ${vip}`;
  const holder = find(await waitStatus('healthy before the stand-in', allHealthy, 120_000), 'keepalived', vipLine)?.host ?? '';
  assert.ok(LB.includes(holder), holder);
  // On the VIP holder (the line must not say "held by none"), then on its peer (the line must not stay healthy).
  for (const host of [holder, LB.find((h) => h !== holder) as string]) {
    const put = await on(host, `printf '#!/bin/sh\\nexec sleep 60\\n' >/usr/local/sbin/ip && chmod 755 /usr/local/sbin/ip && command -v ip`);
    try {
      assert.equal(put.stdout.trim(), '/usr/local/sbin/ip', put.stderr);
      const s = await status();
      process.stderr.write(`[status e2e] status with a hanging ip on ${host}: ${s.ms} ms, exit ${s.exitCode}: ${s.report.summary}\n`);
      assert.equal(s.report.hosts.find((h) => h.name === host)?.reachable, true);
      const bad = lines(s).filter((l) => l.verdict !== 'healthy');
      assert.deepEqual(bad.map(key), [`keepalived/${vipLine}`], JSON.stringify(bad));
      const l = bad[0];
      assert.equal(l?.verdict, 'degraded', JSON.stringify(l));
      const why = `\\(${host}: ip -br -4 addr: timed out after 3 s\\)`;
      // Never "held by none of h4, h5" (down) nor healthy: who holds it, or whether a second host does, is unknown.
      assert.match(l?.reason ?? '', new RegExp(host === holder ? `^unknown: held by none of the hosts that answered ${why}` : `^held by ${holder}( \\(failed over\\))?; a second holder is unknown ${why}`));
      assert.equal(s.exitCode, 1);
      assert.equal(s.report.serving, true);
      // The host's other lines are there and judged: its hosts line (with its units), its HAProxy, the write path it asks.
      assert.equal(find(s, 'hosts', host)?.verdict, 'healthy');
      assert.match(find(s, 'haproxy', `haproxy ${host}`)?.reason ?? '', /postgres_leader -> h\d/);
      assert.equal(find(s, 'haproxy', `haproxy ${host}`)?.verdict, 'healthy');
      assert.match(find(s, 'haproxy', `write path ${vip}:5000`)?.reason ?? '', new RegExp(`a PostgreSQL primary answers \\(from [^)]*${host}`));
      assert.deepEqual(s.report.components.map((c) => c.name), ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq']);
      // The table says the same on the VIP's own line.
      const table = await cli(['status', '-i', lab.inventoryFile]);
      assert.equal(table.exitCode, 1, table.stdout + table.stderr);
      assert.match(table.stdout, new RegExp(`^ +degraded +${vipLine.replace(/\./g, '\\.')} +.*${host}: ip -br -4 addr: timed out after 3 s`, 'm'));
    } finally {
      await on(host, 'rm -f /usr/local/sbin/ip');
    }
    assert.equal((await on(host, 'command -v ip')).stdout.trim(), '/usr/sbin/ip', 'the stand-in is gone');
  }
  await waitStatus('healthy without the stand-in', allHealthy, 60_000);
});

test('a host powered off: named unreachable, every other component still reported', async () => {
  // Not the Patroni leader: its loss would make port 5000 fail over, a different story told above.
  const leader = find(await status(), 'patroni', 'leader')?.host;
  const victim = ['h3', 'h2', 'h1'].find((h) => h !== leader) as string;
  await lab.powerOff(victim);
  const s = await status();
  process.stderr.write(`[status e2e] status with ${victim} powered off: ${s.ms} ms\n`);
  const hv = s.report.hosts.find((h) => h.name === victim);
  assert.equal(hv?.reachable, false);
  assert.ok(hv?.reason, 'the reason is given');
  assert.equal(find(s, 'hosts', victim)?.verdict, 'down');
  assert.match(find(s, 'hosts', victim)?.reason ?? '', /host unreachable/);
  assert.deepEqual(s.report.components.map((c) => c.name), ['hosts', 'etcd', 'patroni', 'haproxy', 'keepalived', 'rabbitmq']);
  for (const h of HOSTS.filter((x) => x !== victim)) assert.equal(find(s, 'hosts', h)?.verdict, 'healthy', h);
  assert.match(find(s, 'etcd', `member ${victim}`)?.reason ?? '', /host unreachable/);
  assert.match(find(s, 'rabbitmq', `node rabbit@${victim}`)?.reason ?? '', /host unreachable/);
  assert.equal(find(s, 'rabbitmq', `node rabbit@${leader}`)?.verdict, 'healthy');
  assert.notEqual(find(s, 'keepalived', `vip db-vip ${vip}`)?.verdict, 'down');
  assert.equal(s.exitCode, 1, `degraded, still serving: ${s.report.summary}`);
  assert.ok(s.ms < 20_000, `status answered in ${s.ms} ms with a host off`);
});
