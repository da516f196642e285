/**
 * `airflow-ha drill`, the pure parts: each scenario's target, load host and commands on the seed
 * inventory (offline), what counts as "status shows the failure", the load's settings and stdin
 * (secrets only there), the figures computed from a load's timelines, and the table.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/core/errors.js';
import { parseScenarios } from '../../src/cli/drill.js';
import { loadCommand, loadConfig, loadScript, loadStdin, parseLoadLine } from '../../src/drill/load.js';
import { longestGap, renderDrillTable, scenarioFigures, type StreamRecord } from '../../src/drill/report.js';
import { clusterView, planScenario, powerOffRuleset, scenarioIntent, showsFailure, SCENARIOS, type ScenarioName } from '../../src/drill/scenarios.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { buildReport, type CheckLine, type HostReach } from '../../src/status/model.js';
import { fixedSecrets, seedInventory } from '../helpers/golden.js';
import { inTemp } from '../helpers/local.js';

const SETTINGS = { holdSec: 60, undoAfterSec: 180 };
const VIEW = { patroniLeader: 'sql2', vipHolder: 'haproxy2' };
const plan = async (s: ScenarioName, view = VIEW) => planScenario(await seedInventory(), s, view, SETTINGS);

test('db-leader: Patroni (and its PostgreSQL) killed on the leader; the undo timer runs the same restore, scheduled first', async () => {
  const p = await plan('db-leader');
  assert.deepEqual([p.target, p.method, p.units], ['sql2', 'kill', ['patroni.service']]);
  assert.equal(p.loadHost, 'airflow', 'the first Airflow host');
  assert.equal(p.taskQueue, undefined, 'no Celery tasks for a database failure');
  assert.equal(p.inject.toString(), 'systemctl kill --signal=KILL patroni.service && systemctl stop patroni.service');
  assert.equal(p.restore.toString(), 'systemctl start patroni.service');
  assert.equal(
    p.scheduleUndo.toString(),
    "systemctl stop airflow-ha-drill-undo-db-leader.timer >/dev/null 2>&1; systemctl reset-failed airflow-ha-drill-undo-db-leader.service >/dev/null 2>&1; systemd-run --quiet --collect --on-active=180s --unit=airflow-ha-drill-undo-db-leader --description='airflow-ha drill: undo db-leader on sql2' /bin/sh -c 'systemctl start patroni.service'",
  );
  assert.equal(p.cancelUndo.toString(), 'systemctl stop airflow-ha-drill-undo-db-leader.timer >/dev/null 2>&1; systemctl reset-failed airflow-ha-drill-undo-db-leader.service >/dev/null 2>&1; true');
});

test('vip: the holder powered off by an nft table that keeps SSH, removed by the restore', async () => {
  const p = await plan('vip');
  const restore = "if nft list table inet airflow_ha_drill >/dev/null 2>&1; then nft delete table inet airflow_ha_drill; fi; if nft list table arp airflow_ha_drill >/dev/null 2>&1; then nft delete table arp airflow_ha_drill; fi";
  assert.equal(p.restore.toString(), restore);
  assert.equal(p.inject.toString(), `printf '%s\\n' '${powerOffRuleset('192.168.83.154', 22)}' | nft -f -`);
  assert.match(p.scheduleUndo.toString(), new RegExp(`--on-active=180s --unit=airflow-ha-drill-undo-vip .* /bin/sh -c '${restore.replace(/[.*()[\]]/g, '\\$&')}'$`));
});

test('the power-off ruleset drops everything but SSH, loopback and ARP about the host itself', () => {
  assert.equal(
    powerOffRuleset('10.1.2.3', 2222),
    [
      'table inet airflow_ha_drill {',
      '  chain input { type filter hook input priority -300; policy drop; iif "lo" accept; tcp dport 2222 accept; }',
      '  chain output { type filter hook output priority -300; policy drop; oif "lo" accept; tcp sport 2222 accept; }',
      '}',
      'table arp airflow_ha_drill {',
      '  chain input { type filter hook input priority 0; policy drop; arp daddr ip 10.1.2.3 accept; }',
      '  chain output { type filter hook output priority 0; policy drop; arp saddr ip 10.1.2.3 accept; }',
      '}',
    ].join('\n'),
  );
});

test('vip: the VIP holder is powered off; the load moves to another Airflow host when the holder is the first', async () => {
  const p = await plan('vip');
  assert.deepEqual([p.target, p.method, p.loadHost], ['haproxy2', 'power-off', 'airflow']);
  const q = await plan('vip', { ...VIEW, vipHolder: 'airflow' });
  assert.deepEqual([q.target, q.loadHost], ['airflow', 'scheduler2']);
});

test('broker-node, worker, scheduler, dag-processor: the unit killed (then stopped) and started again; tasks on a queue another worker shares', async () => {
  const b = await plan('broker-node');
  assert.deepEqual([b.target, b.method, b.taskQueue], ['mq1', 'kill', undefined]);
  assert.equal(b.inject.toString(), 'systemctl kill --signal=KILL rabbitmq-server.service && systemctl stop rabbitmq-server.service');
  assert.equal(b.restore.toString(), 'systemctl start rabbitmq-server.service');
  const w = await plan('worker');
  assert.deepEqual([w.target, w.units, w.taskQueue, w.loadHost], ['worker1', ['airflow-worker.service'], 'default', 'airflow']);
  const s = await plan('scheduler');
  assert.deepEqual([s.target, s.units, s.loadHost, s.taskQueue], ['airflow', ['airflow-scheduler.service'], 'scheduler2', 'default']);
  const d = await plan('dag-processor');
  assert.deepEqual([d.target, d.units], ['ftp', ['airflow-dag-processor.service']]);
  for (const x of [b, w, s, d]) assert.match(x.scheduleUndo.toString(), new RegExp(`--unit=airflow-ha-drill-undo-${x.scenario} .*/bin/sh -c '${x.restore.toString()}'$`));
});

test('nothing to fail, or nowhere to run the load: an InputError naming it', async () => {
  const inv = await seedInventory();
  assert.throws(() => planScenario(inv, 'db-leader', {}, SETTINGS), (e: Error) => e instanceof InputError && /Patroni leader/.test(e.message));
  const noVip: Inventory = { ...inv, cluster: { ...inv.cluster, vips: [] } };
  assert.throws(() => planScenario(noVip, 'vip', VIEW, SETTINGS), /no VIP with role haproxy/);
  const oneAirflow: Inventory = { ...inv, hosts: inv.hosts.filter((h) => !h.roles.some((r) => ['scheduler', 'webserver', 'worker', 'dag_processor', 'flower', 'triggerer'].includes(r)) || h.name === 'airflow') };
  assert.throws(() => planScenario(oneAirflow, 'vip', { vipHolder: 'airflow' }, SETTINGS), /other than airflow/);
  assert.equal(planScenario(oneAirflow, 'scheduler', {}, SETTINGS).loadHost, 'airflow', 'a killed unit may share its host with the load');
});

test('scenarioIntent says what would happen without contacting the cluster', async () => {
  const inv = await seedInventory();
  assert.match(scenarioIntent(inv, 'db-leader', SETTINGS), /^db-leader: kill patroni\.service \(Patroni and PostgreSQL\) on the current Patroni leader for 60 s/);
  assert.match(scenarioIntent(inv, 'vip', SETTINGS), /VIP airflow-vip 192\.168\.83\.210/);
  assert.match(scenarioIntent(inv, 'worker', SETTINGS), /^worker: kill airflow-worker\.service on worker1 for 60 s .*load from airflow$/);
});

const reach = (name: string, reachable = true): HostReach => ({ name, address: '10.0.0.1', reachable, ms: 1 });
const report = (lines: CheckLine[], hosts: HostReach[] = []) => buildReport('c', new Date(0), 1, lines, hosts);

test('clusterView and showsFailure read the status report', async () => {
  const inv = await seedInventory();
  const healthy = [
    { component: 'patroni', check: 'leader', verdict: 'healthy', host: 'sql2' },
    { component: 'patroni', check: 'member sql2', verdict: 'healthy', host: 'sql2' },
    { component: 'keepalived', check: 'vip airflow-vip 192.168.83.210', verdict: 'healthy', host: 'haproxy2' },
    { component: 'airflow', check: 'worker celery@worker1', verdict: 'healthy', host: 'worker1' },
  ] as CheckLine[];
  assert.deepEqual(clusterView(inv, report(healthy)), VIEW);
  const db = await plan('db-leader');
  const w = await plan('worker');
  assert.equal(showsFailure(db, inv, report(healthy)), false);
  assert.equal(showsFailure(db, inv, report(healthy.map((l) => (l.check === 'leader' ? { ...l, host: 'sql1' } : l)))), true, 'the leader moved');
  assert.equal(showsFailure(db, inv, report(healthy.map((l) => (l.check === 'member sql2' ? { ...l, verdict: 'down' } : l)))), true, 'its member down');
  assert.equal(showsFailure(await plan('vip'), inv, report(healthy, [reach('haproxy2', false)])), true, 'the target unreachable');
  assert.equal(showsFailure(w, inv, report(healthy)), false);
  assert.equal(showsFailure(w, inv, report(healthy.map((l) => (l.host === 'worker1' ? { ...l, verdict: 'down' } : l)))), true);
  assert.equal(showsFailure(w, inv, report(healthy.map((l) => (l.host === 'sql2' ? { ...l, verdict: 'down' } : l)))), false, 'another component of another host');
});

test('the load: settings on stdin with the passwords, none on the command line or in what people see', async () => {
  const inv = await seedInventory();
  const p = await plan('worker');
  const cfg = loadConfig(inv, fixedSecrets, { runId: 'r1', plan: p, maxSeconds: 600, settleSec: 120 });
  assert.deepEqual(cfg.db.host, '192.168.83.210');
  assert.equal(cfg.db.port, inv.cluster.ports.haproxyLeader);
  assert.deepEqual(cfg.broker.nodes, ['192.168.83.135:5672', '192.168.83.136:5672', '192.168.83.137:5672']);
  assert.deepEqual(cfg.tasks, { queue: 'default', settle_seconds: 120 });
  assert.equal(loadConfig(inv, fixedSecrets, { runId: 'r1', maxSeconds: 60, settleSec: 0 }).mode, 'cleanup');
  const cmd = loadCommand(inv);
  assert.equal(cmd.secrets().length, 0);
  assert.match(cmd.render(), /^runuser -u airflow -- \/opt\/airflow\/venv\/bin\/python -c /);
  assert.doesNotMatch(JSON.stringify(cfg), /fixed-/, 'JSON for people masks the secrets');
  const stdin = loadStdin(cfg, 'SCRIPT');
  const [first, rest] = [stdin.slice(0, stdin.indexOf('\n')), stdin.slice(stdin.indexOf('\n') + 1)];
  const parsed = JSON.parse(first) as typeof cfg & { db: { password: string }; broker: { password: string } };
  assert.equal(parsed.db.password, 'fixed-airflowDb-value');
  assert.equal(parsed.broker.password, 'fixed-rabbitmqAirflow-value');
  assert.equal(rest, 'SCRIPT');
  assert.deepEqual(parseLoadLine('DRILL {"event":"ready","t":5}'), { event: 'ready', t: 5 });
  assert.equal(parseLoadLine('Traceback (most recent call last):'), undefined);
});

test('the load script is valid Python', async () => {
  await inTemp(async (dir) => {
    const file = path.join(dir, 'load.py');
    await writeFile(file, loadScript());
    const r = spawnSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});

test('longestGap: the longest pause overlapping the window, and a stream that never came back', () => {
  const t = [0, 100, 200, 5200, 5300];
  assert.deepEqual(longestGap(t, 150, 6000), { sec: 5, endMs: 5200 });
  assert.deepEqual(longestGap(t, 5250, 6000), { sec: 0.7 }, 'nothing after 5300 until the window closed at 6000');
  assert.deepEqual(longestGap([0, 1000, 2000], 0, 2000), { sec: 1, endMs: 1000 });
  assert.deepEqual(longestGap([], 0, 2000), { sec: 0 });
});

test('scenarioFigures: detection, gap, resume, lost, healthy again; the load clock offset applied', () => {
  const acked = (from: number, to: number, step: number, skip?: [number, number]): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let t = from, i = 1; t <= to; t += step, i++) if (!skip || t < skip[0] || t > skip[1]) out.push([t, i]);
    return out;
  };
  // Load host clock = operator clock + 500 ms. Writes pause from 10 s to 22 s (load clock).
  const db: StreamRecord = { acked: acked(0, 60_000, 50, [10_050, 21_950]), failures: 7, first_failure: 'server closed the connection unexpectedly', lost: [] };
  const broker: StreamRecord = { acked: acked(0, 60_000, 50), failures: 0, first_failure: null, lost: [3, 4] };
  const f = scenarioFigures(
    { scenario: 'db-leader', target: 'h1', method: 'power-off', loadHost: 'af1' },
    { injectedAt: 9_500, detectedAt: 14_500, restoredAt: 39_500, healthyAt: 49_500, stoppedAt: 55_000 },
    { db, broker },
    500,
  );
  assert.equal(f.detectedSec, 5);
  assert.equal(f.heldSec, 30);
  assert.equal(f.healthyAgainSec, 10);
  assert.deepEqual(f.streams.db, { acked: db.acked.length, lost: 0, failures: 7, firstFailure: 'server closed the connection unexpectedly', longestGapSec: 12, resumedAfterSec: 12 });
  assert.equal(f.streams.broker?.lost, 2);
  assert.equal(f.streams.broker?.longestGapSec, 0.1);
  assert.equal(f.lost, 2);
  assert.equal(f.streams.tasks, undefined);
});

test('renderDrillTable: one row per scenario beside the document, and the verdict', () => {
  const rows = [
    { scenario: 'db-leader' as const, target: 'h1', method: 'power-off' as const, loadHost: 'af1', detectedSec: 4.2, heldSec: 45, healthyAgainSec: 21, lost: 0, streams: { db: { acked: 1200, lost: 0, failures: 3, longestGapSec: 31.5 }, broker: { acked: 1199, lost: 0, failures: 0, longestGapSec: 0.2 } } },
    { scenario: 'worker' as const, target: 'w1', method: 'kill' as const, loadHost: 'af1', heldSec: 30, lost: 1, streams: { tasks: { acked: 80, lost: 1, failures: 0, longestGapSec: 2 } } },
  ];
  const lines = renderDrillTable(rows).split('\n');
  assert.match(lines[0] ?? '', /^scenario\s+target\s+detected\s+DB writes \(VIP:5000\)\s+broker publishes\s+worker tasks\s+healthy again\s+document: detection\s+document: impact$/);
  assert.match(lines[1] ?? '', /^db-leader\s+h1 \(power-off\)\s+4\.2 s\s+gap 31\.5 s, 0\/1200 lost\s+gap 0\.2 s, 0\/1199 lost\s+-\s+after 21\.0 s\s+~30 s\s+none, transparent$/);
  assert.match(lines[2] ?? '', /^worker\s+w1 \(kill\)\s+-\s+-\s+-\s+gap 2\.0 s, 1\/80 lost\s+no\s+~60 s\s+none if multiple workers$/);
  assert.equal(lines.at(-1), '2 scenario(s); 1 acknowledged item(s) LOST. Gaps: longest time without an acknowledgement from the injection to 30 s after the restore.');
});

test('--scenario: several names, space- or comma-separated, each checked', () => {
  assert.deepEqual(parseScenarios(['db-leader,vip', 'worker', 'vip']), ['db-leader', 'vip', 'worker']);
  assert.throws(() => parseScenarios(['db-leadr']), (e: Error) => e instanceof InputError && e.message.includes(SCENARIOS.join(', ')));
  assert.throws(() => parseScenarios([',']), /at least one/);
});
