/**
 * The rabbitmq playbook end to end on its own lab of three Debian 12 hosts: one cluster of three
 * running nodes, a message round trip as the airflow user on vhost airflow_host (through the
 * management HTTP API: the hosts' python3 has no AMQP client), no guest, and a second apply that
 * changes nothing and restarts nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import { bootLab, cli, events, onHost, runEnd, type TestLab } from '../helpers/lab.js';
import { rabbitApi } from '../helpers/rabbitmq.js';

let lab: TestLab;
const HOSTS = ['mqa', 'mqb', 'mqc'];

before(async () => {
  lab = await bootLab('rmq', HOSTS, [['rabbitmq'], ['rabbitmq'], ['rabbitmq']]);
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

/** The management HTTP API on `host`, through the CLI's exec. */
const api = (host: string, user: string, pw: string, method: string, path: string, body?: unknown) =>
  rabbitApi(on, host, user, pw, method, path, body);

async function startTimes(): Promise<Record<string, string>> {
  const r = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'systemctl show -p ExecMainStartTimestampMonotonic --value rabbitmq-server']);
  assert.equal(r.exitCode, 0, r.stderr);
  return Object.fromEntries(events(r.stdout).map((e) => [String(e['host']), String(e['stdout']).trim()]));
}

test('apply forms one cluster of three running nodes; airflow round-trips a message; guest is gone; a re-run changes nothing', async (t) => {
  const first = await cli(['apply', ...inv(), '--playbook', 'rabbitmq', '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-4000) + first.stderr);
  for (const e of events(first.stdout).filter((x) => x.type === 'handler' || (x.type === 'task' && String(x['task']).includes('guest')))) {
    t.diagnostic(`first run: ${e['host']} ${e.type} ${String(e['handler'] ?? e['task'])}: ${String(e['status'])}`);
  }
  const gate = events(first.stdout).find((e) => e.type === 'step_end' && e['step'] === 'rabbitmq nodes');
  assert.equal((gate?.['gate'] as { ok?: boolean } | undefined)?.ok, true, JSON.stringify(gate));

  // The first start already had the final config: the restart handler found nothing stale.
  const boots = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'grep -c "Starting RabbitMQ" /var/log/rabbitmq/rabbit@$(hostname).log; journalctl -u rabbitmq-server -o cat | grep -c "^Started " || true']);
  for (const e of events(boots.stdout)) t.diagnostic(`first run: ${e['host']} node starts (rabbit log, journal): ${String(e['stdout']).trim().replace(/\n/g, ', ')}`);

  // Three running nodes, seen from the last node.
  const status = await on('mqc', 'rabbitmqctl -q cluster_status --formatter json');
  assert.equal(status.code, 0, status.stderr);
  const cs = JSON.parse(status.stdout) as { running_nodes: string[]; disk_nodes: string[] };
  assert.deepEqual([...cs.running_nodes].sort(), ['rabbit@mqa', 'rabbit@mqb', 'rabbit@mqc']);

  // One cookie everywhere, mode 0400, owner rabbitmq.
  const cookies = await cli(['exec', ...inv(), '--limit', 'all', '--json', '--', 'stat -c %a:%U /var/lib/rabbitmq/.erlang.cookie; sha256sum < /var/lib/rabbitmq/.erlang.cookie']);
  const outs = events(cookies.stdout).map((e) => String(e['stdout']));
  assert.equal(new Set(outs).size, 1, outs.join('|'));
  assert.match(outs[0] ?? '', /^400:rabbitmq$/m);

  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  const pw = secrets.rabbitmqAirflow.reveal();
  // Declare on one node, publish on another, get on the third (the queue lives on one node; the
  // others proxy to it).
  const q = `/queues/airflow_host/ah-e2e`;
  const put = await api('mqa', 'airflow', pw, 'PUT', q, { durable: false, auto_delete: false });
  assert.ok([201, 204].includes(put.status), `declare: ${put.status} ${put.body}`);
  const pub = await api('mqb', 'airflow', pw, 'POST', '/exchanges/airflow_host/amq.default/publish', {
    properties: {}, routing_key: 'ah-e2e', payload: 'hello from airflow-ha', payload_encoding: 'string',
  });
  assert.equal(pub.status, 200, pub.body);
  assert.deepEqual(JSON.parse(pub.body), { routed: true });
  const got = await api('mqc', 'airflow', pw, 'POST', `${q}/get`, { count: 1, ackmode: 'ack_requeue_false', encoding: 'auto' });
  assert.equal(got.status, 200, got.body);
  assert.equal((JSON.parse(got.body) as Array<{ payload: string }>)[0]?.payload, 'hello from airflow-ha');
  assert.equal((await api('mqa', 'airflow', pw, 'DELETE', q)).status, 204);
  // A wrong password is refused (the hash really is checked).
  assert.equal((await api('mqa', 'airflow', `${pw}x`, 'GET', '/whoami')).status, 401);

  // No guest: not listed, cannot authenticate, not even from the node itself.
  const users = await on('mqb', 'rabbitmqctl -q list_users');
  assert.equal(users.code, 0, users.stderr);
  assert.doesNotMatch(users.stdout, /^guest\b/m);
  assert.match(users.stdout, /^admin\s+\[administrator\]/m);
  assert.equal((await api('mqa', 'guest', 'guest', 'GET', '/whoami')).status, 401);
  const auth = await on('mqa', 'rabbitmqctl -q authenticate_user guest guest');
  assert.notEqual(auth.code, 0, auth.stdout);

  const before = await startTimes();
  const second = await cli(['apply', ...inv(), '--playbook', 'rabbitmq', '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  const changedTasks = events(second.stdout).filter((e) => e.type === 'task' && e['status'] === 'changed');
  assert.deepEqual(changedTasks, [], 'no task changed');
  assert.deepEqual(runEnd(second.stdout).hosts.map((h) => h.changed), [0, 0, 0]);
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
  assert.deepEqual(await startTimes(), before, 'no rabbitmq-server restarted');
});

test('a hand edit of rabbitmq.conf restarts only that node; a definitions edit re-imports without a restart; a re-created guest is deleted', async () => {
  const beforeTimes = await startTimes();
  assert.equal((await on('mqb', "sed -i 's/^vm_memory_high_watermark.relative = .*/vm_memory_high_watermark.relative = 0.5/' /etc/rabbitmq/rabbitmq.conf")).code, 0);
  assert.equal((await on('mqc', "sed -i 's/\"airflow_host\" }/\"airflow_host\"  }/' /etc/rabbitmq/definitions.json")).code, 0);
  assert.equal((await on('mqa', 'rabbitmqctl -q add_user guest guest')).code, 0);
  const r = await cli(['apply', ...inv(), '--playbook', 'rabbitmq', '--json']);
  assert.equal(r.exitCode, 0, r.stdout.slice(-3000) + r.stderr);
  const handlers = events(r.stdout).filter((e) => e.type === 'handler').map((e) => `${e['host']}: ${e['handler']}`);
  assert.deepEqual(handlers.sort(), ['mqb: restart rabbitmq-server (if it started before its config changed)', 'mqc: rabbitmqctl import_definitions']);
  const after = await startTimes();
  assert.equal(after['mqa'], beforeTimes['mqa']);
  assert.notEqual(after['mqb'], beforeTimes['mqb'], 'mqb restarted');
  assert.equal(after['mqc'], beforeTimes['mqc'], 'a definitions change restarts nothing');
  assert.doesNotMatch((await on('mqa', 'rabbitmqctl -q list_users')).stdout, /^guest\b/m);
  const cs = JSON.parse((await on('mqa', 'rabbitmqctl -q cluster_status --formatter json')).stdout) as { running_nodes: string[] };
  assert.equal(cs.running_nodes.length, 3);
  const again = await cli(['apply', ...inv(), '--playbook', 'rabbitmq', '--json']);
  assert.deepEqual(runEnd(again.stdout).hosts.map((h) => h.changed), [0, 0, 0]);
});
