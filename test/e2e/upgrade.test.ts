/**
 * `airflow-ha upgrade` end to end on a 4-host lab: 3 data hosts (etcd, PostgreSQL, RabbitMQ), pg3
 * also HAProxy and a UI server, af1 HAProxy, the second UI server and every other Airflow role.
 * Bootstraps 2.11.0, runs `upgrade --check --to 3.4.0` (the plan and the DAG findings, nothing
 * changed), `upgrade --to 3.4.0` while pg1 polls the UI through the VIP every second, then
 * `--rollback`; a second run after each changes nothing.
 *
 * The Airflow installed is the STAND-IN of test/standin/ (not Airflow), built as 2.11.0 and as
 * 3.4.0 into one wheelhouse: each version gets its own virtualenv from it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, parseDocument, stringify } from 'yaml';
import { loadOrCreateSecrets } from '../../src/inventory/secrets.js';
import type { CheckLine } from '../../src/status/model.js';
import { buildStandin, get, py, standinAirflow, unitStarts } from '../helpers/airflow-lab.js';
import { bootLab, cli, onHost, runEnd, tearDown, type TestLab } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';
import { checksOf, statusUntil } from '../helpers/status.js';

const FROM = '2.11.0';
const TO = '3.4.0';
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1'];
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const CONTROL = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'worker'];

/** A DAG written for Airflow 2 that uses what 3.0 removed (lines 2, 3 and 7) and moved (line 4). */
const LEGACY_DAG = `import datetime
from airflow.contrib.hooks.aws_hook import AwsHook
from airflow.operators.subdag import SubDagOperator
from airflow.operators.bash import BashOperator
from airflow import DAG
with DAG("legacy", start_date=datetime.datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="echo", bash_command="echo {{ execution_date }}")
`;

let lab: TestLab;
let vip = '';
const wheelhouse = tempDir('ah-wheelhouse-up-');

before(async () => {
  await buildStandin(FROM, wheelhouse);
  await buildStandin(TO, wheelhouse);
  lab = await bootLab('up', HOSTS, [DATA, DATA, [...DATA, 'haproxy', 'webserver'], CONTROL], (net) => {
    vip = `${net}.200`;
    return {
      vips: [{ name: 'airflow-vip', address: vip, role: 'haproxy', routerId: 75 }],
      versions: { airflow: FROM },
      ports: { haproxyReplica: 5001 },
      dags: { mode: 'sync', source: 'dags' },
      airflow: standinAirflow(wheelhouse, 2),
    };
  });
  const dir = path.join(path.dirname(lab.inventoryFile), 'dags');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'legacy.py'), LEGACY_DAG);
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as Record<string, unknown>;
  await writeFile(lab.inventoryFile, `# The upgrade lab: ${HOSTS.join(', ')}.\n${stringify(doc)}`);
});

after(() => tearDown(lab, wheelhouse));

const inv = () => ['-i', lab.inventoryFile];
const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);
const link = async (host: string) => (await on(host, 'readlink /opt/airflow/venv')).stdout.trim();
const notHealthy = (lines: CheckLine[]) => lines.filter((l) => l.verdict !== 'healthy' && !(l.component === 'hosts' && /^load /.test(l.reason ?? '')));
const version = async () => (parse(await readFile(lab.inventoryFile, 'utf8')) as { cluster: { versions: { airflow: string } } }).cluster.versions.airflow;

/** Rows of the stand-in's migration log by kind (`migrate`, `downgrade`), asked through the VIP. */
async function migrations(password: string): Promise<Record<string, number>> {
  const r = await on('pg1', `PGPASSWORD='${password}' psql -XqAt -F ' ' -h ${vip} -p 5000 -U airflow -d airflow -c "select kind, count(*) from standin_migrations group by kind order by kind"`);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
}

/**
 * The poller on pg1: GET the UI through the VIP every second until /tmp/poll.stop exists; one line
 * per try, `EPOCH OK|FAIL CODE`. An answer of a UI server (any status but HAProxy's 502/503/504,
 * e.g. 404 of the other major's path) counts as OK: the UI is there.
 */
const POLL = `
import sys, time, os, urllib.request, urllib.error
url = sys.argv[1]
with open("/tmp/poll.log", "w", buffering=1) as out:
    while not os.path.exists("/tmp/poll.stop"):
        t = time.time()
        try:
            code = urllib.request.urlopen(url, timeout=2).status
        except urllib.error.HTTPError as e:
            code = e.code
        except Exception:
            code = 0
        out.write("%.1f %s %d\\n" % (t, "FAIL" if code in (0, 502, 503, 504) else "OK", code))
        time.sleep(max(0, 1 - (time.time() - t)))
`;

/** The longest time without an answer in the poll log (seconds between the OKs around FAILs), and the counts. */
function longestGap(log: string): { gap: number; ok: number; fail: number } {
  const rows = log.trim().split('\n').map((l) => l.split(' ')).map(([t, v]) => ({ t: Number(t), ok: v === 'OK' }));
  let gap = 0;
  let lastOk: number | undefined;
  let failing = false;
  for (const r of rows) {
    if (r.ok) {
      if (failing && lastOk !== undefined) gap = Math.max(gap, r.t - lastOk);
      lastOk = r.t;
      failing = false;
    } else failing = true;
  }
  return { gap, ok: rows.filter((r) => r.ok).length, fail: rows.filter((r) => !r.ok).length };
}

test(`upgrade ${FROM} -> ${TO} with the UI polled through the VIP, then --rollback; --check changes nothing; a second run of each changes nothing`, async () => {
  const first = await cli(['bootstrap', ...inv(), '--json', '--accept-new-host-keys']);
  assert.equal(first.exitCode, 0, first.stdout.slice(-5000) + first.stderr);
  const { secrets } = await loadOrCreateSecrets(lab.loaded.stateDir);
  for (const h of ['pg3', 'af1']) assert.equal(await link(h), `venv-${FROM}`);

  // --check: the plan and the DAG findings; nothing changes (inventory bytes, links, unit starts).
  const inventoryBefore = await readFile(lab.inventoryFile, 'utf8');
  const startsBefore = await unitStarts(lab.inventoryFile, 'af1', ['airflow-scheduler', 'airflow-webserver', 'airflow-worker']);
  const check = await cli(['upgrade', ...inv(), '--to', TO, '--check']);
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  process.stderr.write(check.stdout);
  assert.match(check.stdout, new RegExp(`upgrade: Airflow ${FROM} -> ${TO} \\(a new major\\)`));
  assert.match(check.stdout, /airflow db migrate \(3\.4\.0\), once \[af1\]/);
  assert.match(check.stdout, /UI pg3: restart on 3\.4\.0 \[pg3\][\s\S]*UI af1: restart on 3\.4\.0 \[af1\]/);
  assert.match(check.stdout, /legacy\.py:2: removed in 3\.0: import airflow\.contrib\.hooks\.aws_hook/);
  assert.match(check.stdout, /legacy\.py:3: removed in 3\.0: import airflow\.operators\.subdag/);
  assert.match(check.stdout, /legacy\.py:4: moved in 3\.0: import airflow\.operators\.bash/);
  assert.match(check.stdout, /legacy\.py:7: removed in 3\.0: context key execution_date/);
  assert.equal(await readFile(lab.inventoryFile, 'utf8'), inventoryBefore);
  assert.equal(await link('af1'), `venv-${FROM}`);
  assert.equal(await unitStarts(lab.inventoryFile, 'af1', ['airflow-scheduler', 'airflow-webserver', 'airflow-worker']), startsBefore);

  // The same inventory without its pin asks for the default, the newest Airflow 3: a bootstrap refuses
  // (preflight airflow:installed, exit 2) before the lock and any step, and points at `upgrade`.
  const unpinned = parseDocument(inventoryBefore);
  unpinned.deleteIn(['cluster', 'versions', 'airflow']);
  await writeFile(lab.inventoryFile, unpinned.toString());
  try {
    const refused = await cli(['bootstrap', ...inv()]);
    assert.equal(refused.exitCode, 2, refused.stdout.slice(-3000) + refused.stderr);
    assert.match(refused.stdout + refused.stderr, new RegExp(`af1: \\[airflow:installed\\] this host runs Airflow ${FROM.replaceAll('.', '\\.')}; the inventory asks for ${TO.replaceAll('.', '\\.')}`));
    assert.match(refused.stdout + refused.stderr, new RegExp(`airflow-ha upgrade -i FILE --to ${TO.replaceAll('.', '\\.')}`));
    assert.doesNotMatch(refused.stdout, /^== /m, 'no step ran');
  } finally {
    await writeFile(lab.inventoryFile, inventoryBefore);
  }
  assert.equal(await link('af1'), `venv-${FROM}`);
  assert.equal(await unitStarts(lab.inventoryFile, 'af1', ['airflow-scheduler', 'airflow-webserver', 'airflow-worker']), startsBefore);

  // The upgrade, with pg1 polling the UI through the VIP.
  await on('pg1', 'rm -f /tmp/poll.stop /tmp/poll.log');
  const poller = py(lab.inventoryFile, 'pg1', POLL, [`http://${vip}/`]);
  const t0 = Date.now();
  const up = await cli(['upgrade', ...inv(), '--to', TO, '--yes', '--json']);
  const upSec = (Date.now() - t0) / 1000;
  await on('pg1', 'touch /tmp/poll.stop');
  await poller;
  const poll = longestGap((await on('pg1', 'cat /tmp/poll.log')).stdout);
  process.stderr.write(`upgrade ${FROM} -> ${TO}: ${upSec.toFixed(0)} s; UI through the VIP: ${poll.ok} answers, ${poll.fail} failures, longest gap ${poll.gap.toFixed(1)} s\n`);
  if (up.exitCode !== 0) {
    const diag = await on('af1', `journalctl -u 'airflow-*' --no-pager | tail -40`);
    assert.fail(`upgrade exit ${up.exitCode}\n${up.stdout.slice(-6000)}${up.stderr}\n${diag.stdout}`);
  }
  assert.equal(poll.fail, 0, `the UI did not answer ${poll.fail} time(s); longest gap ${poll.gap.toFixed(1)} s`);

  // The 3.x layout: the venv link, api-server instead of webserver, the old virtualenv kept; the inventory edited in place.
  assert.equal(await version(), TO);
  assert.match(await readFile(lab.inventoryFile, 'utf8'), /^# The upgrade lab: /);
  for (const h of ['pg3', 'af1']) {
    assert.equal(await link(h), `venv-${TO}`);
    assert.equal((await on(h, 'systemctl is-active airflow-api-server')).stdout.trim(), 'active', h);
    assert.equal((await on(h, 'test -e /etc/systemd/system/airflow-webserver.service && echo present || echo absent')).stdout.trim(), 'absent', h);
    assert.equal((await on(h, `test -x /opt/airflow/venv-${FROM}/bin/airflow && echo kept`)).stdout.trim(), 'kept', h);
  }
  assert.match((await on('af1', 'cat /opt/airflow/airflow.cfg')).stdout, /^\[api_auth\]$/m);
  assert.deepEqual(await migrations(secrets.airflowDb.reveal()), { migrate: 2 });
  const health = await get(lab.inventoryFile, 'pg1', `http://${vip}/api/v2/monitor/health`);
  assert.equal(health.status, 200, health.body);
  await statusUntil(lab.inventoryFile, 'healthy', (s) => notHealthy(checksOf(s)).length === 0, 180_000);

  // A second run: the inventory names 3.4.0 already, nothing changes.
  const again = await cli(['upgrade', ...inv(), '--to', TO, '--yes', '--json']);
  assert.equal(again.exitCode, 0, again.stdout.slice(-3000) + again.stderr);
  assert.deepEqual(runEnd(again.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));

  // --rollback: the database downgraded once with 3.4.0, the 2.11.0 virtualenv and layout back.
  const back = await cli(['upgrade', ...inv(), '--rollback', '--yes', '--json']);
  assert.equal(back.exitCode, 0, back.stdout.slice(-6000) + back.stderr);
  assert.equal(await version(), FROM);
  for (const h of ['pg3', 'af1']) {
    assert.equal(await link(h), `venv-${FROM}`);
    assert.equal((await on(h, 'systemctl is-active airflow-webserver')).stdout.trim(), 'active', h);
  }
  assert.deepEqual(await migrations(secrets.airflowDb.reveal()), { downgrade: 1, migrate: 2 });
  const health2 = await get(lab.inventoryFile, 'pg1', `http://${vip}/health`);
  assert.equal(health2.status, 200, health2.body);
  const backAgain = await cli(['upgrade', ...inv(), '--rollback', '--yes', '--json']);
  assert.equal(backAgain.exitCode, 0, backAgain.stdout.slice(-3000) + backAgain.stderr);
  assert.deepEqual(runEnd(backAgain.stdout).hosts.map((x) => [x.host, x.changed]), HOSTS.map((x) => [x, 0]));
});
