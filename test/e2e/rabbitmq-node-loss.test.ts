/**
 * What one RabbitMQ node powered off and on again costs Celery's classic queues (Airflow 2.x):
 * three nodes; a durable classic queue with persistent messages and a transient queue (like
 * Celery's pidbox and event queues) declared through the node that will be powered off (classic
 * queues live on the node their client is connected to); the node powered off hard, then on.
 * Prints what `rabbitmqctl list_queues` says on a surviving node while the node is down and after
 * it is back, and asserts that the durable queue's messages are all there once it is back (stranded
 * while it is down, not lost) and that no queue stays unresponsive after the node is back.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, onHost, type TestLab } from '../helpers/lab.js';
import { rabbitApi } from '../helpers/rabbitmq.js';

let lab: TestLab;
const HOSTS = ['mqa', 'mqb', 'mqc'];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (l: string) => process.stderr.write(`[rabbitmq node loss e2e] ${l}\n`);

before(async () => {
  lab = await bootLab('rnl', HOSTS, [['rabbitmq'], ['rabbitmq'], ['rabbitmq']]);
  const r = await cli(['apply', '-i', lab.inventoryFile, '--playbook', 'rabbitmq', '--json', '--accept-new-host-keys']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-4000) + r.stderr);
});

after(async () => {
  if (lab) {
    await lab.down();
    await rm(lab.dir, { recursive: true, force: true });
  }
});

const LIST = 'rabbitmqctl -q list_queues -p airflow_host name type durable state messages pid 2>&1; echo "exit $?"';

// The finding of the 13-host lab: the durable classic queue of the node powered off stayed
// "unresponsive" in a listing asked on another node long after that node was back. The cause was the
// lab, not RabbitMQ: each boot of a lab host rewrote its /etc/hosts, so the restarted node had lost
// the cluster's names that airflow-ha's base step writes there. Its queue was whole and its broker
// connections (made by the other nodes) worked, but `rabbitmqctl list_queues` on another node gathers
// the answers in its CLI node, which the restarted node must connect to by name: it could not resolve
// it, and the listing timed out. The lab now keeps a host's /etc/hosts across a power-off.
test('one node powered off and on: its classic queue is stranded while it is down, whole and responsive once it is back', async () => {
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const pw = secrets.rabbitmqAirflow.reveal();
  const api = (method: string, path: string, body?: unknown) => rabbitApi(on, 'mqb', 'airflow', pw, method, path, body);
  assert.ok((await api('PUT', '/queues/airflow_host/zl-durable', { durable: true })).status < 300);
  assert.ok((await api('PUT', '/queues/airflow_host/zl-transient', { durable: false, auto_delete: false })).status < 300);
  const N = 20;
  for (let i = 0; i < N; i++) {
    const pub = await api('POST', '/exchanges/airflow_host/amq.default/publish', { properties: { delivery_mode: 2 }, routing_key: 'zl-durable', payload: `task${i}`, payload_encoding: 'string' });
    assert.match(pub.body, /"routed":true/);
  }
  log(`before:\n${(await on('mqa', LIST)).stdout}`);

  await lab.powerOff('mqb');
  await sleep(15_000);
  const down = (await on('mqa', LIST)).stdout;
  log(`mqb powered off, on mqa:\n${down}`);

  await lab.powerOn('mqb');
  const t0 = Date.now();
  let back = '';
  let unresponsiveFor = 0;
  for (;;) {
    back = (await on('mqa', LIST)).stdout;
    const rows = back.split('\n').filter((l) => l.startsWith('zl-durable'));
    const whole = rows.some((l) => /\brunning\s+20\b/.test(l));
    if (/unresponsive/i.test(back)) unresponsiveFor = (Date.now() - t0) / 1000;
    if ((whole && !/unresponsive/i.test(back)) || Date.now() - t0 > 240_000) break;
    await sleep(5000);
  }
  const sec = (Date.now() - t0) / 1000;
  log(`mqb powered on; after ${sec.toFixed(0)} s, on mqa:\n${back}\n(last "unresponsive" seen ${unresponsiveFor.toFixed(0)} s after power-on)`);
  log(`cluster status on mqa:\n${(await on('mqa', 'rabbitmqctl -q cluster_status 2>&1 | head -40')).stdout}`);
  log(`on mqb itself:\n${(await on('mqb', "rabbitmqctl -q list_queues -p airflow_host --local name state messages pid 2>&1 | head; rabbitmqctl -q list_unresponsive_queues -p airflow_host 2>&1 | head; rabbitmqctl -q list_vhosts name cluster_state 2>&1; rabbitmqctl -q eval 'rabbit_amqqueue:lookup(rabbit_misc:r(<<\"airflow_host\">>, queue, <<\"zl-durable\">>)).' 2>&1 | head -c 1500; echo; grep -hiE 'zl-durable|error|crash|recover' /var/log/rabbitmq/*.log | tail -30")).stdout}`);
  for (const h of HOSTS) log(`${h} log, partitions and node events:\n${(await on(h, "grep -hiE 'partition|inconsistent|node .* down|node .* up|autoheal|pause' /var/log/rabbitmq/*.log 2>&1 | tail -20")).stdout}`);
  assert.doesNotMatch(back, /unresponsive/i, 'a queue still unresponsive 240 s after its node is back');
  assert.match(back, new RegExp(`^zl-durable\\s+classic\\s+true\\s+running\\s+${N}\\b`, 'm'), 'every persistent message of the durable queue is back');
});
