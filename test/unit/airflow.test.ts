/**
 * The Airflow component: airflow.cfg and every unit of the seed inventory against golden files
 * (UPDATE_GOLDEN=1 rewrites them), the units accepted by `systemd-analyze verify`, the per-major
 * layout table, the install sources, the migrate guards and the inventory rules on versions.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AIRFLOW_LAYOUTS,
  airflowLayout,
  airflowMigrateTasks,
  airflowServices,
  celeryInspectCmd,
  dagProcessorHosts,
  pipInstallCmd,
  renderAirflowConfig,
  renderAirflowUnit,
  triggererHosts,
  wheelhouseFiles,
  workerPingCheck,
} from '../../src/components/airflow.js';
import { sh } from '../../src/core/cmd.js';
import { InputError } from '../../src/core/errors.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { renderFiles } from '../../src/cli/render.js';
import { airflow } from '../../playbooks/airflow.js';
import { assertAirflowGoldens, assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { firstRunScripts } from '../helpers/scripts.js';
import { LocalConnection, tempDir } from '../helpers/local.js';

const host = (inv: Inventory, name: string) => {
  const h = inv.hosts.find((x) => x.name === name);
  assert.ok(h, name);
  return h;
};

test('golden: airflow.cfg and the units of every seed Airflow host', async () => {
  const inv = await seedInventory();
  const units = await assertAirflowGoldens(inv, 'airflow');
  // No triggerer host in the seed: the triggerer runs on both schedulers; DAG processors on the nfs hosts.
  assert.deepEqual(units, [
    'airflow/airflow-scheduler.service',
    'airflow/airflow-triggerer.service',
    'airflow/airflow-webserver.service',
    'airflow/airflow-flower.service',
    'scheduler2/airflow-scheduler.service',
    'scheduler2/airflow-triggerer.service',
    'haproxy2/airflow-webserver.service',
    'ftp/airflow-dag-processor.service',
    'nfs2/airflow-dag-processor.service',
    'worker1/airflow-worker.service',
  ]);
});

test('airflow.cfg: the keys the reference asks for, secrets only through the template', async () => {
  const inv = await seedInventory();
  const cfg = renderAirflowConfig(inv, fixedSecrets);
  const want = [
    'executor = CeleryExecutor',
    'dags_folder = /opt/airflow/dags',
    'load_examples = False',
    'fernet_key = fixed-airflowFernetKey-value',
    'sql_alchemy_conn = postgresql+psycopg2://airflow:fixed-airflowDb-value@192.168.83.210:5000/airflow',
    'sql_alchemy_pool_pre_ping = True',
    'secret_key = fixed-airflowSecretKey-value',
    'use_row_level_locking = True',
    'standalone_dag_processor = True',
    'result_backend = db+postgresql://airflow:fixed-airflowDb-value@192.168.83.210:5000/airflow',
    'worker_log_server_port = 8793',
    'flower_basic_auth = admin:fixed-flowerBasicAuth-value',
  ];
  for (const line of want) assert.ok(cfg.split('\n').includes(line), `missing: ${line}`);
  const broker = /^broker_url = (.*)$/m.exec(cfg)?.[1] ?? '';
  assert.deepEqual(broker.split(';'), ['135', '136', '137'].map((n) => `amqp://airflow:fixed-rabbitmqAirflow-value@192.168.83.${n}:5672/airflow_host`));
  const files = renderFiles(airflow, inv, fixedSecrets, 'debian').filter((f) => f.path === '/opt/airflow/airflow.cfg');
  assert.deepEqual(files.map((f) => f.host), ['airflow', 'scheduler2', 'haproxy2', 'ftp', 'nfs2', 'worker1'], 'every Airflow host of the seed');
  assert.ok(files.every((f) => f.mode === '0640' && f.content.toString() === cfg), 'identical everywhere, 0640');
});

test('systemd-analyze verify accepts every unit (ExecStart binaries stood in by stubs under a temp root)', async (t) => {
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
    t.skip('systemd-analyze not installed');
    return;
  }
  const inv = await seedInventory();
  const root = tempDir('ah-verify-');
  try {
    const unitDir = path.join(root, 'etc/systemd/system');
    await mkdir(unitDir, { recursive: true });
    // The machine's own units (sysinit.target, ...) that ours are ordered against.
    await mkdir(path.join(root, 'usr/lib/systemd'), { recursive: true });
    await symlink('/usr/lib/systemd/system', path.join(root, 'usr/lib/systemd/system'));
    await mkdir(path.join(root, 'etc/airflow-ha'), { recursive: true });
    await writeFile(path.join(root, 'etc/airflow-ha/airflow.env'), 'AIRFLOW_HOME=/opt/airflow\n');
    /** verify's findings about the given unit files (it exits 0 on unknown keys: read its output). */
    const verify = (files: string[]) => {
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...files], { encoding: 'utf8' });
      return `${r.stdout}${r.stderr}`.split('\n').filter((l) => files.some((f) => l.includes(path.basename(f))));
    };
    const files: string[] = [];
    for (const h of inv.hosts) {
      for (const svc of airflowServices(inv, h)) {
        // verify checks that ExecStart's binary exists and is executable, under --root.
        const bin = path.join(root, svc.argv[0] ?? '');
        await mkdir(path.dirname(bin), { recursive: true });
        await writeFile(bin, '#!/bin/sh\n');
        await chmod(bin, 0o755);
        const file = path.join(unitDir, `${h.name}-${svc.unit}`);
        const unit = renderAirflowUnit(inv, svc);
        // Restarted after any exit: the Celery worker exits 0 after an unrecoverable broker error.
        assert.deepEqual(unit.split('\n').filter((l) => l.startsWith('Restart')), ['Restart=always', 'RestartSec=10s'], svc.unit);
        await writeFile(file, unit);
        files.push(file);
      }
    }
    assert.equal(files.length, 10);
    assert.deepEqual(verify(files), []);
    // And it does find a broken unit, so the empty list above means something.
    const broken = path.join(unitDir, 'broken-airflow.service');
    await writeFile(broken, renderAirflowUnit(inv, airflowServices(inv, host(inv, 'worker1'))[0]!).replace(/^Restart=/m, 'Restartt='));
    assert.match(verify([broken]).join('\n'), /Unknown key 'Restartt'/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the per-major layout table: Airflow 2 and Airflow 3 rows, a major without a row refused', () => {
  assert.equal(airflowLayout('2.9.0').commands.webserver.join(' '), 'webserver');
  assert.equal(airflowLayout('2.11.1').healthPath, '/health');
  assert.deepEqual(airflowLayout('3.4.0').commands.webserver, ['api-server']);
  assert.equal(airflowLayout('3.0.2').healthPath, '/api/v2/monitor/health');
  assert.equal(airflowLayout('3.4.0').units.webserver, 'airflow-api-server.service');
  assert.equal(airflowLayout('3.4.0').configTemplate, 'airflow/airflow3.cfg.njk');
  assert.equal(AIRFLOW_LAYOUTS[3].secrets['api_auth.jwt_secret'], 'airflowJwtSecret');
  assert.ok(AIRFLOW_LAYOUTS[2].implemented && AIRFLOW_LAYOUTS[3].implemented);
  assert.throws(() => airflowLayout('4.0.0'), /no layout for major version 4/);
});

test('placement: triggerer and DAG processor fall back to the scheduler hosts; workers get their queues', async () => {
  const inv = await seedInventory();
  assert.deepEqual(triggererHosts(inv).map((h) => h.name), ['airflow', 'scheduler2']);
  assert.deepEqual(dagProcessorHosts(inv).map((h) => h.name), ['ftp', 'nfs2']);
  const noDp = { ...inv, hosts: inv.hosts.map((h) => ({ ...h, roles: h.roles.filter((r) => r !== 'dag_processor') })) } as Inventory;
  assert.deepEqual(dagProcessorHosts(noDp).map((h) => h.name), ['airflow', 'scheduler2']);
  const worker = { ...host(inv, 'worker1'), queues: ['a', 'b'] };
  const w = airflowServices({ ...inv, cluster: { ...inv.cluster, airflow: { ...inv.cluster.airflow, workerConcurrency: 4 } } }, worker);
  assert.deepEqual(w.map((s) => s.argv.slice(1).join(' ')), ['celery worker --queues a,b --celery-hostname celery@worker1 --concurrency 4 --pid /opt/airflow/state/worker.pid']);
  const dp = airflowServices(inv, host(inv, 'ftp'))[0];
  assert.deepEqual(dp?.argv.slice(0, 4), ['/usr/bin/etcdctl', '--endpoints=http://192.168.83.148:2379,http://192.168.83.147:2379,http://192.168.83.149:2379', 'lock', '--ttl=15']);
});

test('install sources: pip arguments per source, constraints of the pinned versions', async () => {
  const inv = await seedInventory();
  const withInstall = (install: Inventory['cluster']['airflow']['install']) => ({ ...inv, cluster: { ...inv.cluster, airflow: { ...inv.cluster.airflow, install } } });
  assert.equal(
    pipInstallCmd(inv).toString(),
    "/opt/airflow/venv-2.9.0/bin/pip install --disable-pip-version-check --no-input --constraint https://raw.githubusercontent.com/apache/airflow/constraints-2.9.0/constraints-3.11.txt 'apache-airflow[celery,postgres]==2.9.0'",
  );
  assert.match(pipInstallCmd(withInstall({ source: 'index', indexUrl: 'https://pypi.example/simple' })).toString(), /--index-url https:\/\/pypi\.example\/simple --constraint /);
  assert.match(pipInstallCmd(withInstall({ source: 'wheelhouse', wheelhouse: '/w' })).toString(), /--no-index --find-links \/opt\/airflow\/wheelhouse --constraint \/opt\/airflow\/wheelhouse\/constraints\.txt /);
  const dir = tempDir('ah-wh-');
  await mkdir(dir, { recursive: true });
  try {
    assert.throws(() => wheelhouseFiles(dir, '2.9.0'), /no constraints\.txt/);
    await writeFile(path.join(dir, 'constraints.txt'), '');
    assert.throws(() => wheelhouseFiles(dir, '2.9.0'), /no apache_airflow-2\.9\.0-\*\.whl/);
    await writeFile(path.join(dir, 'apache_airflow-2.9.0-py3-none-any.whl'), 'x');
    await writeFile(path.join(dir, 'celery-5.3.6-py3-none-any.whl'), 'x');
    assert.deepEqual(wheelhouseFiles(dir, '2.9.0'), ['constraints.txt', 'apache_airflow-2.9.0-py3-none-any.whl', 'celery-5.3.6-py3-none-any.whl']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('migrate and admin user: guarded, and no secret on a command line', async () => {
  const inv = await seedInventory();
  const tasks = airflowMigrateTasks(inv, fixedSecrets);
  assert.deepEqual(tasks.map((t) => t.name), ['airflow db migrate', 'file /etc/airflow-ha/airflow-admin.password (secret)', 'airflow user admin']);
  const facts = tasks[0]!.facts({ osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: false });
  assert.match(facts[0]!.cmd.toString(), /airflow db check-migrations -t 1/);
  const ops = tasks.flatMap((t) => {
    const fresh = { get: <T>(f: { parse(s: string, c: number): T }) => f.parse('', 1) };
    return t.plan(fresh as never, { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: false }).ops;
  });
  for (const op of ops) if (op.kind === 'exec') assert.ok(!op.cmd.render().includes('fixed-airflowAdmin-value'), op.cmd.toString());
  const create = ops.find((o) => o.kind === 'exec' && /users create/.test(o.cmd.render()));
  assert.match(create?.kind === 'exec' ? create.cmd.render() : '', /< \/etc\/airflow-ha\/airflow-admin\.password$/);
});

test('inventory rules: 2.x warns end of life, 3.0-3.4 accepted without it, unsupported versions are refused, install sources need their field', async () => {
  const base = 'cluster:\n  name: c\n  network: 10.1.0.0/24\n  versions: { airflow: "VERSION" }\nhosts:\n  - { name: a, address: 10.1.0.5, roles: [scheduler] }\n';
  const warn = parseInventory(base.replace('VERSION', '2.10.5'), 'x.yaml').warnings.map((w) => w.rule);
  // The one scheduler host is a single point of failure too.
  assert.deepEqual(warn, ['airflow:end-of-life', 'spof:scheduler']);
  for (const v of ['3.4.0', '3.0.2', '3.2.1']) assert.deepEqual(parseInventory(base.replace('VERSION', v), 'x.yaml').warnings.map((w) => w.rule).filter((r) => r.startsWith('airflow:')), [], v);
  for (const [v, msg] of [['3.5.0', /from 3\.0\.0 to 3\.4\.x \(newest "3\.4\.0"\)/], ['4.0.0', /not a supported Airflow version/], ['2.8.4', /not a supported Airflow version/], ['2.9', /not a supported/], ['3.4', /not a supported/]] as const) {
    assert.throws(() => parseInventory(base.replace('VERSION', v), 'x.yaml'), (e: unknown) => e instanceof InputError && e.diagnostics.some((d) => d.rule === 'airflow:version' && msg.test(d.message)));
  }
  const noAirflow = base.replace('VERSION', '2.9.0').replace('[scheduler]', '[etcd]');
  assert.ok(!parseInventory(noAirflow, 'x.yaml').warnings.some((w) => w.rule === 'airflow:end-of-life'), 'no Airflow host, no Airflow warning');
  const wh = base.replace('VERSION', '2.9.0').replace('  versions:', '  airflow: { install: { source: wheelhouse } }\n  versions:');
  assert.throws(() => parseInventory(wh, 'x.yaml'), (e: unknown) => e instanceof InputError && e.diagnostics.some((d) => d.rule === 'airflow:install'));
  const rel = parseInventory(wh.replace('source: wheelhouse', 'source: wheelhouse, wheelhouse: wheels'), '/srv/inv/x.yaml');
  assert.equal(rel.inventory.cluster.airflow.install.wheelhouse, '/srv/inv/wheels', 'relative to the inventory file');
});

test('celery commands (status check, ping gate, drain) take the broker from airflow.cfg into the environment, never from Airflow or argv', async () => {
  const inv = await seedInventory();
  const home = tempDir('ah-celery-');
  inv.cluster.airflow.home = home;
  // The Airflow account here: an unprivileged user this machine has.
  inv.cluster.airflow.user = 'nobody';
  const w = host(inv, 'worker1');
  // A stand-in `celery` that reports its user, working directory, environment's broker and its
  // arguments, and fails for `inspect active`.
  await mkdir(path.join(home, 'venv', 'bin'), { recursive: true });
  await chmod(home, 0o755);
  await writeFile(path.join(home, 'venv', 'bin', 'celery'), '#!/bin/sh\necho "user=$(id -un) cwd=$PWD broker=$CELERY_BROKER_URL args=$*"\n[ "$2" = active ] && exit 69\nexit 0\n');
  await chmod(path.join(home, 'venv', 'bin', 'celery'), 0o755);
  await writeFile(path.join(home, 'airflow.cfg'), '[celery]\nbroker_url = amqp://airflow:pw@10.0.0.1:5672/v;amqp://airflow:pw@10.0.0.2:5672/v\n', { mode: 0o644 });
  const conn = new LocalConnection();
  try {
    // Root never runs the venv's celery: it runs as the Airflow account, from /.
    assert.match(celeryInspectCmd(inv, w, 'ping', 5).render(), /^runuser -u nobody -- sh -c /);
    const q = await conn.exec(celeryInspectCmd(inv, w, 'active_queues', 2));
    assert.deepEqual(q, { code: 0, stdout: 'user=nobody cwd=/ broker=amqp://airflow:pw@10.0.0.1:5672/v;amqp://airflow:pw@10.0.0.2:5672/v args=inspect active_queues --timeout 2 --destination celery@worker1 --json\n', stderr: '' });
    assert.doesNotMatch(q.stdout, /--app/, 'Celery\'s own app: Airflow is not imported');
    // A simple command: it composes with && and $(...), and its exit code is celery's.
    assert.equal((await conn.exec(sh`${workerPingCheck(inv, w)} && echo gate-passed`)).stdout, 'gate-passed\n');
    assert.equal((await conn.exec(sh`n=$(${celeryInspectCmd(inv, w, 'active', 5)}); echo "rc=$? $n"`)).stdout, `rc=69 user=nobody cwd=/ broker=amqp://airflow:pw@10.0.0.1:5672/v;amqp://airflow:pw@10.0.0.2:5672/v args=inspect active --timeout 5 --destination celery@worker1 --json\n`);
    assert.doesNotMatch(celeryInspectCmd(inv, w, 'ping', 5).render(), /pw@/, 'the password is read on the host, not sent');
    // No broker_url: exit 1 with the reason on stderr; celery never runs (it would fall back to localhost).
    await writeFile(path.join(home, 'airflow.cfg'), '[celery]\n');
    const none = await conn.exec(sh`${workerPingCheck(inv, w)} && echo gate-passed`);
    assert.deepEqual(none, { code: 1, stdout: '', stderr: `no broker_url in ${home}/airflow.cfg\n` });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('ownership: AIRFLOW_HOME and the venv are root\'s, the account writes only logs and state; pid files and webserver_config.py go to state', async () => {
  const inv = await seedInventory();
  const debian = { osId: 'debian', osVersion: '12', family: 'debian' as const, hostname: 'fresh', container: false };
  const script = firstRunScripts(airflow, inv, debian, fixedSecrets, 'ownership').get('worker1') ?? '';
  // Home root's, right after the account (useradd --create-home makes it the account's).
  assert.match(script, /useradd[^\n]* airflow \)\n# task: directory \/opt\/airflow\n\( install -d -m 0755 -o root -g root \/opt\/airflow \)/);
  assert.match(script, /\( install -d -m 0755 -o airflow -g airflow \/opt\/airflow\/logs \)/);
  assert.match(script, /\( install -d -m 0750 -o airflow -g airflow \/opt\/airflow\/state \)/);
  // A venv with anything not root's in it is removed, then built again, before pip runs (as root,
  // in the root-owned venv of the version); then the root-owned `venv` link is switched onto it.
  assert.match(script, /# task: virtualenv \/opt\/airflow\/venv-2\.9\.0 is root's alone \(else rebuilt\)\n\( rm -rf -- \/opt\/airflow\/venv-2\.9\.0 \)[\s\S]*-m venv \/opt\/airflow\/venv-2\.9\.0[\s\S]*\/opt\/airflow\/venv-2\.9\.0\/bin\/pip install[\s\S]*# task: \/opt\/airflow\/venv -> venv-2\.9\.0\n\( rm -rf -- \/opt\/airflow\/venv\.new && ln -s venv-2\.9\.0 \/opt\/airflow\/venv\.new && [^\n]*mv -T \/opt\/airflow\/venv\.new \/opt\/airflow\/venv/);
  const w = airflowServices(inv, host(inv, 'worker1')).find((x) => x.kind === 'worker');
  assert.deepEqual(w?.argv.slice(-2), ['--pid', '/opt/airflow/state/worker.pid']);
  const web = airflowServices(inv, host(inv, 'airflow')).find((x) => x.kind === 'webserver');
  assert.deepEqual(web?.argv.slice(1), ['webserver', '--pid', '/opt/airflow/state/webserver.pid']);
  assert.match(renderAirflowConfig(inv, fixedSecrets), /^config_file = \/opt\/airflow\/state\/webserver_config\.py$/m);
});

test('health gate: metadatabase and scheduler required, triggerer and DAG processor whenever their status is not null', async () => {
  const { createServer } = await import('node:http');
  const { execFile } = await import('node:child_process');
  const { HEALTH_GATE_SCRIPT } = await import('../../src/components/airflow.js');
  let body = '';
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/health`;
  const gate = (health: Record<string, unknown>) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      body = JSON.stringify(health);
      execFile('python3', ['-c', HEALTH_GATE_SCRIPT, url], (err, _out, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }));
    });
  const ok = { status: 'healthy' };
  const bad = { status: 'unhealthy' };
  try {
    assert.equal((await gate({ metadatabase: ok, scheduler: ok, triggerer: ok, dag_processor: ok })).code, 0);
    const dagProcessorDown = await gate({ metadatabase: ok, scheduler: ok, triggerer: ok, dag_processor: { status: 'unhealthy', latest_dag_processor_heartbeat: null } });
    assert.equal(dagProcessorDown.code, 1);
    assert.match(dagProcessorDown.stderr, /unhealthy: dag_processor/);
    assert.match((await gate({ metadatabase: ok, scheduler: bad, triggerer: bad, dag_processor: ok })).stderr, /unhealthy: scheduler, triggerer/);
    // Not deployed (status null) or absent (older Airflow): not required; the scheduler always is.
    assert.equal((await gate({ metadatabase: ok, scheduler: ok, triggerer: { status: null }, dag_processor: { status: null } })).code, 0);
    assert.equal((await gate({ metadatabase: ok, scheduler: ok })).code, 0);
    assert.match((await gate({ metadatabase: ok })).stderr, /unhealthy: scheduler/);
  } finally {
    server.close();
  }
});
