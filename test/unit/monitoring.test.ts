/**
 * Monitoring: what each host gets in a monitored inventory (the seed with VM1 `airflow` given the
 * monitoring role, as seed 001 allows), checked by the tools that read it: `promtool check config`,
 * `promtool check rules` and `promtool test rules` (alerts firing on synthetic series), `amtool
 * check-config`, `haproxy -c`, `sh` for keepalived's notify script; the firewall opening each
 * exporter to the monitoring host only; and nothing of it in an inventory without a monitoring host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { FactSet } from '../../src/facts/fact.js';
import { playbooks } from '../../playbooks/index.js';
import { clusterEndpoints } from '../../src/cli/endpoints.js';
import { renderFiles } from '../../src/cli/render.js';
import { firewallRules } from '../../src/components/base.js';
import { renderEtcdEnv } from '../../src/components/etcd.js';
import { haproxyConfig } from '../../src/components/haproxy.js';
import { keepalivedConfig } from '../../src/components/keepalived.js';
import {
  alertmanagerArgs,
  alertmanagerConfig,
  alertRules,
  MONITORING_PATHS,
  nodeExporterTasks,
  postgresExporterDefaults,
  postgresExporterTasks,
  prometheusVars,
  scrapeJobs,
  statsdMapping,
} from '../../src/components/monitoring.js';
import { enabledPlugins } from '../../src/components/rabbitmq.js';
import { InputError } from '../../src/core/errors.js';
import { parseInventory, type LoadedInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { renderTemplate } from '../../src/tasks/template.js';
import { fixedOperator, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { ROOT } from '../helpers/lab.js';

/** The seed with the monitoring role added to `on` (VM1, `airflow`, by default). */
async function monitoredSeed(on: readonly string[] = ['airflow'], receivers?: Inventory['cluster']['monitoring']['receivers']): Promise<Inventory> {
  const seed = await seedInventory();
  return {
    ...seed,
    cluster: { ...seed.cluster, monitoring: { ...seed.cluster.monitoring, ...(receivers ? { receivers } : {}) } },
    hosts: seed.hosts.map((h) => (on.includes(h.name) ? { ...h, roles: [...h.roles, 'monitoring' as const] } : h)),
  };
}

const seedSync = await seedInventory();
const monitoredSeedSync = await monitoredSeed();

async function scratch(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'ah-mon-'));
}

/** Runs a checking tool; returns its exit code and output (never throws on a non-zero exit). */
function run(cmd: string, args: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

test('scrape jobs: node_exporter on all 13 seed hosts, each component on its own hosts and port, labelled with the host name', async () => {
  const inv = await monitoredSeed();
  const jobs = Object.fromEntries(scrapeJobs(inv, fixedSecrets).map((j) => [j.name, j]));
  assert.deepEqual(Object.keys(jobs), ['prometheus', 'alertmanager', 'node', 'etcd', 'patroni', 'postgres', 'rabbitmq', 'rabbitmq-queues', 'haproxy', 'flower']);
  assert.equal(jobs['node']!.targets.length, 13);
  assert.deepEqual(jobs['etcd']!.targets, [
    { host: 'sql1', address: '192.168.83.148:2381' },
    { host: 'sql2', address: '192.168.83.147:2381' },
    { host: 'sql3', address: '192.168.83.149:2381' },
  ]);
  assert.deepEqual(jobs['patroni']!.targets.map((t) => t.address), ['192.168.83.148:8008', '192.168.83.147:8008', '192.168.83.149:8008']);
  assert.deepEqual(jobs['postgres']!.targets.map((t) => t.address.split(':')[1]), ['9187', '9187', '9187']);
  assert.deepEqual(jobs['rabbitmq']!.targets.map((t) => t.host), ['mq1', 'mq2', 'mq3']);
  assert.equal(jobs['rabbitmq-queues']!.path, '/metrics/detailed');
  assert.deepEqual(jobs['haproxy']!.targets.map((t) => t.address), ['192.168.83.129:8405', '192.168.83.154:8405']);
  assert.equal(jobs['flower']!.basic_auth?.password.reveal(), 'fixed-flowerBasicAuth-value');
  assert.deepEqual(jobs['prometheus']!.targets, [{ host: 'airflow', address: '192.168.83.129:9090' }]);
});

test('prometheus.yml passes `promtool check config` (with the rules file it names), the rules pass `promtool check rules`', async () => {
  const inv = await monitoredSeed();
  const host = inv.hosts.find((h) => h.name === 'airflow')!;
  const dir = await scratch();
  try {
    const rules = path.join(dir, 'rules.yml');
    await writeFile(rules, alertRules(inv));
    const r = run('promtool', ['check', 'rules', rules]);
    assert.equal(r.code, 0, r.out);
    const names = [...alertRules(inv).matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
    assert.deepEqual(names, [
      'TargetDown', 'DiskAlmostFull', 'ClockOffset',
      'VipNotHeldOnce', 'VipNotHeldOnce',
      'EtcdMemberDown', 'EtcdNoLeader',
      'PatroniNoLeader', 'PatroniFailover', 'PatroniReplicationLag', 'PatroniNoSyncStandby',
      'RabbitMQNodeDown', 'RabbitMQMemoryAlarm', 'RabbitMQDiskAlarm', 'RabbitMQQueueWithoutConsumer',
      'HAProxyBackendDown',
      'SchedulerHeartbeatStale', 'DagProcessorHeartbeatStale', 'WorkersMissing',
    ]);
    assert.match(r.out, /SUCCESS: 19 rules found/);
    const config = path.join(dir, 'prometheus.yml');
    await writeFile(config, renderTemplate('monitoring/prometheus.yml.njk', { ...prometheusVars(inv, host, fixedSecrets), rules_file: rules }));
    const c = run('promtool', ['check', 'config', config]);
    assert.equal(c.code, 0, c.out);
    assert.match(c.out, /SUCCESS: 1 rule files found/);
    const doc = parse(await readFile(config, 'utf8')) as { scrape_configs: Array<{ job_name: string; static_configs: Array<{ labels: { host: string } }> }> };
    assert.equal(doc.scrape_configs.find((j) => j.job_name === 'node')?.static_configs.length, 13);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('alert rules: synchronous standby alert only in synchronous mode, the worker count from the inventory, the HAProxy backends it routes', async () => {
  const inv = await monitoredSeed();
  const text = alertRules(inv);
  assert.match(text, /count\(node_systemd_unit_state\{name="airflow-worker.service", state="active"\} == 1\) or vector\(0\)\) < 1/);
  assert.match(text, /proxy=~"postgres_leader\|postgres_replica\|airflow_webserver\|airflow_flower"/);
  const async = { ...inv, cluster: { ...inv.cluster, postgresql: { ...inv.cluster.postgresql, ha: { ...inv.cluster.postgresql.ha, synchronous: 'off' as const } } } };
  assert.doesNotMatch(alertRules(async), /PatroniNoSyncStandby/);
  // The data plane alone: no Airflow alerts, no Flower job.
  const plane = ['etcd', 'postgresql', 'rabbitmq', 'haproxy', 'monitoring'];
  const data = { ...inv, hosts: inv.hosts.filter((h) => h.roles.some((r) => plane.includes(r))).map((h) => ({ ...h, roles: h.roles.filter((r) => plane.includes(r)) })) };
  assert.doesNotMatch(alertRules(data), /Heartbeat|WorkersMissing|airflow_webserver/);
  assert.ok(!scrapeJobs(data, fixedSecrets).some((j) => j.name === 'flower'));
});

test('promtool test rules: the alerts fire on the series that mean the failure, and stay quiet on a healthy cluster', async () => {
  const inv = await monitoredSeed();
  const dir = await scratch();
  try {
    await writeFile(path.join(dir, 'rules.yml'), alertRules(inv));
    // Series as the exporters name them (Patroni 3.0.2 also exposes patroni_master, the lab's
    // node_exporter the textfile metric keepalived's notify script writes).
    const tests = {
      rule_files: ['rules.yml'],
      evaluation_interval: '15s',
      tests: [
        {
          interval: '15s',
          input_series: [
            { series: 'patroni_master{job="patroni",host="sql1",instance="a"}', values: '1x8 0x8' },
            { series: 'patroni_master{job="patroni",host="sql2",instance="b"}', values: '0x16' },
            { series: 'patroni_sync_standby{job="patroni",host="sql2",instance="b"}', values: '1x16' },
            { series: 'airflow_ha_vip_master{vip="airflow-vip",host="airflow"}', values: '1x8 1x8' },
            { series: 'airflow_ha_vip_master{vip="airflow-vip",host="haproxy2"}', values: '0x8 1x8' },
            { series: 'airflow_ha_vip_master{vip="nfs-vip",host="ftp"}', values: '1x16' },
            { series: 'etcd_server_has_leader{job="etcd",host="sql1"}', values: '1x16' },
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'PatroniNoLeader', exp_alerts: [] },
            { eval_time: '4m', alertname: 'PatroniNoLeader', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: { summary: 'no Patroni node holds the leader lock: PostgreSQL takes no writes' } }] },
            { eval_time: '1m', alertname: 'VipNotHeldOnce', exp_alerts: [] },
            { eval_time: '3m', alertname: 'VipNotHeldOnce', exp_alerts: [{ exp_labels: { severity: 'critical', vip: 'airflow-vip' }, exp_annotations: { summary: 'VIP airflow-vip is held by 2 hosts (must be exactly 1)' } }] },
            { eval_time: '3m', alertname: 'EtcdNoLeader', exp_alerts: [] },
            { eval_time: '3m', alertname: 'PatroniNoSyncStandby', exp_alerts: [] },
            // sql1 led until 2m, then nobody: no failover (the NoLeader alert's case); see the failover test below.
            { eval_time: '1m', alertname: 'PatroniFailover', exp_alerts: [] },
          ],
        },
        {
          // A failover: sql1 leads, its Patroni stops at 1m (series gone), sql2 leads from 1m15s.
          interval: '15s',
          input_series: [
            { series: 'patroni_master{job="patroni",host="sql1",instance="a"}', values: '1x4 _x12' },
            { series: 'patroni_master{job="patroni",host="sql2",instance="b"}', values: '0x4 0 1x11' },
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'PatroniFailover', exp_alerts: [] },
            { eval_time: '1m30s', alertname: 'PatroniFailover', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: { summary: 'the Patroni leader changed within the last 2m' } }] },
            { eval_time: '1m30s', alertname: 'PatroniNoLeader', exp_alerts: [] },
            { eval_time: '3m45s', alertname: 'PatroniFailover', exp_alerts: [] },
          ],
        },
      ],
    };
    await writeFile(path.join(dir, 'tests.yml'), JSON.stringify(tests));
    const r = run('promtool', ['test', 'rules', path.join(dir, 'tests.yml')]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('alertmanager.yml from the receivers passes `amtool check-config`; passwords are the secrets; no receiver: a silent default', async () => {
  const dir = await scratch();
  try {
    const both = await monitoredSeed(['airflow'], {
      email: { to: ['ops@example.com'], from: 'airflow@example.com', smarthost: 'smtp.example.com:587', user: 'alerts', requireTls: true },
      webhook: { url: 'https://hooks.example.com/airflow', user: 'hook' },
    });
    const text = alertmanagerConfig(both, fixedSecrets);
    assert.match(text, /auth_password: fixed-alertmanagerSmtp-value/);
    assert.match(text, /password: fixed-alertmanagerWebhook-value/);
    assert.match(text, /receiver: operators/);
    await writeFile(path.join(dir, 'am.yml'), text);
    let r = run('amtool', ['check-config', path.join(dir, 'am.yml')]);
    assert.equal(r.code, 0, r.out);
    const none = alertmanagerConfig(await monitoredSeed(), fixedSecrets);
    assert.match(none, /receiver: none/);
    assert.doesNotMatch(none, /email_configs|webhook_configs/);
    await writeFile(path.join(dir, 'none.yml'), none);
    r = run('amtool', ['check-config', path.join(dir, 'none.yml')]);
    assert.equal(r.code, 0, r.out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two monitoring hosts: each Alertmanager gossips with the other, each Prometheus sends to both', async () => {
  const inv = await monitoredSeed(['airflow', 'haproxy2']);
  const [a, b] = ['airflow', 'haproxy2'].map((n) => inv.hosts.find((h) => h.name === n)!);
  assert.equal(alertmanagerArgs(inv, a!), '--config.file=/etc/prometheus/alertmanager.yml --web.listen-address=192.168.83.129:9093 --cluster.listen-address=192.168.83.129:9094 --cluster.peer=192.168.83.154:9094');
  assert.deepEqual(prometheusVars(inv, b!, fixedSecrets)['alertmanagers'], ['192.168.83.129:9093', '192.168.83.154:9093']);
  const single = await monitoredSeed();
  assert.match(alertmanagerArgs(single, a!), / --cluster.listen-address=$/);
  const gossip = firewallRules(a!, inv).find((r) => r.label === 'monitoring: alertmanagerCluster');
  assert.deepEqual(gossip, { label: 'monitoring: alertmanagerCluster', why: gossip?.why, range: '9094', sources: ['192.168.83.129', '192.168.83.154'], udp: true });
});

test('the components carry their exporters only when monitored: etcd metrics listener, HAProxy frontend (haproxy -c), RabbitMQ plugin, keepalived notify', async () => {
  const seed = await seedInventory();
  const inv = await monitoredSeed();
  assert.doesNotMatch(renderEtcdEnv(seed, 'sql1', 'new'), /METRICS/);
  assert.match(renderEtcdEnv(inv, 'sql1', 'new'), /^ETCD_LISTEN_METRICS_URLS="http:\/\/192\.168\.83\.148:2381"$/m);
  assert.equal(enabledPlugins(seed), '[rabbitmq_management].\n');
  assert.equal(enabledPlugins(inv), '[rabbitmq_management,rabbitmq_prometheus].\n');
  const lb = inv.hosts.find((h) => h.name === 'airflow')!;
  assert.doesNotMatch(haproxyConfig(seed, lb, fixedSecrets, 'debian'), /prometheus-exporter/);
  const cfg = haproxyConfig(inv, lb, fixedSecrets, 'debian');
  assert.match(cfg, /bind 192\.168\.83\.129:8405\n    no log\n    http-request use-service prometheus-exporter if \{ path \/metrics \}/);
  const dir = await scratch();
  try {
    // haproxy -c refuses `use-service prometheus-exporter` when the binary lacks it; Debian 12's has it.
    await writeFile(path.join(dir, 'haproxy.cfg'), cfg.replace(/stats socket \S+/, `stats socket ${dir}/s`));
    const r = run('haproxy', ['-c', '-q', '-f', path.join(dir, 'haproxy.cfg')]);
    assert.equal(r.code, 0, r.out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.doesNotMatch(keepalivedConfig(seed, lb, 'eth0'), /notify/);
  assert.match(keepalivedConfig(inv, lb, 'eth0'), /notify "\/usr\/local\/lib\/airflow-ha\/vip-state"/);
  assert.deepEqual(nodeExporterTasks(seed, lb), []);
  assert.deepEqual(postgresExporterTasks(seed, seed.hosts[0]!, fixedSecrets), []);
});

test('firewall: each exporter port open to the monitoring host only; nothing of it without a monitoring host', async () => {
  const seed = await seedInventory();
  const inv = await monitoredSeed();
  const sql1 = inv.hosts.find((h) => h.name === 'sql1')!;
  const rules = Object.fromEntries(firewallRules(sql1, inv).map((r) => [r.label, r]));
  for (const label of ['every host: nodeExporter', 'etcd: etcdMetrics', 'postgresql: postgresExporter']) assert.deepEqual(rules[label]?.sources, ['192.168.83.129'], label);
  assert.ok(rules['postgresql: patroniApi']?.sources.includes('192.168.83.129'));
  assert.deepEqual(rules['every host: nodeExporter']?.range, '9100');
  const worker = inv.hosts.find((h) => h.name === 'worker1')!;
  assert.deepEqual(firewallRules(worker, inv).map((r) => r.label), ['every host: nodeExporter', 'worker: workerLogs']);
  assert.ok(!firewallRules(seed.hosts.find((h) => h.name === 'sql1')!, seed).some((r) => /Exporter|Metrics/.test(r.label)));
});

test('render: a monitored seed gives every host node_exporter args, the PostgreSQL hosts a DSN file that is not world-readable', async () => {
  const inv = await monitoredSeed();
  const files = renderFiles(playbooks.bootstrap, inv, fixedSecrets, 'debian', fixedOperator);
  const of = (p: string) => files.filter((f) => f.path === p);
  assert.equal(of(MONITORING_PATHS.nodeExporterDefault).length, 13);
  const dsn = of(MONITORING_PATHS.postgresExporterDefault);
  assert.deepEqual(dsn.map((f) => [f.host, f.mode]), [['sql1', '0640'], ['sql2', '0640'], ['sql3', '0640']]);
  assert.equal(postgresExporterDefaults(inv, fixedSecrets), [
    '# Managed by airflow-ha (airflow-seed): postgres_exporter. Edits are overwritten.',
    'DATA_SOURCE_NAME="postgresql://airflow_ha_monitor:fixed-postgresMonitor-value@127.0.0.1:5432/airflow?sslmode=disable"',
    'ARGS="--web.listen-address=:9187 --extend.query-path=/etc/prometheus/postgres-exporter-queries.yml"',
    '',
  ].join('\n'));
  assert.deepEqual(of(MONITORING_PATHS.prometheusYml).map((f) => f.host), ['airflow']);
  assert.equal(of(MONITORING_PATHS.vipState).length, 4, 'every keepalived host: the two HAProxy hosts and the two nfs hosts');
  const worker = of(MONITORING_PATHS.nodeExporterDefault).find((f) => f.host === 'worker1')!;
  assert.match(worker.content.toString(), /--collector\.systemd --collector\.systemd\.unit-include=airflow-\.\+\[\.\]service/);
});

test('a monitored Rocky/RHEL host is refused at plan time, naming the host; an unmonitored one gets no monitoring task', async () => {
  assert.throws(() => renderFiles(playbooks.monitoring, monitoredSeedSync, fixedSecrets, 'rhel', fixedOperator), /^Error: host airflow, step node exporter: airflow: monitoring is set up on Debian 12 only/);
  assert.deepEqual(renderFiles(playbooks.monitoring, seedSync, fixedSecrets, 'rhel', fixedOperator), []);
});

test("keepalived's notify script writes the VIP state as a textfile metric, atomically; it passes shellcheck", async () => {
  const dir = await scratch();
  try {
    const script = path.join(dir, 'vip-state');
    await writeFile(script, renderTemplate('monitoring/vip-state.sh.njk', { cluster: 'c', textfile_dir: path.join(dir, 'tf') }), { mode: 0o755 });
    execFileSync(script, ['INSTANCE', 'VI_airflow_vip', 'MASTER', '150']);
    assert.equal(await readFile(path.join(dir, 'tf', 'airflow_ha_vip_airflow-vip.prom'), 'utf8'), '# HELP airflow_ha_vip_master 1 while this host holds the VIP (keepalived MASTER), else 0.\n# TYPE airflow_ha_vip_master gauge\nairflow_ha_vip_master{vip="airflow-vip"} 1\n');
    execFileSync(script, ['INSTANCE', 'VI_airflow_vip', 'BACKUP', '150']);
    assert.match(await readFile(path.join(dir, 'tf', 'airflow_ha_vip_airflow-vip.prom'), 'utf8'), /\{vip="airflow-vip"\} 0\n$/);
    execFileSync(script, ['probe', 'nfs-vip', '203.0.113.77']);
    assert.match(await readFile(path.join(dir, 'tf', 'airflow_ha_vip_nfs-vip.prom'), 'utf8'), /\{vip="nfs-vip"\} 0\n$/);
    assert.equal(run(script, ['INSTANCE', 'VI_bad"name', 'MASTER', '1']).code, 2);
    const sc = run('shellcheck', [script]);
    assert.equal(sc.code, 0, sc.out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("statsd_exporter's mapping (rendered only: Debian 12 has no package) is YAML with one mapping per Airflow metric", async () => {
  const doc = parse(statsdMapping(await seedInventory())) as { mappings: Array<{ match: string; name: string }> };
  assert.ok(doc.mappings.length >= 5);
  assert.ok(doc.mappings.every((m) => m.match.startsWith('airflow.') && /^airflow_[a-z_]+$/.test(m.name)));
  assert.ok(doc.mappings.some((m) => m.match === 'airflow.scheduler_heartbeat'));
});

test('validate: three monitoring hosts are refused; no receiver is a warning', async () => {
  const text = await readFile(path.join(ROOT, 'test/fixtures/inventories/good/minimal.yaml'), 'utf8');
  const three = text.replace('roles: [postgresql, etcd] }', 'roles: [postgresql, etcd, monitoring] }').replace(/roles: \[postgresql, etcd\] \}/g, 'roles: [postgresql, etcd, monitoring] }');
  try {
    parseInventory(three, 'x.yaml');
    assert.fail('three monitoring hosts must be refused');
  } catch (e) {
    assert.ok(e instanceof InputError);
    const d = e.diagnostics.find((x) => x.rule === 'monitoring:hosts');
    assert.match(d?.message ?? '', /^3 hosts have the role monitoring \(db1, db2, db3\): one or two are supported/);
    assert.equal(d?.path, 'hosts[4].roles');
  }
  const one = parseInventory(text.replace('roles: [postgresql, etcd] }', 'roles: [postgresql, etcd, monitoring] }'), 'x.yaml');
  assert.deepEqual(one.warnings.filter((w) => w.rule.startsWith('monitoring:')).map((w) => w.rule), ['monitoring:receivers']);
});

test('the shipped Grafana dashboard is JSON whose every query names metrics the rules or exporters above provide', async () => {
  const doc = JSON.parse(await readFile(path.join(ROOT, 'dashboards', 'airflow-ha.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  const exprs = doc.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  assert.ok(exprs.length >= 8);
  const known = /^(up|patroni_\w+|etcd_server_\w+|rabbitmq_\w+|haproxy_\w+|node_\w+|airflow_\w+|pg_\w+|ALERTS)$/;
  const words = new Set(['sum', 'max', 'min', 'count', 'rate', 'abs', 'or', 'and', 'vector', 'time', 'delta', 'deriv', 'avg', 'group_right']);
  for (const e of exprs) {
    // Metric names: what is left once grouping clauses and label matchers are taken out.
    const bare = e.replace(/\b(by|on|without|ignoring)\s*\([^)]*\)/g, ' ').replace(/\{[^}]*\}/g, ' ');
    for (const [name] of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) if (!words.has(name)) assert.match(name, known, `${e}: ${name}`);
  }
});

test('endpoints: each monitoring host lists its Prometheus and Alertmanager, without a login', async () => {
  const eps = clusterEndpoints({ inventory: await monitoredSeed(), stateDir: '/state' } as LoadedInventory).filter((e) => /Prometheus|Alertmanager/.test(e.name));
  assert.deepEqual(eps, [
    { name: 'Prometheus (airflow)', url: 'http://192.168.83.129:9090/' },
    { name: 'Alertmanager (airflow)', url: 'http://192.168.83.129:9093/' },
  ]);
});

test('the postgres exporter is restarted with its failed state cleared: the package starts it with no DSN and systemd may have hit its start limit', async () => {
  const inv = await monitoredSeed();
  const sql1 = inv.hosts.find((h) => h.name === 'sql1')!;
  const host = { osId: 'debian', osVersion: '12', family: 'debian' as const, hostname: 'sql1', container: false };
  const defaults = postgresExporterTasks(inv, sql1, fixedSecrets).find((t) => t.name.startsWith('file /etc/default/prometheus-postgres-exporter'));
  assert.ok(defaults, 'the defaults file task');
  // Every fact answered "absent" (exit 1, no output): the file is new, so the task changes and notifies.
  const facts = new FactSet(new Map(defaults.facts(host).map((f) => [f.key, { stdout: '', code: 1 }])));
  const plan = defaults.plan(facts, host);
  assert.equal(plan.changed, true);
  assert.deepEqual(
    plan.notify.flatMap((h) => h.ops.map((o) => (o.kind === 'exec' ? o.cmd.toString() : o.path))),
    ['systemctl reset-failed prometheus-postgres-exporter 2>/dev/null; systemctl restart prometheus-postgres-exporter'],
  );
});
