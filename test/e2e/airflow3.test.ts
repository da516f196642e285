/**
 * `airflow-ha bootstrap` with the Airflow 3 layout, end to end, on a lab of 3 data hosts (etcd,
 * PostgreSQL, RabbitMQ; HAProxy + the VIP on pg3), one control host with every Airflow role but the
 * worker (HAProxy + the VIP too), and one worker-only host.
 *
 * The Airflow installed is the STAND-IN of test/standin/ (not Airflow) built as 3.4.0, so it runs
 * its Airflow 3 mode: `airflow api-server` (refusing to start without the shared JWT secret) and a
 * worker that needs `[core] execution_api_server_url` to answer before it consumes. It runs against
 * the real PostgreSQL, RabbitMQ and HAProxy the tool set up.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import type { CheckLine } from '../../src/status/model.js';
import { AS_AIRFLOW, buildStandin, echoTask, standinAirflow, get, py, standinMigrations, unitStarts } from '../helpers/airflow-lab.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';
import { checkOf, checksOf, statusUntil } from '../helpers/status.js';

const VERSION = AIRFLOW_3_NEWEST;
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1', 'w1'];
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const CONTROL = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'flower'];
const QUEUES = ['default', 'etl'];
const CONTROL_UNITS = ['scheduler', 'triggerer', 'dag-processor', 'api-server', 'flower'].map((u) => `airflow-${u}`);
/** HAProxy's replica port in this lab (6000 is in RabbitMQ's stream range on pg3). */
const REPLICA_PORT = 5001;

let lab: TestLab;
let vip = '';
const wheelhouse = tempDir('ah-wheelhouse3-');

before(async () => {
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('af3', HOSTS, [DATA, DATA, [...DATA, 'haproxy'], CONTROL, ['worker']], (net) => {
    vip = `${net}.200`;
    return {
      vips: [{ name: 'airflow-vip', address: vip, role: 'haproxy', routerId: 73 }],
      versions: { airflow: VERSION },
      ports: { haproxyReplica: REPLICA_PORT },
      airflow: standinAirflow(wheelhouse, 2),
    };
  });
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<{ name: string; queues?: string[] }> };
  doc.hosts.find((h) => h.name === 'w1')!.queues = QUEUES;
  await writeFile(lab.inventoryFile, `# The Airflow ${VERSION} lab: ${HOSTS.join(', ')}.\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);

/** TCP connect from a host: prints `open`, `refused` or `timeout` (5 s: a dropped SYN). */
const CONNECT = `
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
`;
async function connect(host: string, address: string, port: number): Promise<string> {
  const r = await py(lab.inventoryFile, host, CONNECT, [address, String(port)]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** Every line healthy except host load (the lab's containers see this shared machine's load average). */
const notHealthy = (lines: CheckLine[]) => lines.filter((l) => l.verdict !== 'healthy' && !(l.component === 'hosts' && /^load /.test(l.reason ?? '')));

test(`bootstrap with Airflow ${VERSION}: api-server behind the VIP, a Celery task on each queue, the worker on the Execution API and off the replica port; status healthy; a second bootstrap changes and restarts nothing`, async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  if (first.exitCode !== 0) {
    const diag = await Promise.all(['af1', 'w1'].map((h) => on(h, `journalctl -u 'airflow-*' --no-pager | tail -40`)));
    assert.fail(`bootstrap exit ${first.exitCode}\n${first.stdout.slice(-5000)}${first.stderr}\n${diag.map((d) => d.stdout).join('\n')}`);
  }
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);

  // The UI's health JSON on the 3.x path through HAProxy on the VIP, from a host that is no api-server.
  const health = await get(lab.inventoryFile, 'pg1', `http://${vip}/api/v2/monitor/health`);
  assert.equal(health.status, 200, health.body);
  const h = JSON.parse(health.body) as Record<string, { status: string }>;
  for (const k of ['metadatabase', 'scheduler', 'triggerer', 'dag_processor']) assert.equal(h[k]?.status, 'healthy', `${k}: ${health.body}`);
  assert.equal((await on('af1', 'systemctl is-active airflow-api-server; systemctl is-enabled airflow-webserver 2>&1 || true')).stdout.split('\n')[0], 'active');

  // One shared JWT secret (the generated one) in the one airflow.cfg; the worker reaches the
  // Execution API through the VIP. `exec` masks secrets in what it prints: compare digests.
  const cfg = (await on('w1', 'cat /opt/airflow/airflow.cfg')).stdout;
  const jwt = await on('af1', `sed -n 's/^jwt_secret = //p' /opt/airflow/airflow.cfg | tr -d '\\n' | sha256sum`);
  assert.equal(jwt.stdout.split(' ')[0], createHash('sha256').update(secrets.airflowJwtSecret.reveal()).digest('hex'));
  assert.equal((await on('af1', 'sha256sum < /opt/airflow/airflow.cfg')).stdout, (await on('w1', 'sha256sum < /opt/airflow/airflow.cfg')).stdout, 'identical on every Airflow host');
  assert.ok(cfg.split('\n').includes(`execution_api_server_url = http://${vip}/execution/`), cfg);
  const exec = await get(lab.inventoryFile, 'w1', `http://${vip}/execution/health`);
  assert.deepEqual(exec, { status: 200, body: '{"status": "healthy"}' });
  assert.match((await on('w1', 'journalctl -u airflow-worker --no-pager')).stdout, new RegExp(`Execution API at http://${vip.replace(/\./g, '\\.')}/execution/ answers`));

  // One Celery task per queue, sent from the scheduler host, consumed by the worker-only host.
  for (const q of QUEUES) {
    const r = await echoTask(lab.inventoryFile, 'af1', q);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result, { hostname: 'w1', tag: q, queue: q });
  }

  // The firewall of Airflow 3: the worker-only host is dropped on HAProxy's replica port, where the
  // control host gets in; the leader port stays open to it (Celery's result backend, src/inventory/ports.ts).
  assert.equal(await connect('w1', vip, REPLICA_PORT), 'timeout', 'the replica port is dropped for a worker-only host');
  assert.equal(await connect('af1', vip, REPLICA_PORT), 'open');
  assert.equal(await connect('w1', vip, 5000), 'open', 'the worker writes Celery task states into the result backend');

  // Exactly one migration; the admin user (FAB's `users create`) exists; no secret on a command line.
  assert.equal(await standinMigrations(lab.inventoryFile, 'pg1', vip, secrets.airflowDb.reveal()), 1);
  const users = await on('af1', `${AS_AIRFLOW} /opt/airflow/venv/bin/airflow users list --output json`);
  assert.deepEqual((JSON.parse(users.stdout) as Array<{ username: string }>).map((u) => u.username), ['admin']);
  // No secret on a command line: `exec` would print any as ***.
  for (const host of ['af1', 'w1']) assert.doesNotMatch((await on(host, 'ps -eo args')).stdout, /\*\*\*/, `a secret is on a command line of ${host}`);

  // status: every check healthy, on the 3.x health path and unit names.
  const healthy = await statusUntil(lab.inventoryFile, 'healthy', (s) => notHealthy(checksOf(s)).length === 0, 180_000);
  const airflow = healthy.report.components.find((c) => c.name === 'airflow')?.checks.map((l) => l.check);
  assert.deepEqual(airflow, ['release', 'scheduler af1', 'triggerer af1', 'dag processor af1', 'webserver af1', `webserver /api/v2/monitor/health via ${vip}`, 'worker celery@w1', 'flower af1']);
  assert.equal(checkOf(healthy, 'airflow', 'worker celery@w1')?.reason, 'consumes default, etl');
  assert.equal(checkOf(healthy, 'airflow', 'webserver af1')?.reason, 'GET /api/v2/monitor/health answers');

  // A second bootstrap: zero changes, no handler, no Airflow service restarted, no second migration.
  const before = [await unitStarts(lab.inventoryFile, 'af1', CONTROL_UNITS), await unitStarts(lab.inventoryFile, 'w1', ['airflow-worker'])];
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
  assert.deepEqual([await unitStarts(lab.inventoryFile, 'af1', CONTROL_UNITS), await unitStarts(lab.inventoryFile, 'w1', ['airflow-worker'])], before);
  assert.equal(await standinMigrations(lab.inventoryFile, 'pg1', vip, secrets.airflowDb.reveal()), 1);
});

// Found by the drill: the RabbitMQ node that holds the classic queue `default` is lost (Debian's
// Celery 5.2 of the stand-in declares classic queues). The worker's queue declare is refused (404,
// "home node ... is down"), Celery stops with "Unrecoverable error" and `airflow celery worker`
// exits 0. Under Restart=on-failure it stayed down for good; under Restart=always systemd starts it
// again every 10 s, and once the node is back the worker consumes and runs tasks.
test('the RabbitMQ node of the default queue killed: the worker exits, systemd starts it again, and once the node is back it runs a task', async () => {
  const pids = (await on('pg2', 'rabbitmqctl -q list_queues -p airflow_host name pid --no-table-headers')).stdout;
  const home = /^default\s+<rabbit@(\w+)\./m.exec(pids)?.[1];
  assert.ok(home && ['pg1', 'pg2', 'pg3'].includes(home), pids);
  const restarts = async () => Number(/NRestarts=(\d+)/.exec((await on('w1', 'systemctl show -p NRestarts airflow-worker.service')).stdout)?.[1]);
  const before = await restarts();
  assert.equal((await on(home, 'systemctl kill -s KILL rabbitmq-server.service; systemctl stop rabbitmq-server.service')).code, 0);
  const t0 = Date.now();
  try {
    let now = before;
    while (now === before && Date.now() - t0 < 90_000) {
      await new Promise((r) => setTimeout(r, 3000));
      now = await restarts();
    }
    process.stderr.write(`[airflow3 e2e] node ${home} killed: worker restarted by systemd after ${((Date.now() - t0) / 1000).toFixed(0)} s (NRestarts ${before} -> ${now})\n`);
    assert.ok(now > before, `w1's worker was not started again within 90 s of losing ${home}: NRestarts ${now}`);
  } finally {
    assert.equal((await on(home, 'systemctl start rabbitmq-server.service')).code, 0);
  }
  await statusUntil(lab.inventoryFile, 'healthy after the node is back', (st) => notHealthy(checksOf(st)).length === 0, 300_000);
  const r = await echoTask(lab.inventoryFile, 'af1', 'default');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.result?.hostname, 'w1');
  process.stderr.write(`[airflow3 e2e] a task ran on w1 ${((Date.now() - t0) / 1000).toFixed(0)} s after the kill\n`);
});
