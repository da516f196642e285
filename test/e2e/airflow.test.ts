/**
 * `airflow-ha bootstrap` with the Airflow services, end to end, on a 4-host lab: 3 hosts with etcd,
 * PostgreSQL and RabbitMQ, 1 host with every Airflow role; HAProxy + the VIP on that host and on pg3
 * (keepalived needs a peer; the replica port moves off RabbitMQ's stream range 6000-6500 there).
 * A fifth host is booted outside the inventory: `add-worker` brings it in, `remove-worker` out.
 *
 * The lab cannot install Airflow (it has the Debian archive only), so the Airflow installed here is
 * the STAND-IN of test/standin/ (not Airflow): built by this test as a real wheel into a temporary
 * wheelhouse and installed through the tool's own wheelhouse path. It runs against the real
 * PostgreSQL (through the VIP), RabbitMQ (a real Celery worker) and HAProxy the tool set up.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { quote } from '../../src/core/cmd.js';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import type { CheckLine } from '../../src/status/model.js';
import { AS_AIRFLOW as asAirflow, buildStandin, echoTask, standinAirflow, get as getFrom, GET, py as pyOn, standinMigrations, unitStarts } from '../helpers/airflow-lab.js';
import { bootLab, cli, events, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';
import { checkOf, checksOf, statusUntil as untilStatus, type Status } from '../helpers/status.js';

const VERSION = '2.9.0';
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1'];
/** Booted with the lab but left out of the inventory until add-worker writes it in. */
const NEW_WORKER = 'w2';
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const AIRFLOW = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'worker', 'flower'];
const QUEUES = ['default', 'etl'];
const UNITS = ['scheduler', 'triggerer', 'dag-processor', 'webserver', 'worker', 'flower'].map((u) => `airflow-${u}`);

let lab: TestLab;
let vip = '';
const wheelhouse = tempDir('ah-wheelhouse-');

before(async () => {
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('af', [...HOSTS, NEW_WORKER], [DATA, DATA, [...DATA, 'haproxy'], AIRFLOW, ['worker']], (net) => {
    vip = `${net}.200`;
    return {
      vips: [{ name: 'airflow-vip', address: vip, role: 'haproxy', routerId: 71 }],
      versions: { airflow: VERSION },
      ports: { haproxyReplica: 5001 },
      airflow: standinAirflow(wheelhouse, 2),
    };
  });
  // The worker's queues (bootLab writes hosts with name, address and roles only).
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<{ name: string; queues?: string[] }> };
  doc.hosts.find((h) => h.name === 'af1')!.queues = QUEUES;
  doc.hosts = doc.hosts.filter((h) => h.name !== NEW_WORKER);
  await writeFile(lab.inventoryFile, `# The Airflow lab: ${HOSTS.join(', ')}; ${NEW_WORKER} joins through add-worker.\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);

const py = (host: string, script: string, args: string[] = [], prefix = 'python3') => pyOn(lab.inventoryFile, host, script, args, prefix);
const get = (host: string, url: string, auth?: string) => getFrom(lab.inventoryFile, host, url, auth);
const starts = () => unitStarts(lab.inventoryFile, 'af1', UNITS);
const migrations = (pw: string) => standinMigrations(lab.inventoryFile, 'pg1', vip, pw);

test('bootstrap installs the Airflow stand-in from a wheelhouse and runs every Airflow service; a second bootstrap changes nothing', async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  if (first.exitCode !== 0) {
    const diag = await on('af1', `journalctl -u 'airflow-*' --no-pager | tail -60`);
    assert.fail(`bootstrap exit ${first.exitCode}\n${first.stdout.slice(-5000)}${first.stderr}\n${diag.stdout}`);
  }
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);

  // /health through HAProxy's frontend on the VIP, from a host that is not a webserver.
  const health = await get('pg1', `http://${vip}/health`);
  assert.equal(health.status, 200, health.body);
  const h = JSON.parse(health.body) as Record<string, { status: string }>;
  assert.equal(h['metadatabase']?.status, 'healthy', health.body);
  assert.equal(h['scheduler']?.status, 'healthy', health.body);
  assert.equal(h['triggerer']?.status, 'healthy', health.body);
  assert.equal(h['dag_processor']?.status, 'healthy', health.body);

  // One Celery task per inventory queue, consumed by the real worker on the real RabbitMQ cluster,
  // its result stored in PostgreSQL through result_backend.
  for (const q of QUEUES) {
    const r = await echoTask(lab.inventoryFile, 'af1', q);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.result, { hostname: 'af1', tag: q, queue: q });
  }

  // Every job type alive on this host, as `airflow jobs check --local` sees it.
  for (const type of ['SchedulerJob', 'TriggererJob', 'DagProcessorJob']) {
    const r = await on('af1', `${asAirflow} /opt/airflow/venv/bin/airflow jobs check --job-type ${type} --local`);
    assert.equal(r.code, 0, `${type}: ${r.stdout}${r.stderr}`);
  }

  // Exactly one migration; the admin user exists; the DAG processor holds its etcd lock.
  assert.equal(await migrations(secrets.airflowDb.reveal()), 1);
  const users = await on('af1', `${asAirflow} /opt/airflow/venv/bin/airflow users list --output json`);
  assert.deepEqual((JSON.parse(users.stdout) as Array<{ username: string }>).map((u) => u.username), ['admin']);
  const lock = await on('pg1', 'ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 get --prefix /airflow-ha/ --keys-only');
  assert.match(lock.stdout, /\/dag-processor\//, lock.stdout);

  // Flower behind basic auth, from pg3 (a HAProxy host: the firewall opens Flower to HAProxy only);
  // the worker's log server by host name from the webserver host (here af1 itself); from a host that
  // is neither, both are dropped (the network matrix of src/inventory/ports.ts).
  const flowerUrl = 'http://af1:5555/healthcheck';
  assert.equal((await get('pg3', flowerUrl)).status, 401);
  assert.equal((await get('pg3', flowerUrl, 'admin:wrong')).status, 401);
  const flower = await get('pg3', flowerUrl, `admin:${secrets.flowerBasicAuth.reveal()}`);
  assert.deepEqual(flower, { status: 200, body: 'OK' });
  const log = await get('af1', 'http://af1:8793/log/worker-af1.log');
  assert.equal(log.status, 200);
  assert.match(log.body, /worker started/);
  for (const url of [flowerUrl, 'http://af1:8793/log/worker-af1.log']) {
    const dropped = await py('pg2', GET, [url]);
    assert.notEqual(dropped.code, 0, `${url} answered pg2: ${dropped.stdout}`);
    assert.match(dropped.stderr, /timed out/, url);
  }

  // Secrets: airflow.cfg readable by root and airflow only; no secret on any command line.
  const mode = await on('af1', 'stat -c "%a %U %G" /opt/airflow/airflow.cfg /etc/airflow-ha/airflow-admin.password');
  assert.equal(mode.stdout.trim(), '640 root airflow\n600 root root');
  const ps = await on('af1', 'ps -eo args');
  for (const s of [secrets.airflowAdmin, secrets.airflowDb, secrets.rabbitmqAirflow, secrets.flowerBasicAuth, secrets.airflowFernetKey]) {
    assert.ok(!ps.stdout.includes(s.reveal()), 'a secret is on a command line');
  }

  // A second bootstrap: zero changes, no handler, no Airflow service restarted, no second migration.
  const before = await starts();
  const second = await cli(['bootstrap', ...inv(), '--json']);
  assert.equal(second.exitCode, 0, second.stdout.slice(-3000) + second.stderr);
  assert.deepEqual(runEnd(second.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
  assert.equal(events(second.stdout).filter((e) => e.type === 'handler').length, 0);
  assert.equal(await starts(), before);
  assert.equal(await migrations(secrets.airflowDb.reveal()), 1);
});

const statusUntil = (what: string, pred: (s: Status) => boolean, timeoutMs: number) => untilStatus(lab.inventoryFile, what, pred, timeoutMs);
/** Every line healthy except host load (the lab's containers see this shared machine's load average). */
const healthyBut = (s: Status, except: (l: CheckLine) => boolean = () => false) =>
  checksOf(s).filter((l) => l.verdict !== 'healthy' && !(l.component === 'hosts' && /^load /.test(l.reason ?? '')) && !except(l));

test('as the airflow account, the venv and the install tree cannot be swapped; a cluster with the old airflow-owned home is fixed, then a re-run changes nothing', async () => {
  const as = (cmd: string) => on('af1', `cd / && runuser -u airflow -- sh -c ${quote(cmd)}`);
  // (a) The account that runs the services cannot rename the venv away or write into it or its home.
  for (const attempt of ['mv /opt/airflow/venv /opt/airflow/venv.moved', 'touch /opt/airflow/venv/bin/planted', 'ln -s /tmp /opt/airflow/planted']) {
    const r = await as(attempt);
    assert.notEqual(r.code, 0, `airflow may not: ${attempt}`);
    assert.match(r.stderr, /Permission denied/, attempt);
  }
  assert.equal((await on('af1', 'test -d /opt/airflow/venv && ! test -e /opt/airflow/venv.moved && ! test -e /opt/airflow/venv/bin/planted')).code, 0);
  // It still writes where Airflow must: its logs and its state folder (pid files, webserver_config.py).
  const writes = await as('touch /opt/airflow/logs/.w /opt/airflow/state/.w && rm /opt/airflow/logs/.w /opt/airflow/state/.w');
  assert.equal(writes.code, 0, writes.stderr);
  // The venv is root's link to the version's own virtualenv (root's too), switched by rename(2).
  const venv = `/opt/airflow/venv-${VERSION}`;
  const owners = await on('af1', `stat -c "%n %U:%G %a %F" /opt/airflow /opt/airflow/venv ${venv} ${venv}/bin/python3 /opt/airflow/logs /opt/airflow/state && readlink /opt/airflow/venv`);
  assert.equal(
    owners.stdout.trim(),
    [
      '/opt/airflow root:root 755 directory',
      '/opt/airflow/venv root:root 777 symbolic link',
      `${venv} root:root 755 directory`,
      `${venv}/bin/python3 root:root 777 symbolic link`,
      '/opt/airflow/logs airflow:airflow 755 directory',
      '/opt/airflow/state airflow:airflow 750 directory',
      `venv-${VERSION}`,
    ].join('\n'),
  );
  // (d) A cluster bootstrapped before this rule: the home was the account's. A run fixes it, the next changes nothing.
  assert.equal((await on('af1', 'chown airflow:airflow /opt/airflow')).code, 0);
  const fix = await cli(['apply', ...inv(), '--playbook', 'airflow', '--json']);
  assert.equal(fix.exitCode, 0, fix.stdout.slice(-3000) + fix.stderr);
  const changed = events(fix.stdout).filter((e) => e['status'] === 'changed').map((e) => `${String(e['host'])}: ${String(e['task'])}`);
  assert.deepEqual(changed, ['af1: directory /opt/airflow'], 'only the home changes');
  assert.equal((await on('af1', 'stat -c %U:%G /opt/airflow')).stdout.trim(), 'root:root');
  const again = await cli(['apply', ...inv(), '--playbook', 'airflow', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  assert.equal(runEnd(again.stdout).hosts.reduce((a, h) => a + h.changed, 0), 0, JSON.stringify(events(again.stdout).filter((e) => e['status'] === 'changed')));
});

test('status on the Airflow lab: every Airflow check healthy; a stopped worker is named with its unconsumed queues, a hung scheduler by its stale heartbeat, a stopped one by its unit', async () => {
  const healthy = await statusUntil('healthy', (s) => healthyBut(s).length === 0, 120_000);
  const airflow = healthy.report.components.find((c) => c.name === 'airflow')?.checks.map((l) => l.check);
  assert.deepEqual(airflow, ['release', 'scheduler af1', 'triggerer af1', 'dag processor af1', 'webserver af1', `webserver /health via ${vip}`, 'worker celery@af1', 'flower af1']);
  // What the hosts' virtualenvs hold: the stand-in, and status says it is not Apache Airflow.
  assert.match(checkOf(healthy, 'airflow', 'release')?.reason ?? '', /^Airflow stand-in, not Apache Airflow \(it calls itself \d+\.\d+\.\d+\) on 1 hosts$/);
  assert.match(checkOf(healthy, 'airflow', 'scheduler af1')?.reason ?? '', /^heartbeat \d+(\.\d)? s ago$/);
  // The broker's consumers: a client at af1's address consumes both queues.
  assert.equal(checkOf(healthy, 'airflow', 'worker celery@af1')?.reason, 'consumes default, etl');
  assert.equal(checkOf(healthy, 'airflow', 'flower af1')?.reason, 'GET /healthcheck OK');

  try {
    // The worker stopped: it no longer answers, and RabbitMQ names its queues without a consumer. Still serving.
    assert.equal((await on('af1', 'systemctl stop airflow-worker')).code, 0);
    const noWorker = await statusUntil('worker down', (s) => checkOf(s, 'airflow', 'worker celery@af1')?.verdict === 'down' && QUEUES.every((q) => checkOf(s, 'rabbitmq', `queue ${q}`)?.verdict === 'degraded'), 60_000);
    assert.match(checkOf(noWorker, 'airflow', 'worker celery@af1')?.reason ?? '', /^airflow-worker\.service inactive; consumes no queue on the broker \(expected (default, etl|etl, default)\)$/);
    for (const q of QUEUES) assert.match(checkOf(noWorker, 'rabbitmq', `queue ${q}`)?.reason ?? '', /^no consumer/);
    assert.equal(noWorker.exitCode, 1, noWorker.report.summary);
    assert.match(noWorker.report.summary, /airflow: worker celery@af1: airflow-worker\.service inactive/);

    // The scheduler hangs (SIGSTOP: its unit stays active, its heartbeat stops): the heartbeat goes
    // stale after Airflow's 30 s scheduler_health_check_threshold; once the UI's /health through the
    // VIP says so too, a serving path is observed down and the cluster is not serving.
    assert.equal((await on('af1', 'systemctl kill -s STOP airflow-scheduler')).code, 0);
    const hung = await statusUntil('scheduler heartbeat stale, UI says so', (s) => checkOf(s, 'airflow', 'schedulers')?.verdict === 'down' && s.exitCode === 3, 90_000);
    assert.match(checkOf(hung, 'airflow', 'scheduler af1')?.reason ?? '', /^last heartbeat \d+(\.\d)? s ago \(alive within 30 s\)$/, 'the unit is active: only the heartbeat tells');
    assert.equal(checkOf(hung, 'airflow', 'schedulers')?.reason, 'no scheduler heartbeat on any of 1 hosts');
    assert.equal(hung.report.serving, false);
    assert.match(hung.report.summary, new RegExp(`^DOWN: airflow: webserver /health via ${vip.replace(/\./g, '\\.')}: scheduler unhealthy`));

    // The scheduler stopped cleanly: it ends its job, and the unit's state is named with it.
    assert.equal((await on('af1', 'systemctl kill -s CONT airflow-scheduler && systemctl stop airflow-scheduler')).code, 0);
    const stopped = await statusUntil('scheduler stopped', (s) => /inactive/.test(checkOf(s, 'airflow', 'scheduler af1')?.reason ?? ''), 60_000);
    assert.match(checkOf(stopped, 'airflow', 'scheduler af1')?.reason ?? '', /^airflow-scheduler\.service inactive; (no running SchedulerJob from af1|last heartbeat \d+(\.\d)? s ago (\(alive within 30 s\)|, from before it stopped))$/);
  } finally {
    await on('af1', 'systemctl kill -s CONT airflow-scheduler; systemctl start airflow-scheduler airflow-worker');
  }
  await statusUntil('healthy again', (s) => healthyBut(s).length === 0, 120_000);
});

const echoOn = (queue: string) => echoTask(lab.inventoryFile, 'af1', queue);

test('add-worker brings a new host in: it consumes its queue and every host knows it; remove-worker drains it and takes it out; the inventory file keeps every other byte', async () => {
  const original = await readFile(lab.inventoryFile, 'utf8');
  const w2 = lab.loaded.inventory.hosts.find((h) => h.name === NEW_WORKER)!;
  const add = await cli(['add-worker', ...inv(), NEW_WORKER, '--address', w2.address, '--queues', 'etl2', '--json', '--accept-new-host-keys']);
  if (add.exitCode !== 0) {
    const diag = await on(NEW_WORKER, `journalctl -u 'airflow-*' --no-pager | tail -40`);
    assert.fail(`add-worker exit ${add.exitCode}\n${add.stdout.slice(-4000)}${add.stderr}\n${diag.stdout}`);
  }
  const added = await readFile(lab.inventoryFile, 'utf8');
  assert.ok(added.startsWith(original), 'the file is the old one plus the new entry');
  assert.match(added.slice(original.length), /^ {2}- name: w2\n {4}address: [0-9.]+\n {4}roles: \[worker\]\n {4}queues: \[etl2\]\n$/);

  // The new worker consumes its queue on the real broker; the others resolve its name; PostgreSQL lets it in.
  const echo = await echoOn('etl2');
  assert.equal(echo.code, 0, echo.stderr);
  assert.deepEqual(echo.result, { hostname: NEW_WORKER, tag: 'etl2', queue: 'etl2' });
  for (const h of ['pg1', 'af1']) assert.match((await on(h, `getent hosts ${NEW_WORKER}`)).stdout, new RegExp(`^${w2.address.replace(/\./g, '\\.')}\\s`));
  assert.match((await on('pg2', 'cat /etc/patroni/config.yml')).stdout, new RegExp(`host airflow airflow ${w2.address.replace(/\./g, '\\.')}/32`));

  // Re-running add-worker changes nothing anywhere.
  const again = await cli(['add-worker', ...inv(), NEW_WORKER, '--address', w2.address, '--queues', 'etl2', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.filter((h) => h.changed !== 0), []);
  assert.equal(await readFile(lab.inventoryFile, 'utf8'), added);

  // remove-worker: drained and stopped, out of the inventory (back to the same bytes) and of /etc/hosts.
  const removed = await cli(['remove-worker', ...inv(), NEW_WORKER, '--json', '--drain-timeout', '60']);
  assert.equal(removed.exitCode, 0, removed.stdout.slice(-4000) + removed.stderr);
  const drained = events(removed.stdout).find((e) => e.type === 'task' && String(e['task']).startsWith('drain celery@w2'));
  assert.equal(drained?.['status'], 'changed');
  assert.equal(await readFile(lab.inventoryFile, 'utf8'), original);
  // w2 is out of the inventory now, so it is looked at through the run's events and the broker.
  const stopped = events(removed.stdout).find((e) => e.type === 'task' && e['host'] === NEW_WORKER && String(e['task']).startsWith('service airflow-worker.service'));
  assert.equal(stopped?.['status'], 'changed', JSON.stringify(stopped));
  const ping = await on('af1', `${asAirflow} /opt/airflow/venv/bin/celery --app airflow.providers.celery.executors.celery_executor.app inspect ping --timeout 5 --destination celery@${NEW_WORKER}`);
  assert.notEqual(ping.code, 0, 'the removed worker no longer answers');
  assert.notEqual((await on('pg1', `getent hosts ${NEW_WORKER}`)).code, 0);
  assert.doesNotMatch((await on('pg2', 'cat /etc/patroni/config.yml')).stdout, new RegExp(`${w2.address.replace(/\./g, '\\.')}/32`));
});
