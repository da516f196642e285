/**
 * `airflow-ha drill` end to end on one bootstrapped lab of 5 hosts, the fewest that hold the whole
 * stack with a peer for every failover: pg1..pg3 with etcd, PostgreSQL/Patroni and RabbitMQ; af1
 * with every Airflow role; w1 a second worker; HAProxy + keepalived (the VIP) on af1 and w1, so the
 * VIP holder's power-off drops no database or broker node. The Airflow is the stand-in of
 * test/standin/ (it runs Celery's built-in tasks on a real Celery worker, not DAGs).
 *
 * Every scenario runs through the real CLI and must lose no acknowledged item; the figures are
 * printed. Then a drill killed right after its injection: the host's undo timer is there and restores.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ScenarioFigures } from '../../src/drill/report.js';
import { bootLab, cli, cliStart, events, ignoreSharedLoad, onHost, tearDown, type TestLab, whenPrinted } from '../helpers/lab.js';
import { buildStandin, standinAirflow } from '../helpers/airflow-lab.js';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import { tempDir } from '../helpers/local.js';
import { statusUntil } from '../helpers/status.js';

const VERSION = AIRFLOW_3_NEWEST;
const HOSTS = ['pg1', 'pg2', 'pg3', 'af1', 'w1'];
const DATA = ['etcd', 'postgresql', 'rabbitmq'];
const AIRFLOW = ['haproxy', 'scheduler', 'webserver', 'triggerer', 'dag_processor', 'worker', 'flower'];

/**
 * Opt-in (AIRFLOW_HA_E2E_DRILL=1): it adds some 12 minutes to a suite that runs close to CI's
 * limit. It ran to its end on 2026-12-07 (4/4; README "drill" has the figures).
 */
const RUN = process.env['AIRFLOW_HA_E2E_DRILL'] === '1';
const skip = RUN ? false : 'opt-in: set AIRFLOW_HA_E2E_DRILL=1';

let lab: TestLab;
const wheelhouse = tempDir('ah-wheelhouse-');

before(async () => {
  if (!RUN) return;
  await buildStandin(VERSION, wheelhouse);
  lab = await bootLab('dr', HOSTS, [DATA, DATA, DATA, AIRFLOW, ['haproxy', 'worker']], (net) => ({
    vips: [{ name: 'airflow-vip', address: `${net}.200`, role: 'haproxy', routerId: 73 }],
    versions: { airflow: VERSION },
    // The stand-in and what the drill's load imports from Debian (test/standin/README.md).
    airflow: standinAirflow(wheelhouse, 2),
  }));
  // The containers see this shared machine's load average, not their own: raise the bar.
  await ignoreSharedLoad(lab);
  const boot = await cli(['bootstrap', '-i', lab.inventoryFile, '--json', '--accept-new-host-keys']);
  assert.equal(boot.exitCode, 0, boot.stdout.slice(-5000) + boot.stderr);
  // On a loaded machine the first probes time out for minutes after a bootstrap.
  await statusUntil(lab.inventoryFile, 'healthy after bootstrap', (s) => s.exitCode === 0, 600_000);
});

after(() => tearDown(lab, wheelhouse));

const on = (host: string, cmd: string) => onHost(lab.inventoryFile, host, cmd);

interface DrillReport {
  type: 'drill_report';
  exitCode: number;
  scenarios: ScenarioFigures[];
  error?: string;
}

async function drill(args: string[]): Promise<{ exitCode: number; report: DrillReport; phases: string[]; stderr: string }> {
  // The drill refuses an unhealthy cluster: wait out this shared machine's slow probes first.
  await statusUntil(lab.inventoryFile, 'healthy before the drill', (s) => s.exitCode === 0, 600_000);
  const t0 = Date.now();
  const r = await cli(['drill', '-i', lab.inventoryFile, '--yes', '--json', ...args]);
  const ev = events(r.stdout);
  const report = ev.find((e) => e.type === 'drill_report') as unknown as DrillReport | undefined;
  assert.ok(report, `a drill_report (exit ${r.exitCode}):\n${r.stdout.slice(-4000)}\n${r.stderr}`);
  const phases = ev.filter((e) => e.type === 'drill').map((e) => `${String(e['scenario'])} ${String(e['phase'])}`);
  process.stderr.write(`[drill e2e] ${args.join(' ')}: exit ${r.exitCode} in ${((Date.now() - t0) / 1000).toFixed(0)} s\n${JSON.stringify(report.scenarios, null, 1)}\n${r.stderr}\n`);
  return { exitCode: r.exitCode, report, phases, stderr: r.stderr };
}

/** No drill object is left anywhere: table, queue, nft table, undo timer, stop file. */
async function assertNoDrillObjects(): Promise<void> {
  // Any member answers: a replica reads the catalogue too.
  const table = await on('pg1', `runuser -u postgres -- psql -XAt -d airflow -c "select count(*) from pg_class where relname = 'airflow_ha_drill'"`);
  assert.equal(table.code, 0, table.stderr);
  assert.equal(table.stdout.trim(), '0', 'drill table removed');
  const queues = await on('pg2', 'rabbitmqctl -q list_queues -p airflow_host name');
  assert.equal(queues.code, 0, queues.stderr);
  assert.doesNotMatch(queues.stdout, /airflow-ha-drill/);
  for (const h of HOSTS) {
    const r = await on(h, "nft list tables; systemctl list-units --all --no-legend 'airflow-ha-drill-*'; ls /run/airflow-ha-drill.stop 2>/dev/null; true");
    assert.doesNotMatch(r.stdout, /airflow[-_]ha[-_]drill/, `${h}: ${r.stdout}`);
  }
}

test('without --yes: exit 2, says what it would do, does nothing', { skip }, async () => {
  const r = await cli(['drill', '-i', lab.inventoryFile, '--scenario', 'db-leader,worker']);
  assert.equal(r.exitCode, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /refusing without --yes/);
  assert.match(r.stderr, /db-leader: kill patroni\.service .* current Patroni leader/);
  assert.match(r.stderr, /worker: kill airflow-worker\.service on w1/);
  const lock = await cli(['lock', 'status', '-i', lab.inventoryFile]);
  assert.equal(lock.exitCode, 0, 'no lock taken');
  await assertNoDrillObjects();
});

test('db-leader and vip: no acknowledged write or publish lost; the database gap printed', { skip }, async () => {
  const { exitCode, report, phases } = await drill(['--scenario', 'db-leader', 'vip', '--hold', '45']);
  assert.equal(exitCode, 0, report.error);
  assert.deepEqual(report.scenarios.map((s) => s.scenario), ['db-leader', 'vip']);
  for (const s of report.scenarios) {
    assert.equal(s.lost, 0, JSON.stringify(s));
    assert.ok((s.streams.db?.acked ?? 0) > 100 && (s.streams.broker?.acked ?? 0) > 100, JSON.stringify(s.streams));
    assert.ok(s.detectedSec !== undefined, `${s.scenario}: status showed the failure`);
    assert.ok(s.healthyAgainSec !== undefined, `${s.scenario}: healthy again`);
  }
  const db = report.scenarios[0] as ScenarioFigures;
  assert.ok((db.streams.db?.longestGapSec ?? 99) <= 45, `db-leader: longest write gap ${db.streams.db?.longestGapSec} s <= 45 s`);
  assert.deepEqual(
    phases.filter((p) => p.startsWith('db-leader')),
    ['start', 'load', 'injected', 'detected', 'restored', 'healthy', 'end'].map((p) => `db-leader ${p}`),
  );
  const journal = await readFile(path.join(lab.loaded.stateDir, 'journal.jsonl'), 'utf8');
  assert.match(journal, /"type":"drill","scenario":"vip","phase":"end"/);
  await assertNoDrillObjects();
});

test('broker-node, worker, scheduler, dag-processor: nothing acknowledged lost, tasks of a killed worker requeued', { skip }, async () => {
  const { exitCode, report } = await drill(['--scenario', 'broker-node,worker,scheduler,dag-processor', '--hold', '25']);
  assert.equal(exitCode, 0, report.error);
  assert.deepEqual(report.scenarios.map((s) => s.scenario), ['broker-node', 'worker', 'scheduler', 'dag-processor']);
  for (const s of report.scenarios) {
    assert.equal(s.lost, 0, JSON.stringify(s));
    assert.ok(s.detectedSec !== undefined, `${s.scenario}: status showed the failure`);
  }
  const worker = report.scenarios[1] as ScenarioFigures;
  assert.equal(worker.target, 'w1');
  assert.ok((worker.streams.tasks?.acked ?? 0) > 20, JSON.stringify(worker.streams.tasks));
  await assertNoDrillObjects();
});

test('a drill killed after its injection: the undo timer on the host restores the component', { skip }, async () => {
  const proc = cliStart(['drill', '-i', lab.inventoryFile, '--scenario', 'worker', '--hold', '30', '--yes', '--json']);
  assert.ok(await whenPrinted(proc, '"phase":"injected"', 180_000), 'the injection happened');
  proc.kill('SIGKILL');
  await proc;
  const timer = await on('w1', 'systemctl list-timers --all --no-legend airflow-ha-drill-undo-worker.timer; systemctl is-active airflow-worker.service');
  assert.match(timer.stdout, /airflow-ha-drill-undo-worker\.timer/);
  assert.match(timer.stdout, /inactive|failed/);
  // What the timer runs when it fires, run now (it fires after hold + 120 s).
  assert.equal((await on('w1', 'systemctl start airflow-ha-drill-undo-worker.service')).code, 0);
  const active = await on('w1', 'systemctl is-active airflow-worker.service');
  assert.equal(active.stdout.trim(), 'active');
  assert.equal((await cli(['lock', 'release', '-i', lab.inventoryFile])).exitCode, 0);
  await statusUntil(lab.inventoryFile, 'healthy after the undo', (s) => s.exitCode === 0, 120_000);
});
